// The trainer's progress display: on a TTY one line redrawn in place (at most every 100 ms)
// with epoch, batch bar, running loss and accuracy, samples/s and ETA; elsewhere (CI logs,
// pipes) nothing until each epoch ends, then one plain line per epoch.

/** Where the CLI writes: a stream-like sink that may be a terminal. */
export interface Sink {
  /** Writes text as is. */
  write(s: string): unknown;
  /** True for a terminal (the live line is drawn only then). */
  isTTY?: boolean;
  /** Terminal width in characters. */
  columns?: number;
}

/** "1:05" / "1:02:03" for a duration in seconds. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** The numbers one progress line shows. */
export interface ProgressState {
  /** 0-based epoch. */
  epoch: number;
  /** Total epochs. */
  epochs: number;
  /** Batches done in this epoch. */
  batch: number;
  /** Batches per epoch. */
  batches: number;
  /** Running mean loss of this epoch. */
  loss: number;
  /** Running accuracy estimate (NaN when unknown). */
  accuracy: number;
  /** Training throughput. */
  samplesPerSecond: number;
  /** Estimated seconds left for the whole run. */
  eta: number;
}

/** Draws the live line on a TTY; `done()` clears it so ordinary lines can follow. */
export class ProgressLine {
  readonly #out: Sink;
  #last = 0;
  #drawn = false;

  /** `out` is typically process.stderr. */
  constructor(out: Sink) {
    this.#out = out;
  }

  /** True when the live line is drawn (the sink is a terminal). */
  get live(): boolean {
    return this.#out.isTTY === true;
  }

  /** Redraws the line if the sink is a TTY and 100 ms have passed (or `force`). */
  update(p: ProgressState, now: number, force = false): void {
    if (!this.live || (!force && now - this.#last < 100)) return;
    this.#last = now;
    // Some pseudo-terminals report 0 columns; assume a common width then.
    const width = (this.#out.columns || 120) - 1;
    const frac = p.batches ? p.batch / p.batches : 0;
    const barW = 20;
    const fill = Math.round(frac * barW);
    const bar = `[${"=".repeat(Math.max(0, fill - 1))}${fill ? ">" : ""}${" ".repeat(barW - fill)}]`;
    const acc = Number.isFinite(p.accuracy) ? `  acc ${p.accuracy.toFixed(3)}` : "";
    const stats =
      ` ${p.batch}/${p.batches}  loss ${p.loss.toFixed(4)}${acc}` +
      `  ${Math.round(p.samplesPerSecond).toLocaleString("en-US")} samples/s  ETA ${formatDuration(p.eta)}`;
    const full = `epoch ${p.epoch + 1}/${p.epochs} ${bar}${stats}`;
    // On a narrow terminal the bar goes first, so the numbers stay visible.
    const line = full.length <= width ? full : `epoch ${p.epoch + 1}/${p.epochs}${stats}`.slice(0, width);
    this.#out.write(`\r\x1b[2K${line}`);
    this.#drawn = true;
  }

  /** Erases the live line (no-op when none is drawn). */
  done(): void {
    if (this.#drawn) this.#out.write("\r\x1b[2K");
    this.#drawn = false;
  }
}
