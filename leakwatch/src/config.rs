//! The config file: one table per role, every setting with a default, unknown keys refused
//! (a typo must not silently fall back to a default).

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub crawler: crawler::CrawlerConfig,
    pub matcher: matcher::MatcherConfig,
    pub indexer: indexer::IndexerConfig,
    pub bus: BusConfig,
    pub tor: crawler::TorConfig,
    pub health: crawler::HealthConfig,
}

/// The `[bus]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// A message delivered more often than this (its handler keeps failing) is dead-lettered.
    pub delivery_limit: u32,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig { delivery_limit: 5 }
    }
}

impl Config {
    /// Loads `path`, or the defaults when no file is given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Config> {
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
    }
}
