/**
 * CPU while a system is down (issue 12 point 3): the whole service against the stand-ins, 200
 * jobs queued, FSO refusing connections for OUTAGE_S seconds (default 30). Prints the process's
 * CPU time over the outage window next to the same window idle (nothing queued, nothing down) as
 * the baseline, then checks that every job completes after recovery. Run: npx tsx bench/outage.ts
 */
import { startEndToEnd } from '../test/support/endToEnd.ts';
import { sleep, until } from '../test/support/wait.ts';

const outageS = Number(process.env.OUTAGE_S ?? 30);
const jobs = 200;

async function cpuOver(seconds: number): Promise<number> {
  const start = process.cpuUsage();
  await sleep(seconds * 1000);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

const e = await startEndToEnd('postgres', { ini: ['outage_probe_interval_ms = 1000', 'retry_base_ms = 10000'] });
try {
  const idleMs = await cpuOver(outageS);

  const since = await e.lastJobId();
  await e.fso.faults.refuseConnections(true);
  for (let i = 0; i < jobs; i++) await e.fs.insert('xBPKAccount', { Name: `Verein ${i}` });
  await e.fsStandIn.engine.flushAnnouncements();
  await until(async () => (await e.get('/service/status')).json.job_worker.systems?.fso?.up === false, 'FSO seen down', 30_000);
  const downMs = await cpuOver(outageS);
  const status = (await e.get('/service/status')).json.job_worker;

  await e.fso.faults.refuseConnections(false);
  const started = Date.now();
  await until(async () => {
    const rows = (await e.jobsAfter(since)).filter((j) => j.parent_job_id === null);
    return rows.length === jobs && rows.every((j) => j.job_state === 'done');
  }, 'every job done after recovery', 120_000);
  console.log(JSON.stringify({
    outage_s: outageS,
    cpu_ms_idle_window: Math.round(idleMs),
    cpu_ms_outage_window: Math.round(downMs),
    cpu_percent_of_one_core_during_outage: Number(((downMs / (outageS * 1000)) * 100).toFixed(2)),
    ratio_outage_to_idle: Number((downMs / Math.max(1, idleMs)).toFixed(2)),
    probes_during_outage: status.systems.fso.probes,
    jobs_done_after_recovery: jobs,
    recovery_s: Number(((Date.now() - started) / 1000).toFixed(1)),
  }));
} finally {
  await e.fso.faults.refuseConnections(false);
  await e.close();
}
