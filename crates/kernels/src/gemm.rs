//! Single-precision GEMM: `C(M,N) (+)= op(A)·op(B)`, row-major, for the three products that
//! backprop needs:
//!
//! | entry      | A stored | B stored | computes            | used for          |
//! |------------|----------|----------|---------------------|-------------------|
//! | [`gemm_nn`] | (M,K)    | (K,N)    | C (+)= A·B          | Z = X·W           |
//! | [`gemm_nt`] | (M,K)    | (N,K)    | C (+)= A·Bᵀ         | dX = dZ·Wᵀ        |
//! | [`gemm_tn`] | (K,M)    | (K,N)    | C (+)= Aᵀ·B         | dW = Xᵀ·dZ        |
//!
//! C is always (M,N). `accumulate == false` overwrites C, `true` adds to it. Any of M, N, K may be
//! zero (K = 0 gives C = 0, or C unchanged when accumulating).
//!
//! How the fast path works (GotoBLAS/BLIS structure, one strided driver for all three):
//! - The driver sees A and B as strided views (row stride, column stride), so a transpose is
//!   just swapped strides and is absorbed by packing; NN, NT and TN share every other line.
//! - B is cut into KC×NC blocks and packed into NR-column panels; A into MC×KC blocks packed into
//!   MR-row panels. Panels are K-major and contiguous, tails zero-padded, so the micro-kernel
//!   streams both operands linearly and never sees a ragged edge.
//! - The micro-kernel keeps an MR×NR tile of C in registers over one KC block. Edge tiles are
//!   computed into a stack tile and the valid part copied out.
//! - Tiny products (M·N <= 4 or M·N·K <= 64) skip all of that and run the naive loop, which is
//!   faster there (numbers at the check).
//! - Few rows (M <= 16, B rows contiguous) skip packing too: `gemm_smallm` streams B in
//!   address order, KB rows per pass, C[r, 0..N] += Σ A[r,p]·B[p, 0..N] with N vectorised.
//!   The dense forward (training and inference) takes it for batches up to `SMALL_M`.
//! - After a tile's last K block an optional epilogue runs on it while it is still in cache
//!   (dense layers fuse bias + activation there).
//! - Packing scratch ([`gemm_scratch_len`] floats for the product) comes from the caller:
//!   nothing allocates.

use core::ops::Range;

/// The one place the instruction set is chosen: tile shape and micro-kernel.
///
/// 4×8 (8 `v128` accumulators, 2 B vectors and 1 A broadcast live per K step) was picked by
/// measurement in Node 20.20 (V8 TurboFan, x86-64 Zen 5, one core), GFLOP/s of the NN product:
///
/// | tile (MR×NR)   | 4×8 | 2×16 | 3×8 | 2×12 | 4×16 | 6×16 | 5×16 | 3×16 | 6×8 | 4×12 | 2×24 |
/// |----------------|-----|------|-----|------|------|------|------|------|-----|------|------|
/// | 512³           | 61  | 61   | 58  | 58   | 41   | 41   | 34   | 31   | 33  | 31   | 30   |
///
/// V8 allocates simd128 values to the 16 xmm registers on x86-64: tiles whose accumulators plus
/// operands fit in ~13 registers run at twice the speed of the ones that spill. 4×8 beat 2×16
/// on TN shapes (dW = Xᵀ·dZ at 784×128×64: 52 vs 44 before packing was tuned) and pads narrow
/// outputs less (N = 20 computes 24 columns, not 32).
mod arch {
    // MR and NR describe the micro-kernel selected below; its name carries the same tile.
    /// Rows of C per micro-tile (rows of one packed A panel).
    pub(super) const MR: usize = 4;
    /// Columns of C per micro-tile (columns of one packed B panel).
    pub(super) const NR: usize = 8;

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub(super) use super::simd128::gemm_f32_4x8_simd128 as microkernel;

    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pub(super) use super::scalar::gemm_f32_4x8_scalar as microkernel;

    /// The small-M kernel: C[0..MR, 0..n8] += A[0..MR, p0..p0+KB]·B[p0..p0+KB, 0..n8], reading
    /// A and the rows of B in place (no packing).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub(super) use super::simd128::gemm_f32_rowstream_simd128 as rowstream;

    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    pub(super) use super::scalar::gemm_f32_rowstream_scalar as rowstream;
}

use arch::{MR, NR};

// Cache blocking. On the measuring machine (48 KiB L1d, 1 MiB L2, 32 MiB L3 per core) the
// choice hardly matters: KC ∈ {128, 256, 512}, MC ∈ {64, 128, 256} and NC ∈ {256 … 2048} all
// ran 512³ and 1024³ at 59–62 GFLOP/s. So the sizes are set for smaller caches (32 KiB L1,
// 256 KiB+ L2 on laptops and phones) and a modest scratch.

/// Depth of one K block: a packed B micro-panel is KC·NR·4 B = 8 KiB and an A micro-panel
/// 4 KiB, both L1-resident while a tile is computed.
const KC: usize = 256;
/// Rows of A per packed block: MC·KC·4 B = 128 KiB, reused from L2 by every B micro-panel.
const MC: usize = 128;
/// Columns of B per packed block: KC·NC·4 B = 512 KiB.
const NC: usize = 512;

const _: () = assert!(MC.is_multiple_of(MR) && NC.is_multiple_of(NR));

