/**
 * Round trips per job, per flow (issue 14 point 4), counted where they arrive: TDS requests at the
 * FS stand-in, XML-RPC calls at the FSO stand-in. Each job of bench/overheadScenarios.ts runs through
 * the job machine with the real flows, and the same job's bare client round trips (the reads SPEC
 * §4.2 asks for and the write) run after it. Pinned:
 * - an up-to-date job is one FS and one FSO round trip (no pool probe before a statement) and two
 *   sync-table writes (its start; its end, SPEC §4.2 steps 7–9 in one statement);
 * - an update job reads nothing the direction or consistency step already read — its round trips
 *   are the bare ones, plus only the lookups still made per job (listed in `extra`).
 * The write's own statements (a person stack's transaction) are the client's; both sides make them.
 * And what the write works from is the consistency step's re-read (SPEC §4.2 step 5), the freshest.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { countsBetween, startOverheadSystem, type OverheadSystem } from '../../bench/overheadHarness.ts';
import { overheadScenarios, type Scenario } from '../../bench/overheadScenarios.ts';

/** round trips an engine job makes beyond the bare ones, per scenario */
const extra: Record<string, { fs: number; fso: number }> = {
  'company|up to date': { fs: 0, fso: 0 },
  'company|update FS → FSO': { fs: 0, fso: 0 },
  'company|update FSO → FS': { fs: 0, fso: 0 },
  'partner|up to date': { fs: 0, fso: 0 },
  'partner|update FS → FSO': { fs: 0, fso: 0 },
  // the default salutation (dbo.Typen) is read only for a partner whose individual salutation was
  // cleared (FS configuration that may change while sosync runs, so never cached); this one keeps its own
  'partner|update FSO → FS': { fs: 0, fso: 0 },
  'partner bPK|up to date': { fs: 0, fso: 0 },
  // the FS ids of the bPK's partner and company, looked up by their FSO ids (one batch)
  'partner bPK|update FSO → FS': { fs: 1, fso: 0 },
};

describe('round trips per job and flow, through the stand-ins', () => {
  let system: OverheadSystem;
  let scenarios: Scenario[];
  before(async () => {
    system = await startOverheadSystem({ persons: 3 });
    scenarios = await overheadScenarios(system);
  });
  after(async () => { await system?.close(); });

  it('covers every flow and job kind the benchmark times', () => {
    assert.deepEqual(scenarios.map((s) => `${s.flow}|${s.kind}`).sort(), Object.keys(extra).sort());
  });

  it('an up-to-date job is one round trip to each system, and two sync-table writes', async () => {
    for (const scenario of scenarios.filter((s) => s.kind === 'up to date')) {
      const job = await scenario.prepare(1);
      const { outcome, counts } = await system.runJob(job.system, job.model, job.id);
      assert.equal(outcome.outcome, 'done', `${scenario.flow}: ${outcome.message}`);
      // its start, and its end: outcome, superseded jobs closed and the protocol flag in one statement
      assert.deepEqual(counts, { fs: 1, fso: 1, syncTableWrites: 2 }, scenario.flow);
    }
  });

  it('the write transforms the source as the consistency step re-read it, not as the direction step read it', async () => {
    const scenario = scenarios.find((s) => s.flow === 'company' && s.kind === 'update FSO → FS')!;
    const job = await scenario.prepare(100);
    // between step 3 and step 5 the name changes and the stamp does not (the check passes)
    let reads = 0;
    system.fso.faults.onCall((call) => {
      const reading = call.method === 'read' || call.method === 'search_read';
      if (call.model === 'res.company' && reading && ++reads === 2) system.fso.store.update('res.company', [job.id], { name: 'Verein frisch' });
    });
    try {
      const { outcome, jobId } = await system.runJob(job.system, job.model, job.id);
      assert.equal(outcome.outcome, 'done', outcome.message);
      assert.equal(reads, 2, 'the direction and the consistency step each read the company once');
      const row = await system.table.store.getJob(jobId);
      const written = await system.studio.xBPKAccount.read(row!.sync_target_record_id!);
      assert.equal(written?.Name, 'Verein frisch');
    } finally {
      system.fso.faults.onCall(null);
    }
  });

  it('an update job re-reads nothing: its round trips are the bare ones plus the listed lookups', async () => {
    for (const scenario of scenarios.filter((s) => s.kind !== 'up to date')) {
      const name = `${scenario.flow}|${scenario.kind}`;
      // twice: the first job of a kind may fill a cache (countries); the second shows the steady state
      for (const round of [1, 2]) {
        const job = await scenario.prepare(round);
        const { outcome, counts } = await system.runJob(job.system, job.model, job.id);
        assert.equal(outcome.outcome, 'done', `${name}: ${outcome.message}`);
        const before = system.counts();
        await scenario.bare();
        const bare = countsBetween(before, system.counts());
        if (round === 1) continue;
        assert.deepEqual({ fs: counts.fs - bare.fs, fso: counts.fso - bare.fso }, extra[name],
          `${name}: engine FS ${counts.fs} / FSO ${counts.fso}, bare FS ${bare.fs} / FSO ${bare.fso}`);
      }
    }
  });
});
