// The peak probe: how many f32 mul+add this machine's wasm engine retires per second with
// simd128, so every GEMM figure can also be read as a percentage of the wasm limit.
//
// bench/ must not depend on crates it does not own, so the probe is a tiny wasm module
// assembled here byte by byte. Its loop body updates A independent f32x4 accumulators as
// `acc = acc * c + d`: every accumulator's product is distinct (nothing for the compiler to
// share between them) and nothing is loop-invariant (nothing to hoist), so each round really
// retires A f32x4.mul and A f32x4.add = 8A flops. With c < 1 the values settle at d / (1 - c):
// no overflow, no denormals. One chain is mul latency + add latency long, so enough
// accumulators are needed to keep both pipes busy; too many spill (x64 has 16 xmm registers and
// V8 keeps some as scratch). A sweep over A picks the best.

const ACCUMULATOR_COUNTS = [10, 12, 13, 14, 16];
const UNROLL = 4; // rounds per loop trip, so the loop counter costs little

/** Unsigned LEB128, as the wasm binary format encodes indices and sizes. */
function leb(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

const section = (id, bytes) => [id, ...leb(bytes.length), ...bytes];
const vec = (items) => [...leb(items.length), ...items.flat()];
const simd = (op, ...imm) => [0xfd, ...leb(op), ...imm];
const OP = { splat: 0x13, extractLane: 0x1f, add: 0xe4, mul: 0xe6, relaxedMadd: 0x105 }; // f32x4.* opcodes
const localGet = (i) => [0x20, ...leb(i)];
const localSet = (i) => [0x21, ...leb(i)];
const f32const = (v) => [0x43, ...new Uint8Array(Float32Array.of(v).buffer)];

/**
 * Bytes of a module exporting `peak(trips: i32) -> f32`, which runs `trips` loop trips of
 * UNROLL rounds over `acc` accumulators and returns a lane sum so nothing is dead code.
 * With `fused`, each round is one relaxed-simd `f32x4.relaxed_madd` (acc·c + d, a fused
 * multiply-add where the CPU has FMA) instead of `f32x4.mul` + `f32x4.add`: the same flops.
 */
export function peakModuleBytes(acc, { fused = false } = {}) {
  // Locals: 0 = trips (param, i32); then v128: c, d, acc0..acc{A-1}.
  const C = 1;
  const D = 2;
  const A0 = 3;
  const body = [];
  const splat = (v, local) => body.push(...f32const(v), ...simd(OP.splat), ...localSet(local));
  splat(0.999, C);
  splat(1e-3, D);
  for (let i = 0; i < acc; i++) splat(i * 0.01, A0 + i);
  body.push(0x03, 0x40); // loop (no result)
  for (let u = 0; u < UNROLL; u++) {
    for (let i = 0; i < acc; i++) {
      if (fused) body.push(...localGet(A0 + i), ...localGet(C), ...localGet(D), ...simd(OP.relaxedMadd), ...localSet(A0 + i));
      else body.push(...localGet(A0 + i), ...localGet(C), ...simd(OP.mul), ...localGet(D), ...simd(OP.add), ...localSet(A0 + i));
    }
  }
  // trips -= 1; br_if trips != 0
  body.push(...localGet(0), 0x41, ...leb(1), 0x6b, 0x22, ...leb(0), 0x0d, ...leb(0), 0x0b);
  // return the sum of lane 0 of every accumulator
  body.push(...f32const(0));
  for (let i = 0; i < acc; i++) body.push(...localGet(A0 + i), ...simd(OP.extractLane, 0), 0x92);
  body.push(0x0b);
  const locals = vec([[...leb(2 + acc), 0x7b]]); // one run of v128 locals
  const func = [...locals, ...body];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, 1, 0x7f, 1, 0x7d]])), // type 0: (i32) -> f32
    ...section(3, vec([[0]])), // function 0 has type 0
    ...section(7, vec([[...leb(4), ...new TextEncoder().encode("peak"), 0x00, 0]])), // export "peak" = func 0
    ...section(10, vec([[...leb(func.length), ...func]])),
  ];
  return new Uint8Array(bytes);
}

/** Flops one loop trip of the probe with `acc` accumulators retires (4 lanes × (mul + add)). */
export const flopsPerTrip = (acc) => UNROLL * acc * 8;

/**
 * Measures the probe for each accumulator count and returns the best, in GFLOP/s, with the
 * per-count figures. Each count gets a warm-up (tier-up to TurboFan) then `reps` timed runs of
 * about `runMs`; the best run is the estimate of the limit (noise only ever slows a loop down).
 */
export function measurePeak({ runMs = 40, reps = 15, fused = false } = {}) {
  const perCount = [];
  for (const acc of ACCUMULATOR_COUNTS) {
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(peakModuleBytes(acc, { fused })));
    const peak = exports.peak;
    let trips = 1000;
    let ms = 0;
    while (ms < runMs / 2) {
      trips *= 2;
      const t0 = performance.now();
      peak(trips);
      ms = performance.now() - t0;
    }
    trips = Math.max(1, Math.round((trips * runMs) / ms));
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      peak(trips);
      best = Math.min(best, performance.now() - t0);
    }
    perCount.push({ accumulators: acc, gflops: (trips * flopsPerTrip(acc)) / (best * 1e6) });
  }
  const top = perCount.reduce((a, b) => (b.gflops > a.gflops ? b : a));
  return { gflops: top.gflops, accumulators: top.accumulators, perCount };
}

/** True when this engine validates relaxed-simd (Node ≥ 22, Chromium ≥ 114; Node 20 only with --experimental-wasm-relaxed-simd). */
export const hasRelaxedSimd = () => WebAssembly.validate(peakModuleBytes(1, { fused: true }));
