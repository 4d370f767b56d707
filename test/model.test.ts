// The Sequential API end to end against the real wasm: compile errors, every bad argument
// throwing its typed error while leaving the weights bit-identical, training that reduces the
// loss, seeded determinism, predict/evaluate/fit shapes and semantics, and a training step that
// allocates nothing in the wasm heap.
import { readFile } from "node:fs/promises";
import { beforeAll, describe, expect, it } from "vitest";
import { loadAbi } from "../ts/abi.js";
import { arraysOf, bitsOf, denseLayers, modelCreate, thrown, WASM, rng } from "./helpers.js";
import {
  dense,
  DisposedError,
  init,
  InvalidArgumentError,
  NonFiniteError,
  sgd,
  ShapeError,
  StateError,
  type DenseWeights,
  type Edgegrad,
  type LayerWeights,
  type Sequential,
} from "../ts/node.js";


let eg: Edgegrad;
beforeAll(async () => {
  eg = await init(WASM);
});

/** Three Gaussian-ish blobs in 2-D: x (n, 2) and class ids y (n). */
function blobs(n: number, seed: number): { x: Float32Array; y: Int32Array } {
  const r = rng(seed);
  const centers = [[0, 2], [2, -1], [-2, -1]] as const;
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c;
    x[2 * i] = centers[c]![0] + (r() + r() + r() - 1.5) * 0.8;
    x[2 * i + 1] = centers[c]![1] + (r() + r() + r() - 1.5) * 0.8;
  }
  return { x, y };
}

function classifier(seed = 7, maxBatch = 16): Sequential {
  const m = eg.sequential({ inputs: 2, seed }, [dense(8, { activation: "relu" }), dense(3)]);
  m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.1 }), maxBatch });
  return m;
}

/** Bit patterns of every weight, for exact comparison (NaN-safe, -0-safe). */
const bits = (w: LayerWeights[]): number[][] => bitsOf(arraysOf(w));

