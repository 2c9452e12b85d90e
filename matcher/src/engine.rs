//! The matching decision: from a found image to "this is stolen photo X" or nothing.
//!
//! Two stages, because one number cannot be both cheap to search and discriminating:
//!
//! 1. **Retrieval** by 256-bit perceptual hashes in a multi-index. The bank holds, per stolen
//!    photo, hashes of the whole photo and of a few regions (the centre without a 4% border,
//!    the top and the bottom 85%), so a cropped copy or one with a banner over an edge is still
//!    near one of them. The found image is hashed per [`views::View`] (whole, trimmed of
//!    uniform borders, photos embedded in a page) and per orientation: all eight symmetries of
//!    the whole view, and the mirror image of the regions. Mirroring is done on the query side:
//!    it costs a few hashes per found image instead of multiplying the bank by eight.
//! 2. **Verification** of each candidate with its spatial [`grid::Signature`], weighted by what
//!    the bank says is that photo's own content, with a small search over framings. The score
//!    decides, so two cars from one camera — near in every global hash — are told apart.
//!    A candidate that could be named is also compared on its [`crate::detail`] print, where
//!    plates and drivers are resolved, for [`crate::identity`] to judge.
//!
//! Fingerprints imported as bare hashes (no signature) are decided by hash distance alone, at
//! a stricter threshold.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::colour::{Chroma, ColourGrid};
use crate::detail::{Detail, DetailWeights};
use crate::grid::{self, Signature, Weights};
use crate::hashing::{hamming, Hash256};
use crate::views::{self, Orientation, Plane, Rect, View};

/// Regions of a stolen photo hashed into the index, beside the whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Whole,
    /// 4% cut from every side.
    Centre,
    /// The top 85%.
    Top,
    /// The bottom 85%.
    Bottom,
}

impl Region {
    pub const ALL: [Region; 4] = [Region::Whole, Region::Centre, Region::Top, Region::Bottom];

    pub fn of(&self, r: &Rect) -> Rect {
        match self {
            Region::Whole => *r,
            Region::Centre => r.inset(0.04),
            Region::Top => r.rows(0.0, 0.85),
            Region::Bottom => r.rows(0.15, 1.0),
        }
    }
}

/// Side of the square a region is reduced to (box means) before PDQ: PDQ's own input size
/// after its downsampling filter.
const HASH_INPUT: usize = 64;

/// PDQ hashes of `rect` of `plane`, one per orientation, and the PDQ quality of the region.
///
/// The region is reduced to 64×64 by box means; each orientation of that square is hashed
/// with PDQ, so the hashes are PDQ's (canonical bit order, comparable with PDQ hashes
/// computed elsewhere to within a few bits).
pub fn region_hashes(
    plane: &Plane,
    rect: &Rect,
    orientations: &[Orientation],
) -> (Vec<Hash256>, u8) {
    let small = plane.resample(rect, HASH_INPUT, HASH_INPUT);
    let sq = Plane::from_luma(HASH_INPUT, HASH_INPUT, small);
    let mut quality = 0;
    let hashes = orientations
        .iter()
        .map(|o| {
            let p = pdq_of_square(&sq.oriented(*o));
            quality = p.quality;
            p.hash
        })
        .collect();
    (hashes, quality)
}

fn pdq_of_square(p: &Plane) -> crate::pdq::Pdq {
    let bytes: Vec<u8> =
        p.px.iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect();
    match image::GrayImage::from_raw(p.width as u32, p.height as u32, bytes) {
        Some(img) => crate::pdq::pdq(&image::DynamicImage::ImageLuma8(img)),
        None => crate::pdq::Pdq {
            hash: [0; 32],
            quality: 0,
        },
    }
}

/// What the bank keeps of one stolen photo for matching.
#[derive(Debug, Clone)]
pub struct Prints {
    /// Hashes of [`Region::ALL`], whole first.
    pub regions: Vec<Hash256>,
    /// PDQ quality of the whole photo.
    pub quality: u8,
    pub signature: Signature,
    /// Colour print, when the photo has colour.
    pub colour: Option<ColourGrid>,
    pub detail: Detail,
}

