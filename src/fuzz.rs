//! Mutation fuzzing for the readers of untrusted bytes (tests only): audio decoding, the feature
//! cache, CSV manifests and `model.json`. Each target takes a valid input, damages it in seeded
//! random ways (bit flips, random and boundary values, deleted, repeated and inserted ranges,
//! truncation) and checks that the reader gives a value or an error, never a panic, a hang or
//! an absurd allocation.
//!
//! Deterministic: the same cases on every run, so a failure is reproducible and the suite stays
//! honest. `SERD_FUZZ_CASES=N` runs N cases per target instead of the default (for longer
//! sessions: `SERD_FUZZ_CASES=10000 cargo test --lib fuzz`). It is not coverage-guided.

use crate::rng::Rng;

/// Cases per target: `SERD_FUZZ_CASES`, else `default`.
pub fn cases(default: usize) -> usize {
    std::env::var("SERD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` damaged copies of `base`, case `i` seeded by `seed` and `i`.
pub fn mutants(base: &[u8], seed: u64, n: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    (0..n).map(move |i| {
        let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
        let mut bytes = base.to_vec();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut bytes, &mut rng);
        }
        bytes
    })
}

/// Values that tend to reach edge cases when they land on a length or a count.
const BOUNDARIES: [u32; 6] = [0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];

fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    if bytes.is_empty() {
        bytes.push(rng.next_u64() as u8);
        return;
    }
    let at = rng.below(bytes.len());
    // Mostly near the start, where headers are: half the cases pick within the first 256 bytes.
    let at = if rng.uniform() < 0.5 {
        at % 256.min(bytes.len())
    } else {
        at
    };
    match rng.below(7) {
        0 => bytes[at] ^= 1 << rng.below(8),
        1 => bytes[at] = rng.next_u64() as u8,
        2 => {
            let value = BOUNDARIES[rng.below(BOUNDARIES.len())].to_le_bytes();
            for (i, b) in value.iter().enumerate() {
                if let Some(slot) = bytes.get_mut(at + i) {
                    *slot = *b;
                }
            }
        }
        3 => {
            let end = (at + 1 + rng.below(64)).min(bytes.len());
            bytes.drain(at..end);
        }
        4 => {
            let end = (at + 1 + rng.below(64)).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            bytes.splice(at..at, copy);
        }
        5 => {
            let junk: Vec<u8> = (0..1 + rng.below(16))
                .map(|_| rng.next_u64() as u8)
                .collect();
            bytes.splice(at..at, junk);
        }
        _ => bytes.truncate(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_are_reproducible_and_differ_from_the_base() {
        let base: Vec<u8> = (0..=255).collect();
        let a: Vec<_> = mutants(&base, 7, 50).collect();
        let b: Vec<_> = mutants(&base, 7, 50).collect();
        assert_eq!(a, b);
        assert!(a.iter().filter(|m| **m != base).count() >= 45);
    }
}
