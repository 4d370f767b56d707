// Property tests (issue 6), fast-check with fixed seeds and run counts so CI is reproducible:
// (a) random architectures, batch sizes, modes and optimizer histories → the WASM gradients
//     match f64 central finite differences of test/reference.ts (the gradcheck.test.ts method);
// (b) random sequences of create / compile / trainStep / fit / save / load / tensor / dispose
//     operations → every failure is a typed EdgegradError, nothing traps, and once everything is
//     disposed eg.memory() live handles and live bytes are back at the baseline.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  adagrad,
  adam,
  adamw,
  batchNorm,
  dense,
  EdgegradError,
  init,
  rmsprop,
  sgd,
  type Edgegrad,
  type LayerSpec,
  type OptimizerSpec,
  type Sequential,
  type Tensor,
} from "../ts/node.js";
import { arraysOf, normal, rng, WASM } from "./helpers.js";
import {
  ACTIVATIONS,
  LOSSES,
  activate,
  batchMoments,
  denseForward,
  finiteDifferences,
  minKinkDistance,
  referenceLoss,
  referenceParams,
  type Activation,
  type LossName,
  type RefAnyLayer,
  type RefMode,
  type RefNet,
} from "./reference.js";

let eg: Edgegrad;
beforeAll(async () => {
  eg = await init(WASM);
});

// ---- (a) gradient checks ----

// Tolerances as in gradcheck.test.ts / batchnorm.test.ts (see the measurements there):
// |wasm − fd| / max(|wasm|, |fd|, 1e-4) <= 1e-3, h = 1e-5 in f64, kinks kept >= 1e-3 away.
const H = 1e-5;
const GRAD_RTOL = 1e-3;
const GRAD_FLOOR = 1e-4;
const KINK_MARGIN = 1e-3;
// In training mode the bias of an identity dense layer feeding batchNorm has gradient exactly 0;
// both sides report rounding residues there (batchnorm.test.ts measured up to 6.6e-7), so those
// entries are compared absolutely: |wasm − fd| <= 1e-5.
const ZERO_GRAD_ATOL = 1e-5;

interface PlanLayer {
  kind: "dense" | "batchNorm";
  units: number;
  activation: Activation;
  alpha: number;
}

interface GradPlan {
  inputs: number;
  loss: LossName;
  layers: PlanLayer[];
  batch: number;
  mode: RefMode;
  optimizer: OptimizerSpec;
  /** Training steps taken before the check, so weights, moments and running statistics move. */
  warmSteps: number;
  seed: number;
}

const activation = fc.constantFrom(...ACTIVATIONS);
const alpha = fc.constantFrom(0.01, 0.1, 0.3);
const width = fc.integer({ min: 1, max: 9 });
const lr = fc.double({ min: 1e-4, max: 0.05, noNaN: true });
const optimizer: fc.Arbitrary<OptimizerSpec> = fc.oneof(
  fc.record({ lr, momentum: fc.constantFrom(0, 0.5, 0.9), weightDecay: fc.constantFrom(0, 1e-3) }).map((o) => sgd(o)),
  fc.record({ lr, amsgrad: fc.boolean() }).map((o) => adam(o)),
  fc.record({ lr, weightDecay: fc.constantFrom(0, 1e-2) }).map((o) => adamw(o)),
  fc.record({ lr, centered: fc.boolean(), momentum: fc.constantFrom(0, 0.5) }).map((o) => rmsprop(o)),
  fc.record({ lr }).map((o) => adagrad(o)),
);