impl Prints {
    /// Fingerprints a stolen photo from its luminance plane and, if it has colour, its
    /// chroma.
    pub fn of(plane: &Plane, chroma: Option<&Chroma>) -> Prints {
        let full = plane.full();
        let mut quality = 0;
        let regions = Region::ALL
            .iter()
            .map(|r| {
                let (h, q) = region_hashes(plane, &r.of(&full), &[Orientation::IDENTITY]);
                if *r == Region::Whole {
                    quality = q;
                }
                h[0]
            })
            .collect();
        Prints {
            regions,
            quality,
            signature: Signature::of(plane, &full),
            colour: ColourGrid::of(chroma),
            detail: Detail::of(plane, &full),
        }
    }
}

/// PDQ quality under which an image is too flat to match (PDQ's recommendation).
pub const MIN_QUALITY: u8 = crate::pdq::DEFAULT_MIN_QUALITY;

/// One hash of a found image, and where it came from.
#[derive(Debug, Clone)]
pub struct QueryHash {
    pub view: usize,
    pub region: Region,
    pub orientation: Orientation,
    pub hash: Hash256,
}

/// A found image prepared for matching.
pub struct Query {
    pub plane: Plane,
    /// Chroma of the found image, `None` when it is grey.
    pub chroma: Option<Chroma>,
    pub views: Vec<View>,
    pub hashes: Vec<QueryHash>,
    /// PDQ quality of the whole image.
    pub quality: u8,
}

/// Smallest side, in pixels, of an image worth matching: below it a "photo" is an icon.
pub const MIN_SIDE: u32 = 32;

impl Query {
    /// Prepares a decoded found image, refusing those too small to say anything.
    pub fn from_image(img: &image::DynamicImage) -> Result<Query, crate::ImageError> {
        if img.width() < MIN_SIDE || img.height() < MIN_SIDE {
            return Err(crate::ImageError::TooSmall {
                width: img.width(),
                height: img.height(),
                min_side: MIN_SIDE,
            });
        }
        let (plane, chroma) = Plane::with_chroma(img, views::PLANE_SIDE);
        let mut q = Query::new(plane);
        q.chroma = chroma;
        if q.quality < MIN_QUALITY {
            return Err(crate::ImageError::LowQuality {
                quality: q.quality,
                min_quality: MIN_QUALITY,
            });
        }
        Ok(q)
    }

    pub fn new(plane: Plane) -> Query {
        let views = views::views(&plane);
        let all = Orientation::all();
        let mirror = [all[0], all[1]];
        let mut hashes = Vec::new();
        let mut quality = 0;
        for (vi, v) in views.iter().enumerate() {
            for region in Region::ALL {
                let os: &[Orientation] = if region == Region::Whole {
                    &all
                } else {
                    &mirror
                };
                let (hs, q) = region_hashes(&plane, &region.of(&v.rect), os);
                if vi == 0 && region == Region::Whole {
                    quality = q;
                }
                for (o, hash) in os.iter().zip(hs) {
                    hashes.push(QueryHash {
                        view: vi,
                        region,
                        orientation: *o,
                        hash,
                    });
                }
            }
        }
        Query {
            plane,
            chroma: None,
            views,
            hashes,
            quality,
        }
    }
}

/// One view of a found image as kept with its sighting: enough to check it against
/// fingerprints imported later without the image (PDQ, mirrored PDQ, signature).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedView {
    pub pdq: Hash256,
    pub pdq_mirror: Hash256,
    pub signature: Signature,
}

impl RecordedView {
    pub fn to_hex(&self) -> String {
        let mut b = Vec::with_capacity(64 + Signature::BYTES);
        b.extend_from_slice(&self.pdq);
        b.extend_from_slice(&self.pdq_mirror);
        b.extend_from_slice(&self.signature.to_bytes());
        hex::encode(b)
    }

