// The issue-3 training API end to end: optimizer, layer and schedule factories (torch defaults,
// every bad option a typed error naming it), compile's clipping and parameter groups, the
// learning rate getter/setter, train()/eval(), weights and buffers of batchNorm models, and
// fit() with schedules and onBatchEnd. Every rejected call leaves the model bit-identical.
import { beforeAll, describe, expect, it } from "vitest";
import {
  adagrad,
  adam,
  adamw,
  batchNorm,
  dense,
  DisposedError,
  dropout,
  init,
  InvalidArgumentError,
  NonFiniteError,
  rmsprop,
  sgd,
  ShapeError,
  StateError,
  type EdgegradError,
  type Edgegrad,
  type Sequential,
} from "../ts/node.js";
import { cosineAnnealingLR, exponentialLR, ReduceLROnPlateau, reduceLROnPlateau, stepLR } from "../ts/schedules.js";
import { arraysOf, bitsOf, denseLayers, normal, rng, thrown, WASM } from "./helpers.js";


type ErrorClass = abstract new (...a: never[]) => EdgegradError;

describe("factories: torch defaults", () => {
  it("optimizers", () => {
    expect(sgd({ lr: 0.1 })).toEqual({ name: "sgd", lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false });
    expect(adam()).toEqual({ name: "adam", lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false });
    expect(adamw()).toEqual({ name: "adamw", lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false });
    expect(rmsprop()).toEqual({ name: "rmsprop", lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false });
    expect(adagrad()).toEqual({ name: "adagrad", lr: 1e-2, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10 });
    expect(Object.isFrozen(adam())).toBe(true);
  });

  it("layers", () => {
    expect(batchNorm()).toEqual({ kind: "batchNorm", momentum: 0.1, eps: 1e-5, activation: "identity", alpha: 0.01 });
    expect(dropout(0.5)).toEqual({ kind: "dropout", rate: 0.5 });
    expect(dense(3, { init: "constant", value: 0.5 })).toMatchObject({ kind: "dense", init: "constant", value: 0.5 });
    expect(dense(3, { init: "lecunUniform" }).init).toBe("lecunUniform");
  });

  it("schedules", () => {
    expect(stepLR({ stepSize: 3 }).gamma).toBe(0.1);
    expect(cosineAnnealingLR({ tMax: 5 })).toMatchObject({ etaMin: 0, warmupEpochs: 0, warmupStartFactor: 1 / 3 });
    expect(reduceLROnPlateau()).toMatchObject({
      mode: "min", factor: 0.1, patience: 10, threshold: 1e-4, thresholdMode: "rel", cooldown: 0, minLr: 0, eps: 1e-8,
    });
  });
});

