#!/usr/bin/env node
// The `switchyard` command. Loads the built CLI (dist); in this repository, tests run the
// TypeScript sources directly.
import { main } from "../dist/main.js";

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === "number") process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
