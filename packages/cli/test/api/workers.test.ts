// The API under `switchyard serve --workers 2`: a retried publish whose attempts land on
// different workers (fresh connections, which the primary deals round-robin) is delivered
// once — the key travels on the workers' bus before the broadcast does.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { after, afterEach, test } from "node:test";
import { freePort, makeTempDir, waitFor, within } from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as ioc } from "socket.io-client";
import { ServeProcesses } from "../serve-process.ts";

const KEY = "workers-key-0123456789abcdef";

const dir = makeTempDir("cli-api-workers");
const servers = new ServeProcesses(5000);
const opened: ClientSocket[] = [];
after(() => dir.remove());
afterEach(async () => {
  for (const c of opened.splice(0)) c.close();
  await servers.stopAll();
});

/** One POST on a connection of its own (no keep-alive), so the primary deals it anew. */
function post(
  port: number,
  path: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = JSON.stringify(body);
  return within(
    new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port,
          path,
          method: "POST",
          agent: false,
          headers: {
            authorization: `Bearer ${KEY}`,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(text),
          },
        },
        (res) => {
          let data = "";
          res.on("data", (c: Buffer) => {
            data += c.toString();
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(data) }));
        },
      );
      req.on("error", reject);
      req.end(text);
    }),
    10_000,
    `POST ${path}`,
  );
}

test("serve --workers 2: an idempotency key is shared between the workers", async () => {
  const port = await freePort();
  const file = join(dir.path, "workers.json");
  writeFileSync(
    file,
    JSON.stringify({ api: { keys: [{ name: "w", key: KEY, scopes: ["publish"] }] } }),
  );
  await servers.start({
    port,
    args: ["--workers", "2", "--config", file],
    name: "switchyard serve --workers 2 (api)",
    env: { SWITCHYARD_LOG_FORMAT: "json" },
    readyTimeoutMs: 40_000,
  });
  const url = `http://127.0.0.1:${port}`;
  const got: unknown[][] = [];
  for (let i = 0; i < 4; i++) {
    const c = ioc(url, { transports: ["websocket"], reconnection: false, forceNew: true });
    opened.push(c);
    const events: unknown[] = [];
    got.push(events);
    c.on("idem", (x: unknown) => events.push(x));
    await within(
      new Promise<void>((resolve) => c.once("connect", () => resolve())),
      10_000,
      "connect",
    );
  }
  // Workers learn of each other's sockets through their bus: wait until a publish reaches all.
  let n = 0;
  await waitFor(
    async () => {
      await post(port, "/api/v1/publish", { event: "idem", data: `warm-${n++}` });
      return got.every((e) => e.length > 0);
    },
    15_000,
    "every client reachable",
  );
  for (const e of got) e.length = 0;

  const body = { event: "idem", data: "once", idempotencyKey: "retry-me" };
  const first = await post(port, "/api/v1/publish", body);
  assert.deepEqual(first.body, { ok: true, duplicate: false });
  await waitFor(() => got.every((e) => e.includes("once")), 10_000, "first attempt delivered");
  const retries = [];
  for (let i = 0; i < 4; i++)
    retries.push((await post(port, "/api/v1/publish", body)).body.duplicate);
  assert.deepEqual(retries, [true, true, true, true]);
  await post(port, "/api/v1/publish", { event: "idem", data: "end" });
  await waitFor(() => got.every((e) => e.includes("end")), 10_000, "marker delivered");
  // (a late warm-up publish may still arrive in between: only ours are counted)
  for (const e of got) {
    assert.deepEqual(
      e.filter((x) => !String(x).startsWith("warm-")),
      ["once", "end"],
    );
  }
});
