// Checkpoints end to end (issue 6): kill-and-resume in a fresh wasm instance is bit-identical
// (Adam + batchNorm + dropout + shuffled fit + a schedule), refused checkpoints (truncated,
// bit-flipped, wrong version, other architecture, wrong schedule) throw CheckpointError and
// change nothing, saveCheckpoint writes atomically, and a seeded fuzz of `load` only ever gives
// a typed error or a valid model. `model.save()` itself is the "nothing changed" probe: it
// covers parameters, running statistics, optimizer state, step, lr, RNG and shuffle state.
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  adam,
  batchNorm,
  CheckpointError,
  dense,
  dropout,
  EdgegradError,
  init,
  loadCheckpoint,
  saveCheckpoint,
  sgd,
  type Edgegrad,
  type Sequential,
} from "../ts/node.js";
import { stepLR } from "../ts/schedules.js";
import { rng, WASM } from "./helpers.js";


let eg: Edgegrad;
beforeAll(async () => {
  eg = await init(WASM);
});

const N = 50;
const r = rng(11);
const X = Float32Array.from({ length: N * 6 }, () => r() * 2 - 1);
const Y = Int32Array.from({ length: N }, (_, i) => (X[i * 6]! + X[i * 6 + 1]! > 0 ? 1 : 0) + (X[i * 6 + 2]! > 0.5 ? 1 : 0));

function net(e: Edgegrad, seed = 3): Sequential {
  const m = e.sequential({ inputs: 6, seed }, [dense(16, { activation: "relu" }), batchNorm({ activation: "tanh" }), dropout(0.3), dense(3)]);
  m.compile({ loss: "softmaxCrossEntropy", optimizer: adam({ lr: 0.01, weightDecay: 1e-3 }), maxBatch: 16, clipNorm: 5 });
  return m;
}

const bits = (m: Sequential): string => Buffer.from(m.save()).toString("hex");
const weightBits = (m: Sequential): number[] =>
  m.getWeights().flatMap((w) => (w.kind === "dense" ? [...new Uint32Array(w.kernel.buffer), ...new Uint32Array(w.bias.buffer)] : w.kind === "batchNorm" ? [...new Uint32Array(w.gamma.buffer), ...new Uint32Array(w.beta.buffer)] : []));

describe("kill and resume", () => {
  it("continues bit-identically in a fresh wasm instance (Adam, batchNorm, dropout, shuffled fit, stepLR)", async () => {
    const sched = stepLR({ stepSize: 2, gamma: 0.5 });
    const a = net(eg);
    await a.fit(X, Y, { epochs: 3, batchSize: 8, schedule: sched });
    const saved = a.save({ schedule: sched });
    await a.fit(X, Y, { epochs: 4, batchSize: 8, schedule: sched });
    const w1 = weightBits(a);
    const end1 = a.save({ schedule: sched });

    const eg2 = await init(WASM); // a second, independent instance: nothing shared but the bytes
    const sched2 = stepLR({ stepSize: 2, gamma: 0.5 });
    const b = eg2.load(saved, { schedule: sched2 });
    expect(sched2.epoch).toBe(3);
    expect(b.step).toBe(3 * Math.ceil(N / 8));
    expect(b.lr).toBe(sched.lrAt(3, 0.01));
    await b.fit(X, Y, { epochs: 4, batchSize: 8, schedule: sched2 });
    expect(weightBits(b)).toEqual(w1);
    expect(Buffer.from(b.save({ schedule: sched2 })).equals(Buffer.from(end1))).toBe(true);
    expect(b.getBuffers()).toEqual(a.getBuffers());
    expect(b.getOptimizerState()).toEqual(a.getOptimizerState());
    a.dispose();
    b.dispose();
  });

  it("also after trainStep, and into an existing model of the same architecture", () => {
    const a = net(eg);
    for (let k = 0; k < 5; k++) a.trainStep(X.subarray(0, 16 * 6), Y.subarray(0, 16));
    const saved = a.save();
    const other = net(eg, 99);
    other.compile({ loss: "softmaxCrossEntropy", optimizer: sgd({ lr: 0.1 }), maxBatch: 4 });
    other.load(saved);
    expect(other.maxBatch).toBe(16);
    expect(other.getOptimizerState().state.map((s) => s.name)).toEqual(["exp_avg", "exp_avg_sq"]);
    for (let k = 0; k < 3; k++) {
      a.trainStep(X.subarray(16 * 6, 32 * 6), Y.subarray(16, 32));
      other.trainStep(X.subarray(16 * 6, 32 * 6), Y.subarray(16, 32));
    }
    expect(bits(other)).toBe(bits(a));
    expect(other.lastStepStats()).toEqual(a.lastStepStats());
    a.dispose();
    other.dispose();
  });

  it("round-trips an uncompiled model", () => {
    const a = eg.sequential({ inputs: 3, seed: 1 }, [dense(2, { activation: "sigmoid" })]);
    const b = eg.load(a.save());
    expect(b.compiled).toBe(false);
    expect(b.getWeights()).toEqual(a.getWeights());
    a.dispose();
    b.dispose();
  });
});

