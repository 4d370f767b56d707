// A/B of two edgegrad.wasm builds in one process: `node bench/ab.mjs A.wasm B.wasm`.
// Both instances run the same workloads (MLP-S/M/BN training steps, INF-1, INF-128), timed
// alternately in 15 rounds of ~60 ms each after a warm-up, so drift in the shared machine's speed
// hits both alike. Prints the median time per call of each build and B/A. Use it to check that a
// kernel or build-flag change does not cost speed before running the full suite (`npm run bench`).
import { readFileSync } from "node:fs";
import { batchOf, edgegradFeatures, edgegradLayers, edgegradOptimizer } from "./impls.mjs";
import { MLPS } from "./workloads.mjs";

const files = process.argv.slice(2, 4);
if (files.length !== 2) throw new Error("usage: node bench/ab.mjs A.wasm B.wasm");
const mod = await import("edgegrad");
const egs = await Promise.all(files.map((f) => mod.init(readFileSync(f))));

/** One model per build for `mlp`, compiled like the benchmark's. */
function models(mlp, eg) {
  const opt = edgegradOptimizer(mod, edgegradFeatures(mod), mlp.optimizer);
  if (opt.missing) throw new Error(`not in this build: ${opt.missing}`);
  const m = eg.sequential({ inputs: mlp.inputs, seed: 1 }, edgegradLayers(mod, mlp));
  m.compile({ loss: "softmaxCrossEntropy", optimizer: opt.spec, maxBatch: mlp.batch });
  return m;
}

const work = {};
for (const id of ["mlp_s", "mlp_m", "mlp_bn"]) {
  const { x, y } = batchOf(MLPS[id]);
  work[id] = egs.map((eg) => {
    const m = models(MLPS[id], eg);
    return () => m.trainStep(x, y);
  });
}
for (const batch of [1, 128]) {
  const mlp = MLPS.mlp_m;
  const xb = batchOf(mlp).x.subarray(0, batch * mlp.inputs);
  work[`inf_${batch}`] = egs.map((eg) => {
    const m = models(mlp, eg);
    const out = new Float32Array(batch * m.outputs);
    return () => m.predict(xb, out);
  });
}

/** Mean ms per call of `f` over about `ms` milliseconds. */
function time(f, ms) {
  let n = 0;
  const t0 = performance.now();
  let t;
  do {
    f();
    n++;
    t = performance.now();
  } while (t - t0 < ms);
  return (t - t0) / n;
}
const median = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];

console.log(`A = ${files[0]}\nB = ${files[1]}`);
for (const [id, fs] of Object.entries(work)) {
  for (const f of fs) time(f, 300);
  const runs = [[], []];
  for (let round = 0; round < 15; round++) for (let i = 0; i < 2; i++) runs[i].push(time(fs[i], 60));
  const [a, b] = runs.map(median);
  console.log(`${id.padEnd(8)} A ${(a * 1000).toFixed(1).padStart(9)} µs   B ${(b * 1000).toFixed(1).padStart(9)} µs   B/A ${(b / a).toFixed(3)}`);
}
