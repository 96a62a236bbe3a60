/**
 * Supersede collapse (issue 14 point 5): 1,000 announcements of one record, stored while the
 * worker is busy elsewhere (here: not yet started), each with the write date of its change. The
 * newest runs first and closes the other 999 (SPEC §4.1, §4.2 step 8), so the burst costs one sync.
 * The baseline, in the same run and engine, is the same record announced once. Correctness (exactly
 * one write, 999 skipped) is the test test/engine/supersede.test.ts; here it is checked again and timed.
 */
import type { StoreKind } from '../test/support/engine.ts';
import { openTable } from '../test/support/engine.ts';
import { MemoryFlow } from '../test/support/memoryFlow.ts';
import { benchWorkers } from './benchService.ts';
import type { Results } from './results.ts';
import { median } from './stats.ts';

export const BURST = 1000;

export async function measureSupersede(kind: StoreKind, results: Results, rounds = 5): Promise<void> {
  const { table, drop } = await openTable(kind);
  const flow = new MemoryFlow('bench', { fs: 'dbo.Thing', fso: 'x.thing' });
  let writes = 0;
  flow.hooks.beforeWrite = () => {
    writes++;
  };
  const workers = benchWorkers(table.store, flow);
  /** announces one new record `count` times (write dates one second apart), then runs the queue */
  const burst = async (count: number) => {
    const record = flow.fs.insert({ v: 0 });
    const base = Date.now() - count * 1000;
    const jobs = Array.from({ length: count }, (_, i) => {
      const at = new Date(base + i * 1000);
      return { job_date: at, job_source_system: 'fs' as const, job_source_model: 'dbo.Thing', job_source_record_id: record.id, job_source_sosync_write_date: at };
    });
    record.sosyncWriteDate = jobs[count - 1].job_date;
    await table.store.createJobs(jobs);
    const before = writes;
    const start = process.hrtime.bigint();
    workers.control.processJobs();
    await new Promise((r) => setTimeout(r, 1));
    await workers.whenIdle();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (writes - before !== 1) throw new Error(`${count} announcements made ${writes - before} writes, not 1`);
    const skipped = Number((await table.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM sync_table WHERE job_source_record_id = $1 AND job_state = 'skipped'`, [record.id],
    )).rows[0].n);
    if (skipped !== count - 1) throw new Error(`${count} announcements left ${skipped} skipped, not ${count - 1}`);
    return ms;
  };
  try {
    const single: number[] = [];
    const collapse: number[] = [];
    for (let i = 0; i < rounds; i++) {
      single.push(await burst(1));
      collapse.push(await burst(BURST));
    }
    const s = median(single);
    const c = median(collapse);
    results.add({
      store: kind,
      benchmark: `supersede collapse: ${BURST.toLocaleString('en-US')} announcements of one record queued → 1 write, ${BURST - 1} skipped (median of ${rounds})`,
      value: `${c.toFixed(1)} ms to an empty queue`,
      baseline: `the record announced once ${s.toFixed(1)} ms`,
      ratio: c / s,
    });
  } finally {
    await workers.stop();
    await drop();
  }
}
