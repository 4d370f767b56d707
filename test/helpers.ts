// Small helpers shared by the test files (not a test file itself).
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import type { Abi } from "../ts/abi.js";
import type { DenseWeights, EdgegradError, LayerWeights } from "../ts/node.js";

/** eg_tensor_create through the ABI: a zero-filled (rows, cols) tensor's handle (data address at outU32(1)). */
export function tensorCreate(abi: Abi, rows: number, cols: number, where: string): number {
  abi.call(where, "eg_tensor_create", rows, cols, abi.out);
  return abi.outU32(0);
}

/** eg_model_create through the ABI: a model from `nLayers` 8-word layer records at `spec`; returns its handle. */
export function modelCreate(abi: Abi, inputs: number, nLayers: number, spec: number, seedLo: number, seedHi: number, where: string): number {
  abi.call(where, "eg_model_create", inputs, nLayers, spec, seedLo, seedHi, abi.out);
  return abi.outU32(0);
}

/** Narrows getWeights()/computeGradients() of an all-dense model to DenseWeights (throws otherwise). */
export function denseLayers(weights: LayerWeights[]): DenseWeights[] {
  return weights.map((w, l) => {
    if (w.kind !== "dense") throw new Error(`layer ${l} is ${w.kind}, expected dense`);
    return w;
  });
}

/** Every Float32Array of a weights list (kernel, bias, gamma, beta), in layer order. */
export function arraysOf(weights: LayerWeights[]): Float32Array[] {
  return weights.flatMap((w) => (w.kind === "dense" ? [w.kernel, w.bias] : w.kind === "batchNorm" ? [w.gamma, w.beta] : []));
}

/** Bit patterns of float arrays, for exact comparison (NaN-safe, -0-safe). */
export function bitsOf(arrays: readonly Float32Array[]): number[][] {
  return arrays.map((a) => Array.from(new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength))));
}

/** Runs fn and returns what it threw (failing the test if it did not throw). */
export function thrown(fn: () => unknown): EdgegradError {
  try {
    fn();
  } catch (e) {
    return e as EdgegradError;
  }
  throw new Error("expected a throw");
}

/** mulberry32, the same small seeded PRNG the CLI uses: reproducible data, uniform in [0, 1). */
export { rng } from "../ts/cli/data.js";

/** Standard normal draws from a uniform source (Box–Muller). */
export function normal(r: () => number): number {
  const u = 1 - r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/** Human-readable mismatches where |actual − expected| > max(rtol·|expected|, atol) (empty when all match). */
export function compareArrays(label: string, expected: ArrayLike<number>, actual: ArrayLike<number>, rtol: number, atol: number): string[] {
  if (expected.length !== actual.length) return [`${label}: length ${actual.length}, expected ${expected.length}`];
  const out: string[] = [];
  for (let k = 0; k < expected.length; k++) {
    const e = expected[k]!;
    const a = actual[k]!;
    if (!(Math.abs(a - e) <= Math.max(rtol * Math.abs(e), atol))) {
      out.push(`${label}[${k}]: expected ${e}, actual ${a} (|diff| ${Math.abs(a - e).toExponential(2)})`);
    }
  }
  return out;
}

/** A fixture's per-layer parameters (edgegrad layout, plain number arrays). */
export type FixtureParams = { kind: "dense"; kernel: number[]; bias: number[] } | { kind: "batchNorm"; gamma: number[]; beta: number[] };

/** compareArrays over every parameter of every layer. */
export function compareLayers(what: string, expected: FixtureParams[], actual: LayerWeights[], rtol: number, atol: number): string[] {
  if (expected.length !== actual.length) return [`${what}: ${actual.length} layers, expected ${expected.length}`];
  return expected.flatMap((e, l) => {
    const a = actual[l]!;
    if (e.kind === "dense" && a.kind === "dense") {
      return [...compareArrays(`${what} layer ${l} kernel`, e.kernel, a.kernel, rtol, atol), ...compareArrays(`${what} layer ${l} bias`, e.bias, a.bias, rtol, atol)];
    }
    if (e.kind === "batchNorm" && a.kind === "batchNorm") {
      return [...compareArrays(`${what} layer ${l} gamma`, e.gamma, a.gamma, rtol, atol), ...compareArrays(`${what} layer ${l} beta`, e.beta, a.beta, rtol, atol)];
    }
    return [`${what} layer ${l}: kind ${a.kind}, expected ${e.kind}`];
  });
}

/** A fixture's parameters as setWeights input. */
export function fixtureWeights(layers: FixtureParams[]): LayerWeights[] {
  return layers.map((l) =>
    l.kind === "dense"
      ? { kind: "dense", kernel: Float32Array.from(l.kernel), bias: Float32Array.from(l.bias) }
      : { kind: "batchNorm", gamma: Float32Array.from(l.gamma), beta: Float32Array.from(l.beta) },
  );
}

/** Fails listing every mismatch (capped so a total failure stays readable). */
export function expectNoMismatches(mismatches: string[], header = ""): void {
  const shown = mismatches.slice(0, 40);
  if (mismatches.length > shown.length) shown.push(`... and ${mismatches.length - shown.length} more`);
  expect(mismatches.length === 0 ? "" : `${header}${header ? "\n" : ""}${shown.join("\n")}`).toBe("");
}

/** The wasm the tests load: $EDGEGRAD_WASM, or the freshly built build/edgegrad.wasm. */
export const WASM = process.env.EDGEGRAD_WASM ?? fileURLToPath(new URL("../build/edgegrad.wasm", import.meta.url));
