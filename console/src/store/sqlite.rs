//! The SQLite backend: one file in the data dir, several processes on one machine share it
//! through SQLite's own locking. Statements run on the blocking pool (a commit waits for
//! fsync), never on the async workers that serve requests.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::{Value as SqlValue, ValueRef};

use super::{Db, Migration, StoreError, Val};

pub struct SqliteDb {
    inner: Arc<Inner>,
}

struct Inner {
    path: String,
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteDb {
    pub fn open(path: &Path) -> Result<SqliteDb, StoreError> {
        let p = path.display().to_string();
        let err = |source| StoreError::Sqlite {
            path: p.clone(),
            source,
        };
        let conn = rusqlite::Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(err)?;
        Ok(SqliteDb {
            inner: Arc::new(Inner {
                path: p,
                conn: Mutex::new(conn),
            }),
        })
    }

    /// Runs `f` on the connection, on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        let path = inner.path.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut c = inner.conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c)
        })
        .await;
        let source = match joined {
            Ok(r) => return r.map_err(|source| StoreError::Sqlite { path, source }),
            Err(e) => rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        };
        Err(StoreError::Sqlite { path, source })
    }
}

fn bind(args: &[Val]) -> Vec<SqlValue> {
    args.iter()
        .map(|a| match a {
            Val::Text(s) => SqlValue::Text(s.clone()),
            Val::Int(i) => SqlValue::Integer(*i),
            Val::Null => SqlValue::Null,
        })
        .collect()
}

fn read(v: ValueRef<'_>) -> Val {
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        ValueRef::Real(f) => Val::Int(f as i64),
        ValueRef::Text(t) | ValueRef::Blob(t) => Val::Text(String::from_utf8_lossy(t).into()),
    }
}

#[async_trait]
impl Db for SqliteDb {
    async fn exec(&self, sql: &str, args: &[Val]) -> Result<u64, StoreError> {
        let (sql, args) = (sql.to_string(), bind(args));
        self.with(move |c| {
            c.prepare_cached(&sql)?
                .execute(rusqlite::params_from_iter(args))
                .map(|n| n as u64)
        })
        .await
    }

    async fn exec_many(&self, sql: &str, rows: &[Vec<Val>]) -> Result<u64, StoreError> {
        let sql = sql.to_string();
        let rows: Vec<Vec<SqlValue>> = rows.iter().map(|r| bind(r)).collect();
        self.with(move |c| {
            let tx = c.transaction()?;
            let mut n = 0;
            {
                let mut st = tx.prepare_cached(&sql)?;
                for r in rows {
                    n += st.execute(rusqlite::params_from_iter(r))? as u64;
                }
            }
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    async fn transaction(&self, steps: &[(&str, Vec<Val>)]) -> Result<Vec<u64>, StoreError> {
        let steps: Vec<(String, Vec<SqlValue>)> = steps
            .iter()
            .map(|(s, a)| (s.to_string(), bind(a)))
            .collect();
        self.with(move |c| {
            // IMMEDIATE: the write lock first, so what a step reads no other writer changes.
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut changed = Vec::with_capacity(steps.len());
            for (sql, args) in steps {
                let n = tx
                    .prepare_cached(&sql)?
                    .execute(rusqlite::params_from_iter(args))?;
                changed.push(n as u64);
            }
            tx.commit()?;
            Ok(changed)
        })
        .await
    }

    async fn rows(&self, sql: &str, args: &[Val]) -> Result<Vec<Vec<Val>>, StoreError> {
        let (sql, args) = (sql.to_string(), bind(args));
        self.with(move |c| {
            let mut st = c.prepare_cached(&sql)?;
            let n = st.column_count();
            let mut rows = st.query(rusqlite::params_from_iter(args))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(
                    (0..n)
                        .map(|i| r.get_ref(i).map(read))
                        .collect::<Result<_, _>>()?,
                );
            }
            Ok(out)
        })
        .await
    }

    async fn migrate(&self, steps: &'static [Migration]) -> Result<(), StoreError> {
        self.with(move |c| {
            // IMMEDIATE takes the write lock first: a second process waits, then sees the
            // steps the first one recorded.
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS console_migrations
                 (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
            )?;
            for m in steps {
                let done: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM console_migrations WHERE version = ?1",
                    [m.version],
                    |r| r.get(0),
                )?;
                if done == 0 {
                    tx.execute_batch(&m.sql.replace("{serial}", "INTEGER PRIMARY KEY"))?;
                    tx.execute(
                        "INSERT INTO console_migrations (version, applied_at) VALUES (?1, ?2)",
                        rusqlite::params![m.version, schema::now_rfc3339()],
                    )?;
                }
            }
            tx.commit()
        })
        .await
    }
}
