#!/usr/bin/env node
// The size budget and cold-start table (`npm run size`, after `npm run build`):
//   - dist/edgegrad.wasm raw and gzipped; budget 200 kB raw;
//   - each JS entry bundled with the shared core and minified by esbuild, raw / minified / gzipped;
//     budget 40 kB minified (see BUDGET; the inline entry, which carries the wasm as base64, is not
//     budgeted), also for each subpath entry (edgegrad/schedules, /callbacks, /safetensors) with
//     the part of the core it needs; one more row, for information, has the browser entry and
//     all three subpaths together (an app that uses everything);
//   - cold start = import + init() + the first training step, in a fresh Node process, a fresh
//     Chromium profile, and a freshly started workerd, median of --runs (default 3).
// Options: --runs N, --no-cold (sizes only), --json FILE (also write the numbers as JSON).
// Exits 1 when a budget is exceeded. kB = 1000 bytes.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import {
  bundleWorker,
  FIXTURES,
  importClosure,
  launchChromium,
  packagePageHtml,
  ROOT,
  runPage,
  serve,
  startWorker,
  tempDir,
} from "../test/runtimes/harness.mjs";

// JS: issue 5's 40 kB for each runtime entry. The optional parts (schedules, callbacks,
// safetensors) are subpath entries that an app imports only when it uses them.
const BUDGET = { wasmRaw: 200_000, jsMinified: 40_000 };
const SUBPATHS = ["schedules.js", "callbacks.js", "safetensors.js"];
const DIST = join(ROOT, "dist");
const run = promisify(execFile);

const { values: opts } = parseArgs({
  options: { runs: { type: "string", default: "3" }, "no-cold": { type: "boolean", default: false }, json: { type: "string" } },
});
const RUNS = Math.max(1, Number(opts.runs) || 3);

const gz = (bytes) => gzipSync(bytes, { level: 9 }).length;
const kB = (n) => (n === undefined ? "—" : `${(n / 1000).toFixed(1)} kB`);
const ms = (n) => `${n.toFixed(0)} ms`;
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

// ---- sizes ----

async function sizes() {
  const wasm = await readFile(join(DIST, "edgegrad.wasm"));
  const rows = [{ name: "edgegrad.wasm", raw: wasm.length, gzip: gz(wasm), budget: BUDGET.wasmRaw, measure: "raw" }];
  // [row, the dist files an app imports, esbuild platform, budgeted]
  const entries = [
    ["JS browser/default (index.js)", ["index.js"], "browser", true],
    ["JS workerd/worker (workerd.js)", ["workerd.js"], "neutral", true],
    ["JS node (node.js)", ["node.js"], "node", true],
    ["JS inline (inline.js, wasm as base64)", ["inline.js"], "browser", false],
    ...SUBPATHS.map((file) => [`JS subpath ${file}`, [file], "browser", true]),
    ["JS index.js + all three subpaths", ["index.js", ...SUBPATHS], "browser", false],
  ];
  for (const [name, files, platform, budgeted] of entries) {
    const closure = new Set();
    for (const file of files) for (const f of await importClosure(join(DIST, file))) closure.add(f);
    let raw = 0;
    for (const f of closure) raw += (await readFile(f)).length;
    const out = await build({
      // Several files: one module re-exporting them all, as an app importing each would.
      ...(files.length === 1
        ? { entryPoints: [join(DIST, files[0])] }
        : { stdin: { contents: files.map((f) => `export * from "./${f}";`).join("\n"), resolveDir: DIST, loader: "js" } }),
      bundle: true,
      minify: true,
      format: "esm",
      platform,
      target: "es2022",
      external: ["node:*"],
      write: false,
      logLevel: "silent",
    });
    const min = out.outputFiles[0].contents;
    rows.push({ name, raw, minified: min.length, gzip: gz(min), budget: budgeted ? BUDGET.jsMinified : undefined, measure: "minified" });
  }
  for (const r of rows) r.ok = r.budget === undefined || r[r.measure] <= r.budget;
  return rows;
}

// ---- cold start ----

async function coldNode() {
  const code = `
    const t0 = performance.now();
    const lib = await import(${JSON.stringify(new URL("../dist/node.js", import.meta.url).href)});
    const eg = await lib.init();
    const t1 = performance.now();
    const { firstStep } = await import(${JSON.stringify(new URL("../test/runtimes/fixtures/workload.mjs", import.meta.url).href)});
    const t2 = performance.now();
    firstStep(lib, eg);
    const t3 = performance.now();
    console.log(JSON.stringify({ initMs: t1 - t0, coldStartMs: t1 - t0 + (t3 - t2) }));`;
  const samples = [];
  for (let i = 0; i < RUNS; i++) {
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", code]);
    samples.push(JSON.parse(stdout));
  }
  return { runtime: `Node ${process.versions.node} (fresh process)`, ...summarize(samples) };
}

