//! Matrix products with bfloat16 operands and float32 sums: what `precision = "bfloat16"` uses
//! for the three products of a sampled loss.
//!
//! Each operand is rounded to bfloat16 (the top 16 bits of a float32: sign, the same 8 exponent
//! bits, 8 significant bits) to nearest, ties to even. AVX-512 BF16's `vdpbf16ps` multiplies
//! pairs of bfloat16 values (exactly: 8 × 8 significant bits fit in a float32) and adds both
//! products to a float32 sum, twice as many multiply-adds per instruction as float32 FMA.
//! Values below float32's normal range (`|x| < 1.2e-38`) count as zero, as that instruction
//! treats them.
//!
//! Layout. `vdpbf16ps` works on 32-bit lanes holding two bfloat16 values, one pair of the inner
//! dimension `k` each: lane `(p, j)` of the right operand holds `b[2p, j]` (low half) and
//! `b[2p + 1, j]` (high half), and the left operand's element `(i, p)` holds `a[i, 2p]`,
//! `a[i, 2p + 1]`, broadcast to all lanes. An odd `k` gets a zero pair partner. The right
//! operand is packed once in rows of pairs (`PackedRight`), the left in pairs (`PackedLeft`);
//! a tile of 8 rows × 32 columns keeps its 16 sums in registers over the whole of `k`.
//!
//! Only processors with AVX-512 F, BW and BF16 run these products; [`BFloat16Products::detect`]
//! returns `None` elsewhere, and callers compute in float32 instead.

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::workspace;

/// Which arithmetic the matrix products of a sampled loss use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// float32 operands and sums (TensorFlow's arithmetic).
    #[default]
    Float32,
    /// bfloat16 operands, float32 sums, where the processor has AVX-512 BF16; float32
    /// elsewhere.
    BFloat16,
}

impl Precision {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "float32" => Some(Precision::Float32),
            "bfloat16" => Some(Precision::BFloat16),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Float32 => "float32",
            Precision::BFloat16 => "bfloat16",
        }
    }
}

/// Proof that this processor runs the bfloat16 products: a value exists only where it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BFloat16Products(());

impl BFloat16Products {
    /// `Some` where the processor has AVX-512 F, BW and BF16.
    pub fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bw") && has!("avx512bf16") {
                return Some(BFloat16Products(()));
            }
        }
        None
    }

    /// `c = a · b`, overwriting `c` (`[m, n]` for `a` `[m, k]` and `b` `[k, n]`).
    ///
    /// # Panics
    /// If the shapes do not agree.
    pub fn product(self, a: &PackedLeft, b: &PackedRight, c: &mut ArrayViewMut2<f32>) {
        assert_eq!(a.pairs, b.pairs, "inner dimensions of a bfloat16 product");
        assert_eq!(
            c.dim(),
            (a.rows, b.columns),
            "shape of a bfloat16 product's output"
        );
        if c.is_empty() {
            return;
        }
        let c_row = match (c.strides()[0], c.strides()[1]) {
            (rows, 1) if rows >= b.columns as isize || c.nrows() == 1 => rows.max(0) as usize,
            _ => {
                // A strided output is written through a contiguous copy.
                let mut contiguous = ndarray::Array2::<f32>::zeros(c.dim());
                self.product(a, b, &mut contiguous.view_mut());
                c.assign(&contiguous);
                return;
            }
        };
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `self` proves the processor has the instructions; the operands' lane counts
        // match their shapes (their constructors make them), and `c`'s rows are `c_row` apart
        // with contiguous columns, checked above.
        unsafe {
            kernels::product(a, b, c.as_mut_ptr(), c_row)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = c_row;
            unreachable!("no BFloat16Products value exists off x86-64")
        }
    }
}

/// `value` rounded to bfloat16 (to nearest, ties to even; a NaN stays a NaN), as its 16 bits.
pub fn bfloat16_bits(value: f32) -> u16 {
    let bits = value.to_bits();
    if value.is_nan() {
        return ((bits | 0x0040_0000) >> 16) as u16;
    }
    let tie_to_even = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(tie_to_even) >> 16) as u16
}

/// `value` rounded to bfloat16, as a float32.
pub fn to_bfloat16(value: f32) -> f32 {
    f32::from_bits(u32::from(bfloat16_bits(value)) << 16)
}

