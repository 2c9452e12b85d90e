//! The multi-index hashing search must return exactly what brute force returns: the same ids,
//! the same distances, in the same order, for every radius and every kind of bank.

use leakwatch_matcher::hashing::{hamming, Hash256};
use leakwatch_matcher::mih::{scan_kernel, MihIndex};
use proptest::prelude::*;

/// The reference: every hash within `radius`, by `hashing::hamming`, ordered by (distance, id).
fn reference(bank: &[Hash256], q: &Hash256, radius: u32) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = bank
        .iter()
        .enumerate()
        .map(|(i, h)| (i as u32, hamming(q, h)))
        .filter(|&(_, d)| d <= radius)
        .collect();
    v.sort_by_key(|&(i, d)| (d, i));
    v
}

fn reference_nearest(bank: &[Hash256], q: &Hash256, k: usize, max_radius: u32) -> Vec<(u32, u32)> {
    let mut v = reference(bank, q, max_radius);
    v.truncate(k);
    v
}

/// Flips the bits at `positions` (mod 256).
fn flip(h: &Hash256, positions: &[u16]) -> Hash256 {
    let mut out = *h;
    for &p in positions {
        let p = p as usize % 256;
        out[p / 8] ^= 1 << (p % 8);
    }
    out
}

fn hash() -> impl Strategy<Value = Hash256> {
    any::<[u8; 32]>()
}

/// Banks with structure: a few centres, each with many near-duplicates (0..24 flipped bits),
/// hashes that share whole slot values, exact repeats, and some uniform noise.
fn clustered_bank() -> impl Strategy<Value = Vec<Hash256>> {
    (
        prop::collection::vec(hash(), 1..6),
        prop::collection::vec(
            (
                0usize..6,
                prop::collection::vec(any::<u16>(), 0..24),
                any::<u8>(),
            ),
            0..300,
        ),
        prop::collection::vec(hash(), 0..100),
    )
        .prop_map(|(centres, members, noise)| {
            let mut bank = Vec::new();
            for (c, flips, kind) in members {
                let centre = &centres[c % centres.len()];
                let h = match kind % 4 {
                    // Near-duplicate of a centre.
                    0 | 1 => flip(centre, &flips),
                    // Exact repeat.
                    2 => *centre,
                    // Same bytes as the centre in the even 16-bit slots, random elsewhere:
                    // shares slot values but is far in Hamming distance.
                    _ => {
                        let mut h = flip(centre, &flips);
                        for (i, b) in h.iter_mut().enumerate() {
                            if (i / 2) % 2 == 1 {
                                *b = b.wrapping_mul(167).wrapping_add(kind);
                            }
                        }
                        h
                    }
                };
                bank.push(h);
            }
            bank.extend(noise);
            bank
        })
}

/// A query: a bank member moved by a few bits, or an unrelated hash.
fn query_for(bank: &[Hash256]) -> impl Strategy<Value = Hash256> {
    let bank = bank.to_vec();
    (
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u16>(), 0..40),
        hash(),
        any::<bool>(),
    )
        .prop_map(move |(i, flips, random, near)| {
            if near && !bank.is_empty() {
                flip(&bank[i.index(bank.len())], &flips)
            } else {
                random
            }
        })
}