/// Floats of packing scratch an (M, N, K) product needs: one packed A block (at most MC rows,
/// padded to MR, by at most KC) followed by one packed B block (at most KC by NC columns, padded
/// to NR). Monotonic in each size, so a caller sizes one scratch for all its products by their
/// largest M, N and K. MLP-S (every size ≤ 128) needs 128 KiB instead of the 640 KiB of
/// [`GEMM_SCRATCH_LEN`], which every model used to allocate, zero and touch at compile().
pub const fn gemm_scratch_len(m: usize, n: usize, k: usize) -> usize {
    let kc = if k < KC { k } else { KC };
    let mc = if m < MC { m } else { MC };
    let nc = if n < NC { n } else { NC };
    mc.div_ceil(MR) * MR * kc + kc * nc.div_ceil(NR) * NR
}

/// The most scratch any product needs: [`gemm_scratch_len`] of full blocks, 163 840 floats (640 KiB).
pub const GEMM_SCRATCH_LEN: usize = gemm_scratch_len(MC, NC, KC);

/// C(M,N) (+)= A(M,K)·B(K,N). `scratch` must hold at least [`gemm_scratch_len`]`(m, n, k)` floats.
pub fn gemm_nn(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
    scratch: &mut [f32],
) {
    check_lens("gemm_nn", m, n, k, a, b, c);
    gemm_packed(
        m,
        n,
        k,
        nn_a(a, k),
        nn_b(b, n),
        c,
        accumulate,
        scratch,
        &mut NoEpilogue,
    );
}

/// C(M,N) (+)= A(M,K)·B(N,K)ᵀ (dX = dZ·Wᵀ). `scratch` must hold at least [`gemm_scratch_len`]`(m, n, k)` floats.
pub fn gemm_nt(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
    scratch: &mut [f32],
) {
    check_lens("gemm_nt", m, n, k, a, b, c);
    gemm_packed(
        m,
        n,
        k,
        nn_a(a, k),
        t_b(b, k),
        c,
        accumulate,
        scratch,
        &mut NoEpilogue,
    );
}

/// C(M,N) (+)= A(K,M)ᵀ·B(K,N) (dW = Xᵀ·dZ). `scratch` must hold at least [`gemm_scratch_len`]`(m, n, k)` floats.
pub fn gemm_tn(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
    scratch: &mut [f32],
) {
    check_lens("gemm_tn", m, n, k, a, b, c);
    gemm_packed(
        m,
        n,
        k,
        t_a(a, m),
        nn_b(b, n),
        c,
        accumulate,
        scratch,
        &mut NoEpilogue,
    );
}

/// Reference for [`gemm_nn`]: a plain triple loop summing each dot product in order. `scratch` is unused.
pub fn gemm_nn_naive(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
    _scratch: &mut [f32],
) {
    check_lens("gemm_nn_naive", m, n, k, a, b, c);
    gemm_strided_naive(m, n, k, nn_a(a, k), nn_b(b, n), c, accumulate);
}

/// Reference for [`gemm_nt`]: a plain triple loop summing each dot product in order. `scratch` is unused.
pub fn gemm_nt_naive(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
    _scratch: &mut [f32],
) {
    check_lens("gemm_nt_naive", m, n, k, a, b, c);
    gemm_strided_naive(m, n, k, nn_a(a, k), t_b(b, k), c, accumulate);
}

/// Reference for [`gemm_tn`]: a plain triple loop summing each dot product in order. `scratch` is unused.
pub fn gemm_tn_naive(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
    _scratch: &mut [f32],
) {
    check_lens("gemm_tn_naive", m, n, k, a, b, c);
    gemm_strided_naive(m, n, k, t_a(a, m), nn_b(b, n), c, accumulate);
}

/// A read-only matrix view: element (r, c) lives at `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Strided<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

impl Strided<'_> {
    #[inline(always)]
    fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.rs + c * self.cs]
    }

    /// The rows from `r0` on (a view of the same storage).
    fn rows_from(self, r0: usize) -> Self {
        Strided {
            data: &self.data[(r0 * self.rs).min(self.data.len())..],
            rs: self.rs,
            cs: self.cs,
        }
    }

    /// The same storage seen transposed.
    fn t(self) -> Self {
        Strided {
            data: self.data,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// A stored (M,K), viewed as (M,K).
pub(crate) fn nn_a(a: &[f32], k: usize) -> Strided<'_> {
    Strided {
        data: a,
        rs: k,
        cs: 1,
    }
}
/// A stored (K,M), viewed as the (M,K) operand Aᵀ.
pub(crate) fn t_a(a: &[f32], m: usize) -> Strided<'_> {
    Strided {
        data: a,
        rs: 1,
        cs: m,
    }
}
/// B stored (K,N), viewed as (K,N).
pub(crate) fn nn_b(b: &[f32], n: usize) -> Strided<'_> {
    Strided {
        data: b,
        rs: n,
        cs: 1,
    }
}
/// B stored (N,K), viewed as the (K,N) operand Bᵀ.
pub(crate) fn t_b(b: &[f32], k: usize) -> Strided<'_> {
    Strided {
        data: b,
        rs: 1,
        cs: k,
    }
}

fn check_lens(op: &str, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &[f32]) {
    assert!(
        a.len() >= m * k,
        "{op}: a has {} floats, needs M*K = {m}*{k}",
        a.len()
    );
    assert!(
        b.len() >= k * n,
        "{op}: b has {} floats, needs K*N = {k}*{n}",
        b.len()
    );
    assert!(
        c.len() >= m * n,
        "{op}: c has {} floats, needs M*N = {m}*{n}",
        c.len()
    );
}

/// Work applied to finished tiles of C (after their final K block, while still in cache).
pub(crate) trait Epilogue {
    /// `rows` × `cols` of C (row stride `ldc`) hold their final GEMM value. Each element of C
    /// is passed exactly once over a whole GEMM call.
    fn apply(&mut self, c: &mut [f32], ldc: usize, rows: Range<usize>, cols: Range<usize>);
}

