//! The PostgreSQL backend, shared by every console and indexer given the same URL.

use async_trait::async_trait;
use tokio_postgres::types::{ToSql, Type};

use super::{Db, Migration, StoreError, Val};

/// One connection. Statements of concurrent requests take turns on it, so a batch's
/// transaction never carries another request's statement (a transaction dropped halfway is
/// rolled back by `tokio_postgres`).
pub struct PgDb {
    url: String,
    client: tokio::sync::Mutex<tokio_postgres::Client>,
}

/// One connection to `url`, driven on its own task.
async fn pg_connect(url: &str) -> Result<tokio_postgres::Client, StoreError> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::error!(error = %e, "console state connection lost");
        }
    });
    Ok(client)
}

impl PgDb {
    pub async fn connect(url: &str) -> Result<PgDb, StoreError> {
        Ok(PgDb {
            url: url.to_string(),
            client: tokio::sync::Mutex::new(pg_connect(url).await?),
        })
    }

    /// The connection, opened again first when the last one was lost (the database
    /// restarted): the statement that saw it go failed, the next ones work.
    async fn client(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, tokio_postgres::Client>, StoreError> {
        let mut c = self.client.lock().await;
        if c.is_closed() {
            *c = pg_connect(&self.url).await?;
            tracing::info!("console state reconnected");
        }
        Ok(c)
    }
}

/// Owned parameters in the shapes `tokio_postgres` binds.
enum Param {
    Text(Option<String>),
    Int(i64),
}

fn params(args: &[Val]) -> Vec<Param> {
    args.iter()
        .map(|a| match a {
            Val::Text(s) => Param::Text(Some(s.clone())),
            Val::Int(i) => Param::Int(*i),
            Val::Null => Param::Text(None),
        })
        .collect()
}

fn refs(p: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    p.iter()
        .map(|p| match p {
            Param::Text(s) => s as &(dyn ToSql + Sync),
            Param::Int(i) => i as &(dyn ToSql + Sync),
        })
        .collect()
}

fn read(row: &tokio_postgres::Row, i: usize) -> Result<Val, StoreError> {
    let t = row.columns()[i].type_();
    let v = if *t == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map(Val::Int)
    } else if *t == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?
            .map(|n| Val::Int(n.into()))
    } else {
        row.try_get::<_, Option<String>>(i)?.map(Val::Text)
    };
    Ok(v.unwrap_or(Val::Null))
}

#[async_trait]
impl Db for PgDb {
    async fn exec(&self, sql: &str, args: &[Val]) -> Result<u64, StoreError> {
        let p = params(args);
        Ok(self.client().await?.execute(sql, &refs(&p)).await?)
    }

    async fn exec_many(&self, sql: &str, rows: &[Vec<Val>]) -> Result<u64, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let st = tx.prepare(sql).await?;
        let mut n = 0;
        for r in rows {
            let p = params(r);
            n += tx.execute(&st, &refs(&p)).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn transaction(&self, steps: &[(&str, Vec<Val>)]) -> Result<Vec<u64>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut changed = Vec::with_capacity(steps.len());
        for (sql, args) in steps {
            let p = params(args);
            changed.push(tx.execute(*sql, &refs(&p)).await?);
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn rows(&self, sql: &str, args: &[Val]) -> Result<Vec<Vec<Val>>, StoreError> {
        let p = params(args);
        let rows = self.client().await?.query(sql, &refs(&p)).await?;
        rows.iter()
            .map(|r| (0..r.len()).map(|i| read(r, i)).collect())
            .collect()
    }

    async fn migrate(&self, steps: &'static [Migration]) -> Result<(), StoreError> {
        // A transaction-scoped advisory lock: two processes starting at once do not both
        // create the tables.
        let c = self.client().await?;
        c.batch_execute(
            "BEGIN; SELECT pg_advisory_xact_lock(7413);
                 CREATE TABLE IF NOT EXISTS console_migrations
                 (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL); COMMIT;",
        )
        .await?;
        for m in steps {
            let sql = format!(
                "BEGIN; SELECT pg_advisory_xact_lock(7413);
                 DO $migrate$ BEGIN
                   IF NOT EXISTS (SELECT 1 FROM console_migrations WHERE version = {v}) THEN
                     {body}
                     INSERT INTO console_migrations VALUES ({v}, '{at}');
                   END IF;
                 END $migrate$; COMMIT;",
                v = m.version,
                body = m.sql.replace("{serial}", "BIGSERIAL PRIMARY KEY"),
                at = schema::now_rfc3339(),
            );
            c.batch_execute(&sql).await?;
        }
        Ok(())
    }
}
