//! Seeded pseudo-random numbers: the same seed gives the same initial weights and batch order on
//! every runtime (integer arithmetic plus IEEE f64 operations only, so wasm is deterministic).

/// xoshiro256** seeded through SplitMix64 (Blackman & Vigna). 256 bits of state, period 2^256-1,
/// passes BigCrush; more than enough for initialisation and shuffling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let s = [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)];
        Rng { s }
    }

    /// The raw state, for checkpoints.
    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    /// A generator continuing from a raw `state()` (checkpoints); None for the all-zero state,
    /// which xoshiro never reaches and from which it would only produce zeros.
    pub fn from_state(s: [u64; 4]) -> Option<Self> {
        (s != [0; 4]).then_some(Rng { s })
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, bound) without modulo bias (Lemire's multiply-and-reject).
    pub fn below(&mut self, bound: u32) -> u32 {
        debug_assert!(bound > 0);
        let bound = bound as u64;
        let threshold = (u32::MAX as u64 + 1 - bound) % bound;
        loop {
            let m = (self.next_u64() >> 32) * bound;
            if (m & 0xFFFF_FFFF) >= threshold {
                return (m >> 32) as u32;
            }
        }
    }

    /// Standard normal via Box–Muller (f64; one value per call, the pair's second is dropped so
    /// the stream position depends only on how many values were drawn).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1], keeps ln finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos()
    }

    /// Fills `out` with uniforms in [0, 1) on a 2^-24 grid (exact in f32), two per 64 random
    /// bits; the stream position after the call depends only on `out.len()`.
    pub fn fill_uniform_f32(&mut self, out: &mut [f32]) {
        const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
        let (pairs, tail) = out.as_chunks_mut::<2>();
        for pair in pairs {
            let r = self.next_u64();
            pair[0] = ((r >> 40) as u32) as f32 * SCALE;
            pair[1] = (((r >> 8) & 0xFF_FFFF) as u32) as f32 * SCALE;
        }
        for v in tail {
            *v = ((self.next_u64() >> 40) as u32) as f32 * SCALE;
        }
    }

    /// Fisher–Yates shuffle of `perm` in place.
    pub fn shuffle(&mut self, perm: &mut [u32]) {
        for i in (1..perm.len()).rev() {
            let j = self.below(i as u32 + 1) as usize;
            perm.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut c = Rng::new(8);
        let va: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        let vc: Vec<u64> = (0..16).map(|_| c.next_u64()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let (mut su, mut sn, mut sn2) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let u = r.next_f64();
            assert!((0.0..1.0).contains(&u));
            su += u;
            let z = r.normal();
            sn += z;
            sn2 += z * z;
        }
        let n = n as f64;
        assert!((su / n - 0.5).abs() < 0.005, "uniform mean {}", su / n);
        assert!((sn / n).abs() < 0.01, "normal mean {}", sn / n);
        assert!((sn2 / n - 1.0).abs() < 0.02, "normal variance {}", sn2 / n);
    }

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut r = Rng::new(3);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            seen[r.below(7) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }

    #[test]
    fn uniform_f32_fill_is_seeded_and_in_range() {
        let (mut a, mut b) = (Rng::new(5), Rng::new(5));
        let (mut x, mut y) = (vec![0.0f32; 10_001], vec![0.0f32; 10_001]);
        a.fill_uniform_f32(&mut x);
        b.fill_uniform_f32(&mut y);
        assert_eq!(x, y);
        assert!(x.iter().all(|&u| (0.0..1.0).contains(&u)));
        let mean = x.iter().map(|&u| f64::from(u)).sum::<f64>() / x.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        assert_eq!(a, b);
        assert_ne!(a, Rng::new(5));
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut r = Rng::new(9);
        let mut p: Vec<u32> = (0..100).collect();
        r.shuffle(&mut p);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<u32>>());
        assert_ne!(p, (0..100).collect::<Vec<u32>>());
    }
}