/// The plain GEMM: nothing to do on finished tiles.
pub(crate) struct NoEpilogue;

impl Epilogue for NoEpilogue {
    #[inline(always)]
    fn apply(&mut self, _: &mut [f32], _: usize, _: Range<usize>, _: Range<usize>) {}
}

/// The reference product over strided views (C row-major with row stride N).
pub(crate) fn gemm_strided_naive(
    m: usize,
    n: usize,
    k: usize,
    a: Strided,
    b: Strided,
    c: &mut [f32],
    accumulate: bool,
) {
    for i in 0..m {
        for j in 0..n {
            let mut sum = 0.0f32;
            for p in 0..k {
                sum += a.at(i, p) * b.at(p, j);
            }
            let cij = &mut c[i * n + j];
            *cij = if accumulate { *cij + sum } else { sum };
        }
    }
}

/// The packed, cache-blocked product over strided views: C(M,N) (+)= A(M,K)·B(K,N), C
/// row-major with row stride N. `epi` sees every tile of C once, after its last K block.
/// Tiny products take the naive loop instead (then `epi` sees all of C at once).
pub(crate) fn gemm_packed<E: Epilogue>(
    m: usize,
    n: usize,
    k: usize,
    a: Strided,
    b: Strided,
    c: &mut [f32],
    accumulate: bool,
    scratch: &mut [f32],
    epi: &mut E,
) {
    if scratch.len() < gemm_scratch_len(m, n, k) {
        scratch_too_short(scratch.len(), m, n, k);
    }
    if m == 0 || n == 0 {
        return;
    }
    let c = &mut c[..m * n];
    // Tiny products lose to the plain loop, which skips packing and the padded tile. Measured in
    // Node 20 (ns per call, packed vs naive): 1×1×1 40 vs 13; 4×4×4 70 vs 52; 2×2×64 238 vs 116;
    // but 8×4×4 100 vs 107, 3×5×17 113 vs 124, 1×8×64 167 vs 230 and 8×8×8 78 vs 277.
    // K = 0 lands here too (C = 0, or unchanged when accumulating).
    if m * n <= 4 || m * n * k <= 64 {
        gemm_strided_naive(m, n, k, a, b, c, accumulate);
        epi.apply(c, n, 0..m, 0..n);
        return;
    }
    gemm_blocked(m, n, k, a, b, c, accumulate, scratch, epi);
}

/// The panic of a short scratch, out of line: formatting it inside `gemm_packed` made every
/// GEMM ~18 % slower (the hot loops compiled differently around the formatting code).
#[cold]
#[inline(never)]
fn scratch_too_short(len: usize, m: usize, n: usize, k: usize) -> ! {
    panic!("gemm: scratch has {len} floats, needs gemm_scratch_len({m}, {n}, {k}) = {}", gemm_scratch_len(m, n, k));
}

/// [`gemm_smallm`], then `epi` over all of C at once (≤ SMALL_M rows, still in L1): the
/// small-M counterpart of [`gemm_packed`] for the dense forward, which chooses between them.
///
/// Why the choice is not a branch inside `gemm_packed`: there it slowed the packed path it
/// never took, MLP-M inference at batch 128 going from 2.38 to 2.82 ms (median of 5, Node 20)
/// with identical work: a code-generation effect of the caller, not pinned down.
#[inline(never)]
pub(crate) fn gemm_smallm_epilogue<E: Epilogue>(
    m: usize,
    n: usize,
    k: usize,
    a: Strided,
    b: Strided,
    c: &mut [f32],
    accumulate: bool,
    epi: &mut E,
) {
    gemm_smallm(m, n, k, a, b, c, accumulate);
    epi.apply(c, n, 0..m, 0..n);
}

/// Largest batch for which the dense forward uses [`gemm_smallm`] instead of [`gemm_packed`].
/// Measured in Node 20 (Zen 5, one core) as MLP-M inference, 784-512-256-10, µs per call,
/// packed vs streamed (before the streaming kernel took two vectors per step, which only made
/// it faster): M = 1: 162 vs 34; 4: 194 vs 108; 6: 248 vs 158; 8: 263 vs 206; 12: 348 vs 304;
/// 16: 430 vs 411; 32: 774 vs 818; 128: 2782 vs 3349. Below ~24 rows packing B costs more
/// than the packed micro-kernel saves.
pub(crate) const SMALL_M: usize = 16;
/// Rows of B per pass of the streaming kernels. MLP-M at M = 1: 2 rows 41 µs, 4 rows 34-37,
/// 8 rows 50 (the 8 broadcasts plus 16 B vectors spill).
const SMALLM_KB: usize = 4;

