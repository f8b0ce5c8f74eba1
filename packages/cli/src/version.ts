/** The version of `@switchyard/cli` (kept equal to package.json's by a test). */
export const CLI_VERSION = "0.1.0";
