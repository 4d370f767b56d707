// Each example runs in its runtime: examples/node in Node, examples/browser in Chromium (served by
// its own serve.mjs), examples/worker in workerd with Durable Object storage persisted to disk —
// and the Worker is restarted to prove the learned weights survive.
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, ROOT, runPage, startScript, tempDir } from "./harness.mjs";

const run = promisify(execFile);

describe("examples", () => {
  it("examples/node trains the spirals, generalises and restores its weights", async () => {
    const { stdout } = await run(process.execPath, [join(ROOT, "examples", "node", "train.mjs")], { cwd: ROOT });
    const accuracy = Number(/held-out loss [\d.]+, accuracy ([\d.]+)%/.exec(stdout)?.[1]);
    expect(accuracy, stdout).toBeGreaterThanOrEqual(90);
    expect(stdout).toContain("restored model predicts identically: true");
  }, 60_000);

  it("examples/browser trains live in Chromium and draws the loss curve", async () => {
    // Started as its README says, on an ephemeral port.
    const server = await startScript(join(ROOT, "examples", "browser", "serve.mjs"), ["0"]);
    const browser = await launchChromium();
    try {
      const { result, errors } = await runPage(browser.context, server.url);
      const r = result as { losses: number[]; accuracy: number; points: number };
      expect(errors).toEqual([]);
      expect(r.points).toBe(r.losses.length); // one SVG point per epoch
      expect(r.losses[r.losses.length - 1]!).toBeLessThan(r.losses[0]! / 4);
      expect(r.accuracy).toBeGreaterThanOrEqual(0.9);
    } finally {
      await browser.close();
      await server.close();
    }
  }, 120_000);

  describe("examples/worker (workerd + Durable Object storage)", () => {
    let tmp = "";
    let worker: Awaited<ReturnType<typeof startScript>> | undefined;
    let url = "";

    beforeAll(async () => {
      tmp = await tempDir("worker-example");
    });
    afterAll(async () => {
      await worker?.close();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    // Started as its README says (`node examples/worker/dev.mjs`), on an ephemeral port.
    const boot = async () => {
      worker = await startScript(join(ROOT, "examples", "worker", "dev.mjs"), ["0", "--state", join(tmp, "state")]);
      url = worker.url.replace(/\/$/, "");
    };
    const post = async <T>(path: string, body: unknown): Promise<T> => {
      const res = await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) });
      const text = await res.text();
      expect(res.status, text).toBe(200);
      return JSON.parse(text) as T;
    };
    const state = async () => (await (await fetch(`${url}/state`)).json()) as { samples: number; steps: number; fingerprint: string };

    // Points in [-1, 1)²; class 1 inside the circle of radius √0.5.
    let seed = 1;
    const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
    const sample = () => {
      const x = [rnd(), rnd()];
      return { x, y: x[0]! * x[0]! + x[1]! * x[1]! < 0.5 ? 1 : 0 };
    };
    const probe = Array.from({ length: 400 }, sample);
    const accuracy = async () => {
      const { classes } = await post<{ classes: number[] }>("/predict", { x: probe.map((p) => p.x) });
      return classes.filter((c, i) => c === probe[i]!.y).length / probe.length;
    };
    const learn = async (requests: number) => {
      const losses: number[] = [];
      for (let i = 0; i < requests; i++) {
        const { loss } = await post<{ loss: number }>("/learn", { samples: Array.from({ length: 64 }, sample) });
        losses.push(loss);
      }
      return losses;
    };

    it("learns online from POSTed samples, and a restart loses nothing", async () => {
      await boot();
      expect(await state()).toMatchObject({ samples: 0 });
      const losses = await learn(50);
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
      expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)));
      const acc = await accuracy();
      expect(acc).toBeGreaterThanOrEqual(0.85);
      const before = await state();
      expect(before.samples).toBe(50 * 64);
      const predictions = await post("/predict", { x: probe.map((p) => p.x) });

      // Stop the process (and workerd with it) and start a new one on the same storage directory.
      await worker!.close();
      worker = undefined;
      await boot();
      const after = await state();
      expect(after.samples).toBe(before.samples);
      expect(after.fingerprint).toBe(before.fingerprint); // the very same Float32 bits
      expect(after.steps).toBe(0); // a new model object, loaded from storage
      expect(await post("/predict", { x: probe.map((p) => p.x) })).toEqual(predictions);

      // Learning continues from the stored weights.
      await learn(30);
      expect((await state()).samples).toBe(80 * 64);
      expect(await accuracy()).toBeGreaterThanOrEqual(Math.min(0.9, acc));
    }, 120_000);

    it("rejects malformed samples with a 400 that names the problem", async () => {
      if (!worker) await boot();
      const bad = await fetch(`${url}/learn`, { method: "POST", body: JSON.stringify({ samples: [{ x: [0.1, 0.2], y: 7 }] }) });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toMatch(/label 7/);
      const short = await fetch(`${url}/predict`, { method: "POST", body: JSON.stringify({ x: [[1]] }) });
      expect(short.status).toBe(400);
    }, 60_000);
  });
});
