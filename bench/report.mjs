// What a run prints and writes: one criterion-style block per benchmark, the ratio table with
// the issue's targets, and a self-contained HTML report with inline SVG charts.

import { fmtTime } from "./harness.mjs";

const IMPL_COLORS = { edgegrad: "#d9480f", "tfjs-wasm": "#1971c2", "tfjs-cpu": "#5c7cfa", "brain.js": "#2b8a3e" };

// ---------------------------------------------------------------------------------------------
// Numbers

const pct = (x, d = 1) => `${(x * 100).toFixed(d)} %`;
const signedPct = (x) => `${x >= 0 ? "+" : "−"}${Math.abs(x * 100).toFixed(2)} %`;
const group3 = (x) => Math.round(x).toLocaleString("en-US");

/**
 * Throughput (or latency) of an entry in its natural unit, from the median time and its 95 %
 * interval: [estimate, low, high] as strings.
 */
export function fmtThroughput(e) {
  if (e.unit === "GFLOP/s") return [e.gflops, ...e.gflopsCI].map((v) => v.toFixed(2));
  if (e.unit === "GB/s") return [e.gbPerSec, ...e.gbPerSecCI].map((v) => v.toFixed(1));
  if (e.unit === "samples/s") return [e.samplesPerSec, ...e.samplesPerSecCI].map(group3);
  if (e.unit === "µs") return [e.median, ...e.medianCI].map((v) => (v * 1000).toFixed(1));
  return [e.median, ...e.medianCI].map((v) => v.toFixed(2));
}

/** The value shown in the ratio table for an entry. */
function cell(e) {
  if (!e) return "";
  if (!e.times) return e.skipped?.startsWith("n/a") ? "n/a" : "skip";
  return fmtThroughput(e)[0] + (e.belowGoal ? "*" : "");
}

export function fmtChange(c) {
  return `change [${signedPct(c.changeCI[0])} ${signedPct(c.change)} ${signedPct(c.changeCI[1])}] (p = ${c.p.toFixed(3)}) ${c.verdict}`;
}

// ---------------------------------------------------------------------------------------------
// Console

/** Prints one implementation's result for one workload. */
export function printBenchmark(e, peak) {
  const pad = " ".repeat(14);
  const head = `  ${e.impl.padEnd(11)} `;
  if (!e.times) {
    console.log(`${head}${e.skipped}${e.note ? ` (${e.note})` : ""}`);
    return;
  }
  const t = (v) => fmtTime(v);
  console.log(`${head}median [${t(e.medianCI[0])} ${t(e.median)} ${t(e.medianCI[1])}]  mean [${t(e.meanCI[0])} ${t(e.mean)} ${t(e.meanCI[1])}]`);
  if (e.unit !== "ms") {
    const [v, lo, hi] = fmtThroughput(e);
    const unit = e.unit === "µs" ? "µs latency" : e.unit;
    const extra = e.unit === "GFLOP/s" && peak ? `  = ${pct(e.gflops / peak)} of peak` : e.unit === "µs" ? `  (${group3(e.samplesPerSec)} samples/s)` : "";
    console.log(`${pad}thrpt  [${lo} ${v} ${hi}] ${unit}${extra}`);
  }
  const o = e.outliers;
  const out = o.total ? `${o.total} outliers (${[["low severe", o.lowSevere], ["low mild", o.lowMild], ["high mild", o.highMild], ["high severe", o.highSevere]].filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(", ")})` : "no outliers";
  const goal = e.belowGoal ? " (below the 50-sample goal: time cap)" : "";
  console.log(`${pad}${e.samples} samples × ${e.iters} iter${goal}; ${out}${e.note ? `; ${e.note}` : ""}`);
  if (e.change) console.log(`${pad}${fmtChange(e.change)}`);
}

/**
 * Rows of the ratio table: one per workload with each implementation's entry and edgegrad's
 * speed-up over every alternative ({ value, ci } from `speedup(id, impl)`, or undefined).
 */
export function ratioRows(benchmarks, implNames, speedup) {
  const byId = new Map();
  for (const b of benchmarks) {
    if (!byId.has(b.id)) byId.set(b.id, { id: b.id, title: b.title, unit: b.unit, group: b.group, standInFor: b.standInFor, impls: {}, ratios: {} });
    byId.get(b.id).impls[b.impl] = b;
  }
  for (const r of byId.values()) for (const name of implNames.slice(1)) r.ratios[name] = speedup(r.id, name);
  return [...byId.values()];
}

