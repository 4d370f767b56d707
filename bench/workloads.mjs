// The named workloads of issue 4 and its targets. Shapes use the spec's letters: a dense layer
// maps x (B, I) through W (I, O); GEMM is C (M, N) = op(A) (M, K) · op(B) (K, N), row-major.

/** The three training networks (softmax cross-entropy over 10 classes, ReLU hidden layers). */
export const MLPS = {
  mlp_s: { title: "MLP-S", inputs: 64, hidden: [128, 64], classes: 10, batch: 32, batchNorm: false, optimizer: { name: "sgd", lr: 0.01, momentum: 0.9 } },
  mlp_m: { title: "MLP-M", inputs: 784, hidden: [512, 256], classes: 10, batch: 128, batchNorm: false, optimizer: { name: "adam", lr: 1e-3 } },
  mlp_bn: { title: "MLP-BN", inputs: 784, hidden: [256, 256], classes: 10, batch: 128, batchNorm: true, optimizer: { name: "adamw", lr: 1e-3, weightDecay: 1e-4 } },
};

/** The plain-SGD, no-batch-norm version of an MLP: what runs while edgegrad lacks issue 3's features. */
export const standIn = (mlp) => ({ ...mlp, title: `${mlp.title} stand-in`, batchNorm: false, optimizer: { name: "sgd", lr: mlp.optimizer.lr } });

export const SQUARE_SIZES = [64, 128, 256, 512, 1024];

/**
 * Dense layers whose three GEMMs are benchmarked on their own: forward NN Z = X·W (M=B, K=I,
 * N=O), input gradient NT dX = dZ·Wᵀ (M=B, K=O, N=I), weight gradient TN dW = Xᵀ·dZ (M=I, K=B, N=O).
 */
export const MLP_LAYERS = [
  { tag: "mlp_s.l1", b: 32, i: 64, o: 128 },
  { tag: "mlp_m.l1", b: 128, i: 784, o: 512 },
  { tag: "mlp_m.l2", b: 128, i: 512, o: 256 },
  { tag: "mlp_bn.l2", b: 128, i: 256, o: 256 },
];

const OPS = { nn: [false, false], nt: [false, true], tn: [true, false] };

/**
 * The optimizer passes timed alone (`applyGradients()` on gradients computed once): one dense
 * layer 1024 → 1024 (1,049,600 parameters). GB/s counts the bytes the update must touch per
 * parameter: parameter read + write (8), gradient read (4), each state array read + write (8).
 */
export const OPTIM_SHAPE = { inputs: 1024, units: 1024 };
export const OPTIM_PARAMS = OPTIM_SHAPE.inputs * OPTIM_SHAPE.units + OPTIM_SHAPE.units;
export const OPTIMIZER_PASSES = [
  { id: "sgd", title: "SGD", spec: { name: "sgd", lr: 0.01 }, bytesPerParam: 12 },
  { id: "sgd_momentum", title: "SGD momentum 0.9", spec: { name: "sgd", lr: 0.01, momentum: 0.9 }, bytesPerParam: 20 },
  { id: "adam", title: "Adam", spec: { name: "adam", lr: 1e-3 }, bytesPerParam: 28 },
  { id: "adamw", title: "AdamW (weight decay 1e-2)", spec: { name: "adamw", lr: 1e-3, weightDecay: 1e-2 }, bytesPerParam: 28 },
];

function gemm(op, m, n, k, extra) {
  const [ta, tb] = OPS[op];
  return { group: "gemm", op, m, n, k, unit: "GFLOP/s", flops: 2 * m * n * k, make: (impl) => impl.matmul({ m, n, k, ta, tb }), ...extra };
}

/**
 * Every timed workload, in run order. `features` says what edgegrad can do; where it lacks what
 * a training workload needs, that workload still runs for the alternatives (edgegrad's side
 * prints "skipped: not in this build") and a clearly labelled plain-SGD stand-in runs for all.
 */
