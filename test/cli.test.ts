// The command-line trainer (ts/cli): trains on a CSV and on IDX files written here, reaches the
// accuracy a small MLP should, saves a model that eval/predict reload, stops cleanly on Ctrl-C
// (in-process through the AbortSignal, and as a real process with SIGINT), and prints a clear
// message for each kind of bad input.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main, type Io, type ModelFile } from "../ts/cli/main.js";
import { rng, WASM } from "./helpers.js";

const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));

/** Captured output of one in-process run. */
interface Run {
  code: number;
  out: string;
  err: string;
}

let dir: string;

async function run(argv: string[], opts: { tty?: boolean; signal?: AbortSignal; onErr?: (s: string) => void } = {}): Promise<Run> {
  let out = "";
  let err = "";
  const io: Io = {
    stdout: { write: (s: string) => (out += s) },
    stderr: {
      write: (s: string) => {
        err += s;
        opts.onErr?.(s);
      },
      isTTY: opts.tty ?? false,
      columns: 160,
    },
    cwd: dir,
    wasm: WASM,
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  const code = await main(argv, io);
  return { code, out, err };
}

/** Three concentric rings (labels 1, 3, 5: not 0-based on purpose) in x1/x2, one noise column, features on very different scales. */
function ringsCsv(rows: number, seed: number): string {
  const r = rng(seed);
  const lines = ["x1,noise,x2,label"];
  for (let i = 0; i < rows; i++) {
    const c = i % 3;
    const rad = 1 + c + (r() - 0.5) * 0.5;
    const a = r() * 2 * Math.PI;
    lines.push([(rad * Math.cos(a) * 100 + 500).toFixed(3), (r() * 10).toFixed(3), (rad * Math.sin(a)).toFixed(4), 2 * c + 1].join(","));
  }
  return `${lines.join("\n")}\n`;
}

/** An IDX file: magic (0, 0, type 0x08 ubyte, dims), big-endian sizes, then the bytes. */
function idx(dims: number[], data: Uint8Array): Uint8Array {
  const head = new DataView(new ArrayBuffer(4 + 4 * dims.length));
  head.setUint8(2, 0x08);
  head.setUint8(3, dims.length);
  dims.forEach((d, i) => head.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(head.byteLength + data.length);
  out.set(new Uint8Array(head.buffer));
  out.set(data, head.byteLength);
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "edgegrad-cli-"));
  await writeFile(join(dir, "rings.csv"), ringsCsv(900, 7));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("edgegrad train on a CSV", () => {
  let trained: Run;
  beforeAll(async () => {
    trained = await run(["train", "rings.csv", "--target", "label", "--layers", "32,16", "--optimizer", "adamw", "--lr", "0.01", "--epochs", "40", "--out", "rings", "--seed", "3"]);
  });

  it("reaches >= 95 % validation accuracy and writes the model and the report", async () => {
    expect(trained.code, trained.err).toBe(0);
    expect(trained.err).toMatch(/rings\.csv: 900 rows, 3 features, 3 classes; 720 train \/ 180 validation/);
    expect(trained.err.match(/^epoch \d+\/40 /gm)).toHaveLength(40); // one plain line per epoch off a TTY
    expect(trained.err).not.toContain("\r");
    const m = JSON.parse(await readFile(join(dir, "rings", "model.json"), "utf8")) as ModelFile;
    expect(m.format).toBe("edgegrad-cli-model");
    expect(m.features).toEqual(["x1", "noise", "x2"]);
    expect(m.classes).toEqual([1, 3, 5]);
    expect(m.standardization.mean[0]).toBeGreaterThan(400); // statistics of the raw training split
    expect(m.checkpoint).toBe("model.edgegrad");
    expect(m.training["bestEpoch"]).toBeGreaterThan(20);
    const best = /best epoch (\d+): val_acc ([\d.]+)/.exec(trained.out);
    expect(best).not.toBeNull();
    expect(Number(best![2])).toBeGreaterThanOrEqual(0.95);
    const html = await readFile(join(dir, "rings", "report.html"), "utf8");
    expect(html).toContain("<svg");
    expect(html).toContain("Gradient L2 norm per layer");
  });

  it("eval reloads the checkpoint (by model file or run directory) and agrees with training", async () => {
    const r = await run(["eval", "rings/model.json", "rings.csv"]);
    expect(r.code, r.err).toBe(0);
    const m = /rows 900 {2}loss ([\d.]+) {2}accuracy ([\d.]+)/.exec(r.out);
    expect(m, r.out).not.toBeNull();
    expect(Number(m![2])).toBeGreaterThanOrEqual(0.95);
    expect((await run(["eval", "rings", "rings.csv"])).out).toBe(r.out);
  });

  it("eval names a damaged checkpoint", async () => {
    await mkdir(join(dir, "broken"), { recursive: true });
    await writeFile(join(dir, "broken", "model.json"), await readFile(join(dir, "rings", "model.json")));
    const bytes = await readFile(join(dir, "rings", "model.edgegrad"));
    bytes[bytes.length - 10]! ^= 0xff;
    await writeFile(join(dir, "broken", "model.edgegrad"), bytes);
    const r = await run(["eval", "broken", "rings.csv"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^edgegrad: error: broken\/model\.edgegrad: .*checksum/);
  });

  it("predict prints the original labels and class probabilities, with or without the label column", async () => {
    await writeFile(join(dir, "unlabelled.csv"), "x2,x1,noise\n0,500,3\n0,800,3\n");
    const r = await run(["predict", "rings/model.json", "unlabelled.csv"]);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split("\n");
    expect(lines[0]).toBe("prediction,p_1,p_3,p_5");
    expect(lines[1]!.split(",")[0]).toBe("1"); // the centre: innermost ring
    expect(lines[2]!.split(",")[0]).toBe("5"); // radius 3: outermost ring
    const p = lines[1]!.split(",").slice(1).map(Number);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const toFile = await run(["predict", "rings/model.json", "rings.csv", "--out", "pred.csv"]);
    expect(toFile.code).toBe(0);
    expect((await readFile(join(dir, "pred.csv"), "utf8")).trim().split("\n")).toHaveLength(901);
  });

  it("is reproducible for a seed", async () => {
    const again = await run(["train", "rings.csv", "--target", "label", "--layers", "32,16", "--optimizer", "adamw", "--lr", "0.01", "--epochs", "40", "--out", "rings2", "--seed", "3"]);
    const a = await readFile(join(dir, "rings", "model.edgegrad"));
    const b = await readFile(join(dir, "rings2", "model.edgegrad"));
    expect(b.equals(a)).toBe(true);
    expect(again.out.split("\n")[0]).toBe(trained.out.split("\n")[0]);
  });
});

describe("progress, early stopping and Ctrl-C", () => {
  it("draws a live line with loss, accuracy, samples/s and ETA on a TTY", async () => {
    const r = await run(["train", "rings.csv", "--target", "label", "--epochs", "3", "--batch-size", "8", "--out", "tty"], { tty: true });
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain("\r\x1b[2Kepoch 1/3 [");
    expect(r.err).toMatch(/ 1\/90  loss \d\.\d{4}  acc \d\.\d{3}  [\d,]+ samples\/s  ETA \d+:\d\d/);
  });

  it("--patience stops when validation loss stops improving and keeps the best epoch", async () => {
    const r = await run(["train", "rings.csv", "--target", "label", "--lr", "0.05", "--epochs", "200", "--patience", "3", "--out", "es"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/Early stopping: validation loss did not improve for 3 epoch\(s\) after epoch (\d+)/);
    const m = JSON.parse(await readFile(join(dir, "es", "model.json"), "utf8")) as ModelFile;
    expect(m.training["epochsRun"]).toBe((m.training["bestEpoch"] as number) + 1 + 3);
  });

  it("an abort (Ctrl-C) stops after the current batch, saves the best epoch and exits 130", async () => {
    const ac = new AbortController();
    const r = await run(["train", "rings.csv", "--target", "label", "--epochs", "50", "--out", "int"], {
      signal: ac.signal,
      onErr: (s) => {
        if (s.startsWith("epoch 2/50")) ac.abort();
      },
    });
    expect(r.code).toBe(130);
    expect(r.err).toMatch(/Interrupted \(Ctrl-C\) at step \d+, after 2 complete epoch\(s\); saved the best epoch \([12]\)/);
    const m = JSON.parse(await readFile(join(dir, "int", "model.json"), "utf8")) as ModelFile;
    expect(m.training["interrupted"]).toBe(true);
    expect(m.training["epochsRun"]).toBe(2);
    expect(await readFile(join(dir, "int", "report.html"), "utf8")).toContain("Interrupted (Ctrl-C)");
  });

  it.skipIf(!existsSync(CLI))("dist/cli.js stops on a real SIGINT and still writes its files", async () => {
    await writeFile(join(dir, "big.csv"), ringsCsv(20000, 9));
    const child = spawn(process.execPath, [CLI, "train", "big.csv", "--target", "label", "--epochs", "1000", "--out", "sig"], { cwd: dir });
    let err = "";
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const code = await new Promise<number | null>((done) => {
      child.stderr.on("data", (d) => {
        err += d;
        if (err.includes("epoch 1/1000") && !child.killed) child.kill("SIGINT");
      });
      child.on("close", (c) => done(c));
    });
    expect(code, err).toBe(130);
    expect(err).toContain("stopping after the current batch");
    expect(out).toContain("model:");
    expect(existsSync(join(dir, "sig", "model.json"))).toBe(true);
    expect(existsSync(join(dir, "sig", "report.html"))).toBe(true);
  });
});

describe("IDX (MNIST-style) files", () => {
  it("trains on an images/labels pair and evaluates it", async () => {
    // 6x6 images: class 0 lights the left half, class 1 the right half, plus noise.
    const n = 400;
    const r = rng(11);
    const px = new Uint8Array(n * 36);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % 2;
      for (let p = 0; p < 36; p++) {
        const left = p % 6 < 3;
        px[i * 36 + p] = Math.floor(r() * 80) + ((left ? labels[i] === 0 : labels[i] === 1) ? 150 : 0);
      }
    }
    await writeFile(join(dir, "img.idx"), idx([n, 6, 6], px));
    await writeFile(join(dir, "lab.idx"), idx([n], labels));
    const t = await run(["train", "img.idx", "lab.idx", "--layers", "16", "--epochs", "5", "--out", "idx"]);
    expect(t.code, t.err).toBe(0);
    expect(t.err).toContain("400 rows, 36 features, 2 classes");
    const e = await run(["eval", "idx/model.json", "img.idx", "lab.idx"]);
    expect(e.code, e.err).toBe(0);
    expect(Number(/accuracy ([\d.]+)/.exec(e.out)![1])).toBeGreaterThan(0.97);
    const p = await run(["predict", "idx/model.json", "img.idx"]);
    expect(p.out.trim().split("\n")).toHaveLength(n + 1);
  });

  it("names a labels file that does not match its images", async () => {
    await writeFile(join(dir, "lab3.idx"), idx([3], new Uint8Array(3)));
    const r = await run(["train", "img.idx", "lab3.idx"]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("edgegrad: error: lab3.idx has 3 labels but img.idx has 400 images\n");
  });
});

describe("error messages", () => {
  const cases: [string, string, string[], number, string][] = [
    ["missing file", "", ["train", "nope.csv", "--target", "label"], 1, "edgegrad: error: cannot read nope.csv: no such file\n"],
    [
      "unknown column",
      "a,b,label\n1,2,0\n",
      ["train", "DATA", "--target", "labl"],
      1,
      'edgegrad: error: target column "labl" not found in DATA; its columns are: a, b, label\n',
    ],
    [
      "non-numeric cell, with line and column",
      "a,b,label\n1,2,0\n3,4,1\n5,abc,0\n",
      ["train", "DATA", "--target", "label"],
      1,
      'edgegrad: error: DATA:4: column "b" (column 2): "abc" is not a number\n',
    ],
    ["empty cell", "a,b,label\n1,,0\n", ["train", "DATA", "--target", "label"], 1, 'edgegrad: error: DATA:2: column "b" (column 2): an empty cell is not a number\n'],
    ["empty dataset", "a,b,label\n\n", ["train", "DATA", "--target", "label"], 1, "edgegrad: error: DATA has a header row but no data rows: the dataset is empty\n"],
    ["empty file", "", ["train", "DATA", "--target", "label"], 1, "edgegrad: error: DATA is empty: expected a header row and data rows\n"],
    ["ragged row", "a,b,label\n1,2\n", ["train", "DATA", "--target", "label"], 1, "edgegrad: error: DATA:2: expected 3 cells (as in the header row), got 2\n"],
    ["one class", "a,label\n1,4\n2,4\n", ["train", "DATA", "--target", "label"], 1, "edgegrad: error: DATA: the target has only one value (4); a classifier needs at least two classes\n"],
    ["no --target", "a,label\n1,0\n", ["train", "DATA"], 2, "edgegrad: error: --target is required for a CSV file; its columns are: a, label\n"],
    ["unknown option", "", ["train", "x.csv", "--epoch", "3"], 2, 'edgegrad: error: unknown option --epoch for "edgegrad train" (see edgegrad --help)\n'],
    ["bad number", "", ["train", "x.csv", "--epochs", "ten"], 2, 'edgegrad: error: option --epochs: expected an integer, got "ten"\n'],
    ["bad layers", "", ["train", "x.csv", "--layers", "64,x"], 2, 'edgegrad: error: --layers: expected comma-separated widths such as 64,32, got "64,x"\n'],
    [
      "bad optimizer",
      "",
      ["train", "x.csv", "--optimizer", "adamx"],
      2,
      'edgegrad: error: --optimizer: unknown optimizer "adamx"; expected sgd, momentum, nesterov, adam, adamw, rmsprop or adagrad\n',
    ],
    [
      "--patience without validation",
      "a,label\n1,0\n2,1\n",
      ["train", "DATA", "--target", "label", "--validation-split", "0", "--patience", "2"],
      2,
      "edgegrad: error: --patience watches the validation loss: use a --validation-split above 0\n",
    ],
    ["unknown command", "", ["fit"], 2, 'edgegrad: error: unknown command "fit"; expected train, eval or predict (see edgegrad --help)\n'],
    [
      "not a model file",
      "a,label\n1,0\n",
      ["eval", "DATA", "DATA"],
      1,
      "edgegrad: error: DATA is not a model file written by edgegrad train (invalid JSON: Unexpected token 'a', \"a,label\n1,0\n\" is not valid JSON)\n",
    ],
  ];
  it.each(cases)("%s", async (_name, csv, argv, code, message) => {
    const file = `case-${Math.random().toString(36).slice(2)}.csv`;
    if (argv.includes("DATA")) await writeFile(join(dir, file), csv);
    const r = await run(argv.map((a) => (a === "DATA" ? file : a)));
    expect(r.code).toBe(code);
    expect(r.err).toBe(message.replaceAll("DATA", file));
    expect(r.out).toBe("");
  });

  it("eval names a label the model was not trained on", async () => {
    await writeFile(join(dir, "newlabel.csv"), "x1,noise,x2,label\n500,1,0,7\n");
    const r = await run(["eval", "rings/model.json", "newlabel.csv"]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("edgegrad: error: newlabel.csv: row 1 has label 7, which the model was not trained on (classes: 1, 3, 5)\n");
  });

  it("--help prints the usage", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("edgegrad train DATA.csv --target COLUMN");
  });
});