describe("construction and compile", () => {
  it("reports its structure", () => {
    using m = eg.sequential({ inputs: 4, seed: 1 }, [
      dense(5, { activation: "leakyRelu", alpha: 0.2 }),
      dense(3, { activation: "gelu", init: "xavierNormal" }),
      dense(2),
    ]);
    expect(m.inputs).toBe(4);
    expect(m.outputs).toBe(2);
    expect(m.paramCount).toBe(4 * 5 + 5 + 5 * 3 + 3 + 3 * 2 + 2);
    expect(m.layers.map((l) => [l.inputs, l.units, l.activation])).toEqual([
      [4, 5, "leakyRelu"],
      [5, 3, "gelu"],
      [3, 2, "identity"],
    ]);
    expect(m.layers[0]!.alpha).toBeCloseTo(0.2, 6);
    expect(m.compiled).toBe(false);
    expect(m.step).toBe(0);
    const w = denseLayers(m.getWeights());
    expect(w.map((l) => [l.kernel.length, l.bias.length])).toEqual([[20, 5], [15, 3], [6, 2]]);
    expect(w.every((l) => l.bias.every((b) => b === 0))).toBe(true);
    expect(w[0]!.kernel.some((v) => v !== 0)).toBe(true);
  });

  it("the zeros initializer gives zero kernels", () => {
    using m = eg.sequential({ inputs: 3, seed: 1 }, [dense(2, { init: "zeros" })]);
    expect(Array.from(denseLayers(m.getWeights())[0]!.kernel)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it("needs compile before training or inference", () => {
    using m = eg.sequential({ inputs: 2, seed: 1 }, [dense(3)]);
    const x = new Float32Array(2);
    for (const fn of [
      () => m.trainStep(x, new Int32Array(1)),
      () => m.predict(x),
      () => m.evaluate(x, new Int32Array(1)),
      () => m.computeGradients(x, new Int32Array(1)),
    ]) {
      const e = thrown(fn);
      expect(e).toBeInstanceOf(StateError);
      expect(e.message).toMatch(/not compiled; call compile/);
    }
    return expect(m.fit(x, new Int32Array(1))).rejects.toThrow(StateError);
  });

  it("rejects bad compile options by name and keeps the previous compilation", () => {
    using m = classifier();
    const cases: [unknown, RegExp][] = [
      [null, /^compile\(opts\)/],
      [{ loss: "hinge", optimizer: sgd({ lr: 0.1 }) }, /^compile\(opts\.loss\): unknown value "hinge"/],
      [{ loss: "softmaxCrossEntropy" }, /^compile\(opts\.optimizer\)/],
      [{ loss: "softmaxCrossEntropy", optimizer: { name: "lion", lr: 0.1 } }, /^compile\(opts\.optimizer\.name\): unknown optimizer "lion"/],
      [{ loss: "softmaxCrossEntropy", optimizer: { name: "sgd", lr: NaN } }, /^compile\(opts\.optimizer\.lr\)/],
      [{ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.1 }), maxBatch: 0 }, /^compile\(opts\.maxBatch\)/],
      [{ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.1 }), maxBatch: 2.5 }, /^compile\(opts\.maxBatch\)/],
      [{ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.1 }), maxBatch: 2 ** 21 }, /^compile\(opts\.maxBatch\): must be an integer in 1\.\.1048576/],
    ];
    for (const [opts, msg] of cases) {
      const e = thrown(() => m.compile(opts as never));
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.message).toMatch(msg);
    }
    expect(m.loss).toBe("softmaxCrossEntropy");
    expect(m.maxBatch).toBe(16);
    expect(m.trainStep(new Float32Array([1, 2]), new Int32Array([1]))).toBeGreaterThan(0);
  });

  it("Rust also rejects a non-finite lr and an out-of-range class id", async () => {
    const abi = await loadAbi(await readFile(WASM));
    // One 8-word v2 layer record: dense, 3 units, identity, alpha 0, init auto, p0, p1, 0.
    const spec = abi.alloc(32, "t");
    abi.u32.set([0, 3, 0, 0, 0, 0, 0, 0], spec >>> 2);
    const h = modelCreate(abi, 2, 1, spec, 1, 0, "t");
    abi.free(spec, 32);
    // sgd: [lr, momentum, dampening, weight_decay, nesterov]
    abi.f32.set([NaN, 0, 0, 0, 0], abi.out >>> 2);
    expect(() => abi.call("compile", "eg_model_compile", h, 0, 4, 0, abi.out, 5)).toThrow(/^compile: (sgd\.)?lr: must be finite/);
    abi.f32.set([0.1, 0, 0, 0, 0], abi.out >>> 2);
    abi.call("compile", "eg_model_compile", h, 0, 4, 0, abi.out, 5);
    abi.call("t", "eg_model_info", h, abi.out);
    const [xs, ys] = [abi.outU32(7) >>> 2, abi.outU32(8) >>> 2];
    abi.f32.set([1, 2], xs);
    abi.f32[ys] = 3; // 3 classes: ids 0..2
    expect(() => abi.modelTrainStaged(h, 1, "trainStep")).toThrow(InvalidArgumentError);
    expect(() => abi.modelTrainStaged(h, 1, "trainStep")).toThrow(/label 3 at row 0/);
    abi.f32[ys] = 0.5;
    expect(() => abi.modelTrainStaged(h, 1, "trainStep")).toThrow(/label 0\.5/);
    abi.call("t", "eg_model_free", h);
  });

  it("compile resets the step counter", () => {
    using m = classifier();
    const { x, y } = blobs(8, 1);
    m.trainStep(x, y);
    m.trainStep(x, y);
    expect(m.step).toBe(2);
    m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.05 }), maxBatch: 8 });
    expect(m.step).toBe(0);
    expect(m.maxBatch).toBe(8);
  });
});

