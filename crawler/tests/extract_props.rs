//! Extraction never panics and stays within its bounds, whatever the page: arbitrary UTF-8,
//! and HTML-ish soup built from the pieces hostile pages use (unbalanced and self-closed tags,
//! attributes with multi-byte values, `data:` and CSS `url()` references, deep nesting); and
//! text bodies (pastes) built from base64-looking runs, JSON escapes, URLs and onion names.

use std::time::Duration;

use leakwatch_crawler::extract::{extract, ExtractLimits};
use proptest::prelude::*;
use url::Url;

fn limits() -> ExtractLimits {
    ExtractLimits {
        max_text_chars: 2_000,
        max_links: 20,
        max_images: 20,
        max_nesting: 64,
        max_parse_time: Duration::from_secs(5),
        ..ExtractLimits::default()
    }
}

fn check(html: &str) {
    let base = Url::parse("http://site.test/a/b.html").unwrap();
    let l = limits();
    let e = extract(html, &base, &l);
    assert!(e.text.len() <= l.max_text_chars);
    assert!(e.title.len() <= l.max_title_chars);
    assert!(e.links.len() <= l.max_links);
    assert!(e.images.len() + e.inline_images.len() <= l.max_images);
    for u in e.links.iter().chain(&e.images) {
        assert!(matches!(u.scheme(), "http" | "https"), "{u}");
    }
}

/// Pieces of hostile markup, with non-ASCII text where byte offsets go wrong.
fn piece() -> impl Strategy<Value = String> {
    let word = "[a-zé€😀фото写真 ]{0,8}";
    prop_oneof![
        Just("<div>".to_string()),
        Just("<div/>".to_string()),
        Just("</div>".to_string()),
        Just("</x>".to_string()),
        Just("<b><i></b></i>".to_string()),
        Just("<table><td>".to_string()),
        Just("<svg><p>".to_string()),
        Just("<script>".to_string()),
        Just("<!--".to_string()),
        Just("<template>".to_string()),
        word.prop_map(|w| format!("<img src='{w}'>")),
        word.prop_map(|w| format!("<img srcset='{w} 1x, ,{w} 2x'>")),
        word.prop_map(|w| format!("<a href='{w}'>{w}</a>")),
        word.prop_map(|w| format!("<p style=\"background:url({w}\">")),
        word.prop_map(|w| format!("<img src='data:{w}'>")),
        word.prop_map(|w| format!("<img src='data:image/png;base64,{w}'>")),
        word.prop_map(|w| format!("<base href='{w}'>")),
        word,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,2000}") {
        check(&s);
    }

    #[test]
    fn html_soup_never_panics(pieces in prop::collection::vec(piece(), 0..400)) {
        check(&pieces.concat());
    }
}

/// Text bodies and base64 scans: within bounds, whatever the paste.
fn check_text(s: &str) {
    let base = Url::parse("http://paste.test/raw/1").unwrap();
    let l = limits();
    let (e, hidden) = leakwatch_crawler::textbody::extract_text(s, &base, &l);
    assert!(e.text.len() <= l.max_text_chars);
    assert!(e.links.len() <= l.max_links);
    assert!(e.images.len() <= l.max_images);
    assert!(hidden.images.len() <= l.max_images);
    for img in &hidden.images {
        assert!(img.bytes.len() <= l.max_data_uri_bytes);
    }
}

/// Pieces of pastes: base64-looking runs, escapes, URLs and onion names.
fn paste_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9+/=]{0,120}",
        "[A-Za-z0-9_-]{40,90}",
        Just("iVBORw0KGgo".to_string()),
        Just("/9j/4AAQSkZJRg".to_string()),
        Just("\\n".to_string()),
        Just("\\/".to_string()),
        Just("data:image/png;base64,".to_string()),
        Just("http://".to_string()),
        Just("https://x.test/".to_string()),
        Just(".onion".to_string()),
        "[a-z2-7]{56}",
        "[ \n\r\té€😀,;:\"']{0,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_pastes_never_panic(s in "\\PC{0,2000}") {
        check_text(&s);
    }

    #[test]
    fn paste_soup_never_panics(pieces in prop::collection::vec(paste_piece(), 0..300)) {
        check_text(&pieces.concat());
    }
}
