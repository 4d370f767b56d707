#!/usr/bin/env node
// The soak run (`npm run soak`, after `npm run build`; not part of `npm test`): trains a small
// model (16 -> 32 relu -> batchNorm -> dropout 0.1 -> 4, Adam, batch 32) for --steps training
// steps (default 100,000) and every --every steps (default 10,000) prints the wasm heap size,
// the allocator's live bytes and handles, the allocations made in the interval, and the JS
// heapUsed after a forced GC. Each interval also runs the other long-lived paths once per 1,000
// steps: a 10-step fit(), predict() into a reused buffer, and evaluate(); with --checkpoints
// also save() + load() of the model into itself (a no-op on the training state).
// Why checkpoints are opt-in: load builds the new state before it frees the old (all or
// nothing), and interleaved with fit()'s dataset tensors that fragments the allocator: in a
// 400,000-step run the wasm heap grew once, by 704 KiB near step 80,000, and stayed flat after,
// with live bytes flat throughout (no leak). test/property.test.ts checks that save/load
// sequences return live handles and bytes to the baseline.
// After the warm-up (the first interval) it asserts flat: wasm heap, live bytes and live
// handles exactly equal at every sample, allocations per interval equal, and JS heapUsed
// within --js-slack MB (default 2) of the first sample. Exits 1 otherwise.
// Options: --steps N, --every N, --js-slack MB, --checkpoints.
import { parseArgs } from "node:util";
import { adam, batchNorm, dense, dropout, init } from "../dist/node.js";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "100000" },
    checkpoints: { type: "boolean", default: false },
    every: { type: "string", default: "10000" },
    "js-slack": { type: "string", default: "2" },
  },
});
const steps = Number(values.steps);
const every = Math.min(Number(values.every), steps);
const jsSlack = Number(values["js-slack"]) * 1e6;
if (!Number.isInteger(steps) || steps < 1 || !Number.isInteger(every) || every < 1 || !(jsSlack >= 0)) {
  console.error("usage: node --expose-gc scripts/soak.mjs [--steps N] [--every N] [--js-slack MB] [--checkpoints]");
  process.exit(2);
}
const gc = globalThis.gc ?? null;
if (!gc) console.warn("soak: run node with --expose-gc for a meaningful JS heapUsed (npm run soak does)");

// mulberry32: reproducible data.
let s = 0x50a4;
const rand = () => {
  s = (s + 0x6d2b79f5) >>> 0;
  let t = Math.imul(s ^ (s >>> 15), s | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const INPUTS = 16;
const CLASSES = 4;
const BATCH = 32;
const BATCHES = 64; // a fixed dataset of 2,048 rows, cycled
const x = Float32Array.from({ length: BATCHES * BATCH * INPUTS }, () => rand() * 2 - 1);
const y = Int32Array.from({ length: BATCHES * BATCH }, (_, i) => {
  // A learnable rule: the class is the quadrant of the first two features.
  const a = x[i * INPUTS] > 0 ? 1 : 0;
  const b = x[i * INPUTS + 1] > 0 ? 2 : 0;
  return a + b;
});
const xb = Array.from({ length: BATCHES }, (_, k) => x.subarray(k * BATCH * INPUTS, (k + 1) * BATCH * INPUTS));
const yb = Array.from({ length: BATCHES }, (_, k) => y.subarray(k * BATCH, (k + 1) * BATCH));
const FIT_ROWS = 10 * BATCH; // fit() below takes 10 steps
const predictions = new Float32Array(BATCH * CLASSES);

const eg = await init();
const model = eg.sequential({ inputs: INPUTS, seed: 1 }, [dense(32, { activation: "relu" }), batchNorm(), dropout(0.1), dense(CLASSES)]);
model.compile({ loss: "softmaxCrossEntropy", optimizer: adam({ lr: 1e-3 }), maxBatch: BATCH });

function sample(step, allocationsBefore) {
  gc?.();
  const m = eg.memory();
  return {
    step,
    heapBytes: m.heapBytes,
    liveBytes: m.liveBytes,
    liveHandles: m.liveHandles,
    allocations: m.allocations - allocationsBefore,
    jsHeapUsed: process.memoryUsage().heapUsed,
    leaked: m.leaked,
  };
}

const rows = [];
let done = 0;
let lastLoss = NaN;
let allocationsAt = eg.memory().allocations;
const started = performance.now();
rows.push(sample(0, allocationsAt));
while (done < steps) {
  const end = Math.min(done + every, steps);
  while (done < end) {
    if (done % 1000 === 999 && end - done >= 10) {
      const h = await model.fit(x.subarray(0, FIT_ROWS * INPUTS), y.subarray(0, FIT_ROWS), { batchSize: BATCH, epochs: 1, accuracy: false });
      lastLoss = h.loss[0];
      done += 10;
      model.predict(xb[0], predictions);
      model.evaluate(xb[1], yb[1]);
      if (values.checkpoints) model.load(model.save());
      continue;
    }
    lastLoss = model.trainStep(xb[done % BATCHES], yb[done % BATCHES]);
    done++;
  }
  const now = eg.memory().allocations;
  rows.push(sample(done, allocationsAt));
  allocationsAt = now;
}
const seconds = (performance.now() - started) / 1000;

const mb = (b) => (b / 1e6).toFixed(3);
console.log(`soak: ${steps} steps in ${seconds.toFixed(1)} s (${((steps / seconds) | 0).toLocaleString("en-US")} steps/s), last loss ${lastLoss.toFixed(4)}, model.step ${model.step}`);
console.log("| step | wasm heap (bytes) | live bytes | live handles | allocations in interval | JS heapUsed (MB) |");
console.log("| ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows) {
  console.log(`| ${r.step.toLocaleString("en-US")} | ${r.heapBytes} | ${r.liveBytes} | ${r.liveHandles} | ${r.step === 0 ? "—" : r.allocations} | ${mb(r.jsHeapUsed)} |`);
}

// Flat after warm-up: compare every sample from the end of the first interval on.
const problems = [];
const after = rows.slice(1);
const ref = after[0];
for (const r of after.slice(1)) {
  for (const k of ["heapBytes", "liveBytes", "liveHandles"]) {
    if (r[k] !== ref[k]) problems.push(`${k} at step ${r.step}: ${r[k]}, was ${ref[k]} at step ${ref.step}`);
  }
  // The last interval may be shorter (--steps not a multiple of --every): allow fewer allocations.
  const full = r.step - after[after.indexOf(r) - 1].step === every;
  const second = after[1];
  if (second && full && r.allocations !== second.allocations) problems.push(`allocations in the interval to ${r.step}: ${r.allocations}, ${second.allocations} in the interval to ${second.step}`);
  if (r.jsHeapUsed - ref.jsHeapUsed > jsSlack) problems.push(`JS heapUsed at step ${r.step}: ${mb(r.jsHeapUsed)} MB, ${mb(ref.jsHeapUsed)} MB at step ${ref.step} (slack ${mb(jsSlack)} MB)`);
  if (r.leaked !== 0) problems.push(`${r.leaked} handles leaked to the GC by step ${r.step}`);
}
if (!Number.isFinite(lastLoss)) problems.push(`the loss is not finite: ${lastLoss}`);
model.dispose();
if (problems.length > 0) {
  console.error(`soak: NOT flat after warm-up:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(`soak: flat after warm-up (steps ${ref.step.toLocaleString("en-US")}..${steps.toLocaleString("en-US")})`);
