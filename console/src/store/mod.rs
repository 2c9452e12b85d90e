//! The console's state: alerts with their review state, users, sessions, API tokens, the
//! negative list and the audit log, in one database.
//!
//! Two backends behind one small seam, [`Db`]: SQLite in the data dir (the default, the same
//! file as the frontier's durable state) and PostgreSQL (`--state-url postgres://…`), which
//! consoles and indexers on several machines share. Everything above the seam is written
//! once: the SQL here is the common dialect of both (`$1`-style parameters, which SQLite
//! reads as named parameters bound in order of first use, `ON CONFLICT`, `substr`).
//!
//! The schema is versioned by [`MIGRATIONS`], applied in order by [`Db::migrate`] and recorded
//! in `console_migrations`: one tool for both backends, run at every open.

mod pg;
mod sqlite;

use std::path::Path;

use async_trait::async_trait;
use serde::Serialize;

pub use pg::PgDb;
pub use sqlite::SqliteDb;

/// The SQLite file in the data dir, shared with the frontier's durable state.
pub const SQLITE_FILE: &str = "frontier.sqlite";

/// Why the state store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("console state (SQLite {path}): {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("console state (PostgreSQL): {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error(
        "unsupported state URL {0:?}: expected postgres://… (or none for SQLite in the data dir)"
    )]
    BadUrl(String),
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("unexpected value in column {0}")]
    Column(usize),
}

/// A value bound to or read from a statement: the only types the console stores.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Text(String),
    Int(i64),
    Null,
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Text(s.to_string())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Text(s)
    }
}
impl From<i64> for Val {
    fn from(i: i64) -> Val {
        Val::Int(i)
    }
}
impl From<Option<&str>> for Val {
    fn from(s: Option<&str>) -> Val {
        s.map_or(Val::Null, Val::from)
    }
}

/// One step of the schema; `{serial}` is the backend's auto-increment key type.
pub struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

/// The schema, oldest first. Append; never edit a step that has shipped.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "
CREATE TABLE console_alerts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    url TEXT NOT NULL,
    page_url TEXT,
    site TEXT NOT NULL,
    distance BIGINT NOT NULL,
    detected_at TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'new',
    reviewed_by TEXT,
    reviewed_at TEXT,
    note TEXT
);
CREATE INDEX console_alerts_detected ON console_alerts (detected_at);
CREATE INDEX console_alerts_label ON console_alerts (label);
CREATE INDEX console_alerts_page ON console_alerts (page_url);
CREATE TABLE console_users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE console_tokens (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE console_audit (
    id {serial},
    at TEXT NOT NULL,
    user_name TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL
);
CREATE TABLE console_negatives (
    sha256 TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL
);
",
}];

/// The seam between the console's queries and a database.
#[async_trait]
pub trait Db: Send + Sync {
    /// Runs a statement; returns the number of rows it changed.
    async fn exec(&self, sql: &str, args: &[Val]) -> Result<u64, StoreError>;
    /// Runs one statement once per row of arguments, in one transaction; returns the number
    /// of rows changed.
    async fn exec_many(&self, sql: &str, rows: &[Vec<Val>]) -> Result<u64, StoreError>;
    /// Runs statements in order in one transaction (all or none); returns the rows each
    /// changed.
    async fn transaction(&self, steps: &[(&str, Vec<Val>)]) -> Result<Vec<u64>, StoreError>;
    /// Runs a query; every row as its values in column order.
    async fn rows(&self, sql: &str, args: &[Val]) -> Result<Vec<Vec<Val>>, StoreError>;
    /// Applies the steps not yet recorded, each in its own transaction, under a lock that
    /// keeps two processes from migrating at once.
    async fn migrate(&self, steps: &'static [Migration]) -> Result<(), StoreError>;
}

/// Opens the state: PostgreSQL when `url` is given, SQLite in `data_dir` otherwise.
pub async fn open(url: Option<&str>, data_dir: &Path) -> Result<StateStore, StoreError> {
    let db: Box<dyn Db> = match url {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            Box::new(PgDb::connect(u).await?)
        }
        Some(u) => return Err(StoreError::BadUrl(u.to_string())),
        None => {
            datadir::create_private_dir_all(data_dir).map_err(|e| StoreError::Sqlite {
                path: data_dir.display().to_string(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
            Box::new(SqliteDb::open(&data_dir.join(SQLITE_FILE))?)
        }
    };
    db.migrate(MIGRATIONS).await?;
    Ok(StateStore { db })
}

/// Review states of an alert.
pub const STATES: &[&str] = &["new", "confirmed", "false_positive", "dismissed"];

/// Roles of a console user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    Analyst,
    Admin,
}

impl UserRole {
    pub fn parse(s: &str) -> Option<UserRole> {
        match s {
            "analyst" => Some(UserRole::Analyst),
            "admin" => Some(UserRole::Admin),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Analyst => "analyst",
            UserRole::Admin => "admin",
        }
    }
}

/// A console user as stored.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub name: String,
    pub role: UserRole,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: String,
}

/// A logged-in session (the cookie's token is kept only as its hash).
#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub user: String,
    pub csrf: String,
    pub expires_at: i64,
}

