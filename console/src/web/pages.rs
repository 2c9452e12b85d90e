//! The HTML pages: login, alerts and their review, search and stored pages, coverage, and
//! (for admins) users and the audit log. Every handler that shows data writes an audit entry.
//! The pages that show alerts read new ones first; when the alert feed fails they show what
//! the state holds, under a banner saying the feed is behind.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::header::{self, HeaderMap};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Value};
use serde::Deserialize;

use super::{
    check_post, cookie, internal, set_cookie, AlertsParams, App, FormData, ReviewError,
    ReviewRequest, SearchError, SearchParams, Viewer, LOGIN_COOKIE, SESSION_COOKIE, SESSION_TTL,
};
use crate::auth;
use crate::store::{AlertFilter, Session, UserRole, STATES};

const KINDS: &[&str] = &["image", "scene", "text"];
const PER_PAGE: i64 = 50;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(|_: Viewer| async { Redirect::to("/alerts") }))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/alerts", get(alerts))
        .route("/alerts/review", post(bulk_review))
        .route("/alerts/{id}", get(alert))
        .route("/alerts/{id}/review", post(review))
        .route("/search", get(search))
        .route("/page", get(page))
        .route("/coverage", get(coverage))
        .route("/users", get(users).post(add_user))
        .route("/audit", get(audit))
}

/// The client's address, for login rate limiting and the audit log.
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".into(), |c| c.0.ip().to_string()),
        ))
    }
}

/// What every page's layout needs.
fn base(v: &Viewer, nav: &str, title: &str) -> Value {
    context! { viewer => v, csrf => v.csrf, nav => nav, title => title }
}

fn message(app: &App, v: Option<&Viewer>, status: StatusCode, title: &str, msg: &str) -> Response {
    let ctx = context! {
        viewer => v, csrf => v.map(|v| v.csrf.clone()), nav => "", title => title, message => msg,
    };
    (status, app.render("message.html", ctx)).into_response()
}

fn forbidden(app: &App, v: &Viewer) -> Response {
    message(
        app,
        Some(v),
        StatusCode::FORBIDDEN,
        "Not allowed",
        "Only admins may see this page.",
    )
}

fn bad_form(app: &App, v: &Viewer) -> Response {
    message(
        app,
        Some(v),
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form's security token is missing or stale. Go back, reload the page and try again.",
    )
}

fn no_such_alert(app: &App, v: &Viewer) -> Response {
    message(
        app,
        Some(v),
        StatusCode::NOT_FOUND,
        "No such alert",
        "There is no alert with this id.",
    )
}

fn login_page(app: &App, status: StatusCode, error: Option<&str>) -> Response {
    let token = auth::random_token();
    let ctx = context! {
        viewer => Value::from(()), csrf => token, nav => "", title => "Sign in", error => error,
    };
    let mut res = (status, app.render("login.html", ctx)).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_COOKIE,
            &token,
            "/login",
            std::time::Duration::from_secs(900),
        ),
    );
    res
}

async fn login_form(State(app): State<Arc<App>>) -> Response {
    login_page(&app, StatusCode::OK, None)
}

async fn login(
    State(app): State<Arc<App>>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !check_post(&headers, form.get("csrf"), expected) {
        return login_page(
            &app,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired; please try again."),
        );
    }
    let name: String = form.get("user").unwrap_or("").chars().take(64).collect();
    let password = form.get("password").unwrap_or("").to_string();
    if let Err(wait) = app.limiter.attempt(&name, &addr) {
        // Logged, not audited: refusals cost an attacker nothing and must not fill the log.
        tracing::warn!(user = %name, %addr, "login refused: too many failures");
        let msg = format!(
            "Too many failed sign-ins. Try again in {} s.",
            wait.as_secs().max(1)
        );
        return login_page(&app, StatusCode::TOO_MANY_REQUESTS, Some(&msg));
    }
    let user = match app.store.user(&name).await {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    // A few argon2 checks at a time (each takes ~19 MiB): a burst of logins queues here.
    let ok = match app.verifying.acquire().await {
        Ok(_permit) => {
            tokio::task::spawn_blocking(move || auth::verify_password(&password, hash.as_deref()))
                .await
                .unwrap_or(false)
        }
        Err(_) => false,
    };
    if !ok {
        app.audit(&name, "login-failed", &format!("from {addr}"))
            .await;
        return login_page(
            &app,
            StatusCode::UNAUTHORIZED,
            Some("Unknown user or wrong password."),
        );
    }
    app.limiter.succeeded(&name, &addr);
    let token = auth::random_token();
    let session = Session {
        token_hash: auth::token_hash(&token),
        user: name.clone(),
        csrf: auth::random_token(),
        expires_at: crate::store::unix_now() + SESSION_TTL.as_secs() as i64,
    };
    if let Err(e) = app.store.add_session(&session).await {
        return internal(e);
    }
    app.audit(&name, "login", &format!("from {addr}")).await;
    let mut res = Redirect::to("/alerts").into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, "/", SESSION_TTL),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", "/login", std::time::Duration::ZERO),
    );
    res
}

