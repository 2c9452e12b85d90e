//! The frontier's durable state: what it has requested, which sites are seeds, and how much
//! of each site's budget is spent, kept so that a frontier killed with `kill -9` comes back
//! knowing all of it.
//!
//! Two backends behind [`FrontierStore`]: SQLite in the data dir (the default, one file, no
//! server) and PostgreSQL (`--state-url postgres://…`), which several frontier processes on
//! several machines share.
//!
//! Requests go out through an outbox, so that none is lost between "remembered as requested"
//! and "published":
//! 1. [`FrontierStore::claim`] records a batch of admitted requests in one transaction: each
//!    URL digest not yet seen is inserted into `frontier_seen` and its encoded request into
//!    `frontier_pending`; a digest already seen is claimed again only while it is still
//!    pending (a publish that failed is retried by the redelivered report). Only what was
//!    claimed is published, so two frontiers sharing a store do not both request a URL.
//! 2. After the broker confirmed the publishes, [`FrontierStore::done`] deletes the pending
//!    rows.
//! 3. A frontier that starts republishes every pending row ([`FrontierStore::pending`]): what
//!    a crash left between 1 and 2 is published again (at worst twice, never zero times).
//!
//! Site counters are kept per site and added to on every claim; a process warms its
//! in-memory bounds from them when it starts ([`FrontierStore::load`]).

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::schedule::ScheduleStore;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("frontier store (SQLite {path}): {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("frontier store (PostgreSQL): {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error(
        "unsupported state URL {0:?}: expected postgres://… (or none for SQLite in the data dir)"
    )]
    BadUrl(String),
}

/// A request the frontier admitted, ready to be claimed and published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub digest: u128,
    /// The encoded crawl request.
    pub request: Vec<u8>,
    /// The site's counter this request spends (`page` or `image` budget).
    pub site: String,
    pub image: bool,
    /// The source site, when this request brings a new site into the crawl.
    pub introduced_by: Option<String>,
}

/// One site's remembered state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteRow {
    pub site: String,
    pub seed: bool,
    pub pages: u64,
    pub images: u64,
    /// Sites this site brought into the crawl.
    pub introduced: u64,
}

/// Everything a starting frontier warms its memory with.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub seen: Vec<u128>,
    pub sites: Vec<SiteRow>,
}

/// Durable frontier state. See the module docs for the protocol; the recrawl schedule's part
/// is in [`crate::schedule`].
#[async_trait]
pub trait FrontierStore: ScheduleStore + Send + Sync {
    async fn load(&self) -> Result<Snapshot, StoreError>;
    /// Marks sites as seeds (in scope from now on, also after a restart without `--seed`).
    async fn add_seed_sites(&self, sites: &[String]) -> Result<(), StoreError>;
    /// Which of `sites` are seeds (another frontier may have added them since this one
    /// started).
    async fn seeds_among(&self, sites: &[String]) -> Result<Vec<String>, StoreError>;
    /// Records `batch`; returns the indexes of the claims this caller must publish.
    async fn claim(&self, batch: &[Claim]) -> Result<Vec<usize>, StoreError>;
    /// The claims with these digests were published.
    async fn done(&self, digests: &[u128]) -> Result<(), StoreError>;
    /// Encoded requests claimed and never confirmed published.
    async fn pending(&self) -> Result<Vec<(u128, Vec<u8>)>, StoreError>;
    /// Whether the store answers now (readiness asks every few seconds).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Opens the store `url` names, or SQLite at `data_dir/frontier.sqlite` without one.
pub async fn open(
    url: Option<&str>,
    data_dir: &Path,
) -> Result<Box<dyn FrontierStore>, StoreError> {
    match url {
        None => Ok(Box::new(SqliteStore::open(&data_dir.join(SQLITE_FILE))?)),
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            Ok(Box::new(PgStore::connect(u).await?))
        }
        Some(u) => Err(StoreError::BadUrl(u.to_string())),
    }
}

/// The SQLite file in the data dir.
pub const SQLITE_FILE: &str = "frontier.sqlite";

pub(crate) fn key(d: u128) -> Vec<u8> {
    d.to_be_bytes().to_vec()
}

pub(crate) fn digest_of(b: &[u8]) -> u128 {
    let mut a = [0u8; 16];
    let n = b.len().min(16);
    a[..n].copy_from_slice(&b[..n]);
    u128::from_be_bytes(a)
}

