// safetensors export and import of a Sequential's parameters and batch-norm statistics, named as
// PyTorch names the state_dict of the equivalent torch.nn.Sequential, so
// `model.load_state_dict(load_file(path))` works on the torch side (test/interop/ proves it).
//
// The equivalent torch model has one module per edgegrad layer plus one module per non-identity
// activation, in order (dense → Linear, batchNorm → BatchNorm1d, dropout → Dropout, activation →
// ReLU / LeakyReLU(alpha) / Sigmoid / Tanh / GELU). Tensor names use the torch module index:
//   `{i}.weight` (O, I)  dense kernel, TRANSPOSED from edgegrad's (I, O)
//   `{i}.bias`   (O)     dense bias
//   `{i}.weight` (F)     batchNorm gamma;  `{i}.bias` (F) beta
//   `{i}.running_mean` (F), `{i}.running_var` (F)  batchNorm running statistics
//   `{i}.num_batches_tracked` () I64  written as 0 (edgegrad does not count; torch only reads it
//                                     when momentum=None, which edgegrad has no equivalent of)
// Every tensor is F32 little-endian except num_batches_tracked. `__metadata__` holds
// "format": "pt" and "edgegrad.modules": a JSON list describing the torch modules, e.g.
// [["Linear",6,16],["ReLU"],["BatchNorm1d",16,1e-5,0.1],["Dropout",0.3],["Linear",16,3]].
// Format: 8-byte little-endian header length N, N bytes of JSON header (padded with spaces to a
// multiple of 8), then the tensor data back to back.
// The "edgegrad/safetensors" entry (not re-exported by "edgegrad": most apps never need it).

/**
 * safetensors export and import of a model's parameters, with PyTorch's state_dict names.
 * @module edgegrad/safetensors
 */

import { describe, InvalidArgumentError, ShapeError } from "./errors.js";
import type { BatchNormBuffers, LayerWeights, Sequential } from "./model.js";

/** One tensor of a safetensors file. */
interface Entry {
  name: string;
  dtype: "F32" | "I64";
  shape: number[];
  data: Float32Array | null; // null: the I64 zero scalar
}

const TORCH_ACTIVATION: Record<string, (alpha: number) => unknown[]> = {
  relu: () => ["ReLU"],
  leakyRelu: (a) => ["LeakyReLU", a],
  sigmoid: () => ["Sigmoid"],
  tanh: () => ["Tanh"],
  gelu: () => ["GELU"],
};

/** Per edgegrad layer: its torch module index, and the torch module list. */
function torchModules(model: Sequential): { index: number[]; modules: unknown[][] } {
  const index: number[] = [];
  const modules: unknown[][] = [];
  const specs = model.specs;
  model.layers.forEach((l, i) => {
    index.push(modules.length);
    const s = specs[i]!;
    if (l.kind === "dense") modules.push(["Linear", l.inputs, l.units]);
    else if (l.kind === "batchNorm") modules.push(["BatchNorm1d", l.units, s.kind === "batchNorm" ? s.eps : 0, s.kind === "batchNorm" ? s.momentum : 0]);
    else modules.push(["Dropout", s.kind === "dropout" ? s.rate : 0]);
    if (l.kind !== "dropout" && l.activation !== "identity") modules.push(TORCH_ACTIVATION[l.activation]!(l.alpha) as unknown[]);
  });
  return { index, modules };
}

function entries(model: Sequential): Entry[] {
  const { index } = torchModules(model);
  const weights = model.getWeights();
  const buffers = model.getBuffers();
  const out: Entry[] = [];
  weights.forEach((w, l) => {
    const i = index[l]!;
    if (w.kind === "dense") {
      const info = model.layers[l]!;
      const [I, O] = [info.inputs, info.units];
      const t = new Float32Array(I * O);
      for (let r = 0; r < I; r++) for (let c = 0; c < O; c++) t[c * I + r] = w.kernel[r * O + c]!;
      out.push({ name: `${i}.weight`, dtype: "F32", shape: [O, I], data: t });
      out.push({ name: `${i}.bias`, dtype: "F32", shape: [O], data: w.bias });
    } else if (w.kind === "batchNorm") {
      const b = buffers.find((x) => x.layer === l)!;
      const F = w.gamma.length;
      out.push({ name: `${i}.weight`, dtype: "F32", shape: [F], data: w.gamma });
      out.push({ name: `${i}.bias`, dtype: "F32", shape: [F], data: w.beta });
      out.push({ name: `${i}.running_mean`, dtype: "F32", shape: [F], data: b.runningMean });
      out.push({ name: `${i}.running_var`, dtype: "F32", shape: [F], data: b.runningVar });
      out.push({ name: `${i}.num_batches_tracked`, dtype: "I64", shape: [], data: null });
    }
  });
  return out;
}

/** The tensor names `toSafetensors` writes for this model, in order. */
export function safetensorsNames(model: Sequential): string[] {
  return entries(model).map((e) => e.name);
}

