// Node entry point: the same API, but init() without a source reads edgegrad.wasm from disk
// next to this module (dist/), falling back to build/ when running from a source checkout.

import { access, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { InitSource, ReadPath } from "./abi.js";
import { initWith, type Edgegrad } from "./edgegrad.js";
import { AbiError } from "./errors.js";

export * from "./index.js";
export { saveCheckpoint, loadCheckpoint } from "./node-io.js";

const readPath: ReadPath = async (path) => readFile(path instanceof URL ? fileURLToPath(path) : path);

async function defaultWasm(): Promise<URL> {
  const candidates = [new URL("./edgegrad.wasm", import.meta.url), new URL("../build/edgegrad.wasm", import.meta.url)];
  for (const url of candidates) {
    try {
      await access(url);
      return url;
    } catch {
      // try the next location
    }
  }
  const tried = candidates.map((u) => fileURLToPath(u)).join(", ");
  throw new AbiError(`init(): edgegrad.wasm not found (tried ${tried}); run \`npm run build:wasm\` or pass a source`);
}

/** Loads edgegrad.wasm (by default from disk next to this module) and returns the library instance. */
export async function init(source?: InitSource): Promise<Edgegrad> {
  return initWith(source ?? (await defaultWasm()), readPath);
}
