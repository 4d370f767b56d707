// Gradient health: what lastStepStats() reports (checked against computeGradients and the
// weights before and after a step), vanishing gradients in a deep sigmoid network and their cure
// by batchNorm + He initialisation (asserted on gradient-norm ratios, never on timings), and
// non-finite steps: a NaN in a batch, or a loss that overflows to infinity, raises
// NonFiniteError naming the step (and layer), and leaves parameters, optimizer moments, step
// count, batchNorm running statistics and the dropout RNG exactly as they were — proven by
// continuing side by side with a control model that never saw the bad step and comparing bits.
import { beforeAll, describe, expect, it } from "vitest";
import {
  adam,
  batchNorm,
  dense,
  dropout,
  init,
  NonFiniteError,
  sgd,
  type Edgegrad,
  type LayerSpec,
  type LayerWeights,
  type Sequential,
} from "../ts/node.js";
import { arraysOf, bitsOf, normal, rng, thrown, WASM } from "./helpers.js";


let eg: Edgegrad;
beforeAll(async () => {
  eg = await init(WASM);
});

const norm = (arrays: ArrayLike<number>[]) => Math.sqrt(arrays.reduce((s, a) => s + Array.from(a).reduce((t, v) => t + v * v, 0), 0));
const layerArrays = (w: LayerWeights) => arraysOf([w]);

describe("lastStepStats", () => {
  it("reports loss, global and per-layer gradient norms, weight and update norms and their ratio", () => {
    const r = rng(1);
    using m = eg.sequential({ inputs: 5, seed: 2 }, [dense(7, { activation: "tanh" }), batchNorm(), dropout(0), dense(3)]);
    m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.1, momentum: 0.9 }), maxBatch: 8 });
    expect(m.lastStepStats()).toBeNull();
    const x = Float32Array.from({ length: 8 * 5 }, () => normal(r));
    const y = Int32Array.from({ length: 8 }, (_, i) => i % 3);
    const before = m.getWeights();
    const { loss, gradients } = m.computeGradients(x, y);
    expect(m.trainStep(x, y)).toBe(loss);
    const after = m.getWeights();
    const s = m.lastStepStats()!;
    expect(s.loss).toBe(loss);
    expect(s.clipScale).toBe(1);
    expect(s.layers).toHaveLength(4);
    // f32 sums in wasm vs f64 here: 1e-5 relative.
    const near = (a: number, e: number) => expect(Math.abs(a - e)).toBeLessThanOrEqual(1e-5 * Math.abs(e) + 1e-7);
    near(s.gradNorm, norm(arraysOf(gradients)));
    s.layers.forEach((l, i) => {
      const g = layerArrays(gradients[i]!);
      const w = layerArrays(after[i]!);
      const u = layerArrays(after[i]!).map((a, k) => a.map((v, j) => v - layerArrays(before[i]!)[k]![j]!));
      near(l.gradNorm, norm(g));
      near(l.weightNorm, norm(w));
      near(l.updateNorm, norm(u));
      if (l.weightNorm === 0) expect(l.updateRatio).toBe(0);
      else near(l.updateRatio, l.updateNorm / l.weightNorm);
    });
    expect(s.layers[2]).toEqual({ gradNorm: 0, weightNorm: 0, updateNorm: 0, updateRatio: 0 }); // dropout
    // a copy: mutating it changes nothing
    s.layers[0]!.gradNorm = -1;
    expect(m.lastStepStats()!.layers[0]!.gradNorm).not.toBe(-1);
  });

  it("fit's onBatchEnd gets the step number and the same stats", async () => {
    const r = rng(2);
    using m = eg.sequential({ inputs: 3, seed: 4 }, [dense(6, { activation: "relu" }), dense(2)]);
    m.compile({ loss: "meanSquaredError", optimizer: adam({ lr: 0.01 }), maxBatch: 8, clipNorm: 0.5 });
    const x = Float32Array.from({ length: 20 * 3 }, () => normal(r));
    const y = Float32Array.from({ length: 20 * 2 }, () => normal(r));
    const seen: number[] = [];
    let last: ReturnType<Sequential["lastStepStats"]> = null;
    await m.fit(x, y, {
      epochs: 2,
      batchSize: 8,
      onBatchEnd: (step, stats) => {
        seen.push(step);
        expect(stats).toEqual(m.lastStepStats());
        expect(stats.clipScale).toBeLessThanOrEqual(1);
        if (stats.clipScale < 1) expect(stats.gradNorm).toBeGreaterThan(0.5);
        last = stats;
      },
    });
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(last).toEqual(m.lastStepStats());
  });
});