const SQLITE_SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS frontier_seen (digest BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS frontier_pending (digest BLOB PRIMARY KEY, request BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS frontier_sites (
    site TEXT PRIMARY KEY,
    seed INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 0,
    images INTEGER NOT NULL DEFAULT 0,
    introduced INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS frontier_schedule (
    digest BLOB PRIMARY KEY,
    url TEXT NOT NULL,
    site TEXT NOT NULL,
    depth INTEGER NOT NULL,
    interval_ms INTEGER NOT NULL,
    due_ms INTEGER NOT NULL,
    entry INTEGER NOT NULL DEFAULT 0,
    quiet INTEGER NOT NULL DEFAULT 0,
    etag TEXT,
    modified TEXT,
    content TEXT,
    links TEXT,
    inline TEXT,
    head TEXT,
    listed_ms INTEGER NOT NULL,
    fetches INTEGER NOT NULL DEFAULT 0,
    changes INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS frontier_schedule_due ON frontier_schedule (due_ms);
CREATE TABLE IF NOT EXISTS frontier_mirrors (
    site TEXT NOT NULL,
    mirror TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    PRIMARY KEY (site, mirror)
);
CREATE TABLE IF NOT EXISTS frontier_liveness (
    site TEXT PRIMARY KEY,
    up INTEGER,
    answered INTEGER NOT NULL DEFAULT 0,
    unanswered INTEGER NOT NULL DEFAULT 0,
    last_up_ms INTEGER,
    last_down_ms INTEGER
);
";

/// SQLite in one file; several processes on one machine may share it (SQLite's own locking).
pub struct SqliteStore {
    pub(crate) path: String,
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let p = path.display().to_string();
        let err = |source| StoreError::Sqlite {
            path: p.clone(),
            source,
        };
        let conn = rusqlite::Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(err)?;
        conn.execute_batch(SQLITE_SCHEMA).map_err(err)?;
        Ok(SqliteStore {
            path: p,
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut c).map_err(|source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }
}

#[async_trait]
impl FrontierStore for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(())))
    }

    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.with(|c| {
            let mut seen = Vec::new();
            let mut q = c.prepare("SELECT digest FROM frontier_seen")?;
            let mut rows = q.query([])?;
            while let Some(r) = rows.next()? {
                seen.push(digest_of(&r.get::<_, Vec<u8>>(0)?));
            }
            let mut q =
                c.prepare("SELECT site, seed, pages, images, introduced FROM frontier_sites")?;
            let sites = q
                .query_map([], |r| {
                    Ok(SiteRow {
                        site: r.get(0)?,
                        seed: r.get::<_, i64>(1)? != 0,
                        pages: r.get::<_, i64>(2)? as u64,
                        images: r.get::<_, i64>(3)? as u64,
                        introduced: r.get::<_, i64>(4)? as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Snapshot { seen, sites })
        })
    }

    async fn add_seed_sites(&self, sites: &[String]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for s in sites {
                tx.execute(
                    "INSERT INTO frontier_sites (site, seed) VALUES (?1, 1)
                     ON CONFLICT (site) DO UPDATE SET seed = 1",
                    [s],
                )?;
            }
            tx.commit()
        })
    }

    async fn seeds_among(&self, sites: &[String]) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut q = c.prepare("SELECT 1 FROM frontier_sites WHERE site = ?1 AND seed = 1")?;
            let mut found = Vec::new();
            for s in sites {
                if q.exists([s])? {
                    found.push(s.clone());
                }
            }
            Ok(found)
        })
    }

    async fn claim(&self, batch: &[Claim]) -> Result<Vec<usize>, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut claimed = Vec::new();
            for (i, cl) in batch.iter().enumerate() {
                let k = key(cl.digest);
                let new = tx.execute(
                    "INSERT INTO frontier_seen (digest) VALUES (?1) ON CONFLICT DO NOTHING",
                    [&k],
                )? == 1;
                if new {
                    tx.execute(
                        "INSERT INTO frontier_pending (digest, request) VALUES (?1, ?2)",
                        rusqlite::params![k, cl.request],
                    )?;
                    sqlite_spend(&tx, cl)?;
                    claimed.push(i);
                } else {
                    let pending: i64 = tx.query_row(
                        "SELECT count(*) FROM frontier_pending WHERE digest = ?1",
                        [&k],
                        |r| r.get(0),
                    )?;
                    if pending > 0 {
                        claimed.push(i);
                    }
                }
            }
            tx.commit()?;
            Ok(claimed)
        })
    }

    async fn done(&self, digests: &[u128]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for d in digests {
                tx.execute("DELETE FROM frontier_pending WHERE digest = ?1", [key(*d)])?;
            }
            tx.commit()
        })
    }

    async fn pending(&self) -> Result<Vec<(u128, Vec<u8>)>, StoreError> {
        self.with(|c| {
            let mut q = c.prepare("SELECT digest, request FROM frontier_pending")?;
            let rows = q.query_map([], |r| {
                Ok((digest_of(&r.get::<_, Vec<u8>>(0)?), r.get::<_, Vec<u8>>(1)?))
            })?;
            rows.collect()
        })
    }
}

