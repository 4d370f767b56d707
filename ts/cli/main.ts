// `edgegrad train | eval | predict`: the command-line trainer. main() takes argv and an Io
// (streams, working directory, an AbortSignal for Ctrl-C) and returns the exit code, so tests run
// it in-process; ts/cli/bin.ts is the executable wrapper. Training runs batch by batch with
// trainStep and yields to the event loop every 50 ms, so Ctrl-C is noticed after the current
// batch (fit() yields only once per epoch). A run writes the library's checkpoint
// (model.save(), the whole training state of the best epoch) plus a JSON model file with what only
// the CLI knows: feature names, label mapping and standardisation (see ModelFile).

import { mkdir, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
// Everything from the library comes through ../node.js and the subpath entries, which the bundle
// keeps external: one copy of the library, so `instanceof EdgegradError` holds for its errors.
import { EarlyStopping } from "../callbacks.js";
import {
  ACTIVATIONS,
  adagrad,
  adam,
  adamw,
  dense,
  EdgegradError,
  init,
  rmsprop,
  saveCheckpoint,
  sgd,
  type Activation,
  type DenseSpec,
  type Edgegrad,
  type OptimizerSpec,
  type Sequential,
} from "../node.js";
import { cosineAnnealingLR, type Schedule } from "../schedules.js";
import {
  CliError,
  fitStandardization,
  gatherRows,
  idxDataset,
  looksLikeIdx,
  parseCsv,
  permutation,
  readDataFile,
  rng,
  standardize,
  tableDataset,
  type Dataset,
  type Standardization,
} from "./data.js";
import { formatDuration, ProgressLine, type Sink } from "./progress.js";
import { GradientRecorder, renderReport, type ReportEpoch } from "./report.js";

/** What main() reads and writes. */
export interface Io {
  /** Results (metrics, predictions). */
  stdout: Sink;
  /** Progress, messages and errors. */
  stderr: Sink;
  /** Directory relative paths are resolved against. */
  cwd: string;
  /** Aborted on Ctrl-C: training stops after the current batch and keeps the best weights. */
  signal?: AbortSignal;
  /** edgegrad.wasm location (default: next to the bundle, or build/ in a checkout). */
  wasm?: string;
}

/** Exit code of a run stopped by Ctrl-C (128 + SIGINT, the shell convention). */
export const EXIT_INTERRUPTED = 130;

const USAGE = `usage:
  edgegrad train DATA.csv --target COLUMN [options]
  edgegrad train IMAGES.idx LABELS.idx [options]       (MNIST-style IDX files, .gz accepted)
  edgegrad eval MODEL.json DATA.csv | IMAGES.idx LABELS.idx
  edgegrad predict MODEL.json DATA.csv | IMAGES.idx [--out FILE.csv]

train options:
  --target COLUMN          label column of a CSV (class ids or any numeric labels)
  --layers 64,32           hidden layer widths (default 64,32; "" for none)
  --activation relu        hidden activation: ${ACTIVATIONS.join(", ")} (default relu)
  --optimizer adamw        sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad (default adamw)
  --lr R                   learning rate (default 1e-3; 0.05 for sgd/momentum/nesterov, 0.01 adagrad)
  --weight-decay W         weight decay (default 0.01 for adamw, else 0)
  --schedule cosine        learning-rate schedule: none or cosine (default none)
  --epochs 20              passes over the training split
  --batch-size 32          rows per step
  --validation-split 0.2   fraction held out for validation, in [0, 1)
  --patience N             stop after N epochs without validation-loss improvement (default off)
  --seed 42                seed of the split, shuffling and initial weights
  --out DIR                where model.json and report.html go (default edgegrad-run)
Ctrl-C stops after the current batch and saves the best weights so far.`;

type OptKind = "string" | "int" | "number";
const TRAIN_OPTS: Record<string, OptKind> = {
  target: "string",
  layers: "string",
  activation: "string",
  optimizer: "string",
  lr: "number",
  "weight-decay": "number",
  schedule: "string",
  epochs: "int",
  "batch-size": "int",
  "validation-split": "number",
  patience: "int",
  seed: "int",
  out: "string",
};
const PREDICT_OPTS: Record<string, OptKind> = { out: "string" };

interface Parsed {
  positional: string[];
  opts: Map<string, string | number>;
}

/** Splits `--name value` / `--name=value` options from positional arguments, checking names and numbers. */
function parseArgs(args: readonly string[], known: Record<string, OptKind>, command: string): Parsed {
  const positional: string[] = [];
  const opts = new Map<string, string | number>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("--") || a === "--") {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const kind = known[name];
    if (kind === undefined) throw new CliError(`unknown option --${name} for "edgegrad ${command}" (see edgegrad --help)`, 2);
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      if (i + 1 >= args.length) throw new CliError(`option --${name} needs a value`, 2);
      value = args[++i]!;
    }
    if (kind === "string") opts.set(name, value);
    else {
      const v = value.trim() === "" ? NaN : Number(value);
      if (!Number.isFinite(v) || (kind === "int" && !Number.isInteger(v))) {
        throw new CliError(`option --${name}: expected ${kind === "int" ? "an integer" : "a number"}, got "${value}"`, 2);
      }
      opts.set(name, v);
    }
  }
  return { positional, opts };
}

