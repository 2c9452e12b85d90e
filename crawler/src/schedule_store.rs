//! [`ScheduleStore`] on both frontier store backends: the `frontier_schedule` rows (one per
//! page, with its interval, due time and last validators) and `frontier_liveness` (one per
//! site). Tables are created with the rest of the frontier's state in [`crate::store`].

use async_trait::async_trait;
use schema::{PageOutcome, Validators};

use crate::mirror::MAX_PER_SITE;
use crate::schedule::{NewPage, ScheduleRow, ScheduleStore, SiteStatus, Visit};
use crate::store::{digest_of, key, PgStore, SqliteStore, StoreError};

const COLUMNS: &str = "digest, url, site, depth, interval_ms, due_ms, entry, quiet, etag, \
                       modified, content, fetches, changes, failures, links, inline, head";

fn answered(o: PageOutcome) -> bool {
    o != PageOutcome::Unreachable
}

/// Counter deltas a visit adds: (fetches, changes, failures).
fn deltas(o: PageOutcome) -> (i64, i64, i64) {
    match o {
        PageOutcome::Changed => (1, 1, 0),
        PageOutcome::Unchanged => (1, 0, 0),
        PageOutcome::Refused | PageOutcome::Unreachable => (1, 0, 1),
    }
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn sqlite_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduleRow> {
    Ok(ScheduleRow {
        digest: digest_of(&r.get::<_, Vec<u8>>(0)?),
        url: r.get(1)?,
        site: r.get(2)?,
        depth: r.get::<_, i64>(3)?.clamp(0, u32::MAX as i64) as u32,
        interval_ms: u(r.get(4)?),
        due_ms: u(r.get(5)?),
        entry: r.get::<_, i64>(6)? != 0,
        quiet: r.get::<_, i64>(7)?.clamp(0, u32::MAX as i64) as u32,
        validators: Validators {
            etag: r.get(8)?,
            last_modified: r.get(9)?,
            content: r.get(10)?,
            links: r.get(14)?,
            inline: r.get(15)?,
        },
        fetches: u(r.get(11)?),
        changes: u(r.get(12)?),
        failures: u(r.get(13)?),
        head: r.get(16)?,
    })
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn schedule(&self, pages: &[NewPage]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for p in pages {
                tx.execute(
                    "INSERT INTO frontier_schedule
                       (digest, url, site, depth, interval_ms, due_ms, entry, listed_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                    rusqlite::params![
                        key(p.digest),
                        p.url,
                        p.site,
                        p.depth,
                        i(p.interval_ms),
                        i(p.due_ms),
                        p.depth == 0,
                        i(p.listed_ms)
                    ],
                )?;
            }
            tx.commit()
        })
    }

    async fn take_due(&self, now_ms: u64, limit: usize) -> Result<Vec<ScheduleRow>, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let rows = {
                let mut q = tx.prepare(&format!(
                    "SELECT {COLUMNS} FROM frontier_schedule WHERE due_ms <= ?1
                     ORDER BY due_ms LIMIT ?2"
                ))?;
                let rows =
                    q.query_map(rusqlite::params![i(now_ms), i(limit as u64)], sqlite_row)?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            for r in &rows {
                tx.execute(
                    "UPDATE frontier_schedule SET due_ms = ?2 + 2 * interval_ms WHERE digest = ?1",
                    rusqlite::params![key(r.digest), i(now_ms)],
                )?;
            }
            tx.commit()?;
            Ok(rows)
        })
    }

    async fn scheduled(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            c.query_row("SELECT count(*) FROM frontier_schedule", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(u)
        })
    }

    async fn refetch_unfetched(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE frontier_schedule SET due_ms = ?1 WHERE fetches = 0 AND due_ms > ?1",
                [i(now_ms)],
            )
            .map(|n| n as u64)
        })
    }

    async fn postpone(&self, digest: u128, due_ms: u64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE frontier_schedule SET due_ms = ?2 WHERE digest = ?1",
                rusqlite::params![key(digest), i(due_ms)],
            )
            .map(|_| ())
        })
    }

    async fn row(&self, digest: u128) -> Result<Option<ScheduleRow>, StoreError> {
        self.with(|c| {
            use rusqlite::OptionalExtension;
            c.query_row(
                &format!("SELECT {COLUMNS} FROM frontier_schedule WHERE digest = ?1"),
                [key(digest)],
                sqlite_row,
            )
            .optional()
        })
    }

    async fn record(&self, v: &Visit) -> Result<(), StoreError> {
        let (f, ch, fail) = deltas(v.outcome);
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE frontier_schedule SET interval_ms = ?2, due_ms = ?3, entry = ?4,
                   quiet = ?5, etag = ?6, modified = ?7, content = ?8, fetches = fetches + ?9,
                   changes = changes + ?10, failures = failures + ?11, links = ?12,
                   inline = ?13, head = ?14
                 WHERE digest = ?1",
                rusqlite::params![
                    key(v.digest),
                    i(v.interval_ms),
                    i(v.due_ms),
                    v.entry,
                    v.quiet,
                    v.validators.etag,
                    v.validators.last_modified,
                    v.validators.content,
                    f,
                    ch,
                    fail,
                    v.validators.links,
                    v.validators.inline,
                    v.head
                ],
            )?;
            let up = answered(v.outcome);
            tx.execute(
                "INSERT INTO frontier_liveness (site, up, answered, unanswered, last_up_ms,
                   last_down_ms)
                 VALUES (?1, ?2, ?3, ?4, CASE WHEN ?2 THEN ?5 END, CASE WHEN ?2 THEN NULL ELSE ?5 END)
                 ON CONFLICT (site) DO UPDATE SET up = ?2, answered = answered + ?3,
                   unanswered = unanswered + ?4,
                   last_up_ms = CASE WHEN ?2 THEN ?5 ELSE last_up_ms END,
                   last_down_ms = CASE WHEN ?2 THEN last_down_ms ELSE ?5 END",
                rusqlite::params![v.site, up, i64::from(up), i64::from(!up), i(v.at_ms)],
            )?;
            tx.commit()
        })
    }

    async fn sites(&self) -> Result<Vec<SiteStatus>, StoreError> {
        self.with(|c| {
            let mut q = c.prepare(SITES_QUERY)?;
            let rows = q.query_map([], |r| {
                Ok(SiteStatus {
                    site: r.get(0)?,
                    seed: r.get::<_, Option<i64>>(1)?.unwrap_or(0) != 0,
                    up: r.get::<_, Option<i64>>(2)?.map(|v| v != 0),
                    answered: u(r.get::<_, Option<i64>>(3)?.unwrap_or(0)),
                    unanswered: u(r.get::<_, Option<i64>>(4)?.unwrap_or(0)),
                    last_up_ms: r.get::<_, Option<i64>>(5)?.map(u),
                    last_down_ms: r.get::<_, Option<i64>>(6)?.map(u),
                    scheduled_pages: u(r.get::<_, Option<i64>>(7)?.unwrap_or(0)),
                    entry_pages: u(r.get::<_, Option<i64>>(8)?.unwrap_or(0)),
                    next_due_ms: r.get::<_, Option<i64>>(9)?.map(u),
                    fetches: u(r.get::<_, Option<i64>>(10)?.unwrap_or(0)),
                    changes: u(r.get::<_, Option<i64>>(11)?.unwrap_or(0)),
                    mirrors: Vec::new(),
                })
            })?;
            let mut sites = rows.collect::<Result<Vec<_>, _>>()?;
            let mut q =
                c.prepare("SELECT site, mirror FROM frontier_mirrors ORDER BY first_seen_ms")?;
            let pairs = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            attach_mirrors(&mut sites, pairs.collect::<Result<Vec<_>, _>>()?);
            Ok(sites)
        })
    }

    async fn add_mirrors(
        &self,
        site: &str,
        mirrors: &[String],
        now_ms: u64,
    ) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut new = Vec::new();
            let mut kept: i64 = tx.query_row(
                "SELECT count(*) FROM frontier_mirrors WHERE site = ?1",
                [site],
                |r| r.get(0),
            )?;
            for m in mirrors {
                if kept >= MAX_PER_SITE as i64 {
                    break;
                }
                let n = tx.execute(
                    "INSERT INTO frontier_mirrors (site, mirror, first_seen_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    rusqlite::params![site, m, i(now_ms)],
                )?;
                if n == 1 {
                    kept += 1;
                    new.push(m.clone());
                }
            }
            tx.commit()?;
            Ok(new)
        })
    }
}

