/**
 * A deterministic random walk per symbol: the n-th price of a symbol depends only on
 * the seed, the symbol and n, so tests and screenshots are reproducible. Each step
 * moves the price by at most ±0.4 % and pulls it gently back towards the open, so a
 * demo left running for days still shows sensible prices.
 */
import { hashString, type SymbolInfo } from "./symbols.js";

/** One published price of one symbol (the payload of the `tick` event). */
export interface Tick {
  /** The symbol, upper case. */
  readonly symbol: string;
  /** Price in the quote currency, rounded to cents. */
  readonly price: number;
  /** Per-symbol sequence number: 0 is the open, then 1, 2, 3… with no gaps. */
  readonly seq: number;
  /** Server wall-clock time of publication (ms since the epoch). */
  readonly t: number;
}

/** What `GET /api/quote/:symbol` returns: the latest tick plus the day's context. */
export interface Quote extends Tick {
  readonly name: string;
  readonly open: number;
  readonly change: number;
  readonly changePct: number;
}

const MAX_STEP = 0.004;
const REVERSION = 0.01;

/** mulberry32: tiny, fast, good enough for a price chart, and seedable. */
function nextRandom(state: { s: number }): number {
  state.s = (state.s + 0x6d2b79f5) | 0;
  let x = state.s;
  x = Math.imul(x ^ (x >>> 15), x | 1);
  x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
}

function roundCents(value: number): number {
  return Math.round(value * 100) / 100;
}

/** The walk of one symbol. */
export class PriceWalk {
  readonly info: SymbolInfo;
  private readonly rng: { s: number };
  private level: number;
  private latest: Tick;

  constructor(info: SymbolInfo, seed: number, now: number) {
    this.info = info;
    this.rng = { s: hashString(`${seed}:${info.symbol}`) | 0 };
    this.level = info.open;
    this.latest = Object.freeze({
      symbol: info.symbol,
      price: roundCents(info.open),
      seq: 0,
      t: now,
    });
  }

  /** Advances one step and returns the new tick, stamped `t`. */
  step(t: number): Tick {
    const move = (nextRandom(this.rng) * 2 - 1) * MAX_STEP;
    const pull = ((this.info.open - this.level) / this.info.open) * REVERSION;
    this.level = Math.max(0.01, this.level * (1 + move + pull));
    this.latest = Object.freeze({
      symbol: this.info.symbol,
      price: roundCents(this.level),
      seq: this.latest.seq + 1,
      t,
    });
    return this.latest;
  }

  /** The latest tick (seq 0 before the first step). */
  get tick(): Tick {
    return this.latest;
  }

  /** The latest tick with name, open and change. */
  quote(): Quote {
    const { open, name } = this.info;
    const change = roundCents(this.latest.price - open);
    return {
      ...this.latest,
      name,
      open,
      change,
      changePct: Math.round((change / open) * 10_000) / 100,
    };
  }
}