fn bank_and_queries() -> impl Strategy<Value = (Vec<Hash256>, Vec<Hash256>)> {
    clustered_bank().prop_flat_map(|bank| {
        let q = prop::collection::vec(query_for(&bank), 1..6);
        (Just(bank), q)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn within_equals_brute_force_up_to_64((bank, queries) in bank_and_queries(), r in 0u32..=64) {
        let idx = MihIndex::build(&bank).unwrap();
        for q in &queries {
            let want = reference(&bank, q, r);
            prop_assert_eq!(idx.within(q, r), want.clone());
            prop_assert_eq!(idx.probe_within(q, r), want.clone());
            prop_assert_eq!(idx.scan_within(q, r), want);
        }
    }

    #[test]
    fn within_equals_brute_force_beyond_64((bank, queries) in bank_and_queries(), r in 65u32..=300) {
        let idx = MihIndex::build(&bank).unwrap();
        for q in &queries {
            let want = reference(&bank, q, r);
            prop_assert_eq!(idx.within(q, r), want.clone());
            if r <= 96 {
                prop_assert_eq!(idx.probe_within(q, r), want);
            }
        }
    }

    #[test]
    fn within_on_uniform_banks(bank in prop::collection::vec(hash(), 0..400), q in hash(), r in 0u32..=300) {
        let idx = MihIndex::build(&bank).unwrap();
        let want = reference(&bank, &q, r);
        prop_assert_eq!(idx.within(&q, r), want.clone());
        if r <= 96 {
            prop_assert_eq!(idx.probe_within(&q, r), want);
        }
    }

    #[test]
    fn nearest_equals_brute_force(
        (bank, queries) in bank_and_queries(),
        k in 0usize..40,
        max_radius in prop_oneof![0u32..=64, 65u32..=300],
    ) {
        let idx = MihIndex::build(&bank).unwrap();
        for q in &queries {
            let want = reference_nearest(&bank, q, k, max_radius);
            prop_assert_eq!(idx.nearest(q, k, max_radius), want.clone());
            prop_assert_eq!(idx.scan_nearest(q, k, max_radius), want);
        }
    }

    #[test]
    fn extended_index_equals_built_index((bank, queries) in bank_and_queries(), split in any::<prop::sample::Index>(), r in 0u32..=40) {
        let at = split.index(bank.len() + 1);
        let mut idx = MihIndex::build(&bank[..at]).unwrap();
        idx.extend(&bank[at..]).unwrap();
        prop_assert_eq!(idx.len(), bank.len());
        for q in &queries {
            let want = reference(&bank, q, r);
            prop_assert_eq!(idx.within(q, r), want.clone());
            prop_assert_eq!(idx.probe_within(q, r), want);
        }
    }
}

/// A bank large enough that radii 15 and 31 are answered by probing, not by the scan
/// fallback, with planted near-duplicates at known distances.
#[test]
fn large_bank_probe_path_finds_planted_neighbours() {
    let mut seed = 0x5eed_u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed
    };
    let mut bank: Vec<Hash256> = (0..50_000)
        .map(|_| {
            let mut h = [0u8; 32];
            for c in h.chunks_mut(8) {
                c.copy_from_slice(&next().to_le_bytes());
            }
            h
        })
        .collect();
    let q = bank[123];
    // Neighbours at 1..=40 bits, flips spread over all slots.
    for d in 1..=40u16 {
        let flips: Vec<u16> = (0..d).map(|i| i * 6 + d % 6).collect();
        bank.push(flip(&q, &flips));
    }
    let idx = MihIndex::build(&bank).unwrap();
    for r in [0, 5, 15, 16, 24, 31, 32, 40, 47, 63] {
        let got = idx.within(&q, r);
        assert_eq!(got, reference(&bank, &q, r), "radius {r}");
        // The query itself plus every planted neighbour within r.
        assert!(got.len() > r.min(40) as usize, "radius {r}: {got:?}");
    }
    assert_eq!(idx.nearest(&q, 3, 64), reference_nearest(&bank, &q, 3, 64));
    assert_eq!(
        idx.nearest(&q, 45, 20),
        reference_nearest(&bank, &q, 45, 20)
    );
    assert!(!scan_kernel().is_empty());
}

#[test]
fn empty_bank_returns_nothing() {
    let idx = MihIndex::build(&[]).unwrap();
    assert!(idx.is_empty());
    for r in [0, 15, 31, 64, 256, u32::MAX] {
        assert!(idx.within(&[0u8; 32], r).is_empty());
        assert!(idx.scan_within(&[0u8; 32], r).is_empty());
    }
    assert!(idx.nearest(&[0u8; 32], 5, 256).is_empty());
    assert!(idx.scan_nearest(&[0u8; 32], 5, 256).is_empty());
}

#[test]
fn radius_zero_finds_exact_copies_only() {
    let a = [0xA5u8; 32];
    let b = flip(&a, &[0]);
    let idx = MihIndex::build(&[a, b, a]).unwrap();
    assert_eq!(idx.within(&a, 0), vec![(0, 0), (2, 0)]);
    assert_eq!(idx.within(&b, 0), vec![(1, 0)]);
    assert_eq!(idx.within(&a, 1), vec![(0, 0), (2, 0), (1, 1)]);
}

#[test]
fn huge_radius_returns_every_hash_in_order() {
    let a = [0u8; 32];
    let b = [0xFFu8; 32];
    let c = flip(&a, &[3, 200]);
    let idx = MihIndex::build(&[b, c, a]).unwrap();
    let want = vec![(2, 0), (1, 2), (0, 256)];
    assert_eq!(idx.within(&a, 256), want);
    assert_eq!(idx.within(&a, u32::MAX), want);
    assert_eq!(idx.within(&a, 255), want[..2].to_vec());
    assert_eq!(idx.nearest(&a, 2, u32::MAX), want[..2].to_vec());
    assert_eq!(idx.nearest(&a, 10, 1), want[..1].to_vec());
    assert_eq!(idx.nearest(&a, 0, 256), vec![]);
}

#[test]
fn nearest_breaks_ties_by_id() {
    let a = [0u8; 32];
    let bank: Vec<Hash256> = (0..10u16).map(|i| flip(&a, &[i * 20])).collect();
    let idx = MihIndex::build(&bank).unwrap();
    let got = idx.nearest(&a, 4, 64);
    assert_eq!(got, vec![(0, 1), (1, 1), (2, 1), (3, 1)]);
    assert_eq!(idx.scan_nearest(&a, 4, 64), got);
}
