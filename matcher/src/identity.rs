//! One identity per found image: which stolen photo it is, or that it is a frame of a stolen
//! photo's camera and none of the photos, or nothing.
//!
//! A breach of border-camera photos is thousands of frames per camera: same background, cars
//! of the same model, differing in paint, plate and driver. The verified score of
//! [`crate::engine`] ranks the candidates; the decision here asks more of the best one before
//! it names a photo, because an alert naming the wrong photo is evidence about the wrong
//! person:
//!
//! - **its score**, as before ([`Params::threshold`](crate::engine::Params));
//! - **every part of it agrees**: the second-worst block of the fine grid
//!   ([`Evidence::local2`]) — a copy disagrees a little everywhere, another car of the same
//!   model a lot where its plate and its driver are. (The worst block alone would also catch
//!   one edit at one place, a caption or a banner's edge.)
//! - **its colour agrees** when both images have colour ([`Evidence::colour`]): a repaint of
//!   the same luminance is invisible to every luminance print;
//! - **its details agree** ([`Evidence::detail`]): the worst window of the 64×64 detail
//!   print ([`crate::detail`]), where a plate's characters and the driver are resolved — a
//!   twin whose paint is close, or a grey or brightened copy of one, still differs there;
//! - **it is clearly better than the runner-up**: every other candidate that also agrees
//!   must score at least a margin worse, so two siblings that explain the image about
//!   equally well name neither. A sibling that fails the checks above is no rival: a
//!   repainted twin at distance 1 does not hide the photo at distance 0.
//!
//! An image that fails these but agrees with a candidate's camera background
//! ([`Evidence::scene`]) is a **scene** sighting: news (probably more of the breach), but not
//! a sighting of any one photo. It names the camera's cluster and lists the nearest photos as
//! context.

use crate::engine::{Engine, Evidence, Scored};

/// The thresholds of the decision (scores ×256 as in [`Scored::distance`], colour in chroma
/// units). Chosen on a development set of same-model twins, never on the set the benchmark
/// reports (see `bench/README.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// The runner-up must score at least this much worse than the best.
    pub margin: u32,
    /// Highest disagreement of the second-worst fine block for a named photo.
    pub local: f32,
    /// Highest colour distance for a named photo.
    pub colour: f32,
    /// Highest background disagreement for a scene sighting.
    pub scene: f32,
    /// Highest disagreement of the worst window of the detail print for a named photo.
    pub detail: f32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            margin: 4,
            local: 0.35,
            colour: 10.0,
            scene: 0.15,
            detail: 0.2,
        }
    }
}

/// What a found image is.
#[derive(Debug, Clone, PartialEq)]
pub enum Identity {
    /// A copy of this stolen photo.
    Photo(Scored),
    /// A frame of the camera of `cluster` (a bank index naming it) that is none of the
    /// stolen photos; `nearest` are the best candidates, best first.
    Scene {
        cluster: usize,
        nearest: Vec<Scored>,
    },
    /// Nothing the bank knows.
    Unknown,
}

impl Rules {
    /// Whether every measurement of a verified candidate agrees with its photo.
    pub fn agrees(&self, e: &Evidence) -> bool {
        e.local2 <= self.local
            && e.colour.is_none_or(|c| c <= self.colour)
            && e.detail.is_none_or(|d| d <= self.detail)
    }
}

