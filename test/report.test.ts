// The training report (ts/cli/report.ts) rendered by headless Chromium: a real `edgegrad train`
// run writes report.html, the page must show four charts whose curves are non-empty SVG paths
// inside their plot areas with the shapes training produces (falling loss spanning every epoch,
// one gradient-norm line per layer), and a screenshot goes to build/report-screenshot.png.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../ts/cli/main.js";
import { GradientRecorder, renderReport } from "../ts/cli/report.js";
import { rng, WASM } from "./helpers.js";
import { launchChromium } from "./runtimes/harness.mjs";

const SCREENSHOT = fileURLToPath(new URL("../build/report-screenshot.png", import.meta.url));

describe("GradientRecorder", () => {
  it("keeps a bounded, evenly spaced sample of any number of steps", () => {
    const rec = new GradientRecorder(50);
    const stats = (s: number) => ({ loss: 1, gradNorm: s, clipScale: 1, layers: [{ gradNorm: s, weightNorm: 1, updateNorm: 1, updateRatio: 1 }] });
    for (let s = 1; s <= 10_000; s++) rec.record(s, stats(s));
    expect(rec.samples.length).toBeLessThan(100);
    expect(rec.samples.length).toBeGreaterThanOrEqual(50);
    const gaps = new Set(rec.samples.slice(1).map((g, i) => g.step - rec.samples[i]!.step));
    expect(gaps.size).toBe(1);
    expect(rec.samples.at(-1)!.step).toBeGreaterThan(10_000 - rec.every);
  });

  it("renders 'no data' rather than an empty path", () => {
    const html = renderReport({ title: "t", summary: [], epochs: [], grads: [], layerNames: ["a"] });
    expect(html).toContain("no data");
    expect(html).not.toContain('class="series"');
  });
});

describe("training report in headless Chromium", () => {
  let dir: string;
  let html: string;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "edgegrad-report-"));
    const r = rng(5);
    const lines = ["x1,x2,label"];
    for (let i = 0; i < 900; i++) {
      const c = i % 3;
      const rad = 1 + c + (r() - 0.5) * 0.6;
      const a = r() * 2 * Math.PI;
      lines.push(`${(rad * Math.cos(a)).toFixed(4)},${(rad * Math.sin(a)).toFixed(4)},${c}`);
    }
    await writeFile(join(dir, "rings.csv"), `${lines.join("\n")}\n`);
    const sink = { write: () => true };
    const code = await main(
      ["train", "rings.csv", "--target", "label", "--layers", "32,32,16", "--lr", "0.01", "--schedule", "cosine", "--epochs", "30", "--out", "run"],
      { stdout: sink, stderr: sink, cwd: dir, wasm: WASM },
    );
    expect(code).toBe(0);
    html = await readFile(join(dir, "run", "report.html"), "utf8");
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("draws loss, accuracy, learning-rate and per-layer gradient-norm curves", async () => {
    const page = await browser!.context.newPage();
    await page.setViewportSize({ width: 1180, height: 900 });
    await page.setContent(html, { waitUntil: "load" });
    const charts = await page.$$eval("svg.chart", (svgs) =>
      svgs.map((svg) => ({
        title: svg.querySelector(".title")?.textContent ?? "",
        series: Array.from(svg.querySelectorAll<SVGPathElement>("path.series"), (p) => {
          const box = p.getBBox();
          return {
            name: p.dataset["series"] ?? "",
            d: p.getAttribute("d") ?? "",
            length: p.getTotalLength(),
            box: { x: box.x, y: box.y, width: box.width, height: box.height },
          };
        }),
        rendered: svg.getBoundingClientRect().width,
        plot: (({ x, y, width, height }) => ({ x0: x, x1: x + width, y0: y, y1: y + height }))(svg.querySelector<SVGRectElement>("rect.frame")!.getBBox()),
      })),
    );
    expect(charts.map((c) => c.title)).toEqual(["Loss", "Accuracy", "Learning rate", "Gradient L2 norm per layer (log scale)"]);
    expect(charts.map((c) => c.series.map((s) => s.name))).toEqual([
      ["train", "validation"],
      ["train", "validation"],
      ["lr"],
      ["L0 dense 32 relu", "L1 dense 32 relu", "L2 dense 16 relu", "L3 dense 3 (logits)"],
    ]);
    for (const chart of charts) {
      expect(chart.rendered).toBeGreaterThan(400);
      const PLOT = chart.plot;
      expect(PLOT.x1 - PLOT.x0).toBeGreaterThan(400);
      expect(PLOT.y1 - PLOT.y0).toBeGreaterThan(150);
      for (const s of chart.series) {
        const pts = [...s.d.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
        const what = `${chart.title} / ${s.name}`;
        expect(pts.length, what).toBeGreaterThanOrEqual(30); // 30 epochs, or the sampled steps
        expect(s.length, what).toBeGreaterThan(100);
        for (const [x, y] of pts) {
          expect(x, what).toBeGreaterThanOrEqual(PLOT.x0 - 0.5);
          expect(x, what).toBeLessThanOrEqual(PLOT.x1 + 0.5);
          expect(y, what).toBeGreaterThanOrEqual(PLOT.y0 - 0.5);
          expect(y, what).toBeLessThanOrEqual(PLOT.y1 + 0.5);
        }
        // every curve spans the whole x axis (all epochs, or all steps)
        expect(s.box.width, what).toBeGreaterThan(0.95 * (PLOT.x1 - PLOT.x0));
      }
    }
    const [loss, acc, lr] = charts;
    const first = (d: string) => Number(/M[\d.]+,([\d.]+)/.exec(d)![1]);
    const last = (d: string) => Number(/,([\d.]+)$/.exec(d)![1]);
    // SVG y grows downwards: loss falls, accuracy rises, the cosine schedule falls.
    expect(last(loss!.series[0]!.d)).toBeGreaterThan(first(loss!.series[0]!.d) + 50);
    expect(last(acc!.series[1]!.d)).toBeLessThan(first(acc!.series[1]!.d) - 30);
    expect(last(lr!.series[0]!.d)).toBeGreaterThan(first(lr!.series[0]!.d) + 100);
    await mkdir(join(SCREENSHOT, ".."), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.close();
  });
});
