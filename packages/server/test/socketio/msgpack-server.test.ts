/**
 * Switchyard's own `msgpackParser` (exported by @switchyard/server) given to a `Server`,
 * with real clients using the npm `socket.io-msgpack-parser`: every Socket.IO message on
 * the wire is one binary msgpack frame (never the text codec), events, binary and acks
 * round-trip both ways over each transport path, and the server's `maxDepth` /
 * `maxAttachments` apply to msgpack input (a client past them is disconnected with
 * `parse error`).
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { msgpackParser, type Socket } from "@switchyard/server";
import notepack from "notepack.io";
import type { Socket as ClientSocket, ManagerOptions } from "socket.io-client";
import npmMsgpackParser from "socket.io-msgpack-parser";
import {
  once,
  pair,
  reason,
  Scope,
  startServer,
  type TestServer,
  TRANSPORT_MODES,
  waitFor,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

// The npm module ships no types: the client side takes it as its parser option.
const clientParser = npmMsgpackParser as unknown as NonNullable<ManagerOptions["parser"]>;

/** Engine.IO `message` payloads the client received, as they came off the wire. */
function wireLog(client: ClientSocket): unknown[] {
  const log: unknown[] = [];
  client.io.engine.on("packet", (p: { type: string; data?: unknown }) => {
    if (p.type === "message") log.push(p.data);
  });
  return log;
}

/** The msgpack map `{ type, nsp, data, id }` of one binary frame. */
function decodeFrame(frame: unknown): { type: number; nsp: string; data?: unknown; id?: number } {
  assert.ok(
    frame instanceof ArrayBuffer || ArrayBuffer.isView(frame),
    `a text frame reached the client: ${JSON.stringify(frame)}`,
  );
  const bytes =
    frame instanceof ArrayBuffer
      ? Buffer.from(frame)
      : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  return notepack.decode(bytes) as { type: number; nsp: string; data?: unknown; id?: number };
}

const bytes = (v: unknown): Buffer => Buffer.from(v as Uint8Array);

for (const mode of TRANSPORT_MODES) {
  describe(`the exported msgpackParser on a Server, ${mode.name}`, () => {
    it("frames are msgpack; events, binary and acks round-trip both ways", async () => {
      const srv = await startServer(scope, { parser: msgpackParser });
      const { client, socket } = await pair(scope, srv, mode, { parser: clientParser });
      const wire = wireLog(client);

      const down = once<unknown[]>(client, "down");
      socket.emit("down", "text", { n: 1, bin: Buffer.from([1, 2, 3]) }, [Buffer.from([4])]);
      const [s, obj, list] = await down;
      assert.equal(s, "text");
      assert.equal((obj as { n: number }).n, 1);
      assert.deepEqual(bytes((obj as { bin: unknown }).bin), Buffer.from([1, 2, 3]));
      assert.deepEqual(bytes((list as unknown[])[0]), Buffer.from([4]));

      socket.on("echo", (x: unknown, cb: (...r: unknown[]) => void) => cb(x, Buffer.from([9])));
      const [back, extra] = await new Promise<unknown[]>((resolve, reject) => {
        client
          .timeout(3000)
          .emit("echo", { b: Buffer.from([7, 8]) }, (err: Error | null, ...r: unknown[]) =>
            err ? reject(err) : resolve(r),
          );
      });
      assert.deepEqual(bytes((back as { b: unknown }).b), Buffer.from([7, 8]));
      assert.deepEqual(bytes(extra), Buffer.from([9]));

      client.on("ask", (x: Uint8Array, cb: (r: unknown) => void) =>
        cb({ len: x.byteLength, first: x[0] }),
      );
      assert.deepEqual(await socket.timeout(3000).emitWithAck("ask", Buffer.from([5, 6])), {
        len: 2,
        first: 5,
      });

      const all = once<unknown[]>(client, "all");
      srv.io.emit("all", Buffer.from([0xff]));
      assert.deepEqual(bytes((await all)[0]), Buffer.from([0xff]));

      // What came over the wire since the wire log started: the event, the ack reply, the
      // ask, the broadcast — each one binary msgpack frame, no text, no attachments.
      await waitFor(() => wire.length >= 4, 3000, "four frames in the log");
      const frames = wire.map(decodeFrame);
      assert.deepEqual(
        frames.map((f) => [f.type, f.nsp]),
        [
          [2, "/"],
          [3, "/"],
          [2, "/"],
          [2, "/"],
        ],
      );
      assert.equal((frames[0]!.data as unknown[])[0], "down");
      assert.ok(Buffer.isBuffer((frames[0]!.data as { bin: unknown }[])[2]?.bin));
      assert.equal(typeof frames[2]!.id, "number", "the ask carries an ack id");
      assert.deepEqual(bytes((frames[3]!.data as unknown[])[1]), Buffer.from([0xff]));
    });
  });
}

describe("the exported msgpackParser enforces the server's decode limits", () => {
  /** Nested arrays `depth` levels deep around a 0. */
  const nest = (depth: number): unknown => {
    let v: unknown = 0;
    for (let i = 0; i < depth; i++) v = [v];
    return v;
  };
  const buffers = (n: number): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.from([i]));

  async function start(): Promise<TestServer> {
    return startServer(scope, { parser: msgpackParser, maxDepth: 4, maxAttachments: 2 });
  }

  async function peer(srv: TestServer): Promise<{ client: ClientSocket; socket: Socket }> {
    const p = await pair(scope, srv, TRANSPORT_MODES[0]!, { parser: clientParser });
    p.socket.on("in", (...args: unknown[]) => {
      const cb = args.pop() as (n: number) => void;
      cb(args.length);
    });
    return p;
  }

  it("within maxDepth and maxAttachments: delivered", async () => {
    const srv = await start();
    const { client } = await peer(srv);
    // Payload array (level 1) > argument (level 2) > two more: depth 4.
    assert.equal(await client.timeout(3000).emitWithAck("in", nest(2)), 1);
    assert.equal(await client.timeout(3000).emitWithAck("in", ...buffers(2)), 2);
    assert.equal(srv.io.stats.parseErrors, 0);
  });

  for (const [what, args] of [
    ["deeper than maxDepth", [nest(8)]],
    ["more binary values than maxAttachments", buffers(5)],
  ] as const) {
    it(`${what}: parse error, the handler never runs, other clients unaffected`, async () => {
      const srv = await start();
      const { client, socket } = await peer(srv);
      const other = await peer(srv);
      let handled = 0;
      socket.onAny(() => handled++);
      const why = reason(socket);
      const clientSide = reason(client);
      client.emit("in", ...args, () => {});
      assert.equal(await why, "parse error");
      assert.notEqual(await clientSide, "io client disconnect");
      assert.equal(handled, 0);
      assert.equal(srv.io.stats.parseErrors, 1);
      assert.equal(await other.client.timeout(3000).emitWithAck("in", "still fine"), 1);
    });
  }
});
