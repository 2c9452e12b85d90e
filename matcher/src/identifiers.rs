//! Kinds of watched identifiers: how each is written canonically (the form that is hashed),
//! how its spellings are found in crawled text, and how a sighting is masked.
//!
//! Leakers dodge naive matching: `K X 7 - 4 8 2 1`, `<b>KX7</b>-48<i>21</i>` (extraction puts
//! a space between the pieces), `KX7-482I` with an `I` for a `1`, Cyrillic `К` for Latin `K`.
//! Codes (plates, document numbers) are therefore read as runs of letters and digits joined
//! by short separators, folded to one alphabet (`O`→`0`, `I`→`1`, homoglyphs and full-width
//! forms to ASCII). A spelling is taken only as whole tokens, and a spaced-out spelling that
//! goes on with more single characters (`K X 7 4 8 2 1 0`) is another, longer code: decoys
//! one character off never match.
//!
//! Words (names, terms) are compared as lowercase words; e-mail addresses lowercase.
//! Nothing here keeps an identifier: callers hash the canonical form at once.

use serde::{Deserialize, Serialize};

/// Shortest and longest code (plate, document number), in canonical characters.
pub const MIN_CODE: usize = 4;
pub const MAX_CODE: usize = 20;
/// Most words in a watched name or term.
pub const MAX_WORDS: usize = 6;
/// Longest run of separators between two pieces of one code.
const MAX_GAP: usize = 4;

/// What a watched identifier is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Plate,
    Document,
    Email,
    Name,
    Term,
}