fn sqlite_spend(tx: &rusqlite::Transaction<'_>, cl: &Claim) -> rusqlite::Result<()> {
    let column = if cl.image { "images" } else { "pages" };
    tx.execute(
        &format!(
            "INSERT INTO frontier_sites (site, {column}) VALUES (?1, 1)
             ON CONFLICT (site) DO UPDATE SET {column} = {column} + 1"
        ),
        [&cl.site],
    )?;
    if let Some(src) = &cl.introduced_by {
        tx.execute(
            "INSERT INTO frontier_sites (site, introduced) VALUES (?1, 1)
             ON CONFLICT (site) DO UPDATE SET introduced = introduced + 1",
            [src],
        )?;
    }
    Ok(())
}

const PG_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS frontier_seen (digest BYTEA PRIMARY KEY);
CREATE TABLE IF NOT EXISTS frontier_pending (digest BYTEA PRIMARY KEY, request BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS frontier_sites (
    site TEXT PRIMARY KEY,
    seed BOOLEAN NOT NULL DEFAULT FALSE,
    pages BIGINT NOT NULL DEFAULT 0,
    images BIGINT NOT NULL DEFAULT 0,
    introduced BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS frontier_schedule (
    digest BYTEA PRIMARY KEY,
    url TEXT NOT NULL,
    site TEXT NOT NULL,
    depth BIGINT NOT NULL,
    interval_ms BIGINT NOT NULL,
    due_ms BIGINT NOT NULL,
    entry BOOLEAN NOT NULL DEFAULT FALSE,
    quiet BIGINT NOT NULL DEFAULT 0,
    etag TEXT,
    modified TEXT,
    content TEXT,
    links TEXT,
    inline TEXT,
    head TEXT,
    listed_ms BIGINT NOT NULL,
    fetches BIGINT NOT NULL DEFAULT 0,
    changes BIGINT NOT NULL DEFAULT 0,
    failures BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS frontier_schedule_due ON frontier_schedule (due_ms);
CREATE TABLE IF NOT EXISTS frontier_mirrors (
    site TEXT NOT NULL,
    mirror TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    PRIMARY KEY (site, mirror)
);
CREATE TABLE IF NOT EXISTS frontier_liveness (
    site TEXT PRIMARY KEY,
    up BOOLEAN,
    answered BIGINT NOT NULL DEFAULT 0,
    unanswered BIGINT NOT NULL DEFAULT 0,
    last_up_ms BIGINT,
    last_down_ms BIGINT
);
";

/// PostgreSQL, shared by every frontier process that is given the same URL.
pub struct PgStore {
    url: String,
    client: tokio::sync::Mutex<tokio_postgres::Client>,
}

/// One connection to `url`, driven on its own task.
async fn pg_connect(url: &str) -> Result<tokio_postgres::Client, StoreError> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::error!(error = %e, "frontier store connection lost");
        }
    });
    Ok(client)
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let client = pg_connect(url).await?;
        // Two processes creating the tables at once would race on the catalog ("type
        // already exists"): a transaction-scoped lock holds until the tables are committed.
        client
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock(7412); {PG_SCHEMA} COMMIT;"
            ))
            .await?;
        Ok(PgStore {
            url: url.to_string(),
            client: tokio::sync::Mutex::new(client),
        })
    }

    /// The connection, opened again first when the last one was lost (the database
    /// restarted): the statement that saw it go failed, the next ones work.
    pub(crate) async fn client(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, tokio_postgres::Client>, StoreError> {
        let mut c = self.client.lock().await;
        if c.is_closed() {
            *c = pg_connect(&self.url).await?;
            tracing::info!("frontier store reconnected");
        }
        Ok(c)
    }
}

