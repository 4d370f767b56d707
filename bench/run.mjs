// `npm run bench`: edgegrad against TensorFlow.js (wasm and cpu backends) and brain.js on the
// workloads of issue 4, in one run, with criterion-style statistics, change detection against
// the previous run, a ratio table with the issue's targets, JSON and an HTML report.
//
// Usage: node bench/run.mjs [--quick] [--filter NAME[,NAME…]] [--impl edgegrad,tfjs-wasm,…]
//                           [--json FILE] [--html FILE] [--baseline FILE] [--no-save] [--wasm FILE]
// See bench/README.md.

import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BUDGETS, measure } from "./harness.mjs";
import { loadImpls } from "./impls.mjs";
import { hasRelaxedSimd, measurePeak } from "./peak.mjs";
import { compareSamples, ratioCI } from "./stats.mjs";
import { printBenchmark, printSummary, ratioRows, writeHtml } from "./report.mjs";
import { MLPS, evaluateTargets, probeMlp, workloads } from "./workloads.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");
const ALL_IMPLS = ["edgegrad", "tfjs-wasm", "tfjs-cpu", "brain.js"];

function parseArgs(argv) {
  const o = { quick: false, filters: [], impls: ALL_IMPLS, json: null, html: resolve(ROOT, "build/bench/report.html"), baseline: null, save: true, wasm: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--quick") o.quick = true;
    else if (a === "--filter") o.filters.push(...val().split(",").filter(Boolean));
    else if (a === "--impl") o.impls = val().split(",");
    else if (a === "--json") o.json = resolve(val());
    else if (a === "--html") o.html = resolve(val());
    else if (a === "--baseline") o.baseline = resolve(val());
    else if (a === "--no-save") o.save = false;
    else if (a === "--wasm") o.wasm = resolve(val());
    else if (a === "--help" || a === "-h") {
      console.log(readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(4, 7).join("\n"));
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (see --help)`);
  }
  for (const n of o.impls) if (!ALL_IMPLS.includes(n)) throw new Error(`--impl: unknown implementation ${n}; expected ${ALL_IMPLS.join(", ")}`);
  if (!o.impls.includes("edgegrad")) o.impls = ["edgegrad", ...o.impls]; // the subject of every ratio
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const mode = opts.quick ? "quick" : "full";
const budget = BUDGETS[mode];
const matches = (id) => opts.filters.length === 0 || opts.filters.some((f) => id.toLowerCase().includes(f.toLowerCase()));
if (opts.wasm) process.env.EDGEGRAD_BENCH_WASM = opts.wasm; // children inherit it
const runStart = performance.now();
const startDate = new Date().toISOString();

// ---------------------------------------------------------------------------------------------
// Baseline: the newest earlier run in the same mode (or --baseline FILE).

const BASELINE_DIR = resolve(HERE, ".baselines", mode);
function loadBaseline() {
  const file = opts.baseline ?? (() => {
    try {
      const names = readdirSync(BASELINE_DIR).filter((f) => f.endsWith(".json")).sort();
      return names.length ? resolve(BASELINE_DIR, names[names.length - 1]) : null;
    } catch {
      return null;
    }
  })();
  if (!file) return null;
  const data = JSON.parse(readFileSync(file, "utf8"));
  return { file, data, byKey: new Map(data.benchmarks.filter((b) => b.times).map((b) => [`${b.id}|${b.impl}`, b])) };
}
const baseline = loadBaseline();

// ---------------------------------------------------------------------------------------------
// Header, implementations, peak probe.

let impls;
try {
  impls = await loadImpls(opts.impls);
} catch (e) {
  console.error(`could not load the implementations: ${e.message}`);
  if (e.name === "AbiError") console.error("dist/ and the wasm builds disagree: rebuild with `npm run build` (or pass --wasm FILE)");
  process.exit(1);
}
const edgegrad = impls[0];
const cpu = os.cpus()[0]?.model ?? "unknown CPU";
console.log(`edgegrad bench — ${mode} run, ${startDate}`);
console.log(`node ${process.version} (V8 ${process.versions.v8}) on ${cpu}, ${os.cpus().length} cores, ${os.platform()}-${os.arch()}; single thread everywhere`);
// Other processes on the machine slow every benchmark down in bursts; the load average says how
// much to trust this run (above the core count, expect noisy medians and wide intervals).
const loadStart = os.loadavg()[0];
console.log(`machine load (1-min average): ${loadStart.toFixed(2)} on ${os.cpus().length} cores${loadStart > os.cpus().length - 1 ? " — busy: expect noise" : ""}`);
for (const impl of impls) console.log(`  ${impl.name.padEnd(10)} ${impl.version}`);
if (edgegrad.note) console.log(`  note: ${edgegrad.note}`);
console.log(baseline ? `comparing with ${baseline.file} (${baseline.data.meta.date})` : "no baseline yet: this run becomes the first");
if (baseline && baseline.data.meta.edgegradWasm !== edgegrad.wasmHash) console.log(`  edgegrad.wasm changed since the baseline: ${baseline.data.meta.edgegradWasm} → ${edgegrad.wasmHash}`);
console.log(`sampling: ≥ ${budget.samples} samples of ~${budget.sampleMs} ms after ${budget.warmupMs} ms warm-up; cap ${budget.capMs / 1000} s per benchmark (then ≥ ${budget.minSamples} samples, flagged)\n`);

const peakOpts = opts.quick ? { runMs: 20, reps: 8 } : { runMs: 40, reps: 15 };
const peakRuns = [measurePeak(peakOpts)];
console.log(`peak probe: ${peakRuns[0].gflops.toFixed(1)} GFLOP/s simd128 f32 mul+add (best of ${peakRuns[0].perCount.map((p) => `${p.accumulators} acc ${p.gflops.toFixed(1)}`).join(", ")})`);
// For reference only (edgegrad ships no relaxed-simd build; README "Speed" says why): the limit
// with fused multiply-add, where the engine validates relaxed-simd.
const fmaPeak = hasRelaxedSimd() ? measurePeak({ ...peakOpts, fused: true }) : null;
console.log(
  fmaPeak
    ? `relaxed-simd probe: ${fmaPeak.gflops.toFixed(1)} GFLOP/s f32x4.relaxed_madd (${((fmaPeak.gflops / peakRuns[0].gflops - 1) * 100).toFixed(0)} % above mul+add)\n`
    : "relaxed-simd probe: not validated by this engine (Node 20: --experimental-wasm-relaxed-simd)\n",
);

// ---------------------------------------------------------------------------------------------
// Timed workloads: every implementation back to back on the same workload, so drift in the
// machine's speed hits them alike.

const benchmarks = [];
function record(entry) {
  const prev = baseline?.byKey.get(`${entry.id}|${entry.impl}`);
  if (entry.times && prev?.times && prev.unitsPerIter === entry.unitsPerIter) {
    entry.change = compareSamples(prev.times, entry.times);
  }
  benchmarks.push(entry);
  printBenchmark(entry, peakRuns[0].gflops);
}

for (const w of workloads(edgegrad.features)) {
  if (!matches(w.id)) continue;
  const w0 = performance.now();
  console.log(`── ${w.id}: ${w.title}`);
  for (const impl of impls) {
    await impl.activate();
    const base = { id: w.id, group: w.group, title: w.title, impl: impl.name, unit: w.unit, standInFor: w.standInFor };
    let h;
    try {
      h = w.make(impl);
    } catch (e) {
      record({ ...base, skipped: `error: ${e.message}` });
      continue;
    }
    if (h.skip) {
      record({ ...base, skipped: h.skip });
      continue;
    }
    let r;
    try {
      r = measure(h.run, budget);
    } catch (e) {
      r = { skipped: `error while running: ${e.name}: ${e.message}` };
    }
    const leaked = h.leakCheck?.() ?? 0;
    h.dispose();
    if (r.skipped) {
      record({ ...base, skipped: r.skipped.startsWith("error") ? r.skipped : `skipped: ${r.skipped}`, note: h.note });
      continue;
    }
    const unitsPerIter = w.group === "gemm" || w.group === "optim" ? 1 : h.samplesPerRun;
    const note = [h.note, leaked > 0 ? `${leaked} tensors leaked` : ""].filter(Boolean).join("; ");
    const entry = { ...base, ...r, note, unitsPerIter, perUnitMs: r.median / unitsPerIter };
    // Throughput from the median time (and its interval): robust to the other processes that
    // share this machine, and conservative for edgegrad (GC pauses of the alternatives that hit
    // fewer than half of the samples do not count against them).
    if (w.group === "gemm") {
      Object.assign(entry, { m: w.m, n: w.n, k: w.k, flops: w.flops, gflops: w.flops / (r.median * 1e6), gflopsCI: [w.flops / (r.medianCI[1] * 1e6), w.flops / (r.medianCI[0] * 1e6)] });
    } else if (w.group === "optim") {
      Object.assign(entry, { bytes: w.bytes, gbPerSec: w.bytes / (r.median * 1e6), gbPerSecCI: [w.bytes / (r.medianCI[1] * 1e6), w.bytes / (r.medianCI[0] * 1e6)] });
    } else {
      entry.samplesPerSec = (unitsPerIter * 1000) / r.median;
      entry.samplesPerSecCI = [(unitsPerIter * 1000) / r.medianCI[1], (unitsPerIter * 1000) / r.medianCI[0]];
    }
    record(entry);
  }
  console.log(`  (${((performance.now() - w0) / 1000).toFixed(1)} s)\n`);
}

// ---------------------------------------------------------------------------------------------
// Cold start and allocations: fresh child processes.

function child(args, nodeFlags = []) {
  const out = spawnSync(process.execPath, [...nodeFlags, resolve(HERE, "child.mjs"), ...args], { cwd: ROOT, encoding: "utf8", env: process.env, maxBuffer: 1 << 20 });
  if (out.status !== 0) {
    const lines = (out.stderr || out.stdout).split("\n");
    const why = lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.filter(Boolean).slice(-1)[0];
    throw new Error(`child ${args.join(" ")} failed: ${why}`);
  }
  return JSON.parse(out.stdout.trim().split("\n").pop());
}

const coldMlp = probeMlp("mlp_s", edgegrad.features);
const coldId = "cold_start";
if (matches(coldId)) {
  console.log(`── ${coldId}: import + init + first ${coldMlp.title} training step, fresh process each sample (ms from before the import)`);
  for (const impl of impls) {
    const mlpArg = coldMlp === MLPS.mlp_s ? "mlp_s" : "mlp_s_standin";
    const base = { id: coldId, group: "cold", title: `cold start (${coldMlp.title})`, impl: impl.name, unit: "ms" };
    try {
      const parts = [];
      const r = measure(
        () => {
          const c = child(["cold", impl.name, mlpArg]);
          parts.push(c);
          return c.ms;
        },
        BUDGETS[opts.quick ? "coldQuick" : "coldFull"],
        { reportsMs: true },
      );
      const med = (key) => parts.map((p) => p[key]).sort((a, b) => a - b)[parts.length >> 1].toFixed(1);
      const step = parts[0]?.firstStepMs !== undefined ? `model ${med("modelMs")} ms, first step ${med("firstStepMs")} ms` : `model + first step ${med("stepMs")} ms`;
      const note = `median split: import ${med("importMs")} ms, init ${med("initMs")} ms, ${step}; process start to done ${med("sinceProcessStartMs")} ms`;
      if (r.skipped) record({ ...base, skipped: `skipped: ${r.skipped}` });
      else record({ ...base, ...r, note, unitsPerIter: 1, perUnitMs: r.median });
    } catch (e) {
      record({ ...base, skipped: `error: ${e.message}` });
    }
  }
  console.log("");
}

const alloc = {};
const allocSteps = 1000;
const allocPlan = [];
for (const impl of impls) {
  const ids = impl.name === "edgegrad" ? (opts.quick ? ["mlp_s"] : Object.keys(MLPS)) : opts.quick ? [] : ["mlp_s"];
  for (const id of ids) if (matches(`alloc_${id}`)) allocPlan.push([impl.name, id]);
}
if (allocPlan.length) {
  console.log(`── alloc: bytes allocated per training step after warm-up (${allocSteps} steps, child with --expose-gc)`);
  for (const [name, id] of allocPlan) {
    const mlp = probeMlp(id, edgegrad.features);
    const arg = mlp === MLPS[id] ? id : `${id}_standin`;
    let a;
    try {
      a = child(["alloc", name, arg, String(allocSteps)], ["--expose-gc", "--max-semi-space-size=64"]);
    } catch (e) {
      a = { skipped: `error: ${e.message}` };
    }
    a.workload = arg;
    if (!a.skipped) {
      const gc = a.gcInWindow ? " (a GC ran during the window: a lower bound)" : "";
      const parts = [`JS heap ${a.jsBytesPerStep.toFixed(1)} B/step${gc}`];
      if (a.wasmAllocationsPerStep !== undefined) parts.push(`wasm allocator ${a.wasmAllocationsPerStep} calls/step, heap+live growth ${a.wasmBytesPerStep} B/step`);
      if (a.tfTensorsLeakedPerStep !== undefined) parts.push(`tensors leaked ${a.tfTensorsLeakedPerStep}/step, backend bytes growth ${a.wasmBytesPerStep} B/step`);
      a.summary = parts.join("; ");
    }
    (alloc[name] ??= []).push(a);
    console.log(`  ${`${arg} · ${name}`.padEnd(34)} ${a.skipped ?? a.summary}`);
  }
  console.log("");
}

// ---------------------------------------------------------------------------------------------
// Summary: second peak probe (the best of both is the machine's limit), ratios, targets.

peakRuns.push(measurePeak(peakOpts));
const peak = Math.max(...peakRuns.map((p) => p.gflops));
for (const b of benchmarks) if (b.gflops) b.pctPeak = b.gflops / peak;

const byKey = new Map(benchmarks.filter((b) => b.times).map((b) => [`${b.id}|${b.impl}`, b]));
const get = (id, impl) => byKey.get(`${id}|${impl}`);
const cold = Object.fromEntries(impls.map((i) => [i.name, get(coldId, i.name)]).filter(([, v]) => v));
// Speed-up of edgegrad over `impl` on `id` (against `refId` of the alternative, e.g. its NN
// matmul) with a bootstrap interval over both sample sets, per unit of work.
function speedup(id, impl, refId = id) {
  const eg = get(id, "edgegrad");
  const alt = get(refId, impl);
  if (!eg || !alt) return undefined;
  const perUnit = (b) => b.times.map((t) => t / b.unitsPerIter);
  return { value: alt.perUnitMs / eg.perUnitMs, ci: ratioCI(perUnit(alt), perUnit(eg)) };
}
const targets = evaluateTargets({ speedup, get, peak, cold, alloc });

const meta = {
  date: startDate,
  mode,
  node: process.version,
  v8: process.versions.v8,
  cpu,
  cores: os.cpus().length,
  filters: opts.filters,
  impls: Object.fromEntries(impls.map((i) => [i.name, i.version])),
  edgegradWasm: edgegrad.wasmHash,
  edgegradFeatures: edgegrad.features,
  budget,
  peak: { gflops: peak, runs: peakRuns, relaxedSimdFma: fmaPeak },
  baseline: baseline?.file ?? null,
  loadAverage: { start: loadStart, end: os.loadavg()[0] },
  durationS: 0,
};
const names = impls.map((i) => i.name);
const ratios = ratioRows(benchmarks, names, speedup);
const results = { meta, benchmarks, ratios, alloc, targets };
printSummary(results, names);
meta.durationS = (performance.now() - runStart) / 1000;
console.log(`\nrun took ${meta.durationS.toFixed(0)} s`);

// ---------------------------------------------------------------------------------------------
// Outputs.

if (opts.save) {
  mkdirSync(BASELINE_DIR, { recursive: true });
  const file = resolve(BASELINE_DIR, `${meta.date.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify(results));
  const old = readdirSync(BASELINE_DIR).filter((f) => f.endsWith(".json")).sort().slice(0, -20);
  for (const f of old) rmSync(resolve(BASELINE_DIR, f));
  console.log(`baseline saved: ${file}`);
}
if (opts.json) {
  mkdirSync(dirname(opts.json), { recursive: true });
  writeFileSync(opts.json, JSON.stringify(results, null, 1));
  console.log(`JSON written: ${opts.json}`);
}
if (opts.html) {
  mkdirSync(dirname(opts.html), { recursive: true });
  writeFileSync(opts.html, writeHtml(results, names, baseline?.data));
  console.log(`HTML report: ${opts.html}`);
}
