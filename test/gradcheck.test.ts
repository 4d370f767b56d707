// Gradient check: edgegrad's WASM gradients (f32) against central finite differences of the
// f64 reference loss in test/reference.ts, for every parameter of random small dense networks
// covering every activation (at the output layer and inside), every loss, batch sizes 1..17 and
// odd widths. The oracle itself is first checked against PyTorch's fixture.
import { beforeAll, describe, expect, it } from "vitest";
import { dense, init, sgd, type Edgegrad } from "../ts/node.js";
import { architectureOf, loadDenseMlpFixture } from "./fixtures/dense_mlp.js";
import { denseLayers, normal, rng } from "./helpers.js";
import {
  ACTIVATIONS,
  LOSSES,
  finiteDifferences,
  minKinkDistance,
  referenceLoss,
  referenceParams,
  type Activation,
  type LossName,
  type RefNet,
} from "./reference.js";

// Step of the central differences, in f64. Truncation error is h²/6·|L'''| ~ 1e-11 and
// cancellation error ~ 2⁻⁵²·|L|/h ~ 1e-11, so the finite differences are exact to ~1e-10:
// all of the tolerance below is spent on the f32 arithmetic of the WASM side.
const H = 1e-5;

// |wasm - fd| / max(|wasm|, |fd|, GRAD_FLOOR) <= GRAD_RTOL.
// WASM computes in f32: each gradient entry is a sum over the batch and downstream units of
// products of O(1) values, so its rounding error is ~n·2⁻²⁴·Σ|terms|, ~1e-7 absolute for the
// small networks, i.e. ~1e-5 relative for gradients ~1e-2. A gradient that nearly cancels has no
// meaningful relative precision in f32, so below GRAD_FLOOR = 1e-4 the check becomes absolute:
// |diff| <= 1e-7, that rounding bound. Measured on the kernels as written: worst 1e-4 relative
// (the 17 -> 33 -> 16 -> 5 network), 5e-5 among the small ones, so 1e-3 leaves a 10x margin;
// real bugs give far more (checked by mutation: GELU's derivative with its z·φ(z) term scaled by
// 0.99 fails all 11 networks with a GELU; leakyRelu hard-wired to slope 0.01 fails the 5 with
// another alpha).
const GRAD_RTOL = 1e-3;
const GRAD_FLOOR = 1e-4;

// relu and leakyRelu have a kink at z = 0, where the finite difference straddles two slopes and
// means nothing. A perturbation of h moves any pre-activation by at most h·|∂z/∂θ| ~ 1e-5·O(1),
// and f32 vs f64 forward passes differ by ~1e-6, so inputs (and biases) are redrawn until every
// relu/leakyRelu pre-activation is at least KINK_MARGIN = 1e-3 away from 0: two orders of margin
// for both effects. With O(1) values redraws are rare (one of the 40 networks needs one).
const KINK_MARGIN = 1e-3;

const WIDTHS = [1, 3, 5, 7];
const MAX_BATCH = 17;

