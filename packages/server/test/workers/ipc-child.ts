/**
 * A forked process on an IpcBus, for ipc-bus.test.ts. ROLE=sub subscribes to "news" and
 * reports each payload to the parent; ROLE=pub first sends malformed bus messages (the
 * relay must count and ignore them), then publishes "news" payloads, flushes, and
 * reports.
 */
import { IpcBus } from "@switchyard/server";

const bus = new IpcBus();
const report = (m: object): void => void process.send?.({ test: true, ...m });
await bus.ready();
if (process.env.ROLE === "sub") {
  await bus.subscribe("news", (channel, payload) =>
    report({ got: payload.toString(), channel, binary: Buffer.isBuffer(payload) }),
  );
  report({ subscribed: true });
} else {
  process.send?.({ sy: "ipc-bus", t: "pub", c: 42, p: Buffer.from("x") });
  process.send?.({ sy: "ipc-bus", t: "pub", c: "news", p: "not bytes" });
  process.send?.({ sy: "ipc-bus", t: "sub", c: "news" }); // no id
  process.send?.({ sy: "ipc-bus", t: "sub", id: 1, c: "x".repeat(5000) });
  process.send?.({ sy: "ipc-bus", t: "what" });
  process.send?.({ app: "own traffic" }); // not the bus's: passes untouched
  for (let i = 0; i < 3; i++) bus.publish("news", Buffer.from(`n${i}`));
  await bus.flush();
  report({ flushed: true, stats: bus.stats });
  await bus.close();
  // After close, a publish is dropped and counted, never thrown.
  bus.publish("news", Buffer.from("late"));
  report({ closed: true, stats: bus.stats });
}
process.on("message", (m: { exit?: boolean }) => {
  if (m.exit === true) process.exit(0);
});
