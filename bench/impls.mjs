// The four implementations side by side, each behind the same small interface:
//   matmul({ m, n, k, ta, tb })  → { run, dispose } | { skip }      one op(A)·op(B) per run
//   train(mlp)                   → { run, samplesPerRun, dispose, note? } | { skip }
//   infer(mlp, batch)            → { run, samplesPerRun, dispose, note? } | { skip }
// Fairness rules, kept by every implementation: inputs are uploaded (copied in) on every call,
// results of inference are read back into JS on every call, temporaries are freed on every call
// (dispose / tf.tidy), every one gets the same warm-up, and all run single-threaded.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const ROOT = new URL("../", import.meta.url);

/** Deterministic data in [-0.5, 0.5) (LCG), so every implementation sees the same numbers. */
export function randomData(n, seed) {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** A training batch of `mlp`: x (B, inputs), class ids y (B) and their one-hot form. */
export function batchOf(mlp, batch = mlp.batch) {
  const x = randomData(batch * mlp.inputs, 11);
  const y = Int32Array.from({ length: batch }, (_, i) => (i * 7) % mlp.classes);
  const oneHot = new Float32Array(batch * mlp.classes);
  y.forEach((c, i) => (oneHot[i * mlp.classes + c] = 1));
  return { x, y, oneHot };
}

const shortHash = (bytes) => createHash("sha256").update(bytes).digest("hex").slice(0, 12);

// ---------------------------------------------------------------------------------------------
// edgegrad

/**
 * What this build of edgegrad can do, probed rather than assumed: issue 3 (momentum, Adam,
 * AdamW, batch norm) lands in parallel, so a missing export means "skipped: not in this build".
 */
export function edgegradFeatures(mod) {
  let momentum = false;
  try {
    const spec = mod.sgd({ lr: 0.01, momentum: 0.9 });
    momentum = spec.momentum === 0.9 || Object.values(spec).some((v) => v === 0.9 || (Array.isArray(v) && v.includes(0.9)));
  } catch {
    momentum = false;
  }
  return {
    momentum,
    adam: typeof mod.adam === "function",
    adamw: typeof mod.adamw === "function",
    batchNorm: typeof mod.batchNorm === "function",
    applyGradients: typeof mod.Sequential?.prototype?.applyGradients === "function",
  };
}

/** The optimizer spec for `opt`, or the name of the missing feature. */
export function edgegradOptimizer(mod, features, opt) {
  if (opt.name === "sgd") {
    if (!opt.momentum) return { spec: mod.sgd({ lr: opt.lr }) };
    return features.momentum ? { spec: mod.sgd({ lr: opt.lr, momentum: opt.momentum }) } : { missing: "sgd momentum" };
  }
  if (opt.name === "adam") return features.adam ? { spec: mod.adam({ lr: opt.lr }) } : { missing: "adam()" };
  if (opt.name === "adamw") return features.adamw ? { spec: mod.adamw({ lr: opt.lr, weightDecay: opt.weightDecay }) } : { missing: "adamw()" };
  throw new Error(`unknown optimizer ${opt.name}`);
}

/** The layer specs of `mlp` (dense + ReLU, or dense then batchNorm with a fused ReLU). */
export function edgegradLayers(mod, mlp) {
  const layers = [];
  for (const h of mlp.hidden) {
    if (mlp.batchNorm) layers.push(mod.dense(h), mod.batchNorm({ activation: "relu" }));
    else layers.push(mod.dense(h, { activation: "relu" }));
  }
  layers.push(mod.dense(mlp.classes));
  return layers;
}

/**
 * The wasm builds to try, in order: `--wasm FILE` (EDGEGRAD_BENCH_WASM) alone, else the
 * freshest kernels (build/edgegrad.wasm, what scripts/build-wasm.sh writes) and then the copy
 * the package ships (dist/edgegrad.wasm), which lags until `npm run build:ts` runs again.
 */
export function edgegradWasmCandidates() {
  if (process.env.EDGEGRAD_BENCH_WASM) return [process.env.EDGEGRAD_BENCH_WASM];
  return ["build/edgegrad.wasm", "dist/edgegrad.wasm"].map((p) => fileURLToPath(new URL(p, ROOT)));
}

export async function loadEdgegrad() {
  const mod = await import("edgegrad");
  const failures = [];
  let eg;
  let bytes;
  let wasmPath;
  for (const path of edgegradWasmCandidates()) {
    try {
      bytes = readFileSync(path);
      eg = await mod.init(bytes);
      wasmPath = path;
      break;
    } catch (e) {
      failures.push(`${path}: ${e.message}`);
    }
  }
  if (!eg) throw Object.assign(new Error(`no edgegrad.wasm this dist/ can load (${failures.join("; ")})`), { name: "AbiError" });
  // Children (cold start, allocations) must load the very same build.
  process.env.EDGEGRAD_BENCH_WASM = wasmPath;
  const features = edgegradFeatures(mod);
  const pkg = JSON.parse(readFileSync(new URL("package.json", ROOT), "utf8"));
  const note = failures.length ? `skipped ${failures.join("; ")}` : "";
  const missing = Object.entries(features).filter(([, v]) => !v).map(([k]) => k);
  return {
    name: "edgegrad",
    version: `${pkg.version}, ${relative(fileURLToPath(ROOT), wasmPath)} ${shortHash(bytes)}${missing.length ? `; not in this build: ${missing.join(", ")}` : ""}`,
    wasmHash: shortHash(bytes),
    features,
    note,
    memory: () => eg.memory(),
    async activate() {},
    matmul({ m, n, k, ta, tb }) {
      const a = eg.tensor(randomData(m * k, 1), ta ? [k, m] : [m, k]);
      const b = eg.tensor(randomData(k * n, 2), tb ? [n, k] : [k, n]);
      const opts = { transposeA: ta, transposeB: tb };
      // matmul returns a new tensor each call; disposing it in the loop keeps the heap flat and
      // charges edgegrad the allocation, as tf.matMul's result allocation is charged to TF.js.
      return { run: () => eg.matmul(a, b, opts).dispose(), dispose: () => (a.dispose(), b.dispose()) };
    },
    train(mlp) {
      const opt = edgegradOptimizer(mod, features, mlp.optimizer);
      if (opt.missing) return { skip: `skipped: not in this build (${opt.missing})` };
      if (mlp.batchNorm && !features.batchNorm) return { skip: "skipped: not in this build (batchNorm())" };
      const model = eg.sequential({ inputs: mlp.inputs, seed: 1 }, edgegradLayers(mod, mlp));
      model.compile({ loss: "softmaxCrossEntropy", optimizer: opt.spec, maxBatch: mlp.batch });
      const { x, y } = batchOf(mlp);
      // The loss goes to a reused buffer (trainStep's lossOut form): a returned number is a
      // 16-byte heap object whenever V8 does not inline the call, which the allocation probe
      // would charge to the training step. The other libraries' steps discard their loss too.
      const loss = new Float32Array(1);
      return { run: () => model.trainStep(x, y, loss), samplesPerRun: mlp.batch, dispose: () => model.dispose() };
    },
    infer(mlp, batch) {
      const model = eg.sequential({ inputs: mlp.inputs, seed: 1 }, edgegradLayers(mod, { ...mlp, batchNorm: false }));
      model.compile({ loss: "softmaxCrossEntropy", optimizer: mod.sgd({ lr: 0.01 }), maxBatch: Math.max(batch, 1) });
      const { x } = batchOf(mlp, batch);
      return { run: () => model.predict(x), samplesPerRun: batch, dispose: () => model.dispose() };
    },
    optimizerPass(o, { inputs, units }) {
      const opt = edgegradOptimizer(mod, features, o.spec);
      if (opt.missing) return { skip: `skipped: not in this build (${opt.missing})` };
      if (!features.applyGradients) return { skip: "skipped: not in this build (applyGradients())" };
      const model = eg.sequential({ inputs, seed: 1 }, [mod.dense(units)]);
      model.compile({ loss: "meanSquaredError", optimizer: opt.spec, maxBatch: 1 });
      const x = new Float32Array(inputs).map((_, i) => Math.sin(i));
      model.computeGradients(x, new Float32Array(units).fill(0.5)); // gradients computed once
      // Each call: finite check, clipping (off), the fused update, then the weight norms.
      return { run: () => model.applyGradients(), dispose: () => model.dispose() };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// TensorFlow.js (wasm and cpu backends of the same @tensorflow/tfjs instance)

let tfModule;

/**
 * Imports TF.js once (what its users import: the @tensorflow/tfjs union package) and, for the
 * wasm backend, tfjs-backend-wasm, registered single-threaded with its SIMD build.
 */
export async function loadTf(backend) {
  tfModule ??= await import("@tensorflow/tfjs");
  const tf = tfModule;
  if (backend === "wasm" && !tf.findBackendFactory("wasm")) {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    // Single thread, like edgegrad: without this flag the backend would pick the threaded build
    // where SharedArrayBuffer exists. SIMD support is detected (WASM_HAS_SIMD_SUPPORT) and used.
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    wasm.setWasmPaths(fileURLToPath(new URL("node_modules/@tensorflow/tfjs-backend-wasm/dist/", ROOT)));
  }
  return tf;
}

/** Switches backends quietly. */
async function useBackend(tf, backend) {
  const warn = console.warn;
  console.warn = () => {};
  try {
    if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend ${backend} failed to initialise`);
    await tf.ready();
    // The cpu backend prints its tfjs-node advertisement on the first tensor upload in Node.
    if (backend === "cpu") tf.backend().firstUse = false;
  } finally {
    console.warn = warn;
  }
}

/**
 * The MLP as TF.js variables and a forward function: fused matMul + bias + ReLU per hidden layer
 * (TF.js's fastest dense path), or matMul + bias, training-mode batch norm from tf.moments, ReLU.
 */
function tfMlp(tf, mlp) {
  const trainable = [];
  const layers = [];
  let width = mlp.inputs;
  const he = (i, o, seed) => tf.variable(tf.randomNormal([i, o], 0, Math.sqrt(2 / i), "float32", seed));
  mlp.hidden.forEach((h, l) => {
    const layer = { w: he(width, h, l + 1), b: tf.variable(tf.zeros([h])) };
    trainable.push(layer.w, layer.b);
    if (mlp.batchNorm) {
      Object.assign(layer, { gamma: tf.variable(tf.ones([h])), beta: tf.variable(tf.zeros([h])), runMean: tf.variable(tf.zeros([h]), false), runVar: tf.variable(tf.ones([h]), false) });
      trainable.push(layer.gamma, layer.beta);
    }
    layers.push(layer);
    width = h;
  });
  const out = { w: he(width, mlp.classes, 99), b: tf.variable(tf.zeros([mlp.classes])) };
  trainable.push(out.w, out.b);

  /** Logits of x; `training` selects batch statistics (and updates the running ones). */
  function forward(x, training) {
    let h = x;
    for (const l of layers) {
      if (!mlp.batchNorm) {
        h = tf.fused.matMul({ a: h, b: l.w, bias: l.b, activation: "relu" });
        continue;
      }
      const z = tf.fused.matMul({ a: h, b: l.w, bias: l.b });
      if (training) {
        const { mean, variance } = tf.moments(z, 0);
        // PyTorch BatchNorm1d: momentum 0.1, unbiased variance in the running estimate.
        const n = z.shape[0];
        l.runMean.assign(tf.tidy(() => tf.add(tf.mul(l.runMean, 0.9), tf.mul(mean, 0.1))));
        l.runVar.assign(tf.tidy(() => tf.add(tf.mul(l.runVar, 0.9), tf.mul(variance, (0.1 * n) / (n - 1)))));
        h = tf.relu(tf.batchNorm(z, mean, variance, l.beta, l.gamma, 1e-5));
      } else {
        h = tf.relu(tf.batchNorm(z, l.runMean, l.runVar, l.beta, l.gamma, 1e-5));
      }
    }
    return tf.fused.matMul({ a: h, b: out.w, bias: out.b });
  }
  const variables = [...trainable, ...layers.flatMap((l) => (l.runMean ? [l.runMean, l.runVar] : []))];
  return { trainable, forward, dispose: () => variables.forEach((v) => v.dispose()) };
}

/** The TF.js optimizer for `opt`; AdamW is Adam plus decoupled decay (TF.js has no AdamW). */
function tfOptimizer(tf, opt) {
  if (opt.name === "sgd") return opt.momentum ? tf.train.momentum(opt.lr, opt.momentum) : tf.train.sgd(opt.lr);
  if (opt.name === "adam" || opt.name === "adamw") return tf.train.adam(opt.lr);
  throw new Error(`unknown optimizer ${opt.name}`);
}

export async function loadTfBackend(backend) {
  const tf = await loadTf(backend);
  await useBackend(tf, backend);
  return {
    name: `tfjs-${backend}`,
    version: `@tensorflow/tfjs ${tf.version.tfjs}${backend === "wasm" ? ` + tfjs-backend-wasm ${require("@tensorflow/tfjs-backend-wasm/package.json").version} (SIMD ${tf.env().getBool("WASM_HAS_SIMD_SUPPORT") ? "on" : "off"}, 1 thread)` : ""}`,
    note: "",
    memory: () => tf.memory(),
    async activate() {
      await useBackend(tf, backend);
    },
    matmul({ m, n, k, ta, tb }) {
      const a = tf.tensor2d(randomData(m * k, 1), ta ? [k, m] : [m, k]);
      const b = tf.tensor2d(randomData(k * n, 2), tb ? [n, k] : [k, n]);
      // Both backends execute eagerly and synchronously, so the product is computed when matMul returns.
      return { run: () => tf.matMul(a, b, ta, tb).dispose(), dispose: () => (a.dispose(), b.dispose()) };
    },
    train(mlp) {
      const net = tfMlp(tf, mlp);
      const optimizer = tfOptimizer(tf, mlp.optimizer);
      const { x, oneHot } = batchOf(mlp);
      const decay = mlp.optimizer.name === "adamw" ? 1 - mlp.optimizer.lr * mlp.optimizer.weightDecay : 1;
      const before = tf.memory().numTensors;
      const run = () =>
        tf.tidy(() => {
          const xs = tf.tensor2d(x, [mlp.batch, mlp.inputs]);
          const ys = tf.tensor2d(oneHot, [mlp.batch, mlp.classes]);
          const { grads } = optimizer.computeGradients(() => tf.losses.softmaxCrossEntropy(ys, net.forward(xs, true)), net.trainable);
          // torch.optim.AdamW order: p ← p·(1 − lr·wd), then the Adam step on the gradient.
          if (decay !== 1) for (const v of net.trainable) v.assign(tf.mul(v, decay));
          optimizer.applyGradients(grads);
        });
      return {
        run,
        samplesPerRun: mlp.batch,
        note: mlp.optimizer.name === "adamw" ? "Adam + decoupled decay by hand (no AdamW in TF.js)" : "",
        leakCheck: () => tf.memory().numTensors - before,
        dispose: () => (optimizer.dispose(), net.dispose()),
      };
    },
    infer(mlp, batch) {
      const net = tfMlp(tf, { ...mlp, batchNorm: false });
      const { x } = batchOf(mlp, batch);
      const run = () => {
        const y = tf.tidy(() => net.forward(tf.tensor2d(x, [batch, mlp.inputs]), false));
        y.dataSync();
        y.dispose();
      };
      return { run, samplesPerRun: batch, dispose: () => net.dispose() };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// brain.js (pure JS; NeuralNetwork trains one sample at a time)

export async function loadBrain() {
  // The NeuralNetwork class alone: brain.js's index also loads gpu.js, which these benchmarks never use.
  const NeuralNetwork = require("brain.js/dist/neural-network.js").default;
  const version = require("brain.js/package.json").version;

  /** A NeuralNetwork with mlp's sizes, initialised by one pattern with the given training options. */
  function net(mlp, trainOpts) {
    const n = new NeuralNetwork({ hiddenLayers: mlp.hidden, activation: "relu" });
    const { x, oneHot } = batchOf(mlp);
    const patterns = Array.from({ length: mlp.batch }, (_, i) => ({
      input: x.subarray(i * mlp.inputs, (i + 1) * mlp.inputs),
      output: oneHot.subarray(i * mlp.classes, (i + 1) * mlp.classes),
    }));
    n.train([patterns[0]], { iterations: 1, ...trainOpts });
    return { n, patterns };
  }

  return {
    name: "brain.js",
    version: `brain.js ${version}`,
    note: "",
    async activate() {},
    matmul() {
      return { skip: "n/a: brain.js has no matrix-multiply API" };
    },
    train(mlp) {
      // Closest equivalents: brain.js has no batches (one weight update per sample), applies
      // ReLU on the output layer too with a squared-error delta (no softmax cross-entropy), and
      // offers plain SGD + momentum or Adam ("praxis"), but no AdamW and no batch norm.
      const o = mlp.optimizer;
      const trainOpts = o.name === "sgd" ? { learningRate: o.lr, momentum: o.momentum || 0.1 } : { learningRate: o.lr, praxis: "adam" };
      const { n, patterns } = net({ ...mlp, batchNorm: false }, trainOpts);
      // Its option check rejects momentum 0; plain SGD sets it after initialisation (the update
      // costs the same either way: brain.js always computes the momentum term).
      if (o.name === "sgd" && !o.momentum) n.trainOpts.momentum = 0;
      let i = 0;
      const notes = ["per-sample updates, ReLU output + squared error"];
      if (o.name === "adamw") notes.push("Adam without weight decay");
      if (mlp.batchNorm) notes.push("no batch norm");
      return { run: () => n.trainPattern(patterns[i++ % patterns.length]), samplesPerRun: 1, note: notes.join("; "), dispose() {} };
    },
    infer(mlp, batch) {
      const { n, patterns } = net({ ...mlp, batchNorm: false }, { learningRate: 0.01 });
      const rows = patterns.slice(0, batch);
      const run = () => {
        for (const p of rows) n.run(p.input);
      };
      return { run, samplesPerRun: batch, note: "one sample at a time (no batched forward)", dispose() {} };
    },
  };
}

/** Loads the implementations named in `names` (edgegrad, tfjs-wasm, tfjs-cpu, brain.js). */
export async function loadImpls(names) {
  const out = [];
  for (const name of names) {
    if (name === "edgegrad") out.push(await loadEdgegrad());
    else if (name === "tfjs-wasm") out.push(await loadTfBackend("wasm"));
    else if (name === "tfjs-cpu") out.push(await loadTfBackend("cpu"));
    else if (name === "brain.js") out.push(await loadBrain());
    else throw new Error(`unknown implementation ${name}`);
  }
  return out;
}
