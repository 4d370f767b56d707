// Inline entry point: edgegrad.wasm is base64-embedded by @rollup/plugin-wasm, so init() needs
// no file, URL or fetch (for runtimes that cannot load files).

import loadWasm from "../build/edgegrad.wasm";
import type { InitSource } from "./abi.js";
import { initWith, type Edgegrad } from "./edgegrad.js";

export * from "./index.js";

/** Loads the embedded edgegrad.wasm (or `source` when given) and returns the library instance. */
export async function init(source?: InitSource): Promise<Edgegrad> {
  return initWith(source ?? (await loadWasm()));
}
