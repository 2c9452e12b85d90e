//! Exact Hamming-radius search over 256-bit hashes, fast enough for banks of ten million.
//!
//! A brute-force comparison of every image against every fingerprint costs a pass over the
//! whole bank (320 MB at ten million hashes) per image. [`MihIndex`] answers the same
//! question, exactly, by multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in
//! Hamming Space with Multi-Index Hashing"):
//!
//! - Each hash is cut into 16 slots of 16 bits. For every slot the index keeps the hash ids
//!   sorted by that slot's value (a counting sort): an offsets array of 65,537 `u32` and an
//!   ids array of one `u32` per hash. No hash maps.
//! - Pigeonhole: write the radius as `r = 16·a + b` (`0 ≤ b < 16`). If a hash is within `r`
//!   of the query, then one of the slots `0..=b` differs in at most `a` bits, or one of the
//!   slots `b+1..16` differs in at most `a − 1` bits (otherwise the 16 slot distances would
//!   add up to more than `r`). So the query enumerates, in every slot, the 16-bit keys within
//!   that slot radius of its own slot value (`r = 15`: the exact key in each slot; `r = 31`:
//!   the key and its 16 one-bit neighbours), and verifies each candidate with the full 256-bit
//!   popcount.
//! - Duplicates (a hash found through several slots) are dropped without any scratch memory:
//!   a verified hit is kept only when the slot it was found through is the *first* slot whose
//!   enumeration reaches it, which the slot distances of the already-computed XOR tell. The
//!   index is therefore read-only during queries and shared freely between threads (`&self`
//!   everywhere, no locks, no shared scratch); the only per-query memory is the candidate id
//!   list, owned by the query.
//! - Candidates of all slots are gathered first, then verified in one pass that prefetches
//!   the codes 16 candidates ahead; the codes and ids arrays ask the kernel for huge pages
//!   (`MADV_HUGEPAGE`), because nearly every candidate is a random read.
//! - When enumeration and verification would cost more than reading the whole bank (large
//!   radii, or a bank whose hashes crowd into few slot values), the query runs the scan
//!   instead (a cost model over the exact candidate count), so large radii stay exact and
//!   cost about what brute force costs.
//!
//! The scan ([`MihIndex::scan_within`], [`MihIndex::scan_nearest`]) is also the reference
//! the index is tested against. It reads the contiguous `[u64; 4]` array in blocks, with an
//! AVX-512 VPOPCNTDQ kernel, an AVX2 kernel, a POPCNT kernel or a portable one, chosen once at
//! run time ([`scan_kernel`]).
//!
//! Ids are the positions of the hashes in the slice given to [`MihIndex::build`] (then
//! continued by [`MihIndex::extend`]). Results are `(id, distance)` pairs ordered by distance,
//! then id.
//!
//! Memory: 32 bytes per hash for the codes plus 16 × 4 bytes of slot ids, 96 bytes per hash,
//! plus 4.2 MB of slot offsets whatever the size ([`MihIndex::heap_bytes`]). The same arrays
//! serialise as they are ([`write_slots`]), and [`MihRef`] runs the queries on them wherever
//! they live: a matcher maps them from the bank's lookup file ([`crate::lookup`]).

use std::collections::BinaryHeap;
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::hashing::Hash256;

/// Number of slots a hash is cut into.
const SLOTS: usize = 16;
/// Bits per slot.
const SLOT_BITS: u32 = 16;
/// Distinct values of one slot.
const KEYS: usize = 1 << SLOT_BITS;
/// Hashes per block in the scan kernels (distances are staged in a stack buffer).
const BLOCK: usize = 512;

/// Relative costs behind the choice between probing the slots and scanning the bank, in
/// units of "compare one hash in the sequential scan". Verifying a candidate is a random
/// read of its 32 bytes; looking up one key is a read of two offsets.
const COST_CANDIDATE: u64 = 12;
const COST_KEY: u64 = 4;

/// The largest number of hashes an index can hold (ids and offsets are `u32`).
pub const MAX_LEN: usize = u32::MAX as usize;

/// Errors building or extending an index.
#[derive(Debug, thiserror::Error)]
pub enum MihError {
    #[error("an index holds at most {max} hashes; {requested} were given")]
    TooMany { requested: usize, max: usize },
    #[error("the serialised index is malformed")]
    Malformed,
}

