/**
 * A deliberately naive f64 reference of the dense MLP forward pass and losses, for tests only.
 *
 * It is the oracle of test/gradcheck.test.ts (central finite differences of `referenceLoss`)
 * and is itself checked against PyTorch's fixture there. Everything is f64 and written for
 * obviousness, not speed: loops over rows, columns and features in the order of the formulas.
 *
 * Layout matches edgegrad: x (B,I) row-major, kernel (I,O) row-major, bias (O), z = x·W + b,
 * y = act(z). Losses are means over the batch exactly as edgegrad (and PyTorch,
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
  activation: Activation;
  /** Negative slope of leakyRelu; ignored by the other activations. */
  alpha: number;
  kernel: Float64Array;
  bias: Float64Array;
}

/** A dense network: `inputs` features in, the last layer's bias length out. */
export interface RefNet {
  inputs: number;
  layers: RefLayer[];
}

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

/** Output width of a layer (= its bias length). */
export function layerUnits(layer: RefLayer): number {
  return layer.bias.length;
}

/**
 * Forward pass of x (B,I) row-major through every layer.
 * Returns each layer's pre-activation z (B,O_l) and the last layer's output y (B,O).
 */
export function denseForward(
  net: RefNet,
  x: ArrayLike<number>,
  batch: number,
): { preActivations: Float64Array[]; output: Float64Array } {
  if (x.length !== batch * net.inputs) {
    throw new Error(`reference: x has ${x.length} values, expected ${batch}*${net.inputs}`);
  }
  const preActivations: Float64Array[] = [];
  let input: ArrayLike<number> = x;
  let width = net.inputs;
  for (const layer of net.layers) {
    const units = layerUnits(layer);
    if (layer.kernel.length !== width * units) {
      throw new Error(`reference: kernel has ${layer.kernel.length} values, expected ${width}*${units}`);
    }
    const z = new Float64Array(batch * units);
    const y = new Float64Array(batch * units);
    for (let r = 0; r < batch; r++) {
      for (let o = 0; o < units; o++) {
        let acc = layer.bias[o]!;
        for (let i = 0; i < width; i++) acc += input[r * width + i]! * layer.kernel[i * units + o]!;
        z[r * units + o] = acc;
        y[r * units + o] = activate(layer.activation, layer.alpha, acc);
      }
    }
    preActivations.push(z);
    input = y;
    width = units;
  }
  return { preActivations, output: Float64Array.from(input) };
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

/** Mean loss of the network on x (B,I) against target (see `lossValue`). */
export function referenceLoss(
  net: RefNet,
  loss: LossName,
  x: ArrayLike<number>,
  target: ArrayLike<number>,
  batch: number,
): number {
  const { output } = denseForward(net, x, batch);
  return lossValue(loss, output, target, batch, layerUnits(net.layers[net.layers.length - 1]!));
}

/**
 * Smallest |z| over the pre-activations of layers whose activation has a kink at 0
 * (Infinity when there are none).
 */
export function minKinkDistance(net: RefNet, x: ArrayLike<number>, batch: number): number {
  const { preActivations } = denseForward(net, x, batch);
  let min = Infinity;
  net.layers.forEach((layer, l) => {
    if (!hasKink(layer.activation)) return;
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
