/**
 * The instruments the demo quotes, and the one place that decides what a valid symbol
 * looks like (REST paths and socket events both go through {@link normalizeSymbol}).
 */

/** One quoted instrument. */
export interface SymbolInfo {
  /** Ticker symbol, upper case (`AAPL`). */
  readonly symbol: string;
  /** Display name. */
  readonly name: string;
  /** Price the random walk starts from (and slowly reverts to). */
  readonly open: number;
}

/** What the demo quotes when no symbols are given. */
export const DEFAULT_SYMBOLS: readonly SymbolInfo[] = Object.freeze([
  { symbol: "AAPL", name: "Apple", open: 189.5 },
  { symbol: "MSFT", name: "Microsoft", open: 412.3 },
  { symbol: "GOOG", name: "Alphabet", open: 171.2 },
  { symbol: "AMZN", name: "Amazon", open: 182.75 },
  { symbol: "NVDA", name: "NVIDIA", open: 121.4 },
  { symbol: "TSLA", name: "Tesla", open: 248.9 },
]);

const SYMBOL_RE = /^[A-Z0-9][A-Z0-9.-]{0,11}$/;

/** Upper-cases `value` and returns it if it is shaped like a symbol, else undefined. */
export function normalizeSymbol(value: unknown): string | undefined {
  if (typeof value !== "string" || value.length > 12) return undefined;
  const symbol = value.toUpperCase();
  return SYMBOL_RE.test(symbol) ? symbol : undefined;
}

/** 32-bit FNV-1a: a stable seed per symbol, so every run walks the same way. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Turns the `symbols` option into validated, frozen infos. A bare string gets its own
 * name and a starting price derived from its hash (between 20 and 500).
 */
export function resolveSymbols(input: readonly (string | SymbolInfo)[]): readonly SymbolInfo[] {
  if (!Array.isArray(input) || input.length === 0)
    throw new TypeError("symbols: expected a non-empty array of symbols");
  const seen = new Set<string>();
  const out: SymbolInfo[] = [];
  for (const item of input) {
    const raw = typeof item === "string" ? item : item?.symbol;
    const symbol = normalizeSymbol(raw);
    if (symbol === undefined || symbol !== raw)
      throw new TypeError(`symbols: ${JSON.stringify(raw)} is not an upper-case ticker symbol`);
    if (seen.has(symbol)) throw new TypeError(`symbols: ${symbol} is listed twice`);
    seen.add(symbol);
    if (typeof item === "string") {
      out.push(
        Object.freeze({ symbol, name: symbol, open: 20 + (hashString(symbol) % 48_000) / 100 }),
      );
      continue;
    }
    if (!(Number.isFinite(item.open) && item.open > 0))
      throw new TypeError(`symbols: ${symbol}.open must be a positive number`);
    out.push(Object.freeze({ symbol, name: String(item.name), open: item.open }));
  }
  return Object.freeze(out);
}
