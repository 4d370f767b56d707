// Batch normalization and dropout. batchNorm against PyTorch's BatchNorm1d (training-mode loss and
// every gradient, running statistics after each of 5 steps, parameters, eval-mode outputs, loss
// and gradients), a finite-difference check of its backward against the f64 reference in both
// modes, the 1-sample training batch error, and dropout: seeded masks, inverted scaling, identity
// in eval mode. Fixture: test/fixtures/batchnorm.json, written by test/fixtures/gen_batchnorm.py
// (regenerate with `/usr/bin/python3 test/fixtures/gen_batchnorm.py`).
import { readFile } from "node:fs/promises";
import { beforeAll, describe, expect, it } from "vitest";
import { loadAbi } from "../ts/abi.js";
import {
  batchNorm,
  dense,
  dropout,
  init,
  InvalidArgumentError,
  sgd,
  type Activation,
  type Edgegrad,
  type LayerSpec,
  type LossName,
  type Sequential,
} from "../ts/node.js";
import { loadBatchNormFixture, type BatchNormConfig } from "./fixtures/batchnorm.js";
import { arraysOf, bitsOf, compareArrays, compareLayers, denseLayers, expectNoMismatches, fixtureWeights, modelCreate, normal, rng, thrown, WASM } from "./helpers.js";
import {
  finiteDifferences,
  minKinkDistance,
  referenceLoss,
  referenceParams,
  updateRunningStats,
  type RefAnyLayer,
  type RefMode,
  type RefNet,
} from "./reference.js";

const fixture = loadBatchNormFixture();

// Tolerances against PyTorch: 1e-5 relative, as in test/pytorch.test.ts (same f32 formulas,
// different summation order: ~1e-6 relative). The absolute floor 1e-6 matters here for one
// family of values: the gradient of the bias of the dense layer feeding batchNorm is exactly 0 in
// exact arithmetic (the batch mean removes any constant shift), so both sides report f32
// cancellation residues ~1e-9 of either sign; 1e-6 is far above those and far below a real
// error (a missing 1/B or a biased variance in the backward moves gradients by >= 1e-3 here).
// Measured on the kernels as written: the largest difference is 10% of this bound.
const RTOL = 1e-5;
const ATOL = 1e-6;

let eg: Edgegrad;
beforeAll(async () => {
  eg = await init(WASM);
});

