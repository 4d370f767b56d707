// Run by test/memory.test.ts in its own process: node --max-semi-space-size=1 test/alloc-child.mjs
// Warms up trainStep, then counts the garbage collections V8 runs during many more steps. With a
// 1 MiB semi-space, even 8 bytes per step would force a scavenge every ~130,000 steps; a step
// that allocates nothing in JS runs none. Prints one JSON line.
import { PerformanceObserver } from "node:perf_hooks";
import { adamw, batchNorm, dense, init } from "../dist/node.js";

const steps = Number(process.argv[2] ?? 300_000);
const eg = await init();
const model = eg.sequential({ inputs: 8, seed: 3 }, [dense(16, { activation: "relu" }), batchNorm(), dense(3)]);
model.compile({ loss: "softmaxCrossEntropy", optimizer: adamw({ lr: 1e-3, weightDecay: 1e-4 }), maxBatch: 8 });
const x = new Float32Array(64).map((_, i) => Math.sin(i * 0.7));
const y = new Int32Array([0, 1, 2, 0, 1, 2, 0, 1]);
// The lossOut form: allocation-free whatever the call site (a returned number is a heap object
// whenever V8 does not inline trainStep into this loop).
const loss = new Float32Array(1);
const run = (n) => {
  for (let i = 0; i < n; i++) model.trainStep(x, y, loss);
};
for (let r = 0; r < 100; r++) run(200); // warm-up: 20,000 steps, until trainStep is optimised

let gcs = 0;
const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
obs.observe({ entryTypes: ["gc"] });
const before = eg.memory();
run(steps);
const after = eg.memory();
await new Promise((r) => setTimeout(r, 50)); // let the observer deliver
obs.disconnect();
console.log(JSON.stringify({ steps, gcs, wasmAllocations: after.allocations - before.allocations, heapGrowth: after.heapBytes - before.heapBytes }));