    pub fn from_hex(s: &str) -> Option<RecordedView> {
        let b = hex::decode(s).ok()?;
        if b.len() != 64 + Signature::BYTES {
            return None;
        }
        Some(RecordedView {
            pdq: b[..32].try_into().ok()?,
            pdq_mirror: b[32..64].try_into().ok()?,
            signature: Signature::from_bytes(&b[64..])?,
        })
    }
}

/// Names of the hashes kept with sightings (the `algorithm` of a [`schema::ImageHash`]).
pub const PDQ: &str = "pdq";
pub const RECORDED_VIEW: &str = "pdq+grid24";

/// One hash kept with a sighting, typed. On the bus and in the index it travels as a
/// [`schema::ImageHash`] (algorithm name + hex); [`SightingHash::from_message`] is the one
/// place that reads it back.
#[derive(Debug, Clone, PartialEq)]
pub enum SightingHash {
    /// PDQ of the whole image as found (for people and other tools).
    Pdq(Hash256),
    /// One view as recorded for retro-hunts.
    View(RecordedView),
}

impl SightingHash {
    /// Reads a hash from its message form; `None` for an unknown algorithm or bad hex.
    pub fn from_message(h: &schema::ImageHash) -> Option<SightingHash> {
        match h.algorithm.as_str() {
            PDQ => crate::hashing::parse_hash(&h.hex).map(SightingHash::Pdq),
            RECORDED_VIEW => RecordedView::from_hex(&h.hex).map(SightingHash::View),
            _ => None,
        }
    }

    /// The recorded view, if this is one.
    pub fn view(&self) -> Option<&RecordedView> {
        match self {
            SightingHash::View(v) => Some(v),
            SightingHash::Pdq(_) => None,
        }
    }
}

impl From<&SightingHash> for schema::ImageHash {
    fn from(h: &SightingHash) -> schema::ImageHash {
        let (algorithm, hex) = match h {
            SightingHash::Pdq(p) => (PDQ, hex::encode(p)),
            SightingHash::View(v) => (RECORDED_VIEW, v.to_hex()),
        };
        schema::ImageHash {
            algorithm: algorithm.to_string(),
            hex,
        }
    }
}

/// The hashes of a found image kept with its sighting: the PDQ of the whole image, and a
/// [`RecordedView`] per view (for retro-hunts).
pub fn sighting_hashes(q: &Query) -> Vec<SightingHash> {
    let find = |view: usize, o: Orientation| {
        q.hashes
            .iter()
            .find(|h| h.view == view && h.region == Region::Whole && h.orientation == o)
            .map(|h| h.hash)
    };
    let mirror = Orientation::all()[1];
    let mut out = Vec::new();
    if let Some(h) = find(0, Orientation::IDENTITY) {
        out.push(SightingHash::Pdq(h));
    }
    for (i, v) in q.views.iter().enumerate() {
        if let (Some(pdq), Some(pdq_mirror)) = (find(i, Orientation::IDENTITY), find(i, mirror)) {
            out.push(SightingHash::View(RecordedView {
                pdq,
                pdq_mirror,
                signature: Signature::of(&q.plane, &v.rect),
            }));
        }
    }
    out
}

/// The retrieval index: every region hash of every fingerprint.
pub trait HashIndex: Send + Sync {
    /// Entries within `radius` bits of `q`, as `(entry, distance)`.
    fn within(&self, q: &Hash256, radius: u32) -> Vec<(u32, u32)>;
    /// The `k` nearest entries, nearest first.
    fn nearest(&self, q: &Hash256, k: usize) -> Vec<(u32, u32)>;
}

/// Exhaustive search; the reference the multi-index must agree with.
pub struct ScanIndex {
    hashes: Vec<Hash256>,
}

impl ScanIndex {
    pub fn new(hashes: Vec<Hash256>) -> ScanIndex {
        ScanIndex { hashes }
    }
}

