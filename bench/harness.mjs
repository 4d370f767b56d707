// Sampling, criterion-style: a timed warm-up that also estimates one iteration's cost, an
// iteration count per sample sized so each sample lasts about `sampleMs`, then tinybench takes
// the samples (one tinybench call = one sample of `iters` iterations, reported back to it as the
// per-iteration time). The statistics live in stats.mjs.

import { Bench } from "tinybench";
import { summarize } from "./stats.mjs";

/**
 * How long to measure. `samples` is the goal; a benchmark whose iterations are so slow that
 * `samples` of them would exceed `capMs` takes fewer (never below `minSamples`, and the report
 * says so), and one where even `minSamples` iterations would exceed `skipMs` is skipped with that
 * reason rather than blowing the run's time budget.
 */
export const BUDGETS = {
  full: { samples: 50, sampleMs: 25, warmupMs: 300, capMs: 8000, minSamples: 10, skipMs: 30000 },
  quick: { samples: 50, sampleMs: 3, warmupMs: 60, capMs: 1000, minSamples: 10, skipMs: 3000 },
  // Cold starts: one iteration is one fresh child process.
  coldFull: { samples: 50, sampleMs: 0, warmupMs: 0, capMs: 20000, minSamples: 10, skipMs: 60000 },
  coldQuick: { samples: 10, sampleMs: 0, warmupMs: 0, capMs: 3000, minSamples: 5, skipMs: 10000 },
};

/**
 * Measures the synchronous `fn` and returns per-iteration times in milliseconds with their
 * summary, or `{ skipped }` when it does not fit the budget. With `reportsMs`, `fn` returns the
 * duration to record itself (cold starts: the time a child process measured), and the wall time
 * of the call only counts against the budget.
 * @param {() => unknown} fn
 * @param {typeof BUDGETS.full} budget
 */
export function measure(fn, budget, { reportsMs = false } = {}) {
  // Warm-up: the first call pays for lazy set-up and JIT tiers; keep calling until warmupMs has
  // passed and at least two more calls were made, and take the fastest of those later calls as
  // the estimate of one iteration (interference only ever slows a call down). A benchmark too
  // slow for the budget is given up as soon as that is clear: a first call that slow even
  // allowing for one-off costs, or any warm call that slow.
  const tooSlow = (ms) => ms * budget.minSamples > budget.skipMs;
  const skip = (ms) => ({ skipped: `one iteration takes ${fmtTime(ms)}; ${budget.minSamples} samples would exceed this run's ${budget.skipMs / 1000} s budget per benchmark` });
  const t = performance.now();
  fn();
  const firstCallMs = performance.now() - t;
  if (tooSlow(firstCallMs / 2)) return skip(firstCallMs);
  let calls = 0;
  let fastest = Infinity;
  const w0 = performance.now();
  do {
    const c0 = performance.now();
    fn();
    fastest = Math.min(fastest, performance.now() - c0);
    calls++;
    if (tooSlow(fastest)) return skip(fastest);
  } while ((performance.now() - w0 < budget.warmupMs || calls < 2) && calls < 1e6);
  const perIter = Math.max(fastest, 1e-6);
  const warmupMs = performance.now() - w0 + firstCallMs;

  const iters = Math.max(1, Math.round(budget.sampleMs / perIter));
  const samples = Math.max(budget.minSamples, Math.min(budget.samples, Math.floor(budget.capMs / (perIter * iters))));

  const bench = new Bench({ warmup: false, iterations: samples, time: 0, retainSamples: true, throws: true });
  bench.add("sample", () => {
    let reported = 0;
    const t0 = performance.now();
    if (reportsMs) for (let i = 0; i < iters; i++) reported += fn();
    else for (let i = 0; i < iters; i++) fn();
    const dt = performance.now() - t0;
    return { overriddenDuration: (reportsMs ? reported : dt) / iters, overriddenIterationCost: dt };
  });
  const [task] = bench.runSync();
  const times = Array.from(task.result.latency.samples);
  return { times, iters, samples: times.length, belowGoal: times.length < budget.samples, firstCallMs, warmupMs, warmupCalls: calls + 1, ...summarize(times) };
}

/** Milliseconds as a short human string (ns, µs, ms or s). */
export function fmtTime(ms) {
  const a = Math.abs(ms);
  if (a >= 1000) return `${(ms / 1000).toFixed(3)} s`;
  if (a >= 1) return `${ms.toFixed(3)} ms`;
  if (a >= 1e-3) return `${(ms * 1e3).toFixed(2)} µs`;
  return `${(ms * 1e6).toFixed(1)} ns`;
}
