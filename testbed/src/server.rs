//! Serving a rendered site from memory.
//!
//! A normal site is just a path → (content type, bytes) map, so one fallback
//! handler serves all of it; unknown paths get a 404 page. Query strings are
//! ignored, as on many real sites.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;

type Files = HashMap<String, (&'static str, Bytes)>;

/// A router serving `files` (path → content type and body).
pub fn site_router(files: BTreeMap<String, (&'static str, Vec<u8>)>) -> Router {
    let files: Files = files
        .into_iter()
        .map(|(path, (ct, body))| (path, (ct, Bytes::from(body))))
        .collect();
    Router::new().fallback(serve).with_state(Arc::new(files))
}

async fn serve(State(files): State<Arc<Files>>, uri: Uri) -> Response {
    match files.get(uri.path()) {
        Some((content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type)], body.clone()).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><head><title>not found</title></head><body><p>not found</p></body></html>",
        )
            .into_response(),
    }
}