impl HashIndex for ScanIndex {
    fn within(&self, q: &Hash256, radius: u32) -> Vec<(u32, u32)> {
        self.hashes
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let d = hamming(q, h);
                (d <= radius).then_some((i as u32, d))
            })
            .collect()
    }
    fn nearest(&self, q: &Hash256, k: usize) -> Vec<(u32, u32)> {
        let mut all: Vec<(u32, u32)> = self
            .hashes
            .iter()
            .enumerate()
            .map(|(i, h)| (i as u32, hamming(q, h)))
            .collect();
        all.sort_by_key(|&(i, d)| (d, i));
        all.truncate(k);
        all
    }
}

impl HashIndex for crate::mih::MihIndex {
    fn within(&self, q: &Hash256, radius: u32) -> Vec<(u32, u32)> {
        crate::mih::MihIndex::within(self, q, radius)
    }
    fn nearest(&self, q: &Hash256, k: usize) -> Vec<(u32, u32)> {
        crate::mih::MihIndex::nearest(self, q, k, 256)
    }
}

/// The multi-index over `hashes`, or a scan when there are more than it can number.
fn index_of(hashes: Vec<Hash256>) -> Box<dyn HashIndex> {
    match crate::mih::MihIndex::build(&hashes) {
        Ok(m) => Box::new(m),
        Err(_) => Box::new(ScanIndex::new(hashes)),
    }
}

/// Tunables of the decision.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Retrieval radius in bits.
    pub radius: u32,
    /// Candidates verified per found image.
    pub candidates: usize,
    /// Siblings consulted for a photo's weights.
    pub siblings: usize,
    /// Verified score (×256) at or under which a candidate matches.
    pub threshold: u32,
    /// Hash distance at or under which a signature-less fingerprint matches.
    pub hash_threshold: u32,
    /// What the best candidate must also show to be named ([`crate::identity`]).
    pub rules: crate::identity::Rules,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            radius: 96,
            candidates: 12,
            siblings: 12,
            threshold: 20,
            hash_threshold: 20,
            rules: crate::identity::Rules::default(),
        }
    }
}

/// What the bank says about one photo, learned from its siblings on first use.
struct Learned {
    weights: Weights,
    /// Weights of the detail print, when the photo has one.
    detail: Option<DetailWeights>,
    /// Bank index naming the photo's camera cluster ([`Engine::cluster`]).
    cluster: usize,
}

/// Photos whose [`Learned`] state is kept between images: the photos images keep coming
/// back to (a breach is a few cameras), without holding state for every photo of a large
/// bank.
const LEARNED_CACHE: usize = 65_536;

/// A stolen photo as the engine sees it.
pub struct Entry {
    pub label: String,
    pub regions: Vec<Hash256>,
    pub signature: Option<Signature>,
    pub colour: Option<ColourGrid>,
    pub detail: Option<Detail>,
}

/// Where the engine reads the fingerprints: parsed into memory (small banks, tests, an
/// import in progress), or the bank's lookup file mapped in place ([`crate::lookup`]).
enum Store {
    Memory {
        entries: Vec<Entry>,
        /// Index entry → (fingerprint, region).
        owners: Vec<(u32, Region)>,
        index: Box<dyn HashIndex>,
        /// Whole-photo hashes only, for sibling search.
        wholes: Box<dyn HashIndex>,
    },
    Mapped(crate::lookup::Lookup),
}

impl Store {
    fn len(&self) -> usize {
        match self {
            Store::Memory { entries, .. } => entries.len(),
            Store::Mapped(l) => l.len(),
        }
    }

    /// The `k` nearest region hashes, as (fingerprint, region, distance).
    fn nearest_regions(&self, q: &Hash256, k: usize) -> Vec<(u32, Region, u32)> {
        match self {
            Store::Memory { index, owners, .. } => index
                .nearest(q, k)
                .into_iter()
                .map(|(e, d)| (owners[e as usize].0, owners[e as usize].1, d))
                .collect(),
            Store::Mapped(l) => l
                .regions()
                .nearest(q, k, 256)
                .into_iter()
                .filter_map(|(e, d)| l.owner(e).map(|(fp, r)| (fp, r, d)))
                .collect(),
        }
    }