/**
 * The CLI's model file (model.json): what the trainer adds around the library's checkpoint
 * (model.edgegrad, written by `model.save()`, read back with `eg.load()`).
 */
export interface ModelFile {
  /** Always "edgegrad-cli-model". */
  format: "edgegrad-cli-model";
  /** Format version (1). */
  version: 1;
  /** Input features. */
  inputs: number;
  /** Feature names, in input order (CSV columns, or pixel0..N-1 for IDX). */
  features: string[];
  /** Label column of the CSV it was trained on (null for IDX). */
  target: string | null;
  /** Label value of each output (output k predicts classes[k]). */
  classes: number[];
  /** Training split statistics applied to inputs before the model: (x − mean) / std. */
  standardization: Standardization;
  /** The checkpoint file (architecture, weights, optimizer state), relative to this file. */
  checkpoint: string;
  /** How it was trained (informational). */
  training: Record<string, unknown>;
}

function optimizerFor(name: string, lr: number | undefined, wd: number | undefined): OptimizerSpec {
  switch (name) {
    case "sgd":
      return sgd({ lr: lr ?? 0.05, weightDecay: wd ?? 0 });
    case "momentum":
      return sgd({ lr: lr ?? 0.05, momentum: 0.9, weightDecay: wd ?? 0 });
    case "nesterov":
      return sgd({ lr: lr ?? 0.05, momentum: 0.9, nesterov: true, weightDecay: wd ?? 0 });
    case "adam":
      return adam({ lr: lr ?? 1e-3, weightDecay: wd ?? 0 });
    case "adamw":
      return adamw({ lr: lr ?? 1e-3, weightDecay: wd ?? 0.01 });
    case "rmsprop":
      return rmsprop({ lr: lr ?? 1e-3, weightDecay: wd ?? 0 });
    case "adagrad":
      return adagrad({ lr: lr ?? 0.01, weightDecay: wd ?? 0 });
    default:
      throw new CliError(`--optimizer: unknown optimizer "${name}"; expected sgd, momentum, nesterov, adam, adamw, rmsprop or adagrad`, 2);
  }
}

/** Loads CSV or IDX data; CSV needs `target` unless `needTarget` is false, and `features` picks columns by name. */
async function loadData(io: Io, files: string[], target: string | null, needTarget: boolean, features?: string[]): Promise<{ data: Dataset; source: string }> {
  if (files.length === 0) throw new CliError("missing data file (see edgegrad --help)", 2);
  if (files.length > 2) throw new CliError(`too many data files: ${files.join(" ")}`, 2);
  const path = (f: string) => resolve(io.cwd, f);
  const first = await readDataFile(path(files[0]!), files[0]);
  if (files.length === 2 || looksLikeIdx(first)) {
    const labels = files.length === 2 ? await readDataFile(path(files[1]!), files[1]) : null;
    if (!labels && needTarget) throw new CliError(`${files[0]} is an IDX images file: also give its labels file`, 2);
    return { data: idxDataset(first, files[0]!, labels, files[1] ?? ""), source: files.join(" + ") };
  }
  const table = parseCsv(new TextDecoder().decode(first), files[0]!);
  if (needTarget && target === null) throw new CliError(`--target is required for a CSV file; its columns are: ${table.columns.join(", ")}`, 2);
  let t = target;
  if (!needTarget && t !== null && !table.columns.includes(t)) t = null; // predict: a label column is optional
  return { data: tableDataset(table, files[0]!, t, features), source: files[0]! };
}

