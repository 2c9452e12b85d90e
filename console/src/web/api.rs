//! The JSON API: the console's data for other systems, with per-user bearer tokens
//! (`leakwatch tokens create USER`), described by `console/openapi.json` (served at
//! `/openapi.json`; the tests check the server against it). A failing alert feed fails no
//! request: the answer is what the state holds, and the console's log says the feed is behind.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{AlertsParams, App, ReviewError, ReviewRequest, SearchError, SearchParams};
use crate::auth;

/// The API's description.
pub const OPENAPI: &str = include_str!("../../openapi.json");

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/search", get(search))
        .route("/api/alerts", get(alerts))
        .route("/api/alerts/{id}", get(alert))
        .route("/api/alerts/{id}/review", post(review))
        .route("/api/coverage", get(coverage))
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

fn store_error(e: crate::StoreError) -> Response {
    tracing::error!(error = %e, "console state failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the console's state failed",
    )
}

/// The user a bearer token belongs to.
pub struct ApiUser(pub String);

impl FromRequestParts<Arc<App>> for ApiUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        let unauthorized = || {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "an API token is needed: Authorization: Bearer <token> (leakwatch tokens create USER)",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(unauthorized)?;
        let user = app
            .store
            .token_user(&auth::token_hash(token))
            .await
            .map_err(store_error)?
            .ok_or_else(unauthorized)?;
        // A token outlives nothing: its user must still exist.
        match app.store.user(&user).await.map_err(store_error)? {
            Some(_) => Ok(ApiUser(user)),
            None => Err(unauthorized()),
        }
    }
}

/// A query string that does not parse is the client's error, said in JSON.
type Params<T> = Result<Query<T>, QueryRejection>;

fn bad_query(e: QueryRejection) -> Response {
    error(StatusCode::BAD_REQUEST, e.body_text())
}

async fn search(
    State(app): State<Arc<App>>,
    ApiUser(u): ApiUser,
    p: Params<SearchParams>,
) -> Response {
    let Query(p) = match p {
        Ok(p) => p,
        Err(e) => return bad_query(e),
    };
    let logged = format!(
        "api q={} site={} source={} from={} to={} has_alert={}",
        auth::mask_identifiers(&p.q),
        p.site,
        p.source,
        p.from,
        p.to,
        p.has_alert
    );
    app.audit(&u, "search", &logged).await;
    match app.search(&p).await {
        Ok(page) => Json(json!({ "total": page.total, "offset": p.offset, "hits": page.hits }))
            .into_response(),
        Err(SearchError::Input(m)) => error(StatusCode::BAD_REQUEST, m),
        Err(SearchError::Store(e)) => store_error(e),
        Err(SearchError::Internal(m)) => {
            tracing::error!(error = %m, "search failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the search failed")
        }
    }
}

async fn alerts(
    State(app): State<Arc<App>>,
    ApiUser(u): ApiUser,
    p: Params<AlertsParams>,
) -> Response {
    let Query(p) = match p {
        Ok(p) => p,
        Err(e) => return bad_query(e),
    };
    app.catch_up().await;
    let f = p.filter(p.limit.unwrap_or(100).clamp(1, 500));
    app.audit(
        &u,
        "list-alerts",
        &format!(
            "api state={} kind={} label={} site={}",
            p.state, p.kind, p.label, p.site
        ),
    )
    .await;
    match app.store.alerts(&f).await {
        Ok((total, rows)) => {
            Json(json!({ "total": total, "offset": f.offset, "alerts": rows })).into_response()
        }
        Err(e) => store_error(e),
    }
}

async fn alert(
    State(app): State<Arc<App>>,
    ApiUser(u): ApiUser,
    Path(id): Path<String>,
) -> Response {
    app.catch_up().await;
    app.audit(&u, "view-alert", &format!("api {id}")).await;
    match app.store.alert(&id).await {
        Ok(Some(a)) => Json(a).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such alert"),
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    state: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    negative: bool,
}

async fn review(
    State(app): State<Arc<App>>,
    ApiUser(u): ApiUser,
    Path(id): Path<String>,
    body: Result<Json<ReviewBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(b) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let ids = [id.clone()];
    let r = ReviewRequest {
        ids: &ids,
        state: &b.state,
        note: &b.note,
        negative: b.negative,
    };
    match app.review(&u, &r).await {
        Ok(0) => error(StatusCode::NOT_FOUND, "no such alert"),
        Ok(_) => match app.store.alert(&id).await {
            Ok(Some(a)) => Json(a).into_response(),
            Ok(None) => error(StatusCode::NOT_FOUND, "no such alert"),
            Err(e) => store_error(e),
        },
        Err(ReviewError::Input(m)) => error(StatusCode::BAD_REQUEST, m),
        Err(ReviewError::NotFound) => error(StatusCode::NOT_FOUND, "no such alert"),
        Err(ReviewError::Store(e)) => store_error(e),
    }
}

async fn coverage(State(app): State<Arc<App>>, ApiUser(u): ApiUser) -> Response {
    app.catch_up().await;
    app.audit(&u, "view-coverage", "api").await;
    match app.coverage().await {
        Ok(c) => Json(c).into_response(),
        Err(e) => store_error(e),
    }
}
