// The entry object: one loaded edgegrad.wasm instance with its tensors, models and counters.

import { loadAbi, type Abi, type InitSource, type ReadPath } from "./abi.js";
import { stageCheckpoint, type LoadOptions } from "./checkpoint.js";
import { CheckpointError, checkBoolean, checkFloat32Array, checkInt, checkOptions, describe, InvalidArgumentError, ShapeError } from "./errors.js";
import type { LayerSpec } from "./layers.js";
import { Runtime, type MemoryInfo } from "./memory.js";
import { Sequential, type SequentialOptions } from "./model.js";
import { Tensor } from "./tensor.js";

/** Options of `Edgegrad.matmul()`. */
export interface MatmulOptions {
  /** Use aᵀ instead of a. */
  transposeA?: boolean;
  /** Use bᵀ instead of b. */
  transposeB?: boolean;
}

/** A (rows, cols) shape. */
export type Shape2D = readonly [rows: number, cols: number];

/** One loaded edgegrad WebAssembly instance; every tensor and model belongs to exactly one. */
export class Edgegrad {
  readonly #rt: Runtime;

  /** @internal Wraps a checked ABI; use `init()` instead of calling this directly. */
  constructor(abi: Abi) {
    this.#rt = new Runtime(abi);
  }

  #shape(shape: unknown, name: string): [number, number] {
    if (!Array.isArray(shape) || shape.length !== 2) {
      throw new InvalidArgumentError(`${name}: expected [rows, cols], got ${describe(shape)}`);
    }
    return [checkInt(shape[0], `${name}[0] (rows)`), checkInt(shape[1], `${name}[1] (cols)`)];
  }

  #create(rows: number, cols: number, where: string): { tensor: Tensor; at: number } {
    const abi = this.#rt.abi;
    abi.call(where, "eg_tensor_create", rows, cols, abi.out);
    const at = abi.outU32(1) >>> 2;
    return { tensor: new Tensor(this.#rt, abi.outU32(0), rows, cols), at };
  }

  /** Copies `data` (rows*cols values, row-major) into a new tensor in the wasm heap. */
  tensor(data: Float32Array, shape: Shape2D): Tensor {
    checkFloat32Array(data, "tensor(data)");
    const [rows, cols] = this.#shape(shape, "tensor(shape)");
    if (data.length !== rows * cols) {
      throw new ShapeError(`tensor(data): ${data.length} values do not fill shape [${rows}, ${cols}] (${rows * cols} values)`);
    }
    const { tensor, at } = this.#create(rows, cols, "tensor");
    this.#rt.abi.f32.set(data, at);
    return tensor;
  }

  /** A new zero-filled tensor of the given shape. */
  zeros(shape: Shape2D): Tensor {
    const [rows, cols] = this.#shape(shape, "zeros(shape)");
    return this.#create(rows, cols, "zeros").tensor;
  }

  /** A new tensor op(a)·op(b), where op transposes when the matching option is set. */
  matmul(a: Tensor, b: Tensor, opts?: MatmulOptions): Tensor {
    for (const [name, t] of [["matmul(a)", a], ["matmul(b)", b]] as const) {
      if (!(t instanceof Tensor)) throw new InvalidArgumentError(`${name}: expected a Tensor, got ${describe(t)}`);
      t.checkOwner(this.#rt, name);
    }
    const o = checkOptions(opts, "matmul(opts)");
    const ta = checkBoolean(o.transposeA ?? false, "matmul(opts.transposeA)");
    const tb = checkBoolean(o.transposeB ?? false, "matmul(opts.transposeB)");
    const ha = a.handle;
    const hb = b.handle;
    const [m, ka] = ta ? [a.cols, a.rows] : [a.rows, a.cols];
    const [kb, n] = tb ? [b.cols, b.rows] : [b.rows, b.cols];
    if (ka !== kb) {
      throw new ShapeError(`matmul(b): inner dimensions differ: op(a) is ${m}x${ka}, op(b) is ${kb}x${n}`);
    }
    const abi = this.#rt.abi;
    abi.call("matmul", "eg_matmul", ha, hb, ta ? 1 : 0, tb ? 1 : 0, abi.out);
    return new Tensor(this.#rt, abi.outU32(0), abi.outU32(2), abi.outU32(3));
  }

  /** Builds a sequential model taking `opts.inputs` features through `layers` (dense, batchNorm, dropout). */
  sequential(opts: SequentialOptions, layers: readonly LayerSpec[]): Sequential {
    return new Sequential(this.#rt, opts, layers);
  }

  /** A new model restored from `model.save()` bytes (architecture and the whole training state); see `Sequential.load`. */
  load(bytes: Uint8Array, opts?: LoadOptions): Sequential {
    const staged = stageCheckpoint(this.#rt.abi, bytes, opts, "load");
    let model: Sequential;
    try {
      model = new Sequential(this.#rt, { inputs: staged.meta.inputs, seed: 0 }, staged.meta.layers);
    } catch (e) {
      // Layer specs that passed the CRC but not validation were hand-made: a malformed checkpoint.
      if (e instanceof InvalidArgumentError || e instanceof ShapeError) {
        throw new CheckpointError(`load: checkpoint: malformed: ${e.message}`, "malformed");
      }
      throw e;
    } finally {
      staged.release();
    }
    try {
      return model.load(bytes, opts);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  /**
   * Caps the wasm allocator's live bytes (default unlimited; 96 MiB in Cloudflare Workers, whose
   * isolates have 128 MB): creating
   * a tensor or model, or compiling, beyond it throws OutOfMemoryError and changes nothing;
   * smaller models keep working. Returns the previous limit.
   */
  setHeapLimit(bytes: number): number {
    return this.#rt.abi.setHeapLimit(checkInt(bytes, "setHeapLimit(bytes)", 1 << 20, 0xffff_ffff));
  }

  /** Live handles, allocator bytes, heap size, allocation count and GC-detected leaks. */
  memory(): MemoryInfo {
    return this.#rt.memory();
  }

  /** Runs `fn` and disposes every tensor and model it created, except those it returns. */
  scope<T>(fn: () => T): T {
    return this.#rt.scope(fn);
  }
}

/** Loads and checks edgegrad.wasm from `source` (paths and file: URLs via `readPath`). */
export async function initWith(source: InitSource, readPath?: ReadPath): Promise<Edgegrad> {
  return new Edgegrad(await loadAbi(source, readPath));
}

/**
 * Loads edgegrad.wasm and returns the library instance; without a source it fetches
 * edgegrad.wasm next to this module (Workers: pass `{ module }` or the imported WebAssembly.Module).
 */
export async function init(source?: InitSource): Promise<Edgegrad> {
  return initWith(source ?? new URL("./edgegrad.wasm", import.meta.url));
}