/// One slot: ids sorted by the slot's 16-bit value, and where each value starts.
#[derive(Debug, Clone)]
struct Slot {
    /// `offsets[k]..offsets[k + 1]` is the range of `ids` whose slot value is `k`.
    offsets: Box<[u32]>,
    /// Ids, grouped by slot value, ascending within a group.
    ids: Vec<u32>,
}

/// Multi-index hashing over 256-bit hashes: exact radius and k-nearest search.
#[derive(Debug, Clone)]
pub struct MihIndex {
    codes: Vec<[u64; 4]>,
    slots: Vec<Slot>,
}

/// An index's arrays, borrowed: from a [`MihIndex`] built here, or from a file mapped into
/// memory ([`crate::lookup`]). Every query runs on this view.
#[derive(Debug, Clone, Copy)]
pub struct MihRef<'a> {
    codes: &'a [[u64; 4]],
    /// Per slot: offsets (65,537) and ids.
    slots: [(&'a [u32], &'a [u32]); SLOTS],
}

/// How a radius query is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Enumerate keys within these per-slot radii (negative: skip the slot).
    Probe([i32; SLOTS]),
    Scan,
}

/// The hash as four little-endian words, the layout [`crate::hashing::hamming`] uses.
#[inline]
pub(crate) fn words(h: &Hash256) -> [u64; 4] {
    let mut w = [0u64; 4];
    for (i, out) in w.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[i * 8..i * 8 + 8]);
        *out = u64::from_le_bytes(b);
    }
    w
}

#[inline(always)]
fn slot_key(code: &[u64; 4], slot: usize) -> usize {
    ((code[slot >> 2] >> ((slot & 3) as u32 * SLOT_BITS)) & 0xFFFF) as usize
}

#[inline(always)]
fn distance(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// Every 16-bit mask ordered by popcount: the masks of weight `≤ w` are
/// `masks[..start[w + 1]]`.
struct Masks {
    masks: Vec<u16>,
    start: [usize; 18],
}

fn masks() -> &'static Masks {
    static MASKS: OnceLock<Masks> = OnceLock::new();
    MASKS.get_or_init(|| {
        let mut masks: Vec<u16> = (0..=u16::MAX).collect();
        masks.sort_by_key(|m| (m.count_ones(), *m));
        let mut start = [0usize; 18];
        for w in 0..=16u32 {
            start[w as usize + 1] =
                start[w as usize] + masks.iter().filter(|m| m.count_ones() == w).count();
        }
        Masks { masks, start }
    })
}

/// Per-slot radii for radius `r` (pigeonhole, see the module docs); negative means the slot
/// need not be probed.
fn slot_radii(r: u32) -> [i32; SLOTS] {
    let a = (r / SLOTS as u32) as i32;
    let b = (r % SLOTS as u32) as usize;
    let mut radii = [a - 1; SLOTS];
    for x in radii.iter_mut().take(b + 1) {
        *x = a;
    }
    radii
}

/// The first slot whose enumeration (at `radii`) reaches a hash whose XOR with the query is
/// `x`; `SLOTS` if none does.
#[inline]
fn first_slot(x: &[u64; 4], radii: &[i32; SLOTS]) -> usize {
    (0..SLOTS)
        .find(|&s| radii[s] >= 0 && (slot_key(x, s) as u16).count_ones() as i32 <= radii[s])
        .unwrap_or(SLOTS)
}

fn build_slot(codes: &[[u64; 4]], slot: usize) -> Slot {
    let mut offsets = vec![0u32; KEYS + 1].into_boxed_slice();
    for c in codes {
        offsets[slot_key(c, slot) + 1] += 1;
    }
    for k in 0..KEYS {
        offsets[k + 1] += offsets[k];
    }
    let mut cursor: Vec<u32> = offsets[..KEYS].to_vec();
    let mut ids: Vec<u32> = huge_vec(codes.len());
    ids.resize(codes.len(), 0);
    for (id, c) in codes.iter().enumerate() {
        let k = slot_key(c, slot);
        ids[cursor[k] as usize] = id as u32;
        cursor[k] += 1;
    }
    Slot { offsets, ids }
}

