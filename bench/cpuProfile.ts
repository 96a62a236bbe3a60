/**
 * A `node --cpu-prof` profile boiled down for a results file: self time by function and by where
 * the code lives (a package, PGlite's wasm or JavaScript, a folder of ours, node's internals), as
 * shares of the time the process was busy, and how much of the sampled time it was idle. The one
 * reader of profiles every benchmark uses.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface Profile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  totalMs: number;
  idleMs: number;
  /** false when a window was asked for but no sample fell in it (then every sample counts) */
  windowed: boolean;
  functions: Array<{ name: string; ms: number }>;
  areas: Array<{ name: string; ms: number }>;
}

/** now on the monotonic clock in µs: the clock a V8 CPU profile's timestamps are on (Linux) */
export const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

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
  if (!url) return 'native (V8/libuv, system calls)';
  if (url.startsWith('wasm:')) return 'PGlite (wasm: PostgreSQL itself)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] === '@electric-sql/pglite' ? 'PGlite (JS: protocol, results, file system)' : pkg[1];
  const ours = /(?:dist\/)?((?:src|sandbox|bench)\/[^/]+(?:\/[^/.]+)?)/.exec(url);
  if (ours) return ours[1];
  return url.startsWith('node:') ? 'node internals' : 'other';
}

/**
 * The newest `.cpuprofile` file `node --cpu-prof` wrote in `dir` for a main thread, or undefined when
 * there is none. node names them CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; a process with a
 * worker thread (tsx's esbuild service, for one) writes a second file with thread ≠ 0 at the same
 * moment, and that one holds none of the process's own work.
 */
export function newestProfileIn(dir: string | undefined): string | undefined {
  if (!dir || !fs.existsSync(dir)) return undefined;
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const mainThread = files.filter((f) => /\.0\.\d+\.cpuprofile$/.test(f));
  return (mainThread.length > 0 ? mainThread : files)
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
}

/** A span of time on the monotonic clock, µs. */
export interface Window {
  from: number;
  to: number;
}

/** Self time of one profile file; with `window` (monotonic µs) only the samples taken in it. */
export function selfTime(file: string, window?: Window): SelfTime {
  return selfTimeOf(JSON.parse(fs.readFileSync(file, 'utf8')) as Profile, window ? [window] : undefined);
}

/** Self time of a profile; with `windows` only the samples taken in one of them. */
export function selfTimeOf(profile: Profile, windows?: readonly Window[]): SelfTime {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let at = profile.startTime;
  const times = profile.timeDeltas.map((d) => (at += d));
  const inWindow = (i: number) => !windows || windows.some((w) => times[i] >= w.from && times[i] <= w.to);
  const windowed = windows !== undefined && profile.samples.some((_, i) => inWindow(i));
  const functions = new Map<string, number>();
  const areas = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  profile.samples.forEach((id, i) => {
    if (windowed && !inWindow(i)) return;
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    totalMs += ms;
    if (functionName === '(idle)') { idleMs += ms; return; }
    const name = `${functionName || '(anonymous)'}${url ? ` ${where(url, lineNumber)}` : ''}`;
    functions.set(name, (functions.get(name) ?? 0) + ms);
    const area = areaOf(functionName, url);
    areas.set(area, (areas.get(area) ?? 0) + ms);
  });
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([name, ms]) => ({ name, ms }));
  return { totalMs, idleMs, windowed, functions: sorted(functions), areas: sorted(areas) };
}

/** The summary line and two tables (by area, by function) of the `top` entries, in markdown. */
export function profileTables(t: SelfTime, top = 15): string {
  const busy = Math.max(t.totalMs - t.idleMs, 1e-9);
  const row = (e: { name: string; ms: number }) => `| \`${e.name.replace(/\|/g, '\\|')}\` | ${e.ms.toFixed(0)} ms | ${((100 * e.ms) / busy).toFixed(1)} % |`;
  return [
    `${(t.totalMs / 1000).toFixed(1)} s sampled, ${((100 * t.idleMs) / Math.max(t.totalMs, 1e-9)).toFixed(0)} % of it idle.`,
    '',
    '| where the code lives | self time | share of busy time |',
    '|---|---|---|',
    ...t.areas.slice(0, top).map(row),
    '',
    '| function | self time | share of busy time |',
    '|---|---|---|',
    ...t.functions.slice(0, top).map(row),
  ].join('\n');
}