/// C(M,N) (+)= A(M,K)·B(K,N) for 1 ≤ M ≤ [`SMALL_M`] without packing: B must have unit column
/// stride (`b.cs == 1`), A any strides. In the order B is stored: for each group of KB rows of
/// B, `C[r, 0..N] += Σ_q A[r, p+q] · B[p+q, 0..N]` with N vectorised (KB sequential streams
/// through B, C re-read from L1), then one row at a time for K mod KB, then a scalar loop for
/// the last N mod 8 columns. Every element of B is read once, in address order.
///
/// Not inlined: one copy serves every epilogue type of `gemm_packed::<E>`.
#[inline(never)]
pub(crate) fn gemm_smallm(
    m: usize,
    n: usize,
    k: usize,
    a: Strided,
    b: Strided,
    c: &mut [f32],
    accumulate: bool,
) {
    assert!(
        (1..=SMALL_M).contains(&m) && b.cs == 1,
        "gemm_smallm: bad shape"
    );
    // Rows in pairs (one pass over B serves two rows of C), then the odd one. A 4-row kernel
    // was no faster per row than two passes of pairs (M = 4: 90 vs 86 µs on MLP-M; the re-read
    // of C from L1 dominates). For a single row, keeping 32 columns of C in registers over all
    // K rows (C touched once, B walked down in column strips) was slower: MLP-M at M = 1 took
    // 38.8 µs against 34.0 (bench/ab.mjs), the strided walk costing more than C's re-reads.
    let mut r = 0;
    while r + 2 <= m {
        smallm_rows::<2, SMALLM_KB>(n, k, a.rows_from(r), b, &mut c[r * n..], accumulate);
        r += 2;
    }
    if r < m {
        smallm_rows::<1, SMALLM_KB>(n, k, a.rows_from(r), b, &mut c[r * n..], accumulate);
    }
}

/// [`gemm_smallm`] for exactly MR rows of C, KB rows of B per pass.
fn smallm_rows<const MR: usize, const KB: usize>(
    n: usize,
    k: usize,
    a: Strided,
    b: Strided,
    c: &mut [f32],
    accumulate: bool,
) {
    // The kernels index without bounds checks; prove every read and write in range first.
    if k > 0 {
        assert!(
            (MR - 1) * a.rs + (k - 1) * a.cs < a.data.len(),
            "gemm_smallm: a too short"
        );
        assert!(
            (k - 1) * b.rs + n <= b.data.len(),
            "gemm_smallm: b too short"
        );
    }
    assert!(c.len() >= MR * n, "gemm_smallm: c too short");
    if !accumulate {
        c[..MR * n].fill(0.0);
    }
    let n8 = n - n % 8;
    let mut p = 0;
    while p + KB <= k {
        arch::rowstream::<MR, KB>(n8, a, b, p, c, n);
        p += KB;
    }
    while p < k {
        arch::rowstream::<MR, 1>(n8, a, b, p, c, n);
        p += 1;
    }
    for r in 0..MR {
        for j in n8..n {
            let mut sum = 0.0f32;
            for p in 0..k {
                sum += a.at(r, p) * b.at(p, j);
            }
            c[r * n + j] += sum;
        }
    }
}

/// The packed loops of [`gemm_packed`], for M, N, K > 0 and scratch of `gemm_scratch_len(m, n, k)`.
fn gemm_blocked<E: Epilogue>(
    m: usize,
    n: usize,
    k: usize,
    a: Strided,
    b: Strided,
    c: &mut [f32],
    accumulate: bool,
    scratch: &mut [f32],
    epi: &mut E,
) {
    // The caller (gemm_packed) checked scratch against gemm_scratch_len(m, n, k): the A block
    // holds every A panel set below, the rest every B panel set.
    let kc_max = KC.min(k);
    let (apack, bpack) = scratch.split_at_mut(MC.min(m).div_ceil(MR) * MR * kc_max);
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            // The first K block overwrites C unless the caller asked to accumulate.
            let add = accumulate || pc > 0;
            let last = pc + kc == k;
            pack_panels::<NR>(b.t(), jc, nc, pc, kc, bpack);
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_panels::<MR>(a, ic, mc, pc, kc, apack);
                // jr outside ir: one B micro-panel stays in L1 while the A panels stream from L2.
                for (bpanel, jr) in bpack.chunks_exact(NR * kc).zip((0..nc).step_by(NR)) {
                    let nr = NR.min(nc - jr);
                    let j0 = jc + jr;
                    for (apanel, ir) in apack.chunks_exact(MR * kc).zip((0..mc).step_by(MR)) {
                        let mr = MR.min(mc - ir);
                        let i0 = ic + ir;
                        if mr == MR && nr == NR {
                            arch::microkernel(kc, apanel, bpanel, &mut c[i0 * n + j0..], n, add);
                        } else {
                            let mut tile = [0.0f32; MR * NR];
                            arch::microkernel(kc, apanel, bpanel, &mut tile, NR, false);
                            for (r, trow) in tile.chunks_exact(NR).take(mr).enumerate() {
                                let crow = &mut c[(i0 + r) * n + j0..][..nr];
                                for (cv, &tv) in crow.iter_mut().zip(trow) {
                                    *cv = if add { *cv + tv } else { tv };
                                }
                            }
                        }
                        if last {
                            epi.apply(c, n, i0..i0 + mr, j0..j0 + nr);
                        }
                    }
                }
            }
        }
    }
}