/// Adds `new` (ids `first..`) to a slot, keeping every group in ascending id order.
fn extend_slot(slot: &Slot, new: &[[u64; 4]], first: u32, which: usize) -> Slot {
    let mut added = vec![0u32; KEYS + 1];
    for c in new {
        added[slot_key(c, which) + 1] += 1;
    }
    for k in 0..KEYS {
        added[k + 1] += added[k];
    }
    let mut offsets = vec![0u32; KEYS + 1].into_boxed_slice();
    for k in 0..=KEYS {
        offsets[k] = slot.offsets[k] + added[k];
    }
    let mut ids: Vec<u32> = huge_vec(slot.ids.len() + new.len());
    ids.resize(slot.ids.len() + new.len(), 0);
    // Old ids of each group first (they are smaller), then the new ones.
    for k in 0..KEYS {
        let (lo, hi) = (slot.offsets[k] as usize, slot.offsets[k + 1] as usize);
        let at = offsets[k] as usize;
        ids[at..at + (hi - lo)].copy_from_slice(&slot.ids[lo..hi]);
    }
    let mut cursor: Vec<u32> = (0..KEYS)
        .map(|k| offsets[k] + (slot.offsets[k + 1] - slot.offsets[k]))
        .collect();
    for (i, c) in new.iter().enumerate() {
        let k = slot_key(c, which);
        ids[cursor[k] as usize] = first + i as u32;
        cursor[k] += 1;
    }
    Slot { offsets, ids }
}

impl MihIndex {
    /// Indexes `hashes`; the id of a hash is its position in the slice.
    ///
    /// Takes O(16 · n) time, spread over the rayon pool (one task per slot).
    pub fn build(hashes: &[Hash256]) -> Result<MihIndex, MihError> {
        check_len(hashes.len())?;
        let mut codes: Vec<[u64; 4]> = huge_vec(hashes.len());
        codes.extend(hashes.iter().map(words));
        let slots = (0..SLOTS)
            .into_par_iter()
            .map(|s| build_slot(&codes, s))
            .collect();
        Ok(MihIndex { codes, slots })
    }

    /// Appends `hashes`, with ids continuing from [`len`](Self::len).
    ///
    /// Every slot array is rewritten, so this costs O(16 · (len + added)) whatever the number
    /// added: add in batches, not one hash at a time.
    pub fn extend(&mut self, hashes: &[Hash256]) -> Result<(), MihError> {
        check_len(self.codes.len().saturating_add(hashes.len()))?;
        if hashes.is_empty() {
            return Ok(());
        }
        let first = self.codes.len() as u32;
        let new: Vec<[u64; 4]> = hashes.iter().map(words).collect();
        let slots = self
            .slots
            .par_iter()
            .enumerate()
            .map(|(s, slot)| extend_slot(slot, &new, first, s))
            .collect();
        self.slots = slots;
        let mut codes = huge_vec(self.codes.len() + new.len());
        codes.extend_from_slice(&self.codes);
        codes.extend_from_slice(&new);
        self.codes = codes;
        Ok(())
    }

