/**
 * The Switchyard node that replaces app.py: the same events, and a peer of the remaining
 * Flask nodes on their Redis message queue (the background publisher's ticks, Flask
 * nodes' broadcasts and this node's broadcasts reach every client of either kind).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createFlaskBridge, type FlaskBridge } from "@switchyard/flask-bridge";
import { Server } from "@switchyard/server";

export interface SwitchyardNode {
  readonly io: Server;
  readonly bridge: FlaskBridge;
  readonly url: string;
  close(): Promise<void>;
}

export async function startSwitchyardNode(redisUrl: string, port = 0): Promise<SwitchyardNode> {
  const bridge = createFlaskBridge({
    url: redisUrl,
    mode: "peer",
    pythonSocketIO: "5.7", // Debian bookworm's python-socketio, as app.py runs on
    channels: ["flask-socketio"],
    legacyPickle: "data-only", // stock 5.7.2 publishes pickle: read data only
  });
  const http = createServer((_req, res) => res.end("switchyard node\n"));
  const io = new Server(http, { adapter: bridge.adapter });
  // app.py's handlers, ported.
  io.on("connection", (socket) => {
    socket.on("ping", (data: unknown, ack?: (v: unknown) => void) => {
      ack?.({ pong: data, by: "switchyard" });
    });
    socket.on("shout", (text: unknown, ack?: (v: unknown) => void) => {
      io.emit("shouted", { text, by: "switchyard" });
      ack?.("ok");
    });
  });
  await new Promise<void>((resolve) => http.listen(port, "127.0.0.1", resolve));
  await bridge.ready();
  return {
    io,
    bridge,
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    async close() {
      await bridge.close();
      await io.close();
    },
  };
}