const fmtRatio = (x) => (x === undefined ? "—" : `${x.value.toFixed(2)}×`);

function printTable(header, rows, rightAligned) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (rightAligned.has(i) ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "─".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
}

const fmtTargetNumber = (t, v) => (t.fmt === "pct" ? pct(v) : t.fmt === "x" ? `${v.toFixed(3)}×` : t.fmt === "ms" ? `${v.toFixed(2)} ms` : `${v.toFixed(2)} B/step`);
const fmtTargetValue = (t) => (t.value === undefined ? "—" : fmtTargetNumber(t, t.value));
const fmtTargetCI = (t) => (t.ci ? `${fmtTargetNumber(t, t.ci[0])} – ${fmtTargetNumber(t, t.ci[1])}` : "");
const fmtNeed = (t) => (t.fmt === "pct" ? `≥ ${pct(t.need, 0)}` : t.fmt === "x" ? `≥ ${t.need}×` : t.fmt === "ms" ? `≤ ${t.need} ms` : `${t.need} B/step`);
const status = (t) => (t.met === null ? "not measured" : t.met ? "met" : "NOT MET");

/** The ratio table, the targets and the change summary. */
export function printSummary(results, implNames) {
  const alts = implNames.slice(1);
  const peak = results.meta.peak.gflops;
  console.log(`\n══ ratio table: edgegrad vs each alternative (× = how many times faster edgegrad is: throughput ratio, or latency speed-up)`);
  console.log(`   from median times; peak probe ${peak.toFixed(1)} GFLOP/s; values: GFLOP/s, samples/s, µs (INF-1 latency) or ms (cold start);`);
  console.log(`   * = fewer than 50 samples (time cap); skip = not run (reason printed above); n/a = no such operation\n`);
  const header = ["workload", "unit", ...implNames, ...alts.map((a) => `×${a}`), "eg % peak"];
  const rows = results.ratios.map((r) => [
    r.id + (r.standInFor ? " (stand-in)" : ""),
    r.unit,
    ...implNames.map((n) => cell(r.impls[n])),
    ...alts.map((a) => fmtRatio(r.ratios[a])),
    r.impls.edgegrad?.gflops ? pct(r.impls.edgegrad.gflops / peak, 0) : "",
  ]);
  printTable(header, rows, new Set(header.map((_, i) => i).filter((i) => i >= 2)));

  // A filtered run leaves most targets unmeasured on purpose: list only what it measured.
  const filtered = results.meta.filters.length > 0;
  const shown = filtered ? results.targets.filter((t) => t.met !== null) : results.targets;
  console.log(`\n══ targets (issue 4; single thread, same run)${filtered ? "; filtered run: unmeasured targets not listed" : ""}\n`);
  printTable(
    ["target", "subject", "value", "95 % CI", "need", "status", "note"],
    shown.map((t) => [t.target, t.subject, fmtTargetValue(t), fmtTargetCI(t), fmtNeed(t), status(t), t.note ?? ""]),
    new Set([2, 3]),
  );
  const met = results.targets.filter((t) => t.met === true).length;
  const notMet = results.targets.filter((t) => t.met === false).length;
  const unknown = results.targets.filter((t) => t.met === null).length;
  console.log(`\n${met} met, ${notMet} not met, ${unknown} not measured`);
  const { start, end } = results.meta.loadAverage;
  console.log(`machine load (1-min average) ${start.toFixed(2)} at start, ${end.toFixed(2)} at end, ${results.meta.cores} cores${Math.max(start, end) > results.meta.cores - 1 ? ": other work competed for the CPU, so figures (edgegrad's and the alternatives') may read low" : ""}`);

  const changed = results.benchmarks.filter((b) => b.change);
  if (changed.length) {
    const n = (list, v) => list.filter((b) => b.change.verdict === v).length;
    const mine = changed.filter((b) => b.impl === "edgegrad");
    const theirs = changed.filter((b) => b.impl !== "edgegrad");
    console.log(`vs baseline (p < 0.05 and outside ±2 % to count): edgegrad ${n(mine, "improved")} improved, ${n(mine, "regressed")} regressed, ${n(mine, "no change")} no change`);
    if (theirs.length) {
      // The alternatives' code did not change between runs, so how far they moved is the machine's drift.
      const drift = theirs.map((b) => b.change.change).sort((a, b) => a - b)[theirs.length >> 1];
      console.log(`  alternatives (unchanged code): ${n(theirs, "improved")} improved, ${n(theirs, "regressed")} regressed; median change ${signedPct(drift)} = the machine's drift between the runs`);
    }
    for (const b of mine.filter((b) => b.change.verdict === "regressed")) console.log(`  regressed: ${b.id} ${signedPct(b.change.change)} (p = ${b.change.p.toFixed(3)})`);
  }
}

