// predict() against the real wasm: every batch size across the small-batch GEMM path (M ≤ 16,
// B streamed without packing: simd128 kernels only run here, the host tests run their scalar
// twin) and the packed path, with column and K tails, against a float64 forward in JS; and
// predict(x, out) and trainStep(x, y, lossOut), which fill a caller's array instead of
// allocating (test/memory.test.ts counts the garbage collections of the latter).
import { beforeAll, describe, expect, it } from "vitest";
import { bitsOf, arraysOf, denseLayers, rng, WASM } from "./helpers.js";
import { dense, init, InvalidArgumentError, sgd, ShapeError, type Edgegrad, type Sequential } from "../ts/node.js";


let eg: Edgegrad;
beforeAll(async () => {
  eg = await init(WASM);
});

/**
 * 37 → 45 → 3 → 13 → 9: N = 45 takes five 8-wide column blocks and a 5-column scalar tail,
 * N = 3 only the scalar tail; K = 37 and 45 end in a partial group of rows of w, K = 3 is below
 * one group.
 */
function model(maxBatch: number): Sequential {
  const m = eg.sequential({ inputs: 37, seed: 7 }, [
    dense(45, { activation: "relu" }),
    dense(3, { activation: "tanh" }),
    dense(13, { activation: "leakyRelu", alpha: 0.1 }),
    dense(9),
  ]);
  m.compile({ loss: "meanSquaredError", optimizer: sgd({ lr: 0.1 }), maxBatch });
  return m;
}

const act: Record<string, (z: number, alpha: number) => number> = {
  relu: (z) => Math.max(z, 0),
  tanh: (z) => Math.tanh(z),
  leakyRelu: (z, a) => (z > 0 ? z : a * z),
  identity: (z) => z,
};

/** The forward in float64 from getWeights(), row by row; also returns Σ|terms| per output for the tolerance. */
function reference(m: Sequential, x: Float32Array, rows: number): { y: Float64Array; mag: Float64Array } {
  let h = Float64Array.from(x);
  let mag = new Float64Array(h.length).map((_, i) => Math.abs(h[i]!));
  let width = m.inputs;
  denseLayers(m.getWeights()).forEach((w, l) => {
    const info = m.layers[l]!;
    const o = info.units;
    const next = new Float64Array(rows * o);
    const nextMag = new Float64Array(rows * o);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < o; j++) {
        let z = w.bias[j]!;
        let s = Math.abs(z);
        for (let p = 0; p < width; p++) {
          z += h[r * width + p]! * w.kernel[p * o + j]!;
          s += mag[r * width + p]! * Math.abs(w.kernel[p * o + j]!);
        }
        next[r * o + j] = act[info.activation]!(z, info.alpha);
        nextMag[r * o + j] = s;
      }
    }
    h = next;
    mag = nextMag;
    width = o;
  });
  return { y: h, mag };
}

describe("predict across the small-batch and packed GEMM paths", () => {
  it("matches a float64 forward for every batch size from 1 to 40", () => {
    const m = model(40);
    const next = rng(11);
    // Train a few steps first so weights are not just the initialiser's.
    const xt = new Float32Array(40 * 37).map(() => next() * 2 - 1);
    const yt = new Float32Array(40 * 9).map(() => next() * 2 - 1);
    for (let s = 0; s < 3; s++) m.trainStep(xt, yt);
    for (let rows = 1; rows <= 40; rows++) {
      const x = new Float32Array(rows * 37).map(() => next() * 2 - 1);
      const got = m.predict(x);
      const { y, mag } = reference(m, x, rows);
      for (let e = 0; e < got.length; e++) {
        // f32 rounding of a dot product over ≤ 45 terms, through 4 layers.
        const tol = 1e-5 * (1 + mag[e]!);
        if (!(Math.abs(got[e]! - y[e]!) <= tol)) {
          throw new Error(`rows=${rows} index ${e}: expected ${y[e]}, actual ${got[e]} (tol ${tol})`);
        }
      }
    }
    m.dispose();
  });
});

describe("predict(x, out)", () => {
  it("fills and returns out, equal to predict(x), also when x spans several maxBatch chunks", () => {
    const m = model(4);
    const next = rng(3);
    for (const rows of [1, 4, 11]) {
      const x = new Float32Array(rows * 37).map(() => next() * 2 - 1);
      const out = new Float32Array(rows * 9).fill(NaN);
      expect(m.predict(x, out)).toBe(out);
      expect(Array.from(out)).toEqual(Array.from(m.predict(x)));
    }
    m.dispose();
  });

  it("refuses an out of the wrong length or type", () => {
    const m = model(4);
    const x = new Float32Array(2 * 37);
    expect(() => m.predict(x, new Float32Array(17))).toThrow(ShapeError);
    expect(() => m.predict(x, new Float64Array(18) as unknown as Float32Array)).toThrow(InvalidArgumentError);
    m.dispose();
  });
});

describe("trainStep(x, y, lossOut)", () => {
  it("writes the loss trainStep(x, y) returns and trains identically", () => {
    const [a, b] = [model(4), model(4)];
    const next = rng(5);
    const loss = new Float32Array(2).fill(NaN);
    for (let step = 0; step < 3; step++) {
      const x = new Float32Array(4 * 37).map(() => next() * 2 - 1);
      const y = new Float32Array(4 * 9).map(() => next());
      const returned = a.trainStep(x, y);
      expect(b.trainStep(x, y, loss)).toBeUndefined();
      expect(loss[0]).toBe(Math.fround(returned));
      expect(Number.isNaN(loss[1])).toBe(true); // only lossOut[0] is written
    }
    expect(bitsOf(arraysOf(b.getWeights()))).toEqual(bitsOf(arraysOf(a.getWeights())));
    a.dispose();
    b.dispose();
  });

  it("refuses an empty or mistyped lossOut before any work", () => {
    const m = model(4);
    const x = new Float32Array(2 * 37);
    const y = new Float32Array(2 * 9);
    const before = bitsOf(arraysOf(m.getWeights()));
    expect(() => m.trainStep(x, y, new Float32Array(0))).toThrow(ShapeError);
    expect(() => m.trainStep(x, y, [0] as unknown as Float32Array)).toThrow(/^trainStep\(lossOut\): expected a Float32Array/);
    expect(m.step).toBe(0);
    expect(bitsOf(arraysOf(m.getWeights()))).toEqual(before);
    m.dispose();
  });
});

