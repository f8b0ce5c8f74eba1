import type { Browser, LaunchOptions } from "playwright-core";
import { chromium } from "playwright-core";
import { registerExitCleanup } from "./cleanup.js";
import { findProcesses, HARNESS_TAG_ENV, type ProcessInfo, signalAll } from "./proc-scan.js";
import { newTag } from "./process.js";
import { BINARIES, requireBinary } from "./require-binary.js";

/** Debian's Chromium (playwright-core cannot download browsers here). */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Flags for headless Chromium as root in a sandbox-less, offline container. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const tags = new WeakMap<Browser, string>();

/** Live OS processes of a browser from {@link launchChromium} (empty once it is closed). */
export function chromiumProcesses(browser: Browser): ProcessInfo[] {
  const tag = tags.get(browser);
  return tag === undefined ? [] : findProcesses({ tag });
}

/** Options of {@link launchChromium}. */
export interface ChromiumOptions {
  /** Appended to {@link CHROMIUM_ARGS}. @default [] */
  readonly args?: readonly string[];
  /** Other playwright launch options (`executablePath`, `args` and `env` are set here). */
  readonly launchOptions?: Omit<LaunchOptions, "executablePath" | "args" | "env">;
}

/**
 * Launches Debian's Chromium through playwright-core. The caller closes the browser;
 * if it does not, every Chromium process of this launch (found by the harness tag in
 * its environment) is SIGKILLed at exit of the test process.
 */
export async function launchChromium(options: ChromiumOptions = {}): Promise<Browser> {
  const executablePath = requireBinary({ ...BINARIES.chromium, paths: [CHROMIUM_PATH] });
  const tag = newTag("chromium");
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env[HARNESS_TAG_ENV] = tag;
  const unregister = registerExitCleanup(() => {
    signalAll(
      findProcesses({ tag }).map((p) => p.pid),
      "SIGKILL",
    );
  });
  try {
    const browser = await chromium.launch({
      ...options.launchOptions,
      executablePath,
      args: [...CHROMIUM_ARGS, ...(options.args ?? [])],
      env,
    });
    tags.set(browser, tag);
    browser.once("disconnected", unregister);
    return browser;
  } catch (error) {
    unregister();
    signalAll(
      findProcesses({ tag }).map((p) => p.pid),
      "SIGKILL",
    );
    throw error;
  }
}
