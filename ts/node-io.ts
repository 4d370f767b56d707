// Node-only checkpoint files (exported from the node entry, ts/node.ts). A save writes a
// temporary file next to the target, fsyncs it, renames it over the target and fsyncs the
// directory, so a crash at any point leaves either the previous checkpoint or the new one,
// never a torn file (rename is atomic within a POSIX file system).

import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { LoadOptions, SaveOptions } from "./checkpoint.js";
import type { Edgegrad } from "./edgegrad.js";
import type { Sequential } from "./model.js";

/** Writes `model.save(opts)` to `path` atomically (temp file, fsync, rename, directory fsync); returns the bytes written. */
export async function saveCheckpoint(path: string, model: Sequential, opts?: SaveOptions): Promise<number> {
  const bytes = model.save(opts);
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  const fh = await open(tmp, "wx");
  try {
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  // Make the rename itself durable; some platforms (Windows) cannot open directories.
  try {
    const d = await open(dir, "r");
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // best effort
  }
  return bytes.length;
}

/** Reads a checkpoint file written by `saveCheckpoint` into a new model of `eg` (`eg.load`). */
export async function loadCheckpoint(eg: Edgegrad, path: string, opts?: LoadOptions): Promise<Sequential> {
  return eg.load(new Uint8Array(await readFile(path)), opts);
}