describe("vanishing gradients in a 10-layer sigmoid network", () => {
  // 9 hidden layers of 32 units and an output layer: 10 dense layers. The first layer's gradient
  // norm is compared to the last's. Without normalisation every sigmoid layer multiplies the
  // backward signal by σ'(z)·‖W‖ ≈ 0.24 (σ' <= 1/4; xavierUniform keeps ‖W‖ ≈ 1), so 9 layers
  // shrink it ~0.24⁹ ≈ 3e-6: measured ratios 1.1e-6..2.8e-6 over 6 seeds, each layer ~4-5x below
  // the next. With batchNorm before each sigmoid the backward through a layer is σ'(ẑ)·Wᵀ/σ_z and
  // σ_z ∝ ‖W‖ cancels the weights' scale: the hidden layers' norms stay flat and the measured
  // ratio is 0.15..0.43. Bounds: < 1e-3 without (350x above the largest measurement), > 0.05
  // with (3x below the smallest) — and 50x apart from each other.
  const DEPTH = 10;
  const WIDTH = 32;
  const INPUTS = 16;
  const BATCH = 64;

  function deep(withBatchNorm: boolean, seed: number): Sequential {
    const layers: LayerSpec[] = [];
    for (let l = 0; l < DEPTH - 1; l++) {
      if (withBatchNorm) layers.push(dense(WIDTH, { init: "heNormal" }), batchNorm({ activation: "sigmoid" }));
      else layers.push(dense(WIDTH, { activation: "sigmoid" }));
    }
    layers.push(dense(4, withBatchNorm ? { init: "heNormal" } : {}));
    const m = eg.sequential({ inputs: INPUTS, seed }, layers);
    m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.01 }), maxBatch: BATCH });
    return m;
  }

  function ratio(m: Sequential, seed: number): number {
    const r = rng(seed);
    const x = Float32Array.from({ length: BATCH * INPUTS }, () => normal(r));
    const y = Int32Array.from({ length: BATCH }, () => Math.floor(r() * 4));
    m.trainStep(x, y);
    const stats = m.lastStepStats()!;
    const denseLayers = m.layers.map((l, i) => [l.kind, i] as const).filter(([k]) => k === "dense").map(([, i]) => i);
    expect(denseLayers).toHaveLength(DEPTH);
    const first = stats.layers[denseLayers[0]!]!.gradNorm;
    const last = stats.layers[denseLayers[DEPTH - 1]!]!.gradNorm;
    expect(last).toBeGreaterThan(0);
    return first / last;
  }

  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: first/last gradient-norm ratio < 1e-3 without batchNorm, > 0.05 with batchNorm + He init`, () => {
      using plain = deep(false, seed);
      using normed = deep(true, seed);
      const without = ratio(plain, 100 + seed);
      const withBn = ratio(normed, 100 + seed);
      expect(without, `without batchNorm: ${without.toExponential(2)}`).toBeLessThan(1e-3);
      expect(withBn, `with batchNorm: ${withBn.toExponential(2)}`).toBeGreaterThan(0.05);
    });
  }
});

describe("a non-finite step changes nothing", () => {
  // batchNorm (running statistics), dropout (RNG), Adam with AMSGrad (two moments, a maximum and
  // the step count in the bias correction) and clipping: every piece of state a step touches.
  const INPUTS = 4;
  const OUTPUTS = 3;

  function model(): Sequential {
    const m = eg.sequential({ inputs: INPUTS, seed: 77 }, [
      dense(8, { activation: "relu" }),
      batchNorm(),
      dropout(0.25),
      dense(OUTPUTS),
    ]);
    m.compile({ loss: "meanSquaredError", optimizer: adam({ lr: 0.01, amsgrad: true, weightDecay: 0.01 }), maxBatch: 8, clipNorm: 1 });
    return m;
  }

  const r = rng(9);
  const batches = Array.from({ length: 8 }, () => ({
    x: Float32Array.from({ length: 6 * INPUTS }, () => normal(r)),
    y: Float32Array.from({ length: 6 * OUTPUTS }, () => normal(r)),
  }));

  /** Everything observable, as bits. */
  function state(m: Sequential) {
    return {
      weights: bitsOf(arraysOf(m.getWeights())),
      buffers: bitsOf(m.getBuffers().flatMap((b) => [b.runningMean, b.runningVar])),
      step: m.step,
      stats: m.lastStepStats(),
    };
  }

  /** Trains both on the same batches and requires bit-identical trajectories (losses too). */
  function sideBySide(a: Sequential, b: Sequential, from: number, to: number): void {
    for (let k = from; k < to; k++) {
      const { x, y } = batches[k % batches.length]!;
      expect(a.trainStep(x, y)).toBe(b.trainStep(x, y));
      expect(state(a)).toEqual(state(b));
    }
    expect(Array.from(a.predict(batches[0]!.x))).toEqual(Array.from(b.predict(batches[0]!.x)));
  }

  it("a NaN in the inputs: NonFiniteError with the step, nothing changed, training continues identically", () => {
    using a = model();
    using b = model();
    sideBySide(a, b, 0, 3);
    const bad = batches[3]!.x.slice();
    bad[5] = NaN;
    const e = thrown(() => a.trainStep(bad, batches[3]!.y));
    expect(e).toBeInstanceOf(NonFiniteError);
    const err = e as NonFiniteError;
    expect(err.step).toBe(4);
    expect(err.message).toMatch(/^trainStep: x: non-finite value at row 1, column 1/);
    expect(state(a)).toEqual(state(b));
    sideBySide(a, b, 3, 8);
  });

  it("a NaN in the targets: NonFiniteError with the step, naming the target; nothing changed", () => {
    using a = model();
    using b = model();
    sideBySide(a, b, 0, 2);
    const bad = batches[2]!.y.slice();
    bad[4] = NaN;
    const e = thrown(() => a.trainStep(batches[2]!.x, bad)) as NonFiniteError;
    expect(e).toBeInstanceOf(NonFiniteError);
    expect([e.step, e.layer, e.role]).toEqual([3, undefined, undefined]); // the targets are no layer's
    expect(e.message).toMatch(/^trainStep: y: non-finite target at row 1, column 1/);
    expect(state(a)).toEqual(state(b));
    sideBySide(a, b, 2, 6);
  });

  it("non-finite gradients handed to applyGradients: NonFiniteError names step, layer and role; nothing changed", () => {
    using a = model();
    using b = model();
    sideBySide(a, b, 0, 2);
    const { x, y } = batches[2]!;
    expect(a.computeGradients(x, y).loss).toBe(b.computeGradients(x, y).loss);
    const g = a.computeGradients(x, y).gradients;
    b.computeGradients(x, y);
    const bad = g.map((w, l) => (l === 3 && w.kind === "dense" ? { ...w, bias: w.bias.map((v, i) => (i === 2 ? Infinity : v)) } : w));
    const e = thrown(() => a.applyGradients(bad)) as NonFiniteError;
    expect(e).toBeInstanceOf(NonFiniteError);
    expect([e.step, e.layer, e.role]).toEqual([3, 3, "bias"]);
    expect(state(a)).toEqual(state(b));
    // fresh gradients apply normally afterwards
    a.applyGradients(g);
    b.applyGradients();
    expect(state(a)).toEqual(state(b));
    sideBySide(a, b, 3, 6);
  });

  // Huge but finite weights. (a) The output kernel × 1e20: every layer's output stays finite
  // (~1e20), only the squared errors (~1e40) overflow f32 (max 3.4e38): the loss is inf and the
  // output layer is named. (b) The first kernel filled with 3e38 on all-positive inputs: the first
  // layer's outputs overflow to inf and batchNorm turns them into NaN (inf − inf): the first
  // non-finite layer, 0, is named. (A NaN only inside batchNorm's variance would not do: an
  // infinite variance normalises to 0, finite, exactly as in PyTorch.)
  const overflows = [
    { layer: 3, loss: "inf", scale: (w: LayerWeights, l: number) => (l === 3 && w.kind === "dense" ? { ...w, kernel: w.kernel.map((v) => v * 1e20) } : w) },
    { layer: 0, loss: "NaN", scale: (w: LayerWeights, l: number) => (l === 0 && w.kind === "dense" ? { ...w, kernel: w.kernel.map(() => 3e38) } : w) },
  ];
  for (const o of overflows) {
    it(`huge weights overflowing in layer ${o.layer}: NonFiniteError naming step and layer; nothing changed`, () => {
      using a = model();
      using b = model();
      sideBySide(a, b, 0, 3);
      const saved = a.getWeights();
      a.setWeights(saved.map(o.scale));
      const hugeBits = bitsOf(arraysOf(a.getWeights()));
      const buffers = bitsOf(a.getBuffers().flatMap((x) => [x.runningMean, x.runningVar]));
      const stats = a.lastStepStats();
      const x = batches[3]!.x.map((v) => Math.abs(v) + 0.5);
      const e = thrown(() => a.trainStep(x, batches[3]!.y)) as NonFiniteError;
      expect(e).toBeInstanceOf(NonFiniteError);
      expect([e.step, e.layer, e.role]).toEqual([4, o.layer, undefined]);
      expect(e.message).toMatch(new RegExp(`^trainStep: loss is ${o.loss} at step 4, layer ${o.layer} \\(output\\); update not applied`));
      // parameters (the huge ones), running statistics, step count and stats are untouched
      expect(bitsOf(arraysOf(a.getWeights()))).toEqual(hugeBits);
      expect(bitsOf(a.getBuffers().flatMap((v) => [v.runningMean, v.runningVar]))).toEqual(buffers);
      expect(a.step).toBe(3);
      expect(a.lastStepStats()).toEqual(stats);
      // Put the weights back: moments, step count (bias correction), running statistics and
      // the dropout RNG must be those of the control model, or the trajectories part.
      a.setWeights(saved);
      expect(state(a)).toEqual(state(b));
      sideBySide(a, b, 3, 8);
    });
  }

  it("a NaN inside fit stops it with the failing step; the steps before it stand and nothing else changed", async () => {
    using a = model();
    using b = model();
    const n = 18; // 3 batches of 6, no shuffling
    const x = new Float32Array(n * INPUTS);
    const y = new Float32Array(n * OUTPUTS);
    for (let k = 0; k < 3; k++) {
      x.set(batches[k]!.x, k * 6 * INPUTS);
      y.set(batches[k]!.y, k * 6 * OUTPUTS);
    }
    y[2 * 6 * OUTPUTS + 1] = NaN; // in the third batch
    await expect(a.fit(x, y, { batchSize: 6, shuffle: false })).rejects.toSatisfy(
      (e: unknown) => e instanceof NonFiniteError && e.step === 3,
    );
    b.trainStep(batches[0]!.x, batches[0]!.y);
    b.trainStep(batches[1]!.x, batches[1]!.y);
    expect(state(a)).toEqual(state(b));
    sideBySide(a, b, 2, 6);
  });
});

describe("fit({ nonFinite })", () => {
  // 20 rows in batches of 4 without shuffling: a NaN in x at row 6 spoils batch 1 (rows 4..7)
  // and an Infinity in y at row 13 spoils batch 3 (rows 12..15). "skip" must equal training on the
  // other three batches alone, bit for bit, including Adam's moments and step count, batchNorm
  // running statistics and the dropout RNG (all in the checkpoint).
  const r = rng(11);
  const rows = 20;
  const x = Float32Array.from({ length: rows * 3 }, () => normal(r));
  const y = Float32Array.from({ length: rows * 2 }, () => normal(r));
  x[6 * 3 + 1] = NaN;
  y[13 * 2] = Infinity;
  const keep = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19];
  const cleanX = Float32Array.from(keep.flatMap((i) => Array.from(x.subarray(i * 3, i * 3 + 3))));
  const cleanY = Float32Array.from(keep.flatMap((i) => Array.from(y.subarray(i * 2, i * 2 + 2))));
  const model = () => {
    const m = eg.sequential({ inputs: 3, seed: 4 }, [dense(6, { activation: "tanh" }), batchNorm(), dropout(0.25), dense(2)]);
    m.compile({ loss: "meanSquaredError", optimizer: adam({ lr: 0.01 }), maxBatch: 8 });
    return m;
  };

  it('"skip" skips the non-finite batches, counts them, and equals training without them', async () => {
    using a = model();
    using b = model();
    const skippedLogs: number[] = [];
    const history = await a.fit(x, y, {
      epochs: 3, batchSize: 4, shuffle: false, nonFinite: "skip",
      onEpochEnd: (_, logs) => void skippedLogs.push(logs.skippedBatches!),
    });
    const control = await b.fit(cleanX, cleanY, { epochs: 3, batchSize: 4, shuffle: false });
    expect(skippedLogs).toEqual([2, 2, 2]);
    expect(history.skippedBatches).toEqual([2, 2, 2]);
    expect(a.step).toBe(9);
    expect(history.loss).toEqual(control.loss);
    expect(arraysOf(a.getWeights()).every((w) => w.every(Number.isFinite))).toBe(true);
    expect(bitsOf(arraysOf(a.getWeights()))).toEqual(bitsOf(arraysOf(b.getWeights())));
    // Everything else in the training state as well (the checkpoint holds it all).
    expect(Buffer.from(a.save()).equals(Buffer.from(b.save()))).toBe(true);
  });

  it('"error" (the default) stops at the first non-finite batch with NonFiniteError', async () => {
    using m = model();
    for (const opts of [{}, { nonFinite: "error" as const }]) {
      const before = m.step;
      await expect(m.fit(x, y, { epochs: 1, batchSize: 4, shuffle: false, ...opts })).rejects.toBeInstanceOf(NonFiniteError);
      expect(m.step).toBe(before + 1); // batch 0 trained, batch 1 refused
    }
    await expect(m.fit(x, y, { nonFinite: "ignore" as never })).rejects.toThrow(/fit\(opts.nonFinite\): unknown value "ignore"/);
  });
});
