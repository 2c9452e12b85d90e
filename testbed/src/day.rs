//! A day on a live forum, time compressed: new threads (some planting a stolen photo or
//! identifier), edits of old threads and take-downs, spread over the day the way a busy board
//! sees them. `bench/continuous` runs one against a continuously watching leakwatch and
//! measures detection latency and request rates from the forum's own log.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::{LiveForum, LivePost, LiveRequest, Plant};

/// What happens in a day, and how long a day lasts here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DayPlan {
    /// Real time one simulated day takes.
    pub day: Duration,
    /// New threads in the day.
    pub threads: u32,
    /// Every n-th new thread plants a leak (alternately a photo and an identifier).
    pub leak_every: u32,
    /// Edits of existing threads (every third plants an identifier).
    pub edits: u32,
    /// Threads taken down.
    pub takedowns: u32,
    pub seed: u64,
}

impl Default for DayPlan {
    fn default() -> Self {
        DayPlan {
            day: Duration::from_secs(240),
            threads: 96,
            leak_every: 8,
            edits: 24,
            takedowns: 6,
            seed: 1,
        }
    }
}

/// Everything the day did and everything the forum served.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DayLog {
    pub plan: DayPlan,
    /// New threads that planted a leak.
    pub new_leaks: Vec<LivePost>,
    /// Edits of existing threads that planted a leak.
    pub edit_leaks: Vec<LivePost>,
    pub requests: Vec<LiveRequest>,
}

#[derive(Clone, Copy)]
enum Event {
    Post,
    Edit,
    TakeDown,
}

/// Runs `plan` on `forum`, cycling through `photos` and `identifiers` for the leaks, then
/// returns the leaks planted by new threads and by edits (the request log is read by the
/// caller when it is done).
pub async fn run_day(
    forum: &LiveForum,
    plan: &DayPlan,
    photos: usize,
    identifiers: usize,
) -> (Vec<LivePost>, Vec<LivePost>) {
    let mut rng = Rng::new(plan.seed);
    let mut events: Vec<(f64, Event)> = Vec::new();
    let mut add = |n: u32, e: Event, rng: &mut Rng| {
        for _ in 0..n {
            events.push((rng.unit(), e));
        }
    };
    add(plan.threads, Event::Post, &mut rng);
    add(plan.edits, Event::Edit, &mut rng);
    add(plan.takedowns, Event::TakeDown, &mut rng);
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let start = Instant::now();
    let (mut posted, mut edited, mut leaks) = (0u32, 0u32, 0usize);
    let (mut new_leaks, mut edit_leaks) = (Vec::new(), Vec::new());
    for (at, event) in events {
        tokio::time::sleep_until((start + plan.day.mul_f64(at)).into()).await;
        let threads = forum.posts().iter().map(|p| p.n).max().unwrap_or(0);
        match event {
            Event::Post => {
                posted += 1;
                let plant = if plan.leak_every > 0 && posted % plan.leak_every == 0 {
                    leaks += 1;
                    leak(leaks, photos, identifiers)
                } else {
                    Plant::Nothing
                };
                let p = forum.post(plant);
                if p.plant != Plant::Nothing {
                    new_leaks.push(p);
                }
            }
            Event::Edit if threads > 0 => {
                edited += 1;
                let plant = if edited % 3 == 0 {
                    leaks += 1;
                    leak(leaks, photos, identifiers)
                } else {
                    Plant::Nothing
                };
                // Old threads are edited more often than not: an edit deep in the archive is
                // what a schedule that backs off quiet pages finds last.
                let n = 1 + rng.below(threads);
                if let Some(p) = forum.edit(n, plant) {
                    if p.plant != Plant::Nothing {
                        edit_leaks.push(p);
                    }
                }
            }
            Event::TakeDown if threads > 0 => forum.take_down(1 + rng.below(threads)),
            _ => {}
        }
    }
    (new_leaks, edit_leaks)
}

/// The `k`-th leak: photos and identifiers in turn, each index used once while it lasts.
fn leak(k: usize, photos: usize, identifiers: usize) -> Plant {
    if k % 2 == 1 && photos > 0 {
        Plant::Photo((k / 2) % photos)
    } else {
        Plant::Identifier((k / 2) % identifiers.max(1))
    }
}
