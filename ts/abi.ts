// The only module that touches `instance.exports`. It loads edgegrad.wasm, checks the ABI
// version and export list, turns non-zero status codes into typed errors, and hands out heap
// views through getters that are rebuilt whenever `memory.buffer` changes (memory.grow
// detaches the old buffer, so a view must never be held across a call that can allocate).
// Every export is called through a guard: a trap (WebAssembly.RuntimeError) poisons the
// instance, because Rust state may be half-updated, and every later call throws PoisonedError.

import { AbiError, errorForStatus, OutOfMemoryError, PoisonedError, Status, type NonFiniteDetails } from "./errors.js";
import { PARAM_ROLES } from "./layers.js";

/** The C-ABI version this TypeScript layer speaks (`eg_abi_version()`). */
export const ABI_VERSION = 2;

/** Bytes of the out-scratch every out-parameter call writes to (the ABI guarantees <= 64). */
export const OUT_BYTES = 64;

/** Where the WebAssembly module comes from: bytes, a URL or path, a fetch Response, or a compiled module. */
export type InitSource =
  | ArrayBuffer
  | ArrayBufferView
  | URL
  | string
  | Response
  | PromiseLike<Response>
  | WebAssembly.Module
  | {
      /** An already compiled edgegrad.wasm (e.g. a Workers module import). */
      module: WebAssembly.Module;
    };

/** Reads a file-system path or file: URL into bytes (provided by the Node entry point). */
export type ReadPath = (path: string | URL) => Promise<Uint8Array>;

/** `eg_enum_name` kinds. */
export const EnumKind = { status: 0, activation: 1, loss: 2, optimizer: 3, init: 4, layerKind: 5, paramRole: 6 } as const;

/**
 * Every export the TS layer calls (without their "eg_" prefix, one string to keep the bundle
 * small); a module missing any of them is rejected at load.
 */
export const EXPORT_NAMES = (
  "abi_version alloc free last_error_ptr last_error_len last_error_layer last_error_role " +
  "enum_name stats tensor_create tensor_info tensor_free matmul model_create model_compile " +
  "model_info model_layer_info model_train_staged model_grad_staged model_shuffle " +
  "model_train_rows model_predict_staged model_evaluate_staged model_set_params model_free " +
  "model_set_training model_set_lr model_set_param_groups model_set_clipping model_segment_info " +
  "model_stats_ptr model_buffers model_apply_gradients model_optimizer_state model_save " +
  "model_load model_set_buffers set_heap_limit"
)
  .split(" ")
  .map((n) => `eg_${n}` as ExportName);

/** The name of one function export of the C-ABI. */
type ExportName = Exclude<keyof Exports, "memory">;

type I = number;

/** What to do after a trap, the end of every PoisonedError message. */
const AFTER_TRAP = "call init() for a fresh instance (saved checkpoints are unaffected)";

/** Raw signatures of the C-ABI exports (wasm i32 arrive in JS as signed numbers). */
interface Exports {
  memory: WebAssembly.Memory;
  eg_abi_version(): I;
  eg_alloc(bytes: I): I;
  eg_free(ptr: I, bytes: I): void;
  eg_last_error_ptr(): I;
  eg_last_error_len(): I;
  eg_last_error_layer(): I;
  eg_last_error_role(): I;
  eg_enum_name(kind: I, id: I, outPtr: I, cap: I): I;
  eg_stats(out: I): I;
  eg_tensor_create(rows: I, cols: I, out: I): I;
  eg_tensor_info(h: I, out: I): I;
  eg_tensor_free(h: I): I;
  eg_matmul(a: I, b: I, transA: I, transB: I, out: I): I;
  eg_model_create(inputs: I, nLayers: I, specPtr: I, seedLo: I, seedHi: I, out: I): I;
  eg_model_compile(m: I, loss: I, maxBatch: I, optimizer: I, hpPtr: I, hpLen: I): I;
  eg_model_info(m: I, out: I): I;
  eg_model_layer_info(m: I, layer: I, out: I): I;
  eg_model_train_staged(m: I, batch: I, out: I): I;
  eg_model_grad_staged(m: I, batch: I, out: I): I;
  eg_model_shuffle(m: I, n: I): I;
  eg_model_train_rows(m: I, x: I, y: I, start: I, count: I, usePerm: I, out: I): I;
  eg_model_predict_staged(m: I, batch: I, out: I): I;
  eg_model_evaluate_staged(m: I, batch: I, out: I): I;
  eg_model_set_params(m: I, src: I, len: I): I;
  eg_model_free(m: I): I;
  eg_model_set_training(m: I, on: I): I;
  eg_model_set_lr(m: I, lr: number): I;
  eg_model_set_param_groups(m: I, ptr: I, n: I): I;
  eg_model_set_clipping(m: I, clipNorm: number, clipValue: number): I;
  eg_model_segment_info(m: I, seg: I, out: I): I;
  eg_model_stats_ptr(m: I, out: I): I;
  eg_model_buffers(m: I, out: I): I;
  eg_model_apply_gradients(m: I, out: I): I;
  eg_model_optimizer_state(m: I, out: I): I;
  eg_model_save(m: I, extraPtr: I, extraLen: I, out: I): I;
  eg_model_load(m: I, ptr: I, len: I, out: I): I;
  eg_model_set_buffers(m: I, src: I, len: I): I;
  eg_set_heap_limit(bytes: I): I;
}

