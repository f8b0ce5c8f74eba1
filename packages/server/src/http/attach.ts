/**
 * Integration with `node:http`: the engine takes the requests and upgrades addressed to
 * its path and passes everything else to the listeners the server already had, so a
 * REST app and the realtime endpoint share one port.
 */
import type { Server as HttpServer, IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";

/** What attaching needs of an engine. */
export interface Attachable {
  handles(req: IncomingMessage): boolean;
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): void;
}

type RequestListener = (this: HttpServer, req: IncomingMessage, res: ServerResponse) => void;

/**
 * Engines attached to each server. One upgrade listener per server dispatches to them,
 * so an upgrade meant for one engine is never treated as "unknown" by another (engines
 * that each destroy what they do not recognise kill each other's WebSockets).
 */
const attached = new WeakMap<HttpServer, Attachable[]>();

/** Marks the engines' own request listeners, which are never adopted (see below). */
const kEngineListener = Symbol("switchyard.engineListener");
type TaggedListener = RequestListener & { [kEngineListener]?: true };

export function attachEngine(server: HttpServer, engine: Attachable): void {
  const previous = server.rawListeners("request") as RequestListener[];
  server.removeAllListeners("request");
  const onRequest: TaggedListener = (req: IncomingMessage, res: ServerResponse) => {
    if (engine.handles(req)) {
      engine.handleRequest(req, res);
      return;
    }
    for (const listener of previous) listener.call(server, req, res);
    if (previous.length === 0)
      res.writeHead(404, { "Content-Type": "text/plain" }).end("Not Found");
  };
  onRequest[kEngineListener] = true;
  server.on("request", onRequest);
  // A request listener added after attach() would see the engine's requests too and answer
  // them a second time (ERR_HTTP_HEADERS_SENT). Adopt it behind the engine instead, like
  // the listeners that were there before. `newListener` fires before the listener is
  // added, so the move happens a microtask later (before any request can be dispatched).
  // Removing an adopted listener with server.off() later has no effect.
  server.on("newListener", (event: string | symbol, listener: TaggedListener) => {
    if (event !== "request" || listener[kEngineListener] === true) return;
    queueMicrotask(() => adopt(server, listener, previous));
  });
  let engines = attached.get(server);
  if (engines === undefined) {
    const list: Attachable[] = [];
    engines = list;
    attached.set(server, list);
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      dispatchUpgrade(server, list, req, socket, head),
    );
  }
  engines.push(engine);
  server.once("close", () => engine.close());
}

function dispatchUpgrade(
  server: HttpServer,
  engines: readonly Attachable[],
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  for (const engine of engines) {
    if (engine.handles(req)) {
      engine.handleUpgrade(req, socket, head);
      return;
    }
  }
  // Another path: it belongs to the server's other upgrade listeners, untouched.
  if (server.listenerCount("upgrade") > 1) return;
  // Nobody will answer it (Node itself destroys upgrades that have no listener). The
  // socket has had no 'error' listener since Node handed it over, so a reset from the
  // peer would be an uncaught exception (engine.io's CVE-2022-41940).
  socket.on("error", ignoreError);
  if (socket.writable) {
    socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    socket.once("finish", destroyThis);
  } else {
    socket.destroy();
  }
}

function adopt(server: HttpServer, listener: RequestListener, into: RequestListener[]): void {
  // rawListeners() keeps once() wrappers, so an adopted once-listener still runs once.
  const raw = (server.rawListeners("request") as (RequestListener & { listener?: unknown })[]).find(
    (l) => l === listener || l.listener === listener,
  );
  if (raw === undefined) return; // Another engine on this server adopted it first.
  server.removeListener("request", listener);
  into.push(raw);
}

function ignoreError(): void {}

function destroyThis(this: Duplex): void {
  this.destroy();
}