export function workloads(features) {
  const list = [];
  for (const op of Object.keys(OPS)) {
    for (const n of SQUARE_SIZES) list.push(gemm(op, n, n, n, { id: `gemm_${op}_${n}`, title: `${op.toUpperCase()} ${n}³`, square: n }));
  }
  for (const { tag, b, i, o } of MLP_LAYERS) {
    const shapes = { nn: [b, o, i], nt: [b, i, o], tn: [i, o, b] };
    for (const op of Object.keys(OPS)) {
      const [m, n, k] = shapes[op];
      list.push(gemm(op, m, n, k, { id: `gemm_${op}_${m}x${n}x${k}`, title: `${op.toUpperCase()} ${m}×${n}×${k} (${tag})` }));
    }
  }
  for (const [id, mlp] of Object.entries(MLPS)) {
    list.push({ id, group: "train", title: `${mlp.title} train step`, mlp, unit: "samples/s", make: (impl) => impl.train(mlp) });
    if (!edgegradCanTrain(mlp, features)) {
      const s = standIn(mlp);
      list.push({ id: `${id}_standin`, group: "train", title: `${s.title}: plain SGD${mlp.batchNorm ? ", no BN" : ""}`, mlp: s, standInFor: id, unit: "samples/s", make: (impl) => impl.train(s) });
    }
  }
  for (const o of OPTIMIZER_PASSES) {
    list.push({ id: `optim_${o.id}`, group: "optim", title: `fused ${o.title} update over a ${OPTIM_PARAMS.toLocaleString("en")}-parameter arena`, unit: "GB/s", optimizer: o, bytes: o.bytesPerParam * OPTIM_PARAMS, make: (impl) => (impl.optimizerPass ? impl.optimizerPass(o, OPTIM_SHAPE) : { skip: "no standalone fused optimizer pass to compare" }) });
  }
  list.push({ id: "inf_1", group: "infer", title: "INF-1: MLP-M forward, batch 1", unit: "µs", batch: 1, make: (impl) => impl.infer(MLPS.mlp_m, 1) });
  list.push({ id: "inf_128", group: "infer", title: "INF-128: MLP-M forward, batch 128", unit: "samples/s", batch: 128, make: (impl) => impl.infer(MLPS.mlp_m, 128) });
  return list;
}

/** Whether edgegrad has everything `mlp` needs. */
export function edgegradCanTrain(mlp, f) {
  const o = mlp.optimizer;
  const opt = o.name === "sgd" ? !o.momentum || f.momentum : f[o.name];
  return Boolean(opt && (!mlp.batchNorm || f.batchNorm));
}

/** The MLP the cold-start and allocation probes train: the real one when edgegrad can, else its stand-in. */
export const probeMlp = (id, features) => (edgegradCanTrain(MLPS[id], features) ? MLPS[id] : standIn(MLPS[id]));

/**
 * The targets, checked against one run's results. `get(id, impl)` returns a measured
 * entry or undefined; `speedup(id, impl, refId)` edgegrad's speed-up over `impl` as
 * { value, ci }. Each check yields rows of { target, subject, value, ci?, need, met } where met
 * is true, false or null (not measured), judged on the estimate (the median).
 */
export function evaluateTargets({ get, speedup, peak, cold, alloc }) {
  const rows = [];
  const ratio = (target, subject, need, id, impl, refId, note = "") => {
    const s = speedup(id, impl, refId);
    rows.push({ target, subject, value: s?.value, ci: s?.ci, fmt: "x", need, note });
  };
  for (const n of SQUARE_SIZES.filter((s) => s >= 256)) {
    for (const op of Object.keys(OPS)) {
      const r = get(`gemm_${op}_${n}`, "edgegrad");
      const pct = r && peak ? r.gflops / peak : undefined;
      rows.push({ target: "GEMM ≥ 80 % of peak (n ≥ 256)", subject: `gemm_${op}_${n}`, value: pct, ci: pct && r.gflopsCI.map((g) => g / peak), fmt: "pct", need: 0.8 });
      ratio("GEMM ≥ 1.1× TF.js-wasm NN matmul", `gemm_${op}_${n}`, 1.1, `gemm_${op}_${n}`, "tfjs-wasm", `gemm_nn_${n}`);
    }
  }
  for (const id of Object.keys(MLPS)) {
    const si = speedup(`${id}_standin`, "tfjs-wasm");
    const note = !get(id, "edgegrad") && si ? `not in this build; stand-in (plain SGD${MLPS[id].batchNorm ? ", no BN" : ""}) ratio ${si.value.toFixed(1)}×` : "";
    ratio("training ≥ 10× TF.js-wasm samples/s", id, 10, id, "tfjs-wasm", id, note);
  }
  ratio("INF-1 ≥ 4× faster than TF.js-wasm", "inf_1", 4, "inf_1", "tfjs-wasm");
  ratio("INF-128 ≥ 1.8× TF.js-wasm throughput", "inf_128", 1.8, "inf_128", "tfjs-wasm");
  const c = cold?.edgegrad;
  rows.push({ target: "cold start ≤ 10 ms", subject: "cold_start", value: c?.median, ci: c?.medianCI, fmt: "ms", need: 10, atMost: true, note: c?.note ?? "" });
  for (const a of alloc?.edgegrad ?? []) {
    // JS heap bytes plus wasm heap/live-byte growth per step; any wasm allocator call also fails it.
    const value = a.skipped ? undefined : a.jsBytesPerStep + a.wasmBytesPerStep + (a.wasmAllocationsPerStep > 0 ? Infinity : 0);
    rows.push({ target: "0 bytes allocated per step (JS + wasm heap)", subject: `alloc_${a.workload}`, value, fmt: "bytes", need: 0, atMost: true, note: a.skipped ?? a.summary });
  }
  for (const r of rows) r.met = r.value === undefined || Number.isNaN(r.value) ? null : r.atMost ? r.value <= r.need : r.value >= r.need;
  return rows;
}
