//! Elementwise `exp` and `log1p` for the loss kernels, written so that the compiler vectorises
//! the loops that call them (the C library's scalar `expf`/`log1pf` dominated the run time).
//! Accurate to a few float32 ulps; float64 keeps the C library's functions.

/// `exp(x)` for `x <= 0`, and `log1p(u)` for `u` in `[0, 1]`, per float type.
pub trait FastMath: Copy {
    fn exp_nonpositive(x: Self) -> Self;
    fn ln_1p_unit(u: Self) -> Self;
}

impl FastMath for f64 {
    #[inline(always)]
    fn exp_nonpositive(x: f64) -> f64 {
        x.exp()
    }

    #[inline(always)]
    fn ln_1p_unit(u: f64) -> f64 {
        u.ln_1p()
    }
}

impl FastMath for f32 {
    /// Cody–Waite reduction `x = n ln2 + r`, `|r| <= ln2/2`, then a degree-6 polynomial for
    /// `e^r` and `2^n` from the exponent bits. Below the smallest normal result, 0.
    #[inline(always)]
    fn exp_nonpositive(x: f32) -> f32 {
        const LOG2_E: f32 = std::f32::consts::LOG2_E;
        const LN2_HIGH: f32 = 0.693_359_4;
        const LN2_LOW: f32 = -2.121_944_4e-4;
        // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
        const ROUND: f32 = 12_582_912.0;
        let underflow = x < -87.0;
        let x = if underflow { -87.0 } else { x };
        let n = (x * LOG2_E + ROUND) - ROUND;
        let r = (x - n * LN2_HIGH) - n * LN2_LOW;
        let p = 1.987_569_1e-4f32;
        let p = p * r + 1.398_199_9e-3;
        let p = p * r + 8.333_452e-3;
        let p = p * r + 4.166_579_6e-2;
        let p = p * r + 1.666_666_5e-1;
        let p = p * r + 0.5;
        let e_r = (p * r) * r + r + 1.0;
        // 2^n from the exponent bits: n + 127 sits in the low mantissa bits of `biased`
        // (no float-to-int conversion, which does not vectorise well).
        let biased = n + (127.0 + 8_388_608.0);
        let scale = f32::from_bits(biased.to_bits().wrapping_sub(0x4B00_0000) << 23);
        let value = e_r * scale;
        if underflow {
            0.0
        } else {
            value
        }
    }

    /// `log1p(u) = 2 atanh(u / (2 + u))`, exact in `u`'s rounding, with the odd series of
    /// `atanh` on `t <= 1/3`.
    #[inline(always)]
    fn ln_1p_unit(u: f32) -> f32 {
        let t = u / (2.0 + u);
        let t2 = t * t;
        let s = 1.0 / 15.0f32;
        let s = s * t2 + 1.0 / 13.0;
        let s = s * t2 + 1.0 / 11.0;
        let s = s * t2 + 1.0 / 9.0;
        let s = s * t2 + 1.0 / 7.0;
        let s = s * t2 + 1.0 / 5.0;
        let s = s * t2 + 1.0 / 3.0;
        let s = s * t2 + 1.0;
        2.0 * t * s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn exp_is_within_two_ulps_of_the_c_library() {
        let mut worst = 0;
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            worst = worst.max(ulps(f32::exp_nonpositive(x), x.exp()));
        }
        assert!(worst <= 2, "worst error {worst} ulps");
        assert_eq!(f32::exp_nonpositive(-f32::MAX), 0.0);
        assert_eq!(f32::exp_nonpositive(0.0), 1.0);
    }

    #[test]
    fn log1p_is_within_three_ulps_of_the_c_library() {
        let mut worst = 0;
        for i in 0..=200_000 {
            let u = i as f32 / 200_000.0;
            worst = worst.max(ulps(f32::ln_1p_unit(u), u.ln_1p()));
        }
        for e in -45..0 {
            let u = 10f32.powi(e);
            worst = worst.max(ulps(f32::ln_1p_unit(u), u.ln_1p()));
        }
        assert!(worst <= 3, "worst error {worst} ulps");
    }
}
