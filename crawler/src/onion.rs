//! Onion service addresses: which `.onion` names are real v3 addresses.
//!
//! A v3 address is 56 base32 characters encoding 35 bytes: the service's ed25519 public key
//! (32), a checksum (2) and the version byte (3). The checksum is the first two bytes of
//! SHA3-256(".onion checksum" || pubkey || version). Checking it catches typos and mangled
//! links before a Tor circuit is spent on them. The 16-character v2 addresses were retired
//! from the Tor network in 2021 and are refused as obsolete.
//!
//! Names are compared case-insensitively and a trailing dot (the DNS root) is ignored; a
//! subdomain (`www.<addr>.onion`) belongs to the service of its last label.

use sha3::{Digest, Sha3_256};

/// Length of a v3 address label (without `.onion`).
pub const V3_LEN: usize = 56;
/// Length of an obsolete v2 address label.
pub const V2_LEN: usize = 16;

/// A validated v3 onion service name (lowercase, no trailing dot, no subdomain).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OnionAddr(String);

impl OnionAddr {
    /// The service name, `<56 chars>.onion`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OnionAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a `.onion` name is not a usable v3 address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnionError {
    #[error("not an .onion name")]
    NotOnion,
    #[error(
        "v2 onion addresses (16 characters) are obsolete: the Tor network no longer serves them"
    )]
    V2Obsolete,
    #[error("an onion address has 56 characters, this one has {0}")]
    BadLength(usize),
    #[error("an onion address is base32 (a-z, 2-7); found {0:?}")]
    BadBase32(char),
    #[error("onion address version {0}: only version 3 exists")]
    BadVersion(u8),
    #[error("onion address checksum does not match (a typo or a mangled link)")]
    BadChecksum,
}

impl OnionError {
    /// A short name for counting.
    pub fn kind(&self) -> &'static str {
        match self {
            OnionError::NotOnion => "onion.not-onion",
            OnionError::V2Obsolete => "onion.v2-obsolete",
            OnionError::BadLength(_) => "onion.bad-length",
            OnionError::BadBase32(_) => "onion.bad-base32",
            OnionError::BadVersion(_) => "onion.bad-version",
            OnionError::BadChecksum => "onion.bad-checksum",
        }
    }
}

/// Whether `host` is in the `.onion` domain (any case, trailing dot ignored).
pub fn is_onion_host(host: &str) -> bool {
    let h = host.strip_suffix('.').unwrap_or(host);
    h.len()
        .checked_sub(6)
        .and_then(|i| h.get(i..))
        .is_some_and(|tail| tail.eq_ignore_ascii_case(".onion"))
}

/// Validates an `.onion` host name and returns its service address.
pub fn parse_onion_host(host: &str) -> Result<OnionAddr, OnionError> {
    let h = host.strip_suffix('.').unwrap_or(host);
    if !is_onion_host(h) {
        return Err(OnionError::NotOnion);
    }
    let name = &h[..h.len() - 6];
    let label = name.rsplit('.').next().unwrap_or(name).to_ascii_lowercase();
    match label.len() {
        V2_LEN => return Err(OnionError::V2Obsolete),
        V3_LEN => {}
        n => return Err(OnionError::BadLength(n)),
    }
    let bytes = base32_decode(&label)?;
    let (pubkey, rest) = bytes.split_at(32);
    let (checksum, version) = (&rest[..2], rest[2]);
    if version != 3 {
        return Err(OnionError::BadVersion(version));
    }
    if checksum != v3_checksum(pubkey, version) {
        return Err(OnionError::BadChecksum);
    }
    Ok(OnionAddr(format!("{label}.onion")))
}

/// The two checksum bytes of a v3 address.
fn v3_checksum(pubkey: &[u8], version: u8) -> [u8; 2] {
    let mut h = Sha3_256::new();
    h.update(b".onion checksum");
    h.update(pubkey);
    h.update([version]);
    let d = h.finalize();
    [d[0], d[1]]
}