/** 1–3 dense layers of width 1–9, each optionally followed by batchNorm; batch 1–9 (>= 3 for batchNorm in train mode). */
const gradPlan: fc.Arbitrary<GradPlan> = fc
  .record({
    inputs: width,
    loss: fc.constantFrom(...LOSSES),
    dense: fc.array(fc.record({ units: width, activation, alpha, bn: fc.boolean(), bnActivation: activation }), { minLength: 1, maxLength: 3 }),
    batch: fc.integer({ min: 1, max: 9 }),
    mode: fc.constantFrom<RefMode>("train", "eval"),
    optimizer,
    warmSteps: fc.integer({ min: 0, max: 2 }),
    seed: fc.integer({ min: 1, max: 0x7fffffff }),
  })
  .map((r): GradPlan => {
    const layers: PlanLayer[] = r.dense.flatMap((d) => {
      const out: PlanLayer[] = [{ kind: "dense", units: d.units, activation: d.activation, alpha: d.alpha }];
      if (d.bn) out.push({ kind: "batchNorm", units: d.units, activation: d.bnActivation, alpha: d.alpha });
      return out;
    });
    const hasBn = layers.some((l) => l.kind === "batchNorm");
    // B = 2 in training mode is a degenerate batch norm: x̂ = ±√(σ²/(σ² + eps)), so everything below
    // it gets eps-level gradients that f32 rounding swamps (measured: fd 0 vs f32 2.1e-5 on a bias
    // whose two rows nearly coincide). batchnorm.test.ts checks B = 2 with eps raised to 0.05.
    const batch = hasBn && r.mode === "train" ? Math.max(3, r.batch) : r.batch;
    // Softmax over a single class is identically 0; keep >= 2 outputs so the check means something.
    const last = layers[layers.length - 1]!;
    if (r.loss === "softmaxCrossEntropy" && last.units < 2) {
      for (const l of layers.slice(layers.map((x) => x.kind).lastIndexOf("dense"))) l.units = 2;
    }
    return { ...r, layers, batch };
  });

function specsOf(p: GradPlan): LayerSpec[] {
  return p.layers.map((l) =>
    l.kind === "dense" ? dense(l.units, { activation: l.activation, alpha: l.alpha }) : batchNorm({ activation: l.activation, alpha: l.alpha }),
  );
}

/** The f64 twin holding exactly the model's parameters and running statistics. */
function referenceOf(p: GradPlan, model: Sequential): RefNet {
  const weights = model.getWeights();
  const buffers = model.getBuffers();
  const layers = p.layers.map((l, i): RefAnyLayer => {
    const w = weights[i]!;
    if (w.kind === "dense") return { activation: l.activation, alpha: l.alpha, kernel: Float64Array.from(w.kernel), bias: Float64Array.from(w.bias) };
    if (w.kind === "batchNorm") {
      const b = buffers.find((x) => x.layer === i)!;
      return {
        kind: "batchNorm", activation: l.activation, alpha: l.alpha, gamma: Float64Array.from(w.gamma), beta: Float64Array.from(w.beta),
        eps: Math.fround(1e-5), momentum: 0.1, runningMean: Float64Array.from(b.runningMean), runningVar: Float64Array.from(b.runningVar),
      };
    }
    throw new Error(`layer ${i}: unexpected kind ${w.kind}`);
  });
  return { inputs: p.inputs, layers };
}

function targetsFor(p: GradPlan, r: () => number): Float32Array | Int32Array {
  const outputs = p.layers[p.layers.length - 1]!.units;
  if (p.loss === "softmaxCrossEntropy") return Int32Array.from({ length: p.batch }, () => Math.floor(r() * outputs));
  if (p.loss === "meanSquaredError") return Float32Array.from({ length: p.batch * outputs }, () => normal(r));
  return Float32Array.from({ length: p.batch * outputs }, () => r());
}

// In training mode batchNorm divides by the batch σ; when a feature's rows nearly coincide
// (σ² ~ 1e-5, e.g. three saturated sigmoids), f32 loses ~(|x|/σ)²·2⁻²⁴ of relative precision
// in everything below it (measured: 1% error on a bias, a conditioning effect, not a bug). Draws
// are redone until every batch-norm input feature has σ² >= 1e-3, where that loss is < 1e-4.
const MIN_BN_VARIANCE = 1e-3;