/// Puts each (site, mirror) pair on its site's status.
fn attach_mirrors(sites: &mut [SiteStatus], pairs: Vec<(String, String)>) {
    let index: std::collections::HashMap<String, usize> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| (s.site.clone(), i))
        .collect();
    for (site, mirror) in pairs {
        if let Some(&i) = index.get(&site) {
            sites[i].mirrors.push(mirror);
        }
    }
}

/// Every site the frontier knows of (as a budget, a liveness record or a schedule), with its
/// liveness and schedule summed up. The same SQL on both backends (booleans are cast).
const SITES_QUERY: &str = "
WITH names AS (
    SELECT site FROM frontier_sites WHERE pages > 0 OR seed <> 0
    UNION SELECT site FROM frontier_liveness
    UNION SELECT site FROM frontier_schedule
    UNION SELECT site FROM frontier_mirrors
), sched AS (
    SELECT site, CAST(count(*) AS BIGINT) AS n,
           CAST(sum(CASE WHEN entry THEN 1 ELSE 0 END) AS BIGINT) AS e,
           min(due_ms) AS due, CAST(sum(fetches) AS BIGINT) AS f,
           CAST(sum(changes) AS BIGINT) AS c
    FROM frontier_schedule GROUP BY site
)
SELECT names.site,
       CASE WHEN s.seed THEN 1 ELSE 0 END,
       CASE WHEN l.up IS NULL THEN NULL WHEN l.up THEN 1 ELSE 0 END,
       l.answered, l.unanswered, l.last_up_ms, l.last_down_ms,
       sched.n, sched.e, sched.due, sched.f, sched.c
