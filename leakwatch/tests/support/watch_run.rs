//! A `leakwatch run` watching continuously (no `--once`) for the tests that start, stop and
//! restart one: killed if the test fails, stopped with SIGTERM like an operator would.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakwatch");

/// A `leakwatch run` over the direct transport with the data dir's `cfg.toml`.
pub struct WatchRun(Option<Child>);

impl WatchRun {
    /// `leakwatch --data-dir DATA --config DATA/cfg.toml --log LOG run --transport direct
    /// --allow-private --json EXTRA…`.
    pub fn start(data: &Path, log: &str, extra: &[&str]) -> WatchRun {
        let child = Command::new(BIN)
            .arg("--data-dir")
            .arg(data)
            .arg("--config")
            .arg(data.join("cfg.toml"))
            .args(["--log", log, "run", "--transport", "direct"])
            .args(["--allow-private", "--json"])
            .args(extra)
            .env_remove("LEAKWATCH_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        WatchRun(Some(child))
    }

    /// SIGTERM, then the summary it prints and the last 30 lines of its log.
    pub async fn stop(mut self) -> (Value, String) {
        let child = self.0.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "leakwatch failed: {stderr}");
        let summary =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
        let lines: Vec<&str> = stderr.lines().collect();
        (summary, lines[lines.len().saturating_sub(30)..].join("\n"))
    }
}

impl Drop for WatchRun {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