describe(`batchNorm vs torch.nn.BatchNorm1d (PyTorch ${fixture.torchVersion})`, () => {
  const xs = fixture.batches.map((b) => Float32Array.from(b));
  const ys = fixture.targets.map((t) => Int32Array.from(t));
  const xEval = Float32Array.from(fixture.evalBatch);
  const yEval = Int32Array.from(fixture.evalTargets);
  const { inputs, hidden, classes } = fixture.model;

  function build(c: BatchNormConfig): Sequential {
    const model = eg.sequential({ inputs, seed: 3 }, [
      dense(hidden),
      batchNorm({ momentum: c.momentum, eps: c.eps, activation: c.activation, ...(c.alpha === undefined ? {} : { alpha: c.alpha }) }),
      dense(classes),
    ]);
    model.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: fixture.lr }), maxBatch: 8 });
    model.setWeights(fixtureWeights(c.initialWeights));
    return model;
  }

  for (const c of fixture.configs) {
    describe(c.name, () => {
      it("builds gamma/beta parameters and running statistics starting at 0 and 1", () => {
        using model = build(c);
        expect(model.layers.map((l) => [l.kind, l.inputs, l.units, l.activation])).toEqual([
          ["dense", inputs, hidden, "identity"],
          ["batchNorm", hidden, hidden, c.activation],
          ["dense", hidden, classes, "identity"],
        ]);
        expect(model.paramCount).toBe(inputs * hidden + hidden + 2 * hidden + hidden * classes + classes);
        expect(model.parameters.map((p) => `${p.layer}:${p.layerKind}:${p.role}:${p.shape.join("x")}`)).toEqual([
          `0:dense:kernel:${inputs}x${hidden}`,
          `0:dense:bias:${hidden}`,
          `1:batchNorm:gamma:${hidden}`,
          `1:batchNorm:beta:${hidden}`,
          `2:dense:kernel:${hidden}x${classes}`,
          `2:dense:bias:${classes}`,
        ]);
        const [buffers] = model.getBuffers();
        expect(buffers!.layer).toBe(1);
        expect(Array.from(buffers!.runningMean)).toEqual(new Array(hidden).fill(0));
        expect(Array.from(buffers!.runningVar)).toEqual(new Array(hidden).fill(1));
        // A fresh model: gamma 1, beta 0.
        using fresh = eg.sequential({ inputs, seed: 3 }, [dense(hidden), batchNorm(), dense(classes)]);
        const bn = fresh.getWeights()[1]!;
        expect(bn.kind).toBe("batchNorm");
        if (bn.kind === "batchNorm") {
          expect(Array.from(bn.gamma)).toEqual(new Array(hidden).fill(1));
          expect(Array.from(bn.beta)).toEqual(new Array(hidden).fill(0));
        }
        expect(model.getWeights()).toEqual(fixtureWeights(c.initialWeights));
      });

      it("training mode: loss, every gradient (through the batch-norm backward into the first dense layer), running statistics", () => {
        using model = build(c);
        expect(model.training).toBe(true);
        const { loss, gradients } = model.computeGradients(xs[0]!, ys[0]!);
        // Like PyTorch's training-mode forward, computeGradients commits the running statistics
        // (those of step 0, which runs on the same batch and weights) but updates no parameter.
        const [b] = model.getBuffers();
        expectNoMismatches([
          ...compareArrays("loss", [c.lossValue], [loss], RTOL, ATOL),
          ...compareLayers("gradient", c.gradients, gradients, RTOL, ATOL),
          ...compareArrays("running mean", c.runningStats[0]!.runningMean, b!.runningMean, RTOL, ATOL),
          ...compareArrays("running var", c.runningStats[0]!.runningVar, b!.runningVar, RTOL, ATOL),
        ]);
        expect(model.getWeights()).toEqual(fixtureWeights(c.initialWeights));
        // applyGradients completes the step: the same parameters as trainStep, bit for bit.
        model.applyGradients();
        using viaStep = build(c);
        viaStep.trainStep(xs[0]!, ys[0]!);
        expect(bitsOf(arraysOf(model.getWeights()))).toEqual(bitsOf(arraysOf(viaStep.getWeights())));
        expect(model.getBuffers()).toEqual(viaStep.getBuffers());
        expect(model.lastStepStats()).toEqual(viaStep.lastStepStats());
        expect(model.step).toBe(1);
      });

      it(`running mean and variance after each of ${fixture.steps} steps, and the parameters`, () => {
        using model = build(c);
        const losses: number[] = [];
        const mismatches: string[] = [];
        for (let k = 0; k < fixture.steps; k++) {
          losses.push(model.trainStep(xs[k]!, ys[k]!));
          const [b] = model.getBuffers();
          mismatches.push(
            ...compareArrays(`running mean after step ${k}`, c.runningStats[k]!.runningMean, b!.runningMean, RTOL, ATOL),
            ...compareArrays(`running var after step ${k}`, c.runningStats[k]!.runningVar, b!.runningVar, RTOL, ATOL),
          );
        }
        expectNoMismatches([
          ...compareArrays("step loss", c.stepLosses, losses, RTOL, ATOL),
          ...mismatches,
          ...compareLayers(`weights after ${fixture.steps} steps`, c.finalWeights, model.getWeights(), RTOL, ATOL),
        ]);
      });

      it("eval mode: outputs before and after training, loss and gradients use the running statistics", () => {
        using model = build(c);
        expectNoMismatches(compareArrays("eval outputs before training", c.evalOutputsBefore, model.predict(xEval), RTOL, ATOL));
        for (let k = 0; k < fixture.steps; k++) model.trainStep(xs[k]!, ys[k]!);
        // predict and evaluate run in eval mode without changing the stored mode
        const out = model.predict(xEval);
        expect(model.training).toBe(true);
        expectNoMismatches(compareArrays("eval outputs after training", c.evalOutputsAfter, out, RTOL, ATOL));
        expectNoMismatches(compareArrays("evaluate loss", [c.evalLoss], [model.evaluate(xEval, yEval).loss], RTOL, ATOL));
        const buffers = model.getBuffers();
        const weights = model.getWeights();
        expect(model.eval()).toBe(model);
        expect(model.training).toBe(false);
        const { loss, gradients } = model.computeGradients(xEval, yEval);
        expectNoMismatches([
          ...compareArrays("eval loss", [c.evalLoss], [loss], RTOL, ATOL),
          ...compareLayers("eval gradient", c.evalGradients, gradients, RTOL, ATOL),
        ]);
        // a training step in eval mode leaves the running statistics alone
        model.trainStep(xs[0]!, ys[0]!);
        expect(model.getBuffers()).toEqual(buffers);
        expect(model.getWeights()).not.toEqual(weights);
        // and a 1-row batch is fine in eval mode
        expect(Number.isFinite(model.trainStep(xs[0]!.subarray(0, inputs), ys[0]!.subarray(0, 1)))).toBe(true);
        model.train();
        expect(model.training).toBe(true);
      });
    });
  }
});

