//! Decoding of every bus message type from arbitrary payloads (a poisoned queue).
#![no_main]

use libfuzzer_sys::fuzz_target;
use schema::Message;

fuzz_target!(|data: &[u8]| {
    let _ = schema::CrawlRequest::decode(data);
    let _ = schema::Discovered::decode(data);
    let _ = schema::FetchedPage::decode(data);
    let _ = schema::FetchedImage::decode(data);
    let _ = schema::ImageVerdict::decode(data);
    let _ = schema::Alert::decode(data);
});
