/**
 * `conn.request` / `socket.request`: the request that opened a session (WebSocket upgrade
 * or polling handshake) is let go after the handshake unless something could have touched
 * it (a hook, an attached property), and what is rebuilt on first read carries what apps
 * read (headers, url, method, the socket and its address), also after the connection
 * closed.
 */
import assert from "node:assert/strict";
import { IncomingMessage } from "node:http";
import { after, describe, it } from "node:test";
import type { Session, Socket } from "@switchyard/server";
import {
  PollingRequestRecord,
  RequestRecord,
  SHARED_VALUES_MAX,
  sharedHeaderValueCount,
  shareHeaderValues,
} from "../../src/engine/request-record.js";
import {
  nextSession,
  once,
  openClient,
  pollingSession,
  rawConnect,
  rawWsSession,
  readUntil,
  Scope,
  startEngine,
  upgraded,
  upgradeRequest,
  waitFor,
} from "../helpers.js";
import { connect, startServer } from "../socketio/helpers.js";

const scope = new Scope();
after(() => scope.close());

type WithUser = IncomingMessage & { user?: string; session?: { id: number } };

describe("the upgrade request of a WebSocket session", () => {
  it("is let go when nothing touched it, and rebuilt once on first read", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const next = nextSession(srv.engine);
    const socket = await rawConnect(scope, srv.port);
    socket.write(
      upgradeRequest("EIO=4&transport=websocket&x=1", ["User-Agent: probe/1", "Cookie: a=1"]),
    );
    await readUntil(socket, (t) => t.includes("\r\n\r\n"));
    const session = await next;
    const info = session.requestInfo;
    assert.ok(info instanceof RequestRecord, "a record, not the request");
    assert.equal(info.headers["user-agent"], "probe/1");
    assert.equal(info.url, "/engine.io/?EIO=4&transport=websocket&x=1");

    const req = session.request;
    assert.ok(req instanceof IncomingMessage);
    assert.equal(session.request, req, "built once");
    assert.equal(session.requestInfo, req, "the record is replaced by what was built");
    assert.equal(req.headers, info.headers, "the same headers object");
    assert.equal(req.headers.cookie, "a=1");
    assert.equal(req.url, info.url);
    assert.equal(req.method, "GET");
    assert.equal(req.httpVersion, "1.1");
    assert.equal(req.socket, info.socket);
    assert.equal(req.socket.remoteAddress, "127.0.0.1");
    assert.equal(req.connection, req.socket);
    const raw = req.rawHeaders;
    assert.equal(raw[raw.indexOf("user-agent") + 1], "probe/1", "rawHeaders from headers");
    (req as WithUser).user = "ada";
    assert.equal((session.request as WithUser).user, "ada", "what is attached stays");

    // After the client is gone, the rebuilt request still has what apps log.
    const late = await rawWsSession(scope, srv);
    const closed = once(late.session, "close");
    late.socket.destroy();
    await closed;
    assert.equal(late.session.remoteAddress, "127.0.0.1", "read while the socket was open");
    assert.equal(late.session.request.socket.remoteAddress, "127.0.0.1");
    assert.equal(late.session.request.headers.host, "127.0.0.1");
  });

  it("is kept whole when allowRequest saw it (what it attached stays readable)", async () => {
    const seen: IncomingMessage[] = [];
    const srv = await startEngine(
      scope,
      {
        allowRequest: (req, ok) => {
          (req as WithUser).user = "grace";
          seen.push(req);
          ok(null, true);
        },
      },
      { echo: false },
    );
    const { session } = await rawWsSession(scope, srv);
    assert.equal(session.request, seen[0], "the very request allowRequest had");
    assert.equal((session.request as WithUser).user, "grace");
  });

  it("is kept whole when an earlier upgrade listener put a property on it", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    srv.server.prependListener("upgrade", (req: IncomingMessage) => {
      (req as WithUser).session = { id: 7 };
    });
    const { session } = await rawWsSession(scope, srv);
    assert.ok(session.requestInfo instanceof IncomingMessage);
    assert.deepEqual((session.request as WithUser).session, { id: 7 });
  });

  it("is kept whole when a headers or initial_headers listener was handed it", async () => {
    for (const event of ["headers", "initial_headers"] as const) {
      const srv = await startEngine(scope, {}, { echo: false });
      const handed: IncomingMessage[] = [];
      srv.engine.on(event, (_headers: unknown, req: IncomingMessage) => {
        handed.push(req);
      });
      const { session } = await rawWsSession(scope, srv);
      assert.equal(session.request, handed[0], event);
    }
  });

  it("a polling session keeps a record of its handshake GET, rebuilt as a non-upgrade", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { session } = await pollingSession(srv);
    const info = session.requestInfo;
    assert.ok(info instanceof PollingRequestRecord);
    const req = session.request as IncomingMessage & { upgrade: boolean };
    assert.equal(req.method, "GET");
    assert.equal(req.upgrade, false);
    assert.equal(req.headers, info.headers);
    assert.equal(req.socket.remoteAddress, "127.0.0.1");
  });

  it("a polling session keeps its handshake GET whole when allowRequest saw it", async () => {
    const srv = await startEngine(
      scope,
      {
        allowRequest: (req, ok) => {
          (req as WithUser).user = "ada";
          ok(null, true);
        },
      },
      { echo: false },
    );
    const { session } = await pollingSession(srv);
    assert.equal((session.request as WithUser).user, "ada");
  });

  it("a session upgraded from polling keeps what it had of the polling handshake", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const next = nextSession(srv.engine);
    const client = await openClient(scope, srv.url, { transports: ["polling", "websocket"] });
    const session = await next;
    const info = session.requestInfo;
    assert.ok(info instanceof PollingRequestRecord);
    await upgraded(client);
    await waitFor(() => session.upgraded, 3000, "the server side of the upgrade");
    assert.equal(session.requestInfo, info);
    assert.equal(session.request.headers, info.headers);
    assert.match(session.request.url ?? "", /transport=polling/);
  });
});

