/**
 * Switchyard behind real haproxy and nginx, over Redis: three node processes, every
 * shipped `deploy/` config (rewritten only for addresses), and real socket.io-client
 * clients with polling only, polling → upgrade and WebSocket only, each from its own
 * 127.x.y.z address, or many behind one address (one NAT). Every client connects, every
 * ack comes from the client's own session, every broadcast arrives once and in order,
 * and no node holds more than 40 % of the sessions (lb-suite.ts). The nodes forward
 * requests for each other's sessions (docs/forwarding.md).
 */
import { after, before } from "node:test";
import { type RedisServer, Scope, startRedis } from "@switchyard/test-harness";
import { type LbNode, SECRET, startNodes } from "./lb-helpers.js";
import { ALL_BALANCERS, behind, type MatrixContext } from "./lb-suite.js";

let redis: RedisServer;
let nodes: LbNode[] = [];
const suite = new Scope(15_000);

before(async () => {
  redis = suite.add(await startRedis(), (r) => r.stop());
  // `cookie: true` for nginx's `hash $cookie_io`; the other balancers ignore the cookie.
  nodes = await startNodes(suite, 3, {
    bus: "redis",
    url: redis.url,
    cookie: true,
    secret: SECRET,
  });
});
after(() => suite.close());

const ctx: MatrixContext = { suite, nodes: () => nodes };
for (const balancer of ALL_BALANCERS) behind(ctx, balancer);
