/**
 * Integration with `node:http`: the engine takes the requests and upgrades addressed to
 * its path and passes everything else to the listeners the server already had, so a
 * REST app and the realtime endpoint share one port.
 */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";

/** What attaching needs of an engine. */
export interface Attachable {
  handles(req: IncomingMessage): boolean;
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): void;
}

/** Upgrades nobody answered within this time are destroyed (as engine.io does). */
const UNHANDLED_UPGRADE_MS = 1000;

type RequestListener = (this: HttpServer, req: IncomingMessage, res: ServerResponse) => void;

export function attachEngine(server: HttpServer, engine: Attachable): void {
  const previous = server.listeners("request") as RequestListener[];
  server.removeAllListeners("request");
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (engine.handles(req)) {
      engine.handleRequest(req, res);
      return;
    }
    if (previous.length === 0) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("Not Found");
      return;
    }
    for (const listener of previous) listener.call(server, req, res);
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (engine.handles(req)) {
      engine.handleUpgrade(req, socket, head);
      return;
    }
    // Another listener may own this path; destroy the socket only if nobody answered.
    setTimeout(destroyIfUnanswered, UNHANDLED_UPGRADE_MS, socket).unref();
  });
  server.once("close", () => engine.close());
}

function destroyIfUnanswered(socket: Duplex & { bytesWritten?: number }): void {
  if (socket.writable && (socket.bytesWritten ?? 0) === 0) socket.destroy();
}
