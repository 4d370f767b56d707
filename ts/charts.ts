// SVG line charts of a training run: train/validation loss and accuracy, the learning rate, and
// per-layer gradient norms over the training steps (log scale), the picture that shows vanishing
// or exploding gradients. Pure string building with no imports at run time, shared by the CLI's
// HTML report (ts/cli/report.ts) and the browser example, which redraws them live while it trains
// (rollup emits this module alone as dist/charts.js; it is not part of the library entries).

import type { StepStats } from "./model.js";

/** One epoch's row of a training run (History-like). */
export interface ReportEpoch {
  /** 0-based epoch. */
  epoch: number;
  /** Learning rate used during the epoch. */
  lr: number;
  /** Mean training loss. */
  loss: number;
  /** Training accuracy, when measured. */
  accuracy?: number;
  /** Validation loss, when there is a validation split. */
  valLoss?: number;
  /** Validation accuracy, when there is a validation split. */
  valAccuracy?: number;
}

/** Gradient norms of one sampled training step: the global norm and one per layer. */
export interface GradSample {
  /** Optimizer step (1-based). */
  step: number;
  /** Global gradient L2 norm. */
  total: number;
  /** Per-layer gradient L2 norms, in layer order. */
  layers: number[];
}

/**
 * Keeps at most ~`max` evenly spaced step samples however long training runs: it records every
 * `every`-th step and, when full, drops every other sample and doubles `every`.
 */
export class GradientRecorder {
  /** The kept samples, in step order. */
  samples: GradSample[] = [];
  /** Current sampling interval in steps. */
  every = 1;
  readonly #max: number;

  /** `max` is the most samples kept (default 400, enough for a 700-px-wide chart). */
  constructor(max = 400) {
    this.#max = max;
  }

  /** True when step `step` should be recorded (call lastStepStats() only then). */
  wants(step: number): boolean {
    return step % this.every === 0;
  }

  /** Records one step's stats if wanted; usable directly as fit()'s onBatchEnd. */
  record = (step: number, stats: StepStats): void => {
    if (!this.wants(step)) return;
    this.samples.push({ step, total: stats.gradNorm, layers: stats.layers.map((l) => l.gradNorm) });
    if (this.samples.length >= 2 * this.#max) {
      this.every *= 2;
      this.samples = this.samples.filter((s) => s.step % this.every === 0);
    }
  };
}

/** A series of (x, y) points with its legend name and colour. */
export interface Series {
  name: string;
  color: string;
  points: [number, number][];
  dashed?: boolean;
}

// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"];
/** Width of one chart in px (its viewBox; the SVG scales down with max-width: 100%). */
export const CHART_WIDTH = 520;
const W = CHART_WIDTH;
const H = 280;
const M = { l: 60, r: 16, t: 34, b: 42 };

export const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** Compact number for tick labels. */
function fmt(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(0).replace("e+", "e");
  return String(Number(v.toPrecision(3)));
}

/** About `n` "nice" ticks (1, 2, 5 × 10^k steps) covering [lo, hi]. */
function niceTicks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

/** Centred moving average of log10(y) over `k` neighbours each side (a geometric-mean smoother for norms). */
function smoothLog(points: [number, number][], k: number): [number, number][] {
  const logs = points.map(([, y]) => Math.log10(y));
  return points.map(([x], i) => {
    let sum = 0;
    let n = 0;
    for (let j = Math.max(0, i - k); j <= Math.min(points.length - 1, i + k); j++) {
      sum += logs[j]!;
      n++;
    }
    return [x, 10 ** (sum / n)];
  });
}

/**
 * One SVG line chart; `logY` plots log10(y) with decade ticks (non-positive values are skipped)
 * and, for noisy per-step series (`smooth`), draws the raw values faintly under a smoothed line.
 * The legend sits beside the title when it fits, otherwise in rows under it.
 */