/// Kinds that share a canonical form share a hash domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Code,
    Email,
    Words,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Plate,
        Kind::Document,
        Kind::Email,
        Kind::Name,
        Kind::Term,
    ];

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Plate => "plate",
            Kind::Document => "document",
            Kind::Email => "email",
            Kind::Name => "name",
            Kind::Term => "term",
        }
    }

    pub fn class(self) -> Class {
        match self {
            Kind::Plate | Kind::Document => Class::Code,
            Kind::Email => Class::Email,
            Kind::Name | Kind::Term => Class::Words,
        }
    }

    /// The canonical form of `s` as an identifier of this kind, or why it is not one.
    pub fn canonical(self, s: &str) -> Result<String, &'static str> {
        match self.class() {
            Class::Code => {
                let c = fold_code(s);
                if c.chars().count() < MIN_CODE || c.chars().count() > MAX_CODE {
                    Err("a code must have 4 to 20 letters and digits")
                } else if !c.bytes().any(|b| b.is_ascii_digit()) {
                    Err("a code must contain a digit")
                } else {
                    Ok(c)
                }
            }
            Class::Email => {
                let c: String = s
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .flat_map(char::to_lowercase)
                    .collect();
                match c.split_once('@') {
                    Some((l, d)) if !l.is_empty() && d.contains('.') && !d.contains('@') => Ok(c),
                    _ => Err("not an e-mail address"),
                }
            }
            Class::Words => {
                let words = words_of(s);
                if words.is_empty() || words.len() > MAX_WORDS {
                    Err("a name or term must have 1 to 6 words")
                } else if self == Kind::Name && words.len() < 2 {
                    Err("a name must have at least two words")
                } else {
                    Ok(words.join(" "))
                }
            }
        }
    }

    /// What an analyst sees instead of the value: a few characters at each end of a code, the
    /// initials of words.
    pub fn masked(self, canonical: &str) -> String {
        match self.class() {
            Class::Code | Class::Email => {
                let chars: Vec<char> = canonical.chars().collect();
                let keep = chars.len() / 4;
                let mut out = String::new();
                for (i, c) in chars.iter().enumerate() {
                    let shown = i < keep || i >= chars.len() - keep || *c == '@';
                    out.push(if shown { *c } else { '*' });
                }
                out
            }
            Class::Words => canonical
                .split(' ')
                .map(|w| {
                    let first: String = w.chars().take(1).collect();
                    format!("{first}***")
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Characters that change nothing on screen and are dropped from a code wherever they are
/// (soft hyphen, zero-width space and joiners, word joiner, byte-order mark, combining marks).
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
            | '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{20d0}'..='\u{20ff}'
    )
}

/// Appends the code characters `c` stands for to `out`: its compatibility form (mathematical
/// bold, circled and full-width letters and digits become plain ones), Cyrillic and Greek
/// look-alikes as their Latin twins, uppercase, with `O`/`0` and `I`/`1` as one. Anything that
/// is not a letter or digit adds nothing.
pub fn fold_into(c: char, out: &mut String) {
    if let Some(d) = script_digit(c) {
        out.push(d);
        return;
    }
    unicode_normalization::char::decompose_compatible(c, |d| {
        let latin = match d {
            'А' | 'а' | 'Α' | 'α' => 'A',
            'В' | 'в' | 'Β' | 'β' => 'B',
            'Е' | 'е' | 'Ε' | 'ε' => 'E',
            'К' | 'к' | 'Κ' | 'κ' => 'K',
            'М' | 'м' | 'Μ' => 'M',
            'Н' | 'н' | 'Η' => 'H',
            'О' | 'о' | 'Ο' | 'ο' => 'O',
            'Р' | 'р' | 'Ρ' | 'ρ' => 'P',
            'С' | 'с' => 'C',
            'Т' | 'т' | 'Τ' | 'τ' => 'T',
            'Х' | 'х' | 'Χ' | 'χ' => 'X',
            'У' | 'у' | 'Υ' => 'Y',
            'І' | 'і' | 'Ι' | 'ι' => 'I',
            'Ζ' => 'Z',
            'Ν' => 'N',
            d => d,
        };
        if !latin.is_alphanumeric() {
            return;
        }
        for u in latin.to_uppercase() {
            out.push(match u {
                'O' => '0',
                'I' => '1',
                u => u,
            });
        }
    });
}

/// First code points of the blocks of ten decimal digits other scripts write numbers with
/// (Arabic-Indic, Persian, N'Ko, Devanagari, Bengali … Myanmar, Khmer, Mongolian).
const DIGIT_BLOCKS: [u32; 18] = [
    0x0660, 0x06f0, 0x07c0, 0x0966, 0x09e6, 0x0a66, 0x0ae6, 0x0b66, 0x0be6, 0x0c66, 0x0ce6, 0x0d66,
    0x0e50, 0x0ed0, 0x0f20, 0x1040, 0x17e0, 0x1810,
];

/// `c` as an ASCII digit when it is a decimal digit of another script (`٤` is `4`).
fn script_digit(c: char) -> Option<char> {
    let cp = c as u32;
    DIGIT_BLOCKS
        .iter()
        .find(|&&base| (base..base + 10).contains(&cp))
        .and_then(|&base| char::from_digit(cp - base, 10))
}

/// A code's canonical characters: letters and digits only, folded.
pub fn fold_code(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        fold_into(c, &mut out);
    }
    out
}

/// The lowercase words of `s` (runs of letters and digits).
pub fn words_of(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A run of letters and digits in a text, by byte offsets.
#[derive(Debug, Clone, Copy)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    /// Characters in the token.
    pub chars: usize,
    /// Joined to the previous token by a short run of separators (a code may go on).
    pub joined: bool,
    /// That run had no whitespace (`KX7-4821`, not `KX7 4821`).
    pub tight: bool,
}

/// Tokens of `text`, at most `max` of them.
pub fn tokens(text: &str, max: usize) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut start: Option<usize> = None;
    let mut chars = 0;
    let mut gap = 0usize;
    let mut gap_ok = true;
    let mut gap_space = false;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            if start.is_none() {
                start = Some(i);
                chars = 0;
            }
            chars += 1;
            continue;
        }
        if start.is_some() && is_invisible(c) {
            // `KX7\u{ad}4821` is one token, as it looks.
            continue;
        }
        if let Some(s) = start.take() {
            if out.len() >= max {
                return out;
            }
            push_token(&mut out, s, i, chars, gap, gap_ok, gap_space);
            gap = 0;
            gap_ok = true;
            gap_space = false;
        }
        gap += 1;
        gap_space |= c.is_whitespace();
        gap_ok &= gap <= MAX_GAP && is_separator(c);
    }
    if let Some(s) = start {
        if out.len() < max {
            push_token(&mut out, s, text.len(), chars, gap, gap_ok, gap_space);
        }
    }
    out
}

fn push_token(
    out: &mut Vec<Token>,
    start: usize,
    end: usize,
    chars: usize,
    gap: usize,
    gap_ok: bool,
    gap_space: bool,
) {
    let first = out.is_empty();
    out.push(Token {
        start,
        end,
        chars,
        joined: !first && gap_ok && gap > 0,
        tight: !gap_space,
    });
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || is_invisible(c)
        || matches!(
            c,
            '-' | '.' | '_' | '/' | '·' | '|' | '\u{2010}'
                ..='\u{2015}'
                    | '\u{2043}'
                    | '\u{2212}'
                    | '\u{fe58}'
                    | '\u{fe63}'
                    | '－'
                    | '．'
                    | '／'
        )
}

/// Whether tokens `i..=j` read as one code on their own: a spaced-out spelling does not go on
/// with more single characters on either side (`K X 7 4 8 2 1 0`), and the code is not glued
/// to a short tail that makes it another code (`KX7-4821-9`).
pub fn whole_code(tokens: &[Token], i: usize, j: usize) -> bool {
    let spaced = |a: &Token, b: &Token, link: &Token| link.joined && a.chars == 1 && b.chars == 1;
    if i > 0 && spaced(&tokens[i - 1], &tokens[i], &tokens[i]) {
        return false;
    }
    match tokens.get(j + 1) {
        Some(next) => {
            !(spaced(&tokens[j], next, next) || next.joined && next.tight && next.chars <= 2)
        }
        None => true,
    }
}