FROM names
LEFT JOIN frontier_sites s ON s.site = names.site
LEFT JOIN frontier_liveness l ON l.site = names.site
LEFT JOIN sched ON sched.site = names.site
ORDER BY names.site";

fn pg_row(r: &tokio_postgres::Row) -> ScheduleRow {
    ScheduleRow {
        digest: digest_of(r.get::<_, &[u8]>(0)),
        url: r.get(1),
        site: r.get(2),
        depth: r.get::<_, i64>(3).clamp(0, u32::MAX as i64) as u32,
        interval_ms: u(r.get(4)),
        due_ms: u(r.get(5)),
        entry: r.get(6),
        quiet: r.get::<_, i64>(7).clamp(0, u32::MAX as i64) as u32,
        validators: Validators {
            etag: r.get(8),
            last_modified: r.get(9),
            content: r.get(10),
            links: r.get(14),
            inline: r.get(15),
        },
        fetches: u(r.get(11)),
        changes: u(r.get(12)),
        failures: u(r.get(13)),
        head: r.get(16),
    }
}

#[async_trait]
impl ScheduleStore for PgStore {
    async fn schedule(&self, pages: &[NewPage]) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for p in pages {
            tx.execute(
                "INSERT INTO frontier_schedule
                   (digest, url, site, depth, interval_ms, due_ms, entry, listed_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                &[
                    &key(p.digest),
                    &p.url,
                    &p.site,
                    &i64::from(p.depth),
                    &i(p.interval_ms),
                    &i(p.due_ms),
                    &(p.depth == 0),
                    &i(p.listed_ms),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn take_due(&self, now_ms: u64, limit: usize) -> Result<Vec<ScheduleRow>, StoreError> {
        let c = self.client().await?;
        // SKIP LOCKED: frontiers taking due rows at once each get their own.
        let rows = c
            .query(
                &format!(
                    "UPDATE frontier_schedule s SET due_ms = $1 + 2 * s.interval_ms
                     FROM (SELECT digest FROM frontier_schedule WHERE due_ms <= $1
                           ORDER BY due_ms LIMIT $2 FOR UPDATE SKIP LOCKED) d
                     WHERE s.digest = d.digest
                     RETURNING {}",
                    COLUMNS
                        .split(", ")
                        .map(|c| format!("s.{}", c.trim()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &[&i(now_ms), &i(limit as u64)],
            )
            .await?;
        let mut rows: Vec<ScheduleRow> = rows.iter().map(pg_row).collect();
        rows.sort_by_key(|r| r.due_ms);
        Ok(rows)
    }

    async fn scheduled(&self) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let n: i64 = c
            .query_one("SELECT count(*) FROM frontier_schedule", &[])
            .await?
            .get(0);
        Ok(u(n))
    }

    async fn refetch_unfetched(&self, now_ms: u64) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE frontier_schedule SET due_ms = $1 WHERE fetches = 0 AND due_ms > $1",
                &[&i(now_ms)],
            )
            .await?;
        Ok(n)
    }

    async fn postpone(&self, digest: u128, due_ms: u64) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "UPDATE frontier_schedule SET due_ms = $2 WHERE digest = $1",
            &[&key(digest), &i(due_ms)],
        )
        .await?;
        Ok(())
    }

    async fn row(&self, digest: u128) -> Result<Option<ScheduleRow>, StoreError> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                &format!("SELECT {COLUMNS} FROM frontier_schedule WHERE digest = $1"),
                &[&key(digest)],
            )
            .await?;
        Ok(r.as_ref().map(pg_row))
    }