export function lineChart(title: string, xLabel: string, series: Series[], opts: { logY?: boolean; yMin?: number; yMax?: number; smooth?: boolean } = {}): string {
  const logY = opts.logY ?? false;
  const tf = (y: number) => (logY ? Math.log10(y) : y);
  const keep = (s: Series) => s.points.filter(([, y]) => Number.isFinite(y) && (!logY || y > 0));
  const pts = series.flatMap(keep);
  // legend layout
  const itemW = (s: Series) => 22 + 6.2 * s.name.length;
  const legendW = series.reduce((a, s) => a + itemW(s) + 8, 0);
  const inline = M.l + 8 * title.length + 16 + legendW <= W - M.r;
  const legend: { s: Series; x: number; y: number }[] = [];
  let top = M.t;
  if (inline) {
    let lx = W - M.r;
    for (const s of [...series].reverse()) {
      lx -= itemW(s);
      legend.push({ s, x: lx, y: 16 });
      lx -= 8;
    }
  } else {
    let lx = M.l;
    let ly = 38;
    for (const s of series) {
      if (lx + itemW(s) > W - M.r) {
        lx = M.l;
        ly += 16;
      }
      legend.push({ s, x: lx, y: ly });
      lx += itemW(s) + 8;
    }
    top = ly + 14;
  }
  const pw = W - M.l - M.r;
  const ph = H - top - M.b;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`,
    `<text x="${M.l}" y="20" class="title">${esc(title)}</text>`,
  ];
  for (const { s, x, y } of legend) {
    const dash = s.dashed ? ` stroke-dasharray="5 3"` : "";
    parts.push(`<line x1="${x.toFixed(1)}" x2="${(x + 14).toFixed(1)}" y1="${y}" y2="${y}" stroke="${s.color}" stroke-width="2.5"${dash}/>`);
    parts.push(`<text x="${(x + 18).toFixed(1)}" y="${y + 4}" class="legend">${esc(s.name)}</text>`);
  }
  if (pts.length === 0) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="empty">no data</text></svg>`);
    return parts.join("\n");
  }
  let x0 = Math.min(...pts.map((p) => p[0]));
  let x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = opts.yMin ?? Math.min(...pts.map((p) => tf(p[1])));
  let y1 = opts.yMax ?? Math.max(...pts.map((p) => tf(p[1])));
  if (x1 === x0) [x0, x1] = [x0 - 0.5, x1 + 0.5];
  if (y1 === y0) [y0, y1] = logY ? [y0 - 0.5, y1 + 0.5] : [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  if (logY) [y0, y1] = [Math.floor(y0), Math.ceil(y1)];
  else {
    const pad = (y1 - y0) * 0.05;
    if (opts.yMin === undefined) y0 -= pad;
    if (opts.yMax === undefined) y1 += pad;
  }
  const sx = (x: number) => M.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => top + ph - ((tf(y) - y0) / (y1 - y0)) * ph;
  const yTicks = logY ? Array.from({ length: y1 - y0 + 1 }, (_, i) => y0 + i) : niceTicks(y0, y1);
  for (const t of yTicks) {
    const y = top + ph - ((t - y0) / (y1 - y0)) * ph;
    parts.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${M.l - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" class="tick">${logY ? `1e${t}` : fmt(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1, 6)) {
    const x = sx(t);
    parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${top + ph}" y2="${top + ph + 4}" class="axis"/>`);
    parts.push(`<text x="${x.toFixed(1)}" y="${top + ph + 17}" text-anchor="middle" class="tick">${fmt(t)}</text>`);
  }
  parts.push(`<rect x="${M.l}" y="${top}" width="${pw}" height="${ph}" class="frame"/>`);
  parts.push(`<text x="${M.l + pw / 2}" y="${H - 6}" text-anchor="middle" class="label">${esc(xLabel)}</text>`);
  const path = (p: [number, number][]) => p.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
  for (const s of series) {
    const p = keep(s);
    if (p.length === 0) continue;
    const dash = s.dashed ? ` stroke-dasharray="5 3"` : "";
    let main = p;
    if (opts.smooth && logY && p.length > 20) {
      parts.push(`<path class="raw" d="${path(p)}" stroke="${s.color}"/>`);
      main = smoothLog(p, Math.max(1, Math.round(p.length / 60)));
    }
    parts.push(`<path class="series" data-series="${esc(s.name)}" d="${path(main)}" stroke="${s.color}"${dash}/>`);
    if (p.length === 1) parts.push(`<circle cx="${sx(p[0]![0]).toFixed(1)}" cy="${sy(p[0]![1]).toFixed(1)}" r="3" fill="${s.color}"/>`);
  }
  parts.push("</svg>");
  return parts.join("\n");
}

/** What the training charts show. */
export interface ChartData {
  /** One entry per completed epoch. */
  epochs: ReportEpoch[];
  /** Sampled gradient norms. */
  grads: GradSample[];
  /** A name per layer for the gradient-norm legend, e.g. "dense 64 relu". */
  layerNames: string[];
}

/** One chart: its standalone `<svg>` markup and a caption explaining how to read it. */
export interface Chart {
  /** Chart title, also the SVG's aria-label. */
  title: string;
  /** The `<svg class="chart">` element as markup; style it with CHART_CSS. */
  svg: string;
  /** One sentence on how to read it. */
  caption: string;
}

/**
 * The training charts: loss, accuracy (when measured), learning rate and per-layer gradient
 * norms. Call it again with more epochs and samples to redraw while training runs.
 */
export function trainingCharts(r: ChartData): Chart[] {
  const e = r.epochs;
  const pick = (k: keyof ReportEpoch): [number, number][] =>
    e.flatMap((row) => (row[k] === undefined ? [] : [[row.epoch + 1, row[k] as number] as [number, number]]));
  const charts: Chart[] = [];
  const add = (title: string, xLabel: string, series: Series[], opts: Parameters<typeof lineChart>[3], caption: string) =>
    charts.push({ title, svg: lineChart(title, xLabel, series, opts), caption });
  add(
    "Loss",
    "epoch",
    [
      { name: "train", color: PALETTE[0]!, points: pick("loss") },
      { name: "validation", color: PALETTE[1]!, points: pick("valLoss"), dashed: true },
    ],
    {},
    "Mean loss per epoch. Validation loss rising while training loss falls means overfitting.",
  );
  const acc = [
    { name: "train", color: PALETTE[0]!, points: pick("accuracy") },
    { name: "validation", color: PALETTE[1]!, points: pick("valAccuracy"), dashed: true },
  ];
  if (acc.some((s) => s.points.length)) {
    const lo = Math.min(...acc.flatMap((s) => s.points.map((p) => p[1])));
    add("Accuracy", "epoch", acc, { yMax: 1, yMin: Math.max(0, Math.floor(lo * 10) / 10) }, "Fraction classified correctly after each epoch.");
  }
  add("Learning rate", "epoch", [{ name: "lr", color: PALETTE[2]!, points: pick("lr") }], {}, "The optimizer's base rate used in each epoch.");
  const gradSeries: Series[] = r.layerNames
    .map((name, l) => ({ name, color: PALETTE[l % PALETTE.length]!, points: r.grads.map((g) => [g.step, g.layers[l] ?? NaN] as [number, number]) }))
    .filter((s) => s.points.some(([, y]) => y > 0));
  add(
    "Gradient L2 norm per layer (log scale)",
    "training step",
    gradSeries,
    { logY: true, smooth: true },
    "Smoothed (raw values faint). Norms shrinking by decades toward the first layer mean vanishing gradients; growing ones, exploding gradients.",
  );
  return charts;
}

/** Styles for the chart SVGs' classes (title, ticks, grid, series…); put it in a `<style>`. */
export const CHART_CSS = `
svg.chart { display: block; max-width: 100%; height: auto; }
svg .title { font-size: 14px; font-weight: 600; fill: #1d2330; }
svg .tick, svg .legend { font-size: 11px; fill: #4a5263; }
svg .label { font-size: 12px; fill: #4a5263; }
svg .empty { font-size: 13px; fill: #8a93a5; }
svg .grid { stroke: #e8ebf0; stroke-width: 1; }
svg .axis { stroke: #9aa3b2; stroke-width: 1; }
svg .frame { fill: none; stroke: #9aa3b2; stroke-width: 1; }
svg .series { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
svg .raw { fill: none; stroke-width: 1; opacity: 0.18; }
`;
