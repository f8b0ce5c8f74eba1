import { connect, createServer, type Server } from "node:net";

function listenOnZero(host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ port: 0, host, exclusive: true }, () => resolve(server));
  });
}

function portOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("not a TCP server");
  return address.port;
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * Returns a TCP port that was free on `host` a moment ago (listen on port 0, read the
 * port, close). Another process may still grab it before you bind, so the service
 * starters retry with new ports when they hit EADDRINUSE.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const [port] = await freePorts(1, host);
  return port!;
}

/**
 * Returns `count` distinct free ports on `host`. All listeners stay open until every
 * port is known, so the kernel cannot hand out the same port twice.
 */
export async function freePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenOnZero(host));
    return servers.map(portOf);
  } finally {
    await Promise.all(servers.map(close));
  }
}

/** Resolves true if a TCP connection to `host:port` is accepted within `timeoutMs`. */
export function isPortOpen(port: number, host = "127.0.0.1", timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (open: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(open);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Polls until nothing accepts connections on `host:port`; throws after `timeoutMs`. */
export async function waitForPortClosed(
  port: number,
  host = "127.0.0.1",
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (await isPortOpen(port, host, 500)) {
    if (Date.now() > deadline)
      throw new Error(`port ${host}:${port} still open after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
