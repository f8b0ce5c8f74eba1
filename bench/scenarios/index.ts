import { cluster } from "./cluster.js";
import { connections } from "./connections.js";
import { polling } from "./polling.js";
import type { Scenario } from "./types.js";
import { websocket } from "./websocket.js";

/** In running order. */
export const scenarios: Scenario[] = [websocket, connections, polling, cluster];