/** Smallest batch variance over the input features of the batchNorm layers (Infinity in eval mode or without batchNorm). */
function minBatchVariance(net: RefNet, x: Float32Array, batch: number, mode: RefMode): number {
  if (mode !== "train") return Infinity;
  const { preActivations } = denseForward(net, x, batch, mode);
  let min = Infinity;
  net.layers.forEach((layer, l) => {
    if (layer.kind !== "batchNorm") return;
    const below = net.layers[l - 1];
    const input = l === 0 ? x : preActivations[l - 1]!.map((z) => (below && below.kind !== "dropout" ? activate(below.activation, below.alpha, z) : z));
    for (const v of batchMoments(input, batch, layer.gamma.length).variance) min = Math.min(min, v);
  });
  return min;
}

/** Mismatch messages (empty when the gradients agree), or null when no kink-free draw exists. */
function checkPlan(p: GradPlan): string[] | null {
  const r = rng(p.seed);
  const model = eg.sequential({ inputs: p.inputs, seed: p.seed }, specsOf(p));
  try {
    model.compile({ loss: p.loss, optimizer: p.optimizer, maxBatch: 9 });
    if (p.mode === "eval") model.eval();
    // Warm-up steps on the same shapes move the weights, optimizer state and running statistics.
    for (let s = 0; s < p.warmSteps; s++) {
      model.trainStep(Float32Array.from({ length: p.batch * p.inputs }, () => normal(r)), targetsFor(p, r));
    }
    const net = referenceOf(p, model);
    let x = new Float32Array(0);
    for (let attempt = 0; ; attempt++) {
      if (attempt === 100) return null;
      x = Float32Array.from({ length: p.batch * p.inputs }, () => normal(r));
      if (minKinkDistance(net, x, p.batch, p.mode) >= KINK_MARGIN && minBatchVariance(net, x, p.batch, p.mode) >= MIN_BN_VARIANCE) break;
    }
    const y = targetsFor(p, r);
    const { loss, gradients } = model.computeGradients(x, y);
    const lossOf = () => referenceLoss(net, p.loss, x, y, p.batch, p.mode);
    const refLoss = lossOf();
    const out: string[] = [];
    if (!(Math.abs(loss - refLoss) <= 1e-4 * Math.max(Math.abs(refLoss), 1e-3))) out.push(`loss: reference ${refLoss}, wasm ${loss}`);
    const { params, names } = referenceParams(net);
    const fd = finiteDifferences(params, lossOf, H);
    const wasm = arraysOf(gradients);
    if (wasm.length !== fd.length) return [`${wasm.length} gradient arrays, expected ${fd.length}`];
    const zeroBias = new Set(
      p.layers.flatMap((l, i) =>
        p.mode === "train" && l.kind === "dense" && l.activation === "identity" && p.layers[i + 1]?.kind === "batchNorm" ? [`layer ${i} bias`] : [],
      ),
    );
    // Below a batchNorm in training mode the loss is invariant to shifting and scaling each unit,
    // so gradients there are small differences of larger terms: with fan-in 1, an identity
    // dense → batchNorm kernel's gradient is 0 but for eps (measured 4.52e-5 fd vs 4.49e-5 f32,
    // diff 2.7e-7); a sigmoid dense under three stacked batchNorms at B = 3 gave -2.514e-4 fd vs
    // -2.502e-4 f32 (diff 1.2e-6, where the terms summed are ~1e-2). Parameters up to the last
    // batchNorm therefore pass on an absolute difference <= 1e-5 as well as on the relative check
    // (batchnorm.test.ts picks shapes that avoid these cases and keeps the tight bound).
    const lastBn = p.mode === "train" ? p.layers.map((l) => l.kind).lastIndexOf("batchNorm") : -1;
    const floorAbs = 1e-5;
    const belowBn = new Set(
      p.layers.flatMap((l, i) => (i <= lastBn ? (l.kind === "dense" ? [`layer ${i} kernel`, `layer ${i} bias`] : [`layer ${i} gamma`, `layer ${i} beta`]) : [])),
    );
    fd.forEach((expected, k) => {
      expected.forEach((e, j) => {
        const a = wasm[k]![j]!;
        const ok = zeroBias.has(names[k]!)
          ? Math.abs(a - e) <= ZERO_GRAD_ATOL
          : Math.abs(a - e) / Math.max(Math.abs(a), Math.abs(e), GRAD_FLOOR) <= GRAD_RTOL || (belowBn.has(names[k]!) && Math.abs(a - e) <= floorAbs);
        if (!ok) out.push(`${names[k]}[${j}]: finite difference ${e}, wasm ${a}`);
      });
    });
    return out;
  } finally {
    model.dispose();
  }
}

