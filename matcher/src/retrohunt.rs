//! Retro-hunt: after new fingerprints are imported, check every image already seen and raise
//! alerts for past sightings.
//!
//! Sightings keep no image bytes, only the hashes the matcher recorded for each view of the
//! image ([`RecordedView`]), so the check is retrieval by PDQ (as recorded and mirrored) and
//! verification by signature on the recorded framing ([`Engine::score_recorded`]). Alerts are
//! built by the `alerts` crate exactly as live ones, so a sighting already alerted on keeps
//! its id and is not stored twice.

use schema::Alert;

use crate::engine::{RecordedView, SightingHash};
use crate::{Engine, Sighted};

/// One image sighting as the index kept it.
#[derive(Debug, Clone)]
pub struct RecordedSighting {
    pub url: String,
    pub page_url: Option<String>,
    pub hashes: Vec<SightingHash>,
}

/// What a retro-hunt found.
#[derive(Debug, Clone, Default)]
pub struct RetroHunt {
    /// Sightings checked.
    pub checked: usize,
    /// At most one alert per sighting: the stolen photo it is a copy of, or the camera it is
    /// a frame of.
    pub alerts: Vec<Alert>,
    /// Sightings recorded without views (an older format), which cannot be checked.
    pub unrecorded: usize,
}

/// Checks every sighting against the bank.
pub fn retro_hunt(engine: &Engine, sightings: &[RecordedSighting]) -> RetroHunt {
    let mut out = RetroHunt {
        checked: sightings.len(),
        ..RetroHunt::default()
    };
    for s in sightings {
        let views: Vec<RecordedView> = s.hashes.iter().filter_map(|h| h.view().cloned()).collect();
        if views.is_empty() {
            out.unrecorded += 1;
            continue;
        }
        // The same one-identity decision as live matching (recorded views carry no colour).
        let scored = engine.score_recorded(&views, engine.params.candidates);
        let page = s.page_url.as_deref();
        match crate::sighted(engine, &scored) {
            Some(Sighted::Image {
                label,
                distance,
                algorithm,
            }) => out
                .alerts
                .push(alerts::image(&label, &s.url, page, distance, &algorithm)),
            Some(Sighted::Scene {
                label,
                distance,
                nearest,
            }) => out
                .alerts
                .push(alerts::scene(&label, &s.url, page, distance, &nearest)),
            None => {}
        }
    }
    out
}
