/**
 * Loads the configuration: a JSON file < environment variables (`SWITCHYARD_…`) <
 * command-line flags, merged key by key, then validated once by the zod schema. Every
 * failure is one line naming the key, where its value came from and what was expected
 * (with a did-you-mean for typos); never a stack trace.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { nearest } from "@switchyard/server/internal";
import type { z } from "zod";
import { AREA_SECRET_PATHS } from "../areas.js";
import { type Config, configSchema } from "./schema.js";

/** A configuration error: one line for the user, exit status 2. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Json = Record<string, unknown>;

/** Environment variables of the `SWITCHYARD_` prefix that are not configuration keys. */
const RESERVED_ENV = new Set([
  "SWITCHYARD_CONFIG",
  "SWITCHYARD_WORKERS_SECRET",
  "SWITCHYARD_HARNESS_TAG",
  "SWITCHYARD_HOST_PREFIX",
]);

/** Short flags and environment variables for the most used keys. */
export const ALIASES: Readonly<Record<string, string>> = {
  port: "listen.port",
  host: "listen.host",
  path: "listen.path",
  "log-level": "log.level",
  "log-format": "log.format",
  "shutdown-timeout": "shutdown.timeout",
};

/** Where a value came from, by dotted key: for error messages. */
type Origins = Map<string, string>;

/** The inputs of {@link loadConfig}. */
export interface ConfigSources {
  /** `--key value` pairs from the command line, already split (dotted keys or aliases). */
  flags?: ReadonlyArray<readonly [key: string, value: string]>;
  /** Path of a JSON configuration file. */
  file?: string;
  /** The environment. @default process.env */
  env?: NodeJS.ProcessEnv;
}

// ——— walking the schema (zod 4 internals: def.type / def.shape / def.innerType) ———

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  options?: z.ZodType[];
  in?: z.ZodType;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** The object shape of `schema` (through optional/default/prefault wrappers), if it is one. */
function shapeOf(schema: z.ZodType | undefined): Record<string, z.ZodType> | undefined {
  for (let s = schema, i = 0; s !== undefined && i < 10; i++) {
    const def = defOf(s);
    if (def.type === "object") return def.shape;
    if (def.type === "union") {
      const obj = def.options?.find((o) => shapeOf(o) !== undefined);
      return obj === undefined ? undefined : shapeOf(obj);
    }
    s = def.innerType ?? def.in;
  }
  return undefined;
}

const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, "");

/** Maps user-typed segments (`ping-interval`, `PING_INTERVAL`, `pingInterval`) to schema keys. */
function resolvePath(segments: readonly string[]): { path: string[]; leaf: z.ZodType | undefined } {
  const path: string[] = [];
  let schema: z.ZodType | undefined = configSchema;
  for (const seg of segments) {
    const shape = shapeOf(schema);
    const key =
      shape === undefined ? undefined : Object.keys(shape).find((k) => norm(k) === norm(seg));
    if (key === undefined || shape === undefined) {
      path.push(camel(seg));
      schema = undefined;
    } else {
      path.push(key);
      schema = shape[key];
    }
  }
  return { path, leaf: schema };
}

function camel(s: string): string {
  const lower = /^[A-Z0-9_]+$/.test(s) ? s.toLowerCase() : s;
  return lower.replace(/[-_]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * A text value (env or flag) as the type the key expects: JSON (`1000`, `true`,
 * `["a","b"]`), else the text itself, else a comma-separated list — the first the key's
 * schema accepts; failing all, the JSON or text form, whose error validation reports.
 */
function coerce(raw: string, leaf: z.ZodType | undefined): unknown {
  let json: unknown;
  let parsed = false;
  try {
    json = JSON.parse(raw);
    parsed = true;
  } catch {}
  if (leaf === undefined) return parsed ? json : raw;
  const candidates: unknown[] = parsed ? [json, raw] : [raw];
  candidates.push(raw.split(",").map((x) => x.trim()));
  for (const c of candidates) if (leaf.safeParse(c).success) return c;
  return parsed ? json : raw;
}

function setPath(target: Json, path: readonly string[], value: unknown): void {
  let o = target;
  for (const seg of path.slice(0, -1)) {
    const next = o[seg];
    if (typeof next !== "object" || next === null || Array.isArray(next)) o[seg] = {};
    o = o[seg] as Json;
  }
  o[path[path.length - 1] as string] = value;
}

function deepMerge(into: Json, from: Json): Json {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (
      typeof v === "object" &&
      v !== null &&
      !Array.isArray(v) &&
      typeof cur === "object" &&
      cur !== null &&
      !Array.isArray(cur)
    ) {
      deepMerge(cur as Json, v as Json);
    } else {
      into[k] = v;
    }
  }
  return into;
}

function recordOrigins(value: unknown, prefix: string, origin: string, origins: Origins): void {
  if (prefix !== "") origins.set(prefix, origin);
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      recordOrigins(v, prefix === "" ? k : `${prefix}.${k}`, origin, origins);
    }
  }
}

