/**
 * Each job's evidence is its own (SPEC §4.2 step 6, §5): the protocol worker copies rows to FSO's
 * sosync.job over the same FSO client while the job worker writes companies, and no job row may
 * record the protocol's (or another job's) XML-RPC exchange as its own.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertDone, storeKinds, startEndToEnd, type EndToEnd } from '../support/endToEnd.ts';
import { until } from '../support/wait.ts';

for (const kind of storeKinds) {
  describe(`job evidence while the protocol worker copies (sync table in ${kind})`, () => {
    let e: EndToEnd;
    // no gathering: each ended job is copied at once, so copies run among the writes
    before(async () => { e = await startEndToEnd(kind, { protocolGatherMs: 0 }); });
    after(async () => { await e?.close(); });

    it("every job's sync_target_request names only its own model and record", async () => {
      await e.waitForJobs();
      const since = await e.lastJobId();
      const names = new Map<number, string>();
      for (let i = 0; i < 16; i++) {
        const name = `Beleg-${kind}-${i}`;
        const row = await e.fs.insert('xBPKAccount', { Name: name });
        names.set(row.xBPKAccountID, name);
      }
      await e.waitForJobs();
      await until(async () => (await e.get('/service/status')).json.protocol_worker.pending_rows === 0, 'protocol copies done', 20_000);
      const jobs = (await e.jobsAfter(since)).filter((j) => j.job_source_model === 'dbo.xBPKAccount');
      assert.equal(jobs.length, names.size);
      for (const job of jobs) {
        assertDone(job);
        const own = names.get(job.job_source_record_id)!;
        const request = job.sync_target_request ?? '';
        assert.match(request, /<value><string>res\.company<\/string><\/value>/, `job ${job.job_id}: its own model`);
        assert.ok(request.includes(`<string>${own}</string>`), `job ${job.job_id}: its own record ${own}\n${request}`);
        for (const [, other] of names) {
          if (other !== own) assert.ok(!request.includes(`<string>${other}</string>`), `job ${job.job_id} holds ${other}'s request`);
        }
        assert.doesNotMatch(request, /sosync\.job/, `job ${job.job_id} holds a protocol request`);
        assert.doesNotMatch(job.sync_target_answer ?? '', /sosync\.job|<name>job_id<\/name>/, `job ${job.job_id} holds a protocol answer`);
      }
      // the copies really ran among the writes: an early job was in FSO before a later one wrote
      const byId = [...jobs].sort((a, b) => a.job_id - b.job_id);
      assert.ok(byId[0].job_to_fso_sync_date! < byId[byId.length - 1].sync_start!,
        'the protocol worker copied while jobs were still writing');
    });
  });
}
