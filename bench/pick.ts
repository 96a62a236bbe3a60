/**
 * Pick-up at scale (issue 14 point 3): how long the job worker takes to claim the next open job
 * — the store's own pickNextJob (syncTableStatements.pickNextJob) and startJob, as the worker runs
 * them — with 10 thousand, 1 million and 10 million rows in sync_table on the local PostgreSQL
 * server, mostly finished history (bench/fill.ts). After each timed claim the job is finished
 * (done, as the worker leaves it), so every pick faces the same kind of queue. The baseline is the
 * smallest size in the same run. Target: the largest ≤ 1.5 × the smallest.
 *
 * BENCH_PICK_ROWS (e.g. "10000,1000000") changes the sizes, BENCH_PICKS the picks per size.
 * The database is created fresh and dropped afterwards.
 */
import pg from 'pg';
import { openSyncTable, syncTableStatements, toUtcTimestamp } from '../src/adapters/syncTable/index.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.ts';
import { addOpenJobs, growSyncTable, type FillStep } from './fill.ts';
import { median, percentile, type Results } from './results.ts';

export const DEFAULT_PICK_ROWS = [10_000, 1_000_000, 10_000_000];
export const PICK_TARGET = 1.5;

export function pickSizes(): number[] {
  const env = process.env.BENCH_PICK_ROWS;
  if (!env) return DEFAULT_PICK_ROWS;
  const sizes = env.split(',').map((s) => Number(s.trim().replace(/_/g, '')));
  if (sizes.some((n) => !Number.isInteger(n) || n < 1000 || n > 100_000_000)) throw new Error(`BENCH_PICK_ROWS: "${env}" is not a list of row counts from 1000 to 100000000`);
  return [...sizes].sort((a, b) => a - b);
}

export interface PickAtSize {
  rows: number;
  open: number;
  fill: FillStep;
  /** ms, over the timed picks */
  pickMedian: number;
  claimMedian: number;
  claimP90: number;
  /** EXPLAIN (ANALYZE, BUFFERS) of one pick at this size */
  plan: string;
  tableSize: string;
}

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

/**
 * Runs the sizes in ascending order on one growing table. `atSize` runs after a size has been
 * measured (the listing benchmark uses the table at 1 million rows).
 */
export async function measurePickAtScale(
  results: Results,
  options: { sizes?: number[]; picks?: number; atSize?: (rows: number, database: TestDatabase) => Promise<void> } = {},
): Promise<PickAtSize[]> {
  const sizes = options.sizes ?? pickSizes();
  const picks = options.picks ?? Number(process.env.BENCH_PICKS ?? 101);
  const warmUp = 20;
  const database = await createTestDatabase('sosync_bench');
  const table = await openSyncTable({ kind: 'postgres', ...database.config, database: database.name, statementTimeoutMs: 600_000 });
  const client = new pg.Client(database.config);
  await client.connect();
  const measured: PickAtSize[] = [];
  try {
    for (const rows of sizes) {
      const fill = await growSyncTable(client, rows);
      console.log(`  pick: ${rows} rows filled (insert ${fill.insertS.toFixed(1)} s, indexes ${fill.indexS.toFixed(1)} s, vacuum analyze ${fill.analyzeS.toFixed(1)} s)`);
      const open = await addOpenJobs(client, Math.max(Math.round(rows * 0.001), 2 * (picks + warmUp)));
      const pickTimes: number[] = [];
      const claimTimes: number[] = [];
      for (let i = 0; i < picks + warmUp; i++) {
        const start = process.hrtime.bigint();
        const job = await table.store.pickNextJob();
        const picked = ms(start);
        if (!job) throw new Error(`no open job left at ${rows} rows`);
        await table.store.startJob(job.job_id);
        const claimed = ms(start);
        await table.store.updateJob(job.job_id, { job_state: 'done', job_end: new Date(), job_to_fso_can_sync: true });
        if (i >= warmUp) {
          pickTimes.push(picked);
          claimTimes.push(claimed);
        }
      }
      const explain = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${syncTableStatements.pickNextJob}`,
        [toUtcTimestamp(new Date())],
      );
      const size = (await client.query<{ s: string }>(`SELECT pg_size_pretty(pg_total_relation_size('sync_table')) AS s`)).rows[0].s;
      const result: PickAtSize = {
        rows, open, fill, tableSize: size,
        pickMedian: median(pickTimes), claimMedian: median(claimTimes), claimP90: percentile(claimTimes, 90),
        plan: explain.rows.map((r) => r['QUERY PLAN']).join('\n'),
      };
      measured.push(result);
      console.log(`  pick: ${rows} rows, ${open} open: pick median ${result.pickMedian.toFixed(3)} ms, claim median ${result.claimMedian.toFixed(3)} ms (p90 ${result.claimP90.toFixed(3)} ms)`);
      await options.atSize?.(rows, database);
    }
  } finally {
    await client.end();
    await table.db.close();
    await database.drop();
  }
  reportPicks(results, measured, picks);
  return measured;
}

function reportPicks(results: Results, measured: PickAtSize[], picks: number): void {
  const base = measured[0];
  const rows = (n: number) => n.toLocaleString('en-US');
  for (const m of measured) {
    const ratio = m.claimMedian / base.claimMedian;
    const largest = m === measured[measured.length - 1] && m !== base;
    results.add({
      store: 'postgres',
      benchmark: `pick-up: claim the next open job (pickNextJob + startJob), ${rows(m.rows)} rows`,
      value: `median ${m.claimMedian.toFixed(3)} ms (pick alone ${m.pickMedian.toFixed(3)} ms, p90 ${m.claimP90.toFixed(3)} ms)`,
      baseline: `median ${base.claimMedian.toFixed(3)} ms at ${rows(base.rows)} rows`,
      ratio,
      ...(largest ? { target: `${rows(m.rows)} ≤ ${PICK_TARGET} × ${rows(base.rows)}`, met: ratio <= PICK_TARGET } : {}),
    });
  }
  const largest = measured[measured.length - 1];
  if (largest !== base) {
    results.add({
      store: 'postgres',
      benchmark: `pick-up: the pick statement alone (no claim), ${rows(largest.rows)} rows`,
      value: `median ${largest.pickMedian.toFixed(3)} ms`,
      baseline: `median ${base.pickMedian.toFixed(3)} ms at ${rows(base.rows)} rows`,
      ratio: largest.pickMedian / base.pickMedian,
    });
  }
  const table = [
    `${picks} timed claims per size (after 20 untimed), each job finished after its claim. Rows: 99 % done, 1 % skipped,`,
    '0.2 % error, 0.01 % error_retry waiting for a later attempt, a tenth child jobs; the open root jobs are the newest rows.',
    '',
    '| rows | open root jobs | table + indexes | fill: insert / indexes / vacuum analyze | pick median | claim median | claim p90 |',
    '|---|---|---|---|---|---|---|',
    ...measured.map((m) => `| ${rows(m.rows)} | ${rows(m.open)} | ${m.tableSize} | ${m.fill.insertS.toFixed(1)} s / ${m.fill.indexS.toFixed(1)} s / ${m.fill.analyzeS.toFixed(1)} s | ${m.pickMedian.toFixed(3)} ms | ${m.claimMedian.toFixed(3)} ms | ${m.claimP90.toFixed(3)} ms |`),
    '',
    `The pick at ${rows(measured[measured.length - 1].rows)} rows (EXPLAIN ANALYZE, BUFFERS):`,
    '',
    '```',
    measured[measured.length - 1].plan,
    '```',
  ].join('\n');
  results.section('Pick-up at scale (PostgreSQL)', table);
}
