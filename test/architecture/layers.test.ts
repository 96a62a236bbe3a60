/**
 * The layers point one way (ARCHITECTURE.md): server → machines → flows → adapters. This reads
 * every import of src/ (type imports too: a type is a dependency) and fails on one against the
 * direction, on a machine, flow or adapter importing a package it must not know, and on src/
 * loading the sandbox anywhere but the lazy sandbox start in main.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
const src = path.join(root, 'src');

/** Higher may import lower or equal; never the reverse. */
const layers: Array<{ name: string; rank: number; matches: (rel: string) => boolean }> = [
  { name: 'base (log, version)', rank: 0, matches: (f) => f === 'log.ts' || f === 'version.ts' },
  { name: 'adapters', rank: 1, matches: (f) => f.startsWith('adapters/') },
  { name: 'config', rank: 2, matches: (f) => f.startsWith('config/') },
  { name: 'flows', rank: 2, matches: (f) => f.startsWith('flows/') },
  { name: 'machines', rank: 3, matches: (f) => f.startsWith('machines/') },
  { name: 'inspection', rank: 4, matches: (f) => f.startsWith('inspection/') },
  { name: 'server', rank: 5, matches: (f) => f.startsWith('server/') },
  { name: 'composition (main, service)', rank: 6, matches: (f) => f === 'main.ts' || f === 'service.ts' },
];

/** Packages a layer must not import: machines do no I/O, flows and adapters know nothing of XState or HTTP serving. */
const forbiddenPackages: Record<string, RegExp> = {
  machines: /^(pg|mssql|tedious|xmlrpc|express|ws|@electric-sql\/pglite|ntp-time-sync|node:(http|https|net|dgram|fs|child_process))$/,
  flows: /^(xstate|express|ws|@statelyai\/inspect)$/,
  adapters: /^(xstate|express|ws|@statelyai\/inspect)$/,
};

function layerOf(rel: string) {
  const layer = layers.find((l) => l.matches(rel));
  if (!layer) throw new Error(`src/${rel} belongs to no layer: add it to the table in this test`);
  return layer;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

export interface Import {
  specifier: string;
  dynamic: boolean;
}

/** Every module specifier of a TypeScript file: static, type-only, re-exports, import() and import types. */
export function importsOf(code: string): Import[] {
  const found: Import[] = [];
  for (const m of code.matchAll(/^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/gm)) found.push({ specifier: m[1], dynamic: false });
  for (const m of code.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) found.push({ specifier: m[1], dynamic: false });
  for (const m of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push({ specifier: m[1], dynamic: true });
  return found;
}

interface Violation {
  file: string;
  specifier: string;
  why: string;
}

function violations(): Violation[] {
  const out: Violation[] = [];
  for (const file of sourceFiles(src)) {
    const rel = path.relative(src, file).split(path.sep).join('/');
    const from = layerOf(rel);
    for (const { specifier, dynamic } of importsOf(fs.readFileSync(file, 'utf8'))) {
      if (specifier.startsWith('.')) {
        const target = path.relative(src, path.resolve(path.dirname(file), specifier)).split(path.sep).join('/');
        if (target.startsWith('../sandbox/')) {
          const lazySandboxStart = rel === 'main.ts' && target === '../sandbox/start.ts' && dynamic;
          if (!lazySandboxStart) out.push({ file: rel, specifier, why: 'src/ loads the sandbox only lazily, from main.ts' });
          continue;
        }
        if (target.startsWith('..')) {
          out.push({ file: rel, specifier, why: 'imports from outside src/' });
          continue;
        }
        const to = layerOf(target);
        if (to.rank > from.rank) out.push({ file: rel, specifier, why: `${from.name} must not import ${to.name}` });
      } else {
        const forbidden = forbiddenPackages[from.name];
        if (forbidden?.test(specifier)) out.push({ file: rel, specifier, why: `${from.name} must not import the package ${specifier}` });
      }
    }
  }
  return out;
}

test('the import reader sees static, type, re-export and dynamic imports', () => {
  const code = [
    "import { a } from './a.ts';",
    "import type { B } from '../b.ts';",
    "export * from './c.ts';",
    "export { d } from './d.ts';",
    "import './side-effect.ts';",
    "type S = import('../sandbox/start.ts').Sandbox;",
    "const m = await import('./lazy.ts');",
    'import {\n  e,\n  f,\n} from "./ef.ts";',
  ].join('\n');
  assert.deepEqual(
    importsOf(code).map((i) => i.specifier).sort(),
    ['../b.ts', '../sandbox/start.ts', './a.ts', './c.ts', './d.ts', './ef.ts', './lazy.ts', './side-effect.ts'],
  );
});

test('every import in src/ points down the layers: server → machines → flows → adapters', () => {
  const found = violations();
  assert.deepEqual(found, [], `imports against the direction:\n${found.map((v) => `  src/${v.file}: '${v.specifier}' — ${v.why}`).join('\n')}`);
});
