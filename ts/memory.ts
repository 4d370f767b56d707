// Ownership of wasm-side objects: explicit dispose() first, scope(fn) for bulk cleanup, and a
// FinalizationRegistry that only frees and counts what the user forgot (a leak, reported by
// memory().leaked).

import type { Abi } from "./abi.js";
import { describe, InvalidArgumentError, isObject } from "./errors.js";

/** The `using`-compatible dispose key; falls back to the registered symbol where the runtime lacks `Symbol.dispose`. */
export const disposeSymbol: typeof Symbol.dispose =
  (typeof Symbol.dispose === "symbol" ? Symbol.dispose : Symbol.for("Symbol.dispose")) as typeof Symbol.dispose;

/** Heap and handle counters as returned by `Edgegrad.memory()`. */
export interface MemoryInfo {
  /** Tensors and models currently alive on the wasm side. */
  liveHandles: number;
  /** Bytes currently allocated by the wasm allocator. */
  liveBytes: number;
  /** Largest `liveBytes` seen so far. */
  peakBytes: number;
  /** Size of the WebAssembly linear memory in bytes (it only grows). */
  heapBytes: number;
  /** Allocations made by the wasm allocator since init (a running total, not a live count). */
  allocations: number;
  /** Handles the garbage collector found undisposed and freed (each one is a leak in user code). */
  leaked: number;
}

/** What the runtime tracks: something with an idempotent dispose. */
export interface Resource {
  dispose(): void;
  readonly disposed: boolean;
}

/** Which free function the finalization backstop must call. */
export type ResourceKind = "tensor" | "model";

interface Held {
  kind: ResourceKind;
  handle: number;
}

/** Per-instance bookkeeping shared by tensors and models: the ABI, scopes and the leak backstop. */
export class Runtime {
  /** The checked wasm instance. */
  readonly abi: Abi;
  #leaked = 0;
  readonly #registry: FinalizationRegistry<Held> | null;
  readonly #scopes: Set<Resource>[] = [];

  /** Creates the bookkeeping for one loaded instance. */
  constructor(abi: Abi) {
    this.abi = abi;
    this.#registry =
      typeof FinalizationRegistry === "function"
        ? new FinalizationRegistry<Held>((held) => {
            // Runs in its own job, never while a heap view is held. The handle carries a
            // generation, so freeing a slot that was already reused is rejected by Rust.
            try {
              if (held.kind === "tensor") abi.call("finalizer", "eg_tensor_free", held.handle);
              else abi.call("finalizer", "eg_model_free", held.handle);
            } catch {
              return;
            }
            this.#leaked += 1;
          })
        : null;
  }

  /** Starts tracking a freshly created resource (innermost scope + GC backstop). */
  adopt(resource: Resource, kind: ResourceKind, handle: number): void {
    this.#registry?.register(resource, { kind, handle }, resource);
    this.#scopes[this.#scopes.length - 1]?.add(resource);
  }

  /** Stops tracking a resource that was disposed explicitly. */
  release(resource: Resource): void {
    this.#registry?.unregister(resource);
    for (let i = this.#scopes.length - 1; i >= 0; i--) {
      if (this.#scopes[i]!.delete(resource)) break;
    }
  }

  /** Runs `fn` and disposes every tensor and model it created, except those it returns. */
  scope<T>(fn: () => T): T {
    if (typeof fn !== "function") throw new InvalidArgumentError(`scope(fn): expected a function, got ${describe(fn)}`);
    const made = new Set<Resource>();
    this.#scopes.push(made);
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.#scopes.pop();
      disposeAll(made);
      throw e;
    }
    this.#scopes.pop();
    if (isObject(result) && typeof (result as { then?: unknown }).then === "function") {
      disposeAll(made);
      throw new InvalidArgumentError("scope(fn): fn must be synchronous; it returned a promise (its tensors were disposed)");
    }
    const keep = new Set<Resource>();
    collectKept(result, made, keep, 0);
    const parent = this.#scopes[this.#scopes.length - 1];
    for (const r of made) {
      if (keep.has(r)) parent?.add(r);
      else r.dispose();
    }
    return result;
  }

  /** Current heap and handle counters. */
  memory(): MemoryInfo {
    return { ...this.abi.stats(), leaked: this.#leaked };
  }
}

function disposeAll(set: Set<Resource>): void {
  for (const r of set) r.dispose();
}

/** Finds resources of `made` in a returned value: itself, or inside arrays / plain objects (a few levels). */
function collectKept(value: unknown, made: Set<Resource>, keep: Set<Resource>, depth: number): void {
  if (!isObject(value) || depth > 4) return;
  if (made.has(value as Resource)) {
    keep.add(value as Resource);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectKept(v, made, keep, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectKept(v, made, keep, depth + 1);
  }
}
