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
    #[error("the environment variable {0} is not valid UTF-8")]
    NotUtf8(String),
    #[error("invalid setting from the environment ({vars}): {source}")]
    Env {
        /// The variables that were applied.
        vars: String,
        #[source]
        source: toml::de::Error,
    },
}

/// Tables of the config file a `LEAKWATCH_<TABLE>_<KEY>` variable may set.
pub const ENV_TABLES: &[&str] = &[
    "crawler", "matcher", "indexer", "bus", "tor", "health", "recrawl", "evidence", "metrics",
    "console",
];

/// `LEAKWATCH_*` variables that are not settings of a table (secrets and command-line
/// options read elsewhere), though their names start with a table's.
pub const NOT_SETTINGS: &[&str] = &[
    "LEAKWATCH_EVIDENCE_KEY",
    "LEAKWATCH_EVIDENCE_KEY_FILE",
    "LEAKWATCH_METRICS_LISTEN",
];

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
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics: crate::metrics::MetricsConfig,
    /// Where the console role listens.
    pub console: crate::console::ConsoleConfig,
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
    /// RabbitMQ: how long a process waits for the broker (retrying, not ready meanwhile)
    /// before it gives up; 0 fails at once. Pods that may start before the broker set it.
    pub connect_wait_secs: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            delivery_limit: 5,
            queue_bytes: bus::embedded::DEFAULT_QUEUE_BYTES,
            connect_wait_secs: 0,
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

    /// Loads `path` (or the defaults) with `LEAKWATCH_<TABLE>_<KEY>` variables from `env`
    /// on top: `LEAKWATCH_CRAWLER_WORKERS=32` sets `[crawler] workers`. A value is read as
    /// TOML (numbers, booleans, arrays, inline tables), or else as a string. A variable whose
    /// table is not one of [`ENV_TABLES`] is not a setting and is ignored, so is an empty one;
    /// an unknown key in a known table is an error naming the variables. See [`env_vars`].
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let base = Config::load(path)?;
        let mut vars = Vec::new();
        let mut doc = toml::Table::try_from(&base).map_err(|e| ConfigError::Env {
            vars: String::new(),
            source: serde::de::Error::custom(e.to_string()),
        })?;
        for (name, raw) in env {
            let Some((table, key)) = setting_of(&name) else {
                continue;
            };
            if raw.is_empty() {
                // An empty variable is an unset one (an optional value left blank).
                continue;
            }
            let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(raw.clone()));
            if let Some(toml::Value::Table(t)) = doc.get_mut(table) {
                t.insert(key, value);
            } else {
                let mut t = toml::Table::new();
                t.insert(key, value);
                doc.insert(table.to_string(), toml::Value::Table(t));
            }
            vars.push(name);
        }
        if vars.is_empty() {
            return Ok(base);
        }
        Config::deserialize(doc).map_err(|source| ConfigError::Env {
            vars: vars.join(", "),
            source,
        })
    }
}

/// The process's `LEAKWATCH_*` variables; one that is not UTF-8 is an error naming it (any
/// other variable is none of ours and is not read).
pub fn env_vars() -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|n| n.starts_with("LEAKWATCH_")) else {
            continue;
        };
        let value = value
            .into_string()
            .map_err(|_| ConfigError::NotUtf8(name.to_string()))?;
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// The table and key a `LEAKWATCH_<TABLE>_<KEY>` variable sets, if it is a setting.
fn setting_of(name: &str) -> Option<(&'static str, String)> {
    if NOT_SETTINGS.contains(&name) {
        return None;
    }
    let rest = name.strip_prefix("LEAKWATCH_")?.to_ascii_lowercase();
    let (table, key) = rest.split_once('_')?;
    let table = ENV_TABLES.iter().find(|t| **t == table)?;
    (!key.is_empty()).then(|| (*table, key.to_string()))
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

    #[test]
    fn settings_come_from_the_environment_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[crawler]\nworkers = 3\nmax_depth = 2\n").unwrap();
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let c = Config::load_with_env(
            Some(&file),
            env(&[
                ("LEAKWATCH_CRAWLER_WORKERS", "32"),
                ("LEAKWATCH_CRAWLER_FOLLOW", "seeds"),
                ("LEAKWATCH_METRICS_LISTEN", "0.0.0.0:9100"),
                ("LEAKWATCH_EVIDENCE_RETENTION_DAYS", "30"),
                (
                    "LEAKWATCH_MATCHER_DECODE",
                    "{ max_dimension = 4096, max_alloc_bytes = 1000 }",
                ),
                ("LEAKWATCH_TOR_BOOTSTRAP_TIMEOUT_SECS", "60"),
                // Not settings: secrets, options and other programs' variables.
                ("LEAKWATCH_EVIDENCE_KEY", "00"),
                ("LEAKWATCH_DATA_DIR", "/data"),
                ("LEAKWATCH_WATCHLIST_KEY_FILE", "/k"),
                ("LEAKWATCH_EVIDENCE_KEY_FILE", "/run/secrets/k"),
                ("LEAKWATCH_CRAWLER_MAX_DEPTH", ""),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!((c.crawler.workers, c.crawler.max_depth), (32, 2));
        // `--metrics-listen` reads that variable itself.
        assert_eq!(c.metrics.listen, None);
        assert_eq!(c.evidence.retention_days, 30);
        assert_eq!(
            c.evidence.key_file, None,
            "a key variable read as a setting"
        );
        assert_eq!(c.tor.bootstrap_timeout_secs, 60);
        assert_eq!(serde_json::to_value(c.crawler.follow).unwrap(), "seeds");
        let e = Config::load_with_env(None, env(&[("LEAKWATCH_CRAWLER_WROKERS", "3")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("LEAKWATCH_CRAWLER_WROKERS") && e.contains("wrokers"),
            "{e}"
        );
        let e = Config::load_with_env(None, env(&[("LEAKWATCH_CRAWLER_WORKERS", "many")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("LEAKWATCH_CRAWLER_WORKERS"), "{e}");
    }
}