// ---- finite-difference check of the batch-norm backward against the f64 reference ----

// As in test/gradcheck.test.ts: central differences with h = 1e-5 in f64 are exact to ~1e-10,
// so the tolerance is spent on the f32 side: |wasm − fd| / max(|wasm|, |fd|, 1e-4) <= 1e-3.
// Batch norm adds reductions over the batch (mean, variance, and the two sums of its backward)
// to the rounding of the dense layers, the same order of error as a GEMM over B. Measured on the
// kernels as written: worst 5.7e-5 (6% of the bound), in both modes.
const H = 1e-5;
const GRAD_RTOL = 1e-3;
const GRAD_FLOOR = 1e-4;
const ZERO_GRAD_ATOL = 1e-5;

interface BnCase {
  name: string;
  inputs: number;
  layers: ({ kind: "dense"; units: number; activation: Activation } | { kind: "batchNorm"; activation: Activation; eps?: number; momentum?: number })[];
  batch: number;
  loss: LossName;
}

const BN_CASES: BnCase[] = [
  { name: "dense -> batchNorm(tanh) -> dense, MSE, B=5", inputs: 4, batch: 5, loss: "meanSquaredError", layers: [
    { kind: "dense", units: 6, activation: "identity" }, { kind: "batchNorm", activation: "tanh" }, { kind: "dense", units: 3, activation: "identity" }] },
  { name: "batchNorm on the inputs, then dense, CE, B=7", inputs: 5, batch: 7, loss: "softmaxCrossEntropy", layers: [
    { kind: "batchNorm", activation: "identity" }, { kind: "dense", units: 4, activation: "identity" }] },
  // With B = 2, x̂ = ±√(σ²/(σ² + eps)): the gradient into the layer below flows only through eps,
  // so eps is made comparable to σ² (sigmoid outputs, σ² ~ 0.01) to give it a testable size.
  { name: "the smallest batch B=2 (x̂ ≈ ±1), eps 0.05, BCE", inputs: 3, batch: 2, loss: "binaryCrossEntropyWithLogits", layers: [
    { kind: "dense", units: 5, activation: "sigmoid" }, { kind: "batchNorm", activation: "gelu", eps: 0.05 }, { kind: "dense", units: 2, activation: "identity" }] },
  { name: "two batchNorm layers, one at the output, eps 1e-2, B=3", inputs: 3, batch: 3, loss: "meanSquaredError", layers: [
    { kind: "dense", units: 4, activation: "tanh" }, { kind: "batchNorm", activation: "sigmoid", eps: 1e-2 },
    { kind: "dense", units: 3, activation: "identity" }, { kind: "batchNorm", activation: "identity" }] },
  { name: "33 features (SIMD tails), B=17, CE", inputs: 6, batch: 17, loss: "softmaxCrossEntropy", layers: [
    { kind: "dense", units: 33, activation: "identity" }, { kind: "batchNorm", activation: "tanh" }, { kind: "dense", units: 5, activation: "identity" }] },
];