/// RFC 4648 base32 (lowercase, no padding) of exactly 56 characters → 35 bytes.
fn base32_decode(s: &str) -> Result<[u8; 35], OnionError> {
    let mut out = [0u8; 35];
    let (mut acc, mut bits, mut n) = (0u64, 0u32, 0usize);
    for c in s.chars() {
        let v = match c {
            'a'..='z' => c as u64 - 'a' as u64,
            '2'..='7' => c as u64 - '2' as u64 + 26,
            other => return Err(OnionError::BadBase32(other)),
        };
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if n >= out.len() {
                return Err(OnionError::BadLength(s.len()));
            }
            out[n] = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    if n != out.len() {
        return Err(OnionError::BadLength(s.len()));
    }
    Ok(out)
}

/// The v3 address (`<56 chars>.onion`) of an ed25519 public key: what a service with that
/// key is reached at. Tests and the testbed use it to make valid addresses.
pub fn address_from_key(pubkey: &[u8; 32]) -> String {
    let mut b = pubkey.to_vec();
    b.extend_from_slice(&v3_checksum(pubkey, 3));
    b.push(3);
    format!("{}.onion", base32_encode(&b))
}

/// RFC 4648 base32, lowercase, no padding.
fn base32_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let (mut acc, mut bits, mut out) = (0u64, 0u32, String::new());
    for &b in bytes {
        acc = (acc << 8) | b as u64;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Published addresses of public services (The Tor Project, DuckDuckGo).
    const TORPROJECT: &str = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";
    const DUCKDUCKGO: &str = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion";

    /// An address built from its parts, so a test can vary one part.
    fn build(pubkey: [u8; 32], checksum: Option<[u8; 2]>, version: u8) -> String {
        let mut b = pubkey.to_vec();
        b.extend_from_slice(&checksum.unwrap_or_else(|| v3_checksum(&pubkey, version)));
        b.push(version);
        format!("{}.onion", base32_encode(&b))
    }

    #[test]
    fn addresses_from_keys_are_valid() {
        let a = address_from_key(&[7; 32]);
        assert_eq!(parse_onion_host(&a).unwrap().as_str(), a);
    }

    #[test]
    fn valid_v3_addresses() {
        for a in [TORPROJECT, DUCKDUCKGO] {
            assert_eq!(parse_onion_host(a).unwrap().as_str(), a);
        }
        let built = build([7; 32], None, 3);
        assert_eq!(built.len(), V3_LEN + 6);
        assert_eq!(parse_onion_host(&built).unwrap().as_str(), built);
        let sub = format!("www.{DUCKDUCKGO}");
        assert_eq!(parse_onion_host(&sub).unwrap().as_str(), DUCKDUCKGO);
    }

    #[test]
    fn bad_checksum() {
        // One character changed: the checksum no longer matches.
        let typo = TORPROJECT.replacen("2gzy", "2gzz", 1);
        assert_eq!(parse_onion_host(&typo), Err(OnionError::BadChecksum));
        let good = v3_checksum(&[9; 32], 3);
        let bad = build([9; 32], Some([good[0] ^ 1, good[1]]), 3);
        assert_eq!(parse_onion_host(&bad), Err(OnionError::BadChecksum));
    }

    #[test]
    fn wrong_version() {
        // A correct checksum over version 4 is still not a v3 address.
        let v4 = build([5; 32], None, 4);
        assert_eq!(parse_onion_host(&v4), Err(OnionError::BadVersion(4)));
        let v0 = build([5; 32], None, 0);
        assert_eq!(parse_onion_host(&v0), Err(OnionError::BadVersion(0)));
    }

    #[test]
    fn v2_is_obsolete() {
        let e = parse_onion_host("expyuzz4wqqyqhjn.onion").unwrap_err();
        assert_eq!(e, OnionError::V2Obsolete);
        assert!(e.to_string().contains("obsolete"));
    }

    #[test]
    fn mixed_case_and_trailing_dot() {
        let upper = TORPROJECT.to_ascii_uppercase();
        assert_eq!(parse_onion_host(&upper).unwrap().as_str(), TORPROJECT);
        let mixed: String = DUCKDUCKGO
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        assert_eq!(parse_onion_host(&mixed).unwrap().as_str(), DUCKDUCKGO);
        let dotted = format!("{TORPROJECT}.");
        assert_eq!(parse_onion_host(&dotted).unwrap().as_str(), TORPROJECT);
        assert!(is_onion_host("X.ONION.") && !is_onion_host("onion.example"));
    }

    #[test]
    fn other_malformed_names() {
        assert_eq!(parse_onion_host("abc.onion"), Err(OnionError::BadLength(3)));
        let bad_char = format!("{}1.onion", &TORPROJECT[..55]);
        assert_eq!(parse_onion_host(&bad_char), Err(OnionError::BadBase32('1')));
        assert_eq!(parse_onion_host("example.com"), Err(OnionError::NotOnion));
        assert_eq!(parse_onion_host(".onion"), Err(OnionError::BadLength(0)));
        assert_eq!(parse_onion_host("é.onion"), Err(OnionError::BadLength(2)));
    }
}