describe("bad arguments throw typed errors and change nothing", () => {
  const { x, y } = blobs(12, 2);
  type Case = [string, (m: Sequential, other: Edgegrad) => unknown, abstract new (...a: never[]) => Error, RegExp];
  const cases: Case[] = [
    ["x Float64Array", (m) => m.trainStep(new Float64Array(4) as never, new Int32Array(2)), InvalidArgumentError, /^trainStep\(x\): expected a Float32Array or Tensor, got Float64Array\(4\)/],
    ["x plain array", (m) => m.trainStep([1, 2] as never, new Int32Array(1)), InvalidArgumentError, /^trainStep\(x\)/],
    ["x length not a multiple of inputs", (m) => m.trainStep(new Float32Array(5), new Int32Array(2)), ShapeError, /^trainStep\(x\): length 5 is not a positive multiple of inputs \(2\)/],
    ["x empty", (m) => m.trainStep(new Float32Array(0), new Int32Array(0)), ShapeError, /^trainStep\(x\)/],
    ["batch > maxBatch", (m) => m.trainStep(new Float32Array(2 * 17), new Int32Array(17)), InvalidArgumentError, /^trainStep\(x\): batch of 17 rows exceeds maxBatch \(16\)/],
    ["y Float32Array for cross-entropy", (m) => m.trainStep(x.subarray(0, 4), new Float32Array(2)), InvalidArgumentError, /^trainStep\(y\): softmaxCrossEntropy takes class ids/],
    ["y wrong length", (m) => m.trainStep(x.subarray(0, 4), new Int32Array(3)), ShapeError, /^trainStep\(y\): expected 2 class ids/],
    ["label out of range", (m) => m.trainStep(x.subarray(0, 4), new Int32Array([0, 3])), InvalidArgumentError, /^trainStep\(y\): label 3 at row 1 is not a class id in 0\.\.3/],
    ["negative label", (m) => m.trainStep(x.subarray(0, 4), new Int32Array([-1, 0])), InvalidArgumentError, /^trainStep\(y\): label -1 at row 0/],
    ["huge Uint32 label", (m) => m.trainStep(x.subarray(0, 2), new Uint32Array([2 ** 32 - 1])), InvalidArgumentError, /label 4294967295/],
    ["NaN input (checked in Rust)", (m) => m.trainStep(new Float32Array([1, NaN]), new Int32Array([0])), NonFiniteError, /^trainStep: x: non-finite value at row 0, column 1/],
    ["Infinity input in a later row", (m) => m.trainStep(new Float32Array([1, 2, Infinity, 0]), new Int32Array([0, 1])), NonFiniteError, /row 1, column 0/],
    ["disposed tensor x", (m, o) => { const t = eg.zeros([1, 2]); t.dispose(); void o; return m.trainStep(t, new Int32Array(1)); }, DisposedError, /trainStep\(x\)/],
    ["tensor x from another instance", (m, o) => m.trainStep(o.zeros([1, 2]), new Int32Array(1)), InvalidArgumentError, /^trainStep\(x\): the tensor belongs to another edgegrad instance/],
    ["tensor x with wrong columns", (m) => eg.scope(() => m.trainStep(eg.zeros([1, 3]), new Int32Array(1))), ShapeError, /^trainStep\(x\): tensor has 3 columns/],
    ["tensor y with wrong shape", (m) => eg.scope(() => m.trainStep(eg.zeros([2, 2]), eg.zeros([2, 3]))), ShapeError, /^trainStep\(y\): tensor is 2x3, expected 2x1/],
    ["tensor y with a bad label", (m) => eg.scope(() => m.trainStep(eg.zeros([1, 2]), eg.tensor(new Float32Array([7]), [1, 1]))), InvalidArgumentError, /^trainStep\(y\): label 7/],
    ["computeGradients label", (m) => m.computeGradients(x.subarray(0, 2), new Int32Array([9])), InvalidArgumentError, /^computeGradients\(y\): label 9/],
    ["predict x type", (m) => m.predict(new Int32Array(2) as never), InvalidArgumentError, /^predict\(x\)/],
    ["predict NaN", (m) => m.predict(new Float32Array([NaN, 0])), NonFiniteError, /^predict: x: non-finite/],
    ["evaluate y length", (m) => m.evaluate(x, new Int32Array(11)), ShapeError, /^evaluate\(y\): expected 12 class ids/],
    ["setWeights not an array", (m) => m.setWeights({} as never), InvalidArgumentError, /^setWeights\(weights\)/],
    ["setWeights wrong layer count", (m) => m.setWeights(denseLayers(m.getWeights()).slice(1)), ShapeError, /^setWeights\(weights\): expected 2 layers, got 1/],
    ["setWeights wrong kernel length", (m) => m.setWeights(denseLayers(m.getWeights()).map((w, i) => (i === 1 ? { ...w, kernel: w.kernel.subarray(1) } : w))), ShapeError, /^setWeights\(weights\[1\]\)\.kernel: expected 24 values, got 23/],
    ["setWeights Float64Array bias", (m) => m.setWeights(denseLayers(m.getWeights()).map((w) => ({ ...w, bias: Float64Array.from(w.bias) as never }))), InvalidArgumentError, /^setWeights\(weights\[0\]\)\.bias: expected a Float32Array/],
    ["setWeights NaN", (m) => m.setWeights(denseLayers(m.getWeights()).map((w, i) => { if (i === 1) w.bias[2] = NaN; return w; })), NonFiniteError, /^setWeights\(weights\[1\]\)\.bias: non-finite value NaN at index 2/],
    ["setWeights missing layer object", (m) => m.setWeights([denseLayers(m.getWeights())[0]!, null as never]), InvalidArgumentError, /^setWeights\(weights\[1\]\)/],
  ];

  for (const [name, fn, Cls, msg] of cases) {
    it(name, async () => {
      const other = await init(WASM);
      using m = classifier(11);
      m.trainStep(x.subarray(0, 8), y.subarray(0, 4)); // a step so optimizer state exists
      const before = bits(denseLayers(m.getWeights()));
      const step = m.step;
      const e = thrown(() => fn(m, other));
      expect(e).toBeInstanceOf(Cls);
      expect(e.message).toMatch(msg);
      expect(bits(denseLayers(m.getWeights()))).toEqual(before);
      expect(m.step).toBe(step);
      // the model still trains normally afterwards
      expect(Number.isFinite(m.trainStep(x.subarray(0, 8), y.subarray(0, 4)))).toBe(true);
    });
  }

  it("fit options are validated before any step", async () => {
    using m = classifier(3);
    const before = bits(denseLayers(m.getWeights()));
    const bad: [unknown, RegExp][] = [
      [{ epochs: -1 }, /^fit\(opts\.epochs\)/],
      [{ epochs: 1.5 }, /^fit\(opts\.epochs\)/],
      [{ batchSize: 17 }, /^fit\(opts\.batchSize\): must be an integer in 1\.\.16, got 17/],
      [{ batchSize: 0 }, /^fit\(opts\.batchSize\)/],
      [{ shuffle: "yes" }, /^fit\(opts\.shuffle\)/],
      [{ onEpochEnd: 3 }, /^fit\(opts\.onEpochEnd\)/],
      [{ validationData: [x] }, /^fit\(opts\.validationData\)/],
      [{ validationData: [x, new Int32Array([5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])] }, /^fit\(opts\.validationData\[1\]\): label 5/],
      ["fast", /^fit\(opts\)/],
    ];
    for (const [opts, msg] of bad) {
      await expect(m.fit(x, y, opts as never)).rejects.toThrow(msg);
    }
    await expect(m.fit(x, new Int32Array(12).fill(3))).rejects.toThrow(/^fit\(y\): label 3/);
    await expect(m.fit(new Float32Array(5), y)).rejects.toThrow(ShapeError);
    expect(bits(denseLayers(m.getWeights()))).toEqual(before);
    expect(m.step).toBe(0);
  });
});

