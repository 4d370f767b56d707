// The training report: one self-contained HTML file (no scripts, no external assets) with
// inline SVG line charts of train/validation loss and accuracy, the learning rate, and the
// per-layer gradient norms over the training steps (log scale), the picture that shows
// vanishing or exploding gradients. The charts come from ts/charts.ts, which the browser
// example also uses to draw them live. Pure string building, so it also runs in a browser.

import { CHART_CSS, CHART_WIDTH, esc, trainingCharts, type GradSample, type ReportEpoch } from "../charts.js";

export { GradientRecorder, type GradSample, type ReportEpoch } from "../charts.js";

/** Everything the report shows. */
export interface ReportData {
  /** Heading, e.g. the command that trained the model. */
  title: string;
  /** Key/value lines shown under the heading (dataset, model, optimizer, result). */
  summary: [string, string][];
  /** One entry per completed epoch. */
  epochs: ReportEpoch[];
  /** Sampled gradient norms. */
  grads: GradSample[];
  /** A name per layer for the gradient-norm legend, e.g. "dense 64 relu". */
  layerNames: string[];
  /** A note shown prominently, e.g. that training was interrupted. */
  note?: string;
}

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; background: #f6f7f9; margin: 0; padding: 24px 32px; }
h1 { font-size: 20px; margin: 0 0 4px; font-family: ui-monospace, Menlo, monospace; font-weight: 600; }
.sub { color: #5b6475; margin: 0 0 16px; }
.note { background: #fff4d6; border: 1px solid #e6c66b; padding: 8px 12px; border-radius: 6px; margin: 0 0 16px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 0 0 20px; }
dt { color: #5b6475; } dd { margin: 0; font-family: ui-monospace, Menlo, monospace; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(${CHART_WIDTH}px, 1fr)); gap: 16px; }
.card { background: #fff; border: 1px solid #dfe3ea; border-radius: 8px; padding: 8px; }
.card p { margin: 4px 8px 6px; color: #5b6475; font-size: 12.5px; }
table { border-collapse: collapse; margin-top: 20px; background: #fff; font-family: ui-monospace, Menlo, monospace; font-size: 12.5px; }
th, td { border: 1px solid #dfe3ea; padding: 3px 10px; text-align: right; } th { background: #eef1f5; }
${CHART_CSS}`;

/** The report as a standalone HTML document. */
export function renderReport(r: ReportData): string {
  const e = r.epochs;
  const cols: [string, keyof ReportEpoch][] = [
    ["epoch", "epoch"],
    ["lr", "lr"],
    ["loss", "loss"],
    ["accuracy", "accuracy"],
    ["val loss", "valLoss"],
    ["val accuracy", "valAccuracy"],
  ];
  const shown = cols.filter(([, k]) => e.some((row) => row[k] !== undefined));
  const cell = (k: keyof ReportEpoch, v: number | undefined) =>
    v === undefined ? "" : k === "epoch" ? String(v + 1) : k === "lr" ? v.toExponential(2) : v.toFixed(4);
  const table = `<table><tr>${shown.map(([h]) => `<th>${h}</th>`).join("")}</tr>
${e.map((row) => `<tr>${shown.map(([, k]) => `<td>${cell(k, row[k] as number | undefined)}</td>`).join("")}</tr>`).join("\n")}</table>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgegrad training report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${CSS}</style></head>
<body>
<h1>${esc(r.title)}</h1>
<p class="sub">edgegrad training report · ${e.length} epoch${e.length === 1 ? "" : "s"}</p>
${r.note ? `<p class="note">${esc(r.note)}</p>` : ""}
<dl>${r.summary.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>
<div class="charts">
${trainingCharts(r).map((c) => `<div class="card">${c.svg}<p>${esc(c.caption)}</p></div>`).join("\n")}
</div>
${table}
</body></html>
`;
}