/** The exports that return a status code (0 = ok, else a Status), called through `Abi.call`. */
type StatusExport = Exclude<
  keyof Exports,
  "memory" | "eg_abi_version" | "eg_alloc" | "eg_free" | "eg_last_error_ptr" | "eg_last_error_len" | "eg_last_error_layer" | "eg_last_error_role" | "eg_enum_name" | "eg_set_heap_limit"
>;

/** Allocator and handle statistics as reported by `eg_stats`. */
export interface RawStats {
  liveHandles: number;
  liveBytes: number;
  peakBytes: number;
  allocations: number;
  heapBytes: number;
}

type Raw = (a?: number, b?: number, c?: number, d?: number, e?: number, f?: number, g?: number) => number;

/** A loaded, checked edgegrad.wasm instance with typed wrappers for every export. */
export class Abi {
  readonly #x: Exports;
  /** What trapped ("eg_x: message"), or null while the instance is healthy. */
  #poisoned: string | null = null;
  readonly #memory: WebAssembly.Memory;
  #buffer: ArrayBuffer;
  #u8: Uint8Array;
  #u32: Uint32Array;
  #f32: Float32Array;
  #f64: Float64Array;
  /** Byte address of the 64-byte, 8-aligned out-scratch owned by this instance. */
  readonly out: number;
  readonly #out32: number;
  readonly #out64: number;

  /** Wraps checked exports; use `loadAbi` instead of calling this directly. */
  constructor(exports: Exports) {
    this.#x = this.#guard(exports);
    this.#memory = exports.memory;
    this.#buffer = this.#memory.buffer;
    this.#u8 = new Uint8Array(this.#buffer);
    this.#u32 = new Uint32Array(this.#buffer);
    this.#f32 = new Float32Array(this.#buffer);
    this.#f64 = new Float64Array(this.#buffer);
    const out = exports.eg_alloc(OUT_BYTES) >>> 0;
    if (out === 0 || out % 8 !== 0) {
      throw new AbiError(`eg_alloc(${OUT_BYTES}) returned an unusable out-scratch address ${out}`);
    }
    this.out = out;
    this.#out32 = out >>> 2;
    this.#out64 = out >>> 3;
  }

  // ---- trap guard ----

  /**
   * Wraps every export: after a trap the instance is poisoned and each call throws PoisonedError.
   * Fixed arity (7 = the widest export, eg_model_train_rows) rather than rest arguments keeps
   * the per-call cost to one extra JS frame; wasm ignores the surplus undefined arguments.
   */
  #guard(raw: Exports): Exports {
    const x: Record<string, unknown> = { memory: raw.memory };
    for (const name of EXPORT_NAMES) {
      const fn = raw[name] as unknown as Raw;
      x[name] = (a?: number, b?: number, c?: number, d?: number, e?: number, f?: number, g?: number): number => {
        if (this.#poisoned !== null) throw this.#poisonedError();
        try {
          return fn(a, b, c, d, e, f, g);
        } catch (err) {
          if (!(err instanceof WebAssembly.RuntimeError)) throw err;
          this.#poisoned = `${name}: ${err.message}`;
          throw new PoisonedError(
            `${name} trapped (${err.message}); this edgegrad instance is now unusable: ${AFTER_TRAP}`,
            { cause: err },
          );
        }
      };
    }
    return x as unknown as Exports;
  }

