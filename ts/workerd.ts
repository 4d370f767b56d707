// Workers entry point (package conditions "workerd" and "worker"). Cloudflare Workers refuse to
// compile WebAssembly from bytes at run time ("Wasm code generation disallowed by embedder") and
// have no files to read, so the Worker imports edgegrad.wasm as a module — the runtime compiles
// it when the Worker loads — and hands the compiled module to init():
//
//   import wasm from "edgegrad/edgegrad.wasm";
//   const eg = await init(wasm);            // or init({ module: wasm })
//
// The module is also recognised by its tag (abi.ts isModule), because `instanceof` fails for a
// module from another realm. Elsewhere (a browser's Web Worker, which bundlers also resolve with "worker")
// init() behaves like the browser entry: without a source it fetches edgegrad.wasm next to this
// module.

import { isModule, type InitSource } from "./abi.js";
import { initWith, type Edgegrad } from "./edgegrad.js";
import { AbiError } from "./errors.js";

export * from "./index.js";

/** Default heap limit inside Cloudflare Workers (see `Edgegrad.setHeapLimit`). */
const WORKERS_HEAP_LIMIT = 96 << 20;

const HOW = 'import wasm from "edgegrad/edgegrad.wasm" in your Worker and call init(wasm) or init({ module: wasm })';

/** True inside Cloudflare's runtime (workerd sets this user agent). */
function inCloudflareWorkers(): boolean {
  const nav = (globalThis as { navigator?: { userAgent?: unknown } }).navigator;
  return nav?.userAgent === "Cloudflare-Workers";
}

/**
 * Loads edgegrad.wasm and returns the library instance. In Cloudflare Workers `source` must be the
 * compiled module (`import wasm from "edgegrad/edgegrad.wasm"`) or `{ module }`.
 */
export async function init(source?: InitSource): Promise<Edgegrad> {
  if (inCloudflareWorkers()) {
    if (source === undefined) {
      throw new AbiError(`init(): Cloudflare Workers cannot fetch or compile edgegrad.wasm at run time; ${HOW}`);
    }
    const module = typeof source === "object" && source !== null && "module" in source ? source.module : source;
    if (!isModule(module)) {
      throw new AbiError(
        `init(source): Cloudflare Workers refuse to compile WebAssembly from bytes, URLs or responses; ${HOW}`,
      );
    }
    // A Workers isolate has 128 MB: refuse arenas past 96 MiB with OutOfMemoryError instead of
    // letting the isolate be killed (change with eg.setHeapLimit).
    const eg = await initWith(source);
    eg.setHeapLimit(WORKERS_HEAP_LIMIT);
    return eg;
  }
  return initWith(source ?? new URL("./edgegrad.wasm", import.meta.url));
}
