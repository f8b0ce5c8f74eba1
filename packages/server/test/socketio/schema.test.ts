/**
 * The schema extension: `nsp.schema(event, standardSchema)` with hand-written Standard
 * Schema v1 validators (the `~standard.validate` contract), sync and async, and with the
 * real libraries the README names (zod 4, valibot 1): parsed and transformed values
 * reach the handler, failures carry the library's own issues and paths.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import {
  type StandardSchemaV1,
  VALIDATION_ERROR_EVENT,
  type ValidationErrorPayload,
} from "@switchyard/server";
import * as v from "valibot";
import { z } from "zod";
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

// ——— real Standard Schema libraries, as the README promises ———

/** What the library itself reports for `args`, mapped as the server documents it. */
async function ownIssues(schema: StandardSchemaV1, args: unknown[]) {
  const r = await schema["~standard"].validate(args);
  assert.ok(r.issues !== undefined, "the library accepts what the test calls invalid");
  return r.issues.map((i) => ({
    message: i.message,
    path: i.path?.map((p) => {
      const key = typeof p === "object" ? p.key : p;
      return typeof key === "number" ? key : String(key);
    }),
  }));
}

const libraries: [string, StandardSchemaV1, StandardSchemaV1][] = [
  [
    "zod 4",
    z.tuple([
      z.object({ text: z.string().trim().max(64), n: z.number().int().default(1) }),
      z.string().transform((s) => s.toUpperCase()),
    ]),
    z.tuple([
      z.string().refine(async (s) => {
        await new Promise((r) => setTimeout(r, 5));
        return s !== "taken";
      }, "name taken"),
    ]),
  ],
  [
    "valibot 1",
    v.tuple([
      v.object({
        text: v.pipe(v.string(), v.trim(), v.maxLength(64)),
        n: v.optional(v.pipe(v.number(), v.integer()), 1),
      }),
      v.pipe(
        v.string(),
        v.transform((s) => s.toUpperCase()),
      ),
    ]),
    v.tupleAsync([
      v.pipeAsync(
        v.string(),
        v.checkAsync(async (s) => {
          await new Promise((r) => setTimeout(r, 5));
          return s !== "taken";
        }, "name taken"),
      ),
    ]),
  ],
];

for (const [library, post, claim] of libraries) {
  describe(`schema validation with ${library}`, () => {
    it("valid payloads reach the handler parsed and transformed; invalid ones get the documented error", async () => {
      const srv = await startServer(scope);
      srv.io.sockets.schema("post", post);
      const { client, socket } = await pair(scope, srv, TRANSPORT_MODES[0]!);
      const handled: unknown[][] = [];
      socket.on("post", (...args: unknown[]) => {
        const cb = typeof args.at(-1) === "function" ? (args.pop() as (v: unknown) => void) : null;
        handled.push(args);
        cb?.("stored");
      });

      // Valid, with an ack: trimmed, defaulted and upper-cased by the library.
      assert.equal(
        await client.timeout(2000).emitWithAck("post", { text: "  hi  " }, "room"),
        "stored",
      );
      assert.deepEqual(handled, [[{ text: "hi", n: 1 }, "ROOM"]]);

      // Invalid, with an ack: the library's issues, with paths, in the ack.
      const bad = [{ text: 5, n: 1.5 }, "room"];
      const res = (await client
        .timeout(2000)
        .emitWithAck("post", ...bad)) as ValidationErrorPayload;
      assert.equal(res.error.code, "SY_ERR_VALIDATION_FAILED");
      assert.equal(res.error.event, "post");
      const expected = await ownIssues(post, bad);
      assert.deepEqual(res.error.issues, expected);
      assert.deepEqual(
        res.error.issues.map((i) => i.path),
        [
          [0, "text"],
          [0, "n"],
        ],
      );
      assert.equal(
        res.error.message,
        `invalid arguments for "post": ${expected.map((i) => i.message).join("; ")}`,
      );

      // Invalid, without an ack: the `switchyard:error` event.
      const event = once<[ValidationErrorPayload]>(client, VALIDATION_ERROR_EVENT);
      client.emit("post", { text: "x".repeat(65) }, "room");
      const [payload] = await event;
      assert.equal(payload.error.code, "SY_ERR_VALIDATION_FAILED");
      assert.deepEqual(
        payload.error.issues,
        await ownIssues(post, [{ text: "x".repeat(65) }, "room"]),
      );
      assert.deepEqual(
        payload.error.issues.map((i) => i.path),
        [[0, "text"]],
      );

      // Too few arguments fail too; valid without an ack still arrives.
      const missing = once<[ValidationErrorPayload]>(client, VALIDATION_ERROR_EVENT);
      client.emit("post", { text: "only one" });
      assert.equal((await missing)[0].error.event, "post");
      client.emit("post", { text: "b", n: 2 }, "x");
      await waitFor(() => handled.length === 2, 3000, "the second valid post");
      assert.deepEqual(handled[1], [{ text: "b", n: 2 }, "X"]);
      assert.equal(srv.io.stats.validationFailures, 3);
    });

    it("async schemas: the handler waits for the library's verdict", async () => {
      const srv = await startServer(scope);
      srv.io.sockets.schema("claim", claim);
      const { client, socket } = await pair(scope, srv, TRANSPORT_MODES[0]!);
      const handled: unknown[] = [];
      socket.on("claim", (name: unknown, cb: (v: unknown) => void) => {
        handled.push(name);
        cb("yours");
      });
      assert.equal(await client.timeout(2000).emitWithAck("claim", "free"), "yours");
      const res = (await client
        .timeout(2000)
        .emitWithAck("claim", "taken")) as ValidationErrorPayload;
      assert.equal(res.error.code, "SY_ERR_VALIDATION_FAILED");
      assert.deepEqual(
        res.error.issues.map((i) => i.message),
        ["name taken"],
      );
      assert.deepEqual(handled, ["free"]);
    });
  });
}
