// Measurements that need a fresh process, run by run.mjs as children (one JSON line on stdout):
//   node bench/child.mjs cold <impl> <mlp>
//       import + init + first training step of <mlp>, timed from before the library's import.
//   node --expose-gc --max-semi-space-size=64 bench/child.mjs alloc <impl> <mlp> <steps>
//       bytes allocated per training step after a warm-up: JS heap (V8 space usage around a
//       window of <steps> steps minus a window of steps/4, so fixed costs cancel) and, for edgegrad,
//       the wasm allocator's call count, live bytes and heap size.
// <mlp> is an MLPS key, optionally suffixed "_standin" (plain SGD, no batch norm).

import v8 from "node:v8";
import { PerformanceObserver } from "node:perf_hooks";
import { batchOf } from "./impls.mjs";
import { MLPS, standIn } from "./workloads.mjs";

const [mode, impl, mlpId, stepsArg] = process.argv.slice(2);
const mlp = mlpId.endsWith("_standin") ? standIn(MLPS[mlpId.slice(0, -"_standin".length)]) : MLPS[mlpId];
if (!mlp) throw new Error(`unknown mlp ${mlpId}`);

/** Loads one implementation (the library import is inside the timed region for "cold"). */
async function load(name) {
  const impls = await import("./impls.mjs");
  if (name === "edgegrad") return impls.loadEdgegrad();
  if (name === "tfjs-wasm") return impls.loadTfBackend("wasm");
  if (name === "tfjs-cpu") return impls.loadTfBackend("cpu");
  if (name === "brain.js") return impls.loadBrain();
  throw new Error(`unknown implementation ${name}`);
}

if (mode === "cold") {
  // Timed from before the library's import to the end of the first training step, split into
  // import, init (load + compile + instantiate the wasm; TF.js: backend set-up) and model + step
  // (edgegrad also: sequential + compile, then the first trainStep alone).
  // Data is made before the clock starts; nothing else is loaded inside the timed region.
  const { x, y } = batchOf(mlp);
  const { edgegradLayers, edgegradOptimizer, edgegradFeatures } = await import("./impls.mjs");
  const wasmPath = process.env.EDGEGRAD_BENCH_WASM;
  const t0 = performance.now();
  let t1;
  let t2;
  let tModel; // edgegrad: after sequential() + compile(), before the first trainStep()
  if (impl === "edgegrad") {
    const mod = await import("edgegrad");
    t1 = performance.now();
    const eg = await mod.init(wasmPath ? (await import("node:fs")).readFileSync(wasmPath) : undefined);
    t2 = performance.now();
    const opt = edgegradOptimizer(mod, edgegradFeatures(mod), mlp.optimizer);
    if (opt.missing) throw new Error(`not in this build: ${opt.missing}`);
    const model = eg.sequential({ inputs: mlp.inputs, seed: 1 }, edgegradLayers(mod, mlp));
    model.compile({ loss: "softmaxCrossEntropy", optimizer: opt.spec, maxBatch: mlp.batch });
    tModel = performance.now();
    model.trainStep(x, y);
  } else if (impl.startsWith("tfjs")) {
    const { loadTf, loadTfBackend } = await import("./impls.mjs");
    const backend = impl.slice("tfjs-".length);
    await loadTf(backend); // import @tensorflow/tfjs (+ tfjs-backend-wasm)
    t1 = performance.now();
    const lib = await loadTfBackend(backend); // setBackend + ready
    t2 = performance.now();
    lib.train(mlp).run();
  } else {
    const lib = await load(impl);
    t1 = t2 = performance.now();
    lib.train(mlp).run();
  }
  const t3 = performance.now();
  const split = { importMs: t1 - t0, initMs: t2 - t1, stepMs: t3 - t2, ...(tModel && { modelMs: tModel - t2, firstStepMs: t3 - tModel }) };
  console.log(JSON.stringify({ ms: t3 - t0, ...split, sinceProcessStartMs: t3 }));
} else if (mode === "alloc") {
  const steps = Number(stepsArg ?? 1000);
  const lib = await load(impl);
  const trainer = lib.train(mlp);
  if (trainer.skip) {
    console.log(JSON.stringify({ skipped: trainer.skip }));
    process.exit(0);
  }
  // Every step runs through one plain function, warmed up until optimised, so the windows below
  // do not count the JIT's own work (a fresh loop's on-stack replacement, feedback).
  const runSteps = (n) => {
    for (let i = 0; i < n; i++) trainer.run();
  };
  // Warm-up: JIT tiers (trainStep and its callers need a few thousand calls to be optimised and
  // inlined, which is what removes the boxed loss), arenas, optimizer state. 3,000 steps, 20 s at most.
  const warmEnd = performance.now() + 20000;
  for (let done = 0; done < 3000 && performance.now() < warmEnd; done += 50) runSteps(50);

  let gcs = [];
  new PerformanceObserver((list) => gcs.push(...list.getEntries())).observe({ entryTypes: ["gc"] });
  const SPACES = new Set(["new_space", "old_space", "new_large_object_space", "large_object_space"]);
  const heapUsed = () => {
    let s = 0;
    for (const sp of v8.getHeapSpaceStatistics()) if (SPACES.has(sp.space_name)) s += sp.space_used_size;
    return s;
  };
  const wasm = () => lib.memory?.() ?? {};

  /** Heap growth around n steps (after a full gc), the wasm counters, and gcs seen meanwhile. */
  async function window(n) {
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 20));
    gcs = [];
    const w0 = wasm();
    const start = performance.now();
    const a = heapUsed();
    runSteps(n);
    const b = heapUsed();
    const end = performance.now();
    const w1 = wasm();
    await new Promise((r) => setTimeout(r, 20)); // let the gc observer deliver
    const gcInWindow = gcs.filter((e) => e.startTime >= start && e.startTime <= end).length;
    return { js: b - a, gcInWindow, w0, w1 };
  }
  // Per step = (growth over `steps` − growth over steps/4) / (3/4 · steps): what the window
  // itself costs (the probes, the call) is the same in both and cancels.
  async function measure() {
    const short = Math.max(1, Math.round(steps / 4));
    const s = await window(short);
    const l = await window(steps);
    const per = steps - short;
    const out = { jsBytesPerStep: Math.max(0, (l.js - s.js) / per), gcInWindow: s.gcInWindow + l.gcInWindow };
    const { w0, w1 } = l;
    if (impl === "edgegrad") {
      out.wasmAllocationsPerStep = (w1.allocations - w0.allocations) / steps;
      out.wasmBytesPerStep = (Math.max(0, w1.liveBytes - w0.liveBytes) + (w1.heapBytes - w0.heapBytes)) / steps;
    } else if (impl.startsWith("tfjs")) {
      out.tfTensorsLeakedPerStep = (w1.numTensors - w0.numTensors) / steps;
      out.wasmBytesPerStep = Math.max(0, w1.numBytes - w0.numBytes) / steps;
    }
    return out;
  }
  // Two measurements; the smaller JS figure wins (a one-off such as a late JIT tier-up is not per-step).
  const w = [await measure(), await measure()];
  const best = w[0].jsBytesPerStep <= w[1].jsBytesPerStep ? w[0] : w[1];
  console.log(JSON.stringify({ steps, ...best, windows: w }));
} else {
  throw new Error(`usage: child.mjs cold|alloc <impl> <mlp> [steps]`);
}
