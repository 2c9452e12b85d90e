//! Bounded image decoding and hashing on arbitrary bytes (what a crawled "image" may be).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = matcher::hashing::DecodeLimits {
        max_dimension: 4096,
        max_alloc_bytes: 64 * 1024 * 1024,
    };
    let _ = matcher::hashing::decode(data, limits);
    let _ = matcher::hashing::looks_truncated(data);
});
