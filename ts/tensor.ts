// Tensors are handles into the wasm heap: a (rows, cols) row-major f32 matrix owned by Rust.
// JS keeps only the handle and the shape; reads return copies.

import { DisposedError, InvalidArgumentError } from "./errors.js";
import { disposeSymbol, type Runtime } from "./memory.js";

/** A 2-D row-major f32 matrix living in the WebAssembly heap; free it with `dispose()` or `using`. */
export class Tensor implements Disposable {
  readonly #rt: Runtime;
  #handle: number;
  /** [rows, cols]. */
  readonly shape: readonly [rows: number, cols: number];

  /** @internal Wraps a handle the runtime just created; use `Edgegrad.tensor()` / `zeros()` instead. */
  constructor(rt: Runtime, handle: number, rows: number, cols: number) {
    this.#rt = rt;
    this.#handle = handle;
    this.shape = Object.freeze([rows, cols] as const);
    rt.adopt(this, "tensor", handle);
  }

  /** Number of rows. */
  get rows(): number {
    return this.shape[0];
  }

  /** Number of columns. */
  get cols(): number {
    return this.shape[1];
  }

  /** Number of elements (rows * cols). */
  get size(): number {
    return this.shape[0] * this.shape[1];
  }

  /** True once `dispose()` has run. */
  get disposed(): boolean {
    return this.#handle === 0;
  }

  /** The raw ABI handle (for interop and tests); throws DisposedError after dispose. */
  get handle(): number {
    if (this.#handle === 0) throw new DisposedError("tensor: used after dispose()");
    return this.#handle;
  }

  /** @internal Throws InvalidArgumentError (naming argument `name`) unless the instance that owns `rt` made this tensor. */
  checkOwner(rt: Runtime, name: string): void {
    if (this.#rt !== rt) throw new InvalidArgumentError(`${name}: the tensor belongs to another edgegrad instance`);
  }

  /** Byte address of the data in the wasm heap; stable for the tensor's lifetime. */
  dataPtr(where: string): number {
    if (this.#handle === 0) throw new DisposedError(`${where}: tensor used after dispose()`);
    this.#rt.abi.call(where, "eg_tensor_info", this.#handle, this.#rt.abi.out);
    return this.#rt.abi.outU32(2);
  }

  /** A copy of the contents as a Float32Array of length rows * cols. */
  data(): Float32Array {
    const at = this.dataPtr("Tensor.data") >>> 2;
    return this.#rt.abi.f32.slice(at, at + this.size);
  }

  /** Frees the wasm memory; calling it again does nothing. */
  dispose(): void {
    const h = this.#handle;
    if (h === 0) return;
    this.#handle = 0;
    this.#rt.release(this);
    this.#rt.abi.call("Tensor.dispose", "eg_tensor_free", h);
  }

  /** Same as `dispose()`, for `using t = eg.tensor(...)`. */
  [disposeSymbol](): void {
    this.dispose();
  }

  /** A short description such as `Tensor(2x3)`. */
  toString(): string {
    return this.disposed ? "Tensor(disposed)" : `Tensor(${this.shape[0]}x${this.shape[1]})`;
  }
}
