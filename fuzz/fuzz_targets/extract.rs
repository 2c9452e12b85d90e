//! HTML extraction on arbitrary bytes (decoded as the crawler decodes a page).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (html, _) = crawler::fetch::decode_html(Some("text/html"), data);
    let base = url::Url::parse("http://site.test/a/b.html").unwrap();
    let limits = crawler::extract::ExtractLimits::default();
    let e = crawler::extract::extract(&html, &base, &limits);
    assert!(e.links.len() <= limits.max_links);
    assert!(e.images.len() + e.inline_images.len() <= limits.max_images);
});