/// The identity of a found image from its candidates, best first (as [`Engine::score`]
/// ranks them; at least the best two are needed for the margin).
pub fn identify(engine: &Engine, ranked: &[Scored], rules: &Rules) -> Identity {
    let Some(best) = ranked.first() else {
        return Identity::Unknown;
    };
    if !best.verified {
        // A bare hash: no signature to verify with, decided by hash distance alone.
        return if best.matched {
            Identity::Photo(*best)
        } else {
            Identity::Unknown
        };
    }
    // The best candidate that matches and agrees in every part and in colour; named only if
    // no other agreeing candidate comes within the margin of it.
    let agreeing = |s: &&Scored| s.verified && rules.agrees(&s.evidence);
    if let Some(named) = ranked.iter().filter(agreeing).find(|s| s.matched) {
        let rival = ranked
            .iter()
            .filter(agreeing)
            .any(|s| s.entry != named.entry && s.distance < named.distance + rules.margin);
        if !rival {
            return Identity::Photo(*named);
        }
    }
    let of_scene: Vec<Scored> = ranked
        .iter()
        .filter(|s| s.verified && s.evidence.scene.is_some_and(|d| d <= rules.scene))
        .copied()
        .collect();
    match of_scene.first() {
        Some(near) => Identity::Scene {
            cluster: engine.cluster(near.entry),
            nearest: of_scene,
        },
        None => Identity::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Entry, Params};

    fn scored(entry: usize, distance: u32, local: f32, colour: Option<f32>, scene: f32) -> Scored {
        scored_detail(entry, distance, local, colour, scene, None)
    }

    fn scored_detail(
        entry: usize,
        distance: u32,
        local: f32,
        colour: Option<f32>,
        scene: f32,
        detail: Option<f32>,
    ) -> Scored {
        Scored {
            entry,
            distance,
            hash_distance: 10,
            matched: distance <= Params::default().threshold,
            verified: true,
            evidence: Evidence {
                local,
                local2: local,
                colour,
                scene: Some(scene),
                detail,
                ..Evidence::default()
            },
        }
    }

    fn engine() -> Engine {
        let entries = (0..4)
            .map(|i| Entry {
                label: format!("p-{i}"),
                regions: vec![[i as u8; 32]],
                signature: None,
                colour: None,
                detail: None,
            })
            .collect();
        Engine::new(entries, Params::default())
    }

    #[test]
    fn a_repainted_twin_is_no_rival_but_a_grey_one_is() {
        let (e, r) = (engine(), Rules::default());
        // The copy of photo 0 at 0; its twin (photo 1) at 1, other paint.
        let ranked = [
            scored(0, 0, 0.0, Some(1.0), 0.0),
            scored(1, 1, 0.1, Some(40.0), 0.0),
        ];
        assert_eq!(identify(&e, &ranked, &r), Identity::Photo(ranked[0]));
        // A grey copy: colour says nothing, the twin explains it as well, neither is named.
        let grey = [scored(0, 0, 0.0, None, 0.0), scored(1, 2, 0.1, None, 0.0)];
        assert!(matches!(identify(&e, &grey, &r), Identity::Scene { .. }));
        // ... unless the twin is clearly worse.
        let clear = [scored(0, 0, 0.0, None, 0.0), scored(1, 9, 0.2, None, 0.0)];
        assert_eq!(identify(&e, &clear, &r), Identity::Photo(clear[0]));
    }

    #[test]
    fn a_part_that_disagrees_names_no_photo_but_the_camera() {
        let (e, r) = (engine(), Rules::default());
        // Near overall, but one block (the plate) disagrees: another car, same camera.
        let plate = [scored(2, 6, 0.7, None, 0.02)];
        match identify(&e, &plate, &r) {
            Identity::Scene { nearest, .. } => assert_eq!(nearest[0].entry, 2),
            other => panic!("{other:?}"),
        }
        // Another paint, same camera.
        let paint = [scored(2, 3, 0.1, Some(35.0), 0.02)];
        assert!(matches!(identify(&e, &paint, &r), Identity::Scene { .. }));
        // Another paint, another camera: nothing.
        let elsewhere = [scored(2, 3, 0.1, Some(35.0), 0.4)];
        assert_eq!(identify(&e, &elsewhere, &r), Identity::Unknown);
        assert_eq!(identify(&e, &[], &r), Identity::Unknown);
    }

    #[test]
    fn a_twin_with_the_same_paint_and_another_plate_is_not_named() {
        let (e, r) = (engine(), Rules::default());
        // Near everywhere, same paint, every fine block agrees: only the plate's window of
        // the detail print disagrees. Another car of the camera, not the photo.
        let twin = [scored_detail(1, 3, 0.1, Some(2.0), 0.01, Some(0.45))];
        match identify(&e, &twin, &r) {
            Identity::Scene { nearest, .. } => assert_eq!(nearest[0].entry, 1),
            other => panic!("{other:?}"),
        }
        // A copy agrees in its details too, and is named.
        let copy = [scored_detail(1, 3, 0.1, Some(2.0), 0.01, Some(0.08))];
        assert_eq!(identify(&e, &copy, &r), Identity::Photo(copy[0]));
    }
}