describe("training", () => {
  it("trainStep reduces the loss on a small classification problem", () => {
    using m = classifier(7, 30);
    const { x, y } = blobs(30, 3);
    const first = m.trainStep(x, y);
    let last = first;
    for (let i = 0; i < 200; i++) last = m.trainStep(x, y);
    expect(first).toBeGreaterThan(0.5);
    expect(last).toBeLessThan(first * 0.25);
    expect(m.step).toBe(201);
    expect(m.evaluate(x, y).accuracy).toBeGreaterThan(0.9);
  });

  it("trainStep applies p -= lr * grad with the gradients computeGradients reports", () => {
    using m = classifier(5);
    const { x, y } = blobs(6, 4);
    const w0 = denseLayers(m.getWeights());
    const { loss, gradients: raw } = m.computeGradients(x, y);
    const gradients = denseLayers(raw);
    expect(bits(denseLayers(m.getWeights()))).toEqual(bits(w0)); // no update
    expect(m.step).toBe(0);
    expect(gradients.map((g) => [g.kernel.length, g.bias.length])).toEqual(w0.map((w) => [w.kernel.length, w.bias.length]));
    expect(m.trainStep(x, y)).toBe(loss); // same batch, same weights: same loss
    const w1 = denseLayers(m.getWeights());
    w1.forEach((l, i) => {
      l.kernel.forEach((v, j) => expect(v).toBeCloseTo(w0[i]!.kernel[j]! - 0.1 * gradients[i]!.kernel[j]!, 6));
      l.bias.forEach((v, j) => expect(v).toBeCloseTo(w0[i]!.bias[j]! - 0.1 * gradients[i]!.bias[j]!, 6));
    });
  });

  it("the same seed gives identical weights, before and after training; another seed differs", async () => {
    const { x, y } = blobs(48, 5);
    const run = async (seed: number) => {
      using m = classifier(seed);
      const initial = bits(denseLayers(m.getWeights()));
      await m.fit(x, y, { epochs: 3, batchSize: 8 });
      m.trainStep(x.subarray(0, 8), y.subarray(0, 4));
      return { initial, trained: bits(denseLayers(m.getWeights())) };
    };
    const a = await run(42);
    const b = await run(42);
    const c = await run(43);
    expect(b.initial).toEqual(a.initial);
    expect(b.trained).toEqual(a.trained);
    expect(c.initial).not.toEqual(a.initial);
    // even in a separate instance
    const other = await init(WASM);
    using m2 = other.sequential({ inputs: 2, seed: 42 }, [dense(8, { activation: "relu" }), dense(3)]);
    expect(bits(denseLayers(m2.getWeights()))).toEqual(a.initial);
  });

  it("Tensor and Float32Array inputs train identically", () => {
    const { x, y } = blobs(10, 6);
    using a = classifier(9);
    using b = classifier(9);
    eg.scope(() => {
      const xt = eg.tensor(x, [10, 2]);
      const yt = eg.tensor(Float32Array.from(y), [10, 1]);
      for (let i = 0; i < 5; i++) expect(b.trainStep(xt, yt)).toBe(a.trainStep(x, y));
    });
    expect(bits(denseLayers(b.getWeights()))).toEqual(bits(denseLayers(a.getWeights())));
  });

  it("mean squared error and BCE-with-logits train on Float32Array targets", () => {
    const r = rng(8);
    const n = 16;
    const x = Float32Array.from({ length: n * 3 }, () => r() * 2 - 1);
    const reg = Float32Array.from({ length: n * 2 }, (_, i) => x[Math.floor(i / 2) * 3]! * (i % 2 ? 1 : -1));
    const cls = Float32Array.from({ length: n * 2 }, (_, i) => (reg[i]! > 0 ? 1 : 0));
    for (const [loss, target] of [["meanSquaredError", reg], ["binaryCrossEntropyWithLogits", cls]] as const) {
      using m = eg.sequential({ inputs: 3, seed: 2 }, [dense(8, { activation: "tanh" }), dense(2)]);
      m.compile({ loss, optimizer: sgd({ lr: 0.2 }), maxBatch: n });
      const first = m.trainStep(x, target);
      let last = first;
      for (let i = 0; i < 300; i++) last = m.trainStep(x, target);
      expect(last).toBeLessThan(first * 0.5);
      const ev = m.evaluate(x, target);
      expect(ev.loss).toBeCloseTo(m.computeGradients(x, target).loss, 5);
      if (loss === "meanSquaredError") expect(ev.accuracy).toBeNaN();
      else expect(ev.accuracy).toBeGreaterThan(0.8);
      const e = thrown(() => m.trainStep(x, new Int32Array(n * 2) as never));
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.message).toMatch(new RegExp(`^trainStep\\(y\\): ${loss} takes a Float32Array`));
      expect(thrown(() => m.trainStep(x, new Float32Array(n * 2).fill(NaN)))).toBeInstanceOf(NonFiniteError);
    }
  });
});

