/**
 * A deliberately naive f64 reference of the MLP forward pass (dense and batchNorm layers, dropout
 * as its eval-mode identity) and losses, for tests only.
 *
 * It is the oracle of test/gradcheck.test.ts (central finite differences of `referenceLoss`)
 * and is itself checked against PyTorch's fixture there. Everything is f64 and written for
 * obviousness, not speed: loops over rows, columns and features in the order of the formulas.
 *
 * Layout matches edgegrad: x (B,I) row-major, kernel (I,O) row-major, bias (O), z = x·W + b,
 * y = act(z); batchNorm z = γ·(x − μ)/√(σ² + eps) + β with batch (train) or running (eval)
 * statistics. Losses are means over the batch exactly as edgegrad (and PyTorch,
 * reduction='mean') define them.
 */

export type Activation = "identity" | "relu" | "leakyRelu" | "sigmoid" | "tanh" | "gelu";
export type LossName = "softmaxCrossEntropy" | "meanSquaredError" | "binaryCrossEntropyWithLogits";

export const ACTIVATIONS: readonly Activation[] = ["identity", "relu", "leakyRelu", "sigmoid", "tanh", "gelu"];
export const LOSSES: readonly LossName[] = [
  "softmaxCrossEntropy",
  "meanSquaredError",
  "binaryCrossEntropyWithLogits",
];

/** One dense layer in f64: kernel (I,O) row-major, bias (O). */
export interface RefLayer {
  kind?: "dense";
  activation: Activation;
  /** Negative slope of leakyRelu; ignored by the other activations. */
  alpha: number;
  kernel: Float64Array;
  bias: Float64Array;
}

/**
 * torch.nn.BatchNorm1d over F features followed by an activation. Training mode normalises each
 * feature with the batch mean and the biased batch variance; eval mode with the running
 * statistics. z = γ·x̂ + β, y = act(z).
 */
export interface RefBatchNormLayer {
  kind: "batchNorm";
  activation: Activation;
  alpha: number;
  gamma: Float64Array;
  beta: Float64Array;
  eps: number;
  momentum: number;
  runningMean: Float64Array;
  runningVar: Float64Array;
}

/** Dropout: the reference only has eval mode (identity); it has no random masks. */
export interface RefDropoutLayer {
  kind: "dropout";
  rate: number;
}

/** Any reference layer. */
export type RefAnyLayer = RefLayer | RefBatchNormLayer | RefDropoutLayer;

/** A network: `inputs` features in; the last layer's width out. */
export interface RefNet {
  inputs: number;
  layers: RefAnyLayer[];
}

/** Whether batchNorm uses batch statistics ("train") or running statistics ("eval"). */
export type RefMode = "train" | "eval";

/**
 * erf in f64 to ~1e-15, and smooth: the finite differences in gradcheck divide its error by
 * h ~ 1e-5, so a 1e-7 approximation (Abramowitz–Stegun 7.1.26) would put 1e-2 of noise on
 * GELU's derivative. Kummer's series erf(x) = 2/√π · e^{-x²} · Σ 2ⁿ x^{2n+1} / (2n+1)!! has only
 * positive terms (no cancellation) and converges for every x; |x| ≥ 6 is ±1 to f64 precision
 * (erfc(6) ≈ 2e-17).
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  const x2 = ax * ax;
  let term = ax;
  let sum = ax;
  for (let n = 1; term > 1e-17 * sum; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
  }
  const r = (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
  return x < 0 ? -r : r;
}

/** act(z) for one element. GELU is the exact erf form (PyTorch's default, edgegrad's). */
export function activate(activation: Activation, alpha: number, z: number): number {
  switch (activation) {
    case "identity":
      return z;
    case "relu":
      return z > 0 ? z : 0;
    case "leakyRelu":
      return z > 0 ? z : alpha * z;
    case "sigmoid":
      return 1 / (1 + Math.exp(-z));
    case "tanh":
      return Math.tanh(z);
    case "gelu":
      return 0.5 * z * (1 + erf(z / Math.SQRT2));
  }
}

/** Whether the activation has a kink at 0 (where finite differences are meaningless). */
export function hasKink(activation: Activation): boolean {
  return activation === "relu" || activation === "leakyRelu";
}