describe("factories: every bad option is a typed error naming it", () => {
  const cases: [string, () => unknown, RegExp][] = [
    ["sgd momentum < 0", () => sgd({ lr: 0.1, momentum: -0.5 }), /^sgd\(opts\.momentum\): must be a finite number >= 0, got -0\.5/],
    ["sgd dampening > 1", () => sgd({ lr: 0.1, momentum: 0.9, dampening: 2 }), /^sgd\(opts\.dampening\)/],
    ["sgd weightDecay NaN", () => sgd({ lr: 0.1, weightDecay: NaN }), /^sgd\(opts\.weightDecay\)/],
    ["sgd nesterov without momentum", () => sgd({ lr: 0.1, nesterov: true }), /^sgd\(opts\.nesterov\): Nesterov momentum needs momentum > 0 and dampening 0/],
    ["sgd nesterov with dampening", () => sgd({ lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /^sgd\(opts\.nesterov\)/],
    ["sgd nesterov not boolean", () => sgd({ lr: 0.1, nesterov: 1 as never }), /^sgd\(opts\.nesterov\): expected a boolean/],
    ["sgd lr beyond f32", () => sgd({ lr: 1e39 }), /^sgd\(opts\.lr\)/],
    ["adam lr < 0", () => adam({ lr: -1 }), /^adam\(opts\.lr\)/],
    ["adam beta1 = 1", () => adam({ betas: [1, 0.999] }), /^adam\(opts\.betas\[0\]\): must be a finite number >= 0 and < 1, got 1/],
    ["adam beta2 < 0", () => adam({ betas: [0.9, -0.1] }), /^adam\(opts\.betas\[1\]\)/],
    ["adam betas not a pair", () => adam({ betas: [0.9] as never }), /^adam\(opts\.betas\): expected \[beta1, beta2\]/],
    ["adam eps < 0", () => adam({ eps: -1e-8 }), /^adam\(opts\.eps\)/],
    ["adam amsgrad not boolean", () => adam({ amsgrad: "yes" as never }), /^adam\(opts\.amsgrad\)/],
    ["adamw weightDecay Infinity", () => adamw({ weightDecay: Infinity }), /^adamw\(opts\.weightDecay\)/],
    ["adamw opts not an object", () => adamw(0.1 as never), /^adamw\(opts\): expected an options object/],
    ["rmsprop alpha > 1", () => rmsprop({ alpha: 1.5 }), /^rmsprop\(opts\.alpha\)/],
    ["rmsprop momentum < 0", () => rmsprop({ momentum: -0.1 }), /^rmsprop\(opts\.momentum\)/],
    ["rmsprop centered not boolean", () => rmsprop({ centered: 0 as never }), /^rmsprop\(opts\.centered\)/],
    ["adagrad lrDecay < 0", () => adagrad({ lrDecay: -1 }), /^adagrad\(opts\.lrDecay\)/],
    ["adagrad initialAccumulatorValue < 0", () => adagrad({ initialAccumulatorValue: -0.1 }), /^adagrad\(opts\.initialAccumulatorValue\)/],
    ["adagrad eps NaN", () => adagrad({ eps: NaN }), /^adagrad\(opts\.eps\)/],
    ["dense value without constant init", () => dense(2, { value: 1 }), /^dense\(opts\.value\): only used by init "constant"/],
    ["dense constant value NaN", () => dense(2, { init: "constant", value: NaN }), /^dense\(opts\.value\)/],
    ["batchNorm momentum > 1", () => batchNorm({ momentum: 1.5 }), /^batchNorm\(opts\.momentum\): must be a finite number >= 0 and <= 1/],
    ["batchNorm eps 0", () => batchNorm({ eps: 0 }), /^batchNorm\(opts\.eps\): must be a finite number > 0/],
    ["batchNorm activation", () => batchNorm({ activation: "swish" as never }), /^batchNorm\(opts\.activation\): unknown value "swish"/],
    ["batchNorm alpha", () => batchNorm({ alpha: Infinity }), /^batchNorm\(opts\.alpha\)/],
    ["batchNorm opts", () => batchNorm("relu" as never), /^batchNorm\(opts\)/],
    ["dropout rate 1", () => dropout(1), /^dropout\(rate\): must be a finite number >= 0 and < 1, got 1/],
    ["dropout rate < 0", () => dropout(-0.1), /^dropout\(rate\)/],
    ["dropout rate string", () => dropout("0.5" as never), /^dropout\(rate\)/],
    ["stepLR stepSize 0", () => stepLR({ stepSize: 0 }), /^stepLR\(opts\.stepSize\): must be an integer >= 1/],
    ["stepLR stepSize fractional", () => stepLR({ stepSize: 1.5 }), /^stepLR\(opts\.stepSize\)/],
    ["stepLR no options", () => stepLR(undefined as never), /^stepLR\(opts\.stepSize\)/],
    ["stepLR gamma < 0", () => stepLR({ stepSize: 2, gamma: -1 }), /^stepLR\(opts\.gamma\)/],
    ["exponentialLR gamma missing", () => exponentialLR({} as never), /^exponentialLR\(opts\.gamma\)/],
    ["cosine tMax 0", () => cosineAnnealingLR({ tMax: 0 }), /^cosineAnnealingLR\(opts\.tMax\)/],
    ["cosine etaMin < 0", () => cosineAnnealingLR({ tMax: 3, etaMin: -1 }), /^cosineAnnealingLR\(opts\.etaMin\)/],
    ["cosine warmupEpochs < 0", () => cosineAnnealingLR({ tMax: 3, warmupEpochs: -1 }), /^cosineAnnealingLR\(opts\.warmupEpochs\)/],
    ["cosine warmupStartFactor 0", () => cosineAnnealingLR({ tMax: 3, warmupStartFactor: 0 }), /^cosineAnnealingLR\(opts\.warmupStartFactor\): must be a finite number > 0 and <= 1/],
    ["plateau mode", () => reduceLROnPlateau({ mode: "avg" as never }), /^reduceLROnPlateau\(opts\.mode\): expected "min" or "max"/],
    ["plateau factor 1", () => reduceLROnPlateau({ factor: 1 }), /^reduceLROnPlateau\(opts\.factor\)/],
    ["plateau patience < 0", () => reduceLROnPlateau({ patience: -1 }), /^reduceLROnPlateau\(opts\.patience\)/],
    ["plateau thresholdMode", () => reduceLROnPlateau({ thresholdMode: "pct" as never }), /^reduceLROnPlateau\(opts\.thresholdMode\)/],
    ["plateau cooldown fractional", () => reduceLROnPlateau({ cooldown: 0.5 }), /^reduceLROnPlateau\(opts\.cooldown\)/],
    ["plateau minLr < 0", () => reduceLROnPlateau({ minLr: -1 }), /^reduceLROnPlateau\(opts\.minLr\)/],
  ];
  for (const [name, fn, msg] of cases) {
    it(name, () => {
      const e = thrown(fn);
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.message).toMatch(msg);
    });
  }

  it("schedules refuse stepping before start, a missing or non-finite metric, and a bad base rate; failures keep their state", () => {
    const s = stepLR({ stepSize: 2 });
    expect(thrown(() => s.step())).toBeInstanceOf(StateError);
    expect(thrown(() => s.start(NaN)).message).toMatch(/^stepLR\.start\(baseLr\)/);
    expect(thrown(() => s.lrAt(-1, 0.1)).message).toMatch(/^stepLR\.lrAt\(epoch\)/);
    s.start(0.1);
    expect(thrown(() => s.step(NaN)).message).toMatch(/^stepLR\.step\(metric\)/);
    expect(s.epoch).toBe(0);
    const p = reduceLROnPlateau({ patience: 0 });
    p.start(1);
    expect(thrown(() => p.step()).message).toMatch(/^reduceLROnPlateau\.step\(metric\): must be a finite number, got undefined/);
    expect(thrown(() => p.step(Infinity))).toBeInstanceOf(InvalidArgumentError);
    expect([p.epoch, p.lr, p.best]).toEqual([0, 1, Infinity]);
    expect(p.step(1)).toBe(1);
    expect(p.step(1)).toBe(0.1); // patience 0: the first non-improving epoch reduces
  });
});

describe("on a model", () => {
  let eg: Edgegrad;
  beforeAll(async () => {
    eg = await init(WASM);
  });

  const r = rng(3);
  const x = Float32Array.from({ length: 12 * 3 }, () => normal(r));
  const y = Int32Array.from({ length: 12 }, (_, i) => i % 2);

  function bnModel(): Sequential {
    const m = eg.sequential({ inputs: 3, seed: 5 }, [dense(6, { activation: "tanh" }), batchNorm({ activation: "relu" }), dropout(0.2), dense(2)]);
    m.compile({ loss: "softmaxCrossEntropy", optimizer: adamw({ lr: 0.01 }), maxBatch: 12 });
    return m;
  }

  /** Everything observable about a model's state. */
  function snapshot(m: Sequential) {
    return {
      weights: bitsOf(arraysOf(m.getWeights())),
      buffers: bitsOf(m.getBuffers().flatMap((b) => [b.runningMean, b.runningVar])),
      step: m.step,
      lr: m.compiled ? m.lr : null,
      training: m.training,
      maxBatch: m.maxBatch,
      loss: m.loss,
      stats: m.compiled ? m.lastStepStats() : null,
    };
  }

  describe("bad arguments change nothing", () => {
    const cases: [string, (m: Sequential) => unknown, ErrorClass, RegExp][] = [
      ["compile clipNorm 0", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 1 }), clipNorm: 0 }), InvalidArgumentError, /^compile\(opts\.clipNorm\): must be a finite number > 0/],
      ["compile clipNorm NaN", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 1 }), clipNorm: NaN }), InvalidArgumentError, /^compile\(opts\.clipNorm\)/],
      ["compile clipValue < 0", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 1 }), clipValue: -1 }), InvalidArgumentError, /^compile\(opts\.clipValue\)/],
      ["compile paramGroups not an array", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 1 }), paramGroups: {} as never }), InvalidArgumentError, /^compile\(opts\.paramGroups\): expected an array/],
      ["compile paramGroups[0] null", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 1 }), paramGroups: [null as never] }), InvalidArgumentError, /^compile\(opts\.paramGroups\[0\]\)/],
      ["compile group filter missing", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 1 }), paramGroups: [{ weightDecay: 0 } as never] }), InvalidArgumentError, /^compile\(opts\.paramGroups\[0\]\.filter\): expected a function/],
      ["compile group filter returns a string", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 1 }), paramGroups: [{ filter: () => "yes" as never }] }), InvalidArgumentError, /^compile\(opts\.paramGroups\[0\]\.filter\): must return a boolean/],
      ["compile group filter throws", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 1 }), paramGroups: [{ filter: () => { throw new Error("boom"); } }] }), InvalidArgumentError, /^compile\(opts\.paramGroups\[0\]\.filter\): threw on parameter 0 \(layer 0 kernel\): Error: boom/],
      ["compile group lr < 0", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 1 }), paramGroups: [{ filter: () => true, lr: -1 }] }), InvalidArgumentError, /^compile\(opts\.paramGroups\[0\]\.lr\)/],
      ["compile group lr with optimizer lr 0", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0 }), paramGroups: [{ filter: () => true, lr: 0.1 }] }), InvalidArgumentError, /^compile\(opts\.paramGroups\[0\]\.lr\): a group rate is kept as a multiple/],
      ["compile group weightDecay NaN", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 1 }), paramGroups: [{ filter: () => true, weightDecay: NaN }] }), InvalidArgumentError, /^compile\(opts\.paramGroups\[0\]\.weightDecay\)/],
      ["compile hand-written optimizer beta", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: { ...adam(), betas: [2, 0.9] } }), InvalidArgumentError, /^compile\(opts\.optimizer\.betas\[0\]\): must be a finite number >= 0 and < 1, got 2/],
      ["compile unknown optimizer", (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: { name: "lion" } as never }), InvalidArgumentError, /^compile\(opts\.optimizer\.name\): unknown optimizer "lion"/],
      ["lr NaN", (m) => { m.lr = NaN; }, InvalidArgumentError, /^lr: must be a finite number >= 0, got NaN/],
      ["lr < 0", (m) => { m.lr = -0.1; }, InvalidArgumentError, /^lr:/],
      ["setWeights batchNorm entry with a kernel", (m) => m.setWeights(m.getWeights().map((w, i) => (i === 1 ? { kind: "dense", kernel: new Float32Array(6), bias: new Float32Array(6) } : w)) as never), InvalidArgumentError, /^setWeights\(weights\[1\]\)\.kind: layer 1 is a batchNorm layer, got "dense"/],
      ["setWeights gamma too short", (m) => m.setWeights(m.getWeights().map((w) => (w.kind === "batchNorm" ? { ...w, gamma: w.gamma.subarray(1) } : w))), ShapeError, /^setWeights\(weights\[1\]\)\.gamma: expected 6 values, got 5/],
      ["setWeights beta missing", (m) => m.setWeights(m.getWeights().map((w) => (w.kind === "batchNorm" ? { gamma: w.gamma } : w)) as never), InvalidArgumentError, /^setWeights\(weights\[1\]\)\.beta: expected a Float32Array, got undefined/],
      ["setWeights gamma NaN", (m) => m.setWeights(m.getWeights().map((w) => (w.kind === "batchNorm" ? { ...w, gamma: w.gamma.map((v, i) => (i === 3 ? NaN : v)) } : w))), NonFiniteError, /^setWeights\(weights\[1\]\)\.gamma: non-finite value NaN at index 3/],
      ["setWeights dropout entry null", (m) => m.setWeights(m.getWeights().map((w) => (w.kind === "dropout" ? null : w)) as never), InvalidArgumentError, /^setWeights\(weights\[2\]\): expected \{\} for a dropout layer/],
      ["applyGradients not an array", (m) => m.applyGradients({} as never), InvalidArgumentError, /^applyGradients\(gradients\): expected an array/],
      ["applyGradients wrong kernel length", (m) => m.applyGradients(m.getWeights().map((w) => (w.kind === "dense" ? { ...w, kernel: w.kernel.subarray(2) } : w))), ShapeError, /^applyGradients\(gradients\[0\]\)\.kernel: expected 18 values, got 16/],
      ["fit schedule not a schedule", (m) => m.fit(x, y, { schedule: { step: () => 1 } as never }), InvalidArgumentError, /^fit\(opts\.schedule\)/],
      ["fit onBatchEnd not a function", (m) => m.fit(x, y, { onBatchEnd: 3 as never }), InvalidArgumentError, /^fit\(opts\.onBatchEnd\)/],
    ];
    for (const [name, fn, Cls, msg] of cases) {
      it(name, async () => {
        using m = bnModel();
        m.trainStep(x, y); // optimizer state, running statistics, stats exist
        const before = snapshot(m);
        let e: unknown;
        try {
          await fn(m);
        } catch (err) {
          e = err;
        }
        expect(e).toBeInstanceOf(Cls);
        expect((e as Error).message).toMatch(msg);
        expect(snapshot(m)).toEqual(before);
        // and it trains on identically to a model that never saw the bad call
        using control = bnModel();
        control.trainStep(x, y);
        expect(m.trainStep(x, y)).toBe(control.trainStep(x, y));
        expect(snapshot(m)).toEqual(snapshot(control));
      });
    }
  });

  it("weights and buffers: one entry per layer (kind optional in setWeights), copies, a round trip", () => {
    using m = bnModel();
    const w = m.getWeights();
    expect(w.map((l) => l.kind)).toEqual(["dense", "batchNorm", "dropout", "dense"]);
    using other = bnModel();
    other.setWeights(w.map((l) => {
      const { kind: _kind, ...rest } = l;
      return rest;
    }));
    expect(other.getWeights()).toEqual(w);
    m.trainStep(x, y);
    const b = m.getBuffers();
    expect(b).toHaveLength(1);
    b[0]!.runningMean[0] = 1234;
    expect(m.getBuffers()[0]!.runningMean[0]).not.toBe(1234);
    using plain = eg.sequential({ inputs: 2, seed: 1 }, [dense(2)]);
    expect(plain.getBuffers()).toEqual([]);
    expect(plain.parameters.map((p) => [p.role, p.shape])).toEqual([["kernel", [2, 2]], ["bias", [2]]]);
  });

  it("initializers: constant fills the kernel with its value; lecunUniform stays within √(3/fan_in)", () => {
    using m = eg.sequential({ inputs: 50, seed: 1 }, [dense(3, { init: "constant", value: 0.25 }), dense(40, { init: "lecunUniform" })]);
    const [a, b] = denseLayers(m.getWeights());
    expect(Array.from(a!.kernel).every((v) => v === 0.25)).toBe(true);
    const bound = Math.sqrt(3 / 3);
    expect(Array.from(b!.kernel).every((v) => Math.abs(v) <= bound)).toBe(true);
    expect(Math.max(...Array.from(b!.kernel).map(Math.abs))).toBeGreaterThan(0.8 * bound);
  });

  it("lr: needs compile, is settable between steps, drives the update, and compile resets it", () => {
    using m = eg.sequential({ inputs: 3, seed: 2 }, [dense(2)]);
    expect(thrown(() => m.lr)).toBeInstanceOf(StateError);
    expect(thrown(() => { m.lr = 0.1; })).toBeInstanceOf(StateError);
    m.compile({ loss: "meanSquaredError", optimizer: sgd({ lr: 0.1 }), maxBatch: 4 });
    expect(m.lr).toBe(0.1);
    m.lr = 0.25;
    expect(m.lr).toBe(0.25);
    const xs = new Float32Array([1, 2, 3, -1, 0, 2]);
    const ys = new Float32Array([1, 0, 0, 1]);
    const w0 = denseLayers(m.getWeights())[0]!;
    const g = denseLayers(m.computeGradients(xs, ys).gradients)[0]!;
    m.trainStep(xs, ys);
    const w1 = denseLayers(m.getWeights())[0]!;
    w1.kernel.forEach((v, j) => expect(v).toBeCloseTo(w0.kernel[j]! - 0.25 * g.kernel[j]!, 6));
    m.compile({ loss: "meanSquaredError", optimizer: sgd({ lr: 0.1 }), maxBatch: 4 });
    expect(m.lr).toBe(0.1);
  });

  it("parameter groups: group lr keeps its ratio to model.lr; group weight decay applies per parameter", () => {
    using m = eg.sequential({ inputs: 3, seed: 2 }, [dense(2)]);
    m.compile({
      loss: "meanSquaredError",
      optimizer: sgd({ lr: 0.1, weightDecay: 0.5 }),
      maxBatch: 4,
      paramGroups: [{ filter: (p) => p.role === "bias", lr: 0.3, weightDecay: 0 }],
    });
    m.lr = 0.05; // biases now at 0.15
    const xs = new Float32Array([1, 2, 3, -1, 0, 2]);
    const ys = new Float32Array([1, 0, 0, 1]);
    const w0 = denseLayers(m.getWeights())[0]!;
    m.setWeights([{ kernel: w0.kernel, bias: new Float32Array([0.5, -0.5]) }]);
    const g = denseLayers(m.computeGradients(xs, ys).gradients)[0]!;
    m.trainStep(xs, ys);
    const w1 = denseLayers(m.getWeights())[0]!;
    // kernel: lr 0.05, L2 0.5; bias: lr 0.15, no decay
    w1.kernel.forEach((v, j) => expect(v).toBeCloseTo(w0.kernel[j]! - 0.05 * (g.kernel[j]! + 0.5 * w0.kernel[j]!), 6));
    expect(w1.bias[0]).toBeCloseTo(0.5 - 0.15 * g.bias[0]!, 6);
    expect(w1.bias[1]).toBeCloseTo(-0.5 - 0.15 * g.bias[1]!, 6);
  });

  it("train() and eval() switch the stored mode; use after dispose throws", () => {
    const m = bnModel();
    expect(m.training).toBe(true);
    expect(m.eval().training).toBe(false);
    m.predict(x);
    expect(m.training).toBe(false);
    expect(m.train().training).toBe(true);
    m.dispose();
    for (const fn of [() => m.train(), () => m.eval(), () => m.training, () => m.lr, () => m.lastStepStats(), () => m.getBuffers(), () => { m.lr = 1; }]) {
      expect(thrown(fn)).toBeInstanceOf(DisposedError);
    }
  });

  it("applyGradients: computeGradients + applyGradients is trainStep; averaged gradients apply as given", () => {
    using a = bnModel();
    using b = bnModel();
    a.computeGradients(x, y);
    a.applyGradients();
    b.trainStep(x, y);
    expect(snapshot(a)).toEqual(snapshot(b));
    // gradient accumulation by hand: the mean of two batches' gradients, applied once
    using c = bnModel();
    c.eval(); // deterministic gradients (no dropout masks, running statistics fixed)
    const g1 = c.computeGradients(x.subarray(0, 18), y.subarray(0, 6)).gradients;
    const g2 = c.computeGradients(x.subarray(18), y.subarray(6)).gradients;
    const mean = g1.map((w, l) => {
      const v = g2[l]!;
      if (w.kind === "dense" && v.kind === "dense") return { ...w, kernel: w.kernel.map((k, i) => (k + v.kernel[i]!) / 2), bias: w.bias.map((k, i) => (k + v.bias[i]!) / 2) };
      if (w.kind === "batchNorm" && v.kind === "batchNorm") return { ...w, gamma: w.gamma.map((k, i) => (k + v.gamma[i]!) / 2), beta: w.beta.map((k, i) => (k + v.beta[i]!) / 2) };
      return w;
    });
    c.applyGradients(mean);
    const stats = c.lastStepStats()!;
    const meanNorm = Math.sqrt(arraysOf(mean).reduce((acc, a) => acc + a.reduce((t, v) => t + v * v, 0), 0));
    expect(stats.gradNorm).toBeCloseTo(meanNorm, 5);
    expect(c.step).toBe(1);
  });

  it("applyGradients right after compile, before any gradients were computed, is a StateError (Rust: grads_usable starts true)", () => {
    using m = eg.sequential({ inputs: 2, seed: 4 }, [dense(2)]);
    m.compile({ loss: "meanSquaredError", optimizer: sgd({ lr: 0.1, weightDecay: 0.5 }), maxBatch: 4 });
    const before = bitsOf(arraysOf(m.getWeights()));
    expect(thrown(() => m.applyGradients())).toBeInstanceOf(StateError);
    expect(bitsOf(arraysOf(m.getWeights()))).toEqual(before);
    expect(m.step).toBe(0);
  });

  it("getOptimizerState: torch's state names and first-step values; compile resets it", () => {
    const xs = new Float32Array([1, 2, 3, -1, 0, 2]);
    const ys = new Float32Array([1, 0, 0, 1]);
    const cases = [
      { opt: sgd({ lr: 0.1 }), names: [] },
      { opt: sgd({ lr: 0.1, momentum: 0.9, dampening: 0.5 }), names: ["momentum_buffer"] },
      { opt: adam({ betas: [0.8, 0.9] }), names: ["exp_avg", "exp_avg_sq"] },
      { opt: adamw({ amsgrad: true }), names: ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"] },
      { opt: rmsprop({ centered: true, momentum: 0.5 }), names: ["square_avg", "grad_avg", "momentum_buffer"] },
      { opt: rmsprop(), names: ["square_avg"] },
      { opt: adagrad({ initialAccumulatorValue: 0.25 }), names: ["sum"] },
    ];
    for (const { opt, names } of cases) {
      using m = eg.sequential({ inputs: 3, seed: 2 }, [dense(2)]);
      m.compile({ loss: "meanSquaredError", optimizer: opt, maxBatch: 4 });
      const fresh = m.getOptimizerState();
      expect(fresh.step).toBe(0);
      expect(fresh.state.map((r) => r.name)).toEqual(names);
      const initial = opt.name === "adagrad" ? 0.25 : 0;
      for (const r of fresh.state) expect(arraysOf(r.values).every((a) => a.every((v) => v === initial))).toBe(true);
      const g = arraysOf(m.computeGradients(xs, ys).gradients);
      m.applyGradients();
      const st = m.getOptimizerState();
      expect(st.step).toBe(1);
      const role = (n: string) => arraysOf(st.state.find((r) => r.name === n)!.values);
      const expectEach = (n: string, f: (gv: number) => number) =>
        role(n).forEach((a, i) => a.forEach((v, j) => expect(v).toBeCloseTo(f(g[i]![j]!), 6)));
      // torch's first step: SGD's buffer is g itself (no dampening); Adam's moments (1−β)·g and
      // (1−β2)·g²; RMSprop's averages (1−α)·g², (1−α)·g; Adagrad's sum init + g².
      if (opt.name === "sgd" && names.length) expectEach("momentum_buffer", (v) => v);
      if (opt.name === "adam") {
        expectEach("exp_avg", (v) => 0.2 * v);
        expectEach("exp_avg_sq", (v) => 0.1 * v * v);
      }
      if (opt.name === "adamw") expectEach("max_exp_avg_sq", (v) => 0.001 * v * v);
      if (opt.name === "rmsprop") {
        expectEach("square_avg", (v) => 0.01 * v * v);
        if (names.includes("grad_avg")) expectEach("grad_avg", (v) => 0.01 * v);
      }
      if (opt.name === "adagrad") expectEach("sum", (v) => 0.25 + v * v);
      m.compile({ loss: "meanSquaredError", optimizer: opt, maxBatch: 4 });
      expect(m.getOptimizerState()).toEqual(fresh);
    }
  });

  it("a training step with batchNorm, dropout, AMSGrad and both clippings allocates nothing after the first", () => {
    using m = eg.sequential({ inputs: 16, seed: 1 }, [dense(32, { activation: "relu" }), batchNorm(), dropout(0.3), dense(4)]);
    m.compile({ loss: "softmaxCrossEntropy", optimizer: adam({ amsgrad: true }), maxBatch: 32, clipNorm: 1, clipValue: 0.5 });
    const xs = Float32Array.from({ length: 32 * 16 }, (_, i) => Math.sin(i));
    const ys = Int32Array.from({ length: 32 }, (_, i) => i % 4);
    m.trainStep(xs, ys);
    const before = eg.memory();
    for (let i = 0; i < 200; i++) {
      m.trainStep(xs, ys);
      m.computeGradients(xs, ys);
      m.applyGradients();
    }
    const after = eg.memory();
    expect([after.allocations, after.heapBytes, after.liveBytes]).toEqual([before.allocations, before.heapBytes, before.liveBytes]);
    expect(m.step).toBe(401);
  });

  describe("fit with a schedule", () => {
    it("steps it once per epoch, logs the rate each epoch used, and continues across fit() calls", async () => {
      using m = bnModel();
      m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.1 }), maxBatch: 12 });
      const schedule = stepLR({ stepSize: 2, gamma: 0.5 });
      const seenInCallback: number[] = [];
      const h = await m.fit(x, y, { epochs: 5, batchSize: 6, schedule, onEpochEnd: () => void seenInCallback.push(m.lr) });
      expect(h.lr).toEqual([0.1, 0.1, 0.05, 0.05, 0.025]);
      expect(seenInCallback).toEqual([0.1, 0.05, 0.05, 0.025, 0.025]); // the next epoch's rate
      expect(schedule.epoch).toBe(5);
      expect(m.lr).toBe(0.025);
      const h2 = await m.fit(x, y, { epochs: 2, batchSize: 6, schedule });
      expect(h2.lr).toEqual([0.025, 0.0125]);
      // by hand: the same API
      const s = exponentialLR({ gamma: 0.5 });
      m.lr = s.start(m.lr);
      m.trainStep(x, y);
      m.lr = s.step();
      expect(m.lr).toBe(0.00625);
    });

    it("reduceLROnPlateau is fed valLoss when there is validation data, else the training loss", async () => {
      class Recording extends ReduceLROnPlateau {
        readonly seen: (number | undefined)[] = [];
        override step(metric?: number): number {
          this.seen.push(metric);
          return super.step(metric);
        }
      }
      using m = bnModel();
      const withVal = new Recording({ patience: 0 });
      const h = await m.fit(x, y, { epochs: 3, batchSize: 6, schedule: withVal, validationData: [x.subarray(0, 12), y.subarray(0, 4)] });
      expect(withVal.seen).toEqual(h.valLoss);
      const noVal = new Recording();
      const h2 = await m.fit(x, y, { epochs: 2, batchSize: 6, schedule: noVal });
      expect(noVal.seen).toEqual(h2.loss);
    });
  });
});
