//! Mirror announcements: a site saying that it lives (also) at another onion address.
//!
//! Onion services move — seized, DDoSed, or rotating keys — and announce the new address on the
//! old one ("new mirror: …", "we moved to …"). Such a link is news for an analyst watching the
//! site, and a favourite trick of phishers, so it is flagged, never trusted: the mirror does not
//! become a seed and inherits nothing from the site that named it; it is crawled only as the
//! follow rules would crawl any link. What counts as an announcement: a link to another onion
//! whose anchor text, `title`, or the text just before it speaks of a mirror or a new address.

/// Characters of the text before a link that are read for an announcement ("New address:"
/// and the like just before it, not a heading far above a list of links).
pub const CONTEXT_CHARS: usize = 48;

/// Anchor text characters read.
pub const ANCHOR_CHARS: usize = 200;

/// Mirrors kept per page.
pub const MAX_PER_PAGE: usize = 16;

/// Mirrors remembered per site: a site that "announces" more is flooding, and what it
/// announced first is what an analyst needs.
pub const MAX_PER_SITE: u64 = 64;

const WORDS: &[&str] = &[
    "mirror",
    "new address",
    "new link",
    "new url",
    "new onion",
    "new domain",
    "moved to",
    "we moved",
    "we have moved",
    "backup address",
    "backup link",
    "alternative address",
    "alternative link",
    "official link",
    "official address",
];

/// Whether a link with `anchor` text (and `title`), preceded by `before`, announces a mirror.
pub fn announced(anchor: &str, title: Option<&str>, before: &str) -> bool {
    let said = |s: &str| {
        let s = s.to_lowercase();
        WORDS.iter().any(|w| s.contains(w))
    };
    said(anchor) || title.is_some_and(said) || said(before)
}

/// The last `n` characters of `s` (on a char boundary).
pub fn tail(s: &str, n: usize) -> &str {
    match s.char_indices().rev().nth(n.saturating_sub(1)) {
        Some((i, _)) => &s[i..],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_are_read_in_the_anchor_the_title_or_just_before() {
        assert!(announced("Our new MIRROR", None, ""));
        assert!(announced(
            "xyz.onion",
            None,
            "Seized soon? We have moved to:"
        ));
        assert!(announced("here", Some("Official link"), ""));
        assert!(!announced("a market", None, "great prices"));
        assert!(!announced("forum", None, ""));
    }

    #[test]
    fn tails_are_cut_on_char_boundaries() {
        assert_eq!(tail("héllo wörld", 5), "wörld");
        assert_eq!(tail("ab", 5), "ab");
        assert_eq!(tail("日本語のテキスト", 3), "キスト");
        assert_eq!(tail("", 3), "");
    }
}