fn pair(low: f32, high: f32) -> u32 {
    u32::from(bfloat16_bits(low)) | (u32::from(bfloat16_bits(high)) << 16)
}

/// The right operand `b` (`[k, n]`) of a product, packed: `ceil(k / 2)` rows of `stride` lanes
/// (`n` rounded up to a whole tile of 32), lane `(p, j)` = `b[2p, j]`, `b[2p + 1, j]`; zeros past
/// `n` and past `k`.
pub struct PackedRight {
    lanes: Vec<u32>,
    pairs: usize,
    columns: usize,
    stride: usize,
}

/// The left operand `a` (`[m, k]`) of a product, packed: element `(i, p)` = `a[i, 2p]`,
/// `a[i, 2p + 1]` at `lanes[i * row_stride + p * pair_stride]`.
pub struct PackedLeft {
    lanes: Vec<u32>,
    rows: usize,
    pairs: usize,
    row_stride: usize,
    pair_stride: usize,
}

const TILE_COLUMNS: usize = 32;
const TILE_ROWS: usize = 8;

impl PackedRight {
    /// `b = matrix` (`k = matrix.nrows()`): pairs of rows.
    pub fn of_matrix(products: BFloat16Products, matrix: &ArrayView2<f32>) -> Self {
        let (k, n) = matrix.dim();
        let pairs = k.div_ceil(2);
        let stride = n.div_ceil(TILE_COLUMNS) * TILE_COLUMNS;
        let mut lanes = workspace::vector::<u32>(pairs * stride);
        for (p, out) in lanes
            .chunks_exact_mut(stride.max(1))
            .enumerate()
            .take(pairs)
        {
            let low = matrix.row(2 * p);
            let high = (2 * p + 1 < k).then(|| matrix.row(2 * p + 1));
            interleave_rows(products, low, high, &mut out[..n]);
            out[n..].fill(0);
        }
        PackedRight {
            lanes,
            pairs,
            columns: n,
            stride,
        }
    }

    /// `b = matrixᵀ` (`k = matrix.ncols()`): pairs along each row of `matrix`, a column of `b`.
    pub fn of_transpose(products: BFloat16Products, matrix: &ArrayView2<f32>) -> Self {
        let (n, k) = matrix.dim();
        let pairs = k.div_ceil(2);
        let stride = n.div_ceil(TILE_COLUMNS) * TILE_COLUMNS;
        let mut lanes = workspace::vector::<u32>(pairs * stride);
        lanes.fill(0);
        let mut row_pairs = workspace::vector::<u32>(pairs);
        for (j, row) in matrix.rows().into_iter().enumerate() {
            pair_along(products, row, &mut row_pairs);
            for (p, &lane) in row_pairs.iter().enumerate() {
                lanes[p * stride + j] = lane;
            }
        }
        workspace::recycle_vector(row_pairs);
        PackedRight {
            lanes,
            pairs,
            columns: n,
            stride,
        }
    }
}

impl Drop for PackedRight {
    fn drop(&mut self) {
        workspace::recycle_vector(std::mem::take(&mut self.lanes));
    }
}

impl PackedLeft {
    /// `a = matrix` (`k = matrix.ncols()`): pairs along each row.
    pub fn of_matrix(products: BFloat16Products, matrix: &ArrayView2<f32>) -> Self {
        let (m, k) = matrix.dim();
        let pairs = k.div_ceil(2);
        let mut lanes = workspace::vector::<u32>(m * pairs);
        for (row, out) in matrix
            .rows()
            .into_iter()
            .zip(lanes.chunks_exact_mut(pairs.max(1)))
        {
            pair_along(products, row, out);
        }
        PackedLeft {
            lanes,
            rows: m,
            pairs,
            row_stride: pairs,
            pair_stride: 1,
        }
    }

    /// `a = matrixᵀ` (`k = matrix.nrows()`): pairs of rows of `matrix`.
    pub fn of_transpose(products: BFloat16Products, matrix: &ArrayView2<f32>) -> Self {
        let (k, m) = matrix.dim();
        let pairs = k.div_ceil(2);
        let mut lanes = workspace::vector::<u32>(pairs * m);
        for (p, out) in lanes.chunks_exact_mut(m.max(1)).enumerate().take(pairs) {
            let low = matrix.row(2 * p);
            let high = (2 * p + 1 < k).then(|| matrix.row(2 * p + 1));
            interleave_rows(products, low, high, out);
        }
        PackedLeft {
            lanes,
            rows: m,
            pairs,
            row_stride: 1,
            pair_stride: m,
        }
    }
}

