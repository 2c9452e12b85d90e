//! Deterministic text: darknet-forum prose, stolen identifiers and planted
//! search phrases.
//!
//! Page text has to be plausible enough to index and varied enough that the
//! planted phrases and identifiers are the only places their tokens occur. The
//! filler vocabulary therefore contains no digits-and-letters tokens that
//! could be mistaken for plates or document numbers, and phrases are built
//! from invented words that never occur in the vocabulary.

use std::collections::BTreeSet;

use crate::rng::Rng;

/// Filler vocabulary.
pub const WORDS: &[&str] = &[
    "vendor",
    "escrow",
    "dump",
    "fullz",
    "drop",
    "stealth",
    "shipping",
    "tracking",
    "onion",
    "mirror",
    "pgp",
    "key",
    "signed",
    "verified",
    "scam",
    "exit",
    "wallet",
    "monero",
    "bitcoin",
    "tumbler",
    "mixer",
    "opsec",
    "tails",
    "burner",
    "proxy",
    "relay",
    "node",
    "leak",
    "batch",
    "fresh",
    "stock",
    "bulk",
    "sample",
    "review",
    "feedback",
    "dispute",
    "refund",
    "finalize",
    "early",
    "trusted",
    "reputation",
    "admin",
    "moderator",
    "ban",
    "thread",
    "bump",
    "quote",
    "reply",
    "invite",
    "forum",
    "market",
    "listing",
    "price",
    "discount",
    "coupon",
    "order",
    "package",
    "customs",
    "border",
    "crossing",
    "checkpoint",
    "camera",
    "plate",
    "passport",
    "license",
    "document",
    "scan",
    "photo",
    "selfie",
    "template",
    "editor",
    "fake",
    "real",
    "database",
    "breach",
    "combo",
    "list",
    "login",
    "account",
    "password",
    "hash",
    "crack",
    "dehashed",
    "lookup",
    "profile",
    "identity",
    "address",
    "phone",
    "carrier",
    "sim",
    "swap",
    "bank",
    "card",
    "balance",
    "cashout",
    "money",
    "mule",
    "route",
    "courier",
    "lane",
    "truck",
    "convoy",
    "guard",
    "shift",
    "schedule",
    "gate",
    "barrier",
    "booth",
    "officer",
    "queue",
    "night",
    "morning",
    "weekend",
    "quiet",
    "busy",
    "risky",
    "safe",
    "clean",
    "dirty",
    "hot",
    "cold",
    "legit",
    "sketchy",
    "anyone",
    "tested",
    "works",
    "broken",
    "patched",
    "update",
    "new",
    "old",
    "backup",
    "archive",
    "torrent",
    "upload",
    "download",
    "link",
    "dead",
    "alive",
    "paste",
    "gallery",
    "album",
    "set",
    "full",
    "partial",
    "private",
    "public",
    "group",
    "channel",
    "crew",
    "boss",
    "rookie",
    "regular",
    "source",
    "insider",
    "contractor",
    "the",
    "a",
    "of",
    "and",
    "for",
    "with",
    "from",
    "about",
    "this",
    "that",
    "is",
    "was",
    "will",
    "not",
    "just",
    "still",
    "only",
    "more",
    "less",
    "again",
    "never",
    "always",
    "maybe",
];

/// Handles used as forum and market user names.
pub const HANDLES: &[&str] = &[
    "gh0stlane",
    "plateking",
    "nightcourier",
    "vanta",
    "borderbird",
    "silentgate",
    "mulehub",
    "escrowdad",
    "quietfox",
    "dumpster",
    "zerotrace",
    "paperwork",
    "checkpoint_charlie",
    "lanewatch",
    "burnerbob",
    "tollbooth",
    "greyrelay",
    "coldstorage",
];

/// A sentence of 6–14 filler words.
pub fn sentence(rng: &mut Rng) -> String {
    let n = rng.range(6, 15) as usize;
    let mut words: Vec<&str> = (0..n).map(|_| *rng.pick(WORDS)).collect();
    let first = capitalize(words[0]);
    words.remove(0);
    let end = *rng.pick(&[".", ".", ".", "?", "!"]);
    format!("{first} {}{end}", words.join(" "))
}

/// A paragraph of 2–5 sentences.
pub fn paragraph(rng: &mut Rng) -> String {
    let n = rng.range(2, 6);
    (0..n).map(|_| sentence(rng)).collect::<Vec<_>>().join(" ")
}

