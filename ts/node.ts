// Node entry point: the same API, but init() without a source reads edgegrad.wasm from disk
// next to this module (dist/), falling back to build/ when running from a source checkout.

import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { InitSource, ReadPath } from "./abi.js";
import { initWith, type Edgegrad } from "./edgegrad.js";
import { AbiError } from "./errors.js";

export * from "./index.js";
export { saveCheckpoint, loadCheckpoint } from "./node-io.js";

// readFile takes paths and file: URLs alike.
const readPath: ReadPath = async (path) => readFile(path);

// Where init() looks without a source: next to this module (dist/), then build/ (a source checkout).
const WASM_LOCATIONS = [new URL("./edgegrad.wasm", import.meta.url), new URL("../build/edgegrad.wasm", import.meta.url)];

/** Loads edgegrad.wasm (by default from disk next to this module) and returns the library instance. */
export async function init(source?: InitSource): Promise<Edgegrad> {
  if (source !== undefined) return initWith(source, readPath);
  for (const url of WASM_LOCATIONS) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(url);
    } catch {
      continue; // not there: try the next location
    }
    return initWith(bytes);
  }
  const tried = WASM_LOCATIONS.map((u) => fileURLToPath(u)).join(", ");
  throw new AbiError(`init(): edgegrad.wasm not found (tried ${tried}); run \`npm run build:wasm\` or pass a source`);
}
