/**
 * The figures of one `npm run bench`, printed as they come and written to bench/RESULTS.md with
 * the command, the date and the machine. Every figure stands next to the baseline it was measured
 * against in the same run, and the ratio of the two.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Figure {
  /** where it ran: pglite, postgres */
  store: string;
  benchmark: string;
  /** the measured figure, with its unit */
  value: string;
  /** what it is compared with, with its unit */
  baseline: string;
  /** value / baseline (null where there is no ratio) */
  ratio: number | null;
  /** the target, as text ("≤ 1.5") */
  target?: string;
  /** whether the target is met (undefined: no target) */
  met?: boolean;
}

export interface Machine {
  cpus: string;
  memory: string;
  os: string;
  node: string;
  postgres: string | null;
  pglite: string;
  load: string;
}

const benchDir = path.dirname(fileURLToPath(import.meta.url));

function pgliteVersion(): string {
  try {
    const file = path.join(benchDir, '..', 'node_modules', '@electric-sql', 'pglite', 'package.json');
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function describeMachine(postgres: string | null): Machine {
  const cpus = os.cpus();
  return {
    cpus: `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown'}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres,
    pglite: `@electric-sql/pglite ${pgliteVersion()}`,
    load: os.loadavg().map((l) => l.toFixed(2)).join(', '),
  };
}

export class Results {
  readonly figures: Figure[] = [];
  /** free-form sections (tables, notes), in the order they were added */
  readonly sections: Array<{ title: string; text: string }> = [];
  readonly started = new Date();

  add(figure: Figure): void {
    this.figures.push(figure);
    const ratio = figure.ratio === null ? '' : `  ratio ${figure.ratio.toFixed(figure.ratio < 10 ? 3 : 1)}`;
    const target = figure.target ? ` (target ${figure.target}: ${figure.met ? 'met' : 'missed'})` : '';
    console.log(`  [${figure.store}] ${figure.benchmark}: ${figure.value} vs ${figure.baseline}${ratio}${target}`);
  }

  section(title: string, text: string): void {
    this.sections.push({ title, text });
    console.log(`\n${title}\n${text}`);
  }

  markdown(command: string, machine: Machine): string {
    const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
    const lines = [
      '# Benchmark results',
      '',
      'Written by `npm run bench` (bench/run.ts). Every figure is compared with a baseline measured in',
      'the same run on the same machine; the ratio is figure ÷ baseline (lower is better unless said).',
      '',
      `- command: \`${command}\``,
      `- date: ${this.started.toISOString()} (took ${((Date.now() - this.started.getTime()) / 1000).toFixed(0)} s)`,
      `- machine: ${machine.cpus}; ${machine.memory} memory; ${machine.os}; load average at start ${machine.load}`,
      `- node ${machine.node}; ${machine.postgres ?? 'PostgreSQL not reachable'}; ${machine.pglite}`,
      '',
      '| store | benchmark | figure | baseline (same run) | ratio | target |',
      '|---|---|---|---|---|---|',
      ...this.figures.map((f) => `| ${f.store} | ${cell(f.benchmark)} | ${cell(f.value)} | ${cell(f.baseline)} | ${f.ratio === null ? '' : f.ratio.toFixed(3)} | ${f.target ? `${cell(f.target)}: ${f.met ? 'met' : '**missed**'}` : ''} |`),
      '',
    ];
    for (const s of this.sections) lines.push(`## ${s.title}`, '', s.text, '');
    return lines.join('\n');
  }

  /** writes bench/RESULTS.md, or bench/`name` */
  write(command: string, machine: Machine, name = 'RESULTS.md'): string {
    const file = path.join(benchDir, name);
    fs.writeFileSync(file, this.markdown(command, machine));
    return file;
  }
}

