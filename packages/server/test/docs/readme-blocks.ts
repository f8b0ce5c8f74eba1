/**
 * Finds the TypeScript/JavaScript code blocks of the project's Markdown files and reads
 * the HTML comments that say how each is checked (see readme-blocks.test.ts for the
 * conventions). Pure: no I/O but reading the files it is given.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/** Languages whose blocks are checked, and the file extension each becomes. */
const LANGS: Readonly<Record<string, ".ts" | ".mjs">> = {
  ts: ".ts",
  typescript: ".ts",
  js: ".mjs",
  javascript: ".mjs",
  mjs: ".mjs",
};

export interface CodeBlock {
  /** Path of the Markdown file, relative to the repository root. */
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly lang: string;
  readonly ext: ".ts" | ".mjs";
  /** The code, without the fences (and without the fence's indentation). */
  readonly code: string;
  /** Names the block uses without declaring them (`<!-- ambient: io, socket -->`). */
  readonly ambient: readonly string[];
  /** `<!-- typecheck-only -->`, or implied by `ambient`: a fragment cannot run. */
  readonly typecheckOnly: boolean;
  /** `<!-- run: <scenario> -->`: run by the named scenario instead of as a script. */
  readonly scenario: string | undefined;
}

/** `file:line` of a block, as failures report it. */
export function where(b: CodeBlock): string {
  return `${b.file}:${b.line}`;
}

/**
 * The Markdown files whose code blocks are checked: the README, each package's and
 * example's README, and docs/*.md. New files in those places are picked up.
 */
export function markdownFiles(root: string): string[] {
  const out: string[] = [];
  const add = (p: string) => {
    if (isFile(p)) out.push(p);
  };
  add(join(root, "README.md"));
  for (const dir of ["packages", "examples"]) {
    for (const name of list(join(root, dir))) add(join(root, dir, name, "README.md"));
  }
  for (const name of list(join(root, "docs"))) {
    if (name.endsWith(".md")) add(join(root, "docs", name));
  }
  return out.map((p) => relative(root, p)).sort();
}

const FENCE = /^( {0,3})(`{3,}|~{3,})\s*([\w-]*)/;
const COMMENT = /^\s*<!--\s*(.*?)\s*-->\s*$/;

/** The checked code blocks of one Markdown text. */
export function extractBlocks(file: string, markdown: string): CodeBlock[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (open === null) continue;
    const indent = open[1]!.length;
    const fence = open[2]!;
    const lang = open[3]!.toLowerCase();
    let end = i + 1;
    while (end < lines.length && !isClosing(lines[end]!, fence)) end++;
    const body = lines.slice(i + 1, end).map((l) => stripIndent(l, indent));
    const ext = LANGS[lang];
    if (ext !== undefined) {
      const marks = markers(lines, i);
      blocks.push({
        file,
        line: i + 1,
        lang,
        ext,
        code: `${body.join("\n")}\n`,
        ambient: marks.ambient,
        typecheckOnly: marks.typecheckOnly || marks.ambient.length > 0,
        scenario: marks.scenario,
      });
    }
    i = end;
  }
  return blocks;
}

/** Every checked block of the files under `root` that {@link markdownFiles} names. */
export function allBlocks(root: string): CodeBlock[] {
  return markdownFiles(root).flatMap((f) => extractBlocks(f, readFileSync(join(root, f), "utf8")));
}

function isClosing(line: string, fence: string): boolean {
  const t = line.trimStart();
  return line.length - t.length <= 3 && t.startsWith(fence) && t.slice(fence.length).trim() === "";
}

function stripIndent(line: string, n: number): string {
  let k = 0;
  while (k < n && line[k] === " ") k++;
  return line.slice(k);
}

/** The HTML comments on the lines right above the fence at `at`. */
function markers(
  lines: readonly string[],
  at: number,
): { ambient: string[]; typecheckOnly: boolean; scenario: string | undefined } {
  const ambient: string[] = [];
  let typecheckOnly = false;
  let scenario: string | undefined;
  for (let j = at - 1; j >= 0; j--) {
    const m = COMMENT.exec(lines[j]!);
    if (m === null) break;
    const text = m[1]!;
    if (text === "typecheck-only" || text.startsWith("typecheck-only:")) typecheckOnly = true;
    else if (text.startsWith("ambient:")) {
      for (const name of text.slice("ambient:".length).split(",")) {
        if (name.trim() !== "") ambient.push(name.trim());
      }
    } else if (text.startsWith("run:")) scenario = text.slice("run:".length).trim();
  }
  return { ambient, typecheckOnly, scenario };
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
