// The HTTP API on one node (in-memory adapter), real HTTP and real socket.io-client; every
// answer is checked against the served OpenAPI 3.1 document (helpers.call).
import assert from "node:assert/strict";
import http from "node:http";
import { after, afterEach, before, describe, test } from "node:test";
import { waitFor as harnessWaitFor } from "@switchyard/test-harness";
import { API_ROUTES, apiSchema } from "../../src/api/index.ts";
import { KeyRing } from "../../src/api/keys.ts";
import { SwitchyardMetrics } from "../../src/metrics/index.ts";
import {
  ALL_KEY,
  Clients,
  call,
  collect,
  MANAGE_KEY,
  type Node,
  next,
  openApi,
  PUBLISH_KEY,
  READ_KEY,
  startNode,
} from "./helpers.ts";

describe("api: one node", () => {
  let node: Node;
  const clients = new Clients();
  before(async () => {
    node = await startNode({
      api: { bodyLimit: 4096, batchLimit: 5, badKeys: { limit: 1000 } },
      setup: (io) => {
        io.of("/chat");
        io.on("connection", (s) => {
          s.data = { user: s.handshake.auth.user ?? null, n: 1n };
        });
      },
    });
  });
  after(() => node.close());
  afterEach(() => clients.closeAll());

  test("serves an OpenAPI 3.1 document describing every route", async () => {
    const doc = await openApi(node);
    assert.equal(doc.openapi, "3.1.0");
    const paths = doc.paths as Record<string, Record<string, unknown>>;
    for (const r of API_ROUTES) {
      assert.ok(
        paths[`/api/v1${r.path}`]?.[r.method.toLowerCase()],
        `${r.method} ${r.path} documented`,
      );
    }
  });

  test("publish reaches the namespace, rooms, socket ids, minus except", async () => {
    const a = await clients.connect(node);
    const b = await clients.connect(node);
    const c = await clients.connect(node);
    const id = (s: typeof a): string => s.id ?? "";
    await call(node, "POST", "/api/v1/join", {
      key: MANAGE_KEY,
      body: { sockets: [id(a), id(b)], join: ["r1"] },
    });
    const gotA = collect(a, "ev");
    const gotB = collect(b, "ev");
    const gotC = collect(c, "ev");
    // whole namespace
    let r = await call(node, "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { event: "ev", data: 1 },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: true, duplicate: false });
    // a room, minus one socket id
    await call(node, "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { event: "ev", data: 2, rooms: ["r1"], except: [id(b)] },
    });
    // a socket id, several args, volatile
    r = await call(node, "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { event: "ev", args: [3, "x"], sockets: [id(c)], volatile: true },
    });
    assert.equal(r.status, 200);
    // a marker to every client: everything before it has arrived
    await call(node, "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { event: "ev", data: "end" },
    });
    await Promise.all(
      [a, b, c].map((s, i) => waitFor(() => [gotA, gotB, gotC][i]?.at(-1)?.[0] === "end", s.id)),
    );
    assert.deepEqual(gotA, [[1], [2], ["end"]]);
    assert.deepEqual(gotB, [[1], ["end"]]);
    assert.deepEqual(gotC, [[1], [3, "x"], ["end"]]);
  });

  test("publish to another namespace; an unknown namespace is 404, not created", async () => {
    const chat = await clients.connect(node, "/chat");
    const root = await clients.connect(node);
    const gotRoot = collect(root, "hello");
    const p = next(chat, "hello");
    const r = await call(node, "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { namespace: "/chat", event: "hello", data: { a: 1 } },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(await p, [{ a: 1 }]);
    const bad = await call(node, "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { namespace: "/nope", event: "hello" },
    });
    assert.equal(bad.status, 404);
    assert.equal(bad.body.error?.code, "SY_API_NAMESPACE_UNKNOWN");
    assert.equal(bad.body.error?.path, "namespace");
    assert.equal(node.io.of("/chat").name, "/chat");
    const ns = await call(node, "GET", "/api/v1/rooms?namespace=/nope", { key: READ_KEY });
    assert.equal(ns.status, 404);
    assert.deepEqual(gotRoot, []);
  });

  test("idempotency: a retried publish (body field or Idempotency-Key header) is delivered once", async () => {
    const a = await clients.connect(node);
    const got = collect(a, "once");
    const body = { event: "once", data: "x", idempotencyKey: "k-1" };
    const r1 = await call(node, "POST", "/api/v1/publish", { key: PUBLISH_KEY, body });
    const r2 = await call(node, "POST", "/api/v1/publish", { key: PUBLISH_KEY, body });
    assert.deepEqual([r1.body.duplicate, r2.body.duplicate], [false, true]);
    const h = { "idempotency-key": "k-2" };
    const r3 = await call(node, "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { event: "once", data: "y" },
      headers: h,
    });
    const r4 = await call(node, "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { event: "once", data: "y" },
      headers: h,
    });
    assert.deepEqual([r3.body.duplicate, r4.body.duplicate], [false, true]);
    // Another API key has its own keys.
    const r5 = await call(node, "POST", "/api/v1/publish", { key: ALL_KEY, body });
    assert.equal(r5.body.duplicate, false);
    await call(node, "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { event: "once", data: "end" },
    });
    await waitFor(() => got.at(-1)?.[0] === "end", "marker");
    assert.deepEqual(got, [["x"], ["y"], ["x"], ["end"]]);
    assert.equal(node.api.stats.operations.duplicates, 2);
  });

  test("batch: delivered in order, each with its own idempotency; limits and per-item errors", async () => {
    const a = await clients.connect(node);
    const got = collect(a, "b");
    const messages = [1, 2, 3].map((n) => ({ event: "b", data: n, idempotencyKey: `batch-${n}` }));
    const r = await call(node, "POST", "/api/v1/publish/batch", {
      key: PUBLISH_KEY,
      body: { messages },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.body.results,
      [1, 2, 3].map(() => ({ ok: true, duplicate: false })),
    );
    const again = await call(node, "POST", "/api/v1/publish/batch", {
      key: PUBLISH_KEY,
      body: { messages: [...messages.slice(1), { event: "b", data: 4 }] },
    });
    assert.deepEqual(again.body.results, [
      { ok: true, duplicate: true },
      { ok: true, duplicate: true },
      { ok: true, duplicate: false },
    ]);
    await waitFor(() => got.length === 4, "4 events");
    assert.deepEqual(got, [[1], [2], [3], [4]]);
    const tooMany = await call(node, "POST", "/api/v1/publish/batch", {
      key: PUBLISH_KEY,
      body: { messages: Array.from({ length: 6 }, () => ({ event: "b" })) },
    });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.error?.path, "messages");
    const badItem = await call(node, "POST", "/api/v1/publish/batch", {
      key: PUBLISH_KEY,
      body: { messages: [{ event: "b" }, { event: "disconnect" }] },
    });
    assert.equal(badItem.status, 400);
    assert.equal(badItem.body.error?.path, "messages.1.event");
    const badNs = await call(node, "POST", "/api/v1/publish/batch", {
      key: PUBLISH_KEY,
      body: {
        messages: [
          { event: "b", data: 5 },
          { event: "b", namespace: "/nope" },
        ],
      },
    });
    assert.equal(badNs.status, 404);
    assert.equal(badNs.body.error?.path, "messages.1.namespace");
    // Nothing of a refused batch was sent.
    await call(node, "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { event: "b", data: "end" },
    });
    await waitFor(() => (got as unknown[][]).at(-1)?.[0] === "end", "marker");
    assert.deepEqual(got.length, 5);
  });

  test("join, leave, disconnect; rooms, sockets with data, presence", async () => {
    const a = await connectAs(clients, node, "alice");
    const b = await connectAs(clients, node, "bob");
    let r = await call(node, "POST", "/api/v1/join", {
      key: MANAGE_KEY,
      body: { sockets: [a.id ?? ""], join: ["news", "sport"] },
    });
    assert.deepEqual(r.body, { ok: true });
    await call(node, "POST", "/api/v1/join", {
      key: MANAGE_KEY,
      body: { rooms: ["news"], except: [a.id ?? ""], join: ["x"] },
    });
    await call(node, "POST", "/api/v1/join", {
      key: MANAGE_KEY,
      body: { sockets: [b.id ?? ""], join: ["news"] },
    });
    r = await call(node, "GET", "/api/v1/rooms", { key: READ_KEY });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      namespace: "/",
      rooms: [
        { name: "news", size: 2 },
        { name: "sport", size: 1 },
      ],
    });
    r = await call(node, "GET", "/api/v1/sockets?room=news", { key: READ_KEY });
    const sockets = r.body.sockets as { id: string; rooms: string[]; data: { user: string } }[];
    assert.deepEqual(sockets.map((s) => s.data.user).sort(), ["alice", "bob"]);
    // the bigint in data is left out, the rest is there
    assert.deepEqual(
      sockets.find((s) => s.id === a.id),
      { id: a.id, rooms: ["news", "sport"], data: { user: "alice" } },
    );
    assert.equal(r.body.truncated, false);
    assert.equal(r.body.room, "news");
    r = await call(node, "GET", "/api/v1/presence?room=news&room=sport&room=empty", {
      key: READ_KEY,
    });
    assert.deepEqual(r.body, { namespace: "/", counts: { news: 2, sport: 1, empty: 0 } });
    r = await call(node, "POST", "/api/v1/leave", {
      key: MANAGE_KEY,
      body: { sockets: [a.id ?? ""], leave: ["news"] },
    });
    assert.equal(r.status, 200);
    r = await call(node, "GET", "/api/v1/presence?room=news", { key: READ_KEY });
    assert.deepEqual(r.body.counts, { news: 1 });
    const gone = next(b, "disconnect");
    r = await call(node, "POST", "/api/v1/disconnect", {
      key: MANAGE_KEY,
      body: { rooms: ["news"] },
    });
    assert.equal(r.status, 200);
    assert.equal((await gone)[0], "io server disconnect");
    assert.equal(a.connected, true);
    r = await call(node, "GET", "/api/v1/sockets", { key: READ_KEY });
    assert.deepEqual(
      (r.body.sockets as { id: string }[]).map((s) => s.id),
      [a.id],
    );
    assert.equal(r.body.room, null);
  });

  test("keys and scopes: missing/unknown key 401, wrong scope 403, X-API-Key accepted", async () => {
    let r = await call(node, "POST", "/api/v1/publish", { body: { event: "e" } });
    assert.equal(r.status, 401);
    assert.equal(r.body.error?.code, "SY_API_UNAUTHORIZED");
    assert.match(r.body.error?.message ?? "", /Authorization: Bearer/);
    r = await call(node, "POST", "/api/v1/publish", {
      key: "not-a-key-at-all-0000000",
      body: { event: "e" },
    });
    assert.equal(r.status, 401);
    r = await call(node, "POST", "/api/v1/publish", { key: READ_KEY, body: { event: "e" } });
    assert.equal(r.status, 403);
    assert.match(r.body.error?.message ?? "", /publish scope/);
    r = await call(node, "GET", "/api/v1/rooms", { key: PUBLISH_KEY });
    assert.equal(r.status, 403);
    r = await call(node, "POST", "/api/v1/join", {
      key: READ_KEY,
      body: { rooms: ["a"], join: ["b"] },
    });
    assert.equal(r.status, 403);
    r = await call(node, "GET", "/api/v1/rooms", { headers: { "x-api-key": READ_KEY } });
    assert.equal(r.status, 200);
    // the OpenAPI document needs no key
    r = await call(node, "GET", "/api/v1/openapi.json");
    assert.equal(r.status, 200);
  });

  test("bad requests: 4xx with a JSON body naming the problem", async () => {
    const k = { key: ALL_KEY };
    const cases: [string, Awaited<ReturnType<typeof call>>, number, string, string | undefined][] =
      [
        [
          "unknown route",
          await call(node, "GET", "/api/v1/nope", k),
          404,
          "SY_API_NOT_FOUND",
          undefined,
        ],
        [
          "wrong method",
          await call(node, "GET", "/api/v1/publish", k),
          405,
          "SY_API_METHOD_NOT_ALLOWED",
          undefined,
        ],
        [
          "not JSON content-type",
          await call(node, "POST", "/api/v1/publish", {
            ...k,
            body: "event=e",
            headers: { "content-type": "application/x-www-form-urlencoded" },
          }),
          415,
          "SY_API_UNSUPPORTED_MEDIA_TYPE",
          undefined,
        ],
        [
          "invalid JSON",
          await call(node, "POST", "/api/v1/publish", { ...k, body: "{nope" }),
          400,
          "SY_API_INVALID_JSON",
          undefined,
        ],
        [
          "not an object",
          await call(node, "POST", "/api/v1/publish", { ...k, body: "[1]" }),
          400,
          "SY_API_INVALID_BODY",
          undefined,
        ],
        [
          "missing event",
          await call(node, "POST", "/api/v1/publish", { ...k, body: {} }),
          400,
          "SY_API_INVALID_BODY",
          "event",
        ],
        [
          "unknown field",
          await call(node, "POST", "/api/v1/publish", { ...k, body: { event: "e", romos: ["a"] } }),
          400,
          "SY_API_INVALID_BODY",
          "romos",
        ],
        [
          "wrong type",
          await call(node, "POST", "/api/v1/publish", { ...k, body: { event: "e", rooms: "a" } }),
          400,
          "SY_API_INVALID_BODY",
          "rooms",
        ],
        [
          "reserved event",
          await call(node, "POST", "/api/v1/publish", { ...k, body: { event: "connect" } }),
          400,
          "SY_API_INVALID_BODY",
          "event",
        ],
        [
          "data and args",
          await call(node, "POST", "/api/v1/publish", {
            ...k,
            body: { event: "e", data: 1, args: [2] },
          }),
          400,
          "SY_API_INVALID_BODY",
          "args",
        ],
        [
          "data nested too deep",
          await call(node, "POST", "/api/v1/publish", {
            ...k,
            body: `{"event":"e","data":${"[".repeat(1500)}${"]".repeat(1500)}}`,
          }),
          400,
          "SY_API_INVALID_BODY",
          "data",
        ],
        [
          "join without target",
          await call(node, "POST", "/api/v1/join", { ...k, body: { join: ["a"] } }),
          400,
          "SY_API_INVALID_BODY",
          "sockets",
        ],
        [
          "presence without room",
          await call(node, "GET", "/api/v1/presence", k),
          400,
          "SY_API_INVALID_QUERY",
          "room",
        ],
        [
          "namespace without /",
          await call(node, "GET", "/api/v1/rooms?namespace=chat", k),
          400,
          "SY_API_INVALID_QUERY",
          "namespace",
        ],
      ];
    for (const [what, r, status, code, path] of cases) {
      assert.equal(r.status, status, what);
      assert.equal(r.body.error?.code, code, what);
      assert.equal(r.body.error?.path, path, what);
      assert.ok((r.body.error?.message.length ?? 0) > 5, what);
    }
    assert.equal(cases[1]?.[1].headers.get("allow"), "POST");
    assert.match(cases[6]?.[1].body.error?.message ?? "", /unknown field "romos"/);
  });

  test("bodies above api.bodyLimit get 413 (declared or streamed); the server keeps serving", async () => {
    const big = JSON.stringify({ event: "e", data: "x".repeat(10_000) });
    const r = await call(node, "POST", "/api/v1/publish", { key: ALL_KEY, body: big });
    assert.equal(r.status, 413);
    assert.equal(r.body.error?.code, "SY_API_BODY_TOO_LARGE");
    // chunked, no content-length: counted while streaming
    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${node.url}/api/v1/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${ALL_KEY}`, "content-type": "application/json" },
      });
      req.on("response", (res) => {
        let body = "";
        res.on("data", (c: Buffer) => {
          body += c.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      for (let i = 0; i < 10; i++) req.write("x".repeat(1000));
      req.end();
    });
    assert.equal(streamed.status, 413);
    assert.equal(JSON.parse(streamed.body).error.code, "SY_API_BODY_TOO_LARGE");
    const ok = await call(node, "POST", "/api/v1/publish", { key: ALL_KEY, body: { event: "e" } });
    assert.equal(ok.status, 200);
  });
});

describe("api: metrics", () => {
  test("requests are counted in the metrics area by route template, method and status", async () => {
    const node = await startNode({});
    const metrics = new SwitchyardMetrics(node.io, { defaultMetrics: false });
    try {
      await call(node, "GET", "/api/v1/rooms", { key: READ_KEY });
      await call(node, "GET", "/api/v1/rooms", { key: PUBLISH_KEY });
      await call(node, "POST", "/api/v1/publish", { key: PUBLISH_KEY, body: { event: "e" } });
      const { body } = await metrics.render();
      const line = (route: string, method: string, status: number) =>
        body
          .split("\n")
          .find(
            (l) =>
              l.startsWith("switchyard_api_requests_total{") &&
              l.includes(`route="${route}"`) &&
              l.includes(`method="${method}"`) &&
              l.includes(`status="${status}"`),
          );
      assert.match(line("/api/v1/rooms", "GET", 200) ?? "", / 1$/);
      assert.match(line("/api/v1/rooms", "GET", 403) ?? "", / 1$/);
      assert.match(line("/api/v1/publish", "POST", 200) ?? "", / 1$/);
    } finally {
      metrics.close();
      await node.close();
    }
  });
});

describe("api: repeated bad keys", () => {
  let node: Node;
  before(async () => {
    node = await startNode({ api: { badKeys: { limit: 3, intervalMs: 60_000 } } });
  });
  after(() => node.close());

  test("are rate-limited per address (429, even with a good key) and logged once per interval", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await call(node, "GET", "/api/v1/rooms", { key: `wrong-key-${i}-000000000000` });
      assert.equal(r.status, 401);
    }
    const limited = await call(node, "GET", "/api/v1/rooms", { key: READ_KEY });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error?.code, "SY_API_TOO_MANY_BAD_KEYS");
    assert.equal(limited.headers.get("retry-after"), "60");
    await call(node, "GET", "/api/v1/rooms", { key: "wrong-key-again-00000000" });
    const refusedLines = node.logs.filter((l) =>
      String(l.msg).includes("missing or unknown API key"),
    );
    const limitedLines = node.logs.filter((l) =>
      String(l.msg).includes("too many failed API key checks"),
    );
    assert.equal(refusedLines.length, 1);
    assert.equal(limitedLines.length, 1);
    assert.equal(node.api.stats.http.unauthorized, 3);
    assert.equal(node.api.stats.http.rateLimited, 2);
    assert.ok(!JSON.stringify(node.logs).includes("wrong-key-"), "keys are never logged");
  });
});

describe("api: configuration", () => {
  test("the schema applies defaults and refuses unknown keys, short keys, unknown scopes", () => {
    const d = apiSchema.parse(undefined);
    assert.equal(d.enabled, true);
    assert.equal(d.bodyLimit, 1024 * 1024);
    assert.equal(d.idempotency.windowMs, 300_000);
    assert.equal(d.broker.channel, "switchyard#api#v1");
    assert.throws(() => apiSchema.parse({ bodyLimt: 1 }), /bodyLimt/);
    assert.throws(
      () => apiSchema.parse({ keys: [{ name: "a", key: "short", scopes: ["read"] }] }),
      /16 characters/,
    );
    assert.throws(
      () => apiSchema.parse({ keys: [{ name: "a", key: "x".repeat(20), scopes: ["admin"] }] }),
      /scopes/,
    );
    assert.throws(
      () => apiSchema.parse({ keys: [{ name: "a", scopes: ["read"] }] }),
      /exactly one of key or keyEnv/,
    );
  });

  test("keyEnv: the key comes from the environment; unset fails naming the variable", async () => {
    const name = "SY_TEST_API_KEY_I3";
    assert.throws(
      () => new KeyRing([{ name: "env", keyEnv: name, scopes: ["read"] }], {}),
      new RegExp(name),
    );
    process.env[name] = "from-env-0123456789abcdef";
    const node = await startNode({
      api: { keys: [{ name: "env", keyEnv: name, scopes: ["read"] }] },
    });
    try {
      const r = await call(node, "GET", "/api/v1/rooms", { key: "from-env-0123456789abcdef" });
      assert.equal(r.status, 200);
    } finally {
      delete process.env[name];
      await node.close();
    }
  });
});

function connectAs(clients: Clients, node: Node, user: string) {
  return clients.connect(node, "/", { user });
}

function waitFor(cond: () => boolean, what: unknown): Promise<void> {
  return harnessWaitFor(cond, 5000, String(what));
}
