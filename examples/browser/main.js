// Trains a small MLP on two spirals in the page with a cosine learning-rate schedule, redrawing
// after every epoch the training report's four charts (train/validation loss and accuracy, the
// learning rate, per-layer gradient norms sampled from onBatchEnd) and, every few epochs, the
// decision regions (canvas). fit() yields to the event loop once per epoch, so the page stays
// responsive and repaints while it learns.
import { dense, init, sgd } from "edgegrad";
import { cosineAnnealingLR } from "edgegrad/schedules";
// The chart code of the CLI's report.html (ts/charts.ts), built on its own as dist/charts.js next
// to the package's index.js (served under ./edgegrad/). It is not a package export: with a
// bundler, copy the file or write your own charts from the same onEpochEnd / onBatchEnd data.
import { CHART_CSS, GradientRecorder, trainingCharts } from "./edgegrad/charts.js";
import { spirals } from "./spirals.js";

const EPOCHS = 150;
const status = document.getElementById("status");
const canvas = document.getElementById("regions");
const chartsEl = document.getElementById("charts");
document.head.append(Object.assign(document.createElement("style"), { textContent: CHART_CSS }));


/** Redraws the four charts (one card each, created on first use) from what training logged so far. */
function drawCharts(data) {
  for (const [i, chart] of trainingCharts(data).entries()) {
    let card = chartsEl.children[i];
    if (!card) {
      card = chartsEl.appendChild(document.createElement("div"));
      card.className = "card";
      card.append(document.createElement("div"), Object.assign(document.createElement("p"), { textContent: chart.caption }));
    }
    card.firstChild.innerHTML = chart.svg;
  }
}

/** Colours each canvas pixel block by the predicted class and dots the training points on top. */
function drawRegions(model, data) {
  const ctx = canvas.getContext("2d");
  const cells = 50;
  const size = canvas.width / cells;
  const grid = new Float32Array(cells * cells * 2);
  for (let r = 0; r < cells; r++) {
    for (let c = 0; c < cells; c++) {
      grid[2 * (r * cells + c)] = ((c + 0.5) / cells) * 2.4 - 1.2;
      grid[2 * (r * cells + c) + 1] = 1.2 - ((r + 0.5) / cells) * 2.4;
    }
  }
  const logits = model.predict(grid); // (cells², 2)
  for (let i = 0; i < cells * cells; i++) {
    ctx.fillStyle = logits[2 * i + 1] > logits[2 * i] ? "#f6d2d2" : "#d2e0f6";
    ctx.fillRect((i % cells) * size, Math.floor(i / cells) * size, size, size);
  }
  for (let i = 0; i < data.y.length; i++) {
    ctx.fillStyle = data.y[i] ? "#c33" : "#36c";
    ctx.beginPath();
    ctx.arc(((data.x[2 * i] + 1.2) / 2.4) * canvas.width, ((1.2 - data.x[2 * i + 1]) / 2.4) * canvas.height, 1.6, 0, 2 * Math.PI);
    ctx.fill();
  }
}

try {
  const t0 = performance.now();
  const eg = await init(); // fetches ./edgegrad/edgegrad.wasm next to the module, compiling while it streams
  status.textContent = `edgegrad ready in ${(performance.now() - t0).toFixed(0)} ms; training…`;

  const train = spirals(200, 1);
  const test = spirals(100, 2);
  const model = eg.sequential({ inputs: 2, seed: 7 }, [dense(32, { activation: "relu" }), dense(32, { activation: "relu" }), dense(2)]);
  model.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.2 }), maxBatch: 64 });

  // What the charts show, as the CLI's report keeps it: a row per epoch, gradient norms sampled
  // from every step (at most ~2×300 kept, evenly spaced however long training runs).
  const data = { epochs: [], grads: [], layerNames: ["L0 dense 32 relu", "L1 dense 32 relu", "L2 dense 2"] };
  const recorder = new GradientRecorder(300);
  const started = performance.now();
  await model.fit(train.x, train.y, {
    epochs: EPOCHS,
    batchSize: 32,
    validationData: [test.x, test.y],
    schedule: cosineAnnealingLR({ tMax: EPOCHS }),
    onBatchEnd: recorder.record,
    onEpochEnd: (epoch, logs) => {
      data.epochs.push({ epoch, ...logs });
      data.grads = recorder.samples;
      drawCharts(data);
      if (epoch % 10 === 0 || epoch === EPOCHS - 1) drawRegions(model, train);
      document.body.dataset.epoch = String(epoch + 1);
      status.textContent =
        `epoch ${epoch + 1}/${EPOCHS}: loss ${logs.loss.toFixed(4)}, lr ${logs.lr.toExponential(2)}, ` +
        `held-out accuracy ${(100 * logs.valAccuracy).toFixed(1)}%`;
    },
  });
  const { accuracy } = model.evaluate(test.x, test.y);
  const ms = performance.now() - started;
  status.textContent = `done: ${EPOCHS} epochs in ${ms.toFixed(0)} ms, held-out accuracy ${(100 * accuracy).toFixed(1)}%`;
  model.dispose();
  document.body.dataset.state = "done";
  window.__result = { losses: data.epochs.map((e) => e.loss), lrs: data.epochs.map((e) => e.lr), steps: data.grads.at(-1)?.step ?? 0, accuracy, ms };
} catch (e) {
  status.textContent = `failed: ${e}`;
  window.__error = String(e?.stack ?? e);
}
