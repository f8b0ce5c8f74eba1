/**
 * Helpers of the market-ticker tests: plain HTTP requests with timing, time-bounded
 * waiting, a typed socket.io-client, and percentiles.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { type Agent, request } from "node:http";
import { performance } from "node:perf_hooks";
import { type Socket as ClientSocket, io as connect } from "socket.io-client";
import { type ClientEvents, NAMESPACE, type ServerToClientEvents } from "../src/app.js";

/** The demo running in its own process (`src/main.ts` from source, a free port). */
export interface DemoProcess {
  readonly url: string;
  readonly process: ChildProcess;
  /** Kills the process (if still running) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts the demo with the given tick interval; resolves once it prints its URL. */
export async function startDemo(tickIntervalMs: number): Promise<DemoProcess> {
  const child = spawn(
    process.execPath,
    ["--conditions=switchyard-source", "--import", "tsx", "src/main.ts"],
    {
      cwd: new URL("..", import.meta.url).pathname,
      env: {
        ...process.env,
        PORT: "0",
        HOST: "127.0.0.1",
        TICK_INTERVAL_MS: String(tickIntervalMs),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
  };
  let output = "";
  let url = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    url ||= /Switchyard market ticker on (http:\/\/\S+)/.exec(output)?.[1] ?? "";
  });
  const exited = once(child, "exit");
  try {
    await Promise.race([
      waitFor(() => url !== "", 20_000, "the server to print its URL"),
      exited.then(([code]) => {
        throw new Error(`server exited with ${code} before listening:\n${output}`);
      }),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, process: child, stop };
}

export type MarketClient = ClientSocket<ServerToClientEvents, ClientEvents>;

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Round-trip time, ms. */
  ms: number;
}

/** One HTTP request; resolves with status, headers, body and timing. */
export function httpRequest(
  url: string,
  opts: { method?: string; agent?: Agent; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(url, { method: opts.method ?? "GET", agent: opts.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          ms: performance.now() - started,
        }),
      );
    });
    req.setTimeout(opts.timeoutMs ?? 5000, () => req.destroy(new Error(`timeout: ${url}`)));
    req.on("error", reject);
    req.end();
  });
}

/** GET and parse JSON. */
export async function getJson(url: string): Promise<{ status: number; json: unknown }> {
  const res = await httpRequest(url);
  return { status: res.status, json: JSON.parse(res.body) };
}

/** Polls `predicate` every few ms until it is truthy; rejects after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Connects a socket.io-client to the market namespace and waits for `connect`. */
export function connectClient(url: string, timeoutMs = 5000): Promise<MarketClient> {
  const socket: MarketClient = connect(`${url}${NAMESPACE}`, {
    forceNew: true,
    reconnection: false,
    transports: ["websocket"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no connection to ${url}${NAMESPACE} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    });
  });
}

/** The p-th percentile (0–100) of `values`, nearest-rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Differences between consecutive values. */
export function gaps(values: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < values.length; i++) out.push(values[i]! - values[i - 1]!);
  return out;
}

export function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