describe("property: gradients of random networks match f64 finite differences", () => {
  // Both batchNorm modes are checked: the reference has batch statistics ("train") and running
  // statistics ("eval"); dense-only networks are the same in both. No dropout (the reference has no masks).
  it("random architectures, activations, batch sizes, modes and optimizer histories", () => {
    fc.assert(
      fc.property(gradPlan, (p) => {
        const mismatches = checkPlan(p);
        fc.pre(mismatches !== null); // no kink-free, well-conditioned input in 100 draws
        expect(mismatches!.slice(0, 10).join("\n")).toBe("");
      }),
      { seed: 0x6a1d, numRuns: 300 },
    );
  });
});

// ---- (b) random operation sequences ----

type Op =
  | { op: "create"; units: number[]; bn: boolean; seed: number; optimizer: OptimizerSpec | null }
  | { op: "compile"; pick: number; optimizer: OptimizerSpec; maxBatch: number }
  | { op: "trainStep"; pick: number; rows: number; nan: boolean }
  | { op: "fit"; pick: number; rows: number; batchSize: number; epochs: number }
  | { op: "save"; pick: number }
  | { op: "load"; pick: number; into: boolean; corrupt: boolean }
  | { op: "tensor"; rows: number; cols: number }
  | { op: "disposeTensor"; pick: number }
  | { op: "dispose"; pick: number };

const INPUTS = 3;
const pick = fc.nat(20);
const rarely = fc.integer({ min: 0, max: 5 }).map((v) => v === 0); // true 1 time in 6
// Weighted so that most sequences get compiled models and valid batches: the interesting part
// is the traffic between successes and the occasional failure, not a stream of rejections.
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ op: fc.constant("create" as const), units: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 3 }), bn: rarely, seed: fc.nat(1000), optimizer: fc.option(optimizer, { freq: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("compile" as const), pick, optimizer, maxBatch: fc.integer({ min: 4, max: 16 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("trainStep" as const), pick, rows: fc.integer({ min: 0, max: 12 }), nan: rarely }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("fit" as const), pick, rows: fc.integer({ min: 0, max: 24 }), batchSize: fc.integer({ min: 0, max: 6 }), epochs: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("save" as const), pick }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("load" as const), pick, into: fc.boolean(), corrupt: rarely }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("tensor" as const), rows: fc.integer({ min: 0, max: 5 }), cols: fc.integer({ min: 0, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("disposeTensor" as const), pick }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("dispose" as const), pick }) },
);

/** Successful calls per operation over all sequences, to prove the sequences do real work. */
const succeeded = new Map<string, number>();