function specsOf(c: BnCase): LayerSpec[] {
  return c.layers.map((l) =>
    l.kind === "dense"
      ? dense(l.units, { activation: l.activation })
      : batchNorm({ activation: l.activation, ...(l.eps === undefined ? {} : { eps: l.eps }), ...(l.momentum === undefined ? {} : { momentum: l.momentum }) }),
  );
}

/** The f64 reference network holding exactly the model's parameters and running statistics. */
function referenceOf(c: BnCase, model: Sequential): RefNet {
  const weights = model.getWeights();
  const buffers = model.getBuffers();
  const layers: RefAnyLayer[] = c.layers.map((l, i): RefAnyLayer => {
    const w = weights[i]!;
    if (l.kind === "dense" && w.kind === "dense") {
      return { activation: l.activation, alpha: 0.01, kernel: Float64Array.from(w.kernel), bias: Float64Array.from(w.bias) };
    }
    if (l.kind === "batchNorm" && w.kind === "batchNorm") {
      const b = buffers.find((x) => x.layer === i)!;
      return {
        kind: "batchNorm", activation: l.activation, alpha: 0.01, gamma: Float64Array.from(w.gamma), beta: Float64Array.from(w.beta),
        eps: Math.fround(l.eps ?? 1e-5), momentum: l.momentum ?? 0.1,
        runningMean: Float64Array.from(b.runningMean), runningVar: Float64Array.from(b.runningVar),
      };
    }
    throw new Error(`layer ${i}: kind mismatch`);
  });
  return { inputs: c.inputs, layers };
}

function targetsFor(c: BnCase, r: () => number): Float32Array | Int32Array {
  const outputs = c.layers.reduce((w, l) => (l.kind === "dense" ? l.units : w), c.inputs);
  if (c.loss === "softmaxCrossEntropy") return Int32Array.from({ length: c.batch }, () => Math.floor(r() * outputs));
  if (c.loss === "meanSquaredError") return Float32Array.from({ length: c.batch * outputs }, () => normal(r));
  return Float32Array.from({ length: c.batch * outputs }, () => r());
}

function gradcheck(c: BnCase, mode: RefMode, model: Sequential, x: Float32Array, y: Float32Array | Int32Array): void {
  const net = referenceOf(c, model);
  expect(minKinkDistance(net, x, c.batch, mode)).toBe(Infinity); // smooth activations only
  const { loss, gradients } = model.computeGradients(x, y);
  const lossOf = () => referenceLoss(net, c.loss, x, y, c.batch, mode);
  expect(Math.abs(loss - lossOf())).toBeLessThanOrEqual(1e-4 * Math.max(Math.abs(lossOf()), 1e-3));
  const { params, names } = referenceParams(net);
  const fd = finiteDifferences(params, lossOf, H);
  const wasm = arraysOf(gradients);
  expect(wasm.length).toBe(fd.length);
  // In training mode the bias of an identity dense layer feeding batchNorm has gradient exactly
  // 0 (normalising subtracts the batch mean, so a constant shift changes nothing); there both
  // sides report rounding residues, f64 ~1e-11 and f32 ~B·2⁻²⁴·Σ|dz| (measured up to 6.6e-7, 7%
  // of the bound), so those entries are compared absolutely against ZERO_GRAD_ATOL instead.
  const zeroBias = new Set(
    c.layers.flatMap((l, i) =>
      mode === "train" && l.kind === "dense" && l.activation === "identity" && c.layers[i + 1]?.kind === "batchNorm" ? [`layer ${i} bias`] : [],
    ),
  );
  const mismatches: string[] = [];
  fd.forEach((expected, p) => {
    expected.forEach((e, k) => {
      const a = wasm[p]![k]!;
      if (zeroBias.has(names[p]!)) {
        if (!(Math.abs(a) <= ZERO_GRAD_ATOL && Math.abs(e) <= ZERO_GRAD_ATOL)) mismatches.push(`${names[p]}[${k}]: must be ~0, finite difference ${e}, wasm ${a}`);
        return;
      }
      const rel = Math.abs(a - e) / Math.max(Math.abs(a), Math.abs(e), GRAD_FLOOR);
      if (!(rel <= GRAD_RTOL)) mismatches.push(`${names[p]}[${k}]: finite difference ${e}, wasm ${a} (rel err ${rel.toExponential(2)})`);
    });
  });
  expectNoMismatches(mismatches, `${c.name} (${mode} mode)`);
}