/** Maps raw label values to class ids 0..K-1 (sorted label order); `classes` fixes the mapping (eval). */
function classIds(y: Float64Array, file: string, classes?: number[]): { ids: Int32Array; classes: number[] } {
  const cls = classes ?? [...new Set(y)].sort((a, b) => a - b);
  if (!classes) {
    if (cls.length < 2) throw new CliError(`${file}: the target has only one value (${cls[0]}); a classifier needs at least two classes`);
    if (cls.length > 1000) throw new CliError(`${file}: the target has ${cls.length} distinct values; the CLI trains classifiers (at most 1000 classes)`);
  }
  const index = new Map(cls.map((c, i) => [c, i]));
  const ids = new Int32Array(y.length);
  for (let r = 0; r < y.length; r++) {
    const id = index.get(y[r]!);
    if (id === undefined) throw new CliError(`${file}: row ${r + 1} has label ${y[r]}, which the model was not trained on (classes: ${cls.join(", ")})`);
    ids[r] = id;
  }
  return { ids, classes: cls };
}

const layerName = (s: DenseSpec, last: boolean) => `dense ${s.units}${last ? " (logits)" : ` ${s.activation}`}`;
const yieldNow = () => new Promise<void>((r) => setImmediate(r));

async function train(args: string[], io: Io): Promise<number> {
  const { positional, opts } = parseArgs(args, TRAIN_OPTS, "train");
  const str = (k: string) => opts.get(k) as string | undefined;
  const num = (k: string) => opts.get(k) as number | undefined;
  const epochs = num("epochs") ?? 20;
  const batchSize = num("batch-size") ?? 32;
  const split = num("validation-split") ?? 0.2;
  const seed = num("seed") ?? 42;
  const patience = num("patience");
  if (epochs < 1) throw new CliError(`--epochs: expected an integer >= 1, got ${epochs}`, 2);
  if (batchSize < 1) throw new CliError(`--batch-size: expected an integer >= 1, got ${batchSize}`, 2);
  if (!(split >= 0 && split < 1)) throw new CliError(`--validation-split: expected a fraction in [0, 1), got ${split}`, 2);
  if (seed < 0) throw new CliError(`--seed: expected an integer >= 0, got ${seed}`, 2);
  if (patience !== undefined && patience < 0) throw new CliError(`--patience: expected an integer >= 0, got ${patience}`, 2);
  const activation = (str("activation") ?? "relu") as Activation;
  if (!ACTIVATIONS.includes(activation)) throw new CliError(`--activation: unknown activation "${activation}"; expected one of ${ACTIVATIONS.join(", ")}`, 2);
  const layersArg = str("layers") ?? "64,32";
  const hidden = layersArg.trim() === "" ? [] : layersArg.split(",").map((w) => Number(w.trim()));
  if (hidden.some((w) => !Number.isInteger(w) || w < 1)) throw new CliError(`--layers: expected comma-separated widths such as 64,32, got "${layersArg}"`, 2);
  const optimizerName = str("optimizer") ?? "adamw";
  const optimizer = optimizerFor(optimizerName, num("lr"), num("weight-decay"));
  const scheduleName = str("schedule") ?? "none";
  if (scheduleName !== "none" && scheduleName !== "cosine") throw new CliError(`--schedule: expected none or cosine, got "${scheduleName}"`, 2);
  const outDir = resolve(io.cwd, str("out") ?? "edgegrad-run");

  const { data, source } = await loadData(io, positional, str("target") ?? null, true);
  const { ids, classes } = classIds(data.y, source);
  const F = data.features.length;
  // Seeded split: the same seed gives the same validation rows.
  const perm = permutation(data.rows, rng(seed));
  let nVal = Math.round(data.rows * split);
  if (split > 0 && nVal === 0 && data.rows >= 2) nVal = 1;
  const nTrain = data.rows - nVal;
  if (nTrain < 1) throw new CliError(`${source}: ${data.rows} rows leave no training rows after a validation split of ${split}`);
  if (patience !== undefined && nVal === 0) throw new CliError("--patience watches the validation loss: use a --validation-split above 0", 2);
  const trainIdx = perm.subarray(nVal);
  const valIdx = perm.subarray(0, nVal);
  const xTrainRaw = gatherRows(data.x, F, trainIdx, new Float32Array(nTrain * F));
  const std = fitStandardization(xTrainRaw, nTrain, F);
  const xTrain = standardize(xTrainRaw, std);
  const yTrain = gatherRows(ids, 1, trainIdx, new Int32Array(nTrain));
  const xVal = standardize(gatherRows(data.x, F, valIdx, new Float32Array(nVal * F)), std);
  const yVal = gatherRows(ids, 1, valIdx, new Int32Array(nVal));

  const specs = [...hidden.map((w) => dense(w, { activation })), dense(classes.length)];
  const eg = await init(io.wasm);
  using model = eg.sequential({ inputs: F, seed }, specs);
  model.compile({ loss: "softmaxCrossEntropy", optimizer, maxBatch: Math.max(batchSize, 256) });
  let schedule: Schedule | null = null;
  if (scheduleName === "cosine") {
    schedule = cosineAnnealingLR({ tMax: epochs });
    model.lr = schedule.start(model.lr);
  }
  const stopper = patience === undefined ? null : new EarlyStopping({ monitor: "valLoss", patience });
  const err = io.stderr;
  err.write(
    `edgegrad: ${source}: ${data.rows} rows, ${F} features, ${classes.length} classes; ${nTrain} train / ${nVal} validation\n` +
      `model: ${F} -> ${specs.map((s) => s.units).join(" -> ")} (${model.paramCount.toLocaleString("en-US")} parameters), ${optimizerName} lr ${model.lr}, batch ${batchSize}\n`,
  );

  const recorder = new GradientRecorder();
  const progress = new ProgressLine(err);
  const epochLog: ReportEpoch[] = [];
  const batches = Math.ceil(nTrain / batchSize);
  const shuffleRng = rng(seed + 1);
  const xe = new Float32Array(nTrain * F);
  const ye = new Int32Array(nTrain);
  // The best epoch's whole state (model.save()): restored into the model when training ends.
  let best = { metric: Infinity, epoch: -1, checkpoint: null as Uint8Array | null };
  let interrupted = false;
  let diverged: string | null = null;
  let step = 0;
  let stoppedEarly = false;
  const t0 = performance.now();
  let samples = 0;
  let accEstimate = NaN;
  let lastYield = t0;
  let lastAcc = -Infinity;

  training: for (let epoch = 0; epoch < epochs; epoch++) {
    const order = permutation(nTrain, shuffleRng);
    gatherRows(xTrain, F, order, xe);
    gatherRows(yTrain, 1, order, ye);
    const lr = model.lr;
    let lossSum = 0;
    let seen = 0;
    for (let b = 0; b < batches; b++) {
      if (io.signal?.aborted) {
        interrupted = true;
        break training;
      }
      const start = b * batchSize;
      const count = Math.min(batchSize, nTrain - start);
      const bx = xe.subarray(start * F, (start + count) * F);
      const by = ye.subarray(start, start + count);
      try {
        lossSum += model.trainStep(bx, by) * count;
      } catch (e) {
        if (!(e instanceof EdgegradError)) throw e;
        diverged = e.message;
        break training;
      }
      seen += count;
      samples += count;
      step++;
      if (recorder.wants(step)) recorder.record(step, model.lastStepStats()!);
      const now = performance.now();
      if (progress.live && now - lastAcc >= 100) {
        lastAcc = now;
        // Running accuracy: one forward pass over the current batch per redraw (~10 per second).
        const acc = batchAccuracy(model, bx, by);
        accEstimate = Number.isFinite(accEstimate) ? 0.7 * accEstimate + 0.3 * acc : acc;
      }
      const rate = samples / ((now - t0) / 1000);
      progress.update(
        { epoch, epochs, batch: b + 1, batches, loss: lossSum / seen, accuracy: accEstimate, samplesPerSecond: rate, eta: (epochs * nTrain - samples) / rate },
        now,
      );
      if (now - lastYield >= 50) {
        await yieldNow(); // lets Ctrl-C (and the terminal) through between batches
        lastYield = performance.now();
      }
    }
    const row: ReportEpoch = { epoch, lr, loss: lossSum / nTrain, accuracy: model.evaluate(xTrain, yTrain).accuracy };
    if (nVal > 0) {
      const v = model.evaluate(xVal, yVal);
      row.valLoss = v.loss;
      row.valAccuracy = v.accuracy;
    }
    epochLog.push(row);
    const metric = row.valLoss ?? row.loss;
    if (schedule) model.lr = schedule.step(metric);
    if (metric < best.metric) best = { metric, epoch, checkpoint: model.save(schedule ? { schedule } : undefined) };
    progress.done();
    const elapsed = (performance.now() - t0) / 1000;
    err.write(
      `epoch ${epoch + 1}/${epochs}  loss ${row.loss.toFixed(4)}  acc ${row.accuracy!.toFixed(4)}` +
        (row.valLoss !== undefined ? `  val_loss ${row.valLoss.toFixed(4)}  val_acc ${row.valAccuracy!.toFixed(4)}` : "") +
        `  lr ${lr.toExponential(2)}  ${Math.round(samples / elapsed).toLocaleString("en-US")} samples/s  ${formatDuration(elapsed)}\n`,
    );
    if (stopper?.onEpochEnd(epoch, { lr, loss: row.loss, valLoss: row.valLoss! }, model)) {
      stoppedEarly = true;
      break;
    }
  }
  progress.done();

  if (best.checkpoint) model.load(best.checkpoint, schedule ? { schedule } : undefined);
  const bestRow = epochLog[best.epoch];
  let note: string | undefined;
  if (interrupted) {
    note = `Interrupted (Ctrl-C) at step ${step}, after ${epochLog.length} complete epoch(s); ${best.checkpoint ? `saved the best epoch (${best.epoch + 1})` : "no epoch finished, saved the current weights"}.`;
  } else if (diverged) {
    note = `Training stopped at step ${step + 1}: ${diverged}. ${best.checkpoint ? `Saved the best epoch (${best.epoch + 1}).` : "No epoch finished."}`;
  } else if (stoppedEarly) {
    note = `Early stopping: validation loss did not improve for ${patience} epoch(s) after epoch ${best.epoch + 1}.`;
  }
  if (note) err.write(`${note}\n`);

  const file: ModelFile = {
    format: "edgegrad-cli-model",
    version: 1,
    inputs: F,
    features: data.features,
    target: positional.length === 2 ? null : (str("target") ?? null),
    classes,
    standardization: std,
    checkpoint: "model.edgegrad",
    training: {
      data: source,
      rows: data.rows,
      trainRows: nTrain,
      validationRows: nVal,
      optimizer,
      schedule: scheduleName,
      batchSize,
      seed,
      epochsRun: epochLog.length,
      bestEpoch: best.epoch,
      interrupted,
      steps: step,
    },
  };
  const summary: [string, string][] = [
    ["data", `${source}: ${data.rows} rows × ${F} features, ${classes.length} classes (${nTrain} train / ${nVal} validation, seed ${seed})`],
    ["model", `${F} → ${specs.map((s, l) => layerName(s, l === specs.length - 1)).join(" → ")} · ${model.paramCount.toLocaleString("en-US")} parameters`],
    ["optimizer", `${optimizerName}, lr ${optimizer.lr}${optimizer.weightDecay ? `, weight decay ${optimizer.weightDecay}` : ""}, schedule ${scheduleName}, batch ${batchSize}`],
    ["training", `${epochLog.length}/${epochs} epochs, ${step} steps, ${formatDuration((performance.now() - t0) / 1000)}, ${Math.round(samples / ((performance.now() - t0) / 1000)).toLocaleString("en-US")} samples/s`],
  ];
  if (bestRow) {
    summary.push([
      "saved weights",
      `epoch ${best.epoch + 1}: loss ${bestRow.loss.toFixed(4)}, accuracy ${bestRow.accuracy!.toFixed(4)}` +
        (bestRow.valLoss !== undefined ? `, validation loss ${bestRow.valLoss.toFixed(4)}, validation accuracy ${bestRow.valAccuracy!.toFixed(4)}` : ""),
    ]);
  }
  await mkdir(outDir, { recursive: true });
  const modelPath = join(outDir, "model.json");
  const reportPath = join(outDir, "report.html");
  await saveCheckpoint(join(outDir, file.checkpoint), model, schedule ? { schedule } : undefined);
  await writeFile(modelPath, `${JSON.stringify(file, null, 2)}\n`);
  const html = renderReport({
    title: `edgegrad train ${basename(source)}`,
    summary,
    epochs: epochLog,
    grads: recorder.samples,
    layerNames: specs.map((s, l) => `L${l} ${layerName(s, l === specs.length - 1)}`),
    ...(note ? { note } : {}),
  });
  await writeFile(reportPath, html);
  io.stdout.write(
    (bestRow ? `best epoch ${best.epoch + 1}: ${bestRow.valAccuracy !== undefined ? `val_acc ${bestRow.valAccuracy.toFixed(4)}` : `acc ${bestRow.accuracy!.toFixed(4)}`}\n` : "") +
      `model:  ${modelPath}\nreport: ${reportPath}\n`,
  );
  if (interrupted) return EXIT_INTERRUPTED;
  return diverged ? 1 : 0;
}