describe("inference", () => {
  it("predict returns (B, outputs) and chunks by maxBatch consistently", () => {
    using m = classifier(4, 16);
    const { x } = blobs(70, 7); // 70 rows: 4 full chunks of 16 and a tail of 6
    const all = m.predict(x);
    expect(all).toBeInstanceOf(Float32Array);
    expect(all.length).toBe(70 * 3);
    for (const [start, count] of [[0, 1], [15, 2], [64, 6], [33, 16]] as const) {
      const part = m.predict(x.subarray(start * 2, (start + count) * 2));
      part.forEach((v, i) => expect(v).toBeCloseTo(all[start * 3 + i]!, 5));
    }
    using t = eg.tensor(x, [70, 2]);
    m.predict(t).forEach((v, i) => expect(v).toBeCloseTo(all[i]!, 6));
  });

  it("predict matches a forward pass computed from getWeights()", () => {
    using m = eg.sequential({ inputs: 3, seed: 12 }, [dense(4, { activation: "sigmoid" }), dense(2, { activation: "tanh" })]);
    m.compile({ loss: "meanSquaredError", optimizer: sgd({ lr: 0 }), maxBatch: 4 });
    const x = new Float32Array([0.5, -1, 2, 0, 0.25, -0.75]);
    const w = denseLayers(m.getWeights());
    const layer = (inp: number[], l: DenseWeights, act: (z: number) => number, i: number, o: number) =>
      Array.from({ length: o }, (_, j) => act(inp.reduce((s, v, k) => s + v * l.kernel[k * o + j]!, l.bias[j]!)));
    const out = m.predict(x);
    for (let r = 0; r < 2; r++) {
      const h = layer(Array.from(x.subarray(r * 3, r * 3 + 3)), w[0]!, (z) => 1 / (1 + Math.exp(-z)), 3, 4);
      const y = layer(h, w[1]!, Math.tanh, 4, 2);
      y.forEach((v, j) => expect(out[r * 2 + j]).toBeCloseTo(v, 5));
    }
  });

  it("evaluate averages loss over chunks and counts accuracy over all rows", () => {
    using m = classifier(6, 16);
    const { x, y } = blobs(40, 9);
    const ev = m.evaluate(x, y);
    expect(ev.accuracy).toBeGreaterThanOrEqual(0);
    expect(ev.accuracy).toBeLessThanOrEqual(1);
    expect(Number.isInteger(ev.accuracy * 40)).toBe(true);
    // the chunked mean equals the row-weighted mean of per-chunk losses
    let sum = 0;
    for (const [s, c] of [[0, 16], [16, 16], [32, 8]] as const) {
      sum += m.evaluate(x.subarray(s * 2, (s + c) * 2), y.subarray(s, s + c)).loss * c;
    }
    expect(ev.loss).toBeCloseTo(sum / 40, 5);
    // accuracy is argmax == label
    const logits = m.predict(x);
    let correct = 0;
    for (let i = 0; i < 40; i++) {
      const row = Array.from(logits.subarray(i * 3, i * 3 + 3));
      if (row.indexOf(Math.max(...row)) === y[i]) correct++;
    }
    expect(ev.accuracy).toBe(correct / 40);
  });
});

