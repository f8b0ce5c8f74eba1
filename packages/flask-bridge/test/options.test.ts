import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { InvalidOptionError, MemoryAdapter, Server } from "@switchyard/server";
import { createFlaskBridge, decodeFlaskMessage, deliverFlaskMessage } from "../src/index.js";
import { resolveFlaskBridgeOptions } from "../src/options.js";

describe("flask bridge options", () => {
  it("resolves the defaults and freezes them", () => {
    const o = resolveFlaskBridgeOptions({ url: "redis://127.0.0.1:6379" });
    assert.deepEqual(o, {
      url: "redis://127.0.0.1:6379",
      broker: "redis",
      mode: "subscribe",
      pythonSocketIO: undefined,
      base: MemoryAdapter,
      ackTimeoutMs: 30000,
      channels: ["flask-socketio", "socketio"],
      legacyPickle: false,
      binaryLayout: "arguments",
      maxMessageBytes: 1048576,
      queuePrefix: "switchyard-flask.",
      queueExpires: 300000,
      reconnectInitialDelay: 100,
      reconnectMaxDelay: 5000,
    });
    assert.ok(Object.isFrozen(o) && Object.isFrozen(o.channels));
    assert.equal(resolveFlaskBridgeOptions({ url: "amqps://h/vhost" }).broker, "amqp");
    const peer = resolveFlaskBridgeOptions({
      url: "redis://127.0.0.1:6379",
      mode: "peer",
      pythonSocketIO: "5.7",
    });
    assert.deepEqual(peer.channels, ["flask-socketio"]);
    assert.equal(peer.pythonSocketIO, "5.7");
  });

  it("peer mode: pythonSocketIO required there and only there; no io, and an adapter", () => {
    const refuses = (fn: () => unknown, re: RegExp) =>
      assert.throws(
        fn,
        (err: unknown) => err instanceof InvalidOptionError && re.test(err.message),
      );
    refuses(
      () => resolveFlaskBridgeOptions({ url: "redis://x", mode: "peer" }),
      /"pythonSocketIO" must be one of "5.7", "5.14", "5.15"/,
    );
    refuses(
      () => resolveFlaskBridgeOptions({ url: "redis://x", mode: "peer", pythonSocketIO: "5.16" }),
      /"pythonSocketIO"/,
    );
    refuses(
      () => resolveFlaskBridgeOptions({ url: "redis://x", pythonSocketIO: "5.7" }),
      /"pythonSocketIO" must be absent unless mode is "peer"/,
    );
    refuses(() => resolveFlaskBridgeOptions({ url: "redis://x", base: MemoryAdapter }), /"base"/);
    refuses(() => resolveFlaskBridgeOptions({ url: "redis://x", mode: "both" }), /"mode"/);
    refuses(
      () =>
        resolveFlaskBridgeOptions({
          url: "redis://x",
          mode: "peer",
          pythonSocketIO: "5.7",
          ackTimeoutMs: 0,
        }),
      /"ackTimeoutMs"/,
    );
    refuses(
      () =>
        resolveFlaskBridgeOptions({
          url: "redis://x",
          mode: "peer",
          pythonSocketIO: "5.7",
          base: 1,
        }),
      /"base"/,
    );
    const io = new Server();
    after(() => io.close());
    refuses(
      () =>
        createFlaskBridge(io, { url: "redis://127.0.0.1:1", mode: "peer", pythonSocketIO: "5.7" }),
      /without a server in peer mode/,
    );
    const subscriber = createFlaskBridge(io, { url: "redis://127.0.0.1:1" });
    after(() => subscriber.close());
    assert.throws(() => subscriber.adapter, /peer mode only/);
    refuses(
      () => createFlaskBridge({ url: "redis://127.0.0.1:1" } as never),
      /with a server unless mode is "peer"/,
    );
  });

  it("refuses unknown keys with a did-you-mean, and wrong values naming the option", () => {
    const refuses = (opts: unknown, code: string, re: RegExp) =>
      assert.throws(
        () => resolveFlaskBridgeOptions(opts),
        (err: unknown) =>
          err instanceof InvalidOptionError && err.code === code && re.test(err.message),
      );
    refuses(
      { url: "redis://x", chanels: ["a"] },
      "SY_ERR_UNKNOWN_OPTION",
      /did you mean "channels"/,
    );
    refuses(
      { url: "redis://x", legacyPickel: "data-only" },
      "SY_ERR_UNKNOWN_OPTION",
      /"legacyPickle"/,
    );
    refuses({ url: "redis://x", port: 1 }, "SY_ERR_UNKNOWN_OPTION", /unknown option "port"/);
    refuses(null, "SY_ERR_INVALID_OPTION", /"options"/);
    refuses({}, "SY_ERR_INVALID_OPTION", /"url"/);
    refuses({ url: "http://x" }, "SY_ERR_INVALID_OPTION", /"url" must be a redis/);
    refuses({ url: "kafka://x" }, "SY_ERR_INVALID_OPTION", /"url"/);
    refuses({ url: "redis://x", channels: [] }, "SY_ERR_INVALID_OPTION", /"channels"/);
    refuses({ url: "redis://x", channels: ["a", "a"] }, "SY_ERR_INVALID_OPTION", /"channels"/);
    refuses({ url: "redis://x", channels: "a" }, "SY_ERR_INVALID_OPTION", /"channels"/);
    refuses({ url: "redis://x", legacyPickle: true }, "SY_ERR_INVALID_OPTION", /"legacyPickle"/);
    refuses({ url: "redis://x", binaryLayout: "raw" }, "SY_ERR_INVALID_OPTION", /"binaryLayout"/);
    refuses({ url: "redis://x", maxMessageBytes: 0 }, "SY_ERR_INVALID_OPTION", /"maxMessageBytes"/);
    refuses({ url: "redis://x", queueExpires: 1.5 }, "SY_ERR_INVALID_OPTION", /"queueExpires"/);
    refuses({ url: "redis://x", queuePrefix: 5 }, "SY_ERR_INVALID_OPTION", /"queuePrefix"/);
    refuses(
      { url: "redis://x", reconnectInitialDelay: 500, reconnectMaxDelay: 100 },
      "SY_ERR_INVALID_OPTION",
      /"reconnectMaxDelay"/,
    );
    const io = new Server();
    after(() => io.close());
    assert.throws(
      () => createFlaskBridge(io, { url: "redis://x", channel: "a" } as never),
      InvalidOptionError,
    );
  });
});