/** Fraction of rows of one batch whose argmax logit is the label. */
function batchAccuracy(model: Sequential, x: Float32Array, y: Int32Array): number {
  const out = model.predict(x);
  const k = model.outputs;
  let correct = 0;
  for (let r = 0; r < y.length; r++) {
    let arg = 0;
    for (let j = 1; j < k; j++) if (out[r * k + j]! > out[r * k + arg]!) arg = j;
    if (arg === y[r]) correct++;
  }
  return correct / y.length;
}

/** Reads and checks a model file written by `edgegrad train` (`path` may be its run directory); returns it and its resolved path. */
export async function readModelFile(io: Io, path: string): Promise<{ m: ModelFile; file: string; shown: string }> {
  let file = resolve(io.cwd, path);
  if ((await stat(file).catch(() => null))?.isDirectory()) {
    file = join(file, "model.json");
    path = join(path, "model.json");
  }
  const bytes = await readDataFile(file, path);
  let m: ModelFile;
  try {
    m = JSON.parse(new TextDecoder().decode(bytes)) as ModelFile;
  } catch (e) {
    throw new CliError(`${path} is not a model file written by edgegrad train (invalid JSON: ${(e as Error).message})`);
  }
  if (m?.format !== "edgegrad-cli-model") throw new CliError(`${path} is not a model file written by edgegrad train (no "format": "edgegrad-cli-model")`);
  if (m.version !== 1) throw new CliError(`${path}: model file version ${String(m.version)} is not supported (expected 1)`);
  return { m, file, shown: path };
}