/** Output width of a layer given its input width. */
export function layerUnits(layer: RefAnyLayer, inputs = NaN): number {
  if (layer.kind === "batchNorm") return layer.gamma.length;
  if (layer.kind === "dropout") return inputs;
  return layer.bias.length;
}

/** Per-feature batch mean and biased variance of x (B,F), in f64 with two passes. */
export function batchMoments(x: ArrayLike<number>, batch: number, features: number): { mean: Float64Array; variance: Float64Array } {
  const mean = new Float64Array(features);
  const variance = new Float64Array(features);
  for (let f = 0; f < features; f++) {
    let sum = 0;
    for (let r = 0; r < batch; r++) sum += x[r * features + f]!;
    const m = sum / batch;
    let sq = 0;
    for (let r = 0; r < batch; r++) sq += (x[r * features + f]! - m) ** 2;
    mean[f] = m;
    variance[f] = sq / batch;
  }
  return { mean, variance };
}

/**
 * Forward pass of x (B,I) row-major through every layer in `mode` ("train" by default).
 * Returns each layer's pre-activation z (B,O_l) (dropout: its input) and the output y (B,O).
 */
export function denseForward(
  net: RefNet,
  x: ArrayLike<number>,
  batch: number,
  mode: RefMode = "train",
): { preActivations: Float64Array[]; output: Float64Array } {
  if (x.length !== batch * net.inputs) {
    throw new Error(`reference: x has ${x.length} values, expected ${batch}*${net.inputs}`);
  }
  const preActivations: Float64Array[] = [];
  let input: ArrayLike<number> = x;
  let width = net.inputs;
  for (const layer of net.layers) {
    if (layer.kind === "dropout") {
      if (mode === "train" && layer.rate !== 0) throw new Error("reference: dropout in training mode needs a mask; use eval mode");
      const copy = Float64Array.from(input);
      preActivations.push(copy);
      input = copy;
      continue;
    }
    const units = layerUnits(layer);
    const z = new Float64Array(batch * units);
    const y = new Float64Array(batch * units);
    if (layer.kind === "batchNorm") {
      if (units !== width) throw new Error(`reference: batchNorm has ${units} features, its input ${width}`);
      const { mean, variance } = mode === "train" ? batchMoments(input, batch, units) : { mean: layer.runningMean, variance: layer.runningVar };
      for (let r = 0; r < batch; r++) {
        for (let f = 0; f < units; f++) {
          const xhat = (input[r * units + f]! - mean[f]!) / Math.sqrt(variance[f]! + layer.eps);
          const v = layer.gamma[f]! * xhat + layer.beta[f]!;
          z[r * units + f] = v;
          y[r * units + f] = activate(layer.activation, layer.alpha, v);
        }
      }
    } else {
      if (layer.kernel.length !== width * units) {
        throw new Error(`reference: kernel has ${layer.kernel.length} values, expected ${width}*${units}`);
      }
      for (let r = 0; r < batch; r++) {
        for (let o = 0; o < units; o++) {
          let acc = layer.bias[o]!;
          for (let i = 0; i < width; i++) acc += input[r * width + i]! * layer.kernel[i * units + o]!;
          z[r * units + o] = acc;
          y[r * units + o] = activate(layer.activation, layer.alpha, acc);
        }
      }
    }
    preActivations.push(z);
    input = y;
    width = units;
  }
  return { preActivations, output: Float64Array.from(input) };
}

/**
 * The running statistics a training-mode step leaves in every batchNorm layer (torch semantics:
 * running ← (1 − m)·running + m·batch statistic, the variance unbiased by B/(B − 1)), updated
 * in place. Call it with the weights the step's forward pass used.
 */
export function updateRunningStats(net: RefNet, x: ArrayLike<number>, batch: number): void {
  let input: ArrayLike<number> = x;
  let width = net.inputs;
  net.layers.forEach((layer, l) => {
    if (layer.kind === "batchNorm") {
      const { mean, variance } = batchMoments(input, batch, width);
      for (let f = 0; f < width; f++) {
        const m = layer.momentum;
        layer.runningMean[f] = (1 - m) * layer.runningMean[f]! + m * mean[f]!;
        layer.runningVar[f] = (1 - m) * layer.runningVar[f]! + (m * variance[f]! * batch) / (batch - 1);
      }
    }
    // The next layer's input: this layer's training-mode output.
    const sub: RefNet = { inputs: net.inputs, layers: net.layers.slice(0, l + 1) };
    input = denseForward(sub, x, batch, "train").output;
    width = layerUnits(layer, width);
  });
}