  #poisonedError(): PoisonedError {
    return new PoisonedError(
      `the wasm instance trapped earlier (${this.#poisoned}), so its memory may be inconsistent; ${AFTER_TRAP}`,
    );
  }

  /** Whether an export trapped; every later call then throws PoisonedError. */
  get poisoned(): boolean {
    return this.#poisoned !== null;
  }

  // ---- heap views (rebuilt lazily when memory.grow replaced the buffer) ----

  #refresh(): void {
    if (this.#poisoned !== null) throw this.#poisonedError();
    const buffer = this.#memory.buffer;
    if (buffer !== this.#buffer) {
      this.#buffer = buffer;
      this.#u8 = new Uint8Array(buffer);
      this.#u32 = new Uint32Array(buffer);
      this.#f32 = new Float32Array(buffer);
      this.#f64 = new Float64Array(buffer);
    }
  }

  /** Current byte view of the heap; re-read after every call that can allocate. */
  get u8(): Uint8Array {
    this.#refresh();
    return this.#u8;
  }

  /** Current u32 view of the heap; re-read after every call that can allocate. */
  get u32(): Uint32Array {
    this.#refresh();
    return this.#u32;
  }

  /** Current f32 view of the heap; re-read after every call that can allocate. */
  get f32(): Float32Array {
    this.#refresh();
    return this.#f32;
  }

  /** Current f64 view of the heap; re-read after every call that can allocate. */
  get f64(): Float64Array {
    this.#refresh();
    return this.#f64;
  }

  /** Word `i` of the out-scratch as u32. */
  outU32(i: number): number {
    return this.u32[this.#out32 + i]!;
  }

  /** Word `i` of the out-scratch as f32. */
  outF32(i: number): number {
    return this.f32[this.#out32 + i]!;
  }

  /** Double-word `i` of the out-scratch as f64. */
  outF64(i: number): number {
    return this.f64[this.#out64 + i]!;
  }

  // ---- status handling ----

  /** The UTF-8 message the last failing call left behind. */
  lastError(): string {
    const ptr = this.#x.eg_last_error_ptr() >>> 0;
    const len = this.#x.eg_last_error_len() >>> 0;
    if (ptr === 0 || len === 0) return "";
    return new TextDecoder().decode(this.u8.slice(ptr, ptr + len));
  }

  /** Where the last failure happened (layer, parameter role), as the wasm side located it. */
  lastErrorAt(): NonFiniteDetails {
    const layer = this.#x.eg_last_error_layer();
    return { layer: layer >= 0 ? layer : undefined, role: PARAM_ROLES[this.#x.eg_last_error_role()] };
  }

  /** Throws the typed error for a non-zero status; `where` names the public call. */
  #check(status: number, where: string): void {
    if (status === 0) return;
    const details = status === Status.nonFinite ? this.lastErrorAt() : {};
    throw errorForStatus(status, `${where}: ${this.lastError() || "failed"}`, details);
  }

  // ---- calls ----

  /**
   * Calls a status-returning export through the trap guard and throws the typed error for a
   * non-zero status; `where` names the public call. Typed by the export's own signature; exports
   * that write results take the out-scratch (`abi.out`) as their last argument.
   */
  call<K extends StatusExport>(where: string, name: K, ...args: Parameters<Exports[K]>): void;
  call(where: string, name: StatusExport, a?: I, b?: I, c?: I, d?: I, e?: I, f?: I, g?: I): void {
    // Fixed arity like the guard: no argument array per call.
    this.#check((this.#x[name] as Raw)(a, b, c, d, e, f, g), where);
  }

  /** Allocates `bytes` bytes on the wasm heap (8-aligned); throws OutOfMemoryError on failure. */
  alloc(bytes: number, where: string): number {
    const ptr = this.#x.eg_alloc(bytes) >>> 0;
    if (ptr === 0) throw new OutOfMemoryError(`${where}: cannot allocate ${bytes} bytes on the WebAssembly heap`);
    return ptr;
  }

  /** Sets the heap limit in bytes (large allocations above it fail); returns the previous limit. */
  setHeapLimit(bytes: number): number {
    return this.#x.eg_set_heap_limit(bytes) >>> 0;
  }

  /** Frees a block from `alloc` (same size). */
  free(ptr: number, bytes: number): void {
    this.#x.eg_free(ptr, bytes);
  }

  /** `eg_stats`: allocator and handle counters. */
  stats(): RawStats {
    this.call("memory", "eg_stats", this.out);
    return {
      liveHandles: this.outF64(0),
      liveBytes: this.outF64(1),
      peakBytes: this.outF64(2),
      allocations: this.outF64(3),
      heapBytes: this.outF64(4),
    };
  }

  // ---- the calls of the training and inference loops, written out (no generic dispatch) ----

  /** One training step on the staged batch; returns the mean loss (grad norm and clip scale at outF32(1..2)). */
  modelTrainStaged(m: number, batch: number, where: string): number {
    this.#check(this.#x.eg_model_train_staged(m, batch, this.out), where);
    return this.outF32(0);
  }

  /** Forward + backward on the staged batch without an update; returns the mean loss. */
  modelGradStaged(m: number, batch: number, where: string): number {
    this.#check(this.#x.eg_model_grad_staged(m, batch, this.out), where);
    return this.outF32(0);
  }

  /** One training step on rows of dataset tensors x and y; returns the mean loss. */
  modelTrainRows(m: number, x: number, y: number, start: number, count: number, usePerm: boolean, where: string): number {
    this.#check(this.#x.eg_model_train_rows(m, x, y, start, count, usePerm ? 1 : 0, this.out), where);
    return this.outF32(0);
  }

  /** Inference on the staged batch; returns the byte address of the (batch, outputs) result. */
  modelPredictStaged(m: number, batch: number, where: string): number {
    this.#check(this.#x.eg_model_predict_staged(m, batch, this.out), where);
    return this.outU32(0);
  }

  /** Mean loss on the staged batch; the correct-prediction count is at outU32(1). */
  modelEvaluateStaged(m: number, batch: number, where: string): number {
    this.#check(this.#x.eg_model_evaluate_staged(m, batch, this.out), where);
    return this.outF32(0);
  }
}

// ---- loading ----

const tag = (v: unknown): string => Object.prototype.toString.call(v);

/** The AbiError of a failed load: every message starts with "init(source): ". */
const loadError = (message: string): AbiError => new AbiError(`init(source): ${message}`);

/**
 * True for a compiled module, also one from another realm (Workers hand those out). Not a type
 * guard: WebAssembly.Module is structurally empty, so narrowing on it would erase other types.
 */
export function isModule(v: unknown): boolean {
  return v instanceof WebAssembly.Module || tag(v) === "[object WebAssembly.Module]";
}

// Duck-typed on purpose: reading the global `Response` in Node loads its fetch implementation
// (undici), which cost ~13 ms of every cold start.
function isResponse(v: unknown): v is Response {
  return (
    tag(v) === "[object Response]" ||
    (typeof v === "object" && v !== null && typeof (v as Response).arrayBuffer === "function" && "headers" in v)
  );
}

function isBytes(v: unknown): v is ArrayBuffer | ArrayBufferView {
  return ArrayBuffer.isView(v) || v instanceof ArrayBuffer || tag(v) === "[object ArrayBuffer]" || tag(v) === "[object SharedArrayBuffer]";
}

async function compileBytes(bytes: ArrayBuffer | ArrayBufferView): Promise<WebAssembly.Module> {
  try {
    // A Uint8Array over the same memory: WebAssembly.compile rejects some views (DataView in
    // V8) and buffers from another realm.
    const view = ArrayBuffer.isView(bytes)
      ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      : new Uint8Array(bytes as ArrayBuffer);
    return await WebAssembly.compile(view as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw loadError(`the bytes are not a valid edgegrad.wasm for this runtime (it needs WebAssembly SIMD): ${String(e)}`);
  }
}

async function compileResponse(res: Response): Promise<WebAssembly.Module> {
  if (!res.ok) throw loadError(`fetching ${res.url || "edgegrad.wasm"} failed with HTTP ${res.status}`);
  const type = res.headers?.get?.("content-type") ?? "";
  // compileStreaming consumes the body and rejects without the wasm MIME type, so only use it
  // when the header says it will work.
  if (type.startsWith("application/wasm") && typeof WebAssembly.compileStreaming === "function") {
    try {
      return await WebAssembly.compileStreaming(res);
    } catch (e) {
      throw loadError(`could not compile ${res.url || "the response"}: ${String(e)}`);
    }
  }
  return compileBytes(await res.arrayBuffer());
}

function looksLikeUrl(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s) || s.startsWith("data:") || s.startsWith("blob:");
}

/** Turns any InitSource into a compiled module; paths and file: URLs go through `readPath`. */
export async function compileSource(source: InitSource, readPath?: ReadPath): Promise<WebAssembly.Module> {
  const s: unknown = source;
  if (isModule(s)) return s as WebAssembly.Module;
  if (isBytes(s)) return compileBytes(s);
  if (isResponse(s)) return compileResponse(s);
  if (typeof s === "string" || s instanceof URL) {
    const href = String(s);
    const isFile = s instanceof URL ? s.protocol === "file:" : !looksLikeUrl(href) || href.startsWith("file:");
    if (isFile) {
      if (!readPath) throw loadError(`cannot read the path ${href} in this runtime; pass bytes, a Response or a URL`);
      let bytes: Uint8Array;
      try {
        bytes = await readPath(typeof s === "string" && s.startsWith("file:") ? new URL(s) : s);
      } catch (e) {
        throw loadError(`cannot read ${href}: ${String(e)}`);
      }
      return compileBytes(bytes);
    }
    if (typeof fetch !== "function") throw loadError(`no fetch() in this runtime to load ${href}`);
    let res: Response;
    try {
      res = await fetch(href);
    } catch (e) {
      throw loadError(`fetching ${href} failed: ${String(e)}`);
    }
    return compileResponse(res);
  }
  if (typeof s === "object" && s !== null && "module" in s) {
    const m = (s as { module: unknown }).module;
    if (!isModule(m)) throw loadError(`source.module is not a WebAssembly.Module, got ${tag(m)}`);
    return m as WebAssembly.Module;
  }
  if (typeof s === "object" && s !== null && typeof (s as PromiseLike<unknown>).then === "function") {
    const resolved: unknown = await (s as PromiseLike<unknown>);
    if (isResponse(resolved)) return compileResponse(resolved);
    throw loadError(`the promise resolved to ${tag(resolved)}, expected a Response`);
  }
  throw loadError(`unsupported source ${tag(s)}; expected bytes, URL, path, Response or WebAssembly.Module`);
}

/** Instantiates a compiled module and checks imports, exports and the ABI version. */
export async function instantiateAbi(module: WebAssembly.Module): Promise<Abi> {
  const imports = WebAssembly.Module.imports(module);
  if (imports.length > 0) {
    const names = imports.map((i) => `${i.module}.${i.name}`).join(", ");
    throw loadError(`edgegrad.wasm must not import anything, but it imports ${names}`);
  }
  const instance = await WebAssembly.instantiate(module, {});
  const raw = instance.exports as Record<string, unknown>;
  if (!(raw["memory"] instanceof WebAssembly.Memory)) {
    throw loadError("the module does not export its memory as `memory`");
  }
  const missing = EXPORT_NAMES.filter((n) => typeof raw[n] !== "function");
  // Check the version first when we can: a wrong version explains missing exports.
  if (typeof raw["eg_abi_version"] === "function") {
    const version = (raw["eg_abi_version"] as () => number)() >>> 0;
    if (version !== ABI_VERSION) {
      throw loadError(`edgegrad.wasm speaks ABI version ${version}, this library needs ${ABI_VERSION}`);
    }
  }
  if (missing.length > 0) {
    throw loadError(`edgegrad.wasm lacks the export(s) ${missing.join(", ")}`);
  }
  return new Abi(raw as unknown as Exports);
}

/** Loads and checks edgegrad.wasm from any InitSource. */
export async function loadAbi(source: InitSource, readPath?: ReadPath): Promise<Abi> {
  return instantiateAbi(await compileSource(source, readPath));
}
