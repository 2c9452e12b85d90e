//! The fingerprint bank and import journal parsers on arbitrary file contents (the bank also
//! with a valid header and checksum around the bytes, so its records are parsed).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    matcher::bank::fuzzing::bank(data);
    matcher::bank::fuzzing::bank_records(data);
    matcher::bank::fuzzing::journal(data);
});
