// Loss names and what each implies for targets. Ids are the ABI's (index = id).

/** Loss names indexed by their ABI id. */
export const LOSSES = ["softmaxCrossEntropy", "meanSquaredError", "binaryCrossEntropyWithLogits"] as const;

/**
 * A training loss, mean-reduced over the batch like PyTorch: softmax cross-entropy on logits with
 * integer class ids, mean squared error, or binary cross-entropy on logits.
 */
export type LossName = (typeof LOSSES)[number];

/** True when targets are class ids (one per row) rather than a row of `outputs` values. */
export function takesClassIds(loss: LossName): boolean {
  return loss === "softmaxCrossEntropy";
}

/** True when the loss has an accuracy metric (cross-entropy: argmax; BCE: logit > 0 vs target >= 0.5). */
export function hasAccuracy(loss: LossName): boolean {
  return loss !== "meanSquaredError";
}
