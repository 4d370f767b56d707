// ts/callbacks.ts with Sequential.fit(): early stopping (patience, minDelta, best-weights
// restore, the fit() stop signal), the learning-rate logger under a schedule, and typed errors.
import { beforeAll, describe, expect, it } from "vitest";
import { callbacks, earlyStopping, lrLogger, modelCheckpoint } from "../ts/callbacks.js";
import { dense, init, InvalidArgumentError, sgd, type Edgegrad, type EpochLogs } from "../ts/node.js";
import { stepLR } from "../ts/schedules.js";
import { bitsOf, arraysOf, normal, rng, WASM } from "./helpers.js";

let eg: Edgegrad;
beforeAll(async () => {
  eg = await init(WASM);
});

/** Two Gaussian blobs in 2-D: a task the model fits within a few epochs. */
function blobs(n: number, seed: number): [Float32Array, Int32Array] {
  const r = rng(seed);
  const x = new Float32Array(2 * n);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    x[2 * i] = normal(r) + (y[i] ? 2 : -2);
    x[2 * i + 1] = normal(r);
  }
  return [x, y];
}

describe("earlyStopping", () => {
  it("stops fit() after `patience` epochs without improvement and restores the best weights", async () => {
    using model = eg.sequential({ inputs: 2, seed: 1 }, [dense(8, { activation: "relu" }), dense(2)]);
    model.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.5 }), maxBatch: 32 });
    const [x, y] = blobs(200, 2);
    const [vx, vy] = blobs(100, 3);
    // A huge minDelta: nothing after the first epoch counts as an improvement.
    const es = earlyStopping({ monitor: "valLoss", patience: 2, minDelta: 1e9, restoreBestWeights: true });
    const history = await model.fit(x, y, { epochs: 50, validationData: [vx, vy], ...callbacks(model, [es]) });
    expect(history.epoch).toEqual([0, 1, 2]);
    expect(es.bestEpoch).toBe(0);
    expect(es.stoppedEpoch).toBe(2);
    expect(bitsOf(arraysOf(model.getWeights()))).toEqual(bitsOf(arraysOf(es.bestWeights!)));
    expect(model.evaluate(vx, vy).loss).toBeCloseTo(history.valLoss![0]!, 5);
  });

  it("keeps training while the metric improves; accuracy is maximised", async () => {
    const es = earlyStopping({ monitor: "valAccuracy", patience: 1 });
    expect(earlyStopping({ patience: 0 }).onEpochEnd(0, { lr: 1, loss: 1, valLoss: 1 }, { getWeights: () => [] } as never)).toBe(false);
    const model = { getWeights: () => [] } as never;
    const logs = (valAccuracy: number): EpochLogs => ({ lr: 1, loss: 1, valAccuracy });
    expect(es.onEpochEnd(0, logs(0.5), model)).toBe(false);
    expect(es.onEpochEnd(1, logs(0.6), model)).toBe(false);
    expect(es.onEpochEnd(2, logs(0.6), model)).toBe(true); // not better: patience (1) used up
    expect([es.best, es.bestEpoch, es.stoppedEpoch]).toEqual([0.6, 1, 2]);
  });

  it("rejects bad options and a metric fit() does not report", () => {
    expect(() => earlyStopping({ monitor: "val_loss" as never })).toThrow(InvalidArgumentError);
    expect(() => earlyStopping({ patience: -1 })).toThrow(/earlyStopping\(opts\.patience\)/);
    expect(() => earlyStopping({ minDelta: -1 })).toThrow(/earlyStopping\(opts\.minDelta\)/);
    expect(() => earlyStopping().onEpochEnd(0, { lr: 1, loss: 1 }, {} as never)).toThrow(/"valLoss" is missing .*pass validationData/);
  });
});

describe("lrLogger and callbacks()", () => {
  it("records the rate each epoch used and the next one", async () => {
    using model = eg.sequential({ inputs: 2, seed: 1 }, [dense(2)]);
    model.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.1 }), maxBatch: 32 });
    const [x, y] = blobs(64, 4);
    const lines: string[] = [];
    const logger = lrLogger((l) => lines.push(l));
    const seen: number[] = [];
    await model.fit(x, y, {
      epochs: 4,
      schedule: stepLR({ stepSize: 2, gamma: 0.5 }),
      ...callbacks(model, [logger, { onBatchEnd: (step) => void seen.push(step) }]),
    });
    expect(logger.history.map((r) => [r.lr, r.nextLr])).toEqual([
      [0.1, 0.1],
      [0.1, 0.05],
      [0.05, 0.05],
      [0.05, 0.025],
    ]);
    expect(lines[1]).toBe("epoch 2: lr 1.000e-1 -> 5.000e-2");
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("sets onBatchEnd only when a callback needs it (stats cost a copy per step)", () => {
    using model = eg.sequential({ inputs: 2, seed: 1 }, [dense(2)]);
    expect(callbacks(model, [lrLogger()]).onBatchEnd).toBeUndefined();
    expect(() => callbacks(model, [null as never])).toThrow(/callbacks\(list\[0\]\)/);
  });
});

describe("modelCheckpoint", () => {
  it("hands model.save() bytes to `save` every epoch, or only on improvement; a checkpoint reloads to that epoch", async () => {
    using model = eg.sequential({ inputs: 2, seed: 1 }, [dense(8, { activation: "relu" }), dense(2)]);
    model.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.2 }), maxBatch: 32 });
    const [x, y] = blobs(128, 5);
    const [vx, vy] = blobs(64, 6);
    const every: [number, Uint8Array][] = [];
    const best: number[] = [];
    const valLoss: number[] = [];
    const all = modelCheckpoint({ save: (bytes, epoch) => void every.push([epoch, bytes]) });
    const onlyBest = modelCheckpoint({ saveBestOnly: true, monitor: "valAccuracy", save: async (_b, epoch) => void best.push(epoch) });
    await model.fit(x, y, {
      epochs: 4,
      validationData: [vx, vy],
      ...callbacks(model, [all, onlyBest, { onEpochEnd: (_e, logs) => void valLoss.push(logs.valLoss!) }]),
    });
    expect(every.map(([e]) => e)).toEqual([0, 1, 2, 3]);
    expect(all.saved).toEqual([0, 1, 2, 3]);
    expect(best[0]).toBe(0);
    expect(onlyBest.saved).toEqual(best);
    using restored = eg.load(every[1]![1]);
    expect(restored.evaluate(vx, vy).loss).toBeCloseTo(valLoss[1]!, 6);
    expect(() => modelCheckpoint({} as never)).toThrow(/modelCheckpoint\(opts\.save\)/);
  });
});
