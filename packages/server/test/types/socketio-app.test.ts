/**
 * Drop-in for TypeScript users: one typical strict socket.io 4.8 app
 * (fixtures/socketio-app.ts) must compile unchanged against "socket.io" and, with only
 * its import changed, against "@switchyard/server" — same generics, same defaults
 * (`SocketData = any`, `EmitEvents = ListenEvents`), same inferred types.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const ts = require("typescript") as typeof import("typescript");

const original = fileURLToPath(new URL("./fixtures/socketio-app.ts", import.meta.url));
/** Exists only in memory, beside the original so both resolve modules alike. */
const swapped = original.replace(/socketio-app\.ts$/, "switchyard-app.ts");

function diagnostics(): Map<string, string[]> {
  const source = readFileSync(original, "utf8");
  const replaced = source.replace(/from "socket\.io";/, 'from "@switchyard/server";');
  assert.notEqual(replaced, source, 'the fixture imports from "socket.io"');
  const options: import("typescript").CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    // How this repo resolves its workspaces without a build; an installed package
    // resolves to its dist types instead.
    customConditions: ["switchyard-source"],
    types: ["node"],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (f) => f === swapped || fileExists.call(host, f);
  host.readFile = (f) => (f === swapped ? replaced : readFile.call(host, f));
  host.getSourceFile = (f, lang, ...rest) =>
    f === swapped
      ? ts.createSourceFile(f, replaced, lang, true)
      : getSourceFile.call(host, f, lang, ...rest);
  const program = ts.createProgram([original, swapped], options, host);
  const out = new Map<string, string[]>([
    [original, []],
    [swapped, []],
  ]);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const file = d.file?.fileName;
    const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    const where =
      d.file !== undefined && d.start !== undefined
        ? `:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}`
        : "";
    // Errors inside the libraries are their own suites' business: an installed package
    // is compiled from its declarations, with skipLibCheck.
    if (file !== undefined && file !== swapped && file !== original) continue;
    out.get(file ?? original)!.push(`TS${d.code}${where} ${text}`);
  }
  return out;
}

test("a strict socket.io 4.8 app compiles against socket.io and, import swapped, against @switchyard/server", () => {
  const out = diagnostics();
  assert.deepEqual(out.get(original), [], "the fixture itself must be a valid socket.io app");
  assert.deepEqual(out.get(swapped), [], "after the import swap");
});