impl Drop for PackedLeft {
    fn drop(&mut self) {
        workspace::recycle_vector(std::mem::take(&mut self.lanes));
    }
}

/// `out[p]` = `row[2p]`, `row[2p + 1]` (a zero partner past the end).
fn pair_along(products: BFloat16Products, row: ndarray::ArrayView1<f32>, out: &mut [u32]) {
    let _ = products;
    match row.as_slice() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `products` proves AVX-512 F and BW.
        Some(values) => unsafe { kernels::pair_along(values, out) },
        _ => {
            for (p, lane) in out.iter_mut().enumerate() {
                let high = row.get(2 * p + 1).copied().unwrap_or(0.0);
                *lane = pair(row[2 * p], high);
            }
        }
    }
}

/// `out[j]` = `low[j]`, `high[j]` (zero when `high` is `None`).
fn interleave_rows(
    products: BFloat16Products,
    low: ndarray::ArrayView1<f32>,
    high: Option<ndarray::ArrayView1<f32>>,
    out: &mut [u32],
) {
    let _ = products;
    match (low.as_slice(), high.as_ref().map(|h| h.as_slice())) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `products` proves AVX-512 F and BW.
        (Some(low), Some(Some(high))) => unsafe { kernels::interleave_rows(low, Some(high), out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        (Some(low), None) => unsafe { kernels::interleave_rows(low, None, out) },
        _ => {
            for (j, lane) in out.iter_mut().enumerate() {
                let partner = high.as_ref().map_or(0.0, |h| h[j]);
                *lane = pair(low[j], partner);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod kernels {
    use std::arch::x86_64::*;

    use super::{PackedLeft, PackedRight, TILE_COLUMNS, TILE_ROWS};

    /// Sixteen floats rounded to bfloat16 (as the scalar `bfloat16_bits`), each in the high
    /// half of its 32-bit lane (the low half is garbage).
    #[inline(always)]
    unsafe fn rounded(values: __m512) -> __m512i {
        let bits = _mm512_castps_si512(values);
        let lowest_kept = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
        let tie_to_even = _mm512_add_epi32(lowest_kept, _mm512_set1_epi32(0x7FFF));
        let rounded = _mm512_add_epi32(bits, tie_to_even);
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(values, values);
        let quiet = _mm512_or_si512(bits, _mm512_set1_epi32(0x0040_0000));
        _mm512_mask_mov_epi32(rounded, nan, quiet)
    }

    /// See `super::pair_along`.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn pair_along(values: &[f32], out: &mut [u32]) {
        // The high halves of 32 rounded floats, in order: 16-bit element 2t + 1 of the
        // concatenation for each t.
        let odd_halves = _mm512_set_epi16(
            63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29, 27, 25, 23, 21,
            19, 17, 15, 13, 11, 9, 7, 5, 3, 1,
        );
        let whole = values.len() / 32;
        for (chunk, lanes) in values
            .chunks_exact(32)
            .zip(out.chunks_exact_mut(16))
            .take(whole)
        {
            let first = rounded(_mm512_loadu_ps(chunk.as_ptr()));
            let second = rounded(_mm512_loadu_ps(chunk.as_ptr().add(16)));
            let packed = _mm512_permutex2var_epi16(first, odd_halves, second);
            _mm512_storeu_si512(lanes.as_mut_ptr() as *mut __m512i, packed);
        }
        for (p, lane) in out.iter_mut().enumerate().skip(whole * 16) {
            let low = values[2 * p];
            let high = values.get(2 * p + 1).copied().unwrap_or(0.0);
            *lane = super::pair(low, high);
        }
    }

    /// See `super::interleave_rows`.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn interleave_rows(low: &[f32], high: Option<&[f32]>, out: &mut [u32]) {
        let n = out.len();
        let whole = n / 16 * 16;
        let top = _mm512_set1_epi32(0xFFFF_0000_u32 as i32);
        for j in (0..whole).step_by(16) {
            let l = rounded(_mm512_loadu_ps(low.as_ptr().add(j)));
            let l = _mm512_srli_epi32::<16>(l);
            let lanes = match high {
                Some(high) => {
                    let h = rounded(_mm512_loadu_ps(high.as_ptr().add(j)));
                    _mm512_or_si512(l, _mm512_and_si512(h, top))
                }
                None => l,
            };
            _mm512_storeu_si512(out.as_mut_ptr().add(j) as *mut __m512i, lanes);
        }
        for j in whole..n {
            let partner = high.map_or(0.0, |h| h[j]);
            out[j] = super::pair(low[j], partner);
        }
    }

    /// `c = a · b`; `c` has rows `c_row` floats apart and contiguous columns.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub unsafe fn product(a: &PackedLeft, b: &PackedRight, c: *mut f32, c_row: usize) {
        for first_column in (0..b.columns).step_by(TILE_COLUMNS) {
            let columns = (b.columns - first_column).min(TILE_COLUMNS);
            let panel = b.lanes.as_ptr().add(first_column);
            for first_row in (0..a.rows).step_by(TILE_ROWS) {
                let rows = (a.rows - first_row).min(TILE_ROWS);
                let left = a.lanes.as_ptr().add(first_row * a.row_stride);
                let out = c.add(first_row * c_row + first_column);
                let shape = Tile {
                    left,
                    row_stride: a.row_stride,
                    pair_stride: a.pair_stride,
                    panel,
                    panel_stride: b.stride,
                    pairs: a.pairs,
                    out,
                    out_row: c_row,
                    columns,
                };
                match rows {
                    8 => tile::<8>(&shape),
                    7 => tile::<7>(&shape),
                    6 => tile::<6>(&shape),
                    5 => tile::<5>(&shape),
                    4 => tile::<4>(&shape),
                    3 => tile::<3>(&shape),
                    2 => tile::<2>(&shape),
                    _ => tile::<1>(&shape),
                }
            }
        }
    }

    struct Tile {
        left: *const u32,
        row_stride: usize,
        pair_stride: usize,
        panel: *const u32,
        panel_stride: usize,
        pairs: usize,
        out: *mut f32,
        out_row: usize,
        columns: usize,
    }

    /// `ROWS` rows × 32 columns of the product, its sums in registers over all pairs.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn tile<const ROWS: usize>(t: &Tile) {
        let mut low = [_mm512_setzero_ps(); ROWS];
        let mut high = [_mm512_setzero_ps(); ROWS];
        for p in 0..t.pairs {
            let lanes = t.panel.add(p * t.panel_stride);
            let b_low: __m512bh = std::mem::transmute(_mm512_loadu_si512(lanes as *const __m512i));
            let b_high: __m512bh =
                std::mem::transmute(_mm512_loadu_si512(lanes.add(16) as *const __m512i));
            let left = t.left.add(p * t.pair_stride);
            for r in 0..ROWS {
                let a: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*left.add(r * t.row_stride) as i32));
                low[r] = _mm512_dpbf16_ps(low[r], a, b_low);
                high[r] = _mm512_dpbf16_ps(high[r], a, b_high);
            }
        }
        let low_mask: __mmask16 = if t.columns >= 16 {
            0xFFFF
        } else {
            (1u16 << t.columns) - 1
        };
        let high_mask: __mmask16 = match t.columns {
            32.. => 0xFFFF,
            17..=31 => (1u16 << (t.columns - 16)) - 1,
            _ => 0,
        };
        for r in 0..ROWS {
            let out = t.out.add(r * t.out_row);
            _mm512_mask_storeu_ps(out, low_mask, low[r]);
            if high_mask != 0 {
                _mm512_mask_storeu_ps(out.add(16), high_mask, high[r]);
            }
        }
    }
}