    /// Number of hashes indexed.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The hash with id `id`.
    pub fn get(&self, id: u32) -> Option<Hash256> {
        let c = self.codes.get(id as usize)?;
        let mut h = [0u8; 32];
        for (i, w) in c.iter().enumerate() {
            h[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        Some(h)
    }

    /// Heap memory held by the index, in bytes (codes, slot ids and slot offsets).
    pub fn heap_bytes(&self) -> usize {
        self.codes.capacity() * std::mem::size_of::<[u64; 4]>()
            + self
                .slots
                .iter()
                .map(|s| s.offsets.len() * 4 + s.ids.capacity() * 4)
                .sum::<usize>()
    }

    /// The index as a borrowed view, on which the queries run.
    pub fn view(&self) -> MihRef<'_> {
        let mut slots: [(&[u32], &[u32]); SLOTS] = [(&[], &[]); SLOTS];
        for (out, s) in slots.iter_mut().zip(&self.slots) {
            *out = (&s.offsets, &s.ids);
        }
        MihRef {
            codes: &self.codes,
            slots,
        }
    }

    /// See [`MihRef::within`].
    pub fn within(&self, query: &Hash256, radius: u32) -> Vec<(u32, u32)> {
        self.view().within(query, radius)
    }

    /// See [`MihRef::within_into`].
    pub fn within_into(&self, query: &Hash256, radius: u32, out: &mut Vec<(u32, u32)>) {
        self.view().within_into(query, radius, out)
    }

    /// See [`MihRef::probe_within`].
    pub fn probe_within(&self, query: &Hash256, radius: u32) -> Vec<(u32, u32)> {
        self.view().probe_within(query, radius)
    }

    /// See [`MihRef::nearest`].
    pub fn nearest(&self, query: &Hash256, k: usize, max_radius: u32) -> Vec<(u32, u32)> {
        self.view().nearest(query, k, max_radius)
    }

    /// See [`MihRef::scan_within`].
    pub fn scan_within(&self, query: &Hash256, radius: u32) -> Vec<(u32, u32)> {
        self.view().scan_within(query, radius)
    }

    /// See [`MihRef::scan_nearest`].
    pub fn scan_nearest(&self, query: &Hash256, k: usize, max_radius: u32) -> Vec<(u32, u32)> {
        self.view().scan_nearest(query, k, max_radius)
    }
}

/// Bytes of the serialised slots of an index of `count` hashes ([`write_slots`]).
pub fn slots_bytes(count: usize) -> usize {
    SLOTS * (KEYS + 1 + count) * 4
}

/// Writes the slots of the multi-index over `codes` (per slot: 65,537 offsets, then the
/// ids), one slot at a time; returns the bytes written.
pub fn write_slots(w: &mut impl std::io::Write, codes: &[[u64; 4]]) -> std::io::Result<u64> {
    check_len(codes.len()).map_err(std::io::Error::other)?;
    for s in 0..SLOTS {
        let slot = build_slot(codes, s);
        for v in slot.offsets.iter().chain(&slot.ids) {
            w.write_all(&v.to_le_bytes())?;
        }
    }
    Ok(slots_bytes(codes.len()) as u64)
}

impl<'a> MihRef<'a> {
    /// The view of serialised slots ([`write_slots`]) over `codes`; `None` when the sizes
    /// do not fit together.
    pub fn from_serialised(codes: &'a [[u64; 4]], ints: &'a [u32], count: usize) -> Option<Self> {
        if codes.len() != count || ints.len() != slots_bytes(count) / 4 {
            return None;
        }
        let mut slots: [(&[u32], &[u32]); SLOTS] = [(&[], &[]); SLOTS];
        for (s, out) in slots.iter_mut().enumerate() {
            let base = s * (KEYS + 1 + count);
            *out = (
                &ints[base..base + KEYS + 1],
                &ints[base + KEYS + 1..base + KEYS + 1 + count],
            );
        }
        Some(MihRef { codes, slots })
    }

    /// Whether every slot's offsets rise from 0 to the number of hashes (what a query needs
    /// to stay in bounds; ids out of range are skipped by the probe).
    pub fn check(&self) -> Result<(), MihError> {
        let n = self.codes.len() as u32;
        let ok = self.slots.iter().all(|(offsets, ids)| {
            offsets.first() == Some(&0)
                && offsets.last() == Some(&n)
                && ids.len() == n as usize
                && offsets.windows(2).all(|w| w[0] <= w[1])
        });
        if ok {
            Ok(())
        } else {
            Err(MihError::Malformed)
        }
    }

    /// Number of hashes indexed.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Every hash within Hamming distance `radius` of `query`, as `(id, distance)` ordered by
    /// distance, then id. Exact for every radius (from 256 on, that is every hash).
    pub fn within(&self, query: &Hash256, radius: u32) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        self.within_into(query, radius, &mut out);
        out
    }

    /// [`within`](Self::within) into a caller's buffer (cleared first), to reuse its
    /// allocation across queries.
    pub fn within_into(&self, query: &Hash256, radius: u32, out: &mut Vec<(u32, u32)>) {
        out.clear();
        let q = words(query);
        match self.plan(&q, radius) {
            Plan::Scan => scan_within_words(self.codes, &q, radius, out),
            Plan::Probe(radii) => self.probe(&q, radius, &radii, out),
        }
        out.sort_unstable_by_key(|&(id, d)| (d, id));
    }

