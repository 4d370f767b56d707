// Datasets for the command-line trainer: a small CSV reader (header row, numeric cells), IDX
// files (MNIST's format, optionally gzipped), a seeded train/validation split and feature
// standardisation. Everything here is pure apart from readDataFile; errors are CliError with a
// message that names the file, line and column a user has to fix.

import { readFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";

/** A user-facing CLI failure: `message` is printed as is; `exitCode` 2 means bad usage, 1 bad data. */
export class CliError extends Error {
  override name = "CliError";
  /** Process exit code for this failure. */
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** A numeric table: `rows` × `columns.length` values, row-major. */
export interface Table {
  /** Column names from the header row (IDX: pixel0..pixelN-1). */
  columns: string[];
  /** Number of data rows. */
  rows: number;
  /** The values, row-major (rows, columns). */
  values: Float64Array;
}

/** Features (B, F) row-major and one target value per row. */
export interface Dataset {
  /** Feature names, F of them. */
  features: string[];
  /** Rows B. */
  rows: number;
  /** (B, F) row-major. */
  x: Float32Array;
  /** Raw target per row (the label values as they appear in the data); empty when there is no target. */
  y: Float64Array;
}

/** Reads `path`, naming it as the user wrote it (`shown`) when it is missing or unreadable. */
export async function readDataFile(path: string, shown = path): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new CliError(`cannot read ${shown}: no such file`);
    if (code === "EISDIR") throw new CliError(`cannot read ${shown}: it is a directory`);
    throw new CliError(`cannot read ${shown}: ${(e as Error).message}`);
  }
}

/** Splits one CSV line into cells; double-quoted cells may contain commas and "" escapes. */
function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(",").map((c) => c.trim());
  const cells: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      cells.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  cells.push(cur.trim());
  return cells;
}

/**
 * Parses CSV text with a header row and numeric cells (blank lines and a UTF-8 BOM are
 * ignored). `file` is used in messages: "data.csv:7: column "x2" (column 3): "abc" is not a number".
 */
export function parseCsv(text: string, file: string): Table {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  let at = 0;
  while (at < lines.length && lines[at]!.trim() === "") at++;
  if (at === lines.length) throw new CliError(`${file} is empty: expected a header row and data rows`);
  const columns = splitCsvLine(lines[at]!);
  columns.forEach((c, i) => {
    if (c === "") throw new CliError(`${file}:${at + 1}: column ${i + 1} of the header row has no name`);
  });
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c)) throw new CliError(`${file}:${at + 1}: column "${c}" appears twice in the header row`);
    seen.add(c);
  }
  const width = columns.length;
  const values: number[] = [];
  let rows = 0;
  for (let l = at + 1; l < lines.length; l++) {
    const line = lines[l]!;
    if (line.trim() === "") continue;
    const cells = splitCsvLine(line);
    if (cells.length !== width) {
      throw new CliError(`${file}:${l + 1}: expected ${width} cells (as in the header row), got ${cells.length}`);
    }
    for (let c = 0; c < width; c++) {
      const cell = cells[c]!;
      const v = cell === "" ? NaN : Number(cell);
      if (!Number.isFinite(v)) {
        const shown = cell === "" ? "an empty cell" : `"${cell}"`;
        throw new CliError(`${file}:${l + 1}: column "${columns[c]}" (column ${c + 1}): ${shown} is not a number`);
      }
      values.push(v);
    }
    rows++;
  }
  if (rows === 0) throw new CliError(`${file} has a header row but no data rows: the dataset is empty`);
  return { columns, rows, values: Float64Array.from(values) };
}

/** Undoes gzip when the bytes start with its magic number (MNIST is distributed as .gz). */
function maybeGunzip(bytes: Uint8Array): Uint8Array {
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
}

/** True when `bytes` (possibly gzipped) start like an IDX file: 0, 0, a type code, 1..4 dimensions. */
export function looksLikeIdx(bytes: Uint8Array): boolean {
  const b = maybeGunzip(bytes);
  return b.length >= 4 && b[0] === 0 && b[1] === 0 && IDX_TYPES[b[2]!] !== undefined && b[3]! >= 1 && b[3]! <= 4;
}

/** IDX element type code → [bytes per element, reader]. */
const IDX_TYPES: Record<number, [number, (v: DataView, at: number) => number]> = {
  0x08: [1, (v, at) => v.getUint8(at)],
  0x09: [1, (v, at) => v.getInt8(at)],
  0x0b: [2, (v, at) => v.getInt16(at, false)],
  0x0c: [4, (v, at) => v.getInt32(at, false)],
  0x0d: [4, (v, at) => v.getFloat32(at, false)],
  0x0e: [8, (v, at) => v.getFloat64(at, false)],
};

