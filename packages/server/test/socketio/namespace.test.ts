/**
 * Namespaces (static, dynamic by RegExp and by function, cleanup of empty children)
 * and the two kinds of middleware: connection middleware (`io.use`, `nsp.use`) and
 * packet middleware (`socket.use`).
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import type { Namespace, ParentNamespace, Socket } from "@switchyard/server";
import {
  client,
  connect,
  connectError,
  once,
  pair,
  quietPeriod,
  Scope,
  startServer,
  TRANSPORT_MODES,
  waitFor,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

const WS = TRANSPORT_MODES[0]!;

describe("static namespaces", () => {
  it("io.of(name) is created once, io.sockets is '/', a missing '/' is added", async () => {
    const srv = await startServer(scope);
    const created: string[] = [];
    srv.io.on("new_namespace", (nsp: Namespace) => created.push(nsp.name));
    const chat = srv.io.of("/chat");
    assert.equal(srv.io.of("/chat"), chat);
    assert.equal(srv.io.of("chat"), chat);
    assert.equal(srv.io.of("/"), srv.io.sockets);
    assert.equal(chat.name, "/chat");
    assert.deepEqual(created, ["/chat"]);

    const onChat: string[] = [];
    srv.io.of("/news", (s) => onChat.push(s.nsp.name));
    const { client: c, socket } = await pair(scope, srv, WS, {}, "/chat");
    assert.equal(socket.nsp, chat);
    assert.equal(chat.sockets.get(socket.id), socket);
    assert.equal(srv.io.sockets.sockets.size, 0, "the main namespace has no socket");
    const news = c.io.socket("/news");
    news.connect();
    await waitFor(() => onChat.length === 1, 3000, "the /news connection callback");
    assert.deepEqual(onChat, ["/news"]);
    // Both namespaces share one engine session.
    assert.equal(srv.io.engine.clientsCount, 1);
  });

  it("refuses an unknown namespace with 'Invalid namespace' and counts it", async () => {
    const srv = await startServer(scope);
    const c = client(scope, `${srv.url}/nope`, { transports: ["websocket"] });
    const err = await connectError(c);
    assert.equal(err.message, "Invalid namespace");
    assert.equal(srv.io.stats.invalidNamespaces, 1);
  });

  it("broadcasts stay within their namespace", async () => {
    const srv = await startServer(scope);
    const main = await pair(scope, srv, WS);
    const chat = await pair(scope, srv, WS, {}, "/chat");
    const got: string[] = [];
    main.client.on("ev", () => got.push("main"));
    chat.client.on("ev", () => got.push("chat"));
    srv.io.of("/chat").emit("ev");
    await waitFor(() => got.length === 1, 3000, "the /chat broadcast");
    await quietPeriod(50);
    assert.deepEqual(got, ["chat"]);
  });
});

describe("dynamic namespaces", () => {
  for (const kind of ["RegExp", "function"] as const) {
    it(`by ${kind}: created on demand, inheriting middleware and connection listeners`, async () => {
      const srv = await startServer(scope);
      const parent =
        kind === "RegExp"
          ? srv.io.of(/^\/room-\d+$/)
          : srv.io.of((name, auth, next) =>
              next(null, /^\/room-\d+$/.test(name) && auth.ok !== false),
            );
      const order: string[] = [];
      parent.use((socket, next) => {
        order.push(`mw:${socket.nsp.name}`);
        socket.data = { checked: true };
        next();
      });
      parent.on("connection", (socket: Socket) => {
        order.push(`conn:${socket.nsp.name}`);
        socket.on("hello", (cb: (n: string) => void) => cb(socket.nsp.name));
      });
      const created: string[] = [];
      srv.io.on("new_namespace", (nsp: Namespace) => created.push(nsp.name));

      const c1 = await connect(scope, `${srv.url}/room-1`, WS.opts);
      const c2 = await connect(scope, `${srv.url}/room-22`, WS.opts);
      assert.deepEqual(order, ["mw:/room-1", "conn:/room-1", "mw:/room-22", "conn:/room-22"]);
      assert.deepEqual(created, ["/room-1", "/room-22"]);
      assert.equal(await c1.timeout(2000).emitWithAck("hello"), "/room-1");
      assert.equal(await c2.timeout(2000).emitWithAck("hello"), "/room-22");
      const child = srv.io.of("/room-1");
      const [fetched] = await child.fetchSockets();
      assert.deepEqual(fetched?.data, { checked: true });

      // A name that does not match is refused.
      const bad = client(scope, `${srv.url}/lobby`, WS.opts);
      assert.equal((await connectError(bad)).message, "Invalid namespace");
      if (kind === "function") {
        const refused = client(scope, `${srv.url}/room-3`, { ...WS.opts, auth: { ok: false } });
        assert.equal((await connectError(refused)).message, "Invalid namespace");
      }

      // A broadcast on the parent reaches every child, under the child's own name.
      const got: string[] = [];
      c1.on("news", (x: string) => got.push(`1:${x}`));
      c2.on("news", (x: string) => got.push(`22:${x}`));
      parent.emit("news", "all");
      await waitFor(() => got.length === 2, 3000, "the parent broadcast");
      assert.deepEqual(got.sort(), ["1:all", "22:all"]);

      // ... and so do the parent's broadcast acks and room operators.
      c1.on("ask", (cb: (v: number) => void) => cb(1));
      c2.on("ask", (cb: (v: number) => void) => cb(22));
      const answers = await parent.timeout(1000).emitWithAck("ask");
      assert.deepEqual(
        (answers as number[]).sort((a, b) => a - b),
        [1, 22],
      );
      parent.socketsJoin("everyone");
      assert.equal((await parent.in("everyone").fetchSockets()).length, 2);
      const ids = await parent.allSockets();
      assert.equal(ids.size, 2);
    });
  }

  it("an async function matcher may take its time; a throwing one refuses", async () => {
    const srv = await startServer(scope);
    srv.io.of((name, _auth, next) => {
      if (name === "/boom") throw new Error("matcher bug");
      setTimeout(() => next(null, name.startsWith("/slow")), 20);
    });
    await connect(scope, `${srv.url}/slow-1`, WS.opts);
    const boom = client(scope, `${srv.url}/boom`, WS.opts);
    assert.equal((await connectError(boom)).message, "Invalid namespace");
  });

  it("a schema on the parent applies to its children", async () => {
    const srv = await startServer(scope);
    const parent = srv.io.of(/^\/team-\w+$/);
    parent.schema("say", {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: (v: unknown) =>
          Array.isArray(v) && typeof v[0] === "string"
            ? { value: v }
            : { issues: [{ message: "expected a string" }] },
      },
    });
    const said: unknown[] = [];
    parent.on("connection", (s: Socket) => s.on("say", (x: unknown) => said.push(x)));
    const c = await connect(scope, `${srv.url}/team-a`, WS.opts);
    const res = await c.timeout(2000).emitWithAck("say", 42);
    assert.equal((res as { error: { code: string } }).error.code, "SY_ERR_VALIDATION_FAILED");
    assert.deepEqual(said, []);
  });

  it("cleanupEmptyChildNamespaces removes a child when its last socket leaves", async () => {
    const srv = await startServer(scope, { cleanupEmptyChildNamespaces: true });
    const parent = srv.io.of(/^\/tmp-\d+$/);
    const connections: string[] = [];
    parent.on("connection", (s: Socket) => connections.push(s.nsp.name));
    const c = await connect(scope, `${srv.url}/tmp-1`, WS.opts);
    const child = srv.io.of("/tmp-1");
    assert.equal(child.sockets.size, 1);
    const gone = once(child.sockets.values().next().value as Socket, "disconnect");
    c.disconnect();
    await gone;
    // The child is gone: a new connection creates a fresh one that still inherits.
    const c2 = await connect(scope, `${srv.url}/tmp-1`, WS.opts);
    assert.equal(c2.connected, true);
    const fresh = srv.io.of("/tmp-1");
    assert.notEqual(fresh, child);
    assert.deepEqual(connections, ["/tmp-1", "/tmp-1"]);
  });

  it("io.of(name) before anyone joined creates the matching RegExp parent's child", async () => {
    const srv = await startServer(scope);
    const parent = srv.io.of(/^\/team-\d+$/) as ParentNamespace;
    const order: string[] = [];
    parent.use((socket, next) => {
      order.push(`mw:${socket.nsp.name}`);
      next();
    });
    parent.on("connection", (socket: Socket) => order.push(`conn:${socket.nsp.name}`));
    // E.g. a REST handler emitting to a team nobody joined yet.
    const team = srv.io.of("/team-1");
    assert.ok(parent.children.has(team), "the child belongs to the parent");
    assert.equal(srv.io.of("/team-1"), team);
    team.emit("news", "nobody here yet");

    const c = await connect(scope, `${srv.url}/team-1`, WS.opts);
    assert.deepEqual(order, ["mw:/team-1", "conn:/team-1"]);
    assert.equal(team.sockets.size, 1);
    const got: string[] = [];
    c.on("news", (x: string) => got.push(x));
    parent.emit("news", "from the parent");
    team.emit("news", "from the child");
    await waitFor(() => got.length === 2, 3000, "both broadcasts");
    assert.deepEqual(got, ["from the parent", "from the child"]);
    // A name no parent matches stays a plain static namespace.
    assert.equal(parent.children.has(srv.io.of("/lobby")), false);
  });

  it("cleanupEmptyChildNamespaces: children that only refused clients tried are not kept", async () => {
    const srv = await startServer(scope, { cleanupEmptyChildNamespaces: true });
    const parent = srv.io.of(/^\/probe-\d+$/) as ParentNamespace;
    parent.use((socket, next) => {
      // Asynchronous, as a token check is: the child exists while it runs.
      setImmediate(() =>
        next(socket.handshake.auth.token === "ok" ? undefined : new Error("not authorized")),
      );
    });
    const created: string[] = [];
    srv.io.on("new_namespace", (nsp: Namespace) => created.push(nsp.name));
    const N = 60;
    // One connection tries N distinct names (as an unauthenticated client could, forever).
    const first = client(scope, `${srv.url}/probe-0`, WS.opts);
    const refusals = [connectError(first)];
    for (let i = 1; i < N; i++) {
      const s = first.io.socket(`/probe-${i}`);
      refusals.push(connectError(s));
      s.connect();
    }
    const errors = await Promise.all(refusals);
    assert.ok(errors.every((e) => e.message === "not authorized"));
    assert.equal(created.length, N, "every name was tried");
    assert.equal(parent.children.size, 0, "no refused-only child is kept");
    assert.equal(srv.io.stats.connectRefusals, N);

    // A child with an accepted socket stays while it has one, even if others are refused.
    const ok = await connect(scope, `${srv.url}/probe-1`, { ...WS.opts, auth: { token: "ok" } });
    const refused = client(scope, `${srv.url}/probe-1`, WS.opts);
    await connectError(refused);
    assert.equal(parent.children.size, 1);
    const child = [...parent.children][0]!;
    assert.equal(child.sockets.size, 1);
    const gone = once(child.sockets.values().next().value as Socket, "disconnect");
    ok.disconnect();
    await gone;
    assert.equal(parent.children.size, 0);
  });

  it("keeps empty children by default", async () => {
    const srv = await startServer(scope);
    srv.io.of(/^\/keep-\d+$/);
    const c = await connect(scope, `${srv.url}/keep-1`, WS.opts);
    const child = srv.io.of("/keep-1");
    const gone = once(child.sockets.values().next().value as Socket, "disconnect");
    c.disconnect();
    await gone;
    assert.equal(srv.io.of("/keep-1"), child);
  });
});

describe("connection middleware", () => {
  for (const mode of TRANSPORT_MODES) {
    it(`io.use / nsp.use run in order; an error refuses with message and data (${mode.name})`, async () => {
      const srv = await startServer(scope);
      const order: string[] = [];
      srv.io.use((socket, next) => {
        order.push("io1");
        if (socket.handshake.auth.token !== "ok") {
          const err = Object.assign(new Error("not authorized"), {
            data: { retry: false, code: 401 },
          });
          next(err);
          return;
        }
        next();
      });
      srv.io.use((_socket, next) => {
        order.push("io2");
        setTimeout(next, 5);
      });
      let connections = 0;
      srv.io.on("connection", () => connections++);
      const refused = client(scope, srv.url, { ...mode.opts, auth: { token: "bad" } });
      const err = await connectError(refused);
      assert.equal(err.message, "not authorized");
      assert.deepEqual(err.data, { retry: false, code: 401 });
      assert.deepEqual(order, ["io1"]);
      assert.equal(connections, 0);
      assert.equal(srv.io.stats.connectRefusals, 1);

      order.length = 0;
      await connect(scope, srv.url, { ...mode.opts, auth: { token: "ok" } });
      assert.deepEqual(order, ["io1", "io2"]);
      assert.equal(connections, 1);
    });
  }

  it("nsp.use only guards its namespace; a throwing middleware refuses", async () => {
    const srv = await startServer(scope);
    srv.io.of("/admin").use(() => {
      throw new Error("admins only");
    });
    const admin = client(scope, `${srv.url}/admin`, WS.opts);
    assert.equal((await connectError(admin)).message, "admins only");
    await connect(scope, srv.url, WS.opts);
  });

  it("a middleware that never calls next leaves the client waiting, others unaffected", async () => {
    const srv = await startServer(scope, { connectTimeout: 200 });
    srv.io.of("/stuck").use(() => {});
    const stuck = client(scope, `${srv.url}/stuck`, WS.opts);
    const ok = await connect(scope, srv.url, WS.opts);
    assert.equal(ok.connected, true);
    // connectTimeout closes the stuck engine connection.
    await once(stuck.io, "close", 3000);
    assert.equal(stuck.connected, false);
  });
});

describe("packet middleware (socket.use)", () => {
  for (const mode of TRANSPORT_MODES) {
    it(`runs before handlers; an error goes to the socket's 'error' event (${mode.name})`, async () => {
      const srv = await startServer(scope);
      const { client: c, socket } = await pair(scope, srv, mode);
      const seen: unknown[] = [];
      socket.use((packet, next) => {
        seen.push(packet[0]);
        if (packet[0] === "forbidden") next(new Error("nope"));
        else if (packet[0] === "rewrite") {
          packet[1] = "rewritten";
          next();
        } else next();
      });
      const handled: unknown[] = [];
      socket.on("forbidden", () => handled.push("forbidden"));
      socket.on("rewrite", (v: unknown) => handled.push(v));
      socket.on("ok", (v: unknown, cb: (x: unknown) => void) => {
        handled.push(v);
        cb("acked");
      });
      const error = once<[Error]>(socket, "error");
      c.emit("forbidden");
      const [err] = await error;
      assert.equal(err.message, "nope");
      c.emit("rewrite", "original");
      assert.equal(await c.timeout(2000).emitWithAck("ok", 1), "acked");
      assert.deepEqual(handled, ["rewritten", 1]);
      assert.deepEqual(seen, ["forbidden", "rewrite", "ok"]);
      assert.equal(srv.io.stats.middlewareErrors, 1);
      assert.equal(socket.connected, true);
    });
  }
});