async fn logout(
    State(app): State<Arc<App>>,
    v: Viewer,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    if !check_post(&headers, form.get("csrf"), &v.csrf) {
        return bad_form(&app, &v);
    }
    if let Err(e) = app.store.end_session(&v.token_hash).await {
        return internal(e);
    }
    app.audit(&v.name, "logout", "").await;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", "/", std::time::Duration::ZERO),
    );
    res
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        s.append_pair(k, v);
    }
    s.finish()
}

async fn alerts(State(app): State<Arc<App>>, v: Viewer, Query(p): Query<AlertsParams>) -> Response {
    let behind = app.catch_up().await;
    let f = p.filter(PER_PAGE);
    let (total, rows) = match app.store.alerts(&f).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let filters = [
        ("state", p.state.as_str()),
        ("kind", p.kind.as_str()),
        ("label", p.label.as_str()),
        ("site", p.site.as_str()),
    ];
    let at = |offset: i64| {
        let o = offset.to_string();
        let mut pairs = filters.to_vec();
        pairs.push(("offset", if offset > 0 { &o } else { "" }));
        format!("/alerts?{}", query_string(&pairs))
    };
    let prev = (f.offset > 0).then(|| at((f.offset - PER_PAGE).max(0)));
    let next = (f.offset.saturating_add(PER_PAGE) < total).then(|| at(f.offset + PER_PAGE));
    app.audit(&v.name, "list-alerts", &query_string(&filters))
        .await;
    let ctx = context! {
        alerts => rows, total => total, f => p, states => STATES, kinds => KINDS,
        prev => prev, next => next, back => at(f.offset), notice => Value::from(()),
        feed_behind => behind, ..base(&v, "alerts", "Alerts")
    };
    app.render("alerts.html", ctx)
}

/// Where a bulk review returns to: an alerts listing only.
fn safe_back(back: Option<&str>) -> String {
    match back {
        Some(b) if b.starts_with("/alerts") && !b.starts_with("//") => b.to_string(),
        _ => "/alerts".into(),
    }
}

