// Real Workers runtime: workerd (npm `workerd`, driven by miniflare 4 on loopback) runs a Worker
// that imports the packed package. The Worker is bundled the way wrangler bundles (esbuild with
// the workerd/worker/browser conditions; `import wasm from "edgegrad/edgegrad.wasm"` kept as a
// CompiledWasm module), so the runtime compiles the wasm when the Worker loads and nothing ever
// compiles from bytes — which workerd refuses anyway.
import { copyFile, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleWorker, FIXTURES, installPacked, startWorker, tempDir } from "./harness.mjs";
import { trainDeterministic, xorData } from "./fixtures/workload.mjs";

type Det = Awaited<ReturnType<typeof trainDeterministic>>;
interface Attempt {
  ok: boolean;
  name?: string;
  message?: string;
  isAbiError?: boolean;
}

describe("workerd (Cloudflare Workers runtime via miniflare)", () => {
  let tmp = "";
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  let nodeRun: Det;
  let workerSource = "";

  const get = async <T>(path: string, init?: RequestInit): Promise<T> => {
    const res = await fetch(`${worker!.url}${path}`, init);
    const body = await res.text();
    expect(res.status, body).toBe(200);
    return JSON.parse(body) as T;
  };

  beforeAll(async () => {
    tmp = await tempDir("workerd");
    const pkg = await installPacked(tmp);
    for (const f of ["worker.mjs", "workload.mjs"]) await copyFile(join(FIXTURES, f), join(tmp, f));
    const script = await bundleWorker(join(tmp, "worker.mjs"), join(tmp, "out"));
    workerSource = await readFile(script, "utf8");
    worker = await startWorker(script);
    const lib = await import(/* @vite-ignore */ pathToFileURL(join(pkg, "dist", "node.js")).href);
    nodeRun = await trainDeterministic(lib, await lib.init());
  }, 120_000);

  afterAll(async () => {
    await worker?.mf.dispose();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("bundles the workerd entry and keeps the wasm as a separate module", () => {
    expect(workerSource).toMatch(/import \w+ from "\.\/edgegrad\.wasm"/);
    expect(workerSource).toContain("Cloudflare-Workers"); // dist/workerd.js, not the browser entry
    expect(workerSource).not.toMatch(/from "node:|require\(/);
  });

  it("runs in workerd with the module the runtime compiled", async () => {
    const info = await get<{ userAgent: string; moduleTag: string; moduleInstanceof: boolean; exports: number }>("/info");
    expect(info.userAgent).toBe("Cloudflare-Workers");
    expect(info.moduleTag).toBe("[object WebAssembly.Module]");
    expect(info.exports).toBeGreaterThan(20);
    console.log(`workerd: imported wasm module instanceof WebAssembly.Module = ${info.moduleInstanceof} (init() checks the tag)`);
  });

  it("trains a few steps per request, the loss falls across requests, and it answers predictions", async () => {
    type Train = { losses: number[]; step: number; loss: number; accuracy: number };
    const first = await get<Train>("/train?steps=8", { method: "POST" });
    expect(first.step).toBe(8);
    let last = first;
    for (let r = 0; r < 10; r++) last = await get<Train>("/train?steps=8", { method: "POST" });
    expect(last.step).toBe(88); // the model persists across requests in the isolate
    expect(last.loss).toBeLessThan(first.loss / 2);
    expect(last.accuracy).toBeGreaterThanOrEqual(0.9);

    const probe = xorData(64, 99);
    const { classes } = await get<{ classes: number[] }>("/predict", {
      method: "POST",
      body: JSON.stringify({ x: Array.from(probe.x) }),
    });
    const right = classes.filter((c, i) => c === probe.y[i]).length;
    expect(right / classes.length).toBeGreaterThanOrEqual(0.85);
    console.log(
      `workerd: loss ${first.loss.toFixed(4)} -> ${last.loss.toFixed(4)}, ` +
        `accuracy ${(100 * last.accuracy).toFixed(1)}%, held-out ${right}/64`,
    );
  });

  it("trains bit-identical weights to Node for the same seed and data", async () => {
    const r = await get<Det>("/determinism");
    expect(r.hex).toBe(nodeRun.hex);
    expect(r.losses).toEqual(nodeRun.losses);
    console.log(`workerd: ${r.params} trained weights, FNV-1a of their bits ${r.hash} (Node: ${nodeRun.hash})`);
  });

  it("accepts the module or { module }, and explains what Workers cannot do", async () => {
    const r = await get<Record<string, Attempt>>("/init-forms");
    expect(r.module).toEqual({ ok: true });
    expect(r.moduleObject).toEqual({ ok: true });
    for (const k of ["noSource", "bytes", "url"]) {
      expect(r[k]!.ok, k).toBe(false);
      expect(r[k]!.isAbiError, k).toBe(true);
      expect(r[k]!.message, k).toMatch(/import wasm from "edgegrad\/edgegrad\.wasm"/);
    }
  });

  it("never compiled WebAssembly from bytes (spied on every compile path)", async () => {
    expect(await get<string[]>("/compiled-from-bytes")).toEqual([]);
    // The spy works, and workerd really refuses: the same call made on purpose is seen and fails.
    const self = await get<{ seen: string[]; outcome: Attempt }>("/spy-self-test");
    expect(self.seen).toEqual(["compile"]);
    expect(self.outcome.ok).toBe(false);
    expect(self.outcome.message).toMatch(/disallowed by embedder/);
  });
});
