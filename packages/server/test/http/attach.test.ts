/**
 * Attaching to `node:http`: the engine shares its port with the application's routes
 * and WebSocket endpoints, several engines share one server, and `listen()` works alone.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, describe, it } from "node:test";
import { attach, Engine } from "@switchyard/server";
import { WebSocketServer } from "ws";
import {
  closeServer,
  enginePath,
  HOST,
  nextSession,
  once,
  openClient,
  parseOpen,
  pollingHandshake,
  portOf,
  rawExchange,
  request,
  roundTrip,
  Scope,
  startEngine,
  upgraded,
  upgradeRequest,
  waitFor,
} from "../helpers.js";

const scope = new Scope();
after(() => scope.close());

describe("attach", () => {
  it("passes requests outside its path to the app untouched", async () => {
    const seen: string[] = [];
    const { url, port } = await startEngine(
      scope,
      {},
      {
        app: (req, res) => {
          seen.push(req.url ?? "");
          res
            .writeHead(201, { "X-App": "yes", "Content-Type": "text/plain" })
            .end(`app:${req.url}`);
        },
      },
    );
    for (const path of ["/api/items?x=1", "/engine.io.js", "/engine.iox/", "/", "/engine.io"]) {
      const res = await request(port, path, { method: "POST", body: "payload" });
      assert.equal(res.status, 201, path);
      assert.equal(res.headers["x-app"], "yes");
      assert.equal(res.body, `app:${path}`);
    }
    const hs = await pollingHandshake(port);
    assert.ok(hs.sid.length > 0);
    await roundTrip(await openClient(scope, url));
    assert.deepEqual(seen, ["/api/items?x=1", "/engine.io.js", "/engine.iox/", "/", "/engine.io"]);
  });

  it("answers every URL under its path itself, as engine.io does", async () => {
    const seen: string[] = [];
    const { port } = await startEngine(
      scope,
      {},
      {
        app: (req, res) => {
          seen.push(req.url ?? "");
          res.writeHead(299).end();
        },
      },
    );
    for (const path of ["/engine.io/", "/engine.io/extra", "/engine.io/a/b?c=d", "/engine.io//"]) {
      const res = await request(port, path);
      assert.equal(res.status, 400, path);
      assert.deepEqual(JSON.parse(res.body), { code: 0, message: "Transport unknown" }, path);
    }
    const answer = await rawExchange(scope, port, upgradeRequest("", [], "/engine.io/extra"), 2000);
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.deepEqual(seen, []);
  });

  it("keeps its own requests from a listener added after attach", async () => {
    const server = createServer();
    const engine = new Engine().attach(server);
    const seen: string[] = [];
    // A typical late app: answers everything, 404 included, so it must never see the
    // engine's requests (it would answer them a second time).
    server.on("request", (req, res) => {
      seen.push(req.url ?? "");
      res.writeHead(req.url === "/late" ? 200 : 404).end("late app");
    });
    await new Promise<void>((r) => server.listen(0, HOST, r));
    scope.add(null, () => closeServer(server, engine));
    const port = portOf(server);
    const res = await request(port, "/late");
    assert.equal(res.status, 200);
    assert.equal(res.body, "late app");
    assert.equal((await request(port, "/nope")).status, 404);
    const hs = await pollingHandshake(port);
    assert.ok(engine.sessions.has(hs.sid));
    assert.deepEqual(seen, ["/late", "/nope"]);
  });

  it("answers 404 outside its path when the server has no app", async () => {
    const { port } = await startEngine(scope);
    const res = await request(port, "/nothing-here");
    assert.equal(res.status, 404);
  });

  it("serves the bare path (no trailing slash) only when addTrailingSlash is false", async () => {
    const bare = enginePath({ EIO: "4", transport: "polling" }, "/engine.io");
    // As engine.io: by default the path is `/engine.io/`, and `/engine.io?…` is the app's.
    const a = await startEngine(scope, {}, { app: (_req, res) => res.writeHead(299).end() });
    assert.equal((await request(a.port, bare)).status, 299);
    const b = await startEngine(
      scope,
      { addTrailingSlash: false },
      { app: (_req, res) => res.writeHead(299).end() },
    );
    const res = await request(b.port, bare);
    assert.equal(res.status, 200);
    parseOpen(res.body);
    parseOpen((await request(b.port, enginePath({ EIO: "4", transport: "polling" }))).body);
    // A plain client (which adds no trailing slash then) connects.
    const client = await openClient(scope, `http://${HOST}:${b.port}`, { addTrailingSlash: false });
    await roundTrip(client);
    // Only the path and what is under it: not every string that starts like it.
    assert.equal((await request(b.port, "/engine.iox")).status, 299);
  });

  it("leaves upgrades outside its path to the server's other upgrade listeners, however slow", async () => {
    const { port, server } = await startEngine(scope);
    const wss = scope.add(new WebSocketServer({ noServer: true }), (w) => w.close());
    wss.on("connection", (ws) => ws.send("chat ready"));
    server.on("upgrade", (req, socket, head) => {
      if (!req.url?.startsWith("/chat")) return;
      // An app that authenticates for a while before accepting (longer than the second
      // engine.io waits before destroying "unanswered" upgrades).
      setTimeout(
        () => wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws)),
        1100,
      );
    });
    const { WebSocket } = await import("ws");
    const chat = scope.add(new WebSocket(`ws://${HOST}:${port}/chat`), (w) => w.terminate());
    const [msg] = await once<[Buffer]>(chat, "message", 3000);
    assert.equal(msg.toString(), "chat ready");
  });

  it("closes upgrades nobody listens for with 404", async () => {
    const { port } = await startEngine(scope);
    const answer = await rawExchange(scope, port, upgradeRequest("", [], "/no-ws-here"), 2000);
    assert.match(answer, /^HTTP\/1\.1 404 /);
  });

  it("closes the engine when the HTTP server closes", async () => {
    const { engine, server, port } = await startEngine(scope);
    const session = nextSession(engine);
    await pollingHandshake(port);
    const s = await session;
    // Upgraded WebSockets are not the HTTP server's to close: `server.close()` waits for
    // them, so the application closes the engine (or its sockets) first.
    server.closeAllConnections();
    const closed = once(server, "close");
    server.close();
    await closed;
    // engine.close() ran: the polling session now waits for a GET to carry its close packet.
    assert.equal(s.readyState, "closing");
    assert.equal(s.send("late"), false);
  });
});

describe("listen()", () => {
  it("serves the engine on its own port and 404s the rest", async () => {
    const engine = new Engine();
    const server = engine.listen(0);
    scope.add(null, () => closeServer(server, engine));
    await once(server, "listening");
    const port = portOf(server);
    assert.equal((await request(port, "/other")).status, 404);
    const client = await openClient(scope, `http://${HOST}:${port}`);
    await upgraded(client);
    const got = once<[unknown]>([...engine.sessions.values()][0]!, "message");
    client.send("via listen");
    assert.deepEqual(await got, ["via listen"]);
  });
});

describe("two engines on one server", () => {
  it("routes each path to its engine, upgrades included", async () => {
    const server = createServer((_req, res) => res.writeHead(418).end());
    const first = attach(server, { path: "/engine.io" });
    const second = attach(server, { path: "/other", nodeId: "second" });
    await new Promise<void>((r) => server.listen(0, HOST, r));
    scope.add(null, async () => {
      second.close();
      await closeServer(server, first);
    });
    const url = `http://${HOST}:${portOf(server)}`;
    for (const e of [first, second]) {
      e.on("connection", (s) => s.on("message", (d: string) => s.send(`${e.opts.path}:${d}`)));
    }
    const a = await openClient(scope, url, { path: "/engine.io" });
    const b = await openClient(scope, url, { path: "/other" });
    await Promise.all([upgraded(a), upgraded(b)]);
    assert.equal(first.clientsCount, 1);
    assert.equal(second.clientsCount, 1);
    assert.match([...second.sessions.keys()][0]!, /^second~/);
    const fromA = once<[string]>(a, "message");
    a.send("x");
    assert.deepEqual(await fromA, ["/engine.io:x"]);
    const fromB = once<[string]>(b, "message");
    b.send("y");
    assert.deepEqual(await fromB, ["/other:y"]);
    // Slow upgrades of one engine are not destroyed by the other.
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = attach(server, {
      path: "/slow",
      allowRequest: (_req, cb) => {
        gate.then(() => cb(null, true));
      },
    });
    scope.add(slow, (e) => e.close());
    const { WebSocket } = await import("ws");
    const ws = scope.add(
      new WebSocket(`ws://${HOST}:${portOf(server)}/slow/?EIO=4&transport=websocket`),
      (w) => w.terminate(),
    );
    ws.on("error", () => {});
    const timer = setTimeout(release, 1100);
    scope.add(timer, clearTimeout);
    const [open] = await once<[Buffer]>(ws, "message", 3000);
    assert.equal(parseOpen(open.toString()).upgrades.length, 0);
    await waitFor(() => slow.clientsCount === 1, 1000, "the slow engine's session");
    assert.equal(first.clientsCount, 1);
  });
});
