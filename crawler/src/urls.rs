//! URL normalisation, so one resource is fetched once however a page spells its address.
//!
//! Resolves against the page (or its `<base href>`), keeps only http(s), drops the fragment and
//! an empty query, lowercases the host and drops default ports (the `url` crate does the last
//! two and dot-segment removal). Anything too long or unparsable is skipped.

use url::Url;

/// Longest URL leakwatch will follow; longer ones are almost always traps.
pub const MAX_URL_LEN: usize = 2048;

/// Resolves `href` against `base` and normalises it; `None` for anything not to follow.
pub fn normalize(base: &Url, href: &str) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() || href.len() > MAX_URL_LEN {
        return None;
    }
    let mut url = base.join(href).ok()?;
    clean(&mut url)?;
    Some(url)
}

/// Parses and normalises an absolute URL (a seed).
pub fn parse_absolute(s: &str) -> Option<Url> {
    if s.len() > MAX_URL_LEN {
        return None;
    }
    let mut url = Url::parse(s.trim()).ok()?;
    clean(&mut url)?;
    Some(url)
}

fn clean(url: &mut Url) -> Option<()> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials in crawled links are never ours to use.
        url.set_username("").ok()?;
        url.set_password(None).ok()?;
    }
    if let Some(h) = url.host_str().filter(|h| h.ends_with('.')) {
        // `abc.onion.` and `abc.onion` are one site; so for any name.
        let h = h.trim_end_matches('.').to_string();
        if h.is_empty() {
            return None;
        }
        url.set_host(Some(&h)).ok()?;
    }
    url.set_fragment(None);
    if url.query() == Some("") {
        url.set_query(None);
    }
    if url.as_str().len() > MAX_URL_LEN {
        return None;
    }
    Some(())
}

/// The site a URL belongs to: host plus explicit port. Politeness and isolation are per site.
pub fn site_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

/// Whether the host is an onion service name (valid or not).
pub fn is_onion(url: &Url) -> bool {
    url.host_str().is_some_and(crate::onion::is_onion_host)
}

/// For an onion URL, whether its address is a valid v3 one (`Ok` for other URLs).
pub fn check_onion(url: &Url) -> Result<(), crate::onion::OnionError> {
    match url.host_str() {
        Some(h) if crate::onion::is_onion_host(h) => crate::onion::parse_onion_host(h).map(|_| ()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_page_normalise_alike() {
        let base = Url::parse("http://Example.COM:80/a/b/page.html").unwrap();
        let want = "http://example.com/a/b/x.html";
        for href in [
            "x.html",
            "./x.html",
            "../b/x.html",
            "x.html#frag",
            "x.html?",
            "HTTP://EXAMPLE.com/a/b/x.html",
        ] {
            assert_eq!(normalize(&base, href).unwrap().as_str(), want, "{href}");
        }
    }

    #[test]
    fn skips_what_is_not_to_follow() {
        let base = Url::parse("http://example.com/").unwrap();
        for href in [
            "mailto:a@b.c",
            "javascript:alert(1)",
            "ftp://x/y",
            "",
            "data:text/html,hi",
        ] {
            assert!(normalize(&base, href).is_none(), "{href}");
        }
        let long = format!("/{}", "a".repeat(3000));
        assert!(normalize(&base, &long).is_none());
        assert_eq!(
            normalize(&base, "http://user:pw@example.com/x")
                .unwrap()
                .as_str(),
            "http://example.com/x"
        );
    }

    #[test]
    fn sites_and_onions() {
        let u = Url::parse("http://abc.onion:8080/x").unwrap();
        assert_eq!(site_of(&u), "abc.onion:8080");
        assert!(is_onion(&u));
        assert!(!is_onion(&Url::parse("http://onion.example/").unwrap()));
        let dotted = parse_absolute("http://ABC.Onion./x").unwrap();
        assert_eq!(dotted.as_str(), "http://abc.onion/x");
        assert_eq!(
            check_onion(&dotted).unwrap_err(),
            crate::onion::OnionError::BadLength(3)
        );
        assert!(check_onion(&Url::parse("http://example.com/").unwrap()).is_ok());
    }
}