    /// [`within`](Self::within) by probing the slots even where the scan would be cheaper.
    /// Same results; for tests and measurements of the probe path.
    pub fn probe_within(&self, query: &Hash256, radius: u32) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        let radius = radius.min(256);
        self.probe(&words(query), radius, &slot_radii(radius), &mut out);
        out.sort_unstable_by_key(|&(id, d)| (d, id));
        out
    }

    /// The `k` nearest hashes within `max_radius`, as `(id, distance)` ordered by distance,
    /// then id (fewer than `k` when fewer lie within `max_radius`).
    ///
    /// Probes at radius 15, 31, 47, … (capped at `max_radius`) until `k` hits are found: the
    /// hits inside a radius are all the hashes that close, so the first `k` are the nearest.
    /// Falls back to [`scan_nearest`](Self::scan_nearest) as soon as a radius would be
    /// answered by a scan anyway.
    pub fn nearest(&self, query: &Hash256, k: usize, max_radius: u32) -> Vec<(u32, u32)> {
        if k == 0 || self.codes.is_empty() {
            return Vec::new();
        }
        let q = words(query);
        let mut out = Vec::new();
        let mut r = max_radius.min(SLOTS as u32 - 1);
        loop {
            match self.plan(&q, r) {
                Plan::Scan => return self.scan_nearest(query, k, max_radius),
                Plan::Probe(radii) => {
                    out.clear();
                    self.probe(&q, r, &radii, &mut out);
                }
            }
            if out.len() >= k || r >= max_radius {
                break;
            }
            r = r.saturating_add(SLOTS as u32).min(max_radius);
        }
        out.sort_unstable_by_key(|&(id, d)| (d, id));
        out.truncate(k);
        out
    }

    /// Brute force: every hash within `radius`, same order as [`within`](Self::within).
    pub fn scan_within(&self, query: &Hash256, radius: u32) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        scan_within_words(self.codes, &words(query), radius, &mut out);
        out.sort_unstable_by_key(|&(id, d)| (d, id));
        out
    }

    /// Brute force: the `k` nearest hashes within `max_radius`, same order as
    /// [`nearest`](Self::nearest).
    pub fn scan_nearest(&self, query: &Hash256, k: usize, max_radius: u32) -> Vec<(u32, u32)> {
        if k == 0 {
            return Vec::new();
        }
        let q = words(query);
        let kernel = kernel();
        // Max-heap on (distance, id): the top is the worst kept hit.
        let mut heap: BinaryHeap<(u32, u32)> = BinaryHeap::with_capacity(k.min(self.len()) + 1);
        let mut bound = max_radius;
        let mut dist = [0u32; BLOCK];
        for (b, block) in self.codes.chunks(BLOCK).enumerate() {
            let dist = &mut dist[..block.len()];
            kernel.run(block, &q, dist);
            let base = (b * BLOCK) as u32;
            for (i, &d) in dist.iter().enumerate() {
                // Ids rise through the scan, so a tie with the worst kept hit never wins.
                if d > bound || (heap.len() == k && d >= bound) {
                    continue;
                }
                heap.push((d, base + i as u32));
                if heap.len() > k {
                    heap.pop();
                }
                if heap.len() == k {
                    bound = heap.peek().map_or(bound, |&(d, _)| d);
                }
            }
        }
        heap.into_sorted_vec()
            .into_iter()
            .map(|(d, id)| (id, d))
            .collect()
    }

    /// Probe the slots or scan? Compares the work of both in scan units.
    fn plan(&self, q: &[u64; 4], radius: u32) -> Plan {
        let n = self.codes.len() as u64;
        if n == 0 || radius >= 256 {
            return Plan::Scan;
        }
        let radii = slot_radii(radius);
        let m = masks();
        let keys: u64 = radii
            .iter()
            .filter(|&&r| r >= 0)
            .map(|&r| m.start[r as usize + 1] as u64)
            .sum();
        if keys * COST_KEY >= n {
            return Plan::Scan;
        }
        // The enumeration is cheap next to the scan here: count the candidates exactly.
        let mut candidates = 0u64;
        for (s, &r) in radii.iter().enumerate() {
            if r < 0 {
                continue;
            }
            let (offsets, _) = self.slots[s];
            let qk = slot_key(q, s);
            for &mask in &m.masks[..m.start[r as usize + 1]] {
                let k = qk ^ mask as usize;
                candidates += offsets[k + 1].saturating_sub(offsets[k]) as u64;
            }
        }
        if keys * COST_KEY + candidates * COST_CANDIDATE >= n {
            Plan::Scan
        } else {
            Plan::Probe(radii)
        }
    }

    fn probe(&self, q: &[u64; 4], radius: u32, radii: &[i32; SLOTS], out: &mut Vec<(u32, u32)>) {
        let m = masks();
        let codes = self.codes;
        // The candidate ids of all slots, gathered first so that the random reads of their
        // codes can be prefetched a fixed distance ahead of the verification; slot `s`'s
        // candidates are `cands[ends[s - 1]..ends[s]]`.
        let mut cands: Vec<u32> = Vec::new();
        let mut ends = [0usize; SLOTS];
        for (s, &r) in radii.iter().enumerate() {
            if r >= 0 {
                let (offsets, ids) = self.slots[s];
                let qk = slot_key(q, s);
                for &mask in &m.masks[..m.start[r as usize + 1]] {
                    let k = qk ^ mask as usize;
                    cands.extend_from_slice(&ids[offsets[k] as usize..offsets[k + 1] as usize]);
                }
            }
            ends[s] = cands.len();
        }
        let mut start = 0;
        for (s, &end) in ends.iter().enumerate() {
            for j in start..end {
                if let Some(&ahead) = cands.get(j + PREFETCH) {
                    prefetch(codes, ahead);
                }
                let id = cands[j];
                // Ids come from the index; one out of range (a damaged file) is skipped.
                let Some(c) = codes.get(id as usize) else {
                    continue;
                };
                let x = [c[0] ^ q[0], c[1] ^ q[1], c[2] ^ q[2], c[3] ^ q[3]];
                let d =
                    x[0].count_ones() + x[1].count_ones() + x[2].count_ones() + x[3].count_ones();
                if d <= radius && first_slot(&x, radii) == s {
                    out.push((id, d));
                }
            }
            start = end;
        }
    }
}