async fn bulk_review(
    State(app): State<Arc<App>>,
    v: Viewer,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    if !check_post(&headers, form.get("csrf"), &v.csrf) {
        return bad_form(&app, &v);
    }
    let ids = form.all("ids");
    let r = ReviewRequest {
        ids: &ids,
        state: form.get("state").unwrap_or(""),
        note: form.get("note").unwrap_or(""),
        negative: false,
    };
    match app.review(&v.name, &r).await {
        Ok(_) => Redirect::to(&safe_back(form.get("back"))).into_response(),
        Err(ReviewError::Input(m)) => message(
            &app,
            Some(&v),
            StatusCode::BAD_REQUEST,
            "Review not saved",
            &m,
        ),
        Err(ReviewError::NotFound) => no_such_alert(&app, &v),
        Err(ReviewError::Store(e)) => internal(e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AlertParams {
    saved: String,
}

async fn alert(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(id): Path<String>,
    Query(p): Query<AlertParams>,
) -> Response {
    let notice = (!p.saved.is_empty()).then_some("Review saved.");
    alert_page(&app, &v, &id, StatusCode::OK, notice, None).await
}

async fn alert_page(
    app: &App,
    v: &Viewer,
    id: &str,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let behind = app.catch_up().await;
    let a = match app.store.alert(id).await {
        Ok(Some(a)) => a,
        Ok(None) => return no_such_alert(app, v),
        Err(e) => return internal(e),
    };
    let span = match app.seen_span(&a.kind, &a.label).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let first_seen = span
        .iter()
        .map(|o| o.detected_at.as_str())
        .min()
        .unwrap_or("");
    let last_seen = span
        .iter()
        .map(|o| o.detected_at.as_str())
        .max()
        .unwrap_or("");
    let others: Vec<_> = span.iter().filter(|o| o.id != a.id).collect();
    let image = if a.kind == "text" {
        None
    } else {
        app.image(&a.url).await
    };
    app.audit(&v.name, "view-alert", id).await;
    let ctx = context! {
        a => a, others => others, first_seen => first_seen, last_seen => last_seen,
        image => image, states => STATES, notice => notice, error => error,
        feed_behind => behind, ..base(v, "alerts", "Alert")
    };
    (status, app.render("alert.html", ctx)).into_response()
}

async fn review(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    if !check_post(&headers, form.get("csrf"), &v.csrf) {
        return bad_form(&app, &v);
    }
    let ids = [id.clone()];
    let r = ReviewRequest {
        ids: &ids,
        state: form.get("state").unwrap_or(""),
        note: form.get("note").unwrap_or(""),
        negative: form.get("negative").is_some_and(|n| n == "1"),
    };
    match app.review(&v.name, &r).await {
        Ok(0) => no_such_alert(&app, &v),
        Ok(_) => Redirect::to(&format!("/alerts/{}?saved=1", urlencode(&id))).into_response(),
        Err(ReviewError::Input(m)) => {
            alert_page(&app, &v, &id, StatusCode::BAD_REQUEST, None, Some(&m)).await
        }
        Err(ReviewError::NotFound) => no_such_alert(&app, &v),
        Err(ReviewError::Store(e)) => internal(e),
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn search(State(app): State<Arc<App>>, v: Viewer, Query(p): Query<SearchParams>) -> Response {
    let searched = !(p.q.trim().is_empty()
        && p.site.is_empty()
        && p.source.is_empty()
        && p.from.is_empty()
        && p.to.is_empty()
        && !p.has_alert());
    let mut ctx = context! { p => p, searched => searched, hits => Value::from(()), total => 0,
    error => Value::from(()), prev => Value::from(()), next => Value::from(()) };
    let mut status = StatusCode::OK;
    if searched {
        let logged = format!(
            "q={} site={} source={} from={} to={} has_alert={}",
            auth::mask_identifiers(&p.q),
            p.site,
            p.source,
            p.from,
            p.to,
            p.has_alert
        );
        app.audit(&v.name, "search", &logged).await;
        match app.search(&p).await {
            Ok(page) => {
                let limit = p.limit.unwrap_or(20).clamp(1, 100);
                let link = |offset: usize| {
                    let mut q = p.clone();
                    q.offset = offset;
                    q.limit = None;
                    format!("/search?{}", serde_urlencoded_pairs(&q))
                };
                let prev = (p.offset > 0).then(|| link(p.offset.saturating_sub(limit)));
                let next =
                    (p.offset.saturating_add(limit) < page.total).then(|| link(p.offset + limit));
                ctx = context! { hits => page.hits, total => page.total, prev => prev, next => next, ..ctx };
            }
            Err(SearchError::Input(m)) => {
                status = StatusCode::BAD_REQUEST;
                ctx = context! { error => m, searched => false, ..ctx };
            }
            Err(SearchError::Store(e)) => return internal(e),
            Err(SearchError::Internal(m)) => {
                tracing::error!(error = %m, "search failed");
                status = StatusCode::INTERNAL_SERVER_ERROR;
                ctx = context! { error => "The search failed; see the console's log.", searched => false, ..ctx };
            }
        }
    }
    let ctx = context! { ..ctx, ..base(&v, "search", "Search") };
    (status, app.render("search.html", ctx)).into_response()
}

/// The query string of a search, for its pagination links.
fn serde_urlencoded_pairs(p: &SearchParams) -> String {
    let offset = p.offset.to_string();
    query_string(&[
        ("q", &p.q),
        ("site", &p.site),
        ("source", &p.source),
        ("from", &p.from),
        ("to", &p.to),
        ("has_alert", &p.has_alert),
        ("sort", &p.sort),
        ("offset", if p.offset > 0 { &offset } else { "" }),
    ])
}

#[derive(Debug, Deserialize)]
struct PageParams {
    url: String,
}

async fn page(State(app): State<Arc<App>>, v: Viewer, Query(p): Query<PageParams>) -> Response {
    app.audit(&v.name, "view-page", &p.url).await;
    let index = app.index.clone();
    let url = p.url.clone();
    let found = tokio::task::spawn_blocking(move || {
        let page = index.page(&url)?;
        let images = index.images_on(&url)?;
        Ok::<_, indexer::IndexError>((page, images))
    })
    .await;
    let (page, images) = match found {
        Ok(Ok((Some(page), images))) => (page, images),
        Ok(Ok((None, _))) => {
            return message(
                &app,
                Some(&v),
                StatusCode::NOT_FOUND,
                "Not in the index",
                "No page with this URL has been indexed.",
            )
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "page lookup failed");
            return message(
                &app,
                Some(&v),
                StatusCode::INTERNAL_SERVER_ERROR,
                "Index error",
                "The page could not be read from the index.",
            );
        }
        Err(_) => {
            return message(
                &app,
                Some(&v),
                StatusCode::INTERNAL_SERVER_ERROR,
                "Index error",
                "The page could not be read from the index.",
            )
        }
    };
    let f = AlertFilter {
        page_url: Some(p.url.clone()),
        limit: 200,
        ..Default::default()
    };
    let alerts = match app.store.alerts(&f).await {
        Ok((_, rows)) => rows,
        Err(e) => return internal(e),
    };
    let ctx = context! { page => page, images => images, alerts => alerts, ..base(&v, "search", "Stored page") };
    app.render("page.html", ctx)
}

async fn coverage(State(app): State<Arc<App>>, v: Viewer) -> Response {
    let behind = app.catch_up().await;
    let c = match app.coverage().await {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    app.audit(&v.name, "view-coverage", "").await;
    let chart = crate::coverage::chart(&c.per_day);
    let ctx = context! {
        photos => c.photos, photos_total => c.photos_total, identifiers => c.identifiers,
        identifiers_total => c.identifiers_total, scenes => c.scenes, sightings => c.sightings,
        first_seen => c.first_seen, sites => c.sites, surfaced => c.surfaced, chart => chart,
        feed_behind => behind, ..base(&v, "coverage", "Coverage")
    };
    app.render("coverage.html", ctx)
}

async fn users(State(app): State<Arc<App>>, v: Viewer) -> Response {
    if !v.admin {
        app.audit(&v.name, "denied", "users").await;
        return forbidden(&app, &v);
    }
    users_page(&app, &v, StatusCode::OK, None, None).await
}

async fn users_page(
    app: &App,
    v: &Viewer,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let users = match app.store.users().await {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    app.audit(&v.name, "list-users", "").await;
    let ctx =
        context! { users => users, notice => notice, error => error, ..base(v, "users", "Users") };
    (status, app.render("users.html", ctx)).into_response()
}

async fn add_user(
    State(app): State<Arc<App>>,
    v: Viewer,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    if !check_post(&headers, form.get("csrf"), &v.csrf) {
        return bad_form(&app, &v);
    }
    if !v.admin {
        app.audit(&v.name, "denied", "add-user").await;
        return forbidden(&app, &v);
    }
    let name = form.get("name").unwrap_or("").to_string();
    let Some(role) = form.get("role").and_then(UserRole::parse) else {
        return users_page(
            &app,
            &v,
            StatusCode::BAD_REQUEST,
            None,
            Some("role must be analyst or admin"),
        )
        .await;
    };
    let password = form.get("password").unwrap_or("").to_string();
    match crate::add_user(&app.store, &name, role, password).await {
        Ok(()) => {
            app.audit(&v.name, "add-user", &format!("{name} {}", role.as_str()))
                .await;
            let msg = format!("Added {name}.");
            users_page(&app, &v, StatusCode::OK, Some(&msg), None).await
        }
        Err(e) => {
            users_page(
                &app,
                &v,
                StatusCode::BAD_REQUEST,
                None,
                Some(&e.to_string()),
            )
            .await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AuditParams {
    limit: Option<i64>,
}

async fn audit(State(app): State<Arc<App>>, v: Viewer, Query(p): Query<AuditParams>) -> Response {
    if !v.admin {
        app.audit(&v.name, "denied", "audit").await;
        return forbidden(&app, &v);
    }
    let entries = match app.store.audit_log(p.limit.unwrap_or(500)).await {
        Ok(e) => e,
        Err(e) => return internal(e),
    };
    app.audit(&v.name, "view-audit", "").await;
    let ctx = context! { entries => entries, ..base(&v, "audit", "Audit log") };
    app.render("audit.html", ctx)
}