    /// Region hashes within `radius`, as (fingerprint, region, distance).
    fn regions_within(&self, q: &Hash256, radius: u32) -> Vec<(u32, Region, u32)> {
        match self {
            Store::Memory { index, owners, .. } => index
                .within(q, radius)
                .into_iter()
                .map(|(e, d)| (owners[e as usize].0, owners[e as usize].1, d))
                .collect(),
            Store::Mapped(l) => l
                .regions()
                .within(q, radius)
                .into_iter()
                .filter_map(|(e, d)| l.owner(e).map(|(fp, r)| (fp, r, d)))
                .collect(),
        }
    }

    /// The `k` photos whose whole hashes are nearest to `q`.
    fn nearest_wholes(&self, q: &Hash256, k: usize) -> Vec<(u32, u32)> {
        match self {
            Store::Memory { wholes, .. } => wholes.nearest(q, k),
            Store::Mapped(l) => l.wholes().nearest(q, k, 256),
        }
    }

    fn whole(&self, i: usize) -> Option<Hash256> {
        match self {
            Store::Memory { entries, .. } => entries.get(i)?.regions.first().copied(),
            Store::Mapped(l) => l.whole(i),
        }
    }

    fn signature(&self, i: usize) -> Option<Cow<'_, Signature>> {
        match self {
            Store::Memory { entries, .. } => entries.get(i)?.signature.as_ref().map(Cow::Borrowed),
            Store::Mapped(l) => l.signature(i).map(Cow::Owned),
        }
    }

    fn colour(&self, i: usize) -> Option<Cow<'_, ColourGrid>> {
        match self {
            Store::Memory { entries, .. } => entries.get(i)?.colour.as_ref().map(Cow::Borrowed),
            Store::Mapped(l) => l.colour(i).map(Cow::Owned),
        }
    }

    fn detail(&self, i: usize) -> Option<Cow<'_, Detail>> {
        match self {
            Store::Memory { entries, .. } => entries.get(i)?.detail.as_ref().map(Cow::Borrowed),
            Store::Mapped(l) => l.detail(i).map(Cow::Owned),
        }
    }

    fn label(&self, i: usize) -> Option<String> {
        match self {
            Store::Memory { entries, .. } => entries.get(i).map(|e| e.label.clone()),
            Store::Mapped(l) => (i < l.len()).then(|| l.label(i)),
        }
    }
}

/// Bank-wide matching state: the fingerprints, their indexes and what was learned about
/// the photos matched lately.
pub struct Engine {
    store: Store,
    learned: Mutex<HashMap<u32, Arc<Option<Learned>>>>,
    pub params: Params,
}

/// The engine's answer for one candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub entry: usize,
    /// Verified score scaled to 0–256 (or hash distance for signature-less entries).
    pub distance: u32,
    /// Best retrieval distance in bits.
    pub hash_distance: u32,
    pub matched: bool,
    pub verified: bool,
    /// What verification saw, for the identity decision and for people asking why.
    pub evidence: Evidence,
}

/// The measurements behind a verified score (all 0 = agrees; see [`grid`] and
/// [`crate::colour`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Evidence {
    /// Weighted disagreement on the coarse grid at the best frame.
    pub coarse: f32,
    /// Weighted disagreement on the fine grid there.
    pub fine: f32,
    /// Worst and second-worst block of the fine grid ([`grid::local`]).
    pub local: f32,
    pub local2: f32,
    /// Colour distance of the worst block (chroma units) when both images have colour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colour: Option<f32>,
    /// Disagreement with the photo's camera background ([`grid::scene`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scene: Option<f32>,
    /// Worst window of the detail print, and the worst window apart from it
    /// ([`crate::detail::windows`]); measured only for a candidate that matches and agrees
    /// in everything else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail2: Option<f32>,
}

impl Engine {
    /// The engine for every fingerprint of `bank`, in bank order, in memory.
    pub fn from_bank(bank: &crate::Bank, params: Params) -> Engine {
        let entries = bank
            .fingerprints()
            .iter()
            .map(|fp| Entry {
                label: fp.label.clone(),
                regions: fp.regions.clone(),
                signature: fp.signature.clone(),
                colour: fp.colour.clone(),
                detail: fp.detail.clone(),
            })
            .collect();
        Engine::new(entries, params)
    }