/// An alert with its review.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRow {
    pub id: String,
    pub kind: String,
    pub label: String,
    pub url: String,
    pub page_url: Option<String>,
    pub site: String,
    pub distance: i64,
    pub detected_at: String,
    pub state: String,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<String>,
    pub note: Option<String>,
    /// The alert as the matcher raised it.
    pub alert: serde_json::Value,
}

/// Which alerts a listing shows.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub state: Option<String>,
    pub kind: Option<String>,
    pub label: Option<String>,
    pub site: Option<String>,
    pub page_url: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

/// An API token as listed: never its secret (nor the hash it is kept as).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    /// The first [`TOKEN_ID_LEN`] hex digits of the token's hash: enough to name it, nothing
    /// to log in with.
    pub id: String,
    pub user: String,
    pub label: String,
    pub created_at: String,
    #[serde(skip)]
    pub(crate) token_hash: String,
}

/// Hex digits of a token's hash that make its id.
pub const TOKEN_ID_LEN: usize = 12;

/// What removing a user took away with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub sessions: u64,
    pub tokens: u64,
}

/// One row of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub at: String,
    pub user: String,
    pub action: String,
    pub target: String,
}

/// First sighting and count of one stolen photo or identifier.
#[derive(Debug, Clone, Serialize)]
pub struct Surfaced {
    pub kind: String,
    pub label: String,
    pub sightings: i64,
    pub sites: i64,
    pub first_seen: String,
    pub last_seen: String,
}

const ALERT_COLUMNS: &str = "id, kind, label, url, page_url, site, distance, detected_at, \
     state, reviewed_by, reviewed_at, note, body";

fn text(row: &[Val], i: usize) -> Result<String, StoreError> {
    match row.get(i) {
        Some(Val::Text(s)) => Ok(s.clone()),
        Some(Val::Int(n)) => Ok(n.to_string()),
        _ => Err(StoreError::Column(i)),
    }
}

fn opt_text(row: &[Val], i: usize) -> Result<Option<String>, StoreError> {
    match row.get(i) {
        Some(Val::Null) => Ok(None),
        _ => text(row, i).map(Some),
    }
}

fn int(row: &[Val], i: usize) -> Result<i64, StoreError> {
    match row.get(i) {
        Some(Val::Int(n)) => Ok(*n),
        _ => Err(StoreError::Column(i)),
    }
}

fn alert_row(r: &[Val]) -> Result<AlertRow, StoreError> {
    Ok(AlertRow {
        id: text(r, 0)?,
        kind: text(r, 1)?,
        label: text(r, 2)?,
        url: text(r, 3)?,
        page_url: opt_text(r, 4)?,
        site: text(r, 5)?,
        distance: int(r, 6)?,
        detected_at: text(r, 7)?,
        state: text(r, 8)?,
        reviewed_by: opt_text(r, 9)?,
        reviewed_at: opt_text(r, 10)?,
        note: opt_text(r, 11)?,
        alert: serde_json::from_str(&text(r, 12)?).unwrap_or(serde_json::Value::Null),
    })
}