describe("refused checkpoints change nothing", () => {
  const cases: [string, (good: Uint8Array) => Uint8Array, string][] = [
    ["truncated", (g) => g.slice(0, g.length - 7), "truncated"],
    ["header only", (g) => g.slice(0, 32), "truncated"],
    ["bit flip in the payload", (g) => flip(g, 100), "checksum"],
    ["bit flip in the extra JSON", (g) => flip(g, g.length - 3), "checksum"],
    ["wrong version", (g) => set32(g, 8, 2), "version"],
    ["bad magic", (g) => flip(g, 0), "magic"],
    ["empty", () => new Uint8Array(0), "magic"],
    ["trailing garbage", (g) => Uint8Array.from([...g, 0]), "malformed"],
  ];
  for (const [name, corrupt, problem] of cases) {
    it(name, () => {
      const m = net(eg);
      m.trainStep(X.subarray(0, 16 * 6), Y.subarray(0, 16));
      const before = bits(m);
      const e = (() => {
        try {
          m.load(corrupt(m.save()));
        } catch (err) {
          return err;
        }
        return null;
      })();
      expect(e).toBeInstanceOf(CheckpointError);
      expect((e as CheckpointError).problem).toBe(problem);
      expect(bits(m)).toBe(before);
      expect(() => eg.load(corrupt(m.save()))).toThrow(CheckpointError);
      m.dispose();
    });
  }

  it("another architecture", () => {
    const m = net(eg);
    const small = eg.sequential({ inputs: 6, seed: 1 }, [dense(3)]);
    const before = bits(m);
    const e = (() => {
      try {
        m.load(small.save());
      } catch (err) {
        return err as CheckpointError;
      }
      return null;
    })();
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e!.problem).toBe("architecture");
    expect(e!.message).toMatch(/architecture: the model has 4 layers, the checkpoint 1/);
    expect(bits(m)).toBe(before);
    m.dispose();
    small.dispose();
  });

  it("a schedule of another kind or configuration", () => {
    const s1 = stepLR({ stepSize: 2 });
    const m = net(eg);
    s1.start(0.01);
    const saved = m.save({ schedule: s1 });
    const before = bits(m);
    const s2 = stepLR({ stepSize: 3 });
    expect(() => m.load(saved, { schedule: s2 })).toThrow(/schedule/);
    expect(s2.started).toBe(false);
    expect(bits(m)).toBe(before);
    m.dispose();
  });

  it("not bytes", () => {
    const m = net(eg);
    expect(() => m.load([1, 2, 3] as unknown as Uint8Array)).toThrow(/expected the Uint8Array from save\(\)/);
    m.dispose();
  });
});