/** Loads the checkpoint a model file points to (a compiled model, ready for evaluate/predict). */
async function buildModel(eg: Edgegrad, m: ModelFile, file: string, path: string): Promise<Sequential> {
  const ckpt = join(dirname(file), m.checkpoint);
  const bytes = await readDataFile(ckpt, join(dirname(path), m.checkpoint));
  let model: Sequential;
  try {
    model = eg.load(bytes);
  } catch (e) {
    if (e instanceof EdgegradError) throw new CliError(`${join(dirname(path), m.checkpoint)}: ${e.message}`);
    throw e;
  }
  if (model.inputs !== m.inputs || model.outputs !== m.classes.length) {
    model.dispose();
    throw new CliError(`${path}: its checkpoint takes ${model.inputs} inputs and gives ${model.outputs} outputs, the model file says ${m.inputs} and ${m.classes.length}`);
  }
  return model;
}

async function evaluateCmd(args: string[], io: Io): Promise<number> {
  const { positional } = parseArgs(args, {}, "eval");
  const [modelPath, ...files] = positional;
  if (!modelPath) throw new CliError("usage: edgegrad eval MODEL.json DATA.csv", 2);
  const { m, file, shown } = await readModelFile(io, modelPath);
  if (files.length === 1 && m.target === null) throw new CliError(`${modelPath} was trained on IDX files: give an images file and a labels file`, 2);
  const { data, source } = await loadData(io, files, m.target, true, files.length === 2 ? undefined : m.features);
  checkWidth(data, m, source);
  const { ids } = classIds(data.y, source, m.classes);
  const eg = await init(io.wasm);
  using model = await buildModel(eg, m, file, shown);
  const r = model.evaluate(standardize(data.x, m.standardization), ids);
  io.stdout.write(`rows ${data.rows}  loss ${r.loss.toFixed(4)}  accuracy ${r.accuracy.toFixed(4)}\n`);
  return 0;
}

