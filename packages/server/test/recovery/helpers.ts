/**
 * Helpers of the recovery tests: a TCP proxy between real clients and the server that a
 * test can cut (every connection destroyed, as a dropped network does) or pause (bytes
 * held in both directions, as a frozen client or a dead route: heartbeats go unanswered).
 */
import {
  connect,
  createServer,
  type Server as NetServer,
  type Socket as NetSocket,
} from "node:net";
import type { Scope } from "@switchyard/test-harness";

export class TcpProxy {
  readonly port: number;
  /** Where new connections go (a balancer sending the next client elsewhere: change it). */
  target: number;
  private readonly server: NetServer;
  private readonly pairs = new Set<[NetSocket, NetSocket]>();
  private paused = false;
  private refusing = false;

  private constructor(server: NetServer, port: number, target: number) {
    this.server = server;
    this.port = port;
    this.target = target;
  }

  /** A proxy on a free loopback port forwarding to `127.0.0.1:targetPort`; closed by `scope`. */
  static async start(scope: Scope, targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((down) => proxy!.accept(down));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address !== "object") throw new Error("proxy not listening");
    proxy = new TcpProxy(server, address.port, targetPort);
    scope.add(proxy, (p) => p.close());
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Connections open through the proxy. */
  get connections(): number {
    return this.pairs.size;
  }

  private accept(down: NetSocket): void {
    if (this.refusing) {
      down.destroy();
      return;
    }
    const up = connect(this.target, "127.0.0.1");
    const pair: [NetSocket, NetSocket] = [down, up];
    this.pairs.add(pair);
    const drop = () => {
      this.pairs.delete(pair);
      down.destroy();
      up.destroy();
    };
    down.on("error", drop).on("close", drop);
    up.on("error", drop).on("close", drop);
    down.pipe(up);
    up.pipe(down);
    if (this.paused) {
      down.pause();
      up.pause();
    }
  }

  /** Destroys every connection through the proxy (new ones still pass). */
  cut(): void {
    for (const [down, up] of [...this.pairs]) {
      down.destroy();
      up.destroy();
    }
    this.pairs.clear();
  }

  /**
   * Cuts every connection and refuses new ones until {@link up}: the network is gone.
   * (A cut alone may miss a polling client between two requests: its next request would
   * simply open a new connection.)
   */
  down(): void {
    this.refusing = true;
    this.cut();
  }

  up(): void {
    this.refusing = false;
  }

  /** Holds every byte, both ways, on the open connections and on new ones. */
  pause(): void {
    this.paused = true;
    for (const [down, up] of this.pairs) {
      down.unpipe(up);
      up.unpipe(down);
      down.pause();
      up.pause();
    }
  }

  /** Drops the held connections and lets new ones pass again. */
  resume(): void {
    this.paused = false;
    this.cut();
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