describe("batchNorm backward: finite differences of the f64 reference", () => {
  BN_CASES.forEach((c, id) => {
    it(c.name, () => {
      const r = rng(0xb4 + id);
      using model = eg.sequential({ inputs: c.inputs, seed: 50 + id }, specsOf(c));
      model.compile({ loss: c.loss, optimizer: sgd({ lr: 0.05 }), maxBatch: c.batch });
      // Non-trivial gamma, beta and biases.
      model.setWeights(
        model.getWeights().map((w) =>
          w.kind === "batchNorm"
            ? { kind: "batchNorm", gamma: w.gamma.map(() => 0.5 + r()), beta: w.beta.map(() => r() - 0.5) }
            : w.kind === "dense" ? { ...w, bias: w.bias.map(() => r() - 0.5) } : w,
        ),
      );
      const x = Float32Array.from({ length: c.batch * c.inputs }, () => normal(r) * 1.5 + 0.3);
      const y = targetsFor(c, r);
      gradcheck(c, "train", model, x, y);
      // A few steps give running statistics away from 0/1, then the eval-mode backward.
      for (let k = 0; k < 3; k++) model.trainStep(x, y);
      model.eval();
      gradcheck(c, "eval", model, x, y);
    });
  });

  it("the reference itself: loss and the running-statistics update match the fixture (PyTorch)", () => {
    const c = fixture.configs[0]!;
    const w = c.initialWeights;
    const d0 = w[0]!;
    const bn = w[1]!;
    const d2 = w[2]!;
    if (d0.kind !== "dense" || bn.kind !== "batchNorm" || d2.kind !== "dense") throw new Error("fixture layout");
    const net: RefNet = {
      inputs: fixture.model.inputs,
      layers: [
        { activation: "identity", alpha: 0.01, kernel: Float64Array.from(d0.kernel), bias: Float64Array.from(d0.bias) },
        { kind: "batchNorm", activation: c.activation, alpha: c.alpha ?? 0.01, gamma: Float64Array.from(bn.gamma), beta: Float64Array.from(bn.beta),
          eps: c.eps, momentum: c.momentum, runningMean: new Float64Array(fixture.model.hidden), runningVar: new Float64Array(fixture.model.hidden).fill(1) },
        { activation: "identity", alpha: 0.01, kernel: Float64Array.from(d2.kernel), bias: Float64Array.from(d2.bias) },
      ],
    };
    const x = fixture.batches[0]!;
    const batch = x.length / fixture.model.inputs;
    expect(Math.abs(referenceLoss(net, "softmaxCrossEntropy", x, fixture.targets[0]!, batch) - c.lossValue)).toBeLessThan(1e-5 * c.lossValue);
    updateRunningStats(net, x, batch);
    const layer = net.layers[1] as Extract<RefAnyLayer, { kind: "batchNorm" }>;
    expectNoMismatches([
      ...compareArrays("reference running mean", c.runningStats[0]!.runningMean, layer.runningMean, 1e-5, 1e-6),
      ...compareArrays("reference running var", c.runningStats[0]!.runningVar, layer.runningVar, 1e-5, 1e-6),
    ]);
  });
});

