// The bad-input table (issue 6): every kind of bad input tried against a trained model, the typed
// error it gets, and proof that the model is unchanged (its full checkpoint — parameters,
// running statistics, optimizer state, step, lr, RNG and shuffle state — is byte-identical
// before and after). docs/bad-input.md is generated from this table: run with
// EDGEGRAD_UPDATE_DOCS=1 to rewrite it; otherwise the test fails when the doc is out of date.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import {
  adam,
  batchNorm,
  CheckpointError,
  dense,
  DisposedError,
  dropout,
  init,
  InvalidArgumentError,
  NonFiniteError,
  OutOfMemoryError,
  ShapeError,
  StateError,
  type Edgegrad,
  type EdgegradError,
  type Sequential,
} from "../ts/node.js";
import { loadSafetensors, toSafetensors } from "../ts/safetensors.js";
import { rng, WASM } from "./helpers.js";

const DOC = fileURLToPath(new URL("../docs/bad-input.md", import.meta.url));
const README = fileURLToPath(new URL("../README.md", import.meta.url));

let eg: Edgegrad;
beforeAll(async () => {
  eg = await init(WASM);
});

const r = rng(3);
const X = Float32Array.from({ length: 16 * 4 }, () => r() * 2 - 1);
const Y = Int32Array.from({ length: 16 }, (_, i) => i % 3);
const withAt = (a: Float32Array, i: number, v: number) => {
  const c = a.slice();
  c[i] = v;
  return c;
};
const flip = (b: Uint8Array, i: number) => {
  const c = b.slice();
  c[i]! ^= 1;
  return c;
};

/** A compiled, once-trained model with batchNorm and dropout (Adam). */
function subject(): Sequential {
  const m = eg.sequential({ inputs: 4, seed: 5 }, [dense(8, { activation: "relu" }), batchNorm(), dropout(0.2), dense(3)]);
  m.compile({ loss: "softmaxCrossEntropy", optimizer: adam({ lr: 0.01 }), maxBatch: 16 });
  m.trainStep(X, Y);
  return m;
}

type ErrorClass = abstract new (...a: never[]) => EdgegradError;
interface Case {
  kind: string;
  input: string;
  /** The class thrown, or null for bad input that is tolerated on request (the model must still be unchanged). */
  error: ErrorClass | null;
  /** Runs the bad call on model m (and may use the instance); with error null, what it returned goes into the table. */
  run: (m: Sequential) => unknown;
}