/**
 * Mean loss of predictions pred (B,O) against target.
 * softmaxCrossEntropy: target (B) class ids; mean over B of logsumexp(row) - row[label].
 * meanSquaredError: target (B,O); mean over B*O of (p - t)².
 * binaryCrossEntropyWithLogits: target (B,O) in [0,1]; mean over B*O of
 *   -[t·log σ(p) + (1-t)·log(1-σ(p))], written in the overflow-free form max(p,0) - p·t + log1p(e^{-|p|}).
 */
export function lossValue(
  loss: LossName,
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  batch: number,
  outputs: number,
): number {
  let total = 0;
  switch (loss) {
    case "softmaxCrossEntropy": {
      for (let r = 0; r < batch; r++) {
        const label = target[r]!;
        if (!Number.isInteger(label) || label < 0 || label >= outputs) {
          throw new Error(`reference: bad class id ${label} in row ${r}`);
        }
        let max = -Infinity;
        for (let c = 0; c < outputs; c++) max = Math.max(max, pred[r * outputs + c]!);
        let sumExp = 0;
        for (let c = 0; c < outputs; c++) sumExp += Math.exp(pred[r * outputs + c]! - max);
        total += max + Math.log(sumExp) - pred[r * outputs + label]!;
      }
      return total / batch;
    }
    case "meanSquaredError": {
      for (let k = 0; k < batch * outputs; k++) {
        const d = pred[k]! - target[k]!;
        total += d * d;
      }
      return total / (batch * outputs);
    }
    case "binaryCrossEntropyWithLogits": {
      for (let k = 0; k < batch * outputs; k++) {
        const p = pred[k]!;
        total += Math.max(p, 0) - p * target[k]! + Math.log1p(Math.exp(-Math.abs(p)));
      }
      return total / (batch * outputs);
    }
  }
}

/** Mean loss of the network on x (B,I) against target (see `lossValue`), in `mode` ("train" by default). */
export function referenceLoss(
  net: RefNet,
  loss: LossName,
  x: ArrayLike<number>,
  target: ArrayLike<number>,
  batch: number,
  mode: RefMode = "train",
): number {
  const { output } = denseForward(net, x, batch, mode);
  return lossValue(loss, output, target, batch, output.length / batch);
}

/**
 * Smallest |z| over the pre-activations of layers whose activation has a kink at 0
 * (Infinity when there are none).
 */
export function minKinkDistance(net: RefNet, x: ArrayLike<number>, batch: number, mode: RefMode = "train"): number {
  const { preActivations } = denseForward(net, x, batch, mode);
  let min = Infinity;
  net.layers.forEach((layer, l) => {
    if (layer.kind === "dropout" || !hasKink(layer.activation)) return;
    for (const z of preActivations[l]!) min = Math.min(min, Math.abs(z));
  });
  return min;
}

/**
 * Central finite differences (L(θ+h) - L(θ-h)) / 2h of `lossOf` with respect to every entry
 * of every array in `params`, which it perturbs in place and restores exactly.
 */
export function finiteDifferences(
  params: Float64Array[],
  lossOf: () => number,
  h: number,
): Float64Array[] {
  return params.map((p) => {
    const grad = new Float64Array(p.length);
    for (let k = 0; k < p.length; k++) {
      const saved = p[k]!;
      p[k] = saved + h;
      const plus = lossOf();
      p[k] = saved - h;
      const minus = lossOf();
      p[k] = saved;
      grad[k] = (plus - minus) / (2 * h);
    }
    return grad;
  });
}

/** Every trainable array of the network in edgegrad's arena order, with names for messages. */
export function referenceParams(net: RefNet): { params: Float64Array[]; names: string[] } {
  const params: Float64Array[] = [];
  const names: string[] = [];
  net.layers.forEach((layer, l) => {
    if (layer.kind === "dropout") return;
    if (layer.kind === "batchNorm") {
      params.push(layer.gamma, layer.beta);
      names.push(`layer ${l} gamma`, `layer ${l} beta`);
    } else {
      params.push(layer.kernel, layer.bias);
      names.push(`layer ${l} kernel`, `layer ${l} bias`);
    }
  });
  return { params, names };
}
