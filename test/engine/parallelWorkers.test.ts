/**
 * job_workers = 4 on a PostgreSQL sync table, end to end through the stand-ins: the same records
 * are changed on both sides at once, round after round, while every FSO call takes a little time
 * so jobs overlap. No record is ever in two running jobs at once (jobs that share a record have
 * disjoint job_start–job_end intervals), jobs do run side by side, nothing is created twice, both
 * systems agree at the end, and /service/status lists every slot. Child jobs lock their records as
 * root jobs do: a bPK's child job on a new partner and the partner's own job never both create it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEndToEnd, type EndToEnd } from '../support/endToEnd.ts';
import { overlaps } from '../support/overlaps.ts';
import { sleep, until } from '../support/wait.ts';

// more slots than FSO's default of 4 connections: the service sizes its connections by the slots
const WORKERS = 6;
const PARTNERS = 8;
const ROUNDS = 3;

describe(`parallel job workers (job_workers = ${WORKERS}, PostgreSQL)`, () => {
  let e: EndToEnd;
  let fsoCallsInFlight = 0;
  let mostFsoCallsInFlight = 0;
  before(async () => {
    e = await startEndToEnd('postgres', { ini: [`job_workers = ${WORKERS}`, 'retry_base_ms = 200', 'retry_max_ms = 400'] });
    // every FSO call takes a little while, as over a network, and a write longer: a job on the other
    // side of the same record is claimed while one is still writing
    e.fso.faults.onCall(async (call) => {
      fsoCallsInFlight += 1;
      mostFsoCallsInFlight = Math.max(mostFsoCallsInFlight, fsoCallsInFlight);
      try {
        await sleep(call.method === 'write' || call.method === 'create' ? 120 : 8);
      } finally {
        fsoCallsInFlight -= 1;
      }
    });
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
    const names = Array.from({ length: WORKERS }, (_, i) => `slot-${i + 1}`);
    assert.deepEqual(slots.map((s) => s.slot), names);
    assert.equal(json.job_worker.workers, WORKERS);
    for (const slot of json.job_worker.slots) assert.equal(typeof slot.status, 'number', `each slot has its own status code: ${JSON.stringify(slot)}`);
    const xml = await (await fetch(`${e.base}/service/status`, { headers: { accept: 'application/xml' } })).text();
    assert.equal(xml.match(/<slots>/g)?.length, WORKERS, 'the XML status lists every slot');
    assert.match(xml, new RegExp(`<slot>slot-${WORKERS}</slot>`));
    const metrics = await (await fetch(`${e.base}/metrics`)).text();
    assert.match(metrics, /sosync_worker_status\{worker="job"\} \d/, 'the metrics report the job worker as one');
    const { json: inspected } = await e.get('/inspect/actors');
    const supervisors = (inspected.actors as Array<{ machine: string | null; name: string }>).filter((a) => a.machine === 'supervisor');
    assert.deepEqual(supervisors.map((a) => a.name).sort(), [...names].sort(), 'the live page has one worker actor per slot');
  });

  it('the FS pool has a connection for every slot and two more: that many calls at once each get one', async () => {
    const calls = WORKERS + 2;
    await Promise.all(Array.from({ length: calls }, () => e.service.studio.clockOffsetMs()));
    // a pool smaller than that queues the slots' FS calls behind each other (5 before it was sized by the slots)
    assert.equal(e.fsStandIn.server.connectionsOf('sosync'), calls, `sosync's open FS connections after ${calls} calls at once`);
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
    assert.ok(mostFsoCallsInFlight > 4, `more slots than 4 were in FSO calls at once (most: ${mostFsoCallsInFlight}): the FSO client does not queue them behind 4 connections`);

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

  it('a child job locks its record too: a new partner and a bPK of it, announced at once, create one FS person', async () => {
    const companyId = e.fso.userCreate('res.company', { name: 'Verein Parallel' });
    await settled();
    const stamp = new Date(Date.now() - 60_000).toISOString();
    const partners = Array.from({ length: PARTNERS }, (_, i) =>
      e.fso.store.create('res.partner', { firstname: `Berta${i}`, lastname: `Kind${i}`, gender: 'female', sosync_write_date: stamp }));
    const since = await e.lastJobId();
    // the partner's own job and the bPK's child job on the partner are open at the same moment;
    // neither partner has an FS person yet, so each job would create one
    for (const [i, partner] of partners.entries()) {
      e.fso.userWrite('res.partner', partner, { lastname: `Kind${i}b` });
      e.fso.userCreate('res.partner.bpk', { BPKRequestPartnerID: partner, BPKRequestCompanyID: companyId, BPKPrivate: `PRIV-${i}`, BPKPublic: `PUB-${i}` });
    }
    await settled();

    const rows = await e.jobsAfter(since);
    const children = rows.filter((j) => j.parent_job_id !== null && j.job_source_model === 'res.partner');
    assert.equal(children.length, PARTNERS, 'every bPK job ran a child job on its partner');
    const { clashes } = overlaps(rows);
    assert.deepEqual(clashes, [], 'no record was in a root job and a child job at once');
    for (const partner of partners) {
      const persons = await e.fs.rows('Person', '[Name] LIKE @name', { name: `Kind${partners.indexOf(partner)}%` });
      assert.equal(persons.length, 1, `partner ${partner} has one FS person, not one per job: ${JSON.stringify(persons.map((p) => p.PersonID))}`);
      assert.equal(e.fso.store.get('res.partner', partner)!.sosync_fs_id, persons[0].PersonID);
    }
  });
});