    /// The engine over a mapped lookup file ([`crate::lookup`]): nothing is copied.
    pub fn mapped(lookup: crate::lookup::Lookup, params: Params) -> Engine {
        Engine::over(Store::Mapped(lookup), params)
    }

    pub fn new(entries: Vec<Entry>, params: Params) -> Engine {
        let mut flat = Vec::new();
        let mut owners = Vec::new();
        let mut wholes = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            for (h, r) in e.regions.iter().zip(Region::ALL) {
                flat.push(*h);
                owners.push((i as u32, r));
            }
            wholes.push(e.regions.first().copied().unwrap_or([0; 32]));
        }
        let store = Store::Memory {
            entries,
            owners,
            index: index_of(flat),
            wholes: index_of(wholes),
        };
        Engine::over(store, params)
    }

    fn over(store: Store, params: Params) -> Engine {
        Engine {
            store,
            learned: Mutex::new(HashMap::new()),
            params,
        }
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the fingerprints are read in place from a mapped lookup file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.store, Store::Mapped(_))
    }

    /// The label of photo `i`.
    pub fn label(&self, i: usize) -> Option<String> {
        self.store.label(i)
    }

    /// What the bank says about photo `i` (see [`Learned`]), worked out on first use and
    /// kept for the photos matched lately.
    fn learned(&self, i: usize) -> Arc<Option<Learned>> {
        let cache = || self.learned.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = cache().get(&(i as u32)) {
            return l.clone();
        }
        let l = Arc::new(self.learn(i));
        let mut c = cache();
        if c.len() >= LEARNED_CACHE {
            c.clear();
        }
        c.insert(i as u32, l.clone());
        l
    }

    fn learn(&self, i: usize) -> Option<Learned> {
        let own = self.store.signature(i)?;
        let whole = self.store.whole(i)?;
        let sibs: Vec<(usize, Cow<'_, Signature>)> = self
            .store
            .nearest_wholes(&whole, self.params.siblings + 1)
            .into_iter()
            .filter(|&(j, _)| j as usize != i)
            .filter_map(|(j, _)| Some((j as usize, self.store.signature(j as usize)?)))
            .filter(|(_, s)| **s != *own)
            .take(self.params.siblings)
            .collect();
        let refs: Vec<&Signature> = sibs.iter().map(|(_, s)| s.as_ref()).collect();
        let weights = Weights::new(&own, &refs);
        let detail = self.store.detail(i).map(|d| {
            let sib: Vec<Cow<'_, Detail>> = sibs
                .iter()
                .filter_map(|(j, _)| self.store.detail(*j))
                .collect();
            let refs: Vec<&Detail> = sib.iter().map(|d| d.as_ref()).collect();
            DetailWeights::new(&d, &refs)
        });
        // The camera's cluster: this photo and the siblings that share its background, named
        // after the first of them in the bank.
        let cluster = sibs
            .iter()
            .filter(|(_, s)| weights.shares_background(&own, s))
            .map(|(j, _)| *j)
            .chain([i])
            .min()
            .unwrap_or(i);
        Some(Learned {
            weights,
            detail,
            cluster,
        })
    }

    /// The camera cluster of photo `i`: the bank index that names it.
    pub fn cluster(&self, i: usize) -> usize {
        self.learned(i).as_ref().as_ref().map_or(i, |l| l.cluster)
    }

    /// Candidates for `q`, verified, best first.
    pub fn score(&self, q: &Query, k: usize) -> Vec<Scored> {
        // Best retrieval distance per (fingerprint, view, orientation).
        let mut cands: Vec<(u32, u32, usize, Orientation)> = Vec::new();
        for qh in &q.hashes {
            for (fp, region, d) in self.store.nearest_regions(&qh.hash, self.params.candidates) {
                if d > self.params.radius {
                    break;
                }
                // Regions compare with the same region; the whole view also with the centre.
                let same =
                    region == qh.region || (qh.region == Region::Whole && region == Region::Centre);
                if same {
                    cands.push((d, fp, qh.view, qh.orientation));
                }
            }
        }
        cands.sort_by_key(|&(d, fp, v, o)| (d, fp, v, o.index()));
        let mut seen = std::collections::HashSet::new();
        cands.retain(|&(_, fp, v, o)| seen.insert((fp, v, o.index())));
        cands.truncate(self.params.candidates);

        let mut oriented: Vec<Option<Plane>> = vec![None; 8];
        let mut chroma: Vec<Option<Chroma>> = vec![None; 8];
        let mut best: std::collections::HashMap<u32, Scored> = std::collections::HashMap::new();
        for (d, fp, v, o) in cands {
            let i = fp as usize;
            let learned = self.learned(i);
            let scored = match (learned.as_ref(), self.store.signature(i)) {
                (Some(l), Some(sig)) => {
                    let (w, sig) = (&l.weights, sig.as_ref());
                    let plane = oriented[o.index()].get_or_insert_with(|| q.plane.oriented(o));
                    let rect = orient_rect(&q.views[v].rect, &q.plane, o);
                    let occ = grid::Occlusion {
                        bands: views::overlay_bands(plane, &rect),
                    };
                    let ver = grid::verify(plane, &rect, sig, w, &occ);
                    let (local, local2) = grid::local(plane, &ver.frame, sig, w, &occ);
                    let colour = match (self.store.colour(i), &q.chroma) {
                        (Some(own), Some(found)) => {
                            let c = chroma[o.index()].get_or_insert_with(|| found.oriented(o));
                            own.distance(c, &ver.frame, &occ.bands)
                        }
                        _ => None,
                    };
                    let mut evidence = Evidence {
                        coarse: ver.coarse,
                        fine: ver.fine,
                        local,
                        local2,
                        colour,
                        // A fixed camera frames every crossing alike: the background is
                        // checked where the view puts it, and where the car was aligned.
                        scene: [ver.frame, grid::Frame::fit(&rect)]
                            .iter()
                            .filter_map(|f| grid::scene(plane, f, sig, w, &occ))
                            .reduce(f32::min),
                        ..Evidence::default()
                    };
                    self.add_detail(i, l, (plane, &rect, &occ), &ver, &mut evidence);
                    self.decide(i, d, Some((ver.score, evidence)))
                }
                _ => self.decide(i, d, None),
            };
            keep_best(&mut best, fp, scored);
        }
        ranked(best, k)
    }
}