describe("socket.request in the Socket.IO layer", () => {
  it("reads headers, address and what middlewares attach, on every transport", async () => {
    const srv = await startServer(scope);
    srv.io.use((socket, next) => {
      (socket.request as WithUser).user = `u-${socket.handshake.query.who}`;
      next();
    });
    for (const transports of [["websocket"], ["polling"]]) {
      const conn = once<[Socket]>(srv.io, "connection");
      await connect(scope, srv.url, {
        transports,
        query: { who: transports[0] },
        extraHeaders: { "x-probe": "1" },
      });
      const [socket] = await conn;
      assert.equal(socket.request.headers, socket.handshake.headers, transports[0]);
      assert.equal(socket.request.headers["x-probe"], "1");
      assert.equal(socket.request.socket.remoteAddress, "127.0.0.1");
      assert.equal((socket.request as WithUser).user, `u-${transports[0]}`);
      assert.equal(socket.request, socket.conn.request);
    }
  });

  it("a session's request read in a connection listener is the one later reads get", async () => {
    const srv = await startServer(scope);
    const first: IncomingMessage[] = [];
    srv.io.engine.on("connection", (conn: Session) => first.push(conn.request));
    const conn = once<[Socket]>(srv.io, "connection");
    await connect(scope, srv.url, { transports: ["websocket"] });
    const [socket] = await conn;
    await waitFor(() => first.length === 1, 3000, "engine connection");
    assert.equal(socket.request, first[0]);
  });
});

describe("header values shared between connections", () => {
  it("leaves every value as it was and holds a bounded number of them", () => {
    for (let i = 0; i < 3 * SHARED_VALUES_MAX; i++) {
      const headers = {
        host: "example.test",
        "user-agent": `agent/${i}`,
        cookie: `id=${i}`,
        "sec-websocket-version": "13",
      };
      const before = { ...headers };
      assert.equal(shareHeaderValues(headers), headers, "the same object");
      assert.deepEqual(headers, before);
      assert.ok(sharedHeaderValueCount() <= SHARED_VALUES_MAX, `bounded (${i})`);
    }
    const long = "x".repeat(10_000);
    const n = sharedHeaderValueCount();
    shareHeaderValues({ "user-agent": long });
    assert.equal(sharedHeaderValueCount(), n, "a long value is not held");
  });
});
