// The size budget and cold-start table: `npm run size` (scripts/size-report.mjs) runs here with
// one cold start per runtime; its table goes to the test log and its numbers are checked.
import { execFile } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { ROOT, tempDir } from "./harness.mjs";

const run = promisify(execFile);

interface Report {
  ok: boolean;
  budget: { wasmRaw: number; jsMinified: number };
  sizes: { name: string; raw: number; minified?: number; gzip: number; budget?: number; ok: boolean }[];
  coldStart: { runtime: string; coldStartMs: number }[];
}

it("npm run size: wasm <= 200 kB raw, JS entries and subpath entries <= 40 kB minified, cold start measured in Node, Chromium and workerd", async () => {
  const dir = await tempDir("size");
  try {
    const json = join(dir, "size.json");
    // The script exits 1 when over budget; print its table either way, then check the numbers.
    const args = [join(ROOT, "scripts", "size-report.mjs"), "--runs", "1", "--json", json];
    const { stdout } = await run(process.execPath, args, { cwd: ROOT, maxBuffer: 16 << 20 }).catch(
      (e: { stdout?: string; code?: number }) => {
        if (e.code !== 1) throw e;
        return { stdout: e.stdout ?? "" };
      },
    );
    console.log(stdout);
    const r = JSON.parse(await readFile(json, "utf8")) as Report;
    for (const s of r.sizes) {
      const measured = s.name.endsWith(".wasm") ? s.raw : s.minified;
      expect(s.ok, `${s.name}: ${measured} bytes, budget ${s.budget}`).toBe(true);
    }
    expect(r.sizes[0]!.raw).toBeLessThanOrEqual(200_000);
    expect(r.budget.jsMinified).toBe(40_000);
    // index, workerd, node and the three subpath entries (edgegrad/schedules, /callbacks, /safetensors).
    expect(r.sizes.filter((s) => s.budget === r.budget.jsMinified)).toHaveLength(6);
    expect(r.sizes.map((s) => s.name)).toContain("JS index.js + all three subpaths");
    expect(r.coldStart.map((c) => c.runtime.split(" ")[0])).toEqual(["Node", "Chromium", "workerd"]);
    for (const c of r.coldStart) expect(c.coldStartMs, c.runtime).toBeGreaterThan(0);
    expect(r.ok).toBe(true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 120_000);