function checkWidth(data: Dataset, m: ModelFile, source: string): void {
  if (data.features.length !== m.inputs) throw new CliError(`${source} has ${data.features.length} features per row, the model takes ${m.inputs}`);
}

async function predictCmd(args: string[], io: Io): Promise<number> {
  const { positional, opts } = parseArgs(args, PREDICT_OPTS, "predict");
  const [modelPath, ...files] = positional;
  if (!modelPath) throw new CliError("usage: edgegrad predict MODEL.json DATA.csv [--out FILE.csv]", 2);
  const { m, file, shown } = await readModelFile(io, modelPath);
  const idx = m.target === null;
  const { data, source } = await loadData(io, files, idx ? null : m.target, false, idx ? undefined : m.features);
  checkWidth(data, m, source);
  const eg = await init(io.wasm);
  using model = await buildModel(eg, m, file, shown);
  const logits = model.predict(standardize(data.x, m.standardization));
  const k = m.classes.length;
  const lines = [["prediction", ...m.classes.map((c) => `p_${c}`)].join(",")];
  const p = new Float64Array(k);
  for (let r = 0; r < data.rows; r++) {
    // softmax in f64 with the max subtracted
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[r * k + j]!);
    let sum = 0;
    let arg = 0;
    for (let j = 0; j < k; j++) {
      p[j] = Math.exp(logits[r * k + j]! - max);
      sum += p[j]!;
      if (p[j]! > p[arg]!) arg = j;
    }
    lines.push([String(m.classes[arg]), ...Array.from(p, (v) => (v / sum).toFixed(6))].join(","));
  }
  const text = `${lines.join("\n")}\n`;
  const out = opts.get("out") as string | undefined;
  if (out) {
    await writeFile(resolve(io.cwd, out), text);
    io.stderr.write(`wrote ${data.rows} predictions to ${out}\n`);
  } else io.stdout.write(text);
  return 0;
}

/** Runs one CLI invocation (`argv` without node and the script) and returns the exit code. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "train":
        return await train(rest, io);
      case "eval":
        return await evaluateCmd(rest, io);
      case "predict":
        return await predictCmd(rest, io);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        (command === undefined ? io.stderr : io.stdout).write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new CliError(`unknown command "${command}"; expected train, eval or predict (see edgegrad --help)`, 2);
    }
  } catch (e) {
    if (e instanceof CliError) {
      io.stderr.write(`edgegrad: error: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof EdgegradError) {
      io.stderr.write(`edgegrad: error: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