/// How many candidates ahead the probe prefetches codes.
const PREFETCH: usize = 16;

/// Hints the CPU to fetch `codes[id]` into the cache; does nothing for ids out of range
/// or on other architectures.
#[inline(always)]
fn prefetch(codes: &[[u64; 4]], id: u32) {
    #[cfg(target_arch = "x86_64")]
    if let Some(c) = codes.get(id as usize) {
        // SAFETY: prefetching is only a hint and never faults; the pointer is in bounds.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                c.as_ptr() as *const i8
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (codes, id);
}

/// An empty vector with room for `n` items whose memory, when large, is backed by huge
/// pages where the kernel allows it (Linux `MADV_HUGEPAGE`): the probe reads codes at
/// random across hundreds of megabytes, and 4 KiB pages would cost a TLB miss on nearly
/// every candidate.
fn huge_vec<T>(n: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(n);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = v.capacity() * std::mem::size_of::<T>();
        if bytes >= 2 * HUGE {
            let start = v.as_ptr() as usize;
            let aligned = (start + HUGE - 1) & !(HUGE - 1);
            let len = (start + bytes - aligned) & !(HUGE - 1);
            // SAFETY: the range lies inside the vector's own (untouched) allocation; the
            // advice only changes how the kernel backs it, and a failure is harmless.
            unsafe {
                libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
            }
        }
    }
    v
}

fn check_len(n: usize) -> Result<(), MihError> {
    if n > MAX_LEN {
        return Err(MihError::TooMany {
            requested: n,
            max: MAX_LEN,
        });
    }
    Ok(())
}

fn scan_within_words(codes: &[[u64; 4]], q: &[u64; 4], radius: u32, out: &mut Vec<(u32, u32)>) {
    let kernel = kernel();
    let mut dist = [0u32; BLOCK];
    for (b, block) in codes.chunks(BLOCK).enumerate() {
        let dist = &mut dist[..block.len()];
        kernel.run(block, q, dist);
        let base = (b * BLOCK) as u32;
        for (i, &d) in dist.iter().enumerate() {
            if d <= radius {
                out.push((base + i as u32, d));
            }
        }
    }
}

/// A distance kernel of the scan: `out[i] = distance(codes[i], q)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Popcnt,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Kernel::Popcnt => "popcnt",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => "avx2",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => "avx512-vpopcntdq",
        }
    }

    /// Kernels this CPU can run, best first.
    fn available() -> Vec<Kernel> {
        #[allow(unused_mut)]
        let mut k = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vpopcntdq") {
                k.push(Kernel::Avx512);
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("popcnt") {
                k.push(Kernel::Avx2);
            }
            if is_x86_feature_detected!("popcnt") {
                k.push(Kernel::Popcnt);
            }
        }
        k.push(Kernel::Portable);
        k
    }

    #[inline]
    fn run(self, codes: &[[u64; 4]], q: &[u64; 4], out: &mut [u32]) {
        match self {
            Kernel::Portable => distances_portable(codes, q, out),
            // SAFETY: these kernels are only chosen when `available` detected their features.
            #[cfg(target_arch = "x86_64")]
            Kernel::Popcnt => unsafe { x86::distances_popcnt(codes, q, out) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { x86::distances_avx2(codes, q, out) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { x86::distances_avx512(codes, q, out) },
        }
    }
}

fn kernel() -> Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    *KERNEL.get_or_init(|| Kernel::available()[0])
}