describe("weights", () => {
  it("getWeights returns copies and setWeights round-trips exactly", () => {
    using a = classifier(1);
    using b = classifier(2);
    const w = denseLayers(a.getWeights());
    w[0]!.kernel[0] = 1234;
    expect(denseLayers(a.getWeights())[0]!.kernel[0]).not.toBe(1234);
    b.setWeights(denseLayers(a.getWeights()));
    expect(bits(denseLayers(b.getWeights()))).toEqual(bits(denseLayers(a.getWeights())));
    const { x } = blobs(9, 1);
    expect(Array.from(b.predict(x))).toEqual(Array.from(a.predict(x)));
  });
});

describe("fit", () => {
  it("returns a Keras-like history, reports each epoch and reduces the loss", async () => {
    using m = classifier(21, 16);
    const train = blobs(90, 10);
    const val = blobs(30, 11);
    const seen: number[] = [];
    const h = await m.fit(train.x, train.y, {
      epochs: 8,
      batchSize: 10,
      validationData: [val.x, val.y],
      onEpochEnd: (epoch, logs) => {
        seen.push(epoch);
        expect(Object.keys(logs).sort()).toEqual(["accuracy", "loss", "lr", "valAccuracy", "valLoss"]);
      },
    });
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(h.epoch).toEqual(seen);
    for (const k of ["loss", "accuracy", "valLoss", "valAccuracy"] as const) expect(h[k]).toHaveLength(8);
    expect(h.loss[7]!).toBeLessThan(h.loss[0]! * 0.5);
    expect(h.valAccuracy![7]!).toBeGreaterThan(0.9);
    expect(h.valLoss![7]).toBeCloseTo(m.evaluate(val.x, val.y).loss, 6);
    expect(h.accuracy![7]).toBe(m.evaluate(train.x, train.y).accuracy);
    expect(m.step).toBe(8 * 9);
  });

  it("works with Tensor data, without shuffling, and for MSE (no accuracy)", async () => {
    const r = rng(3);
    const x = Float32Array.from({ length: 40 * 2 }, () => r());
    const t = Float32Array.from({ length: 40 }, (_, i) => x[2 * i]! + x[2 * i + 1]!);
    using m = eg.sequential({ inputs: 2, seed: 1 }, [dense(1)]);
    m.compile({ loss: "meanSquaredError", optimizer: sgd({ lr: 0.2 }), maxBatch: 8 });
    using xt = eg.tensor(x, [40, 2]);
    using tt = eg.tensor(t, [40, 1]);
    const base = eg.memory().liveHandles;
    const h = await m.fit(xt, tt, { epochs: 30, batchSize: 8, shuffle: false });
    expect(eg.memory().liveHandles).toBe(base);
    expect(h.accuracy).toBeUndefined();
    expect(h.valLoss).toBeUndefined();
    expect(h.loss[29]!).toBeLessThan(h.loss[0]! * 0.1);
    expect(xt.disposed).toBe(false);
  });

  it("uploads array data once and frees it afterwards", async () => {
    using m = classifier(2);
    const { x, y } = blobs(30, 12);
    await m.fit(x, y, { epochs: 1 }); // warm-up: the permutation buffer is allocated once
    const before = eg.memory();
    await m.fit(x, y, { epochs: 2, batchSize: 5, accuracy: false });
    const after = eg.memory();
    expect(after.liveHandles).toBe(before.liveHandles);
    expect(after.liveBytes).toBe(before.liveBytes);
  });

  it("yields to the event loop between epochs and refuses a concurrent fit", async () => {
    using m = classifier(3);
    const { x, y } = blobs(12, 13);
    const events: string[] = [];
    setImmediate(() => events.push("macrotask"));
    const running = m.fit(x, y, { epochs: 3, onEpochEnd: (e) => void events.push(`epoch ${e}`) });
    await expect(m.fit(x, y)).rejects.toThrow(StateError);
    expect(() => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 1 }) })).toThrow(/while fit\(\) is running/);
    m.trainStep(x, y); // synchronous steps in between are fine
    await running;
    // the macrotask queued before fit() ran after the first epoch, not after the whole fit
    expect(events).toEqual(["epoch 0", "macrotask", "epoch 1", "epoch 2"]);
    await m.fit(x, y, { epochs: 1 }); // allowed again afterwards
  });

  it("awaits an async onEpochEnd and stops with DisposedError if the model is disposed in it", async () => {
    const m = classifier(4);
    const { x, y } = blobs(12, 14);
    const base = eg.memory().liveHandles;
    let calls = 0;
    const p = m.fit(x, y, {
      epochs: 5,
      onEpochEnd: async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 1));
        m.dispose();
      },
    });
    await expect(p).rejects.toThrow(DisposedError);
    expect(calls).toBe(1);
    expect(eg.memory().liveHandles).toBe(base - 1);
  });
});