/// The site an alert was seen on (its page's, else its own URL's): `host` or `host:port`,
/// as the crawler and the index name sites.
pub fn site_of(a: &schema::Alert) -> String {
    let u = a.page_url.as_deref().unwrap_or(&a.url);
    match url::Url::parse(u) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        },
        Err(_) => String::new(),
    }
}

/// The console's state, whatever the backend.
pub struct StateStore {
    db: Box<dyn Db>,
}

impl StateStore {
    /// Whether the database answers now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.rows("SELECT 1", &[]).await.map(|_| ())
    }

    /// Adds alerts not yet known (by id); returns how many were new.
    pub async fn add_alerts(&self, alerts: &[schema::Alert]) -> Result<u64, StoreError> {
        let rows: Vec<Vec<Val>> = alerts
            .iter()
            .map(|a| {
                vec![
                    a.id.as_str().into(),
                    a.kind.as_str().into(),
                    a.label.as_str().into(),
                    a.url.as_str().into(),
                    a.page_url.as_deref().into(),
                    site_of(a).into(),
                    i64::from(a.distance).into(),
                    a.detected_at.as_str().into(),
                    serde_json::to_string(a).unwrap_or_default().into(),
                ]
            })
            .collect();
        if rows.is_empty() {
            return Ok(0);
        }
        // One transaction for the whole batch: a backlog of alerts costs one commit.
        self.db
            .exec_many(
                "INSERT INTO console_alerts
                 (id, kind, label, url, page_url, site, distance, detected_at, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                &rows,
            )
            .await
    }

    fn filter_sql(f: &AlertFilter) -> (String, Vec<Val>) {
        let mut sql = String::from(" WHERE 1 = 1");
        let mut args: Vec<Val> = Vec::new();
        let fields = [
            ("state", &f.state),
            ("kind", &f.kind),
            ("label", &f.label),
            ("site", &f.site),
        ];
        for (col, v) in fields {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                args.push(v.into());
                sql.push_str(&format!(" AND {col} = ${}", args.len()));
            }
        }
        if let Some(p) = f.page_url.as_deref() {
            args.push(p.into());
            sql.push_str(&format!(
                " AND (page_url = ${n} OR url = ${n})",
                n = args.len()
            ));
        }
        (sql, args)
    }

    /// The alerts `f` selects, newest first, and how many there are in all.
    pub async fn alerts(&self, f: &AlertFilter) -> Result<(i64, Vec<AlertRow>), StoreError> {
        let (clause, mut args) = Self::filter_sql(f);
        let total = self
            .db
            .rows(
                &format!("SELECT COUNT(*) FROM console_alerts{clause}"),
                &args,
            )
            .await?
            .first()
            .map(|r| int(r, 0))
            .transpose()?
            .unwrap_or(0);
        args.push(f.limit.clamp(1, 500).into());
        args.push(f.offset.max(0).into());
        let n = args.len();
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM console_alerts{clause}
             ORDER BY detected_at DESC, id LIMIT ${} OFFSET ${n}",
            n - 1
        );
        let rows = self.db.rows(&sql, &args).await?;
        let rows = rows
            .iter()
            .map(|r| alert_row(r))
            .collect::<Result<_, _>>()?;
        Ok((total, rows))
    }

    pub async fn alert(&self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM console_alerts WHERE id = $1");
        let rows = self.db.rows(&sql, &[id.into()]).await?;
        rows.first().map(|r| alert_row(r)).transpose()
    }

    /// Page URLs of every alert (the search's "has alert" filter).
    pub async fn alerted_pages(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT DISTINCT COALESCE(page_url, url) FROM console_alerts \
                 WHERE state <> 'false_positive'",
                &[],
            )
            .await?;
        rows.iter().map(|r| text(r, 0)).collect()
    }

    /// Sets the review state of alerts; returns how many exist.
    pub async fn review(
        &self,
        ids: &[String],
        state: &str,
        who: &str,
        note: &str,
    ) -> Result<u64, StoreError> {
        let now = schema::now_rfc3339();
        let mut n = 0;
        for id in ids {
            n += self
                .db
                .exec(
                    "UPDATE console_alerts SET state = $1, reviewed_by = $2, reviewed_at = $3,
                     note = $4 WHERE id = $5",
                    &[
                        state.into(),
                        who.into(),
                        now.as_str().into(),
                        note.into(),
                        id.as_str().into(),
                    ],
                )
                .await?;
        }
        Ok(n)
    }

    /// Puts an image (by its SHA-256) on the negative list.
    pub async fn add_negative(
        &self,
        sha256: &str,
        alert_id: &str,
        who: &str,
    ) -> Result<(), StoreError> {
        self.db
            .exec(
                "INSERT INTO console_negatives (sha256, alert_id, added_by, added_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
                &[
                    sha256.into(),
                    alert_id.into(),
                    who.into(),
                    schema::now_rfc3339().into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Every SHA-256 on the negative list.
    pub async fn negatives(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .db
            .rows("SELECT sha256 FROM console_negatives ORDER BY sha256", &[])
            .await?;
        rows.iter().map(|r| text(r, 0)).collect()
    }

    /// Adds a user; fails if the name is taken.
    pub async fn add_user(
        &self,
        name: &str,
        role: UserRole,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        let n = self
            .db
            .exec(
                "INSERT INTO console_users (name, role, password_hash, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                &[
                    name.into(),
                    role.as_str().into(),
                    password_hash.into(),
                    schema::now_rfc3339().into(),
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::UserExists(name.to_string()));
        }
        Ok(())
    }

    fn user_row(r: &[Val]) -> Result<User, StoreError> {
        Ok(User {
            name: text(r, 0)?,
            role: UserRole::parse(&text(r, 1)?).ok_or(StoreError::Column(1))?,
            password_hash: text(r, 2)?,
            created_at: text(r, 3)?,
        })
    }

    pub async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT name, role, password_hash, created_at FROM console_users WHERE name = $1",
                &[name.into()],
            )
            .await?;
        rows.first().map(|r| Self::user_row(r)).transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT name, role, password_hash, created_at FROM console_users ORDER BY name",
                &[],
            )
            .await?;
        rows.iter().map(|r| Self::user_row(r)).collect()
    }

    pub async fn add_session(&self, s: &Session) -> Result<(), StoreError> {
        // Expired sessions go whenever a new one starts.
        self.db
            .exec(
                "DELETE FROM console_sessions WHERE expires_at < $1",
                &[unix_now().into()],
            )
            .await?;
        self.db
            .exec(
                "INSERT INTO console_sessions (token_hash, user_name, csrf, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[
                    s.token_hash.as_str().into(),
                    s.user.as_str().into(),
                    s.csrf.as_str().into(),
                    s.expires_at.into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// The live session with this token hash, if any.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT token_hash, user_name, csrf, expires_at FROM console_sessions
                 WHERE token_hash = $1 AND expires_at >= $2",
                &[token_hash.into(), unix_now().into()],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(Session {
                    token_hash: text(r, 0)?,
                    user: text(r, 1)?,
                    csrf: text(r, 2)?,
                    expires_at: int(r, 3)?,
                })
            })
            .transpose()
    }

    pub async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.db
            .exec(
                "DELETE FROM console_sessions WHERE token_hash = $1",
                &[token_hash.into()],
            )
            .await?;
        Ok(())
    }

    pub async fn add_token(
        &self,
        token_hash: &str,
        user: &str,
        label: &str,
    ) -> Result<(), StoreError> {
        self.db
            .exec(
                "INSERT INTO console_tokens (token_hash, user_name, label, created_at)
                 VALUES ($1, $2, $3, $4)",
                &[
                    token_hash.into(),
                    user.into(),
                    label.into(),
                    schema::now_rfc3339().into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// The API tokens (of `user`, or everyone's), oldest first.
    pub async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT token_hash, user_name, label, created_at FROM console_tokens
                 WHERE user_name = COALESCE($1, user_name) ORDER BY created_at, token_hash",
                &[user.into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let token_hash = text(r, 0)?;
                Ok(TokenInfo {
                    id: token_hash.chars().take(TOKEN_ID_LEN).collect(),
                    user: text(r, 1)?,
                    label: text(r, 2)?,
                    created_at: text(r, 3)?,
                    token_hash,
                })
            })
            .collect()
    }

    /// Deletes the token with this hash; returns whether there was one.
    pub async fn revoke_token(&self, token_hash: &str) -> Result<bool, StoreError> {
        let n = self
            .db
            .exec(
                "DELETE FROM console_tokens WHERE token_hash = $1",
                &[token_hash.into()],
            )
            .await?;
        Ok(n > 0)
    }

    /// Removes a user with its sessions and tokens, in one transaction, unless it is the last
    /// admin. `None`: no such user, or the last admin (the caller tells which).
    pub async fn remove_user(&self, name: &str) -> Result<Option<Removed>, StoreError> {
        let n = || vec![Val::from(name)];
        let changed = self
            .db
            .transaction(&[
                // A no-op write on every admin row: two removals of two admins at once take
                // turns here (a row lock in PostgreSQL, the write lock in SQLite), so the
                // second counts what the first left.
                (
                    "UPDATE console_users SET role = role WHERE role = 'admin'",
                    vec![],
                ),
                (
                    "DELETE FROM console_users WHERE name = $1 AND (role <> 'admin' OR
                     (SELECT COUNT(*) FROM console_users WHERE role = 'admin') > 1)",
                    n(),
                ),
                (
                    "DELETE FROM console_sessions WHERE user_name = $1
                     AND NOT EXISTS (SELECT 1 FROM console_users WHERE name = $1)",
                    n(),
                ),
                (
                    "DELETE FROM console_tokens WHERE user_name = $1
                     AND NOT EXISTS (SELECT 1 FROM console_users WHERE name = $1)",
                    n(),
                ),
            ])
            .await?;
        Ok((changed[1] > 0).then(|| Removed {
            sessions: changed[2],
            tokens: changed[3],
        }))
    }

    /// The user an API token belongs to.
    pub async fn token_user(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT user_name FROM console_tokens WHERE token_hash = $1",
                &[token_hash.into()],
            )
            .await?;
        rows.first().map(|r| text(r, 0)).transpose()
    }

    pub async fn audit(&self, user: &str, action: &str, target: &str) -> Result<(), StoreError> {
        self.db
            .exec(
                "INSERT INTO console_audit (at, user_name, action, target)
                 VALUES ($1, $2, $3, $4)",
                &[
                    schema::now_rfc3339().into(),
                    user.into(),
                    action.into(),
                    target.into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT at, user_name, action, target FROM console_audit
                 ORDER BY id DESC LIMIT $1",
                &[limit.clamp(1, 10_000).into()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: text(r, 0)?,
                    user: text(r, 1)?,
                    action: text(r, 2)?,
                    target: text(r, 3)?,
                })
            })
            .collect()
    }

    /// Per stolen photo or identifier sighted: sightings, sites, first and last seen
    /// (false positives and dismissed alerts do not count).
    pub async fn surfaced(&self) -> Result<Vec<Surfaced>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT kind, label, COUNT(*), COUNT(DISTINCT site), MIN(detected_at),
                        MAX(detected_at)
                 FROM console_alerts WHERE state IN ('new', 'confirmed')
                 GROUP BY kind, label ORDER BY MIN(detected_at), label",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Surfaced {
                    kind: text(r, 0)?,
                    label: text(r, 1)?,
                    sightings: int(r, 2)?,
                    sites: int(r, 3)?,
                    first_seen: text(r, 4)?,
                    last_seen: text(r, 5)?,
                })
            })
            .collect()
    }

    /// Sightings per UTC day (`YYYY-MM-DD`), oldest first.
    pub async fn per_day(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT substr(detected_at, 1, 10) AS day, COUNT(*) FROM console_alerts
                 WHERE state IN ('new', 'confirmed') GROUP BY day ORDER BY day",
                &[],
            )
            .await?;
        rows.iter().map(|r| Ok((text(r, 0)?, int(r, 1)?))).collect()
    }

    /// Sightings per site, most first.
    pub async fn per_site(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self
            .db
            .rows(
                "SELECT site, COUNT(*) FROM console_alerts WHERE state IN ('new', 'confirmed')
                 GROUP BY site ORDER BY COUNT(*) DESC, site LIMIT 50",
                &[],
            )
            .await?;
        rows.iter().map(|r| Ok((text(r, 0)?, int(r, 1)?))).collect()
    }
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests;
