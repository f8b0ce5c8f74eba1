/**
 * The `Server` lifecycle: construction forms, attach/listen, a REST app on the same
 * port, close() (and a client reconnecting after a restart on the same port),
 * connectTimeout, and the CORS origin list applied to WebSocket upgrades.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { afterEach, describe, it } from "node:test";
import { InvalidOptionError, Server, type Socket } from "@switchyard/server";
import { Socket as EngineClient } from "engine.io-client";
import { WebSocket } from "ws";
import {
  client,
  closeIo,
  connect,
  connected,
  HOST,
  httpGet,
  listen,
  once,
  pair,
  portOf,
  quietPeriod,
  reason,
  Scope,
  startServer,
  TRANSPORT_MODES,
  waitFor,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

function rest(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === "/api/health") {
    res.writeHead(200, { "Content-Type": "application/json" }).end('{"ok":true}');
    return;
  }
  res.writeHead(404).end("no route");
}

describe("Server construction", () => {
  it("new Server(httpServer, opts) serves on the http server's port", async () => {
    const httpServer = createServer();
    const io = scope.add(new Server(httpServer, { pingInterval: 1000 }), closeIo);
    assert.equal(io.httpServer, httpServer);
    assert.equal(io.engine.opts.pingInterval, 1000);
    assert.equal(io.engine.opts.path, "/socket.io");
    await listen(httpServer);
    await connect(scope, `http://${HOST}:${portOf(httpServer)}`);
    assert.equal(io.engine.clientsCount, 1);
  });

  it("new Server(opts) + attach(httpServer)", async () => {
    const io = scope.add(new Server({ path: "/rt" }), closeIo);
    assert.equal(io.httpServer, undefined);
    const httpServer = createServer();
    assert.equal(io.attach(httpServer), io);
    await listen(httpServer);
    const c = await connect(scope, `http://${HOST}:${portOf(httpServer)}`, { path: "/rt" });
    assert.equal(c.connected, true);
  });

  it("new Server() + listen(port, host) creates the http server", async () => {
    const io = scope.add(new Server(), closeIo);
    assert.equal(io.listen(0, HOST), io);
    const httpServer = io.httpServer!;
    assert.ok(httpServer !== undefined);
    if (!httpServer.listening) await once(httpServer, "listening");
    const c = await connect(scope, `http://${HOST}:${portOf(httpServer)}`);
    assert.equal(c.connected, true);
    // Paths outside the endpoint are answered 404 when there is no app.
    assert.equal((await httpGet(portOf(httpServer), "/elsewhere")).status, 404);
  });

  it("attach() refuses an Express-style handler and late options, accepts {}", async () => {
    const io = scope.add(new Server(), closeIo);
    assert.throws(
      () => io.attach(((_req: IncomingMessage, res: ServerResponse) => res.end()) as never),
      (err: unknown) =>
        err instanceof InvalidOptionError && /createServer\(app\)/.test(err.message),
    );
    assert.throws(
      () => new Server(((_req: IncomingMessage, res: ServerResponse) => res.end()) as never),
      /createServer\(app\)/,
    );
    assert.throws(
      () => io.attach(createServer(), { cors: { origin: "https://x.example" } }),
      (err: unknown) => err instanceof InvalidOptionError && /constructor/.test(err.message),
    );
    assert.throws(() => io.listen(0, { pingInterval: 5 }), InvalidOptionError);
    const httpServer = createServer();
    io.attach(httpServer, {});
    await listen(httpServer);
    await connect(scope, `http://${HOST}:${portOf(httpServer)}`);
  });

  it("validates options and names the bad one", () => {
    assert.throws(
      () => new Server({ connectTimeout: -1 }),
      (err: unknown) => {
        assert.ok(err instanceof InvalidOptionError);
        assert.match(err.message, /connectTimeout/);
        return true;
      },
    );
    assert.throws(() => new Server({ pingInterval: "x" as unknown as number }), /pingInterval/);
    assert.throws(() => new Server({ parser: {} as never }), /parser/);
    assert.throws(
      () => new Server({ cleanupEmptyChildNamespaces: "yes" as unknown as boolean }),
      /cleanupEmptyChildNamespaces/,
    );
  });

  it("REST routes on the same http server keep working", async () => {
    const srv = await startServer(scope, {}, rest);
    const health = await httpGet(srv.port, "/api/health");
    assert.equal(health.status, 200);
    assert.equal(health.body, '{"ok":true}');
    assert.equal((await httpGet(srv.port, "/api/nothing")).status, 404);
    // While clients are connected too.
    for (const mode of TRANSPORT_MODES) await pair(scope, srv, mode);
    assert.equal((await httpGet(srv.port, "/api/health")).status, 200);
    // The endpoint itself is not handed to the app.
    const engineAnswer = await httpGet(srv.port, "/socket.io/?EIO=4&transport=polling");
    assert.equal(engineAnswer.status, 200);
    assert.match(engineAnswer.body, /^0\{"sid"/);
  });

  it("serves the browser client unless serveClient is false", async () => {
    const srv = await startServer(scope);
    const js = await httpGet(srv.port, "/socket.io/socket.io.min.js");
    assert.equal(js.status, 200);
    assert.match(js.body, /io|Socket/);
    const off = await startServer(scope, { serveClient: false }, rest);
    // Still under the engine's path: the engine's own answer, not the app's 404.
    assert.equal((await httpGet(off.port, "/socket.io/socket.io.min.js")).status, 400);
  });

  it("a request listener added after attaching still serves its routes", async () => {
    const httpServer = createServer();
    const io = scope.add(new Server(httpServer), closeIo);
    httpServer.on("request", rest);
    await listen(httpServer);
    const health = await httpGet(portOf(httpServer), "/api/health");
    assert.equal(health.status, 200);
    assert.equal(health.body, '{"ok":true}');
    await connect(scope, `http://${HOST}:${portOf(httpServer)}`);
    assert.equal(io.engine.clientsCount, 1);
  });
});

describe("Server close()", () => {
  for (const mode of TRANSPORT_MODES) {
    it(`disconnects sockets with 'server shutting down' (${mode.name})`, async () => {
      const srv = await startServer(scope, {}, rest);
      const { client: c, socket } = await pair(scope, srv, mode);
      const nsp = srv.io.of("/chat");
      const chatSide = once<[Socket]>(nsp, "connection");
      c.io.socket("/chat").connect();
      const [chat] = await chatSide;
      const serverReasons = Promise.all([reason(socket), reason(chat)]);
      const clientReason = reason(c);
      let callbackCalled = false;
      await srv.io.close(() => {
        callbackCalled = true;
      });
      assert.deepEqual(await serverReasons, ["server shutting down", "server shutting down"]);
      assert.equal(callbackCalled, true);
      assert.equal(srv.httpServer.listening, false);
      // The client was not told to stay away, so it will try to reconnect (a polling
      // client whose poll is cut sees "transport error", as with socket.io).
      assert.match(await clientReason, /^transport (close|error)$/);
    });
  }

  it("a client reconnects after the server restarts on the same port", async () => {
    const srv = await startServer(scope);
    const c = client(scope, srv.url, {
      transports: ["websocket"],
      reconnection: true,
      reconnectionDelay: 20,
      reconnectionDelayMax: 50,
      randomizationFactor: 0,
    });
    await connected(c);
    const firstId = c.id;
    const clientReason = reason(c);
    await closeIo(srv.io);
    assert.equal(await clientReason, "transport close");

    const httpServer = createServer();
    const io2 = scope.add(new Server(httpServer), closeIo);
    const back = once<[Socket]>(io2, "connection", 5000);
    await listen(httpServer, srv.port);
    const reconnected = once(c, "connect", 5000);
    const [socket] = await back;
    await reconnected;
    assert.equal(c.connected, true);
    assert.notEqual(c.id, firstId);
    assert.equal(socket.id, c.id);
    const echo = once(c, "welcome-back");
    socket.emit("welcome-back", 1);
    assert.deepEqual(await echo, [1]);
  });

  it("close(cb) answers as socket.io does: ERR_SERVER_NOT_RUNNING when not listening", async () => {
    const notListening = new Server(createServer());
    const err = await new Promise<Error | undefined>((resolve) => void notListening.close(resolve));
    assert.equal((err as NodeJS.ErrnoException | undefined)?.code, "ERR_SERVER_NOT_RUNNING");

    const srv = await startServer(scope);
    const first = await new Promise<Error | undefined>((resolve) => void srv.io.close(resolve));
    assert.equal(first, undefined);
    const again = await new Promise<Error | undefined>((resolve) => void srv.io.close(resolve));
    assert.equal((again as NodeJS.ErrnoException | undefined)?.code, "ERR_SERVER_NOT_RUNNING");
    // Without any HTTP server there is nothing to report.
    const bare = new Server();
    assert.equal(await new Promise((resolve) => void bare.close(resolve)), undefined);
  });

  it("io.close(() => io.listen(port)) serves again: clients of both transports reconnect", async () => {
    const io = scope.add(new Server(), closeIo);
    io.on("connection", (socket: Socket) => {
      socket.on("echo", (x: unknown, cb: (y: unknown) => void) => cb(x));
    });
    io.listen(0, HOST);
    await once(io.httpServer!, "listening");
    const port = portOf(io.httpServer!);
    const reconnecting = {
      reconnection: true,
      reconnectionDelay: 20,
      reconnectionDelayMax: 50,
      randomizationFactor: 0,
    };
    const clients = [
      client(scope, `http://${HOST}:${port}`, { transports: ["websocket"], ...reconnecting }),
      client(scope, `http://${HOST}:${port}`, { transports: ["polling"], ...reconnecting }),
    ];
    await Promise.all(clients.map((c) => connected(c)));
    const firstIds = clients.map((c) => c.id);

    for (let round = 0; round < 2; round++) {
      const back = clients.map((c) => once(c, "connect", 5000));
      const restarted = await new Promise<Error | undefined>(
        (resolve) =>
          void io.close((err) => {
            io.listen(port, HOST);
            resolve(err);
          }),
      );
      assert.equal(restarted, undefined);
      await Promise.all(back);
      for (const c of clients) {
        assert.equal(await c.timeout(2000).emitWithAck("echo", round), round);
      }
    }
    assert.equal(io.engine.clientsCount, 2);
    assert.notDeepEqual(
      clients.map((c) => c.id),
      firstIds,
    );
    // Broadcasts and rooms work on the restarted server.
    io.socketsJoin("after");
    const got = clients.map((c) => once(c, "news"));
    io.to("after").emit("news", "again");
    assert.deepEqual(await Promise.all(got), [["again"], ["again"]]);
  });
});

describe("connectTimeout", () => {
  it("closes an engine connection that never sends CONNECT", async () => {
    const srv = await startServer(scope, { connectTimeout: 150 });
    const raw = scope.add(
      new EngineClient(srv.url, { path: "/socket.io", transports: ["websocket"] }),
      (s) => s.close(),
    );
    await once(raw, "open");
    const opened = Date.now();
    const [why] = await once<[string]>(raw, "close", 3000);
    const elapsed = Date.now() - opened;
    assert.ok(elapsed >= 100, `closed after ${elapsed} ms`);
    assert.ok(typeof why === "string");
    assert.equal(srv.io.engine.clientsCount, 0);
    // The server closed it (engine.io's reason for a server-side close).
    assert.equal(srv.io.engine.stats.closes["forced close"], 1);
  });

  it("keeps a connection that joined a namespace in time", async () => {
    const srv = await startServer(scope, { connectTimeout: 100 });
    const { client: c, socket } = await pair(scope, srv, TRANSPORT_MODES[0]!);
    // Past the moment the timer would have fired, the connection still works.
    await quietPeriod(150);
    const got = once(c, "still");
    socket.emit("still", "here");
    assert.deepEqual(await got, ["here"]);
  });
});

describe("CORS", () => {
  it("refuses a WebSocket upgrade from a foreign Origin (403) and accepts a listed one", async () => {
    const srv = await startServer(scope, { cors: { origin: ["https://good.example"] } });
    const url = `ws://${HOST}:${srv.port}/socket.io/?EIO=4&transport=websocket`;
    const bad = scope.add(
      new WebSocket(url, { headers: { Origin: "https://evil.example" } }),
      (w) => w.terminate(),
    );
    bad.on("error", () => {});
    const [, res] = await once<[unknown, IncomingMessage]>(bad, "unexpected-response");
    assert.equal(res.statusCode, 403);
    res.resume();

    const good = scope.add(
      new WebSocket(url, { headers: { Origin: "https://good.example" } }),
      (w) => w.terminate(),
    );
    good.on("error", () => {});
    await once(good, "open");
    assert.equal(srv.io.engine.clientsCount, 1);
    // A socket.io-client from the listed origin (Node clients send no Origin by default).
    await connect(scope, srv.url, {
      transports: ["websocket"],
      extraHeaders: { Origin: "https://good.example" },
    });
  });

  it("refuses polling from a foreign Origin", async () => {
    const srv = await startServer(scope, { cors: { origin: "https://good.example" } });
    const c = client(scope, srv.url, {
      transports: ["polling"],
      extraHeaders: { Origin: "https://evil.example" },
    });
    await assert.rejects(connected(c));
    assert.equal(srv.io.engine.clientsCount, 0);
    await waitFor(
      () => (srv.io.engine.stats.connectionErrors[4] ?? 0) >= 1,
      1000,
      "a counted refusal",
    );
  });
});
