export type { ChromiumOptions } from "./chromium.js";
export { CHROMIUM_ARGS, CHROMIUM_PATH, chromiumProcesses, launchChromium } from "./chromium.js";
export type { ExitCleanup } from "./cleanup.js";
export { registerExitCleanup, runExitCleanups } from "./cleanup.js";
export type { HaproxyBalance, HaproxyOptions, HaproxyServer } from "./haproxy.js";
export { haproxyConfig, haproxyConfigFromFile, startHaproxy } from "./haproxy.js";
export type { HttpAnswer } from "./http-probe.js";
export { answersWithToken, HEALTH_PATH, httpGet, httpStatus } from "./http-probe.js";
export type { NginxMode, NginxOptions, NginxServer } from "./nginx.js";
export { nginxConfig, nginxConfigFromFile, startNginx } from "./nginx.js";
export type {
  ForkedFixture,
  ForkFixtureOptions,
  NodeProcessOptions,
  NodeReply,
} from "./node-process.js";
export {
  forkFixture,
  NodeProcess,
  SOURCE_EXEC_ARGV,
  startNamedNodes,
  stopByDisconnect,
  waitForPeers,
} from "./node-process.js";
export { freePort, freePorts, isPortOpen, waitForPortClosed } from "./ports.js";
export type { PostgresOptions, PostgresServer } from "./postgres.js";
export { startPostgres } from "./postgres.js";
export type { ProcessInfo, ProcessMatch } from "./proc-scan.js";
export { findProcesses, HARNESS_TAG_ENV, signalAll } from "./proc-scan.js";
export type {
  ExitInfo,
  ManagedProcess,
  ReadinessProbe,
  StartProcessOptions,
  WaitReadyOptions,
} from "./process.js";
export { liveProcesses, newTag, startProcess, stopAllProcesses } from "./process.js";
export type { PythonOptions, PythonResult, RunPythonOptions } from "./python.js";
export { PYTHON, runPython, startPython } from "./python.js";
export type { RabbitOptions, RabbitServer } from "./rabbitmq.js";
export { amqpHandshake, startRabbitMQ } from "./rabbitmq.js";
export type { RedisCommandOptions, RedisOptions, RedisReply, RedisServer } from "./redis.js";
export { redisCommand, redisPing, startRedis } from "./redis.js";
export type { BinarySpec } from "./require-binary.js";
export {
  BINARIES,
  MissingDependencyError,
  PYTHON_MODULE_PACKAGES,
  requireBinary,
  requirePythonModules,
} from "./require-binary.js";
export type { RestartableControl, ServiceControl } from "./service.js";
export type { TempDir } from "./tmp.js";
export { makeTempDir, TEMP_DIR_PREFIX } from "./tmp.js";
export type { ProxyServer, Upstream } from "./upstream.js";

// ——— Cluster conformance ———

export { Inbox, runFixture, trapUnhandled } from "./bus-helpers.js";
export type { ClusterConformanceOptions, ConformanceBroker } from "./cluster-conformance.js";
export { runClusterConformance } from "./cluster-conformance.js";
export { type ClusterFaultsOptions, runClusterFaults } from "./cluster-faults.js";
export type { EmitterScriptScenarioOptions } from "./emitter-script-scenario.js";
export { runEmitterScriptScenario } from "./emitter-script-scenario.js";
export { Scope, sleep, waitFor, within } from "./wait.js";