/// Packs rows `r0..r0+rows`, columns `p0..p0+kc` of `x` into `ceil(rows/R)` panels of R rows.
/// Panel q occupies `dst[q*R*kc..][..R*kc]` and is K-major: `dst[q*R*kc + p*R + r] =
/// x(r0 + q*R + r, p0 + p)`, with rows past `rows` zero so the micro-kernel needs no tail case.
/// A is packed with R = MR directly; B is packed as Bᵀ with R = NR.
fn pack_panels<const R: usize>(
    x: Strided,
    r0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    dst: &mut [f32],
) {
    // Every view the entries build has one unit stride (A or Bᵀ, transposed or not).
    debug_assert!(x.rs == 1 || x.cs == 1);
    for (q, panel) in dst
        .chunks_exact_mut(R * kc)
        .take(rows.div_ceil(R))
        .enumerate()
    {
        let rb = r0 + q * R;
        let pr = R.min(rows - q * R);
        if x.rs == 1 {
            // Each column of x is contiguous along r: copy runs of `pr` floats, always as a
            // constant-length R-wide copy. A runtime length compiles to a memcpy call per group
            // in wasm; avoiding it doubled TN at 7×16×64 (15 -> 29 GFLOP/s).
            for (p, d) in panel.chunks_exact_mut(R).enumerate() {
                let src = &x.data[(p0 + p) * x.cs + rb..][..pr];
                if pr == R {
                    d.copy_from_slice(src);
                } else {
                    let group: [f32; R] =
                        core::array::from_fn(|r| src.get(r).copied().unwrap_or(0.0));
                    d.copy_from_slice(&group);
                }
            }
        } else {
            // Each row is contiguous along p.
            if pr == R {
                // Read the panel's R rows side by side and write R-wide groups.
                let src: [&[f32]; R] =
                    core::array::from_fn(|r| &x.data[(rb + r) * x.rs + p0..][..kc]);
                for (p, d) in panel.chunks_exact_mut(R).enumerate() {
                    for (dv, s) in d.iter_mut().zip(&src) {
                        *dv = s[p];
                    }
                }
            } else {
                // Tail panel: zero it once, then scatter the `pr` rows it has.
                panel.fill(0.0);
                for r in 0..pr {
                    let src = &x.data[(rb + r) * x.rs + p0..][..kc];
                    for (d, &v) in panel.chunks_exact_mut(R).zip(src) {
                        d[r] = v;
                    }
                }
            }
        }
    }
}

