//! A fast hash for keys that the strategy does not choose.
//!
//! The multiply-rotate hash of rustc (`FxHasher`): a few instructions per eight bytes,
//! against SipHash's dozens for the short names the validator looks up. It has no key, so
//! inputs that collide are easy to write. It therefore keys only tables that a strategy
//! cannot grow (the generated attribute map, the rule tables), where a colliding name costs
//! one more comparison, and picks slots in caches and filters, where a collision costs a
//! miss and nothing more. Tables keyed by the strategy's own names keep the standard
//! library's keyed hash.

use std::hash::{BuildHasherDefault, Hasher};

/// The multiplier of rustc's `FxHasher`.
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// rustc's `FxHasher`, one word at a time.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

/// Builds [`FxHasher`]s, for `HashMap::with_hasher` and `HashMap::default`.
pub type FxBuild = BuildHasherDefault<FxHasher>;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Byte by byte: a copy of a length only known at run time is a call to `memcpy`.
            let word = rest
                .iter()
                .enumerate()
                .fold(0u64, |word, (i, byte)| word | u64::from(*byte) << (8 * i));
            self.add(word);
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A hash of `text` whose top bits are well mixed, for picking a cache slot.
pub fn of_str(text: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(text.as_bytes());
    hasher.add(text.len() as u64);
    hasher.finish()
}