describe("batchNorm needs more than one sample per training batch", () => {
  const build = () => {
    const m = eg.sequential({ inputs: 3, seed: 1 }, [dense(4), batchNorm({ activation: "relu" }), dense(2)]);
    m.compile({ loss: "meanSquaredError", optimizer: sgd({ lr: 0.1 }), maxBatch: 8 });
    return m;
  };

  it("trainStep and computeGradients with 1 row in training mode throw InvalidArgumentError and change nothing", () => {
    using m = build();
    m.trainStep(new Float32Array(6).map((_, i) => i / 3), new Float32Array(4));
    const before = bitsOf(arraysOf(m.getWeights()));
    const buffers = m.getBuffers();
    for (const fn of [() => m.trainStep(new Float32Array([1, 2, 3]), new Float32Array(2)), () => m.computeGradients(new Float32Array([1, 2, 3]), new Float32Array(2))]) {
      const e = thrown(fn);
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.message).toMatch(/^(trainStep|computeGradients)\(x\): batchNorm needs more than 1 sample per batch in training mode/);
    }
    expect(bitsOf(arraysOf(m.getWeights()))).toEqual(before);
    expect(m.getBuffers()).toEqual(buffers);
    expect(m.step).toBe(1);
    // inference on one row is fine (eval mode)
    expect(m.predict(new Float32Array([1, 2, 3]))).toHaveLength(2);
  });

  it("Rust refuses it too, with the spec's message", async () => {
    const abi = await loadAbi(await readFile(WASM));
    // dense(4), batchNorm; 8-word records
    const spec = abi.alloc(64, "t");
    abi.u32.set([0, 4, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], spec >>> 2);
    abi.f32[(spec >>> 2) + 13] = 0.1; // momentum
    abi.f32[(spec >>> 2) + 14] = 1e-5; // eps
    const h = modelCreate(abi, 3, 2, spec, 1, 0, "t");
    abi.free(spec, 64);
    abi.f32.set([0.1, 0, 0, 0, 0], abi.out >>> 2);
    abi.call("compile", "eg_model_compile", h, 1, 4, 0, abi.out, 5);
    expect(() => abi.modelTrainStaged(h, 1, "trainStep")).toThrow(InvalidArgumentError);
    expect(() => abi.modelTrainStaged(h, 1, "trainStep")).toThrow("trainStep: batch: batchNorm needs more than 1 sample per batch in training mode");
    abi.call("eval", "eg_model_set_training", h, 0);
    abi.modelTrainStaged(h, 1, "trainStep");
    abi.call("t", "eg_model_free", h);
  });

  it("fit refuses a split that leaves a 1-row last batch before any step", async () => {
    using m = build();
    const x = new Float32Array(9 * 3).map((_, i) => Math.sin(i));
    const y = new Float32Array(9 * 2);
    const w = bitsOf(arraysOf(m.getWeights()));
    await expect(m.fit(x, y, { batchSize: 4 })).rejects.toThrow(/^fit\(opts\.batchSize\): 9 rows in batches of 4 leave a last batch of 1 row/);
    await expect(m.fit(x.subarray(0, 3), y.subarray(0, 2))).rejects.toThrow(/^fit\(x\): batchNorm needs more than 1 sample/);
    expect(bitsOf(arraysOf(m.getWeights()))).toEqual(w);
    expect(m.step).toBe(0);
    await m.fit(x, y, { batchSize: 3, epochs: 2 }); // 3 batches of 3
    expect(m.step).toBe(6);
    m.eval();
    await m.fit(x, y, { batchSize: 4 }); // fine in eval mode
  });
});