/** The helpers' seeded PRNG with the draws the cases need, so every network and batch is reproducible from its id. */
class Rng {
  /** Uniform in [0, 1). */
  readonly next: () => number;
  constructor(seed: number) {
    this.next = rng(seed);
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  /** Standard normal. */
  normal(): number {
    return normal(this.next);
  }
}

interface LayerPlan {
  units: number;
  activation: Activation;
  alpha: number;
}

interface GradCase {
  id: number;
  loss: LossName;
  inputs: number;
  layers: LayerPlan[];
  batch: number;
}

/**
 * Two networks for each (loss, activation): the first with that activation on the output layer,
 * the second at a random depth; other layers get random activations. Depth 1..3, widths from
 * WIDTHS (CE gets >= 3 classes; one extra case covers the degenerate single class), and batch
 * sizes cycling through 1..17 so every size is hit twice; then a few wide shapes.
 */
function planCases(): GradCase[] {
  const cases: GradCase[] = [];
  const add = (loss: LossName, focus: Activation, focusAtOutput: boolean, outputWidths: number[]) => {
    const id = cases.length;
    const rng = new Rng(0x5eed0000 + id);
    const depth = 1 + rng.int(3);
    const focusAt = focusAtOutput ? depth - 1 : rng.int(depth);
    const layers = Array.from({ length: depth }, (_, l): LayerPlan => {
      const activation = l === focusAt ? focus : rng.pick(ACTIVATIONS);
      return {
        units: l === depth - 1 ? rng.pick(outputWidths) : rng.pick(WIDTHS),
        activation,
        // Several slopes, so a leakyRelu that ignored alpha (or hard-coded 0.01) is caught.
        alpha: activation === "leakyRelu" ? rng.pick([0.01, 0.1, 0.3]) : 0.01,
      };
    });
    cases.push({ id, loss, inputs: rng.pick(WIDTHS), layers, batch: (id % MAX_BATCH) + 1 });
  };
  for (const loss of LOSSES) {
    const outputWidths = loss === "softmaxCrossEntropy" ? [3, 5, 7] : WIDTHS;
    for (const activation of ACTIVATIONS) {
      add(loss, activation, true, outputWidths);
      add(loss, activation, false, outputWidths);
    }
  }
  add("softmaxCrossEntropy", "identity", true, [1]); // one class: loss 0, all gradients 0

  // The widths above stay inside one GEMM micro-tile, so only the kernels' tail paths run. These
  // shapes reach the full tiles and the cache blocks of crates/kernels/src/gemm.rs (16 columns per
  // micro-tile, K blocks of 256, M blocks of 120 when written), in each of the forward (M=B,
  // N=O, K=I), dW (M=I, N=O, K=B) and dX (M=B, N=I, K=O) products.
  const wide = (loss: LossName, inputs: number, batch: number, layers: LayerPlan[]) =>
    cases.push({ id: cases.length, loss, inputs, layers, batch });
  wide("meanSquaredError", 17, 17, [
    { units: 33, activation: "tanh", alpha: 0.01 },
    { units: 16, activation: "relu", alpha: 0.01 },
    { units: 5, activation: "identity", alpha: 0.01 },
  ]);
  wide("softmaxCrossEntropy", 257, 6, [
    { units: 3, activation: "gelu", alpha: 0.01 },
    { units: 17, activation: "leakyRelu", alpha: 0.2 },
  ]);
  wide("binaryCrossEntropyWithLogits", 5, 261, [
    { units: 20, activation: "sigmoid", alpha: 0.01 },
    { units: 7, activation: "identity", alpha: 0.01 },
  ]);
  return cases;
}

function describeCase(c: GradCase): string {
  const layers = c.layers
    .map((l) => `${l.units}${l.activation === "leakyRelu" ? `:leakyRelu(${l.alpha})` : `:${l.activation}`}`)
    .join(" -> ");
  return `#${c.id} ${c.loss} B=${c.batch} ${c.inputs} -> ${layers}`;
}

/** Mismatches between WASM gradients and finite differences, named by layer/param/index. */
function compareGradients(
  names: string[],
  fd: Float64Array[],
  wasm: ArrayLike<number>[],
): { mismatches: string[]; worst: number } {
  const mismatches: string[] = [];
  let worst = 0;
  fd.forEach((expected, p) => {
    const actual = wasm[p]!;
    if (actual.length !== expected.length) {
      mismatches.push(`${names[p]}: length ${actual.length}, expected ${expected.length}`);
      return;
    }
    for (let k = 0; k < expected.length; k++) {
      const e = expected[k]!;
      const a = actual[k]!;
      const rel = Math.abs(a - e) / Math.max(Math.abs(a), Math.abs(e), GRAD_FLOOR);
      worst = Math.max(worst, Number.isNaN(rel) ? Infinity : rel);
      if (!(rel <= GRAD_RTOL)) {
        mismatches.push(`${names[p]}[${k}]: finite difference ${e}, wasm ${a} (rel err ${rel.toExponential(2)})`);
      }
    }
  });
  return { mismatches, worst };
}

function expectNoMismatches(header: string, mismatches: string[]): void {
  const shown = mismatches.slice(0, 30);
  if (mismatches.length > shown.length) shown.push(`... and ${mismatches.length - shown.length} more`);
  expect(mismatches.length === 0 ? "" : `${header}\n${shown.join("\n")}`).toBe("");
}

describe("reference.ts (the gradcheck oracle) agrees with PyTorch", () => {
  const fixture = loadDenseMlpFixture();
  for (const c of fixture.cases) {
    it(`${c.architecture} / ${c.loss}: loss and finite-difference gradients`, () => {
      const arch = architectureOf(fixture, c);
      const net: RefNet = {
        inputs: arch.inputs,
        layers: arch.layers.map((l, i) => ({
          activation: l.activation,
          alpha: l.alpha ?? 0.01,
          kernel: Float64Array.from(arch.initialWeights[i]!.kernel),
          bias: Float64Array.from(arch.initialWeights[i]!.bias),
        })),
      };
      const x = arch.batches[0]!;
      const target = c.targets[0]!;
      const batch = x.length / arch.inputs;
      const lossOf = () => referenceLoss(net, c.loss, x, target, batch);
      // PyTorch's loss is f32: ~1e-6 relative.
      expect(Math.abs(lossOf() - c.lossValue)).toBeLessThanOrEqual(1e-5 * Math.abs(c.lossValue));
      const { params, names } = referenceParams(net);
      const fd = finiteDifferences(params, lossOf, H);
      const torch = c.gradients.flatMap((g) => [g.kernel, g.bias]);
      const { mismatches } = compareGradients(names, fd, torch);
      expectNoMismatches(`${c.architecture} / ${c.loss}`, mismatches);
    });
  }
});

const cases = planCases();

it("the plan covers every activation at every position, every loss and batch sizes 1..17", () => {
  for (const loss of LOSSES) {
    for (const activation of ACTIVATIONS) {
      const mine = cases.filter((c) => c.loss === loss);
      expect(mine.some((c) => c.layers[c.layers.length - 1]!.activation === activation)).toBe(true);
    }
  }
  for (const activation of ACTIVATIONS) {
    expect(cases.some((c) => c.layers.slice(0, -1).some((l) => l.activation === activation))).toBe(true);
  }
  const batches = new Set(cases.map((c) => c.batch));
  for (let b = 1; b <= MAX_BATCH; b++) expect(batches.has(b), `batch size ${b}`).toBe(true);
  expect(cases.some((c) => c.layers.length === 3)).toBe(true);
});

/** The f64 twin of a planned network holding the given f32 weights. */
function refNetOf(c: GradCase, weights: { kernel: ArrayLike<number>; bias: ArrayLike<number> }[]): RefNet {
  return {
    inputs: c.inputs,
    layers: c.layers.map((l, i) => ({
      activation: l.activation,
      alpha: l.alpha,
      kernel: Float64Array.from(weights[i]!.kernel),
      bias: Float64Array.from(weights[i]!.bias),
    })),
  };
}

describe("WASM gradients vs f64 finite differences", () => {
  let eg: Edgegrad;
  beforeAll(async () => {
    eg = await init();
  });

  for (const c of cases) {
    it(describeCase(c), () => {
      const rng = new Rng(0xc0ffee00 + c.id);
      const model = eg.sequential(
        { inputs: c.inputs, seed: 1000 + c.id },
        c.layers.map((l) => dense(l.units, { activation: l.activation, alpha: l.alpha })),
      );
      try {
        model.compile({ loss: c.loss, optimizer: sgd({ lr: 0.1 }), maxBatch: Math.max(MAX_BATCH, c.batch) });
        // The model's own initial kernels; biases start at 0, so give them random values to
        // exercise the bias path, drawn together with x until no kink is near (see KINK_MARGIN).
        const kernels = denseLayers(model.getWeights()).map((w) => w.kernel);
        let biases: Float32Array[] = [];
        let x = new Float32Array(0);
        for (let attempt = 0; ; attempt++) {
          if (attempt === 200) throw new Error(`${describeCase(c)}: no kink-free draw in 200 attempts`);
          biases = c.layers.map((l) => Float32Array.from({ length: l.units }, () => rng.uniform(-0.5, 0.5)));
          x = Float32Array.from({ length: c.batch * c.inputs }, () => rng.normal());
          const candidate = refNetOf(c, kernels.map((kernel, i) => ({ kernel, bias: biases[i]! })));
          if (minKinkDistance(candidate, x, c.batch) >= KINK_MARGIN) break;
        }
        model.setWeights(kernels.map((kernel, i) => ({ kernel, bias: biases[i]! })));

        // Take back what the model now holds (its weights are the point of comparison).
        const held = denseLayers(model.getWeights());
        const net = refNetOf(c, held);
        held.forEach((w, i) => expect(w.bias).toEqual(biases[i]));

        const outputs = c.layers[c.layers.length - 1]!.units;
        const y =
          c.loss === "softmaxCrossEntropy"
            ? Int32Array.from({ length: c.batch }, () => rng.int(outputs))
            : c.loss === "meanSquaredError"
              ? Float32Array.from({ length: c.batch * outputs }, () => rng.normal())
              : Float32Array.from({ length: c.batch * outputs }, () => rng.next()); // soft targets in [0,1)

        const { loss, gradients } = model.computeGradients(x, y);
        const lossOf = () => referenceLoss(net, c.loss, x, y, c.batch);
        const refLoss = lossOf();
        // f32 forward pass vs f64: ~1e-6 relative; the floor covers a loss that is ~0
        // (one-class CE is exactly 0).
        expect(Math.abs(loss - refLoss), `loss: reference ${refLoss}, wasm ${loss}`).toBeLessThanOrEqual(
          1e-4 * Math.max(Math.abs(refLoss), 1e-3),
        );

        const { params, names } = referenceParams(net);
        const fd = finiteDifferences(params, lossOf, H);
        const wasm = denseLayers(gradients).flatMap((g) => [g.kernel, g.bias]);
        expect(wasm.length).toBe(params.length);
        const { mismatches } = compareGradients(names, fd, wasm);
        expectNoMismatches(describeCase(c), mismatches);
      } finally {
        model.dispose();
      }
    });
  }
});