describe("deliverFlaskMessage without sockets", () => {
  it("never creates a namespace a message names, and ignores callbacks", async (t) => {
    const io = new Server();
    t.after(() => io.close());
    const created: string[] = [];
    io.on("new_namespace", (nsp) => created.push(nsp.name));
    for (let i = 0; i < 100; i++) {
      const r = decodeFlaskMessage(
        `{"method": "emit", "event": "x", "data": [1], "binary": false, "namespace": "/n${i}"}`,
      );
      assert.ok(r.ok);
      assert.equal(deliverFlaskMessage(io, r.message), "not-here");
    }
    const dc = decodeFlaskMessage('{"method": "disconnect", "sid": "nobody", "namespace": "/"}');
    assert.ok(dc.ok);
    assert.equal(deliverFlaskMessage(io, dc.message), "not-here");
    const cb = decodeFlaskMessage(
      '{"method": "callback", "host_id": "h", "sid": "s", "namespace": "/", "id": 1, "args": []}',
    );
    assert.ok(cb.ok);
    assert.equal(deliverFlaskMessage(io, cb.message), "ignored");
    const all = decodeFlaskMessage(
      '{"method": "emit", "event": "x", "data": [1], "binary": false, "room": []}',
    );
    assert.ok(all.ok);
    assert.equal(deliverFlaskMessage(io, all.message), "applied");
    assert.deepEqual(created, []);
  });
});