/// A few capitalized filler words for a title.
pub fn title_words(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| capitalize(rng.pick::<&str>(WORDS)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

const PLATE_LETTERS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ";

/// A plate number like `KX7-4821`.
pub fn plate(rng: &mut Rng) -> String {
    format!(
        "{}{}{}-{:04}",
        *rng.pick(PLATE_LETTERS) as char,
        *rng.pick(PLATE_LETTERS) as char,
        rng.below(10),
        rng.below(10_000)
    )
}

/// A document number like `P88213045`.
pub fn document_number(rng: &mut Rng) -> String {
    format!("P{}{:07}", rng.range(1, 10), rng.below(10_000_000))
}

/// Upper-case alphanumerics only: the form in which identifiers are compared.
pub fn normalize(identifier: &str) -> String {
    identifier
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The stolen identifiers: `plates` plate numbers followed by `docs`
/// document numbers, all distinct.
pub fn stolen_identifiers(seed: u64, plates: usize, docs: usize) -> Vec<String> {
    let mut rng = Rng::stream(seed, "identifiers");
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < plates {
        let p = plate(&mut rng);
        if seen.insert(normalize(&p)) {
            out.push(p);
        }
    }
    while out.len() < plates + docs {
        let d = document_number(&mut rng);
        if seen.insert(normalize(&d)) {
            out.push(d);
        }
    }
    out
}

/// An identifier one character away from `identifier` and not in `stolen`
/// (compared normalized).
pub fn near_miss(rng: &mut Rng, identifier: &str, stolen: &BTreeSet<String>) -> String {
    loop {
        let mut chars: Vec<char> = identifier.chars().collect();
        let digits: Vec<usize> = chars
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_ascii_digit())
            .map(|(i, _)| i)
            .collect();
        let i = *rng.pick(&digits);
        let d = chars[i].to_digit(10).unwrap_or(0);
        let nd = (d + 1 + rng.below(9) as u32) % 10;
        chars[i] = char::from_digit(nd, 10).unwrap_or('0');
        let candidate: String = chars.into_iter().collect();
        if !stolen.contains(&normalize(&candidate)) {
            return candidate;
        }
    }
}

/// `KX7-4821` as `K X 7 - 4 8 2 1`.
pub fn spaced(id: &str) -> String {
    id.chars().map(String::from).collect::<Vec<_>>().join(" ")
}

/// `id` with look-alike characters: `0`/`1` as `O`/`I`, else Cyrillic letters for Latin ones.
pub fn look_alike(id: &str) -> String {
    if id.contains(['0', '1']) {
        return id.replace('0', "O").replace('1', "I");
    }
    id.chars()
        .map(|c| match c {
            'A' => 'А',
            'B' => 'В',
            'E' => 'Е',
            'K' => 'К',
            'M' => 'М',
            'H' => 'Н',
            'P' => 'Р',
            'C' => 'С',
            'T' => 'Т',
            'X' => 'Х',
            c => c,
        })
        .collect()
}

/// Writes `identifier` the way a sloppy dump would: changed case or spacing.
/// Variant 0 is the identifier unchanged.
pub fn sloppy(identifier: &str, variant: u64) -> String {
    let is_plate = identifier.contains('-');
    match (variant % 4, is_plate) {
        (0, _) => identifier.to_string(),
        (1, true) => identifier.to_lowercase().replace('-', " "),
        (2, true) => identifier.replace('-', ""),
        (3, true) => identifier.replace('-', " "),
        (1, false) => identifier.to_lowercase(),
        (2, false) => format!(
            "{} {} {}",
            &identifier[..1],
            &identifier[1..5],
            &identifier[5..]
        ),
        _ => format!("{} {}", &identifier[..1], &identifier[1..]),
    }
}

const SYLLABLES: &[&str] = &[
    "quar", "zel", "vox", "trin", "mab", "kor", "dul", "phen", "sar", "wix", "lum", "gav", "pry",
    "nox", "tesh", "brim", "yol", "cand", "frez", "hob",
];

/// `n` unique searchable phrases of three invented words and a number, e.g.
/// `quarzel voxtrin mabkor 7731`.
pub fn phrases(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng::stream(seed, "phrases");
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < n {
        let words: Vec<String> = (0..3)
            .map(|_| {
                let k = rng.range(2, 4);
                (0..k).map(|_| *rng.pick(SYLLABLES)).collect::<String>()
            })
            .collect();
        if words
            .iter()
            .any(|w| WORDS.contains(&w.as_str()) || seen.contains(w))
        {
            continue;
        }
        for w in &words {
            seen.insert(w.clone());
        }
        out.push(format!("{} {}", words.join(" "), rng.range(1000, 10_000)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sloppy_forms_normalize_back() {
        for id in ["KX7-4821", "P88213045"] {
            for v in 0..4 {
                assert_eq!(normalize(&sloppy(id, v)), normalize(id), "{id} {v}");
            }
        }
    }

    #[test]
    fn near_miss_is_not_stolen() {
        let ids = stolen_identifiers(7, 30, 20);
        let set: BTreeSet<String> = ids.iter().map(|i| normalize(i)).collect();
        let mut rng = Rng::new(1);
        for id in &ids {
            let m = near_miss(&mut rng, id, &set);
            assert_ne!(normalize(&m), normalize(id));
            assert!(!set.contains(&normalize(&m)));
        }
    }
}
