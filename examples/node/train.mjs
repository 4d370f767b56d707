// edgegrad in Node: learn two interleaved spirals (a classic that a linear model cannot separate),
// report held-out accuracy, then save the weights and restore them into a fresh model.
//
//   node examples/node/train.mjs          (after `npm run build`; or with edgegrad installed)
import { dense, init, sgd } from "edgegrad";
import { spirals } from "../browser/spirals.js";

const SEED = 7;

const eg = await init(); // reads edgegrad.wasm next to the package's dist/node.js
const train = spirals(200, 1);
const test = spirals(100, 2);

const layers = () => [
  dense(32, { activation: "relu" }),
  dense(32, { activation: "relu" }),
  dense(2), // logits; the loss applies softmax
];
const model = eg.sequential({ inputs: 2, seed: SEED }, layers());
model.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.1 }), maxBatch: 32 });
console.log(`spirals: MLP 2-32-32-2 relu (${model.paramCount} parameters), 400 training / 200 held-out points`);

const t0 = performance.now();
const history = await model.fit(train.x, train.y, {
  epochs: 300,
  batchSize: 32,
  validationData: [test.x, test.y],
  onEpochEnd: (epoch, logs) => {
    if ((epoch + 1) % 50 === 0) {
      console.log(
        `epoch ${String(epoch + 1).padStart(3)}  loss ${logs.loss.toFixed(4)}  ` +
          `val_loss ${logs.valLoss.toFixed(4)}  val_acc ${(100 * logs.valAccuracy).toFixed(1)}%`,
      );
    }
  },
});
const ms = performance.now() - t0;
const { loss, accuracy } = model.evaluate(test.x, test.y);
console.log(`trained ${history.epoch.length} epochs in ${ms.toFixed(0)} ms (${model.step} steps)`);
console.log(`held-out loss ${loss.toFixed(4)}, accuracy ${(100 * accuracy).toFixed(1)}%`);

// Weights are plain Float32Arrays: store them anywhere and load them into a model of the same shape.
const saved = model.getWeights();
const restored = eg.sequential({ inputs: 2 }, layers());
restored.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.1 }), maxBatch: 32 });
restored.setWeights(saved);
const before = model.predict(test.x);
const after = restored.predict(test.x);
console.log(`restored model predicts identically: ${before.every((v, i) => v === after[i])}`);
model.dispose();
restored.dispose();