function flip(b: Uint8Array, i: number): Uint8Array {
  const c = b.slice();
  c[i]! ^= 0x04;
  return c;
}
function set32(b: Uint8Array, at: number, v: number): Uint8Array {
  const c = b.slice();
  new DataView(c.buffer).setUint32(at, v, true);
  return c;
}

describe("saveCheckpoint (Node)", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "edgegrad-ckpt-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes atomically, replaces the previous file and leaves no temp files", async () => {
    const m = net(eg);
    const path = join(dir, "model.egckpt");
    await writeFile(path, "previous");
    const n = await saveCheckpoint(path, m);
    const onDisk = await readFile(path);
    expect(onDisk.length).toBe(n);
    expect(Buffer.from(m.save()).equals(onDisk)).toBe(true);
    expect(await readdir(dir)).toEqual(["model.egckpt"]);
    const back = await loadCheckpoint(eg, path);
    expect(bits(back)).toBe(bits(m));
    back.dispose();
    m.dispose();
  });

  it("a failed save leaves the previous checkpoint intact", async () => {
    const m = net(eg);
    const path = join(dir, "keep.egckpt");
    await saveCheckpoint(path, m);
    const before = await readFile(path);
    m.dispose();
    await expect(saveCheckpoint(path, m)).rejects.toThrow(/after dispose/);
    expect((await readFile(path)).equals(before)).toBe(true);
  });
});

describe("fuzz load (seeded, bounded)", () => {
  it("random bytes and mutated checkpoints: a typed error or a valid model, never a trap", () => {
    const m = net(eg);
    m.trainStep(X.subarray(0, 16 * 6), Y.subarray(0, 16));
    const good = m.save();
    const rand = rng(0xf022);
    const start = Date.now();
    const baseline = eg.memory().liveHandles;
    let cases = 0;
    let accepted = 0;
    for (; cases < 3000 && Date.now() - start < 20_000; cases++) {
      let b: Uint8Array;
      const k = cases % 3;
      if (k === 0) {
        b = Uint8Array.from({ length: Math.floor(rand() * 120) }, () => (rand() * 256) | 0);
      } else {
        b = good.slice();
        for (let e = 0; e < 1 + Math.floor(rand() * 4); e++) b[Math.floor(rand() * b.length)] = (rand() * 256) | 0;
        if (k === 2) b = b.slice(0, Math.floor(rand() * b.length));
      }
      try {
        const loaded = eg.load(b);
        accepted++;
        expect(loaded.getWeights().length).toBe(4);
        loaded.dispose();
      } catch (e) {
        expect(e).toBeInstanceOf(EdgegradError);
      }
    }
    expect(cases).toBeGreaterThanOrEqual(1000);
    expect(eg.memory().liveHandles).toBe(baseline);
    // The model still trains afterwards: the instance was never poisoned.
    m.trainStep(X.subarray(0, 16 * 6), Y.subarray(0, 16));
    expect(accepted).toBeLessThan(cases);
    m.dispose();
  });
});

describe("schedule state", () => {
  it("reduceLROnPlateau's best, bad-epoch count and cooldown survive a checkpoint", async () => {
    const { reduceLROnPlateau } = await import("../ts/schedules.js");
    const s1 = reduceLROnPlateau({ patience: 1, cooldown: 1, factor: 0.5 });
    const a = net(eg);
    await a.fit(X, Y, { epochs: 4, batchSize: 10, schedule: s1 });
    const saved = a.save({ schedule: s1 });
    const s2 = reduceLROnPlateau({ patience: 1, cooldown: 1, factor: 0.5 });
    const b = eg.load(saved, { schedule: s2 });
    expect([s2.epoch, s2.lr, s2.best, s2.badEpochs]).toEqual([s1.epoch, s1.lr, s1.best, s1.badEpochs]);
    for (const m of [0.9, 0.95, 0.97, 0.99]) expect(s2.step(m)).toBe(s1.step(m));
    a.dispose();
    b.dispose();
  });
});
