//! The roles a leakwatch process can run, and the set one process runs.
//!
//! A role is a name on the command line (`--roles crawler,matcher`), a start function in
//! [`crate::roles`] and a readiness flag. Adding one (a console, a metrics exporter) is one
//! variant here and one arm in [`crate::roles::start`].

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// URL dedupe, scope and depth rules; turns discoveries into crawl requests.
    Frontier,
    /// Fetching and extraction over the transport.
    Crawler,
    /// Image and watchlist matching; raises alerts.
    Matcher,
    /// The single writer of the index and the alert store.
    Indexer,
    /// The analysts' web console (never part of `all`: it listens on a port).
    Console,
}

impl Role {
    /// Every role, in start order: consumers of a queue before its producers, so the first
    /// message published finds its consumer.
    pub const ALL: [Role; 4] = [Role::Indexer, Role::Matcher, Role::Crawler, Role::Frontier];

    /// Every role a name can ask for, in start order: the pipeline's, then the console.
    pub const NAMED: [Role; 5] = [
        Role::Indexer,
        Role::Matcher,
        Role::Crawler,
        Role::Frontier,
        Role::Console,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Frontier => "frontier",
            Role::Crawler => "crawler",
            Role::Matcher => "matcher",
            Role::Indexer => "indexer",
            Role::Console => "console",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected {expected}", expected = Role::NAMED.map(Role::name).join(", "))]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::NAMED
            .into_iter()
            .find(|r| r.name() == s.trim())
            .ok_or_else(|| UnknownRole(s.trim().to_string()))
    }
}

/// The roles one process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles(BTreeSet<Role>);

impl Roles {
    pub fn all() -> Roles {
        Roles(Role::ALL.into_iter().collect())
    }

    /// Parses role names; `all` stands for every role, and no name at all means every role.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Roles, UnknownRole> {
        let mut set = BTreeSet::new();
        for n in names {
            match n.as_ref().trim() {
                "all" => set.extend(Role::ALL),
                other => {
                    set.insert(other.parse()?);
                }
            }
        }
        Ok(if set.is_empty() {
            Roles::all()
        } else {
            Roles(set)
        })
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    pub fn is_all(&self) -> bool {
        Role::ALL.iter().all(|r| self.0.contains(r))
    }

    /// The roles in start order (see [`Role::NAMED`]).
    pub fn in_start_order(&self) -> impl Iterator<Item = Role> + '_ {
        Role::NAMED.into_iter().filter(|r| self.0.contains(r))
    }
}

impl FromIterator<Role> for Roles {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Roles {
        Roles(iter.into_iter().collect())
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.in_start_order().map(Role::name).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sets_parse() {
        for r in Role::NAMED {
            assert_eq!(r.to_string().parse::<Role>(), Ok(r));
        }
        // The console is asked for by name, never by `all`.
        assert!(!Roles::parse(&["all"]).unwrap().contains(Role::Console));
        let r = Roles::parse(&["all", "console"]).unwrap();
        assert!(r.is_all() && r.contains(Role::Console));
        assert_eq!(r.in_start_order().last(), Some(Role::Console));
        assert!(Roles::parse::<&str>(&[]).unwrap().is_all());
        assert!(Roles::parse(&["all"]).unwrap().is_all());
        let r = Roles::parse(&["crawler", " matcher"]).unwrap();
        assert!(r.contains(Role::Crawler) && r.contains(Role::Matcher));
        assert!(!r.contains(Role::Indexer) && !r.is_all());
        assert_eq!(r.to_string(), "matcher,crawler");
        let e = Roles::parse(&["crawler", "indexr"]).unwrap_err();
        assert_eq!(e, UnknownRole("indexr".into()));
        assert!(e.to_string().contains("indexer"), "{e}");
    }
}