/// E-mail addresses in `text`: byte spans and canonical forms.
pub fn emails(text: &str, max: usize) -> Vec<(usize, usize, String)> {
    let bytes = text.as_bytes();
    let local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-".contains(&b);
    let domain = |b: u8| b.is_ascii_alphanumeric() || b".-".contains(&b);
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find('@').map(|p| p + from) {
        from = at + 1;
        let mut s = at;
        while s > 0 && local(bytes[s - 1]) {
            s -= 1;
        }
        // `...jdoe@host`: dots cannot start an address.
        while s < at && bytes[s] == b'.' {
            s += 1;
        }
        let mut e = at + 1;
        while e < bytes.len() && domain(bytes[e]) {
            e += 1;
        }
        while e > at + 1 && bytes[e - 1] == b'.' {
            e -= 1;
        }
        // Only ASCII bytes were taken: both ends are char boundaries.
        if s < at && text[at + 1..e].contains('.') {
            out.push((s, e, text[s..e].to_ascii_lowercase()));
            if out.len() >= max {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_fold_look_alikes_and_keep_only_letters_and_digits() {
        let k = Kind::Plate;
        assert_eq!(k.canonical("kx7-4821").unwrap(), "KX74821");
        assert_eq!(k.canonical("КХ7 482I").unwrap(), "KX74821");
        assert_eq!(k.canonical("ＫＸ７４８２１").unwrap(), "KX74821");
        assert_eq!(k.canonical("𝐊𝐗𝟕𝟒𝟖𝟐𝟏").unwrap(), "KX74821");
        assert_eq!(k.canonical("KX٧-٤٨٢١").unwrap(), "KX74821");
        assert_eq!(k.canonical("KX७४८२१").unwrap(), "KX74821");
        assert_eq!(k.canonical("KX7\u{ad}48\u{200b}21").unwrap(), "KX74821");
        assert_eq!(
            k.canonical("mü-ab 123").unwrap(),
            k.canonical("MÜ-AB 123").unwrap()
        );
        assert_eq!(
            k.canonical("P0-88213").unwrap(),
            k.canonical("PO-88213").unwrap()
        );
        assert!(k.canonical("ABCDEF").is_err());
        assert!(k.canonical("A1").is_err());
        assert_eq!(
            Kind::Email.canonical(" J.Doe@Mail.Example ").unwrap(),
            "j.doe@mail.example"
        );
        assert!(Kind::Email.canonical("nope").is_err());
        assert_eq!(Kind::Name.canonical("  Jane   DOE ").unwrap(), "jane doe");
        assert!(Kind::Name.canonical("Jane").is_err());
        assert_eq!(Kind::Term.canonical("Border-Cam").unwrap(), "border cam");
    }

    #[test]
    fn masks_show_little() {
        assert_eq!(Kind::Plate.masked("KX7482190"), "KX*****90");
        assert_eq!(Kind::Plate.masked("KX74821"), "K*****1");
        assert_eq!(Kind::Name.masked("jane doe"), "j*** d***");
        let m = Kind::Email.masked("jdoe@mail.example");
        assert!(m.contains('@') && !m.contains("mail"), "{m}");
    }

    #[test]
    fn tokens_know_their_separators() {
        let t = tokens("KX7 - 4821, 9", 100);
        assert_eq!(t.len(), 3);
        assert!(t[1].joined && !t[1].tight);
        assert!(!t[2].joined, "a comma ends a code");
        let t = tokens("ab--------cd", 100);
        assert!(!t[1].joined, "a long run of separators is no join");
        let t = tokens("é1 ü2", 1);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn spaced_spellings_that_go_on_are_other_codes() {
        let text = "K X 7 4 8 2 1 0";
        let t = tokens(text, 100);
        assert!(!whole_code(&t, 0, 6));
        assert!(whole_code(&t, 0, 7));
        let t = tokens("KX7-4821-9", 100);
        assert!(!whole_code(&t, 0, 1));
        let t = tokens("KX7 4821 2019", 100);
        assert!(whole_code(&t, 0, 1));
    }

    #[test]
    fn emails_are_found_on_char_boundaries() {
        assert_eq!(
            emails("see ...jdoe@mail.example", 10)[0].2,
            "jdoe@mail.example"
        );
        let e = emails("mail é jdoe@mail.example. or x@y or @@ ü@z.org", 10);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].2, "jdoe@mail.example");
        assert_eq!(emails("ü@z.org", 10).len(), 0);
    }
}
