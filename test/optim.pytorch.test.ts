// edgegrad's optimizers, gradient clipping, parameter groups and learning-rate schedules against
// PyTorch: the same MLP, float32 weights and batches, then 20 steps of every optimizer variant ×
// {no weight decay, L2 / decoupled} × {clipping off, clip_grad_norm_}, plus clip-by-value and
// parameter-group cases, must leave the same parameters; the schedules must give torch's rates.
// Fixture: test/fixtures/optim.json, written by test/fixtures/gen_optim.py
// (regenerate with `/usr/bin/python3 test/fixtures/gen_optim.py`).
import { beforeAll, describe, expect, it } from "vitest";
import {
  adagrad,
  adam,
  adamw,
  batchNorm,
  dense,
  init,
  rmsprop,
  sgd,
  type CompileOptions,
  type Edgegrad,
  type OptimizerSpec,
  type ParamGroup,
  type Sequential,
} from "../ts/node.js";
import { cosineAnnealingLR, exponentialLR, reduceLROnPlateau, stepLR, type Schedule } from "../ts/schedules.js";
import { loadOptimFixture, type FixtureGroup, type OptimCase, type ScheduleCase } from "./fixtures/optim.js";
import { compareArrays, compareLayers, expectNoMismatches, fixtureWeights } from "./helpers.js";

const fixture = loadOptimFixture();

// Tolerance of the parameters after 20 steps: |edgegrad − torch| <= max(RTOL·|torch|, ATOL).
// Both sides evaluate the same float32 formulas; they differ only in summation order (GEMM,
// the global gradient norm) and in how the optimizer's scalar factors are rounded (torch forms
// lr/(1−β1ᵗ) and √(1−β2ᵗ) in f64 and rounds once; f32 arithmetic rounds at each operation), so
// every step perturbs a parameter by a few f32 ulps of the update, ~1e-7 relative. Over 20 steps
// that compounds to ~1e-6 relative, hence RTOL 1e-5. A parameter that is itself near zero (a
// bias that weight decay and the gradient push through 0, for instance) carries the absolute
// rounding of the values that were summed into it, ~20 steps × lr × 1e-7 ≈ 1e-7, so an absolute
// floor ATOL = 1e-6 — ~8 f32 ulps at 1.0, still 100× below what a formula error moves (a wrong
// bias correction, dampening applied on the first step or weight decay applied after the
// momentum change parameters by >= 1e-4 here). Measured on the kernels as written: the largest
// difference is 21% of the bound (rmsprop centered; 2.7e-7 absolute); lr off by 1e-4 relative
// fails all 61 cases, weight decay off by 1% fails every case that has weight decay.
const RTOL = 1e-5;
const ATOL = 1e-6;
// Step losses and gradient norms are computed before each update, so they carry the parameters'
// differences plus one more f32 reduction: same bounds.

// Schedules: torch's chainable forms multiply the previous rate by a ratio each epoch, edgegrad
// evaluates the closed form; both in f64, they differ by ~1e-16 relative per epoch (measured:
// worst 4.6e-15, cosine after 45 epochs = two periods; ReduceLROnPlateau is exact), so 1e-12
// relative. A rate of exactly 0 (cosine at etaMin = 0) gets the absolute floor 1e-15·baseLr.
const SCHEDULE_RTOL = 1e-12;

const compare = (label: string, expected: ArrayLike<number>, actual: ArrayLike<number>, rtol = RTOL, atol = ATOL) =>
  compareArrays(label, expected, actual, rtol, atol);

const FACTORIES: Record<OptimCase["factory"], (o: never) => OptimizerSpec> = { sgd, adam, adamw, rmsprop, adagrad };

/** The fixture's declarative groups as edgegrad paramGroups with typed filters. */
function paramGroups(groups: FixtureGroup[] | undefined): ParamGroup[] | undefined {
  return groups?.map((g) => ({
    filter: (p) => (g.roles === undefined || g.roles.includes(p.role)) && (g.layers === undefined || g.layers.includes(p.layer)),
    ...(g.lr === undefined ? {} : { lr: g.lr }),
    ...(g.weightDecay === undefined ? {} : { weightDecay: g.weightDecay }),
  }));
}

