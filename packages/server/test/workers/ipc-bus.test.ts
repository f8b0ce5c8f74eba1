/**
 * The IPC bus on its own: a relay in this process and two real forked processes (one
 * subscriber, one publisher that also sends malformed bus messages), plus option
 * validation of IpcBus and runWorkers.
 */
import assert from "node:assert/strict";
import { type ChildProcess, fork } from "node:child_process";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  IpcBus,
  type IpcEndpoint,
  IpcRelay,
  runWorkers,
  type SwitchyardError,
} from "@switchyard/server";
import { waitFor } from "@switchyard/test-harness";

const CHILD = fileURLToPath(new URL("ipc-child.ts", import.meta.url));
const children: ChildProcess[] = [];

function start(role: "sub" | "pub"): { child: ChildProcess; reports: Record<string, unknown>[] } {
  const child = fork(CHILD, [], {
    execArgv: ["--conditions=switchyard-source", "--import", "tsx"],
    env: { ...process.env, ROLE: role },
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.push(child);
  const reports: Record<string, unknown>[] = [];
  child.on("message", (m: { test?: boolean }) => {
    if (m.test === true) reports.push(m as Record<string, unknown>);
  });
  return { child, reports };
}

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

describe("IpcBus over a relay, with real forked processes", () => {
  it("relays publishes to subscribers in order, counts malformed messages, never throws", async () => {
    const relay = new IpcRelay();
    const sub = start("sub");
    relay.attach(sub.child as unknown as IpcEndpoint);
    await waitFor(() => sub.reports.some((r) => r.subscribed === true), 20_000, "subscribed");
    const pub = start("pub");
    relay.attach(pub.child as unknown as IpcEndpoint);
    await waitFor(() => pub.reports.some((r) => r.closed === true), 20_000, "publisher done");
    await waitFor(() => sub.reports.filter((r) => "got" in r).length === 3, 5000, "3 payloads");
    assert.deepEqual(
      sub.reports.filter((r) => "got" in r),
      ["n0", "n1", "n2"].map((got) => ({ test: true, got, channel: "news", binary: true })),
    );
    const flushed = pub.reports.find((r) => r.flushed === true)!.stats as Record<string, number>;
    assert.equal(flushed.published, 3);
    assert.equal(flushed.dropped, 0);
    const closed = pub.reports.find((r) => r.closed === true)!.stats as Record<string, number>;
    assert.equal(closed.dropped, 1, "a publish after close() is dropped and counted");
    const s = relay.stats;
    assert.equal(s.malformed, 5, "every malformed bus message counted");
    assert.equal(s.published, 3);
    assert.equal(s.delivered, 3, "the publisher did not subscribe: only the subscriber got them");
    // A worker that goes away leaves the relay.
    sub.child.send({ exit: true });
    pub.child.send({ exit: true });
    await waitFor(() => relay.stats.workers === 0, 5000, "workers detached");
  });

  it("refuses unknown options and a process without an IPC channel", () => {
    assert.throws(
      () => new IpcBus({ maxInflight: 4 } as never),
      (e: SwitchyardError) => e.code === "SY_ERR_UNKNOWN_OPTION" && /maxInFlight/.test(e.message),
    );
    assert.throws(
      () => new IpcBus({}, {} as IpcEndpoint),
      (e: SwitchyardError) => /IPC channel/.test(e.message),
    );
  });
});

describe("runWorkers options", () => {
  it("are validated before anything is forked", async () => {
    const start = () => {
      throw new Error("never started");
    };
    await assert.rejects(
      runWorkers({ workerz: 2 } as never, start),
      (e: SwitchyardError) => e.code === "SY_ERR_UNKNOWN_OPTION" && /workers/.test(e.message),
    );
    await assert.rejects(
      runWorkers({ workers: 0 }, start),
      (e: SwitchyardError) => e.code === "SY_ERR_INVALID_OPTION" && /workers/.test(e.message),
    );
    await assert.rejects(
      runWorkers({ shutdownTimeout: -1 }, start),
      (e: SwitchyardError) => e.code === "SY_ERR_INVALID_OPTION",
    );
    await assert.rejects(
      runWorkers({ bus: "redis" } as never, start),
      (e: SwitchyardError) => e.code === "SY_ERR_INVALID_OPTION" && /bus/.test(e.message),
    );
  });
});
