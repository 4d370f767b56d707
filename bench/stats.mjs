// The statistics of the benchmark suite, kept small on purpose: estimates with 95 % bootstrap
// confidence intervals, Tukey-fence outlier classes, and a seeded permutation test for "did
// this change since the last run". Samples are per-iteration times in milliseconds. Every
// random draw comes from a seeded generator, so the same samples always give the same report.

/** Seeded uniform [0,1) generator (mulberry32). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const mean = (xs) => {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
};

/** Linear-interpolated quantile of an ascending array. */
export function quantile(sorted, q) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export const median = (xs) => quantile(Float64Array.from(xs).sort(), 0.5);

/** Resamples `xs` with replacement into `out` using `rand`. */
function resample(xs, out, rand) {
  for (let i = 0; i < out.length; i++) out[i] = xs[Math.floor(rand() * xs.length)];
  return out;
}

/** 95 % percentile-bootstrap interval of `stat` over `xs` (2,000 resamples unless told). */
export function bootstrapCI(xs, stat, { resamples = 2000, seed = 1 } = {}) {
  const rand = rng(seed);
  const buf = new Float64Array(xs.length);
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) stats[r] = stat(resample(xs, buf, rand));
  stats.sort();
  return [quantile(stats, 0.025), quantile(stats, 0.975)];
}

/**
 * Tukey's fences as criterion uses them: mild beyond 1.5 IQR from the quartiles, severe beyond
 * 3 IQR, counted separately below and above.
 */
export function classifyOutliers(xs) {
  const s = Float64Array.from(xs).sort();
  const q1 = quantile(s, 0.25);
  const q3 = quantile(s, 0.75);
  const iqr = q3 - q1;
  const c = { lowSevere: 0, lowMild: 0, highMild: 0, highSevere: 0 };
  for (const x of s) {
    if (x < q1 - 3 * iqr) c.lowSevere++;
    else if (x < q1 - 1.5 * iqr) c.lowMild++;
    else if (x > q3 + 3 * iqr) c.highSevere++;
    else if (x > q3 + 1.5 * iqr) c.highMild++;
  }
  return { ...c, total: c.lowSevere + c.lowMild + c.highMild + c.highSevere, fences: [q1 - 3 * iqr, q1 - 1.5 * iqr, q3 + 1.5 * iqr, q3 + 3 * iqr] };
}

/** Mean and median with their bootstrap intervals, spread and outliers of one sample set. */
export function summarize(times) {
  const sorted = Float64Array.from(times).sort();
  const m = mean(times);
  return {
    n: times.length,
    mean: m,
    meanCI: bootstrapCI(times, mean, { seed: 1 }),
    median: quantile(sorted, 0.5),
    medianCI: bootstrapCI(times, median, { seed: 2, resamples: 1000 }),
    min: sorted[0],
    max: sorted[sorted.length - 1],
    sd: Math.sqrt(times.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, times.length - 1)),
    outliers: classifyOutliers(times),
  };
}

/**
 * Compares two sample sets of per-iteration times: the relative change of the median with a
 * bootstrap interval, a two-sided permutation test on the difference of medians (seeded,
 * `permutations` shuffles; p = (hits + 1) / (permutations + 1)), and criterion's verdict:
 * "no change" when p ≥ alpha or the whole interval lies within ±noise, otherwise "improved"
 * (faster) or "regressed" (slower).
 */
export function compareSamples(before, after, { alpha = 0.05, noise = 0.02, permutations = 2000, seed = 7 } = {}) {
  const mb = median(before);
  const ma = median(after);
  const change = ma / mb - 1;
  const rand = rng(seed);
  const bufB = new Float64Array(before.length);
  const bufA = new Float64Array(after.length);
  const changes = new Float64Array(1000);
  for (let r = 0; r < changes.length; r++) changes[r] = median(resample(after, bufA, rand)) / median(resample(before, bufB, rand)) - 1;
  changes.sort();
  const changeCI = [quantile(changes, 0.025), quantile(changes, 0.975)];

  const pooled = Float64Array.from([...before, ...after]);
  const nb = before.length;
  const observed = Math.abs(ma - mb);
  let hits = 0;
  for (let r = 0; r < permutations; r++) {
    // Fisher-Yates shuffle; the first nb values play "before", the rest "after".
    for (let i = pooled.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = pooled[i];
      pooled[i] = pooled[j];
      pooled[j] = t;
    }
    if (Math.abs(median(pooled.subarray(nb)) - median(pooled.subarray(0, nb))) >= observed) hits++;
  }
  const p = (hits + 1) / (permutations + 1);
  let verdict;
  if (p >= alpha || (changeCI[0] > -noise && changeCI[1] < noise)) verdict = "no change";
  else verdict = change < 0 ? "improved" : "regressed";
  return { change, changeCI, p, verdict };
}

/**
 * Bootstrap interval of median(num) / median(den), for speed-ups between two implementations
 * (pass the time samples in the order that makes > 1 mean "edgegrad faster").
 */
export function ratioCI(num, den, { resamples = 1000, seed = 3 } = {}) {
  const rand = rng(seed);
  const bufN = new Float64Array(num.length);
  const bufD = new Float64Array(den.length);
  const rs = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) rs[r] = median(resample(num, bufN, rand)) / median(resample(den, bufD, rand));
  rs.sort();
  return [quantile(rs, 0.025), quantile(rs, 0.975)];
}