#[async_trait]
impl FrontierStore for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn load(&self) -> Result<Snapshot, StoreError> {
        let c = self.client().await?;
        let seen = c
            .query("SELECT digest FROM frontier_seen", &[])
            .await?
            .iter()
            .map(|r| digest_of(r.get::<_, &[u8]>(0)))
            .collect();
        let sites = c
            .query(
                "SELECT site, seed, pages, images, introduced FROM frontier_sites",
                &[],
            )
            .await?
            .iter()
            .map(|r| SiteRow {
                site: r.get(0),
                seed: r.get(1),
                pages: r.get::<_, i64>(2) as u64,
                images: r.get::<_, i64>(3) as u64,
                introduced: r.get::<_, i64>(4) as u64,
            })
            .collect();
        Ok(Snapshot { seen, sites })
    }

    async fn add_seed_sites(&self, sites: &[String]) -> Result<(), StoreError> {
        let c = self.client().await?;
        for s in sites {
            c.execute(
                "INSERT INTO frontier_sites (site, seed) VALUES ($1, TRUE)
                 ON CONFLICT (site) DO UPDATE SET seed = TRUE",
                &[s],
            )
            .await?;
        }
        Ok(())
    }

    async fn seeds_among(&self, sites: &[String]) -> Result<Vec<String>, StoreError> {
        let c = self.client().await?;
        Ok(c.query(
            "SELECT site FROM frontier_sites WHERE seed AND site = ANY($1)",
            &[&sites],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    async fn claim(&self, batch: &[Claim]) -> Result<Vec<usize>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut claimed = Vec::new();
        for (i, cl) in batch.iter().enumerate() {
            let k = key(cl.digest);
            let new = tx
                .execute(
                    "INSERT INTO frontier_seen (digest) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&k],
                )
                .await?
                == 1;
            if new {
                tx.execute(
                    "INSERT INTO frontier_pending (digest, request) VALUES ($1, $2)",
                    &[&k, &cl.request],
                )
                .await?;
                pg_spend(&tx, cl).await?;
                claimed.push(i);
            } else {
                let pending = tx
                    .query_opt("SELECT 1 FROM frontier_pending WHERE digest = $1", &[&k])
                    .await?;
                if pending.is_some() {
                    claimed.push(i);
                }
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn done(&self, digests: &[u128]) -> Result<(), StoreError> {
        let keys: Vec<Vec<u8>> = digests.iter().map(|d| key(*d)).collect();
        let c = self.client().await?;
        c.execute(
            "DELETE FROM frontier_pending WHERE digest = ANY($1)",
            &[&keys],
        )
        .await?;
        Ok(())
    }

    async fn pending(&self) -> Result<Vec<(u128, Vec<u8>)>, StoreError> {
        let c = self.client().await?;
        Ok(c.query("SELECT digest, request FROM frontier_pending", &[])
            .await?
            .iter()
            .map(|r| (digest_of(r.get::<_, &[u8]>(0)), r.get::<_, Vec<u8>>(1)))
            .collect())
    }
}

async fn pg_spend(tx: &tokio_postgres::Transaction<'_>, cl: &Claim) -> Result<(), StoreError> {
    let column = if cl.image { "images" } else { "pages" };
    tx.execute(
        &format!(
            "INSERT INTO frontier_sites (site, {column}) VALUES ($1, 1)
             ON CONFLICT (site) DO UPDATE SET {column} = frontier_sites.{column} + 1"
        ),
        &[&cl.site],
    )
    .await?;
    if let Some(src) = &cl.introduced_by {
        tx.execute(
            "INSERT INTO frontier_sites (site, introduced) VALUES ($1, 1)
             ON CONFLICT (site) DO UPDATE SET introduced = frontier_sites.introduced + 1",
            &[src],
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh PostgreSQL database on the test machine's server (127.0.0.1:5432, trust auth),
    /// dropped when the guard goes.
    pub struct PgDb {
        pub url: String,
        name: String,
    }

    impl PgDb {
        pub async fn create() -> PgDb {
            let admin = "postgres://postgres@127.0.0.1:5432/postgres";
            let (c, conn) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
                .await
                .expect("PostgreSQL on 127.0.0.1:5432 (scripts/test.sh starts one)");
            tokio::spawn(conn);
            let name = format!(
                "leakwatch_t{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            );
            c.batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            PgDb {
                url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
                name,
            }
        }
    }

    impl Drop for PgDb {
        fn drop(&mut self) {
            let _ = std::process::Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"])
                .arg(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .output();
        }
    }

    fn claim(d: u128, site: &str, image: bool, by: Option<&str>) -> Claim {
        Claim {
            digest: d,
            request: format!("req-{d}").into_bytes(),
            site: site.into(),
            image,
            introduced_by: by.map(str::to_string),
        }
    }

    /// The protocol, the same on every backend; `reopen` gives a second handle on the same
    /// state (another process, or the same one after a restart).
    async fn exercise(a: Box<dyn FrontierStore>, b: Box<dyn FrontierStore>) {
        a.add_seed_sites(&["seed.test".into()]).await.unwrap();
        // A seed added by one frontier is a seed to the other.
        let asked = ["other.test".to_string(), "seed.test".to_string()];
        assert_eq!(b.seeds_among(&asked).await.unwrap(), ["seed.test"]);
        let batch = [
            claim(1, "seed.test", false, None),
            claim(2, "new.onion", false, Some("seed.test")),
            claim(3, "cdn.test", true, None),
        ];
        assert_eq!(a.claim(&batch).await.unwrap(), [0, 1, 2]);
        // Claimed but not confirmed: another frontier may claim it again (the redelivered
        // report), and a restart sees it pending.
        assert_eq!(b.claim(&batch[..1]).await.unwrap(), [0]);
        a.done(&[1, 3]).await.unwrap();
        // Published: nobody claims it again.
        assert!(b.claim(&batch).await.unwrap() == [1]);
        let pending = b.pending().await.unwrap();
        assert_eq!(pending, [(2, b"req-2".to_vec())]);
        b.done(&[2]).await.unwrap();
        assert!(a.pending().await.unwrap().is_empty());
        let snap = b.load().await.unwrap();
        let mut seen = snap.seen.clone();
        seen.sort();
        assert_eq!(seen, [1, 2, 3]);
        let site = |s: &str| snap.sites.iter().find(|r| r.site == s).cloned().unwrap();
        assert_eq!(
            site("seed.test"),
            SiteRow {
                site: "seed.test".into(),
                seed: true,
                pages: 1,
                images: 0,
                introduced: 1
            }
        );
        assert_eq!(
            (site("new.onion").pages, site("new.onion").seed),
            (1, false)
        );
        assert_eq!(site("cdn.test").images, 1);
        // Large digests survive the round trip.
        let big = u128::MAX - 5;
        assert_eq!(a.claim(&[claim(big, "x", false, None)]).await.unwrap(), [0]);
        assert!(b.load().await.unwrap().seen.contains(&big));
    }

    #[tokio::test]
    async fn sqlite_keeps_the_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SQLITE_FILE);
        let a = Box::new(SqliteStore::open(&path).unwrap());
        let b = Box::new(SqliteStore::open(&path).unwrap());
        exercise(a, b).await;
    }

    #[tokio::test]
    async fn postgres_keeps_the_protocol() {
        let db = PgDb::create().await;
        let a = open(Some(&db.url), Path::new("/nonexistent"))
            .await
            .unwrap();
        let b = open(Some(&db.url), Path::new("/nonexistent"))
            .await
            .unwrap();
        exercise(a, b).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn frontiers_starting_together_on_a_fresh_database_all_start() {
        let db = PgDb::create().await;
        let starts: Vec<_> = (0..8)
            .map(|_| {
                let url = db.url.clone();
                tokio::spawn(async move { PgStore::connect(&url).await.map(|_| ()) })
            })
            .collect();
        for s in starts {
            s.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn other_urls_are_refused() {
        let e = open(Some("mysql://x/y"), Path::new("/tmp"))
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("postgres://"), "{e}");
    }
}