// ---------------------------------------------------------------------------------------------
// HTML

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

/**
 * Sample distribution of one benchmark: a histogram of per-iteration times (the baseline's in
 * grey behind it when there is one), the samples as a jittered strip, the median with its 95 %
 * interval as a band, the mean as a dashed line and the mild/severe outlier fences as ticks.
 */
function distributionSvg(e, before) {
  const W = 420;
  const H = 130;
  const L = 8;
  const R = 8;
  const all = [...e.times, ...(before?.times ?? [])];
  let lo = Math.min(...all);
  // Far outliers would squash the rest into one bar: the axis ends a little beyond the severe
  // fence (of this run and of the baseline) and samples past it are drawn at the edge, counted.
  const severe = Math.max(e.outliers.fences[3], before?.outliers?.fences[3] ?? -Infinity);
  const max = Math.max(...all);
  let hi = max > severe ? Math.min(max, severe + (severe - lo) * 0.1) : max;
  if (hi <= lo) hi = lo * 1.01 + 1e-9;
  const beyond = e.times.filter((t) => t > hi).length;
  const span = hi - lo;
  lo -= span * 0.04;
  hi += span * 0.04;
  const x = (v) => L + ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * (W - L - R);
  const bins = 24;
  const hist = (ts) => {
    const c = new Array(bins).fill(0);
    for (const t of ts) c[Math.max(0, Math.min(bins - 1, Math.floor(((t - lo) / (hi - lo)) * bins)))]++;
    return c.map((n) => n / ts.length);
  };
  const h = hist(e.times);
  const hb = before ? hist(before.times) : null;
  const top = Math.max(...h, ...(hb ?? [0]));
  const bw = (W - L - R) / bins;
  const bars = (hs, fill) => hs.map((f, i) => (f ? `<rect x="${(L + i * bw).toFixed(1)}" y="${(78 - (f / top) * 66).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${((f / top) * 66).toFixed(1)}" fill="${fill}"/>` : "")).join("");
  const color = IMPL_COLORS[e.impl] ?? "#555";
  let seed = 1;
  const jitter = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 14;
  const dots = e.times.map((t) => `<circle cx="${x(Math.min(t, hi)).toFixed(1)}" cy="${(90 + jitter()).toFixed(1)}" r="1.8" fill="${color}" fill-opacity="0.6"/>`).join("");
  const beyondLabel = beyond ? `<text x="${W - R}" y="18" font-size="10" text-anchor="end">+${beyond} beyond →</text>` : "";
  const fences = e.outliers.fences.map((f, i) => (f > lo && f < hi ? `<line x1="${x(f)}" x2="${x(f)}" y1="8" y2="108" stroke="#999" stroke-dasharray="${i === 0 || i === 3 ? "1,3" : "3,3"}"/>` : "")).join("");
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="sample distribution">
<rect x="${x(e.medianCI[0])}" y="8" width="${Math.max(1, x(e.medianCI[1]) - x(e.medianCI[0]))}" height="100" fill="${color}" fill-opacity="0.15"/>
${hb ? bars(hb, "#ced4da") : ""}${bars(h, color + "99")}${fences}
<line x1="${x(e.median)}" x2="${x(e.median)}" y1="8" y2="108" stroke="${color}" stroke-width="2"/>
<line x1="${x(e.mean)}" x2="${x(e.mean)}" y1="8" y2="108" stroke="#212529" stroke-dasharray="4,2"/>
${dots}${beyondLabel}
<text x="${L}" y="${H - 6}" font-size="10">${esc(fmtTime(lo))}</text><text x="${W - R}" y="${H - 6}" font-size="10" text-anchor="end">${esc(fmtTime(hi))}</text>
<text x="${W / 2}" y="${H - 6}" font-size="10" text-anchor="middle">time per iteration${hb ? " (grey: baseline)" : ""}</text>
</svg>`;
}

/**
 * Ratio chart: per workload one bar per alternative, length log10(edgegrad's speed-up), so bars
 * right of the 1× line mean edgegrad is faster; a black tick marks the issue's target vs TF.js-wasm.
 */
function ratioSvg(rows, alts, targets) {
  const targetFor = new Map();
  for (const t of targets) if (t.fmt === "x" && !targetFor.has(t.subject)) targetFor.set(t.subject, t.need);
  const shown = rows.filter((r) => alts.some((a) => r.ratios[a] !== undefined));
  const barH = 7;
  const rowH = barH * alts.length + 8;
  const labelW = 190;
  const W = 900;
  const all = shown.flatMap((r) => alts.map((a) => r.ratios[a]?.value).filter((v) => v !== undefined));
  const lmin = Math.floor(Math.log10(Math.min(0.5, ...all)));
  const lmax = Math.ceil(Math.log10(Math.max(2, ...all, ...targetFor.values())));
  const x = (v) => labelW + ((Math.log10(v) - lmin) / (lmax - lmin)) * (W - labelW - 20);
  const H = shown.length * rowH + 40;
  let s = `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="speed-up of edgegrad per workload">`;
  for (let p = lmin; p <= lmax; p++) {
    const v = 10 ** p;
    s += `<line x1="${x(v)}" x2="${x(v)}" y1="10" y2="${H - 24}" stroke="${p === 0 ? "#212529" : "#dee2e6"}"/><text x="${x(v)}" y="${H - 10}" font-size="10" text-anchor="middle">${v >= 1 ? v : v.toFixed(-p)}×</text>`;
  }
  shown.forEach((r, i) => {
    const y0 = 14 + i * rowH;
    s += `<text x="${labelW - 6}" y="${y0 + (barH * alts.length) / 2 + 3}" font-size="10" text-anchor="end">${esc(r.id)}</text>`;
    alts.forEach((a, j) => {
      const v = r.ratios[a]?.value;
      if (v === undefined) return;
      const x1 = Math.min(x(1), x(v));
      s += `<rect x="${x1}" y="${y0 + j * barH}" width="${Math.max(1, Math.abs(x(v) - x(1)))}" height="${barH - 1}" fill="${IMPL_COLORS[a]}"><title>${esc(`${r.id}: ${v.toFixed(2)}× vs ${a}, 95 % CI ${r.ratios[a].ci.map((c) => c.toFixed(2)).join("–")}`)}</title></rect>`;
    });
    const t = targetFor.get(r.id);
    if (t) s += `<line x1="${x(t)}" x2="${x(t)}" y1="${y0 - 2}" y2="${y0 + barH * alts.length + 1}" stroke="#000" stroke-width="2"><title>target ${t}× vs tfjs-wasm</title></line>`;
  });
  return `${s}</svg>`;
}

