//! A short fuzz run inside the test suite: the seed packets of
//! `fuzz/corpus/packet`, mutated many times over (bytes flipped, inserted,
//! removed, spliced; JSON structure repeated), through the server's packet
//! decoding and validation (`chat::probe`). Each input must come out with a
//! verdict, the same one every time. The long run is `scripts/fuzz`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::path::Path;

use chatwire::chat::probe::{Verdict, decode};

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"",
    b",",
    b":",
    b"null",
    b"-1",
    b"1e999",
    b"\\u0000",
    b"\xff",
    b"{\"_placeholder\":true,\"num\":0}",
    b"451-",
    b"4",
    b"2",
    b"\xf0\x9f\x92\xa9",
    b"\"room\"",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            2 if !input.is_empty() => {
                let end = (at + rng.below(16)).min(input.len());
                input.drain(at.min(end)..end);
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                input.splice(at..at, other[from..].iter().copied());
            }
            4 => {
                let token = TOKENS[rng.below(4)];
                let repeated = token.repeat(rng.below(3000));
                input.splice(at..at, repeated);
            }
            _ => input.truncate(at),
        }
    }
}

fn verdict(input: &[u8]) -> Verdict {
    let mut parts = input.split(|byte| *byte == 0xFF);
    let frame = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let attachments: Vec<&[u8]> = parts.collect();
    decode(&frame, &attachments)
}

#[test]
fn mutated_packets_always_get_a_verdict() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/packet");
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    assert!(seeds.len() >= 5, "the seed corpus is in {}", corpus.display());
    for seed in &seeds {
        assert!(
            !matches!(verdict(seed), Verdict::Malformed),
            "seed {:?} should decode",
            String::from_utf8_lossy(seed)
        );
    }

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut seen = [0usize; 4];
    for _ in 0..30_000 {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut input, &seeds);
        let first = verdict(&input);
        assert_eq!(first, verdict(&input), "decoding is deterministic");
        seen[match first {
            Verdict::Malformed => 0,
            Verdict::Incomplete => 1,
            Verdict::Refused(_) => 2,
            Verdict::Accepted(_) => 3,
        }] += 1;
    }
    assert!(seen.iter().all(|n| *n > 0), "the mutations reach every verdict: {seen:?}");
}