/// Portable micro-kernels: the same tiles as the SIMD ones, in plain Rust, so host builds run
/// (and test) the whole packed path.
#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "simd128"),
    allow(dead_code)
)]
mod scalar {
    /// C tile (MR rows × NR cols at row stride `ldc`) (+)= Σ_p a[p*MR + r] · b[p*NR + j].
    #[inline(always)]
    fn kernel<const MR: usize, const NR: usize>(
        kc: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        let mut acc = [[0.0f32; NR]; MR];
        for (ap, bp) in a[..kc * MR]
            .chunks_exact(MR)
            .zip(b[..kc * NR].chunks_exact(NR))
        {
            for (accr, &av) in acc.iter_mut().zip(ap) {
                for (x, &bv) in accr.iter_mut().zip(bp) {
                    *x += av * bv;
                }
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            let crow = &mut c[r * ldc..][..NR];
            for (cv, &x) in crow.iter_mut().zip(accr) {
                *cv = if accumulate { *cv + x } else { x };
            }
        }
    }

    /// C[r, 0..n8] += Σ_{q<KB} A(r, p0+q) · B[p0+q, 0..n8] for r < MR (C row stride `ldc`),
    /// reading A and B in place (B rows contiguous); the caller has checked every index.
    /// Portable twin of `gemm_f32_rowstream_simd128`.
    pub(crate) fn gemm_f32_rowstream_scalar<const MR: usize, const KB: usize>(
        n8: usize,
        a: super::Strided,
        b: super::Strided,
        p0: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        let av: [[f32; KB]; MR] =
            core::array::from_fn(|r| core::array::from_fn(|q| a.at(r, p0 + q)));
        for j in 0..n8 {
            let bv: [f32; KB] = core::array::from_fn(|q| b.data[(p0 + q) * b.rs + j]);
            for (r, ar) in av.iter().enumerate() {
                let mut x = c[r * ldc + j];
                for (&aq, &bq) in ar.iter().zip(&bv) {
                    x += aq * bq;
                }
                c[r * ldc + j] = x;
            }
        }
    }

    /// 4×8 f32 tile, portable.
    pub(crate) fn gemm_f32_4x8_scalar(
        kc: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        kernel::<4, 8>(kc, a, b, c, ldc, accumulate)
    }
}

/// WebAssembly simd128 micro-kernels.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use core::arch::wasm32::{
        f32x4_add, f32x4_mul, f32x4_splat, v128, v128_load, v128_load32_splat, v128_store,
    };

    /// C tile (MR rows × 4·NV cols at row stride `ldc`) (+)= Σ_p a[p*MR + r] · b[p*4NV + j],
    /// with the MR×NV accumulators held in `v128` locals across the whole K loop. wasm has no
    /// fused multiply-add in simd128, so each step is a `f32x4.mul` and a `f32x4.add`.
    #[inline(always)]
    fn kernel<const MR: usize, const NV: usize>(
        kc: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        let nr = 4 * NV;
        assert!(a.len() >= kc * MR && b.len() >= kc * nr && c.len() >= (MR - 1) * ldc + nr);
        let mut acc = [[f32x4_splat(0.0); NV]; MR];
        let mut ap = a.as_ptr();
        let mut bp = b.as_ptr();
        for _ in 0..kc {
            // SAFETY: the assert above gives a ≥ kc·MR and b ≥ kc·nr floats; on iteration p the
            // pointers are a + p·MR and b + p·nr, so the MR scalars and nr floats read here are in
            // bounds. v128_load / v128_load32_splat have no alignment requirement.
            unsafe {
                let bv: [v128; NV] = core::array::from_fn(|v| v128_load(bp.add(4 * v).cast()));
                for (accr, r) in acc.iter_mut().zip(0..MR) {
                    let av = v128_load32_splat(ap.add(r).cast());
                    for (x, &bvv) in accr.iter_mut().zip(&bv) {
                        *x = f32x4_add(*x, f32x4_mul(av, bvv));
                    }
                }
                ap = ap.add(MR);
                bp = bp.add(nr);
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            let crow = &mut c[r * ldc..][..nr];
            for (cv, &x) in crow.chunks_exact_mut(4).zip(accr) {
                let p = cv.as_mut_ptr().cast::<v128>();
                // SAFETY: `cv` is a bounds-checked chunk of exactly 4 floats (16 bytes);
                // unaligned v128 access is allowed.
                unsafe {
                    let out = if accumulate {
                        f32x4_add(v128_load(p), x)
                    } else {
                        x
                    };
                    v128_store(p, out);
                }
            }
        }
    }

    /// C[r, 0..n8] += Σ_{q<KB} A(r, p0+q) · B[p0+q, 0..n8] for r < MR (C row stride `ldc`, n8
    /// a multiple of 8), streaming KB rows of B (unit column stride) in address order with the
    /// MR·KB A values held as broadcasts. The caller (`smallm_rows`) has asserted that every A
    /// and B index read here is in bounds and that C holds MR rows of `ldc`.
    #[inline(always)]
    pub(crate) fn gemm_f32_rowstream_simd128<const MR: usize, const KB: usize>(
        n8: usize,
        a: super::Strided,
        b: super::Strided,
        p0: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        debug_assert!(n8 % 8 == 0 && c.len() >= (MR - 1) * ldc + n8);
        let ap = a.data.as_ptr();
        // SAFETY: smallm_rows asserted (MR−1)·a.rs + (K−1)·a.cs < len(a) and p0 + KB <= K.
        let av: [[v128; KB]; MR] = core::array::from_fn(|r| {
            core::array::from_fn(|q| unsafe {
                v128_load32_splat(ap.add(r * a.rs + (p0 + q) * a.cs).cast())
            })
        });
        let bp: [*const f32; KB] =
            core::array::from_fn(|q| b.data.as_ptr().wrapping_add((p0 + q) * b.rs));
        let cp = c.as_mut_ptr();
        // Two vectors per step: each row pointer's address add serves two loads (wasm offsets
        // are immediates). MLP-M (784-512-256-10) at M = 1: 38 µs with one vector per step, 34
        // with two. A 4-wide remainder loop cost 0.8 KB of wasm, so N mod 8 columns go to the
        // caller's scalar loop.
        let mut j = 0;
        while j < n8 {
            // SAFETY: j + 8 <= n8 <= N; smallm_rows asserted (K−1)·b.rs + N <= len(b), so each
            // B row p0+q < K has N floats from bp[q]; C holds (MR−1)·ldc + n8 floats (asserted by
            // the caller, restated in the debug_assert). v128 loads/stores need no alignment.
            unsafe {
                let b0: [v128; KB] = core::array::from_fn(|q| v128_load(bp[q].add(j).cast()));
                let b1: [v128; KB] = core::array::from_fn(|q| v128_load(bp[q].add(j + 4).cast()));
                for (r, ar) in av.iter().enumerate() {
                    let cr = cp.add(r * ldc + j).cast::<v128>();
                    let prod0: [v128; KB] = core::array::from_fn(|q| f32x4_mul(ar[q], b0[q]));
                    let prod1: [v128; KB] = core::array::from_fn(|q| f32x4_mul(ar[q], b1[q]));
                    v128_store(cr, f32x4_add(v128_load(cr), tree_sum(&prod0)));
                    let cr1 = cr.add(1);
                    v128_store(cr1, f32x4_add(v128_load(cr1), tree_sum(&prod1)));
                }
            }
            j += 8;
        }
    }

    /// Σ xs with a dependent chain of log2(KB) adds instead of KB (pairwise). With a serial
    /// chain MLP-M at M = 1 took 39 µs, with the tree 38.
    #[inline(always)]
    fn tree_sum<const KB: usize>(xs: &[v128; KB]) -> v128 {
        let mut v: [v128; KB] = *xs;
        let mut len = KB;
        while len > 1 {
            let half = len / 2;
            for i in 0..half {
                v[i] = f32x4_add(v[2 * i], v[2 * i + 1]);
            }
            if len % 2 == 1 {
                v[half] = v[len - 1];
            }
            len = half + len % 2;
        }
        v[0]
    }

    /// 4×8 f32 tile: 8 `v128` accumulators, 2 B vectors and one A broadcast per K step.
    pub(crate) fn gemm_f32_4x8_simd128(
        kc: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) {
        kernel::<4, 2>(kc, a, b, c, ldc, accumulate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close_each, Rng};

    type Gemm = fn(usize, usize, usize, &[f32], &[f32], &mut [f32], bool, &mut [f32]);

    const SIZES: [usize; 7] = [0, 1, 3, 5, 17, 64, 129];

    /// Runs `fast` and `naive` on one random problem and compares. When not accumulating, C
    /// starts as NaN so any element the fast path forgets to overwrite fails the comparison.
    /// The tolerance scales with K: it is a rounding bound, 2·(K+2)·ε times the magnitude of
    /// the terms summed (the same product on |A|, |B|, plus |C₀| when accumulating).
    fn compare(
        name: &str,
        fast: Gemm,
        naive: Gemm,
        m: usize,
        n: usize,
        k: usize,
        accumulate: bool,
        rng: &mut Rng,
        scratch: &mut [f32],
    ) {
        let a = rng.vec(m * k, -1.0, 1.0);
        let b = rng.vec(k * n, -1.0, 1.0);
        let c0 = if accumulate {
            rng.vec(m * n, -1.0, 1.0)
        } else {
            vec![f32::NAN; m * n]
        };
        let mut want = c0.clone();
        naive(m, n, k, &a, &b, &mut want, accumulate, &mut []);
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
        let mut mag = vec![0.0; m * n];
        naive(m, n, k, &abs(&a), &abs(&b), &mut mag, false, &mut []);
        let mut got = c0.clone();
        fast(m, n, k, &a, &b, &mut got, accumulate, scratch);
        let eps = f32::EPSILON;
        let what = format!("{name} (m,n,k)=({m},{n},{k}) accumulate={accumulate}");
        assert_close_each(&what, &got, &want, |e| {
            let c = if accumulate { c0[e].abs() } else { 0.0 };
            2.0 * (k as f32 + 2.0) * eps * (mag[e] + c) + f32::MIN_POSITIVE
        });
    }

    fn all_sizes(name: &str, fast: Gemm, naive: Gemm) {
        let mut rng = Rng::new(0x5eed ^ name.len() as u64);
        let mut scratch = vec![0.0; GEMM_SCRATCH_LEN];
        for &m in &SIZES {
            for &n in &SIZES {
                for &k in &SIZES {
                    for accumulate in [false, true] {
                        compare(
                            name,
                            fast,
                            naive,
                            m,
                            n,
                            k,
                            accumulate,
                            &mut rng,
                            &mut scratch,
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn gemm_nn_matches_naive_on_all_small_shapes() {
        all_sizes("gemm_nn", gemm_nn, gemm_nn_naive);
    }

    #[test]
    fn gemm_nt_matches_naive_on_all_small_shapes() {
        all_sizes("gemm_nt", gemm_nt, gemm_nt_naive);
    }

    #[test]
    fn gemm_tn_matches_naive_on_all_small_shapes() {
        all_sizes("gemm_tn", gemm_tn, gemm_tn_naive);
    }

    /// The packed path itself on every non-empty small shape, including the ones the public
    /// entries hand to the naive loop, so packing tails are covered for all three views.
    #[test]
    fn gemm_blocked_matches_naive_on_all_small_shapes() {
        let mut rng = Rng::new(21);
        let mut scratch = vec![0.0; GEMM_SCRATCH_LEN];
        for &m in &SIZES[1..] {
            for &n in &SIZES[1..] {
                for &k in &SIZES[1..] {
                    let a = rng.vec(m * k, -1.0, 1.0);
                    let b = rng.vec(k * n, -1.0, 1.0);
                    // (name, A view, B view): A stored (M,K) or (K,M), B stored (K,N) or (N,K).
                    let views = [
                        ("nn", nn_a(&a, k), nn_b(&b, n)),
                        ("nt", nn_a(&a, k), t_b(&b, k)),
                        ("tn", t_a(&a, m), nn_b(&b, n)),
                    ];
                    for (name, av, bv) in views {
                        for accumulate in [false, true] {
                            let c0 = rng.vec(m * n, -1.0, 1.0);
                            let mut want = c0.clone();
                            gemm_strided_naive(m, n, k, av, bv, &mut want, accumulate);
                            let mut got = c0.clone();
                            gemm_blocked(
                                m,
                                n,
                                k,
                                av,
                                bv,
                                &mut got,
                                accumulate,
                                &mut scratch,
                                &mut NoEpilogue,
                            );
                            let what = format!(
                                "gemm_blocked {name} (m,n,k)=({m},{n},{k}) accumulate={accumulate}"
                            );
                            assert_close_each(&what, &got, &want, |_| {
                                4.0 * (k as f32 + 2.0) * f32::EPSILON
                            });
                        }
                    }
                }
            }
        }
    }

    /// Shapes that cross the cache blocks: K over KC = 256 (two and three K blocks, the first
    /// overwriting and the rest accumulating), M over MC = 128, N over NC = 512 (three N blocks
    /// at N = 1100).
    #[test]
    fn gemm_matches_naive_across_cache_blocks() {
        const {
            assert!(
                KC < 300 && MC < 131 && NC < 1030,
                "shapes below must cross every block"
            )
        };
        let mut rng = Rng::new(77);
        let mut scratch = vec![0.0; GEMM_SCRATCH_LEN];
        let products: [(&str, Gemm, Gemm); 3] = [
            ("gemm_nn", gemm_nn, gemm_nn_naive),
            ("gemm_nt", gemm_nt, gemm_nt_naive),
            ("gemm_tn", gemm_tn, gemm_tn_naive),
        ];
        for (name, fast, naive) in products {
            for (m, n, k) in [(131, 1100, 300), (7, 1030, 600), (260, 33, 513)] {
                for accumulate in [false, true] {
                    compare(
                        name,
                        fast,
                        naive,
                        m,
                        n,
                        k,
                        accumulate,
                        &mut rng,
                        &mut scratch,
                    );
                }
            }
        }
    }

    /// The small-M path on its own, for every M it takes (pairs of rows and the odd row): N
    /// below, at and around multiples of the 8-wide block (scalar tail of N mod 8); K = 0, 1,
    /// below, at and past the KB-row group and past KC; A stored (M,K) or (K,M); overwrite and
    /// accumulate.
    #[test]
    fn gemm_smallm_matches_naive() {
        let mut rng = Rng::new(99);
        for m in 1..=SMALL_M {
            for n in [1, 3, 4, 5, 8, 9, 15, 16, 17, 31, 32, 33, 36, 64, 71, 129] {
                for k in [0, 1, 2, 4, 7, 64, 300] {
                    let a = rng.vec(m * k, -1.0, 1.0);
                    let b = rng.vec(k * n, -1.0, 1.0);
                    for (name, av) in [("nn", nn_a(&a, k)), ("tn", t_a(&a, m))] {
                        for accumulate in [false, true] {
                            let c0 = if accumulate {
                                rng.vec(m * n, -1.0, 1.0)
                            } else {
                                vec![f32::NAN; m * n]
                            };
                            let mut want = c0.clone();
                            gemm_strided_naive(m, n, k, av, nn_b(&b, n), &mut want, accumulate);
                            let mut got = c0.clone();
                            gemm_smallm(m, n, k, av, nn_b(&b, n), &mut got, accumulate);
                            let what = format!(
                                "gemm_smallm {name} (m,n,k)=({m},{n},{k}) accumulate={accumulate}"
                            );
                            assert_close_each(&what, &got, &want, |_| {
                                4.0 * (k as f32 + 2.0) * f32::EPSILON
                            });
                        }
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "gemm_smallm: b too short")]
    fn gemm_smallm_checks_b() {
        let (a, b) = ([1.0; 6], [1.0; 11]);
        gemm_smallm(2, 4, 3, nn_a(&a, 3), nn_b(&b, 4), &mut [0.0; 8], false);
    }

    /// Elements of C past M·N, and scratch contents left by an earlier call, must not matter.
    #[test]
    fn gemm_ignores_slack_and_dirty_scratch() {
        let (m, n, k) = (5, 19, 7);
        let mut rng = Rng::new(3);
        let a = rng.vec(m * k + 3, -1.0, 1.0);
        let b = rng.vec(k * n + 3, -1.0, 1.0);
        let mut scratch = vec![f32::NAN; GEMM_SCRATCH_LEN + 10];
        let mut got = vec![7.0; m * n + 4];
        gemm_nn(m, n, k, &a, &b, &mut got, false, &mut scratch);
        let mut want = vec![7.0; m * n + 4];
        gemm_nn_naive(m, n, k, &a, &b, &mut want, false, &mut []);
        assert_close_each("gemm_nn slack", &got, &want, |_| 1e-5);
        assert_eq!(&got[m * n..], &[7.0; 4]);
    }

    #[test]
    #[should_panic(expected = "needs gemm_scratch_len(8, 8, 8) = 128")]
    fn gemm_rejects_short_scratch() {
        // 8×8×8 needs 8·8 (A) + 8·8 (B) floats.
        assert_eq!(gemm_scratch_len(8, 8, 8), 128);
        gemm_nn(8, 8, 8, &[1.0; 64], &[1.0; 64], &mut [0.0; 64], false, &mut [0.0; 127]);
    }

    #[test]
    fn gemm_runs_in_exactly_its_scratch_len() {
        // Block-crossing and padded shapes, each with a scratch of exactly gemm_scratch_len
        // (too short a scratch would pack fewer panels and fail the comparison).
        let mut rng = Rng::new(5);
        for (m, n, k) in [(1, 9, 3), (5, 3, 300), (130, 17, 9), (7, 530, 260), (131, 515, 257)] {
            let a = rng.vec(m * k, -1.0, 1.0);
            let b = rng.vec(k * n, -1.0, 1.0);
            let mut want = vec![0.0; m * n];
            gemm_strided_naive(m, n, k, nn_a(&a, k), nn_b(&b, n), &mut want, false);
            let mut got = vec![f32::NAN; m * n];
            let mut scratch = vec![f32::NAN; gemm_scratch_len(m, n, k)];
            gemm_nn(m, n, k, &a, &b, &mut got, false, &mut scratch);
            assert_close_each(&format!("gemm_nn {m}x{n}x{k}"), &got, &want, |_| 4.0 * (k as f32 + 2.0) * f32::EPSILON);
        }
        assert_eq!(GEMM_SCRATCH_LEN, MC * KC + KC * NC);
    }

    #[test]
    #[should_panic(expected = "gemm_nt: b has")]
    fn gemm_rejects_short_operand() {
        gemm_nt(
            2,
            3,
            4,
            &[0.0; 8],
            &[0.0; 11],
            &mut [0.0; 6],
            false,
            &mut vec![0.0; GEMM_SCRATCH_LEN],
        );
    }

    /// The epilogue contract the dense layer relies on: every element of C exactly once, and
    /// only after its final value is in place.
    #[test]
    fn epilogue_sees_each_finished_element_once() {
        struct Check<'a> {
            visits: Vec<u32>,
            want: &'a [f32],
        }
        impl Epilogue for Check<'_> {
            fn apply(&mut self, c: &mut [f32], ldc: usize, rows: Range<usize>, cols: Range<usize>) {
                for r in rows {
                    for j in cols.clone() {
                        let e = r * ldc + j;
                        self.visits[e] += 1;
                        assert!(
                            (c[e] - self.want[e]).abs() <= 1e-3,
                            "element {e} not final: {} vs {}",
                            c[e],
                            self.want[e]
                        );
                    }
                }
            }
        }
        let mut rng = Rng::new(11);
        let mut scratch = vec![0.0; GEMM_SCRATCH_LEN];
        for (m, n, k) in [
            (1, 1, 1),
            (6, 35, 0),
            (9, 17, 300),
            (130, 20, 5),
            (3, 1040, 2),
        ] {
            let a = rng.vec(m * k, -1.0, 1.0);
            let b = rng.vec(k * n, -1.0, 1.0);
            let mut want = vec![0.0; m * n];
            gemm_nn_naive(m, n, k, &a, &b, &mut want, false, &mut []);
            let mut check = Check {
                visits: vec![0; m * n],
                want: &want,
            };
            let mut c = vec![0.0; m * n];
            gemm_packed(
                m,
                n,
                k,
                nn_a(&a, k),
                nn_b(&b, n),
                &mut c,
                false,
                &mut scratch,
                &mut check,
            );
            assert!(
                check.visits.iter().all(|&v| v == 1),
                "(m,n,k)=({m},{n},{k}): visits {:?}",
                check.visits
            );
        }
    }
}