/** Parses an IDX file (big-endian, as in MNIST) into its dimensions and values. */
export function parseIdx(raw: Uint8Array, file: string): { dims: number[]; values: Float64Array } {
  const bytes = maybeGunzip(raw);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new CliError(`${file} is not an IDX file (bad magic number)`);
  const type = IDX_TYPES[bytes[2]!];
  if (!type) throw new CliError(`${file}: unknown IDX element type 0x${bytes[2]!.toString(16)}`);
  const nd = bytes[3]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (nd === 0 || bytes.length < 4 + 4 * nd) throw new CliError(`${file}: truncated IDX header`);
  const dims: number[] = [];
  for (let d = 0; d < nd; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const [size, read] = type;
  const start = 4 + 4 * nd;
  if (bytes.length < start + count * size) {
    throw new CliError(`${file}: header promises ${dims.join("×")} values but the file holds ${Math.floor((bytes.length - start) / size)}`);
  }
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = read(view, start + i * size);
  return { dims, values };
}

/** An images IDX file (N, …) and an optional labels IDX file (N) as a dataset; features are the flattened pixels. */
export function idxDataset(images: Uint8Array, imagesFile: string, labels: Uint8Array | null, labelsFile: string): Dataset {
  const img = parseIdx(images, imagesFile);
  const rows = img.dims[0]!;
  if (rows === 0) throw new CliError(`${imagesFile} holds no images: the dataset is empty`);
  const width = img.values.length / rows;
  const features = Array.from({ length: width }, (_, i) => `pixel${i}`);
  let y: Float64Array = new Float64Array(0);
  if (labels) {
    const lab = parseIdx(labels, labelsFile);
    if (lab.dims.length !== 1) throw new CliError(`${labelsFile}: expected one label per image (1 dimension), got dimensions ${lab.dims.join("×")}`);
    if (lab.dims[0] !== rows) throw new CliError(`${labelsFile} has ${lab.dims[0]} labels but ${imagesFile} has ${rows} images`);
    y = lab.values;
  }
  return { features, rows, x: Float32Array.from(img.values), y };
}

/** Picks the feature columns and the target column out of a table; unknown names are CliErrors listing the columns. */
export function tableDataset(t: Table, file: string, target: string | null, features?: readonly string[]): Dataset {
  const index = (name: string, what: string) => {
    const i = t.columns.indexOf(name);
    if (i < 0) throw new CliError(`${what} column "${name}" not found in ${file}; its columns are: ${t.columns.join(", ")}`);
    return i;
  };
  const ti = target === null ? -1 : index(target, "target");
  const names = features ? [...features] : t.columns.filter((_, i) => i !== ti);
  if (names.length === 0) throw new CliError(`${file} has no feature columns besides the target "${target}"`);
  const fi = names.map((n) => index(n, "feature"));
  const w = t.columns.length;
  const x = new Float32Array(t.rows * fi.length);
  const y = new Float64Array(ti < 0 ? 0 : t.rows);
  for (let r = 0; r < t.rows; r++) {
    for (let f = 0; f < fi.length; f++) x[r * fi.length + f] = t.values[r * w + fi[f]!]!;
    if (ti >= 0) y[r] = t.values[r * w + ti]!;
  }
  return { features: names, rows: t.rows, x, y };
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded Fisher–Yates permutation of 0..n-1. */
export function permutation(n: number, random: () => number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** Rows `idx` of a (B, width) row-major array, gathered into a new array. */
export function gatherRows<T extends Float32Array | Int32Array>(a: T, width: number, idx: ArrayLike<number>, out: T): T {
  for (let r = 0; r < idx.length; r++) out.set(a.subarray(idx[r]! * width, (idx[r]! + 1) * width), r * width);
  return out;
}

/** Per-feature mean and standard deviation (population; a constant feature gets std 1 so it maps to 0). */
export interface Standardization {
  /** Mean of each feature over the training split. */
  mean: number[];
  /** Standard deviation of each feature over the training split (1 where it was 0). */
  std: number[];
}

/** Mean and std per feature of x (B, F), computed in f64. */
export function fitStandardization(x: Float32Array, rows: number, features: number): Standardization {
  const mean = new Array<number>(features).fill(0);
  const m2 = new Array<number>(features).fill(0);
  for (let r = 0; r < rows; r++) for (let f = 0; f < features; f++) mean[f]! += x[r * features + f]!;
  for (let f = 0; f < features; f++) mean[f] = mean[f]! / rows;
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < features; f++) {
      const d = x[r * features + f]! - mean[f]!;
      m2[f]! += d * d;
    }
  }
  const std = m2.map((s) => {
    const sd = Math.sqrt(s / rows);
    return sd > 1e-12 ? sd : 1;
  });
  return { mean, std };
}

/** (x − mean) / std per feature, into a new array. */
export function standardize(x: Float32Array, s: Standardization): Float32Array {
  const f = s.mean.length;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (x[i]! - s.mean[i % f]!) / s.std[i % f]!;
  return out;
}
