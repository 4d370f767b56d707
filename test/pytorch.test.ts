// edgegrad against PyTorch: the same dense MLPs, the same float32 weights and batches, then
// loss, every gradient, and the parameters after 10 plain SGD steps must agree.
// Fixture: test/fixtures/dense_mlp.json, written by test/fixtures/gen_fixtures.py
// (regenerate with `/usr/bin/python3 test/fixtures/gen_fixtures.py`).
import { beforeAll, describe, expect, it } from "vitest";
import { dense, init, sgd, type Edgegrad } from "../ts/node.js";
import { architectureOf, loadDenseMlpFixture, type FixtureWeights } from "./fixtures/dense_mlp.js";
import { denseLayers } from "./helpers.js";
import type { LossName } from "./reference.js";

const fixture = loadDenseMlpFixture();

// Both sides compute the same float32 sums in different orders (PyTorch's CPU GEMM vs
// edgegrad's blocked simd128 GEMM, with or without fused multiply-add), so every value carries
// a rounding error of about n·2⁻²⁴·Σ|terms| (n ≤ 13 here): ~1e-6 relative to the size of the
// terms. Hence 1e-5 relative, and SGD compounds it only mildly over 10 steps at lr 0.1. That
// bound is relative to the terms, not to the result: an entry that nearly cancels (a bias
// gradient summing ±0.1 contributions to ~1e-5) can differ by ~1e-8 absolute, which is 1e-3 of
// itself. So an absolute floor of 1e-6, about 8 f32 ulps at 1.0 and well above those
// cancellation residues, yet 1000x below what a real bug moves (a wrong derivative, a missing
// 1/B, a transposed kernel all change values by >= 1e-3). Measured on the kernels as written:
// the largest difference is 2% of this bound; GELU's derivative with its z·φ(z) term scaled by
// 0.99 fails all 6 tests of the GELU architecture.
const RTOL = 1e-5;
const ATOL = 1e-6;

function close(expected: number, actual: number): boolean {
  return Math.abs(actual - expected) <= Math.max(RTOL * Math.abs(expected), ATOL);
}

/** Human-readable mismatches of actual vs expected (empty when all match). */
function compare(label: string, expected: ArrayLike<number>, actual: ArrayLike<number>): string[] {
  if (expected.length !== actual.length) {
    return [`${label}: length ${actual.length}, expected ${expected.length}`];
  }
  const out: string[] = [];
  for (let k = 0; k < expected.length; k++) {
    const e = expected[k]!;
    const a = actual[k]!;
    if (!close(e, a)) {
      out.push(`${label}[${k}]: expected ${e}, actual ${a} (|diff| ${Math.abs(a - e).toExponential(2)})`);
    }
  }
  return out;
}

interface LayerWeightsLike {
  kernel: ArrayLike<number>;
  bias: ArrayLike<number>;
}

function compareLayers(what: string, expected: FixtureWeights[], actual: LayerWeightsLike[]): string[] {
  if (expected.length !== actual.length) return [`${what}: ${actual.length} layers, expected ${expected.length}`];
  return expected.flatMap((e, l) => [
    ...compare(`${what} layer ${l} kernel`, e.kernel, actual[l]!.kernel),
    ...compare(`${what} layer ${l} bias`, e.bias, actual[l]!.bias),
  ]);
}

/** Fails with every mismatch listed (capped so a total failure stays readable). */
function expectNoMismatches(mismatches: string[]): void {
  const shown = mismatches.slice(0, 40);
  if (mismatches.length > shown.length) shown.push(`... and ${mismatches.length - shown.length} more`);
  expect(shown.join("\n")).toBe("");
}

function toFloat32Weights(weights: FixtureWeights[]) {
  return weights.map((w) => ({ kernel: Float32Array.from(w.kernel), bias: Float32Array.from(w.bias) }));
}

function targetArray(loss: LossName, target: number[]): Float32Array | Int32Array {
  return loss === "softmaxCrossEntropy" ? Int32Array.from(target) : Float32Array.from(target);
}

let eg: Edgegrad;

beforeAll(async () => {
  eg = await init();
});

describe(`dense MLP vs PyTorch ${fixture.torchVersion} fixtures`, () => {
  it("the fixture covers every activation and loss", () => {
    const activations = new Set(fixture.architectures.flatMap((a) => a.layers.map((l) => l.activation)));
    expect([...activations].sort()).toEqual(["gelu", "identity", "leakyRelu", "relu", "sigmoid", "tanh"]);
    expect(new Set(fixture.cases.map((c) => c.loss)).size).toBe(3);
  });

  for (const c of fixture.cases) {
    const arch = architectureOf(fixture, c);
    const maxBatch = Math.max(...arch.batches.map((b) => b.length / arch.inputs));
    const xs = arch.batches.map((b) => Float32Array.from(b));
    const ys = c.targets.map((t) => targetArray(c.loss, t));

    const build = () => {
      const model = eg.sequential(
        { inputs: arch.inputs, seed: 1 },
        arch.layers.map((l) => dense(l.units, { activation: l.activation, ...(l.alpha === undefined ? {} : { alpha: l.alpha }) })),
      );
      model.compile({ loss: c.loss, optimizer: sgd({ lr: fixture.lr }), maxBatch });
      model.setWeights(toFloat32Weights(arch.initialWeights));
      return model;
    };

    describe(`${c.architecture} / ${c.loss}`, () => {
      it("loss and every gradient on batch 0 match", () => {
        const model = build();
        try {
          const { loss, gradients } = model.computeGradients(xs[0]!, ys[0]!);
          expectNoMismatches([
            ...compare("loss", [c.lossValue], [loss]),
            ...compareLayers("gradient", c.gradients, denseLayers(gradients)),
          ]);
          // computeGradients must not update: the weights are still the initial ones, bit for bit.
          const after = denseLayers(model.getWeights());
          arch.initialWeights.forEach((w, l) => {
            expect(after[l]!.kernel).toEqual(Float32Array.from(w.kernel));
            expect(after[l]!.bias).toEqual(Float32Array.from(w.bias));
          });
        } finally {
          model.dispose();
        }
      });

      it(`parameters after ${fixture.steps} SGD steps (lr ${fixture.lr}) match`, () => {
        const model = build();
        try {
          const losses: number[] = [];
          for (let k = 0; k < fixture.steps; k++) {
            const b = k % xs.length;
            losses.push(model.trainStep(xs[b]!, ys[b]!));
          }
          expectNoMismatches([
            ...compare("step loss", c.stepLosses, losses),
            ...compareLayers(`weights after ${fixture.steps} steps`, c.finalWeights, denseLayers(model.getWeights())),
          ]);
          expect(model.step).toBe(fixture.steps);
        } finally {
          model.dispose();
        }
      });
    });
  }
});
