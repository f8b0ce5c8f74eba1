/**
 * Log-linear latency histogram (values in milliseconds, resolution ~1.5 % of the value,
 * floor 1 µs): constant memory however many deliveries a run counts, mergeable across
 * processes by sending `counts`.
 */
const SUB = 64; // linear sub-buckets per power of two
const MAX_EXP = 40; // up to 2^40 µs
const SIZE = SUB * MAX_EXP;

export class Histogram {
  counts: Uint32Array;
  n = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;
  negatives = 0;

  constructor(counts?: ArrayLike<number>) {
    this.counts = new Uint32Array(SIZE);
    if (counts !== undefined) {
      for (let i = 0; i < SIZE; i++) this.counts[i] = counts[i] ?? 0;
      for (let i = 0; i < SIZE; i++) this.n += this.counts[i]!;
    }
  }

  record(ms: number): void {
    if (ms < 0) {
      // Clock skew between processes: count it, record as 0.
      this.negatives++;
      ms = 0;
    }
    const us = ms * 1000;
    this.counts[index(us)]!++;
    this.n++;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < SIZE; i++) this.counts[i]! += other.counts[i]!;
    this.n += other.n;
    this.negatives += other.negatives;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
  }

  /** The value (ms) below which a fraction `q` of the samples lie. */
  quantile(q: number): number {
    if (this.n === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(upperEdge(i) / 1000, this.max);
    }
    return this.max;
  }

  summary(): LatencySummary {
    return {
      n: this.n,
      p50: round3(this.quantile(0.5)),
      p99: round3(this.quantile(0.99)),
      max: round3(this.max),
    };
  }

  toJSON(): { counts: number[]; min: number; max: number; negatives: number } {
    const counts: number[] = [];
    for (let i = 0; i < SIZE; i++) if (this.counts[i]! > 0) counts.push(i, this.counts[i]!);
    return { counts, min: this.min, max: this.max, negatives: this.negatives };
  }

  static fromJSON(j: { counts: number[]; min: number; max: number; negatives: number }): Histogram {
    const h = new Histogram();
    for (let k = 0; k < j.counts.length; k += 2) {
      h.counts[j.counts[k]!] = j.counts[k + 1]!;
      h.n += j.counts[k + 1]!;
    }
    h.min = j.min;
    h.max = j.max;
    h.negatives = j.negatives;
    return h;
  }
}

export interface LatencySummary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function index(us: number): number {
  if (us < SUB) return Math.max(0, Math.floor(us));
  const e = Math.floor(Math.log2(us / SUB));
  if (e >= MAX_EXP - 1) return SIZE - 1;
  const base = SUB * 2 ** e;
  return SUB * (e + 1) + Math.floor((us - base) / (base / SUB));
}

/** Upper edge of bucket `i` in µs. */
function upperEdge(i: number): number {
  if (i < SUB) return i + 1;
  const e = Math.floor(i / SUB) - 1;
  const base = SUB * 2 ** e;
  return base + ((i % SUB) + 1) * (base / SUB);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
