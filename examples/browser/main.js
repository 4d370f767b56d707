// Trains a small MLP on two spirals in the page, redrawing the loss curve (SVG) after every epoch
// and the decision regions (canvas) every few epochs. fit() yields to the event loop once per
// epoch, so the page stays responsive and repaints while it learns.
import { dense, init, sgd } from "edgegrad";

const EPOCHS = 150;
const status = document.getElementById("status");
const curve = document.getElementById("curve");
const canvas = document.getElementById("regions");

/** `n` points per arm of two spirals with a little noise, from a seeded generator. */
function spirals(n, seed) {
  let s = seed >>> 0;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const x = new Float32Array(4 * n);
  const y = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const r = i / n;
    const t = 1.25 * 2 * Math.PI * r;
    for (const arm of [0, 1]) {
      const row = 2 * i + arm;
      const sign = arm === 0 ? 1 : -1;
      x[2 * row] = sign * r * Math.sin(t) + (rand() - 0.5) * 0.08;
      x[2 * row + 1] = sign * r * Math.cos(t) + (rand() - 0.5) * 0.08;
      y[row] = arm;
    }
  }
  return { x, y };
}

/** Redraws the loss polyline, scaled to the first (largest) loss. */
function drawLoss(losses) {
  const top = losses[0] || 1;
  document.getElementById("ymax").textContent = top.toFixed(2);
  curve.setAttribute(
    "points",
    losses.map((l, i) => `${(40 + (310 * i) / (EPOCHS - 1)).toFixed(1)},${(210 - (200 * l) / top).toFixed(1)}`).join(" "),
  );
}

/** Colours each canvas pixel block by the predicted class and dots the training points on top. */
function drawRegions(model, data) {
  const ctx = canvas.getContext("2d");
  const cells = 60;
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
    ctx.arc(((data.x[2 * i] + 1.2) / 2.4) * canvas.width, ((1.2 - data.x[2 * i + 1]) / 2.4) * canvas.height, 2, 0, 2 * Math.PI);
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
  model.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.1 }), maxBatch: 64 });

  const losses = [];
  const started = performance.now();
  await model.fit(train.x, train.y, {
    epochs: EPOCHS,
    batchSize: 32,
    validationData: [test.x, test.y],
    onEpochEnd: (epoch, logs) => {
      losses.push(logs.loss);
      drawLoss(losses);
      if (epoch % 10 === 0 || epoch === EPOCHS - 1) drawRegions(model, train);
      status.textContent =
        `epoch ${epoch + 1}/${EPOCHS}: loss ${logs.loss.toFixed(4)}, ` +
        `held-out accuracy ${(100 * logs.valAccuracy).toFixed(1)}%`;
    },
  });
  const { accuracy } = model.evaluate(test.x, test.y);
  const ms = performance.now() - started;
  status.textContent = `done: ${EPOCHS} epochs in ${ms.toFixed(0)} ms, held-out accuracy ${(100 * accuracy).toFixed(1)}%`;
  model.dispose();
  document.body.dataset.state = "done";
  window.__result = { losses, accuracy, ms, points: curve.points.length };
} catch (e) {
  status.textContent = `failed: ${e}`;
  window.__error = String(e?.stack ?? e);
}
