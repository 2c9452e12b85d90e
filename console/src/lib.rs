//! The analysts' console: search everything crawled, review alerts, see how much of the
//! breach has surfaced — in a browser, or over a JSON API for other systems.
//!
//! Everything it shows was written by adversaries, so:
//! - pages are rendered server-side from templates that escape every value ([`views`]);
//!   there is no script at all, and a strict Content-Security-Policy forbids any;
//! - no page makes the analyst's browser contact a crawled site: crawled URLs are text to
//!   copy, never links, images or frames;
//! - everything but `/healthz` needs a login ([`auth`]): argon2 passwords, sessions in
//!   `HttpOnly; Secure; SameSite=Strict` cookies, a CSRF token on every form, login rate
//!   limiting; the JSON API takes per-user bearer tokens instead;
//! - every search, view and review is written to the audit log.
//!
//! State (alerts with their review, users, sessions, tokens, audit log, negative list) lives
//! in one database ([`store`]): SQLite in the data dir or a shared PostgreSQL. Alerts come in
//! from the indexer's alert log ([`feed`]); the negative list goes out to the matchers as a
//! file in the data dir ([`negatives`]). Users and tokens are added, listed, revoked and
//! removed here too ([`add_user`], [`create_token`], [`revoke_token`], [`remove_user`]).

pub mod auth;
pub mod coverage;
pub mod feed;
pub mod negatives;
pub mod store;
pub mod views;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use store::{Removed, StateStore, StoreError, TokenInfo, UserRole};
pub use web::App;

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] indexer::IndexError),
    #[error(transparent)]
    Negatives(#[from] negatives::NegativesError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("console server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// How many stolen photos and identifiers there are (the denominators of coverage): the
/// binary knows the fingerprint bank and the watchlist, the console does not.
pub trait Inventory: Send + Sync {
    /// `(photos, identifiers)`, when known.
    fn counts(&self) -> (Option<usize>, Option<usize>);
}

/// An inventory that knows nothing.
pub struct NoInventory;

impl Inventory for NoInventory {
    fn counts(&self) -> (Option<usize>, Option<usize>) {
        (None, None)
    }
}

/// What a console needs to start.
pub struct ConsoleOptions {
    pub data_dir: PathBuf,
    /// `postgres://…`, or `None` for SQLite in the data dir.
    pub state_url: Option<String>,
    /// Hosts of the configured paste sites (the search's "paste" filter).
    pub paste_hosts: Vec<String>,
    pub inventory: Arc<dyn Inventory>,
}

/// Serves the console on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    options: ConsoleOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ConsoleError> {
    Console::open(options)
        .await?
        .serve(listener, shutdown)
        .await
}

/// An opened console (its state store and the index), not serving yet.
#[derive(Clone)]
pub struct Console {
    app: Arc<App>,
}

impl Console {
    /// Opens the state store (migrating it) and the index.
    pub async fn open(options: ConsoleOptions) -> Result<Console, ConsoleError> {
        Ok(Console {
            app: App::open(options).await?,
        })
    }

    /// Whether the state store answers now (what a readiness probe asks).
    pub async fn store_reachable(&self) -> Result<(), StoreError> {
        self.app.store.ping().await
    }

    /// Serves on `listener`, and follows the alert log, until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ConsoleError> {
        let feed = self.app.clone().follow_alerts();
        let router = web::router(self.app);
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ConsoleError::Serve);
        feed.abort();
        served
    }
}

/// Why a user or token could not be added.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no user {0:?}: add it first (leakwatch users add)")]
    NoUser(String),
    #[error("{0:?} is the last admin: add another admin first (leakwatch users add NAME --role admin --password-stdin)")]
    LastAdmin(String),
    #[error("no token has the id or label {0:?} (leakwatch tokens list)")]
    NoToken(String),
    #[error("{n} tokens are labelled {label:?} ({ids}): revoke one by its id, or name its user with --user", n = ids.len(), ids = ids.join(", "))]
    AmbiguousToken { label: String, ids: Vec<String> },
}

/// Checks and adds a user with an argon2 hash of `password` (the users page and
/// `leakwatch users add` share the rules).
pub async fn add_user(
    store: &StateStore,
    name: &str,
    role: UserRole,
    password: String,
) -> Result<(), UserError> {
    auth::check_name(name)?;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| auth::AuthError::Hash(e.to_string()))??;
    store.add_user(name, role, &hash).await?;
    store.audit(name, "user-added", role.as_str()).await?;
    Ok(())
}

/// Creates an API token for `user`; the token is returned once and kept only as a hash.
pub async fn create_token(
    store: &StateStore,
    user: &str,
    label: &str,
) -> Result<String, UserError> {
    if store.user(user).await?.is_none() {
        return Err(UserError::NoUser(user.to_string()));
    }
    let token = auth::random_token();
    store
        .add_token(&auth::token_hash(&token), user, label)
        .await?;
    store.audit(user, "token-created", label).await?;
    Ok(token)
}

/// Revokes one API token of `user` (or anyone's), named by its id as `leakwatch tokens list`
/// shows it or by its label; a label several tokens carry is refused. Audited as `actor`.
pub async fn revoke_token(
    store: &StateStore,
    id_or_label: &str,
    user: Option<&str>,
    actor: &str,
) -> Result<TokenInfo, UserError> {
    let tokens = store.tokens(user).await?;
    let by_id: Vec<&TokenInfo> = tokens.iter().filter(|t| t.id == id_or_label).collect();
    let found = if by_id.is_empty() {
        tokens.iter().filter(|t| t.label == id_or_label).collect()
    } else {
        by_id
    };
    let token = match found.as_slice() {
        [] => return Err(UserError::NoToken(id_or_label.to_string())),
        [one] => (*one).clone(),
        many => {
            return Err(UserError::AmbiguousToken {
                label: id_or_label.to_string(),
                ids: many.iter().map(|t| t.id.clone()).collect(),
            })
        }
    };
    if !store.revoke_token(&token.token_hash).await? {
        return Err(UserError::NoToken(id_or_label.to_string()));
    }
    let target = format!("{} {} {}", token.id, token.user, token.label);
    store.audit(actor, "token-revoked", &target).await?;
    Ok(token)
}

/// Removes a user, ending its sessions and revoking its tokens, unless it is the last admin.
/// Audited as `actor`.
pub async fn remove_user(
    store: &StateStore,
    name: &str,
    actor: &str,
) -> Result<Removed, UserError> {
    if store.user(name).await?.is_none() {
        return Err(UserError::NoUser(name.to_string()));
    }
    let Some(removed) = store.remove_user(name).await? else {
        return Err(match store.user(name).await? {
            Some(_) => UserError::LastAdmin(name.to_string()),
            None => UserError::NoUser(name.to_string()),
        });
    };
    let target = format!(
        "{name} ({} sessions, {} tokens)",
        removed.sessions, removed.tokens
    );
    store.audit(actor, "user-removed", &target).await?;
    Ok(removed)
}
