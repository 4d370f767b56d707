// Each example runs in its runtime: examples/node in Node, examples/browser in Chromium (served by
// its own serve.mjs), examples/worker in workerd with Durable Object storage persisted to disk —
// and the Worker is restarted to prove the learned weights survive.
import { execFile } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, ROOT, startScript, tempDir } from "./harness.mjs";

const run = promisify(execFile);
/** Where the browser example's screenshot goes (after training, all four charts drawn). */
const SCREENSHOT = join(ROOT, "build", "browser-example.png");

describe("examples", () => {
  it("examples/node trains the spirals, generalises and restores its weights", async () => {
    const { stdout } = await run(process.execPath, [join(ROOT, "examples", "node", "train.mjs")], { cwd: ROOT });
    const accuracy = Number(/held-out loss [\d.]+, accuracy ([\d.]+)%/.exec(stdout)?.[1]);
    expect(accuracy, stdout).toBeGreaterThanOrEqual(90);
    expect(stdout).toContain("restored model predicts identically: true");
  }, 60_000);

  it("examples/browser trains live in Chromium and draws the report's four charts as it learns", async () => {
    // Started as its README says, on an ephemeral port.
    const server = await startScript(join(ROOT, "examples", "browser", "serve.mjs"), ["0"]);
    const browser = await launchChromium();
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("response", (r) => void (r.status() >= 400 && errors.push(`HTTP ${r.status()} ${r.url()}`)));
    // Per chart: its title and, per series path, the number of points drawn (M/L commands).
    const charts = () =>
      page.$$eval("#charts svg.chart", (svgs) =>
        svgs.map((svg) => ({
          title: svg.getAttribute("aria-label") ?? "",
          paths: Array.from(svg.querySelectorAll("path.series"), (p) => ({
            name: p.getAttribute("data-series") ?? "",
            points: ((p.getAttribute("d") ?? "").match(/[ML]/g) ?? []).length,
            length: (p as SVGPathElement).getTotalLength(),
          })),
        })),
      );
    // Watches the live page: after each epoch's redraw (the page then sets body[data-epoch]), a
    // MutationObserver notes how many points every chart's paths have, before training goes on.
    await page.addInitScript(() => {
      const seen: { epoch: number; points: number[][] }[] = [];
      (window as { __seen?: typeof seen }).__seen = seen;
      document.addEventListener("DOMContentLoaded", () => {
        new MutationObserver(() => {
          const svgs = Array.from(document.querySelectorAll("#charts svg.chart"));
          seen.push({
            epoch: Number(document.body.dataset["epoch"]),
            points: svgs.map((svg) => Array.from(svg.querySelectorAll("path.series"), (p) => ((p.getAttribute("d") ?? "").match(/[ML]/g) ?? []).length)),
          });
        }).observe(document.body, { attributes: true, attributeFilter: ["data-epoch"] });
      });
    });
    try {
      await page.setViewportSize({ width: 1120, height: 820 });
      await page.goto(server.url, { waitUntil: "load" });
      await page.waitForFunction(() => "__result" in window || "__error" in window, null, { timeout: 120_000, polling: 50 });
      const { result, error, seen } = await page.evaluate(() => {
        const w = window as { __result?: unknown; __error?: unknown; __seen?: { epoch: number; points: number[][] }[] };
        return { result: w.__result, error: w.__error, seen: w.__seen ?? [] };
      });
      expect(error).toBeUndefined();
      expect(errors).toEqual([]);
      const r = result as { losses: number[]; lrs: number[]; steps: number; accuracy: number };
      const after = await charts();
      await mkdir(join(ROOT, "build"), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });

      // Redrawn live: one look per epoch, each with four charts whose per-epoch curves have
      // exactly one point per epoch so far, and a gradient-norm line per layer that has grown
      // between the early look (epoch 20) and the end.
      expect(seen.map((s) => s.epoch)).toEqual(r.losses.map((_, i) => i + 1));
      for (const s of seen) {
        expect(s.points.length, `epoch ${s.epoch}`).toBe(4);
        for (const c of s.points.slice(0, 3)) for (const n of c) expect(n, `epoch ${s.epoch}`).toBe(s.epoch);
        expect(s.points[3]!.length, `epoch ${s.epoch}`).toBe(3);
        for (const n of s.points[3]!) expect(n, `epoch ${s.epoch}`).toBeGreaterThan(1);
      }
      const early = seen[19]!.points;
      const late = seen.at(-1)!.points;
      for (const [i, c] of late.entries()) for (const [j, n] of c.entries()) expect(n, `chart ${i} path ${j}`).toBeGreaterThan(early[i]![j]!);

      const titles = ["Loss", "Accuracy", "Learning rate", "Gradient L2 norm per layer (log scale)"];
      expect(after.map((c) => c.title)).toEqual(titles);
      expect(after.map((c) => c.paths.map((p) => p.name))).toEqual([
        ["train", "validation"],
        ["train", "validation"],
        ["lr"],
        ["L0 dense 32 relu", "L1 dense 32 relu", "L2 dense 2"],
      ]);
      // Non-empty paths in the finished page.
      for (const c of after) for (const p of c.paths) expect(p.length, `${c.title} / ${p.name}`).toBeGreaterThan(0);
      // Per-epoch charts have a point per epoch; the gradient norms are sampled per step.
      for (const c of after.slice(0, 3)) for (const p of c.paths) expect(p.points, c.title).toBe(r.losses.length);
      expect(after[0]!.paths[0]!.points).toBe(150);
      expect(r.steps).toBeGreaterThan(1000); // 400 rows / 32 per batch × 150 epochs = 1950 steps
      // The cosine schedule: the rate falls from its start towards 0 by the last epoch.
      expect(r.lrs[0]!).toBeGreaterThan(10 * r.lrs.at(-1)!);
      expect(r.losses.at(-1)!).toBeLessThan(r.losses[0]! / 4);
      expect(r.accuracy).toBeGreaterThanOrEqual(0.9);
    } finally {
      await page.close().catch(() => {});
      await browser.close();
      await server.close();
    }
  }, 180_000);

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
