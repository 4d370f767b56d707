// The two-spirals data set of the browser and Node examples (served with the page; the Node
// example imports it from here). No dependencies, so it runs in both.

/** `n` points per arm of two spirals with a little noise, from a seeded generator. */
export function spirals(n, seed) {
  let s = seed >>> 0;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const x = new Float32Array(4 * n);
  const y = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const r = i / n;
    const t = 1.25 * 2 * Math.PI * r; // one and a quarter turns
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
