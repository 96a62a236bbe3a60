/**
 * A `node --cpu-prof` profile boiled down to the functions with the most self time, as a markdown
 * table: where a process spent its own CPU (and how much of its life it was idle, waiting).
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** "file:line" relative to the repository (or the package inside node_modules) */
function where(url: string, line: number): string {
  if (!url) return '';
  const file = url.replace(/^file:\/\//, '');
  const inModules = file.lastIndexOf('node_modules/');
  const short = inModules >= 0 ? file.slice(inModules + 'node_modules/'.length) : path.relative(process.cwd(), file);
  return `${short}:${line + 1}`;
}

/** what a frame belongs to: a package, a folder of ours, node itself, or the engine's own entries */
function areaOf(fn: string, url: string): string {
  if (fn.startsWith('(') && !url) return fn;
  if (!url) return 'native (V8/libuv)';
  if (url.startsWith('wasm:')) return 'PGlite (wasm: PostgreSQL itself)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] === '@electric-sql/pglite' ? 'PGlite (JS: protocol, results, file system)' : pkg[1];
  const ours = /dist\/((?:src|sandbox)\/[^/]+(?:\/[^/.]+)?)/.exec(url);
  if (ours) return ours[1];
  return url.startsWith('node:') ? 'node internals' : 'other';
}

export function topSelfTime(file: string, count: number): string {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id)!;
    const key = `${node.callFrame.functionName || '(anonymous)'}\t${where(node.callFrame.url, node.callFrame.lineNumber)}`;
    const us = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + us);
    const area = areaOf(node.callFrame.functionName, node.callFrame.url);
    areas.set(area, (areas.get(area) ?? 0) + us);
    total += us;
  });
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, count);
  const share = (us: number) => `${((100 * us) / total).toFixed(1)} %`;
  return [
    `Profile of the sandbox process over its whole life (${(total / 1e6).toFixed(1)} s sampled). Self time by area:`,
    '',
    '| area | self time | share |',
    '|---|---|---|',
    ...[...areas.entries()].sort((a, b) => b[1] - a[1]).slice(0, count)
      .map(([area, us]) => `| ${area} | ${(us / 1000).toFixed(0)} ms | ${share(us)} |`),
    '',
    'The functions with the most self time:',
    '',
    '| function | where | self time | share |',
    '|---|---|---|---|',
    ...rows.map(([key, us]) => {
      const [fn, at] = key.split('\t');
      return `| ${fn} | ${at} | ${(us / 1000).toFixed(0)} ms | ${share(us)} |`;
    }),
  ].join('\n');
}
