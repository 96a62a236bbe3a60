/**
 * A V8 CPU profile (`node --cpu-prof`) summed up for a results file: self time by function and by
 * where the code lives (a package, node's internals, a folder of ours), as shares of the time the
 * process was not idle.
 */
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  startTime: number;
  endTime: number;
}

const root = path.resolve(import.meta.dirname, '..');

/**
 * A profile URL as a short place (`express/lib/router/index.js`, `node:internal/…`,
 * `src/server/app.ts`) and what it belongs to: the package, node's internals, or our folder.
 */
function locate(url: string, functionName: string): { where: string; owner: string } {
  if (url === '') return { where: '', owner: functionName.startsWith('(') ? functionName : '(native)' };
  if (url.startsWith('node:')) return { where: url, owner: 'node internals' };
  const file = url.replace(/^file:\/\//, '');
  const inModules = file.lastIndexOf('node_modules/');
  if (inModules >= 0) {
    const where = file.slice(inModules + 'node_modules/'.length);
    const parts = where.split('/');
    return { where, owner: parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0] };
  }
  const where = file.startsWith(root) ? path.relative(root, file) : file;
  return { where, owner: path.dirname(where) };
}

export function summariseProfile(profile: CpuProfile, top = 20): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const msPerSample = (profile.endTime - profile.startTime) / 1000 / Math.max(1, profile.samples.length);
  const functions = new Map<string, number>();
  const owners = new Map<string, number>();
  let busy = 0;
  for (const id of profile.samples) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    busy++;
    const { where, owner } = locate(url, functionName);
    const key = `${functionName || '(anonymous)'}${where ? ` ${where}:${lineNumber + 1}` : ''}`;
    functions.set(key, (functions.get(key) ?? 0) + 1);
    owners.set(owner, (owners.get(owner) ?? 0) + 1);
  }
  const rows = (counts: Map<string, number>, n: number) => [...counts].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([name, c]) => `| \`${name.replace(/\|/g, '\\|')}\` | ${(c * msPerSample).toFixed(0)} ms | ${((100 * c) / busy).toFixed(1)} % |`);
  const idle = profile.samples.length - busy;
  return [
    `${profile.samples.length} samples over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s, ${((100 * idle) / Math.max(1, profile.samples.length)).toFixed(0)} % idle.`,
    '',
    '| function (self time) | time | share of busy time |',
    '|---|---|---|',
    ...rows(functions, top),
    '',
    '| where the code lives | time | share of busy time |',
    '|---|---|---|',
    ...rows(owners, 15),
  ].join('\n');
}