/// The name of the scan kernel this CPU runs (`avx512-vpopcntdq`, `avx2`, `popcnt` or
/// `portable`).
pub fn scan_kernel() -> &'static str {
    kernel().name()
}

#[inline(always)]
fn distances_portable(codes: &[[u64; 4]], q: &[u64; 4], out: &mut [u32]) {
    for (c, o) in codes.iter().zip(out.iter_mut()) {
        *o = distance(c, q);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::distances_portable;
    use std::arch::x86_64::*;

    /// The portable loop compiled with hardware popcount.
    #[target_feature(enable = "popcnt")]
    pub(super) unsafe fn distances_popcnt(codes: &[[u64; 4]], q: &[u64; 4], out: &mut [u32]) {
        distances_portable(codes, q, out)
    }

    /// The portable loop compiled for AVX2, which LLVM vectorizes (nibble-table popcount).
    #[target_feature(enable = "avx2,popcnt")]
    pub(super) unsafe fn distances_avx2(codes: &[[u64; 4]], q: &[u64; 4], out: &mut [u32]) {
        distances_portable(codes, q, out)
    }

    /// Eight hashes per step: four 512-bit loads (two hashes each), VPOPCNTQ, then two
    /// rounds of pairwise lane sums that leave the eight distances in one register.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub(super) unsafe fn distances_avx512(codes: &[[u64; 4]], q: &[u64; 4], out: &mut [u32]) {
        let n = codes.len().min(out.len());
        let qq = _mm512_set_epi64(
            q[3] as i64,
            q[2] as i64,
            q[1] as i64,
            q[0] as i64,
            q[3] as i64,
            q[2] as i64,
            q[1] as i64,
            q[0] as i64,
        );
        let even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
        let odd = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
        let base = codes.as_ptr() as *const u64;
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n, so the 8 hashes (256 bytes) read are inside `codes`.
            let p = base.add(i * 4);
            let p0 = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_epi64(p as _), qq));
            let p1 = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_epi64(p.add(8) as _), qq));
            let p2 = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_epi64(p.add(16) as _), qq));
            let p3 = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_epi64(p.add(24) as _), qq));
            // Word pairs: hash j's (w0 + w1, w2 + w3) at lanes 2j, 2j + 1.
            let s01 = _mm512_add_epi64(
                _mm512_permutex2var_epi64(p0, even, p1),
                _mm512_permutex2var_epi64(p0, odd, p1),
            );
            let s23 = _mm512_add_epi64(
                _mm512_permutex2var_epi64(p2, even, p3),
                _mm512_permutex2var_epi64(p2, odd, p3),
            );
            let d = _mm512_add_epi64(
                _mm512_permutex2var_epi64(s01, even, s23),
                _mm512_permutex2var_epi64(s01, odd, s23),
            );
            // SAFETY: i + 8 <= n <= out.len().
            _mm256_storeu_si256(out.as_mut_ptr().add(i) as _, _mm512_cvtepi64_epi32(d));
            i += 8;
        }
        distances_portable(&codes[i..n], q, &mut out[i..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::hamming;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed
    }

    fn random_hashes(n: usize, seed: u64) -> Vec<Hash256> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                let mut h = [0u8; 32];
                for c in h.chunks_mut(8) {
                    c.copy_from_slice(&lcg(&mut s).to_le_bytes());
                }
                h
            })
            .collect()
    }

    #[test]
    fn every_kernel_agrees_with_hamming() {
        // Lengths around the 8-wide step and the block size.
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 511, 512, 513, 1100] {
            let hashes = random_hashes(n, n as u64 + 1);
            let q = random_hashes(1, 99)[0];
            let codes: Vec<[u64; 4]> = hashes.iter().map(words).collect();
            let want: Vec<u32> = hashes.iter().map(|h| hamming(&q, h)).collect();
            for k in Kernel::available() {
                let mut out = vec![u32::MAX; n];
                for (c, o) in codes.chunks(BLOCK).zip(out.chunks_mut(BLOCK)) {
                    k.run(c, &words(&q), o);
                }
                assert_eq!(out, want, "kernel {} at n = {n}", k.name());
            }
        }
    }

    #[test]
    fn slot_radii_follow_the_pigeonhole() {
        let mut r0 = [-1; 16];
        r0[0] = 0;
        assert_eq!(slot_radii(0), r0);
        assert_eq!(slot_radii(15), [0; 16]);
        assert_eq!(slot_radii(31), [1; 16]);
        let r20 = slot_radii(20);
        assert_eq!(&r20[..5], &[1; 5]);
        assert_eq!(&r20[5..], &[0; 11]);
        // Radius 3 probes slots 0..=3 exactly and skips the others.
        let r3 = slot_radii(3);
        assert_eq!(&r3[..4], &[0; 4]);
        assert_eq!(&r3[4..], &[-1; 12]);
        // A hash escapes every probe only if each slot differs by more than its radius,
        // which takes more than r bits in all: the probes are complete, and tight.
        for r in 0..300u32 {
            let escape: i32 = slot_radii(r).iter().map(|&x| x.max(-1) + 1).sum();
            assert_eq!(escape, r as i32 + 1, "radius {r}");
        }
    }

    #[test]
    fn masks_are_grouped_by_weight() {
        let m = masks();
        assert_eq!(m.start[1], 1);
        assert_eq!(m.start[2], 17);
        assert_eq!(m.start[3], 17 + 120);
        assert_eq!(m.start[17], 65536);
        assert!(m
            .masks
            .windows(2)
            .all(|w| w[0].count_ones() <= w[1].count_ones()));
    }

    #[test]
    fn plan_probes_small_radii_and_scans_large_ones() {
        let idx = MihIndex::build(&random_hashes(20_000, 5)).unwrap();
        let q = words(&random_hashes(1, 6)[0]);
        assert!(matches!(idx.view().plan(&q, 15), Plan::Probe(_)));
        assert!(matches!(idx.view().plan(&q, 31), Plan::Probe(_)));
        assert_eq!(idx.view().plan(&q, 100), Plan::Scan);
        assert_eq!(idx.view().plan(&q, 256), Plan::Scan);
        // A bank of one repeated hash: every slot probe reaches the whole bank.
        let same = MihIndex::build(&vec![[7u8; 32]; 5_000]).unwrap();
        assert_eq!(same.view().plan(&words(&[7u8; 32]), 15), Plan::Scan);
    }

    #[test]
    fn extend_keeps_groups_sorted_and_matches_a_rebuild() {
        let all = random_hashes(3_000, 11);
        let mut idx = MihIndex::build(&all[..1_000]).unwrap();
        idx.extend(&all[1_000..2_500]).unwrap();
        idx.extend(&[]).unwrap();
        idx.extend(&all[2_500..]).unwrap();
        let rebuilt = MihIndex::build(&all).unwrap();
        assert_eq!(idx.len(), 3_000);
        for (a, b) in idx.slots.iter().zip(&rebuilt.slots) {
            assert_eq!(a.offsets, b.offsets);
            assert_eq!(a.ids, b.ids);
        }
        assert_eq!(idx.get(2_999), Some(all[2_999]));
        assert_eq!(idx.get(3_000), None);
    }

    #[test]
    fn memory_is_96_bytes_per_hash_plus_offsets() {
        let idx = MihIndex::build(&random_hashes(10_000, 3)).unwrap();
        let fixed = 16 * (KEYS + 1) * 4;
        assert_eq!(idx.heap_bytes(), 10_000 * 96 + fixed);
    }

    #[test]
    fn serialised_slots_answer_as_the_index_does() {
        let hashes = random_hashes(3_000, 11);
        let idx = MihIndex::build(&hashes).unwrap();
        let mut bytes = Vec::new();
        let written = write_slots(&mut bytes, &idx.codes).unwrap();
        assert_eq!(written as usize, bytes.len());
        let ints: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let view = MihRef::from_serialised(&idx.codes, &ints, hashes.len()).unwrap();
        view.check().unwrap();
        for q in random_hashes(20, 12).iter().chain(&hashes[..5]) {
            assert_eq!(view.within(q, 40), idx.within(q, 40));
            assert_eq!(view.nearest(q, 7, 256), idx.nearest(q, 7, 256));
        }
        // A damaged offset table is refused.
        let mut bad = ints.clone();
        bad[10] = u32::MAX;
        let broken = MihRef::from_serialised(&idx.codes, &bad, hashes.len()).unwrap();
        assert!(broken.check().is_err());
        assert!(MihRef::from_serialised(&idx.codes, &ints[1..], hashes.len()).is_none());
    }
}
