//! Philox4x32-10, the counter-based generator behind TensorFlow's candidate samplers, and the
//! way TensorFlow turns its 32-bit words into integers and floats (docs/semantics.md §7.9).

const MULTIPLIER_A: u32 = 0xD251_1F53;
const MULTIPLIER_B: u32 = 0xCD9E_8D57;
const KEY_INCREMENT_A: u32 = 0x9E37_79B9;
const KEY_INCREMENT_B: u32 = 0xBB67_AE85;

/// TensorFlow's `DEFAULT_GRAPH_SEED`: the first seed attribute of an op that has an op seed
/// but no global seed.
pub const DEFAULT_GRAPH_SEED: i64 = 87_654_321;
const MAX_INT32: i64 = (1 << 31) - 1;

/// The generator: a 128-bit counter and a 64-bit key. Each call to `next_block` yields four
/// 32-bit words and advances the counter by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Philox4x32 {
    counter: [u32; 4],
    key: [u32; 2],
}

impl Philox4x32 {
    /// TensorFlow's `PhiloxRandom(seed, seed2)`: the key is `seed`, the counter's upper half is
    /// `seed2`.
    pub fn new(seed: u64, seed2: u64) -> Self {
        Philox4x32 {
            counter: [0, 0, seed2 as u32, (seed2 >> 32) as u32],
            key: [seed as u32, (seed >> 32) as u32],
        }
    }

    pub fn next_block(&mut self) -> [u32; 4] {
        let mut block = self.counter;
        let mut key = self.key;
        for round in 0..10 {
            block = single_round(block, key);
            if round < 9 {
                key[0] = key[0].wrapping_add(KEY_INCREMENT_A);
                key[1] = key[1].wrapping_add(KEY_INCREMENT_B);
            }
        }
        self.skip(1);
        block
    }

    /// Advances the 128-bit counter by `blocks`, with carries across all four words.
    pub fn skip(&mut self, blocks: u64) {
        let low = (self.counter[0] as u64 | (self.counter[1] as u64) << 32) as u128;
        let high = (self.counter[2] as u64 | (self.counter[3] as u64) << 32) as u128;
        let value = (high << 64 | low).wrapping_add(blocks as u128);
        self.counter = [
            value as u32,
            (value >> 32) as u32,
            (value >> 64) as u32,
            (value >> 96) as u32,
        ];
    }
}

fn single_round(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let product_a = MULTIPLIER_A as u64 * counter[0] as u64;
    let product_b = MULTIPLIER_B as u64 * counter[2] as u64;
    [
        (product_b >> 32) as u32 ^ counter[1] ^ key[0],
        product_b as u32,
        (product_a >> 32) as u32 ^ counter[3] ^ key[1],
        product_a as u32,
    ]
}

/// One call's stream of words: the words of each block are handed out in order 0, 1, 2, 3.
#[derive(Clone, Debug)]
pub struct RandomStream {
    generator: Philox4x32,
    block: [u32; 4],
    used: usize,
}

impl RandomStream {
    pub fn new(generator: Philox4x32) -> Self {
        RandomStream {
            generator,
            block: [0; 4],
            used: 4,
        }
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.used == 4 {
            self.block = self.generator.next_block();
            self.used = 0;
        }
        let word = self.block[self.used];
        self.used += 1;
        word
    }

    /// Low half first, then high half.
    pub fn next_u64(&mut self) -> u64 {
        let low = self.next_u32() as u64;
        let high = self.next_u32() as u64;
        low | high << 32
    }

    /// A double in [0, 1) with 52 random mantissa bits from two words.
    pub fn next_f64(&mut self) -> f64 {
        let high = (self.next_u32() & 0xF_FFFF) as u64;
        let low = self.next_u32() as u64;
        f64::from_bits(1023 << 52 | high << 32 | low) - 1.0
    }

    /// A float in [0, 1) with 23 random mantissa bits from one word.
    pub fn next_f32(&mut self) -> f32 {
        f32::from_bits(127 << 23 | (self.next_u32() & 0x7F_FFFF)) - 1.0
    }

    /// An exactly uniform integer in [0, n) from 32-bit words, by rejection.
    pub fn uniform_u32(&mut self, n: u32) -> u32 {
        debug_assert!(n > 0);
        if n.is_power_of_two() {
            return self.next_u32() & (n - 1);
        }
        let rejected_below = u32::MAX % n + 1;
        loop {
            let word = self.next_u32();
            if word >= rejected_below {
                return word % n;
            }
        }
    }

    /// An exactly uniform integer in [0, n) from 64-bit words, by rejection.
    pub fn uniform_u64(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        if n.is_power_of_two() {
            return self.next_u64() & (n - 1);
        }
        let rejected_below = u64::MAX % n + 1;
        loop {
            let word = self.next_u64();
            if word >= rejected_below {
                return word % n;
            }
        }
    }
}

/// The seed a user gives: nothing, TensorFlow's op seed, or the op's two raw seed attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Seed {
    Nondeterministic,
    Op(i64),
    Attributes(i64, i64),
}

impl Seed {
    /// The `(seed, seed2)` attributes TensorFlow gives the op, without a global seed
    /// (`random_seed.get_seed`). `None` means "draw seeds from the operating system".
    pub fn attributes(self) -> Option<(i64, i64)> {
        let (seed, seed2) = match self {
            Seed::Nondeterministic => return None,
            Seed::Op(op_seed) => (DEFAULT_GRAPH_SEED, op_seed.rem_euclid(MAX_INT32)),
            Seed::Attributes(seed, seed2) => (seed, seed2),
        };
        if seed == 0 && seed2 == 0 {
            None
        } else {
            Some((seed, seed2))
        }
    }

    /// The persistent generator of a sampler kernel created with this seed.
    pub fn generator(self) -> Philox4x32 {
        match self.attributes() {
            Some((seed, seed2)) => Philox4x32::new(seed as u64, seed2 as u64),
            None => Philox4x32::new(os_random_u64(), os_random_u64()),
        }
    }
}

fn os_random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // The operating system's entropy source failing is not recoverable in any useful way; fall
    // back to the clock rather than refusing to sample.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5DEE_CE66_D1CE_4E5B);
        return nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vectors from the Philox paper's reference implementation (Random123 kat_vectors).
    #[test]
    fn philox_matches_random123_known_answers() {
        let mut zero = Philox4x32 {
            counter: [0; 4],
            key: [0; 2],
        };
        assert_eq!(
            zero.next_block(),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        let mut ones = Philox4x32 {
            counter: [u32::MAX; 4],
            key: [u32::MAX; 2],
        };
        assert_eq!(
            ones.next_block(),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        let mut pi = Philox4x32 {
            counter: [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
            key: [0xa409_3822, 0x299f_31d0],
        };
        assert_eq!(
            pi.next_block(),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn skip_carries_across_words() {
        let mut generator = Philox4x32 {
            counter: [u32::MAX, u32::MAX, u32::MAX, 0],
            key: [0; 2],
        };
        generator.skip(1);
        assert_eq!(generator.counter, [0, 0, 0, 1]);
    }

    #[test]
    fn op_seed_maps_to_default_graph_seed() {
        assert_eq!(Seed::Op(3).attributes(), Some((87_654_321, 3)));
        assert_eq!(Seed::Op((1 << 31) + 4).attributes(), Some((87_654_321, 5)));
        assert_eq!(Seed::Attributes(0, 0).attributes(), None);
    }
}
