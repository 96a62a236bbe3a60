/**
 * job_workers = 4 on a PostgreSQL sync table, end to end through the stand-ins: the same records
 * are changed on both sides at once, round after round, while every FSO call takes a little time
 * so jobs overlap. No record is ever in two running jobs at once (jobs that share a record have
 * disjoint job_start–job_end intervals), jobs do run side by side, nothing is created twice, both
 * systems agree at the end, and /service/status lists every slot.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEndToEnd, type EndToEnd } from '../support/endToEnd.ts';
import { overlaps } from '../support/overlaps.ts';
import { sleep, until } from '../support/wait.ts';

const WORKERS = 4;
const PARTNERS = 8;
const ROUNDS = 3;

describe(`parallel job workers (job_workers = ${WORKERS}, PostgreSQL)`, () => {
  let e: EndToEnd;
  before(async () => {
    e = await startEndToEnd('postgres', { ini: [`job_workers = ${WORKERS}`, 'retry_base_ms = 200', 'retry_max_ms = 400'] });
    // every FSO call takes a little while, as over a network, and a write longer: a job on the other
    // side of the same record is claimed while one is still writing
    e.fso.faults.onCall((call) => sleep(call.method === 'write' || call.method === 'create' ? 120 : 8));
  });
  after(async () => {
    await e?.close();
  });

  const settled = async () => {
    await e.waitForJobs(120_000);
    await until(async () => (await e.jobs()).every((j) => j.job_state !== 'error_retry'), 'no job waits for a retry', 60_000);
    await e.waitForJobs(120_000);
  };

  it('/service/status lists every worker slot', async () => {
    const { json } = await e.get('/service/status');
    const slots = json.job_worker.slots as Array<{ slot: string }>;
    assert.deepEqual(slots.map((s) => s.slot), ['slot-1', 'slot-2', 'slot-3', 'slot-4']);
    assert.equal(json.job_worker.workers, WORKERS);
    for (const slot of json.job_worker.slots) assert.equal(typeof slot.status, 'number', `each slot has its own status code: ${JSON.stringify(slot)}`);
    const xml = await (await fetch(`${e.base}/service/status`, { headers: { accept: 'application/xml' } })).text();
    assert.equal(xml.match(/<slots>/g)?.length, WORKERS, 'the XML status lists every slot');
    assert.match(xml, /<slot>slot-4<\/slot>/);
    const metrics = await (await fetch(`${e.base}/metrics`)).text();
    assert.match(metrics, /sosync_worker_status\{worker="job"\} \d/, 'the metrics report the job worker as one');
    const { json: inspected } = await e.get('/inspect/actors');
    const supervisors = (inspected.actors as Array<{ machine: string | null; name: string }>).filter((a) => a.machine === 'supervisor');
    assert.deepEqual(supervisors.map((a) => a.name).sort(), ['slot-1', 'slot-2', 'slot-3', 'slot-4'], 'the live page has one worker actor per slot');
  });

  it('records changed on both sides at once: never two jobs on one record at a time, no duplicate, both sides agree', async () => {
    const partnerIds: number[] = [];
    for (let i = 0; i < PARTNERS; i += 1) {
      partnerIds.push(e.fso.userCreate('res.partner', { firstname: `Anna${i}`, lastname: `Parallel${i}`, gender: 'female', zip: '1010', city: 'Wien' }));
    }
    await settled();
    const personOf = new Map(partnerIds.map((id) => [id, e.fso.store.get('res.partner', id)!.sosync_fs_id as number]));
    for (const [partner, person] of personOf) assert.ok(person, `partner ${partner} got its FS person`);

    // what the live page draws: every job actor in flight, under its slot
    let watching = true;
    let mostJobsAtOnce = 0;
    const watcher = (async () => {
      while (watching) {
        const { json } = await e.get('/inspect/actors');
        const actors = json.actors as Array<{ sessionId: string; parentId?: string; machine: string | null; name: string; status: string }>;
        const slots = new Set(actors.filter((a) => a.machine === 'supervisor').map((a) => a.sessionId));
        mostJobsAtOnce = Math.max(mostJobsAtOnce, actors.filter((a) => a.machine === 'job' && a.status === 'active' && slots.has(a.parentId ?? '')).length);
        await sleep(5);
      }
    })();
    for (let round = 0; round < ROUNDS; round += 1) {
      // both sides of every record change at the same moment
      await Promise.all(partnerIds.map(async (partner, i) => {
        e.fso.userWrite('res.partner', partner, { lastname: `Online${round}x${i}` });
        await e.fs.query('UPDATE dbo.[Person] SET [Vorname] = @name WHERE [PersonID] = @id;', { name: `Studio${round}x${i}`, id: personOf.get(partner)! });
      }));
      await sleep(50);
    }
    await settled();
    watching = false;
    await watcher;
    assert.ok(mostJobsAtOnce >= 2, `the inspection (the live page) showed ${mostJobsAtOnce} job actors at once under the slots`);

    const { clashes, sideBySide } = overlaps(await e.jobs());
    assert.deepEqual(clashes, [], 'no record was in two running jobs at once');
    assert.ok(sideBySide > 0, 'jobs on different records ran side by side (the workers are parallel)');

    const states = new Set((await e.jobs()).map((j) => j.job_state));
    assert.deepEqual([...states].filter((s) => s !== 'done' && s !== 'skipped'), [], 'every job ended done or skipped');

    const persons = await e.fs.rows('Person');
    assert.equal(persons.length, PARTNERS, 'one FS person per partner: nothing created twice');
    for (const [partner, person] of personOf) {
      const p = e.fso.store.get('res.partner', partner)!;
      const row = persons.find((r) => r.PersonID === person)!;
      assert.equal(p.sosync_fs_id, person);
      assert.equal(p.firstname, row.Vorname, `partner ${partner}: first name agrees`);
      assert.equal(p.lastname, row.Name, `partner ${partner}: last name agrees`);
    }
  });
});
