//! Alerts: the one place that says how an alert is built, where each is kept once, and how a
//! reader follows them as they arrive.
//!
//! - construction ([`image`], [`text`]): the live matcher and the retro-hunt build the same
//!   alert for the same sighting, so its content-hash id dedupes across both;
//! - [`store`]: the append-only, deduplicated alert log the indexer writes;
//! - [`negatives`]: images marked as false positives, which never alert again;
//! - [`follow`]: print-as-they-arrive, from the store (one machine) or from a queue bound to
//!   the `alerts` exchange (a broker).
//!
//! The message itself ([`Alert`]) is part of the bus schema, in `schema`.

pub mod follow;
pub mod negatives;
pub mod store;

pub use schema::{Alert, AlertKind};
pub use store::{load, AlertStore, ALERTS_FILE};

/// The `algorithm` of a text alert: watched identifiers are kept as keyed hashes.
pub const TEXT_ALGORITHM: &str = "hmac-sha256";

/// Errors of the alert store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another process writes this store, or the data dir refused us.
    #[error(transparent)]
    DataDir(#[from] datadir::DataDirError),
}

/// An image alert: the found image at `url` (on `page_url`) is a copy of the stolen photo
/// `label`, decided with `algorithm` at score `distance`.
pub fn image(
    label: &str,
    url: &str,
    page_url: Option<&str>,
    distance: u32,
    algorithm: &str,
) -> Alert {
    Alert {
        id: Alert::id_for(AlertKind::Image, label, url),
        kind: AlertKind::Image,
        url: url.to_string(),
        page_url: page_url.map(str::to_string),
        label: label.to_string(),
        distance,
        algorithm: algorithm.to_string(),
        detected_at: schema::now_rfc3339(),
        page_fetched_at: None,
        listed_at: None,
        context: Vec::new(),
        identifier: None,
    }
}

/// A scene alert: the found image at `url` (on `page_url`) is a frame of the camera whose
/// cluster is `cluster`, and none of the stolen photos; `nearest` are the nearest stolen
/// photos (context for the analyst, not a claim).
pub fn scene(
    cluster: &str,
    url: &str,
    page_url: Option<&str>,
    distance: u32,
    nearest: &[String],
) -> Alert {
    Alert {
        id: Alert::id_for(AlertKind::Scene, cluster, url),
        kind: AlertKind::Scene,
        url: url.to_string(),
        page_url: page_url.map(str::to_string),
        label: cluster.to_string(),
        distance,
        algorithm: "pdq+grid".to_string(),
        detected_at: schema::now_rfc3339(),
        page_fetched_at: None,
        listed_at: None,
        context: nearest.to_vec(),
        identifier: None,
    }
}

/// A text alert: the page at `page_url` contains the watched identifier `label`, seen as
/// `sighting` (kind, masked value, position).
pub fn text(label: &str, page_url: &str, sighting: schema::IdentifierSighting) -> Alert {
    Alert {
        id: Alert::id_for(AlertKind::Text, label, page_url),
        kind: AlertKind::Text,
        url: page_url.to_string(),
        page_url: Some(page_url.to_string()),
        label: label.to_string(),
        distance: 0,
        algorithm: TEXT_ALGORITHM.to_string(),
        detected_at: schema::now_rfc3339(),
        page_fetched_at: None,
        listed_at: None,
        context: Vec::new(),
        identifier: Some(sighting),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_depend_on_kind_label_and_url_only() {
        let a = super::image("cam-1", "http://x/a.jpg", Some("http://x/"), 3, "pdq+grid");
        let b = super::image("cam-1", "http://x/a.jpg", None, 9, "pdq");
        assert_eq!(a.id, b.id);
        assert_ne!(
            a.id,
            super::image("cam-2", "http://x/a.jpg", None, 3, "pdq").id
        );
        let seen = schema::IdentifierSighting {
            kind: "plate".into(),
            masked: "K*****1".into(),
            field: "text".into(),
            offset: 0,
        };
        let t = super::text("cam-1", "http://x/a.jpg", seen.clone());
        assert_ne!(a.id, t.id);
        let elsewhere = schema::IdentifierSighting { offset: 99, ..seen };
        assert_eq!(t.id, super::text("cam-1", "http://x/a.jpg", elsewhere).id);
        assert_eq!(t.page_url.as_deref(), Some("http://x/a.jpg"));
    }
}
