//! Who may use the console: argon2 password hashes, random session and API tokens (kept only
//! as SHA-256 hashes), CSRF tokens, login rate limiting, and the masking that keeps watched
//! identifiers typed into a search out of the audit log in clear.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why a password or user could not be set.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("user names are 1 to 64 letters, digits, '.', '_' or '-'")]
    BadName,
    #[error("a password needs at least {MIN_PASSWORD} characters")]
    ShortPassword,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub const MIN_PASSWORD: usize = 12;

/// Checks a user name.
pub fn check_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    ok.then_some(()).ok_or(AuthError::BadName)
}

/// An argon2id hash of `password` (PHC string), with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(AuthError::ShortPassword);
    }
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| AuthError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&bytes).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC hash; `None` checks against a dummy hash, so an unknown
/// user takes as long as a wrong password.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not anybody's password").unwrap_or_default());
    let known = hash.is_some();
    let Ok(parsed) = PasswordHash::new(hash.unwrap_or(dummy)) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && known
}

/// 32 random bytes as hex: session, CSRF and API tokens.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    // The OS random source failing is not something to go on from.
    getrandom::getrandom(&mut b).expect("OS random source");
    hex::encode(b)
}

/// How a token is stored: its SHA-256, so a copy of the database logs nobody in.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time comparison of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Failed logins per user and per client address in a sliding window.
pub struct LoginLimiter {
    window: Duration,
    per_user: usize,
    per_addr: usize,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Serialises [`LoginLimiter::attempt`].
    attempts: Mutex<()>,
}

impl LoginLimiter {
    pub fn new(window: Duration, per_user: usize, per_addr: usize) -> LoginLimiter {
        LoginLimiter {
            window,
            per_user,
            per_addr,
            failures: Mutex::new(HashMap::new()),
            attempts: Mutex::new(()),
        }
    }

    /// `Some(wait)` when this user or address must wait before trying again.
    pub fn blocked(&self, user: &str, addr: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for (key, max) in [
            (format!("u:{user}"), self.per_user),
            (format!("a:{addr}"), self.per_addr),
        ] {
            if let Some(q) = m.get_mut(&key) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > self.window)
                {
                    q.pop_front();
                }
                if q.len() >= max {
                    let oldest = q.front().copied().unwrap_or(now);
                    let w = self.window.saturating_sub(now.duration_since(oldest));
                    wait = Some(wait.map_or(w, |x: Duration| x.max(w)));
                }
            }
        }
        wait
    }

    pub fn failed(&self, user: &str, addr: &str) {
        let now = Instant::now();
        let mut m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a flood of made-up names cannot grow the map without end.
        if m.len() > 100_000 {
            let window = self.window;
            m.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) <= window));
        }
        for key in [format!("u:{user}"), format!("a:{addr}")] {
            let q = m.entry(key).or_default();
            q.push_back(now);
            if q.len() > 1000 {
                q.pop_front();
            }
        }
    }

    /// Admits one login attempt, counted as a failure until [`LoginLimiter::succeeded`]
    /// says otherwise, or says how long to wait. Checking and counting are one step, so a
    /// burst of concurrent attempts gets no more tries than a sequence.
    pub fn attempt(&self, user: &str, addr: &str) -> Result<(), Duration> {
        let _one = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = self.blocked(user, addr) {
            return Err(wait);
        }
        self.failed(user, addr);
        Ok(())
    }

    /// A login went through: its user's failures are forgotten, and its attempt no longer
    /// counts against its address.
    pub fn succeeded(&self, user: &str, addr: &str) {
        let mut m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(&format!("u:{user}"));
        if let Some(q) = m.get_mut(&format!("a:{addr}")) {
            q.pop_back();
        }
    }
}

/// A query as the audit log keeps it: every word of five or more letters and digits that
/// holds a digit (the shape of a plate or document number) is masked but for its first and
/// last two characters, so an analyst searching for a stolen identifier does not write it
/// into the log in clear.
pub fn mask_identifiers(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let n = word.chars().count();
        if n >= 5 && word.chars().any(|c| c.is_ascii_digit()) {
            for (i, c) in word.chars().enumerate() {
                out.push(if i < 2 || i + 2 >= n { c } else { '*' });
            }
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in query.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&h)));
        assert!(!verify_password("correct horse batterz", Some(&h)));
        assert!(!verify_password("correct horse battery", None));
        assert!(!verify_password("x", Some("not a hash")));
        assert!(matches!(
            hash_password("short"),
            Err(AuthError::ShortPassword)
        ));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("ana.k-1_x").is_ok());
        for bad in ["", "a b", "<script>", &"a".repeat(65), "é"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(token_hash(&a), a);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a, &a[1..]));
    }

    #[test]
    fn logins_are_limited_per_user_and_address() {
        let l = LoginLimiter::new(Duration::from_secs(60), 3, 5);
        for _ in 0..3 {
            assert!(l.blocked("ana", "1.2.3.4").is_none());
            l.failed("ana", "1.2.3.4");
        }
        assert!(
            l.blocked("ana", "5.6.7.8").is_some(),
            "per user, from anywhere"
        );
        assert!(l.blocked("bob", "1.2.3.4").is_none());
        l.failed("bob", "1.2.3.4");
        l.failed("cy", "1.2.3.4");
        assert!(
            l.blocked("dee", "1.2.3.4").is_some(),
            "per address, for any name"
        );
        l.succeeded("ana", "1.2.3.4");
        assert!(l.blocked("ana", "9.9.9.9").is_none());
        // Attempts count before the password is checked: a burst gets no extra tries.
        let b = LoginLimiter::new(Duration::from_secs(60), 3, 100);
        let admitted = (0..10)
            .filter(|_| b.attempt("root", "5.5.5.5").is_ok())
            .count();
        assert_eq!(admitted, 3);
        b.succeeded("root", "5.5.5.5");
        assert!(b.attempt("root", "5.5.5.5").is_ok());
    }

    #[test]
    fn identifiers_are_masked_in_logged_queries() {
        assert_eq!(mask_identifiers("plate KX74821 seen"), "plate KX***21 seen");
        assert_eq!(
            mask_identifiers("title:\"P-1234567\""),
            "title:\"P-12***67\""
        );
        assert_eq!(mask_identifiers("border photos 2026"), "border photos 2026");
        assert_eq!(mask_identifiers("日本語ab12345"), "日本******45");
    }
}
