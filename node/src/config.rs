//! The config file: one table per role, every setting with a default, unknown keys refused
//! (a typo must not silently fall back to a default).
//!
//! A new role adds its own table here (its settings type lives in its crate, as
//! `crawler::CrawlerConfig` does), with `#[serde(default)]` so existing files stay valid.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error(transparent)]
    Parse(#[from] toml::de::Error),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub crawler: crawler::CrawlerConfig,
    pub matcher: matcher::MatcherConfig,
    pub indexer: indexer::IndexerConfig,
    pub bus: BusConfig,
    pub tor: crawler::TorConfig,
    pub health: crawler::HealthConfig,
    pub recrawl: crawler::RecrawlConfig,
    /// Paste sites watched through their listings (`[[pastes]]`).
    pub pastes: Vec<crawler::pastes::PasteSite>,
    /// What is kept to back each alert, and for how long.
    pub evidence: evidence::EvidenceConfig,
}

/// The `[bus]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// A message delivered more often than this (its handler keeps failing) is dead-lettered.
    pub delivery_limit: u32,
    /// Embedded bus: bytes each bulk queue (images, pages, verdicts) may hold before its
    /// publishers wait.
    pub queue_bytes: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            delivery_limit: 5,
            queue_bytes: bus::embedded::DEFAULT_QUEUE_BYTES,
        }
    }
}

impl Config {
    /// Loads `path`, or the defaults when no file is given.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Invalid {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Ok(toml::from_str(text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_partial_tables_and_unknown_keys() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.crawler.max_redirects, 5);
        let c = Config::parse("[crawler]\nworkers = 3\n[matcher]\nthreshold = 10\n").unwrap();
        assert_eq!((c.crawler.workers, c.matcher.threshold), (3, 10));
        assert_eq!(
            c.crawler.max_depth,
            crawler::CrawlerConfig::default().max_depth
        );
        let e = format!(
            "{:#}",
            Config::parse("[crawler]\nwrokers = 3\n").unwrap_err()
        );
        assert!(e.contains("wrokers"), "{e}");
        let c = Config::parse("[tor]\nbootstrap_timeout_secs = 30\n[health]\ndown_after = 2\n")
            .unwrap();
        assert_eq!((c.tor.bootstrap_timeout_secs, c.health.down_after), (30, 2));
        assert_eq!(c.health.retries, crawler::HealthConfig::default().retries);
        assert!(Config::parse("[health]\ndownafter = 2\n").is_err());
        let e = format!("{:#}", Config::parse("[crawlr]\n").unwrap_err());
        assert!(e.contains("crawlr"), "{e}");
        let c = Config::parse("[evidence]\nretention_days = 7\nkey_file = \"/run/k\"\n").unwrap();
        assert_eq!(c.evidence.retention_days, 7);
        assert_eq!(c.evidence.max_file_mib, 64);
        assert!(Config::parse("[evidence]\nretention = 7\n").is_err());
    }
}
