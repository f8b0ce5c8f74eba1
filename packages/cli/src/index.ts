/**
 * `@switchyard/cli`: the standalone server (`switchyard serve`). Public exports only.
 */
export const CLI_VERSION = "0.1.0";
