/**
 * The schema extension: `nsp.schema(event, standardSchema)` with hand-written Standard
 * Schema v1 validators (the `~standard.validate` contract), sync and async.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import type { StandardSchemaV1, ValidationErrorPayload } from "@switchyard/server";
import { once, pair, Scope, startServer, TRANSPORT_MODES, waitFor } from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

/** Accepts `[{ text: string, n?: number }]`; outputs the text trimmed and `n` defaulted to 1. */
const message: StandardSchemaV1<unknown, [{ text: string; n: number }]> = {
  "~standard": {
    version: 1,
    vendor: "hand-written",
    validate(value) {
      if (!Array.isArray(value) || value.length !== 1) {
        return { issues: [{ message: "expected exactly one argument" }] };
      }
      const arg = value[0] as { text?: unknown; n?: unknown } | null;
      if (typeof arg !== "object" || arg === null)
        return { issues: [{ message: "expected an object", path: [0] }] };
      const issues: StandardSchemaV1.Issue[] = [];
      if (typeof arg.text !== "string")
        issues.push({ message: "text must be a string", path: [0, "text"] });
      if (arg.n !== undefined && typeof arg.n !== "number")
        issues.push({ message: "n must be a number", path: [0, { key: "n" }] });
      if (issues.length > 0) return { issues };
      return {
        value: [{ text: (arg.text as string).trim(), n: (arg.n as number | undefined) ?? 1 }],
      };
    },
  },
};

/** The same check, answered asynchronously. */
const asyncMessage: StandardSchemaV1 = {
  "~standard": {
    version: 1,
    vendor: "hand-written-async",
    validate: (value) =>
      new Promise((resolve) =>
        setTimeout(
          () => resolve(message["~standard"].validate(value) as StandardSchemaV1.Result<unknown>),
          5,
        ),
      ),
  },
};

const throwing: StandardSchemaV1 = {
  "~standard": {
    version: 1,
    vendor: "broken",
    validate: () => {
      throw new Error("validator bug");
    },
  },
};

for (const mode of TRANSPORT_MODES) {
  describe(`schema validation over ${mode.name}`, () => {
    for (const [kind, schema] of [
      ["sync", message],
      ["async", asyncMessage],
    ] as const) {
      it(`${kind}: valid payloads pass (transformed), invalid ones never reach the handler`, async () => {
        const srv = await startServer(scope);
        srv.io.sockets.schema("post", schema);
        const { client, socket } = await pair(scope, srv, mode);
        const handled: unknown[] = [];
        socket.on("post", (msg: unknown, cb?: (v: unknown) => void) => {
          handled.push(msg);
          cb?.("stored");
        });

        // Valid, with an ack: the handler sees the transformed value.
        assert.equal(await client.timeout(2000).emitWithAck("post", { text: "  hi  " }), "stored");
        assert.deepEqual(handled, [{ text: "hi", n: 1 }]);

        // Invalid, with an ack: the error comes back in the ack.
        const res = (await client
          .timeout(2000)
          .emitWithAck("post", { text: 5, n: "x" })) as ValidationErrorPayload;
        assert.equal(res.error.code, "SY_ERR_VALIDATION_FAILED");
        assert.equal(res.error.event, "post");
        assert.match(res.error.message, /text must be a string/);
        assert.deepEqual(res.error.issues, [
          { message: "text must be a string", path: [0, "text"] },
          { message: "n must be a number", path: [0, "n"] },
        ]);

        // Invalid, without an ack: a `switchyard:error` event.
        const event = once<[ValidationErrorPayload]>(client, "switchyard:error");
        client.emit("post", "not an object");
        const [payload] = await event;
        assert.equal(payload.error.code, "SY_ERR_VALIDATION_FAILED");
        assert.deepEqual(payload.error.issues, [{ message: "expected an object", path: [0] }]);

        // Valid, without an ack.
        client.emit("post", { text: "b", n: 2 });
        await waitFor(() => handled.length === 2, 3000, "the second valid post");
        assert.deepEqual(handled, [
          { text: "hi", n: 1 },
          { text: "b", n: 2 },
        ]);
        assert.equal(srv.io.stats.validationFailures, 2);
        // Events without a schema are untouched.
        const free = once<unknown[]>(socket, "free");
        client.emit("free", 1, 2);
        assert.deepEqual(await free, [1, 2]);
      });
    }
  });
}

describe("schema validation (transport-independent)", () => {
  it("a throwing validator counts as a failure and the connection survives", async () => {
    const srv = await startServer(scope);
    srv.io.sockets.schema("x", throwing);
    const { client, socket } = await pair(scope, srv, TRANSPORT_MODES[0]!);
    let called = false;
    socket.on("x", () => {
      called = true;
    });
    const res = (await client.timeout(2000).emitWithAck("x", 1)) as ValidationErrorPayload;
    assert.equal(res.error.code, "SY_ERR_VALIDATION_FAILED");
    assert.match(res.error.message, /validator bug/);
    assert.equal(called, false);
    assert.equal(socket.connected, true);
  });

  it("schemas are per namespace; packet middleware runs before validation", async () => {
    const srv = await startServer(scope);
    srv.io.of("/strict").schema("post", message);
    const main = await pair(scope, srv, TRANSPORT_MODES[0]!);
    const strict = await pair(scope, srv, TRANSPORT_MODES[0]!, {}, "/strict");
    const mainGot = once<unknown[]>(main.socket, "post");
    main.client.emit("post", 42);
    assert.deepEqual(await mainGot, [42]);
    // Middleware may fix a payload up before it is validated.
    strict.socket.use((packet, next) => {
      if (typeof packet[1] === "string") packet[1] = { text: packet[1] };
      next();
    });
    const got = once<unknown[]>(strict.socket, "post");
    strict.client.emit("post", "from a string");
    assert.deepEqual(await got, [{ text: "from a string", n: 1 }]);
  });
});
