/**
 * The Switchyard server the Python clients talk to: one per test file, on 127.0.0.1:0,
 * with the handlers the scenarios use. Clients identify themselves with `auth.id`, so
 * tests running side by side never read each other's records.
 */
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type DisconnectReason, Server, type ServerOptions, type Socket } from "@switchyard/server";

/** A map whose values can be awaited before they are set. */
export class Waitable<T> {
  private readonly values = new Map<string, T>();
  private readonly waiters = new Map<string, ((value: T) => void)[]>();

  set(key: string, value: T): void {
    this.values.set(key, value);
    const waiting = this.waiters.get(key) ?? [];
    this.waiters.delete(key);
    for (const resolve of waiting) resolve(value);
  }

  get(key: string): T | undefined {
    return this.values.get(key);
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  /** Resolves with the value of `key` once set; rejects after `timeoutMs`. */
  wait(key: string, timeoutMs = 10000): Promise<T> {
    const existing = this.values.get(key);
    if (existing !== undefined || this.values.has(key)) return Promise.resolve(existing as T);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const list = this.waiters.get(key) ?? [];
        this.waiters.set(
          key,
          list.filter((w) => w !== done),
        );
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${key}`));
      }, timeoutMs);
      const done = (value: T) => {
        clearTimeout(timer);
        resolve(value);
      };
      const list = this.waiters.get(key) ?? [];
      list.push(done);
      this.waiters.set(key, list);
    });
  }
}

/** What the server saw of one connected socket. */
export interface Seen {
  socket: Socket;
  nsp: string;
  auth: Record<string, unknown>;
}

/** What the server saw when a socket's `disconnect` fired. */
export interface Gone {
  nsp: string;
  reason: DisconnectReason;
}

/** What the server's `bin` handler saw. */
export interface BinaryArrival {
  isBuffer: boolean;
  hex: string;
  nestedIsBuffer: boolean;
  nestedHex: string;
}

export interface Fixture {
  io: Server;
  http: HttpServer;
  url: string;
  /** Connected sockets by `"<nsp> <auth.id>"`. */
  connected: Waitable<Seen>;
  /** Disconnections by `"<nsp> <auth.id>"`. */
  disconnected: Waitable<Gone>;
  /** Arguments of `bin` events by `auth.id`. */
  binary: Waitable<BinaryArrival>;
  /** Auth payloads the middleware refused, by `auth.id`. */
  refused: Waitable<Record<string, unknown>>;
  close(): Promise<void>;
}

/** The buffer the server sends back in the binary scenario: every byte value once. */
export const SERVER_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));

export function key(nsp: string, id: unknown): string {
  return `${nsp} ${String(id)}`;
}

function register(fx: Pick<Fixture, "connected" | "disconnected" | "binary">, socket: Socket) {
  const id = socket.handshake.auth.id;
  const nsp = socket.nsp.name;
  fx.connected.set(key(nsp, id), { socket, nsp, auth: socket.handshake.auth });
  socket.on("disconnect", (reason: DisconnectReason) => {
    fx.disconnected.set(key(nsp, id), { nsp, reason });
  });
  // Acks every argument back, plus where it arrived.
  socket.on("echo", (...args: unknown[]) => {
    const ack = args.pop();
    if (typeof ack === "function") ack({ nsp, args });
  });
}

export async function startFixture(opts: ServerOptions = {}): Promise<Fixture> {
  const http = createServer();
  const io = new Server(http, opts);
  const fx: Fixture = {
    io,
    http,
    url: "",
    connected: new Waitable(),
    disconnected: new Waitable(),
    binary: new Waitable(),
    refused: new Waitable(),
    close: async () => {
      await io.close();
      http.closeAllConnections();
    },
  };

  io.use((socket, next) => {
    const auth = socket.handshake.auth;
    if (auth.token === "bad") {
      fx.refused.set(String(auth.id), auth);
      next(new Error("not authorized"));
      return;
    }
    next();
  });

  io.on("connection", (socket) => {
    register(fx, socket);
    socket.on("join", async (room: unknown, ack: unknown) => {
      await socket.join(String(room));
      if (typeof ack === "function") ack({ rooms: [...socket.rooms].sort() });
    });
    socket.on("bin", (data: unknown, nested: unknown, ack: unknown) => {
      const inner = (nested as { payload?: unknown } | null)?.payload;
      fx.binary.set(String(socket.handshake.auth.id), {
        isBuffer: Buffer.isBuffer(data),
        hex: Buffer.isBuffer(data) ? data.toString("hex") : JSON.stringify(data),
        nestedIsBuffer: Buffer.isBuffer(inner),
        nestedHex: Buffer.isBuffer(inner) ? inner.toString("hex") : JSON.stringify(inner),
      });
      // Binary back both ways: as an event (BINARY_EVENT) and as the ack (BINARY_ACK).
      socket.emit("bin_back", SERVER_BYTES, { label: "nested", payload: SERVER_BYTES });
      if (typeof ack === "function") ack(Buffer.from(data as Buffer).reverse());
    });
  });

  io.of("/chat").on("connection", (socket) => register(fx, socket));

  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  fx.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return fx;
}