describe("dropout", () => {
  /** inputs → dropout(rate) → dense(1, zero kernel) with MSE target −1 on one row of ones:
   * dL/dW_i = 2·x̃_i = 2·mask_i/(1 − rate), so the kernel gradient is the (scaled) mask. */
  function maskProbe(rate: number, seed: number, inputs = 2000) {
    const m = eg.sequential({ inputs, seed }, [dropout(rate), dense(1, { init: "zeros" })]);
    m.compile({ loss: "meanSquaredError", optimizer: sgd({ lr: 0.1 }), maxBatch: 1 });
    const x = new Float32Array(inputs).fill(1);
    const y = new Float32Array([-1]);
    return {
      m,
      mask: () => {
        const g = m.computeGradients(x, y).gradients[1]!;
        if (g.kind !== "dense") throw new Error("layer 1 is not dense");
        return g.kernel;
      },
    };
  }

  it("keeps each value with probability 1 − rate and scales kept values by 1/(1 − rate)", () => {
    for (const rate of [0.1, 0.3, 0.5, 0.9]) {
      const { m, mask } = maskProbe(rate, 7);
      using _ = m;
      const g = mask();
      const kept = Math.fround(2 / Math.fround(1 - rate));
      let count = 0;
      for (const v of g) {
        if (v !== 0) {
          expect(v).toBeCloseTo(kept, 5);
          count++;
        }
      }
      // Binomial(2000, 1 − rate): 5 standard deviations.
      const sd = Math.sqrt(2000 * rate * (1 - rate));
      expect(Math.abs(count - 2000 * (1 - rate))).toBeLessThan(5 * sd);
    }
    const { m, mask } = maskProbe(0, 7);
    using _ = m;
    expect(Array.from(mask()).every((v) => v === 2)).toBe(true); // rate 0 keeps everything, unscaled
  });

  it("the same seed draws the same masks; the masks change from step to step; another seed differs", () => {
    const a = maskProbe(0.5, 11);
    const b = maskProbe(0.5, 11);
    const c = maskProbe(0.5, 12);
    using _a = a.m;
    using _b = b.m;
    using _c = c.m;
    const a1 = a.mask();
    const a2 = a.mask();
    expect(b.mask()).toEqual(a1);
    expect(b.mask()).toEqual(a2);
    expect(a2).not.toEqual(a1);
    expect(c.mask()).not.toEqual(a1);
  });

  it("is the identity in eval mode and in predict/evaluate", () => {
    const r = rng(5);
    const x = Float32Array.from({ length: 6 * 4 }, () => normal(r));
    const y = Float32Array.from({ length: 6 * 2 }, () => normal(r));
    using withDropout = eg.sequential({ inputs: 4, seed: 9 }, [dense(8, { activation: "tanh" }), dropout(0.5), dense(2)]);
    using without = eg.sequential({ inputs: 4, seed: 9 }, [dense(8, { activation: "tanh" }), dense(2)]);
    for (const m of [withDropout, without]) m.compile({ loss: "meanSquaredError", optimizer: sgd({ lr: 0.1 }), maxBatch: 8 });
    without.setWeights(withDropout.getWeights().filter((w) => w.kind !== "dropout"));
    expect(bitsOf(arraysOf(withDropout.getWeights()))).toEqual(bitsOf(arraysOf(without.getWeights())));
    expect(withDropout.getWeights()[1]).toEqual({ kind: "dropout" });
    expect(withDropout.layers[1]).toMatchObject({ kind: "dropout", inputs: 8, units: 8, paramCount: 0 });
    expect(Array.from(withDropout.predict(x))).toEqual(Array.from(without.predict(x)));
    expect(withDropout.evaluate(x, y).loss).toBe(without.evaluate(x, y).loss);
    // training mode: dropout changes the gradients; eval mode: identical to the model without it
    const train = denseLayers(withDropout.computeGradients(x, y).gradients.filter((g) => g.kind !== "dropout"));
    const plain = denseLayers(without.computeGradients(x, y).gradients);
    expect(train[0]!.kernel).not.toEqual(plain[0]!.kernel);
    withDropout.eval();
    const evalGrads = withDropout.computeGradients(x, y);
    expect(bitsOf(arraysOf(evalGrads.gradients))).toEqual(bitsOf(arraysOf(without.computeGradients(x, y).gradients)));
    // per-layer step stats have an entry for the dropout layer, all zeros
    withDropout.train();
    withDropout.trainStep(x, y);
    const stats = withDropout.lastStepStats()!;
    expect(stats.layers).toHaveLength(3);
    expect(stats.layers[1]).toEqual({ gradNorm: 0, weightNorm: 0, updateNorm: 0, updateRatio: 0 });
  });
});