const CASES: Case[] = [
  { kind: "shape", input: "x length not a multiple of inputs", error: ShapeError, run: (m) => m.trainStep(X.subarray(0, 10), Y) },
  { kind: "shape", input: "y length ≠ rows of x", error: ShapeError, run: (m) => m.trainStep(X, Y.subarray(0, 15)) },
  { kind: "shape", input: "x tensor of the wrong width", error: ShapeError, run: (m) => eg.scope(() => m.predict(eg.zeros([4, 5]))) },
  { kind: "shape", input: "batch larger than maxBatch", error: InvalidArgumentError, run: (m) => m.trainStep(new Float32Array(17 * 4), new Int32Array(17)) },
  { kind: "shape", input: "batch of 1 with batchNorm in training mode", error: InvalidArgumentError, run: (m) => m.trainStep(X.subarray(0, 4), Y.subarray(0, 1)) },
  { kind: "shape", input: "setWeights with a kernel of the wrong size", error: ShapeError, run: (m) => m.setWeights(m.getWeights().map((w) => (w.kind === "dense" ? { ...w, kernel: new Float32Array(3) } : w))) },
  { kind: "shape", input: "empty lossOut (trainStep)", error: ShapeError, run: (m) => m.trainStep(X, Y, new Float32Array(0)) },
  { kind: "type", input: "x as Float64Array", error: InvalidArgumentError, run: (m) => m.trainStep(new Float64Array(64) as unknown as Float32Array, Y) },
  { kind: "type", input: "x as a plain array", error: InvalidArgumentError, run: (m) => m.predict([1, 2, 3, 4] as unknown as Float32Array) },
  { kind: "type", input: "class ids as Float32Array", error: InvalidArgumentError, run: (m) => m.trainStep(X, new Float32Array(16)) },
  { kind: "label", input: "class id = number of classes", error: InvalidArgumentError, run: (m) => m.trainStep(X, Int32Array.from(Y, (v, i) => (i === 5 ? 3 : v))) },
  { kind: "label", input: "negative class id", error: InvalidArgumentError, run: (m) => m.trainStep(X, Int32Array.from(Y, (v, i) => (i === 2 ? -1 : v))) },
  { kind: "non-finite", input: "NaN in x (trainStep)", error: NonFiniteError, run: (m) => m.trainStep(withAt(X, 9, NaN), Y) },
  { kind: "non-finite", input: "Infinity in x (predict)", error: NonFiniteError, run: (m) => m.predict(withAt(X, 0, Infinity)) },
  { kind: "non-finite", input: "NaN in x (fit, first batch)", error: NonFiniteError, run: (m) => m.fit(withAt(X, 3, NaN), Y, { epochs: 1, batchSize: 8, shuffle: false }) },
  { kind: "non-finite", input: "NaN in x (fit, nonFinite: \"skip\")", error: null, run: (m) => m.fit(withAt(X, 3, NaN), Y, { epochs: 1, batchSize: 16, shuffle: false, nonFinite: "skip" }) },
  { kind: "non-finite", input: "NaN in setWeights", error: NonFiniteError, run: (m) => m.setWeights(m.getWeights().map((w) => (w.kind === "dense" ? { ...w, bias: w.bias.map(() => NaN) } : w))) },
  { kind: "non-finite", input: "negative running variance in setBuffers", error: InvalidArgumentError, run: (m) => m.setBuffers(m.getBuffers().map((b) => ({ ...b, runningVar: b.runningVar.map(() => -1) }))) },
  { kind: "hyper-parameter", input: "lr = -1", error: InvalidArgumentError, run: (m) => (m.lr = -1) },
  { kind: "hyper-parameter", input: "lr = NaN", error: InvalidArgumentError, run: (m) => (m.lr = NaN) },
  { kind: "hyper-parameter", input: "adam betas[0] = 1", error: InvalidArgumentError, run: (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: adam({ betas: [1, 0.999] }) }) },
  { kind: "hyper-parameter", input: "compile maxBatch = 0", error: InvalidArgumentError, run: (m) => m.compile({ loss: "softmaxCrossEntropy", optimizer: adam(), maxBatch: 0 }) },
  { kind: "hyper-parameter", input: "unknown loss", error: InvalidArgumentError, run: (m) => m.compile({ loss: "hinge" as never, optimizer: adam() }) },
  { kind: "hyper-parameter", input: "fit batchSize = 0", error: InvalidArgumentError, run: (m) => m.fit(X, Y, { batchSize: 0 }) },
  { kind: "hyper-parameter", input: "fit epochs = 1.5", error: InvalidArgumentError, run: (m) => m.fit(X, Y, { epochs: 1.5 }) },
  { kind: "hyper-parameter", input: "fit nonFinite = \"ignore\"", error: InvalidArgumentError, run: (m) => m.fit(withAt(X, 3, NaN), Y, { nonFinite: "ignore" as never }) },
  { kind: "hyper-parameter", input: "fit leaving a last batch of 1 with batchNorm", error: InvalidArgumentError, run: (m) => m.fit(X.subarray(0, 13 * 4), Y.subarray(0, 13), { batchSize: 4 }) },
  { kind: "disposed", input: "a disposed tensor as x", error: DisposedError, run: (m) => { const t = eg.tensor(X, [16, 4]); t.dispose(); return m.predict(t); } },
  { kind: "disposed", input: "loading into a disposed model", error: DisposedError, run: (m) => { const d = subject(); const b = m.save(); d.dispose(); return d.load(b); } },
  { kind: "checkpoint", input: "checkpoint of another architecture", error: CheckpointError, run: (m) => { const o = eg.sequential({ inputs: 4, seed: 1 }, [dense(3)]); try { return m.load(o.save()); } finally { o.dispose(); } } },
  { kind: "checkpoint", input: "truncated checkpoint", error: CheckpointError, run: (m) => m.load(m.save().subarray(0, 100)) },
  { kind: "checkpoint", input: "bit-flipped checkpoint", error: CheckpointError, run: (m) => m.load(flip(m.save(), 200)) },
  { kind: "checkpoint", input: "checkpoint of another format version", error: CheckpointError, run: (m) => m.load(flip(m.save(), 9)) },
  { kind: "checkpoint", input: "not a checkpoint (random bytes)", error: CheckpointError, run: (m) => m.load(Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 255)) },
  { kind: "checkpoint", input: "safetensors of another architecture", error: ShapeError, run: (m) => { const o = eg.sequential({ inputs: 4, seed: 1 }, [dense(3)]); try { return loadSafetensors(m, toSafetensors(o)); } finally { o.dispose(); } } },
  { kind: "memory", input: "compile beyond the heap limit (setHeapLimit)", error: OutOfMemoryError, run: (m) => { const prev = eg.setHeapLimit(4 << 20); try { return m.compile({ loss: "softmaxCrossEntropy", optimizer: adam(), maxBatch: 1 << 20 }); } finally { eg.setHeapLimit(prev); } } },
  { kind: "state", input: "trainStep before compile", error: StateError, run: () => { const u = eg.sequential({ inputs: 4, seed: 1 }, [dense(3)]); try { return u.trainStep(X, Y); } finally { u.dispose(); } } },
];

