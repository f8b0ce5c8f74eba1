/**
 * This area's events reach the Prometheus series when metrics are installed: auth
 * refusals by code, policy disconnects by code, webhook latency by hook and outcome.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import type { Socket as ClientSocket } from "socket.io-client";
import { installAuth } from "../../src/auth/auth.js";
import { ClientErrorCode } from "../../src/auth/codes.js";
import { installLimits } from "../../src/auth/limits.js";
import { authSchema, limitsSchema } from "../../src/auth/schema.js";
import { SwitchyardMetrics } from "../../src/metrics/index.js";
import {
  type Backend,
  client,
  connected,
  next,
  refusedCode,
  startBackend,
  startContext,
  type TestContext,
} from "./context.js";

let t: TestContext;
let backend: Backend;
let metrics: SwitchyardMetrics;
let opened: ClientSocket[];
let handles: { close(): void }[];

beforeEach(async () => {
  t = await startContext();
  backend = await startBackend();
  metrics = new SwitchyardMetrics(t.ctx.io, { defaultMetrics: false });
  opened = [];
  handles = [];
});
afterEach(async () => {
  for (const s of opened) s.close();
  for (const h of handles) h.close();
  metrics.close();
  await t.close();
  await backend.close();
});

/** The exposition lines that contain every one of `parts`. */
async function lines(...parts: string[]): Promise<string[]> {
  const text = await metrics.registry.metrics();
  return text.split("\n").filter((l) => !l.startsWith("#") && parts.every((p) => l.includes(p)));
}

test("refusals by code, webhook latency, rate-limit disconnects show up in /metrics series", async () => {
  backend.handler = (call) => ({
    json: { allow: (call.body as { auth: { ok?: boolean } }).auth.ok === true },
  });
  handles.push(
    await installAuth(t.ctx, authSchema.parse({ connectWebhook: { url: backend.url } })),
  );
  handles.push(
    await installLimits(
      t.ctx,
      limitsSchema.parse({ eventsPerSecond: 1, eventsBurst: 2, bytesPerSecond: 0 }),
    ),
  );
  assert.equal(
    await refusedCode(client(t.url, opened, { auth: { ok: false } })),
    ClientErrorCode.Denied,
  );
  const s = client(t.url, opened, { auth: { ok: true } });
  await connected(s);
  const gone = next(s, "disconnect");
  for (let i = 0; i < 10; i++) s.emit("x");
  await gone;
  const refusal = await lines("refusals_total", `reason="${ClientErrorCode.Denied}"`);
  assert.equal(refusal.length, 1, refusal.join("\n"));
  assert.match(refusal[0]!, / 1$/);
  const limited = await lines("policy_disconnects_total", ClientErrorCode.RateLimited);
  assert.equal(limited.length, 1, limited.join("\n"));
  assert.match(limited[0]!, / 1$/);
  const hook = await lines("_count", 'hook="connect"', 'outcome="ok"');
  assert.equal(hook.length, 1, hook.join("\n"));
  assert.match(hook[0]!, / 2$/);
});
