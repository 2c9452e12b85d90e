//! The SOCKS5 client against a proxy that answers arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let stream = tokio::io::join(data, Vec::<u8>::new());
        let target = crawler::socks5::Target::Name("example.onion".into());
        let _ = crawler::socks5::handshake(stream, &target, 80, Some(("u", "p"))).await;
    });
});