const rows: string[] = [];

describe("bad input: typed error, model unchanged", () => {
  for (const c of CASES) {
    it(`${c.kind}: ${c.input}`, async () => {
      const m = subject();
      const before = m.save();
      const live = eg.memory().liveHandles;
      let err: unknown = null;
      let result: unknown;
      try {
        result = await c.run(m);
      } catch (e) {
        err = e;
      }
      if (c.error) expect(err).toBeInstanceOf(c.error);
      else expect(err).toBeNull();
      expect(Buffer.from(m.save()).equals(Buffer.from(before))).toBe(true);
      expect(eg.memory().liveHandles).toBe(live);
      if (c.error) {
        const e = err as EdgegradError;
        rows.push(`| ${c.kind} | ${c.input} | \`${e.constructor.name}\` | ${e.message.replaceAll("|", "\\|").replaceAll("\n", " ")} |`);
      } else {
        // The one batch was skipped: fit returns normally and its history counts the skip.
        const h = result as { skippedBatches?: number[] };
        expect(h.skippedBatches).toEqual([1]);
        rows.push(`| ${c.kind} | ${c.input} | none: batch skipped | history.skippedBatches = [${h.skippedBatches!.join(", ")}] |`);
      }
      m.dispose();
    });
  }

  it("docs/bad-input.md matches this table (EDGEGRAD_UPDATE_DOCS=1 rewrites it)", () => {
    expect(rows.length).toBe(CASES.length);
    const doc = [
      "# Bad input: what each call throws",
      "",
      "Generated by `test/bad-input.test.ts` (run it with `EDGEGRAD_UPDATE_DOCS=1` to refresh). Every row",
      "is a test that the call throws the error class shown and that the model is left unchanged: its",
      "full checkpoint (`model.save()`: parameters, batch-norm statistics, optimizer state, step,",
      "learning rate, RNG and shuffle state) is byte-identical before and after, and no handle leaks.",
      "Every class extends `EdgegradError`; `CheckpointError` extends `InvalidArgumentError` and adds",
      "`problem` (`magic`, `version`, `checksum`, `truncated`, `malformed`, `architecture`, `schedule`).",
      "`fit()` is all-or-nothing per step, not per call: a NaN in a later batch stops it at that step",
      "(`NonFiniteError.step`), and the steps before it stand (test/health.test.ts). With",
      "`fit(x, y, { nonFinite: \"skip\" })` a batch with NaN/Inf in its inputs, targets, loss or gradients",
      "is skipped instead (the row marked \"none\"): the model is left as it was for that batch,",
      "`logs.skippedBatches` counts it, and training goes on; the result equals training without",
      "those batches (test/health.test.ts).",
      "",
      "| Kind | Bad input | Error | Message |",
      "| --- | --- | --- | --- |",
      ...rows,
      "",
    ].join("\n");
    if (process.env.EDGEGRAD_UPDATE_DOCS === "1") writeFileSync(DOC, doc);
    expect(readFileSync(DOC, "utf8")).toBe(doc);
  });

  it("README's bad-input table matches this table (EDGEGRAD_UPDATE_DOCS=1 rewrites it)", () => {
    const [start, end] = ["<!-- bad-input:start -->", "<!-- bad-input:end -->"];
    const readme = readFileSync(README, "utf8");
    const a = readme.indexOf(start);
    const b = readme.indexOf(end);
    expect(a >= 0 && b > a, `README.md needs the ${start} … ${end} markers`).toBe(true);
    const table = ["| Kind | Bad input | Error | Model unchanged |", "| --- | --- | --- | --- |"];
    for (const row of rows) {
      const [kind, input, error] = row.split(" | ").map((c) => c.replace(/^\| /, ""));
      table.push(`| ${kind} | ${input} | ${error} | yes |`);
    }
    const expected = `${readme.slice(0, a + start.length)}\n${table.join("\n")}\n${readme.slice(b)}`;
    if (process.env.EDGEGRAD_UPDATE_DOCS === "1") writeFileSync(README, expected);
    expect(readFileSync(README, "utf8")).toBe(expected);
  });
});