describe("lifetime and allocation", () => {
  it("use after dispose throws DisposedError everywhere", () => {
    const m = classifier();
    m.dispose();
    m.dispose();
    expect(m.disposed).toBe(true);
    const x = new Float32Array(2);
    for (const fn of [
      () => m.trainStep(x, new Int32Array(1)),
      () => m.predict(x),
      () => denseLayers(m.getWeights()),
      () => m.setWeights([]),
      () => m.step,
      () => m.handle,
      () => m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 1 }) }),
    ]) {
      expect(fn).toThrow(DisposedError);
    }
  });

  it("1000 training steps: allocation count and heap bytes do not grow after the first step", () => {
    const base = eg.memory();
    {
      using m = eg.sequential({ inputs: 16, seed: 1 }, [dense(32, { activation: "relu" }), dense(32, { activation: "gelu" }), dense(4)]);
      m.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.01 }), maxBatch: 32 });
      const r = rng(1);
      const x = Float32Array.from({ length: 32 * 16 }, () => r() - 0.5);
      const y = Int32Array.from({ length: 32 }, (_, i) => i % 4);
      m.trainStep(x, y);
      const after1 = eg.memory();
      for (let i = 0; i < 1000; i++) m.trainStep(x, y);
      const after1001 = eg.memory();
      expect(after1001.allocations).toBe(after1.allocations);
      expect(after1001.heapBytes).toBe(after1.heapBytes);
      expect(after1001.liveBytes).toBe(after1.liveBytes);
      expect(after1001.liveHandles).toBe(after1.liveHandles);
      expect(m.step).toBe(1001);
    }
    expect(eg.memory().liveHandles).toBe(base.liveHandles);
  });
});
