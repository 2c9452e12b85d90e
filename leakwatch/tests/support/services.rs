//! The machine's real services for the tests that need them: a RabbitMQ vhost of a test's
//! own and a PostgreSQL database of its own, both removed when dropped. The broker is
//! `LEAKWATCH_TEST_AMQP_URL` (default the local one) and PostgreSQL the one on
//! 127.0.0.1:5432 with trust auth; `scripts/test.sh` starts either when none answers.

use std::process::Command;

/// The broker's URL without a vhost.
pub fn broker_base() -> String {
    std::env::var("LEAKWATCH_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672".into())
}

/// Runs `rabbitmqctl ARGS`; fails the test when it fails.
pub fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A vhost of its own, deleted afterwards.
pub struct Vhost {
    pub name: String,
    pub url: String,
}

impl Vhost {
    pub fn new(tag: &str) -> Vhost {
        let name = format!("leakwatch-test-{tag}-{}", std::process::id());
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &name])
            .output();
        rabbitmqctl(&["add_vhost", &name]);
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
        let url = format!("{}/{}", broker_base(), name);
        Vhost { name, url }
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.name])
            .output();
    }
}

/// A database of its own on the machine's PostgreSQL, dropped at the end.
pub struct PgDb {
    pub name: String,
    pub url: String,
}

impl PgDb {
    pub fn create(tag: &str) -> PgDb {
        let name = format!("leakwatch_{tag}_{}", std::process::id());
        psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        psql(&format!("CREATE DATABASE {name}"));
        PgDb {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        }
    }

    /// Takes the database away: no new connection is admitted and every open one ends (a
    /// database down for a restart).
    pub fn go_down(&self) {
        psql(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
            self.name
        ));
        psql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            self.name
        ));
    }

    /// Admits connections again after [`PgDb::go_down`].
    pub fn come_back(&self) {
        psql(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true",
            self.name
        ));
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Runs one SQL statement as `postgres`; fails the test when it fails.
pub fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            sql,
        ])
        .output()
        .expect("psql (PostgreSQL on 127.0.0.1:5432; scripts/test.sh starts one)");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