    async fn record(&self, v: &Visit) -> Result<(), StoreError> {
        let (f, ch, fail) = deltas(v.outcome);
        let up = answered(v.outcome);
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "UPDATE frontier_schedule SET interval_ms = $2, due_ms = $3, entry = $4, quiet = $5,
               etag = $6, modified = $7, content = $8, fetches = fetches + $9,
               changes = changes + $10, failures = failures + $11, links = $12,
               inline = $13, head = $14
             WHERE digest = $1",
            &[
                &key(v.digest),
                &i(v.interval_ms),
                &i(v.due_ms),
                &v.entry,
                &i64::from(v.quiet),
                &v.validators.etag,
                &v.validators.last_modified,
                &v.validators.content,
                &f,
                &ch,
                &fail,
                &v.validators.links,
                &v.validators.inline,
                &v.head,
            ],
        )
        .await?;
        tx.execute(
            "INSERT INTO frontier_liveness AS l (site, up, answered, unanswered, last_up_ms,
               last_down_ms)
             VALUES ($1, $2::BOOLEAN, $3::BIGINT, $4::BIGINT,
                     CASE WHEN $2::BOOLEAN THEN $5::BIGINT END,
                     CASE WHEN $2::BOOLEAN THEN NULL ELSE $5::BIGINT END)
             ON CONFLICT (site) DO UPDATE SET up = $2::BOOLEAN,
               answered = l.answered + $3::BIGINT, unanswered = l.unanswered + $4::BIGINT,
               last_up_ms = CASE WHEN $2::BOOLEAN THEN $5::BIGINT ELSE l.last_up_ms END,
               last_down_ms = CASE WHEN $2::BOOLEAN THEN l.last_down_ms ELSE $5::BIGINT END",
            &[&v.site, &up, &i64::from(up), &i64::from(!up), &i(v.at_ms)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sites(&self) -> Result<Vec<SiteStatus>, StoreError> {
        let c = self.client().await?;
        let q = SITES_QUERY.replace("seed <> 0", "seed");
        let rows = c.query(&q, &[]).await?;
        let pairs = c
            .query(
                "SELECT site, mirror FROM frontier_mirrors ORDER BY first_seen_ms",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let opt = |r: &tokio_postgres::Row, n: usize| r.get::<_, Option<i64>>(n).map(u);
        let mut sites: Vec<SiteStatus> = rows
            .iter()
            .map(|r| SiteStatus {
                site: r.get(0),
                seed: r.get::<_, i32>(1) != 0,
                up: r.get::<_, Option<i32>>(2).map(|v| v != 0),
                answered: opt(r, 3).unwrap_or(0),
                unanswered: opt(r, 4).unwrap_or(0),
                last_up_ms: opt(r, 5),
                last_down_ms: opt(r, 6),
                scheduled_pages: opt(r, 7).unwrap_or(0),
                entry_pages: opt(r, 8).unwrap_or(0),
                next_due_ms: opt(r, 9),
                fetches: opt(r, 10).unwrap_or(0),
                changes: opt(r, 11).unwrap_or(0),
                mirrors: Vec::new(),
            })
            .collect();
        attach_mirrors(&mut sites, pairs);
        Ok(sites)
    }

    async fn add_mirrors(
        &self,
        site: &str,
        mirrors: &[String],
        now_ms: u64,
    ) -> Result<Vec<String>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut new = Vec::new();
        let mut kept: i64 = tx
            .query_one(
                "SELECT count(*) FROM frontier_mirrors WHERE site = $1",
                &[&site],
            )
            .await?
            .get(0);
        for m in mirrors {
            if kept >= MAX_PER_SITE as i64 {
                break;
            }
            let n = tx
                .execute(
                    "INSERT INTO frontier_mirrors (site, mirror, first_seen_ms) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    &[&site, m, &i(now_ms)],
                )
                .await?;
            if n == 1 {
                kept += 1;
                new.push(m.clone());
            }
        }
        tx.commit().await?;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::PgDb;
    use crate::store::{open, FrontierStore, SQLITE_FILE};

    fn page(d: u128, site: &str, depth: u32, due_ms: u64) -> NewPage {
        NewPage {
            digest: d,
            url: format!("http://{site}/{d}"),
            site: site.into(),
            depth,
            interval_ms: 1_000,
            due_ms,
            listed_ms: 5,
        }
    }

    /// The schedule's part of the protocol, the same on every backend; `a` and `b` are two
    /// handles on the same state (two frontiers, or one after a restart).
    async fn exercise(a: Box<dyn FrontierStore>, b: Box<dyn FrontierStore>) {
        a.add_seed_sites(&["s.test".into()]).await.unwrap();
        a.schedule(&[page(1, "s.test", 0, 100), page(2, "s.test", 1, 200)])
            .await
            .unwrap();
        // Scheduling again keeps the row as it is.
        b.schedule(&[page(1, "s.test", 0, 999)]).await.unwrap();
        assert_eq!(b.scheduled().await.unwrap(), 2);
        assert!(a.take_due(99, 10).await.unwrap().is_empty());
        let due = a.take_due(150, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].digest, due[0].entry, due[0].depth), (1, true, 0));
        // Leased for two intervals: the other handle does not take it again before then.
        assert_eq!(b.take_due(200, 10).await.unwrap().len(), 1); // only page 2
        assert!(b.take_due(2_149, 10).await.unwrap().is_empty());
        assert_eq!(b.take_due(2_150, 10).await.unwrap().len(), 1);
        // Pages never fetched are made due at once when the requests of a dead embedded bus
        // are lost.
        assert_eq!(a.refetch_unfetched(2_300).await.unwrap(), 1); // page 2 is due already
        assert_eq!(a.take_due(2_300, 10).await.unwrap().len(), 2);
        let visit = Visit {
            digest: 1,
            site: "s.test".into(),
            outcome: PageOutcome::Changed,
            at_ms: 2_000,
            interval_ms: 4_000,
            due_ms: 6_000,
            entry: true,
            quiet: 0,
            validators: Validators {
                etag: Some("\"e1\"".into()),
                last_modified: None,
                content: Some("c1".into()),
                links: Some("l1".into()),
                inline: Some("0123456789abcdef".into()),
            },
            head: Some("0000000000000001".into()),
        };
        a.record(&visit).await.unwrap();
        let r = b.row(1).await.unwrap().unwrap();
        assert_eq!(
            (r.interval_ms, r.due_ms, r.fetches, r.changes),
            (4_000, 6_000, 1, 1)
        );
        assert_eq!(r.validators, visit.validators);
        assert_eq!(r.head, visit.head);
        b.record(&Visit {
            outcome: PageOutcome::Unreachable,
            at_ms: 7_000,
            ..visit.clone()
        })
        .await
        .unwrap();
        b.postpone(2, 50_000).await.unwrap();
        let sites = a.sites().await.unwrap();
        let s = sites.iter().find(|s| s.site == "s.test").unwrap();
        assert_eq!(
            (s.seed, s.up, s.answered, s.unanswered),
            (true, Some(false), 1, 1)
        );
        assert_eq!((s.last_up_ms, s.last_down_ms), (Some(2_000), Some(7_000)));
        assert_eq!(
            (s.scheduled_pages, s.entry_pages, s.fetches, s.changes),
            (2, 1, 2, 1)
        );
        assert_eq!(s.next_due_ms, Some(6_000));
        assert!(a.row(77).await.unwrap().is_none());
        // Mirror announcements: recorded once, listed with the announcing site.
        let m = ["x.onion".to_string(), "y.onion".to_string()];
        assert_eq!(a.add_mirrors("s.test", &m[..1], 1).await.unwrap(), &m[..1]);
        assert_eq!(b.add_mirrors("s.test", &m, 2).await.unwrap(), &m[1..]);
        let sites = b.sites().await.unwrap();
        let s = sites.iter().find(|s| s.site == "s.test").unwrap();
        assert_eq!(s.mirrors, m);
        // A flood of announcements is cut at the per-site bound.
        let flood: Vec<String> = (0..100).map(|i| format!("m{i}.onion")).collect();
        let kept = a.add_mirrors("s.test", &flood, 3).await.unwrap();
        assert_eq!(kept.len() as u64, MAX_PER_SITE - 2);
    }

    #[tokio::test]
    async fn sqlite_keeps_the_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SQLITE_FILE);
        let a = Box::new(SqliteStore::open(&path).unwrap());
        let b = Box::new(SqliteStore::open(&path).unwrap());
        exercise(a, b).await;
    }

    #[tokio::test]
    async fn postgres_keeps_the_schedule() {
        let db = PgDb::create().await;
        let a = open(Some(&db.url), std::path::Path::new("/nonexistent"));
        let b = open(Some(&db.url), std::path::Path::new("/nonexistent"));
        exercise(a.await.unwrap(), b.await.unwrap()).await;
    }
}
