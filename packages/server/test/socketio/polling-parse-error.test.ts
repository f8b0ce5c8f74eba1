/**
 * A Socket.IO packet the server cannot decode, sent over long-polling: the session ends
 * with a clean close, as socket.io's — the packets already queued (the CONNECT reply) are
 * delivered on the next GET, then the close packet, and only then do requests get 400.
 * The server-side socket sees `error`, then `disconnect` with "parse error".
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import type { Socket } from "@switchyard/server";
import { httpGet, httpRequest, once, Scope, startServer } from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

describe("parse error on a polling session", () => {
  for (const [name, bad] of [
    ["an undecodable packet", "4abc"],
    ["a reserved event name", '42["disconnect"]'],
  ] as const) {
    it(`${name}: the CONNECT reply, then the close packet, then 400`, async () => {
      const srv = await startServer(scope);
      const open = await httpGet(srv.port, "/socket.io/?EIO=4&transport=polling");
      const sid = (JSON.parse(open.body.slice(1)) as { sid: string }).sid;
      const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
      const connection = once<[Socket]>(srv.io, "connection");
      assert.equal((await httpRequest(srv.port, path, { method: "POST", body: "40" })).status, 200);
      const [socket] = await connection;
      const events: string[] = [];
      socket.on("error", () => events.push("error"));
      socket.on("disconnect", (reason: string) => events.push(`disconnect: ${reason}`));
      assert.equal((await httpRequest(srv.port, path, { method: "POST", body: bad })).status, 200);
      const first = await httpGet(srv.port, path);
      assert.equal(first.status, 200);
      assert.match(first.body, /^40\{"sid":"[^"]+"\}$/);
      const second = await httpGet(srv.port, path);
      assert.equal(second.status, 200);
      assert.equal(second.body, "6\x1e1");
      assert.deepEqual(events, ["error", "disconnect: parse error"]);
      const after = await httpGet(srv.port, path);
      assert.equal(after.status, 400);
      assert.deepEqual(JSON.parse(after.body), { code: 1, message: "Session ID unknown" });
    });
  }
});