describe(`optimizers vs torch.optim (PyTorch ${fixture.torchVersion})`, () => {
  let eg: Edgegrad;
  beforeAll(async () => {
    eg = await init(process.env.EDGEGRAD_WASM);
  });

  const xs = fixture.batches.map((b) => Float32Array.from(b));
  const ys = fixture.targets.map((t) => Int32Array.from(t));
  const maxBatch = Math.max(...ys.map((y) => y.length));

  function build(c: OptimCase): Sequential {
    const { inputs, hidden, classes } = fixture.model;
    const layers = c.batchNorm
      ? [dense(hidden), batchNorm({ activation: "tanh" }), dense(classes)]
      : [dense(hidden, { activation: "tanh" }), dense(classes)];
    const model = eg.sequential({ inputs, seed: 1 }, layers);
    const opts: CompileOptions = {
      loss: "softmaxCrossEntropy",
      optimizer: FACTORIES[c.factory](c.options as never),
      maxBatch,
    };
    if (c.clipNorm !== undefined) opts.clipNorm = c.clipNorm;
    if (c.clipValue !== undefined) opts.clipValue = c.clipValue;
    const groups = paramGroups(c.paramGroups);
    if (groups) opts.paramGroups = groups;
    model.compile(opts);
    model.setWeights(fixtureWeights(c.batchNorm ? fixture.initialWeights.batchNorm : fixture.initialWeights.dense));
    return model;
  }

  it("covers every optimizer × {no decay, decay} × {clipping off, on}, value clipping and parameter groups", () => {
    const names = new Set(fixture.cases.map((c) => c.name));
    for (const base of [
      "sgd", "sgd momentum", "sgd momentum dampening", "sgd nesterov", "adam", "adam amsgrad", "rmsprop",
      "rmsprop momentum", "rmsprop centered", "adagrad", "adagrad lr_decay",
    ]) {
      for (const suffix of ["", " L2", " clipNorm", " L2 clipNorm"]) expect(names).toContain(base + suffix);
    }
    for (const base of ["adamw", "adamw amsgrad"]) {
      for (const suffix of ["", " decoupled", " clipNorm", " decoupled clipNorm"]) expect(names).toContain(base + suffix);
    }
    expect(fixture.cases.some((c) => c.clipValue !== undefined)).toBe(true);
    expect(fixture.cases.filter((c) => c.paramGroups !== undefined).length).toBeGreaterThanOrEqual(3);
    // clipping really clipped in some steps and not in others
    const clipped = fixture.cases.filter((c) => c.clipNorm !== undefined && c.clipValue === undefined);
    for (const c of clipped) {
      expect(c.clipScales.some((s) => s < 1), c.name).toBe(true);
      expect(c.clipScales.some((s) => s === 1), c.name).toBe(true);
    }
  });

  for (const c of fixture.cases) {
    it(`${c.name}: loss, gradient norm, clip scale and parameters after ${fixture.steps} steps`, () => {
      using model = build(c);
      const losses: number[] = [];
      const gradNorms: number[] = [];
      const clipScales: number[] = [];
      for (let k = 0; k < fixture.steps; k++) {
        const b = k % xs.length;
        losses.push(model.trainStep(xs[b]!, ys[b]!));
        const stats = model.lastStepStats()!;
        expect(stats.loss).toBe(losses[k]);
        gradNorms.push(stats.gradNorm);
        clipScales.push(stats.clipScale);
      }
      expectNoMismatches([
        ...compare("step loss", c.stepLosses, losses),
        ...compare("gradient norm before clipping", c.gradNorms, gradNorms),
        ...compare("clip scale", c.clipScales, clipScales),
        ...compareLayers(`weights after ${fixture.steps} steps`, c.finalWeights, model.getWeights(), RTOL, ATOL),
      ]);
      expect(model.step).toBe(fixture.steps);
    });
  }

  it("compile resets the optimizer state: a second compile replays the same trajectory bit for bit", () => {
    const c = fixture.cases.find((k) => k.name === "adam amsgrad L2 clipNorm")!;
    using model = build(c);
    const run = () => {
      for (let k = 0; k < 5; k++) model.trainStep(xs[k % xs.length]!, ys[k % ys.length]!);
      return model.getWeights();
    };
    const first = run();
    model.compile({ loss: "softmaxCrossEntropy", optimizer: adam({ lr: 0.01, amsgrad: true, weightDecay: 0.05 }), maxBatch, clipNorm: c.clipNorm! });
    model.setWeights(fixtureWeights(fixture.initialWeights.dense));
    expect(model.step).toBe(0);
    expect(model.lastStepStats()).toBeNull();
    expect(run()).toEqual(first);
  });
});

function makeSchedule(s: ScheduleCase): Schedule {
  const o = s.options as never;
  switch (s.kind) {
    case "stepLR":
      return stepLR(o);
    case "exponentialLR":
      return exponentialLR(o);
    case "cosineAnnealingLR":
      return cosineAnnealingLR(o);
    case "reduceLROnPlateau":
      return reduceLROnPlateau(o);
  }
}

describe("schedules vs torch.optim.lr_scheduler", () => {
  it("covers StepLR, ExponentialLR, CosineAnnealingLR (past T_max), warm-up and ReduceLROnPlateau (min and max)", () => {
    const kinds = new Set(fixture.schedules.map((s) => s.kind));
    expect([...kinds].sort()).toEqual(["cosineAnnealingLR", "exponentialLR", "reduceLROnPlateau", "stepLR"]);
    expect(fixture.schedules.some((s) => (s.options["warmupEpochs"] as number) > 0)).toBe(true);
    // the plateau sequences make the rate drop more than once, and reach minLr
    const plateau = fixture.schedules.filter((s) => s.kind === "reduceLROnPlateau");
    for (const s of plateau) expect(new Set(s.lrs).size).toBeGreaterThan(2);
    expect(plateau[0]!.lrs.at(-1)).toBe(plateau[0]!.options["minLr"]);
  });

  for (const s of fixture.schedules) {
    it(`${s.name}: every epoch's rate`, () => {
      const schedule = makeSchedule(s);
      expect(schedule.started).toBe(false);
      const got = [schedule.start(s.baseLr)];
      for (let e = 0; e + 1 < s.lrs.length; e++) {
        got.push(schedule.step(s.metrics?.[e]));
        expect(schedule.epoch).toBe(e + 1);
        expect(schedule.lr).toBe(got[e + 1]);
      }
      expectNoMismatches(compare("lr", s.lrs, got, SCHEDULE_RTOL, 1e-15 * s.baseLr));
      // The closed forms answer for any epoch without stepping.
      if ("lrAt" in schedule && typeof schedule.lrAt === "function") {
        const lrAt = schedule.lrAt as (epoch: number, base: number) => number;
        expect(s.lrs.map((_, e) => lrAt.call(schedule, e, s.baseLr))).toEqual(got);
      }
      // start() restarts from scratch.
      expect(schedule.start(s.baseLr)).toBe(got[0]);
      expect(schedule.epoch).toBe(0);
      if (s.metrics) expect(schedule.step(s.metrics[0])).toBe(got[1]);
    });
  }
});