/** The model's parameters and batch-norm statistics as a safetensors file (PyTorch state_dict names; see ts/safetensors.ts). */
export function toSafetensors(model: Sequential): Uint8Array {
  const list = entries(model);
  const header: Record<string, unknown> = {
    __metadata__: { format: "pt", "edgegrad.modules": JSON.stringify(torchModules(model).modules) },
  };
  let off = 0;
  for (const e of list) {
    const n = e.dtype === "I64" ? 8 : e.data!.length * 4;
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const hj = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hj.length + off);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(hj.length), true);
  out.set(hj, 8);
  let p = 8 + hj.length;
  for (const e of list) {
    if (e.dtype === "I64") {
      p += 8; // zero
      continue;
    }
    for (const v of e.data!) {
      dv.setFloat32(p, v, true);
      p += 4;
    }
  }
  return out;
}

function bad(why: string): InvalidArgumentError {
  return new InvalidArgumentError(`loadSafetensors(bytes): ${why}`);
}

/**
 * Sets the model's parameters and batch-norm statistics from a safetensors file with the names
 * `toSafetensors` writes (e.g. a torch nn.Sequential's state_dict); all or nothing.
 */
export function loadSafetensors(model: Sequential, bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError(`loadSafetensors(bytes): expected a Uint8Array, got ${describe(bytes)}`);
  if (bytes.length < 8) throw bad(`${bytes.length} bytes is shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > bytes.length - 8) throw bad(`header length ${n} exceeds the file`);
  let header: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown }>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch {
    throw bad("the header is not JSON");
  }
  if (header === null || typeof header !== "object") throw bad("the header is not a JSON object");
  const base = 8 + n;
  const expected = entries(model);
  const names = new Set(expected.map((e) => e.name));
  for (const k of Object.keys(header)) {
    if (k !== "__metadata__" && !names.has(k)) throw bad(`unexpected tensor "${k}" (this model's tensors: ${[...names].join(", ")})`);
  }
  const read = new Map<string, Float32Array>();
  for (const e of expected) {
    const h = header[e.name];
    if (h === undefined) {
      if (e.dtype === "I64") continue; // num_batches_tracked is optional
      throw bad(`missing tensor "${e.name}"`);
    }
    const shape = h.shape;
    if (!Array.isArray(shape) || shape.length !== e.shape.length || shape.some((d, i) => d !== e.shape[i])) {
      throw new ShapeError(`loadSafetensors(bytes): tensor "${e.name}" has shape ${JSON.stringify(shape)}, this model needs ${JSON.stringify(e.shape)}`);
    }
    if (h.dtype !== e.dtype) throw bad(`tensor "${e.name}" is ${describe(h.dtype)}, expected ${e.dtype}`);
    const offs = h.data_offsets;
    const size = e.dtype === "I64" ? 8 : e.data!.length * 4;
    if (!Array.isArray(offs) || offs.length !== 2 || !Number.isInteger(offs[0]) || offs[1] - offs[0] !== size || base + offs[1] > bytes.length || offs[0] < 0) {
      throw bad(`tensor "${e.name}" has bad data_offsets ${JSON.stringify(offs)}`);
    }
    if (e.dtype === "I64") continue;
    const a = new Float32Array(e.data!.length);
    for (let k = 0; k < a.length; k++) a[k] = dv.getFloat32(base + offs[0] + 4 * k, true);
    read.set(e.name, a);
  }
  // Build both inputs first; setWeights and setBuffers then validate everything before writing.
  const weights: LayerWeights[] = [];
  const buffers: BatchNormBuffers[] = [];
  const { index } = torchModules(model);
  model.layers.forEach((l, li) => {
    const i = index[li]!;
    if (l.kind === "dense") {
      const [I, O] = [l.inputs, l.units];
      const t = read.get(`${i}.weight`)!;
      const k = new Float32Array(I * O);
      for (let r = 0; r < I; r++) for (let c = 0; c < O; c++) k[r * O + c] = t[c * I + r]!;
      weights.push({ kind: "dense", kernel: k, bias: read.get(`${i}.bias`)! });
    } else if (l.kind === "batchNorm") {
      weights.push({ kind: "batchNorm", gamma: read.get(`${i}.weight`)!, beta: read.get(`${i}.bias`)! });
      buffers.push({ layer: li, runningMean: read.get(`${i}.running_mean`)!, runningVar: read.get(`${i}.running_var`)! });
    } else {
      weights.push({ kind: "dropout" });
    }
  });
  for (const b of buffers) {
    for (const a of [b.runningMean, b.runningVar]) {
      if (a.some((v) => !Number.isFinite(v))) throw bad(`layer ${b.layer}: non-finite running statistics`);
    }
    if (b.runningVar.some((v) => v < 0)) throw bad(`layer ${b.layer}: negative running variance`);
  }
  const before = model.getWeights();
  model.setWeights(weights);
  try {
    model.setBuffers(buffers);
  } catch (e) {
    model.setWeights(before);
    throw e;
  }
}