impl Engine {
    /// Compares the found image with photo `i`'s detail print ([`crate::detail`]) when the
    /// candidate could be named: it matches and agrees in everything else. The print is
    /// read for few candidates, and only they need it.
    fn add_detail(
        &self,
        i: usize,
        learned: &Learned,
        (plane, rect, occ): (&Plane, &Rect, &grid::Occlusion),
        ver: &grid::Verified,
        evidence: &mut Evidence,
    ) {
        let could_name = (ver.score * 256.0).round() as u32 <= self.params.threshold
            && self.params.rules.agrees(evidence);
        let (Some(weights), true) = (&learned.detail, could_name) else {
            return;
        };
        let Some(own) = self.store.detail(i) else {
            return;
        };
        if let Some((worst, apart)) =
            crate::detail::windows(plane, rect, &ver.frame, &own, weights, occ)
        {
            (evidence.detail, evidence.detail2) = (Some(worst), Some(apart));
        }
    }

    /// The decision for fingerprint `entry` retrieved at hash distance `d`: by its verified
    /// score (0–1, scaled to 0–256) when it has a signature, by `d` alone when it has none.
    fn decide(&self, entry: usize, d: u32, verified: Option<(f32, Evidence)>) -> Scored {
        match verified {
            Some((score, evidence)) => {
                let distance = (score * 256.0).round() as u32;
                Scored {
                    entry,
                    distance,
                    hash_distance: d,
                    matched: distance <= self.params.threshold,
                    verified: true,
                    evidence,
                }
            }
            None => Scored {
                entry,
                distance: d,
                hash_distance: d,
                matched: d <= self.params.hash_threshold,
                verified: false,
                evidence: Evidence::default(),
            },
        }
    }