/** The whole report as one HTML string. */
export function writeHtml(results, implNames, baseline) {
  const { meta } = results;
  const alts = implNames.slice(1);
  const rows = results.ratios;
  const before = new Map((baseline?.benchmarks ?? []).filter((b) => b.times).map((b) => [`${b.id}|${b.impl}`, b]));
  const legend = alts.map((a) => `<span style="color:${IMPL_COLORS[a]}">■</span> vs ${esc(a)}`).join(" &nbsp; ");
  const tableRows = rows
    .map((r) => `<tr><td>${esc(r.id)}${r.standInFor ? " (stand-in)" : ""}</td><td>${esc(r.unit)}</td>${implNames.map((n) => `<td class="n" title="${esc(r.impls[n]?.skipped ?? r.impls[n]?.note ?? "")}">${esc(cell(r.impls[n]))}</td>`).join("")}${alts.map((a) => `<td class="n" title="${r.ratios[a] ? `95 % CI ${r.ratios[a].ci.map((c) => c.toFixed(2)).join("–")}` : ""}">${fmtRatio(r.ratios[a])}</td>`).join("")}<td class="n">${r.impls.edgegrad?.gflops ? pct(r.impls.edgegrad.gflops / meta.peak.gflops, 0) : ""}</td></tr>`)
    .join("\n");
  const targetRows = results.targets.map((t) => `<tr class="${t.met === false ? "bad" : t.met ? "ok" : ""}"><td>${esc(t.target)}</td><td>${esc(t.subject)}</td><td class="n">${esc(fmtTargetValue(t))}</td><td class="n">${esc(fmtTargetCI(t))}</td><td>${esc(fmtNeed(t))}</td><td>${status(t)}</td><td>${esc(t.note ?? "")}</td></tr>`).join("\n");
  const sections = rows
    .map((r) => {
      const figs = implNames
        .map((n) => {
          const e = r.impls[n];
          if (!e) return "";
          if (!e.times) return `<figure><figcaption><b>${esc(n)}</b>: ${esc(e.skipped)}</figcaption></figure>`;
          const [v, lo, hi] = fmtThroughput(e);
          const ch = e.change ? `<br>${esc(fmtChange(e.change))}` : "";
          return `<figure>${distributionSvg(e, before.get(`${e.id}|${e.impl}`))}<figcaption><b style="color:${IMPL_COLORS[n]}">${esc(n)}</b>: ${esc(v)} ${esc(e.unit)} [${esc(lo)} – ${esc(hi)}], median ${esc(fmtTime(e.median))}, mean ${esc(fmtTime(e.mean))}; ${e.samples} samples × ${e.iters}; ${e.outliers.total} outliers${e.note ? `; ${esc(e.note)}` : ""}${ch}</figcaption></figure>`;
        })
        .join("");
      return `<section><h3 id="${esc(r.id)}">${esc(r.id)} — ${esc(r.title)}</h3><div class="figs">${figs}</div></section>`;
    })
    .join("\n");
  const allocRows = Object.entries(results.alloc ?? {})
    .flatMap(([impl, list]) => list.map((a) => `<tr><td>${esc(impl)}</td><td>${esc(a.workload)}</td><td>${esc(a.skipped ?? a.summary)}</td></tr>`))
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgegrad bench — ${esc(meta.date)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#212529;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border-bottom:1px solid #dee2e6;padding:3px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.bad td{background:#fff5f5}tr.ok td{background:#f4fce3}
.figs{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;width:420px}figcaption{font-size:12px}
section{border-top:1px solid #dee2e6;margin-top:12px}code{background:#f1f3f5;padding:0 3px}
</style></head><body>
<h1>edgegrad benchmarks</h1>
<p>${esc(meta.mode)} run, ${esc(meta.date)}, ${meta.durationS.toFixed(0)} s · node ${esc(meta.node)} (V8 ${esc(meta.v8)}) · ${esc(meta.cpu)}, ${meta.cores} cores · single thread · load average ${meta.loadAverage.start.toFixed(2)} → ${meta.loadAverage.end.toFixed(2)}<br>
${Object.entries(meta.impls).map(([k, v]) => `<b>${esc(k)}</b> ${esc(v)}`).join(" · ")}<br>
peak probe (simd128 f32 mul+add): <b>${meta.peak.gflops.toFixed(1)} GFLOP/s</b>${meta.baseline ? ` · compared with <code>${esc(meta.baseline)}</code>` : " · no baseline"}</p>
<h2>Speed-up of edgegrad</h2><p>${legend} &nbsp; (log scale; right of 1× = edgegrad faster; black tick = target vs tfjs-wasm)</p>
${ratioSvg(rows, alts, results.targets)}
<h2>Ratio table</h2>
<table><tr><th>workload</th><th>unit</th>${implNames.map((n) => `<th>${esc(n)}</th>`).join("")}${alts.map((a) => `<th>×${esc(a)}</th>`).join("")}<th>eg % peak</th></tr>
${tableRows}</table>
<h2>Targets</h2>
<table><tr><th>target</th><th>subject</th><th>value</th><th>95 % CI</th><th>need</th><th>status</th><th>note</th></tr>${targetRows}</table>
<h2>Allocations per training step</h2><table><tr><th>impl</th><th>workload</th><th>result</th></tr>${allocRows}</table>
<h2>Sample distributions</h2>
<p>Histogram of per-iteration times (grey behind: the baseline run), samples as dots, median (the estimate) as a solid line with its 95 % bootstrap interval shaded, mean dashed, Tukey fences (mild 1.5 IQR, severe 3 IQR) dotted.</p>
${sections}
</body></html>
`;
}