/// `view` as a float32 view when `F` is `f32`.
pub fn as_f32_view<'a, 'b, F: 'static>(
    view: &'b ArrayView2<'a, F>,
) -> Option<&'b ArrayView2<'a, f32>> {
    (std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: `F` is `f32`, so the view already is an `ArrayView2<f32>`.
        unsafe { &*(view as *const ArrayView2<'a, F> as *const ArrayView2<'a, f32>) }
    })
}

/// `view` as a float32 view when `F` is `f32`.
pub fn as_f32_view_mut<'a, 'b, F: 'static>(
    view: &'b mut ArrayViewMut2<'a, F>,
) -> Option<&'b mut ArrayViewMut2<'a, f32>> {
    (std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: `F` is `f32`, so the view already is an `ArrayViewMut2<f32>`.
        unsafe { &mut *(view as *mut ArrayViewMut2<'a, F> as *mut ArrayViewMut2<'a, f32>) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2};

    fn filled(rows: usize, columns: usize, seed: u32) -> Array2<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        Array2::from_shape_fn((rows, columns), |_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
    }

    /// The product of the operands rounded to bfloat16, in float64, and the sum of the
    /// products' magnitudes (the float32 sums' error scale).
    fn reference(a: &ArrayView2<f32>, b: &ArrayView2<f32>) -> (Array2<f64>, Array2<f64>) {
        let (m, k) = a.dim();
        let n = b.ncols();
        let mut exact = Array2::zeros((m, n));
        let mut scale = Array2::zeros((m, n));
        for i in 0..m {
            for j in 0..n {
                for l in 0..k {
                    let term =
                        f64::from(to_bfloat16(a[[i, l]])) * f64::from(to_bfloat16(b[[l, j]]));
                    exact[[i, j]] += term;
                    scale[[i, j]] += term.abs();
                }
            }
        }
        (exact, scale)
    }

    fn check(products: BFloat16Products, a: &ArrayView2<f32>, b: &ArrayView2<f32>) {
        let (exact, scale) = reference(a, b);
        let k = a.ncols() as f64;
        let (a_t, b_t) = (a.t().to_owned(), b.t().to_owned());
        let layouts = [
            (
                PackedLeft::of_matrix(products, a),
                PackedRight::of_matrix(products, b),
            ),
            (
                PackedLeft::of_transpose(products, &a_t.view()),
                PackedRight::of_transpose(products, &b_t.view()),
            ),
            (
                PackedLeft::of_transpose(products, &a.t()),
                PackedRight::of_transpose(products, &b.t()),
            ),
        ];
        for (left, right) in &layouts {
            let mut c = Array2::<f32>::from_elem((a.nrows(), b.ncols()), f32::NAN);
            products.product(left, right, &mut c.view_mut());
            for ((&got, &want), &size) in c.iter().zip(&exact).zip(&scale) {
                // float32 sums of k exact products: at most k roundings of 2^-24 each.
                let bound = (k + 1.0) * f64::from(f32::EPSILON) / 2.0 * size + 1e-30;
                assert!(
                    (f64::from(got) - want).abs() <= bound,
                    "{got} against {want} (bound {bound})"
                );
            }
        }
    }

    #[test]
    fn detection_matches_the_processors_flags() {
        let Ok(flags) = std::fs::read_to_string("/proc/cpuinfo") else {
            return;
        };
        let has = |flag: &str| flags.split_whitespace().any(|word| word == flag);
        let listed = has("avx512f") && has("avx512bw") && has("avx512_bf16");
        assert_eq!(BFloat16Products::detect().is_some(), listed);
    }

    #[test]
    fn rounding_is_to_nearest_with_ties_to_even() {
        assert_eq!(bfloat16_bits(1.0), 0x3F80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even 1.
        assert_eq!(to_bfloat16(1.0 + 1.0 / 256.0), 1.0);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to the even 1 + 2^-6.
        assert_eq!(to_bfloat16(1.0 + 3.0 / 256.0), 1.0 + 1.0 / 64.0);
        assert_eq!(
            to_bfloat16(1.0 + 1.0 / 256.0 + 1.0 / 4096.0),
            1.0 + 1.0 / 128.0
        );
        assert_eq!(to_bfloat16(-2.5), -2.5);
        assert_eq!(to_bfloat16(f32::INFINITY), f32::INFINITY);
        assert_eq!(to_bfloat16(f32::MAX), f32::INFINITY);
        assert!(to_bfloat16(f32::NAN).is_nan());
        // A NaN whose payload is only in the low bits stays a NaN (not an infinity).
        assert!(to_bfloat16(f32::from_bits(0x7F80_0001)).is_nan());
        for value in [0.1f32, -3.7, 1e-20, 6.02e23] {
            let rounded = to_bfloat16(value);
            assert!(((rounded - value) / value).abs() <= 1.0 / 256.0);
        }
    }

    #[test]
    fn the_packings_agree_with_the_scalar_rounding() {
        let Some(products) = BFloat16Products::detect() else {
            return;
        };
        for length in [1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 300] {
            let mut matrix = filled(3, length, length as u32);
            matrix[[0, 0]] = f32::from_bits(0x7F80_0001);
            matrix[[1, length - 1]] = 1.0 + 1.0 / 256.0;
            let row = matrix.row(0);
            let mut lanes = vec![0u32; length.div_ceil(2)];
            pair_along(products, row, &mut lanes);
            for (p, &lane) in lanes.iter().enumerate() {
                let high = row.get(2 * p + 1).copied().unwrap_or(0.0);
                assert_eq!(lane, pair(row[2 * p], high), "length {length}, pair {p}");
            }
            let mut lanes = vec![0u32; length];
            interleave_rows(products, matrix.row(0), Some(matrix.row(1)), &mut lanes);
            for (j, &lane) in lanes.iter().enumerate() {
                assert_eq!(
                    lane,
                    pair(matrix[[0, j]], matrix[[1, j]]),
                    "length {length}"
                );
            }
            interleave_rows(products, matrix.row(2), None, &mut lanes);
            for (j, &lane) in lanes.iter().enumerate() {
                assert_eq!(lane, pair(matrix[[2, j]], 0.0), "length {length}");
            }
        }
    }

    #[test]
    fn products_equal_the_rounded_operands_product_for_every_edge_shape() {
        let Some(products) = BFloat16Products::detect() else {
            return;
        };
        for (m, k, n) in [
            (1, 1, 1),
            (8, 2, 32),
            (9, 3, 33),
            (7, 300, 17),
            (17, 64, 48),
            (256, 31, 128),
            (3, 128, 300),
        ] {
            let a = filled(m, k, (m * 7 + k) as u32);
            let b = filled(k, n, (n * 3 + k) as u32);
            check(products, &a.view(), &b.view());
        }
        // Strided operands and a strided output.
        let a = filled(20, 70, 5);
        let b = filled(90, 40, 6);
        let (a, b) = (a.slice(s![..;2, 1..;2]), b.slice(s![..70;2, ..;3]));
        let (a, b) = (a.slice(s![.., ..35]), b.slice(s![..35, ..]));
        check(products, &a, &b);
        let left = PackedLeft::of_matrix(products, &a);
        let right = PackedRight::of_matrix(products, &b);
        let mut wide = Array2::<f32>::zeros((a.nrows(), 2 * b.ncols()));
        products.product(&left, &right, &mut wide.slice_mut(s![.., ..;2]));
        let mut plain = Array2::<f32>::zeros((a.nrows(), b.ncols()));
        products.product(&left, &right, &mut plain.view_mut());
        assert_eq!(wide.slice(s![.., ..;2]), plain);
        assert!(wide.slice(s![.., 1..;2]).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn products_differ_from_float32_by_the_operands_rounding() {
        // The error of rounding the operands, bounded by 2^-8 relative each: the products'
        // error is at most (2^-7 + 2^-16) Σ|a b| plus the float32 sums'.
        let Some(products) = BFloat16Products::detect() else {
            return;
        };
        let (a, b) = (filled(33, 300, 1), filled(300, 70, 2));
        let mut c = Array2::<f32>::zeros((33, 70));
        products.product(
            &PackedLeft::of_matrix(products, &a.view()),
            &PackedRight::of_matrix(products, &b.view()),
            &mut c.view_mut(),
        );
        let mut largest_relative = 0.0f64;
        for i in 0..33 {
            for j in 0..70 {
                let (mut exact, mut size) = (0.0f64, 0.0f64);
                for l in 0..300 {
                    let term = f64::from(a[[i, l]]) * f64::from(b[[l, j]]);
                    exact += term;
                    size += term.abs();
                }
                let error = (f64::from(c[[i, j]]) - exact).abs();
                assert!(error <= (1.0 / 128.0 + 1.0 / 65536.0 + 1e-5) * size);
                largest_relative = largest_relative.max(error / size);
            }
        }
        // Rounding does happen: bfloat16 is not float32.
        assert!(largest_relative > 1e-5, "{largest_relative}");
    }
}