    /// Scores views recorded with an earlier sighting (see [`RecordedView`]) against the
    /// bank: retrieval as for a live image (whole and centre regions, as recorded and
    /// mirrored), verification on the recorded framing only.
    pub fn score_recorded(&self, views: &[RecordedView], k: usize) -> Vec<Scored> {
        let mut best: std::collections::HashMap<u32, Scored> = std::collections::HashMap::new();
        for v in views {
            for (mirrored, hash) in [(false, &v.pdq), (true, &v.pdq_mirror)] {
                for (fp, region, d) in self.store.regions_within(hash, self.params.radius) {
                    if !matches!(region, Region::Whole | Region::Centre) {
                        continue;
                    }
                    let i = fp as usize;
                    let learned = self.learned(i);
                    let scored = match (learned.as_ref(), self.store.signature(i)) {
                        (Some(l), Some(own)) => {
                            let (w, own) = (&l.weights, own.as_ref());
                            let found = if mirrored {
                                v.signature.mirrored()
                            } else {
                                v.signature.clone()
                            };
                            let score = grid::compare(&found, own, w);
                            let evidence = Evidence {
                                coarse: score,
                                fine: score,
                                ..Evidence::default()
                            };
                            self.decide(i, d, Some((score, evidence)))
                        }
                        _ => self.decide(i, d, None),
                    };
                    keep_best(&mut best, fp, scored);
                }
            }
        }
        ranked(best, k)
    }
}

/// Keeps, per fingerprint, the best of its scores (lowest distance, then hash distance).
fn keep_best(best: &mut std::collections::HashMap<u32, Scored>, fp: u32, scored: Scored) {
    best.entry(fp)
        .and_modify(|s| {
            if (scored.distance, scored.hash_distance) < (s.distance, s.hash_distance) {
                *s = scored;
            }
        })
        .or_insert(scored);
}

/// The `k` best fingerprints, best first (ties by bank order).
fn ranked(best: std::collections::HashMap<u32, Scored>, k: usize) -> Vec<Scored> {
    let mut out: Vec<Scored> = best.into_values().collect();
    out.sort_by_key(|s| (s.distance, s.hash_distance, s.entry));
    out.truncate(k);
    out
}

/// `r` in the coordinates of `plane` oriented by `o`.
fn orient_rect(r: &Rect, plane: &Plane, o: Orientation) -> Rect {
    let (w, h) = if o.transpose {
        (plane.height as f32, plane.width as f32)
    } else {
        (plane.width as f32, plane.height as f32)
    };
    // Source corners mapped forward: transpose, then mirror.
    let map = |x: f32, y: f32| {
        let (mut x, mut y) = if o.transpose { (y, x) } else { (x, y) };
        if o.flip_x {
            x = w - x;
        }
        if o.flip_y {
            y = h - y;
        }
        (x, y)
    };
    let (ax, ay) = map(r.x0, r.y0);
    let (bx, by) = map(r.x1, r.y1);
    Rect {
        x0: ax.min(bx),
        y0: ay.min(by),
        x1: ax.max(bx),
        y1: ay.max(by),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oriented_rect_follows_the_pixels() {
        let mut px = vec![0.0; 40 * 30];
        for y in 5..10 {
            for x in 20..30 {
                px[y * 40 + x] = 200.0;
            }
        }
        let p = Plane::from_luma(40, 30, px);
        let r = Rect {
            x0: 20.0,
            y0: 5.0,
            x1: 30.0,
            y1: 10.0,
        };
        for o in Orientation::all() {
            let q = p.oriented(o);
            let rr = orient_rect(&r, &p, o);
            assert!(
                q.box_mean(rr.x0, rr.y0, rr.x1, rr.y1) > 199.0,
                "{o:?} {rr:?}"
            );
        }
    }
}