/** Runs one sequence; models and tensors are picked by index (disposed ones stay picked on purpose). */
async function runOps(ops: Op[]): Promise<void> {
  const models: Sequential[] = [];
  const tensors: Tensor[] = [];
  const saves: Uint8Array[] = [];
  const r = rng(ops.length);
  let noop = false; // the op had nothing to act on (empty list): not counted as a success
  const at = <T>(list: T[], i: number): T | undefined => {
    if (list.length === 0) noop = true;
    return list.length === 0 ? undefined : list[i % list.length];
  };
  const data = (rows: number, nan: boolean) => {
    const x = Float32Array.from({ length: rows * INPUTS }, () => r() * 2 - 1);
    if (nan && x.length > 0) x[x.length - 1] = NaN;
    return { x, y: Float32Array.from({ length: rows * 2 }, () => r()) };
  };
  try {
    for (const o of ops) {
      noop = false;
      try {
        switch (o.op) {
          case "create": {
            const m = eg.sequential({ inputs: INPUTS, seed: o.seed }, [
              ...o.units.map((u) => dense(u, { activation: "tanh" })),
              ...(o.bn ? [batchNorm()] : []),
              dense(2),
            ]);
            models.push(m);
            // Mostly compiled at once (null 1 time in 5), so later picks find trainable models.
            if (o.optimizer) m.compile({ loss: "meanSquaredError", optimizer: o.optimizer, maxBatch: 12 });
            break;
          }
          case "compile":
            at(models, o.pick)?.compile({ loss: "meanSquaredError", optimizer: o.optimizer, maxBatch: o.maxBatch });
            break;
          case "trainStep": {
            const { x, y } = data(o.rows, o.nan);
            at(models, o.pick)?.trainStep(x, y);
            break;
          }
          case "fit": {
            const { x, y } = data(o.rows, false);
            await at(models, o.pick)?.fit(x, y, { batchSize: o.batchSize, epochs: o.epochs, accuracy: false });
            break;
          }
          case "save": {
            const m = at(models, o.pick);
            if (m) saves.push(m.save());
            break;
          }
          case "load": {
            let bytes = at(saves, o.pick);
            if (!bytes) break;
            if (o.corrupt) {
              bytes = bytes.slice();
              bytes[(o.pick * 7919) % bytes.length]! ^= 0x10;
            }
            const m = o.into ? at(models, o.pick) : undefined;
            if (m) m.load(bytes);
            else {
              noop = false; // loads into a new model instead
              models.push(eg.load(bytes));
            }
            break;
          }
          case "tensor":
            tensors.push(eg.tensor(new Float32Array(o.rows * o.cols), [o.rows, o.cols]));
            break;
          case "disposeTensor":
            at(tensors, o.pick)?.dispose();
            break;
          case "dispose":
            at(models, o.pick)?.dispose();
            break;
        }
        if (!noop) succeeded.set(o.op, (succeeded.get(o.op) ?? 0) + 1);
      } catch (e) {
        // Any failure must be typed; a trap (WebAssembly.RuntimeError) or a TypeError fails here.
        if (!(e instanceof EdgegradError)) throw e;
      }
    }
  } finally {
    for (const m of models) m.dispose();
    for (const t of tensors) t.dispose();
  }
}

// crates/wasm keeps the last error message in a String that is cleared, not shrunk, so its
// capacity (a few hundred bytes at most) stays allocated after the longest message seen. Live
// bytes may therefore grow by at most this much per sequence, and over all 1,000 sequences
// together: a leak that recurs would exceed it long before the end.
const LAST_ERROR_SLACK = 512;

describe("property: random operation sequences", () => {
  it("only typed errors, no traps, and live handles and bytes return to the baseline", async () => {
    const before = eg.memory();
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 30, size: "max" }), async (ops) => {
        const base = eg.memory();
        await runOps(ops);
        const after = eg.memory();
        expect(after.liveHandles).toBe(base.liveHandles);
        expect(after.liveBytes - base.liveBytes).toBeGreaterThanOrEqual(0);
        expect(after.liveBytes - base.liveBytes).toBeLessThanOrEqual(LAST_ERROR_SLACK);
      }),
      { seed: 0x5e9, numRuns: 1000 },
    );
    const after = eg.memory();
    expect([after.liveHandles, after.leaked]).toEqual([before.liveHandles, before.leaked]);
    if (process.env.EDGEGRAD_PROPERTY_STATS === "1") console.log(Object.fromEntries(succeeded));
    for (const op of ["create", "compile", "trainStep", "fit", "save", "load", "tensor"]) expect(succeeded.get(op) ?? 0, op).toBeGreaterThan(200);
    expect(after.liveBytes - before.liveBytes).toBeLessThanOrEqual(LAST_ERROR_SLACK);
  });
});