function readFile(file: string, origins: Origins): Json {
  const where = resolve(file);
  let text: string;
  try {
    text = readFileSync(where, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new ConfigError(`config file ${file}: cannot be read (${code})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ConfigError(`config file ${file}: expected a JSON object at the top level`);
  }
  recordOrigins(data, "", `file ${file}`, origins);
  return data as Json;
}

function readEnv(env: NodeJS.ProcessEnv, origins: Origins): Json {
  const out: Json = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith("SWITCHYARD_") || raw === undefined || RESERVED_ENV.has(name)) continue;
    const rest = name.slice("SWITCHYARD_".length);
    const alias = ALIASES[rest.toLowerCase().replace(/_/g, "-")];
    const segments = alias !== undefined ? alias.split(".") : rest.split("__");
    const { path, leaf } = resolvePath(segments);
    setPath(out, path, coerce(raw, leaf));
    origins.set(path.join("."), `env ${name}`);
  }
  return out;
}

function readFlags(flags: ReadonlyArray<readonly [string, string]>, origins: Origins): Json {
  const out: Json = {};
  for (const [flag, raw] of flags) {
    const dotted = ALIASES[flag] ?? flag;
    const { path, leaf } = resolvePath(dotted.split("."));
    setPath(out, path, coerce(raw, leaf));
    origins.set(path.join("."), `flag --${flag}`);
  }
  return out;
}

/** Loads, merges and validates; throws {@link ConfigError} (one line) on any problem. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const origins: Origins = new Map();
  const env = sources.env ?? process.env;
  const file = sources.file ?? env.SWITCHYARD_CONFIG;
  const merged: Json = {};
  if (file !== undefined && file !== "") deepMerge(merged, readFile(file, origins));
  deepMerge(merged, readEnv(env, origins));
  deepMerge(merged, readFlags(sources.flags ?? [], origins));
  return validateConfig(merged, origins);
}

/** Validates an already merged configuration object (e.g. built in code or in tests). */
export function validateConfig(data: unknown, origins: Origins = new Map()): Config {
  const result = configSchema.safeParse(data, { reportInput: true });
  if (!result.success) {
    const issue = result.error.issues[0] as z.core.$ZodIssue;
    throw new ConfigError(describeIssue(issue, origins));
  }
  const config = result.data as Config;
  crossCheck(config);
  return config;
}

/** Rules across sections that the per-key schema cannot express. */
function crossCheck(config: Config): void {
  if (config.forwarding !== undefined && config.bus === "memory" && config.workers === 1) {
    throw new ConfigError(
      'config: "forwarding" needs a cluster: set "bus" to a redis:// or amqp:// URL, or "workers" above 1',
    );
  }
  if (config.workers > 1 && config.listen.port === 0) {
    throw new ConfigError(
      'config: "listen.port" must be a fixed port with "workers" above 1 (the workers share it)',
    );
  }
}

function fromWhere(key: string, origins: Origins): string {
  for (let k = key; k !== ""; k = k.includes(".") ? k.slice(0, k.lastIndexOf(".")) : "") {
    const o = origins.get(k);
    if (o !== undefined) return ` (from ${o})`;
  }
  return "";
}

function schemaAt(path: readonly PropertyKey[]): z.ZodType | undefined {
  let schema: z.ZodType | undefined = configSchema;
  for (const seg of path) {
    const shape = shapeOf(schema);
    schema = shape?.[String(seg)];
    if (schema === undefined) return undefined;
  }
  return schema;
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** One line for one zod issue. */
export function describeIssue(issue: z.core.$ZodIssue, origins: Origins): string {
  const at = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    const full = at === "" ? key : `${at}.${key}`;
    const shape = shapeOf(schemaAt(issue.path));
    const near = shape === undefined ? undefined : nearest(key, Object.keys(shape));
    const hint =
      near === undefined ? "" : ` — did you mean "${at === "" ? near : `${at}.${near}`}"?`;
    return `config: unknown key "${full}"${fromWhere(full, origins)}${hint}`;
  }
  let expected = issue.message
    .replace(/^(Invalid input|Invalid option|Too small|Too big|Invalid string): /, "")
    .replace(/, received \w+$/, "");
  if (issue.code === "invalid_union") {
    const msgs = issue.errors
      .flat()
      .map((i) =>
        i.code === "invalid_value" ? `one of ${i.values.map(show).join(", ")}` : i.message,
      )
      .filter((m) => !m.startsWith("Invalid input: expected"));
    if (msgs.length > 0) expected = `expected ${[...new Set(msgs)].join(" or ")}`;
  } else if (issue.code === "custom") {
    expected = `expected ${issue.message}`;
  }
  if (!expected.startsWith("expected")) expected = `expected ${expected}`;
  const input = "input" in issue ? `, got ${show(issue.input)}` : "";
  const name = at === "" ? "(top level)" : `"${at}"`;
  return `config: ${name}${fromWhere(at, origins)}: ${expected}${input}`;
}

// ——— --print-config ———

/** Paths the areas declare secret as a whole (webhook headers…). */
const SECRET_PATHS = new Set(AREA_SECRET_PATHS);

/** Keys whose values are secrets (masked by --print-config and in logs). */
const SECRET_KEY = /(secret|password|passphrase|token|privatekey|apikey|adminkey|^key|keys)$/i;

/**
 * A copy of `value` with secrets masked: values of secret-named keys (`secret`,
 * `adminKey`, `keys`…) and the password part of URLs (`redis://user:***@host`).
 */
export function maskSecrets(value: unknown, key = "", path = key): unknown {
  if (SECRET_PATHS.has(path)) return maskAll(value);
  const secret = SECRET_KEY.test(key) && !/public/i.test(key);
  if (typeof value === "string") return secret ? "***" : maskUrl(value);
  if (Array.isArray(value)) {
    return value.map((v) => (secret && typeof v === "string" ? "***" : maskSecrets(v, "", path)));
  }
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        maskSecrets(v, k, path === "" ? k : `${path}.${k}`),
      ]),
    );
  }
  return value;
}

/** Every string inside `value` masked (a secret section such as webhook headers). */
function maskAll(value: unknown): unknown {
  if (typeof value === "string") return "***";
  if (Array.isArray(value)) return value.map(maskAll);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskAll(v)]));
  }
  return value;
}

function maskUrl(s: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(s)) return s;
  try {
    const u = new URL(s);
    if (u.password === "") return s;
    u.password = "***";
    return u.toString();
  } catch {
    return s;
  }
}