async function coldChromium() {
  const server = await serve({
    mounts: { "/pkg/dist/": DIST, "/fixtures/": FIXTURES },
    pages: { "/index.html": packagePageHtml() },
  });
  const samples = [];
  let version = "";
  try {
    for (let i = 0; i < RUNS; i++) {
      const browser = await launchChromium(); // a fresh profile: empty HTTP and code caches
      try {
        version = browser.version;
        const { result } = await runPage(browser.context, `${server.url}/index.html`);
        samples.push({ initMs: result.initMs, coldStartMs: result.coldStartMs });
      } finally {
        await browser.close();
      }
    }
  } finally {
    await server.close();
  }
  return { runtime: `Chromium ${version} (fresh profile)`, ...summarize(samples) };
}

async function coldWorkerd() {
  // Timers inside a Worker only advance across I/O, so this is measured from Node over loopback:
  // startup = workerd launched and the Worker loaded (the runtime compiles edgegrad.wasm here);
  // first request = init() with that module + the first training step + the HTTP round trip.
  const dir = await tempDir("size-workerd");
  const { rm } = await import("node:fs/promises");
  const samples = [];
  try {
    const script = await bundleWorker(join(FIXTURES, "worker.mjs"), dir);
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const { mf, url } = await startWorker(script);
      try {
        const t1 = performance.now();
        const res = await fetch(`${url}/cold`);
        if (!res.ok) throw new Error(`workerd /cold: HTTP ${res.status} ${await res.text()}`);
        await res.json();
        const t2 = performance.now();
        samples.push({ startupMs: t1 - t0, coldStartMs: t2 - t1 });
      } finally {
        await mf.dispose();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const version = createRequire(import.meta.url)("miniflare/package.json").version;
  return { runtime: `workerd (miniflare ${version}, first request)`, ...summarize(samples) };
}

function summarize(samples) {
  const out = { runs: samples.length };
  for (const key of Object.keys(samples[0])) {
    out[key] = median(samples.map((s) => s[key]));
    out[`${key}Range`] = [Math.min(...samples.map((s) => s[key])), Math.max(...samples.map((s) => s[key]))];
  }
  return out;
}

// ---- report ----

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

const sizeRows = await sizes();
const lines = ["edgegrad size budget (dist/; kB = 1000 bytes; JS = entry + shared core, minified by esbuild)"];
lines.push(`  ${pad("", 40)}${lpad("raw", 10)}${lpad("minified", 11)}${lpad("gzip", 10)}   budget`);
for (const r of sizeRows) {
  const budget = r.budget === undefined ? "(not budgeted)" : `${r.measure} <= ${kB(r.budget)}  ${r.ok ? "ok" : "OVER BUDGET"}`;
  lines.push(`  ${pad(r.name, 40)}${lpad(kB(r.raw), 10)}${lpad(kB(r.minified), 11)}${lpad(kB(r.gzip), 10)}   ${budget}`);
}

let cold = [];
if (!opts["no-cold"]) {
  cold = [await coldNode(), await coldChromium(), await coldWorkerd()];
  const of = RUNS > 1 ? `median of ${RUNS} [min-max]` : "one run";
  lines.push("", `cold start: import + init() + first training step (${of})`);
  for (const c of cold) {
    const extra =
      c.startupMs !== undefined ? `   (+ Worker startup ${ms(c.startupMs)}: workerd up, wasm compiled)` : `   (init ${ms(c.initMs)})`;
    const range = RUNS > 1 ? ` [${c.coldStartMsRange.map((v) => v.toFixed(0)).join("-")}]` : "";
    lines.push(`  ${pad(c.runtime, 48)}${lpad(ms(c.coldStartMs), 8)}${pad(range, 10)}${extra}`);
  }
}

console.log(lines.join("\n"));
const ok = sizeRows.every((r) => r.ok);
if (opts.json) await writeFile(opts.json, JSON.stringify({ ok, budget: BUDGET, sizes: sizeRows, coldStart: cold }, null, 2));
if (!ok) {
  console.error("size-report: over budget");
  process.exitCode = 1;
}
