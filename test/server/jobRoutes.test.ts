import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { XMLParser } from 'fast-xml-parser';
import { startApi, type ApiHarness } from '../support/api.ts';
import type { StoreKind } from '../support/engine.ts';

const xml = new XMLParser();

/** JSON as Python's json.dumps(..., ensure_ascii=True) writes it: ", " and ": " separators, \\uXXXX for non-ASCII. */
function pythonJsonAscii(value: Record<string, unknown>): string {
  const text = '{' + Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ') + '}';
  return text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
const XML = { accept: 'application/xml' };

for (const kind of ['postgres', 'pglite'] as StoreKind[]) {
  describe(`job routes on ${kind}`, () => {
    let api: ApiHarness;
    before(async () => {
      api = await startApi(kind);
      // keep the worker from touching the jobs these tests create
      api.workers.supervisor.send({ type: 'STOP' });
    });
    after(async () => api.close());
    const count = async () => Number((await api.table.db.query<{ n: string }>('SELECT count(*) AS n FROM sync_table')).rows[0].n);

    test('GET /job/create with the long names', async () => {
      const r = await api.get('/job/create?job_date=2026-03-01T10:00:00Z&job_source_system=fs&job_source_model=dbo.Thing&job_source_record_id=5');
      assert.equal(r.status, 200);
      assert.match(r.type, /application\/json/);
      assert.equal(r.json.error_code, 0);
      assert.equal(r.json.error_text, 'None');
      assert.deepEqual(r.json.error_detail, {});
      const row = await api.table.store.getJob(r.json.job_id);
      assert.equal(row!.job_state, 'new');
      assert.equal(row!.job_run_count, 0);
      assert.equal(row!.job_source_record_id, 5);
      assert.equal(row!.job_source_system, 'fs');
      assert.equal(row!.job_date!.toISOString(), '2026-03-01T10:00:00.000Z');
    });

    test('GET /job/create with the short names (older FSO) and Odoo dates', async () => {
      const r = await api.get('/job/create?job_date=2026-03-01%2010:00:00&source_system=fso&source_model=x.thing&source_record_id=9&job_source_sosync_write_date=2026-03-01%2009:59:58.123456');
      assert.equal(r.status, 200, r.text);
      const row = await api.table.store.getJob(r.json.job_id);
      assert.equal(row!.job_source_system, 'fso');
      assert.equal(row!.job_source_model, 'x.thing');
      assert.equal(row!.job_source_record_id, 9);
      assert.equal(row!.job_source_sosync_write_date!.toISOString(), '2026-03-01T09:59:58.123Z');
    });

    test('POST /job/create with a JSON body, all optional fields', async () => {
      const body = {
        job_date: '2026-03-01T10:00:00.5+02:00', job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: 12,
        job_source_fields: { Vorname: 'Ä' }, job_source_target_record_id: '33', job_source_type: 'delete', job_priority: 3,
      };
      const r = await api.post('/job/create', JSON.stringify(body), 'application/json');
      assert.equal(r.status, 200, r.text);
      const row = await api.table.store.getJob(r.json.job_id);
      assert.equal(row!.job_date!.toISOString(), '2026-03-01T08:00:00.500Z');
      assert.deepEqual(JSON.parse(row!.job_source_fields!), { Vorname: 'Ä' });
      assert.equal(row!.job_source_target_record_id, 33);
      assert.equal(row!.job_source_type, 'delete');
      assert.equal(row!.job_priority, 3);
    });

    test('POST /job/create with a form body (short names)', async () => {
      const form = new URLSearchParams({ job_date: '2026-03-01 10:00:00', source_system: 'fso', source_model: 'x.thing', source_record_id: '4', job_source_fields: '{"name": "x"}' });
      const r = await api.post('/job/create', form.toString(), 'application/x-www-form-urlencoded');
      assert.equal(r.status, 200, r.text);
      assert.equal((await api.table.store.getJob(r.json.job_id))!.job_source_fields, '{"name": "x"}');
    });

    test("FSO addon's real /job/create requests are accepted as the addon sends them", async () => {
      const post = (data: Record<string, unknown>) => api.post('/job/create', pythonJsonAscii(data), 'application/json; charset=utf-8');
      // a partner changed in FSO: what fso_sosync's queue submits (Odoo Datetime, sosync_write_date as ISO text,
      // the watched fields as JSON text, unset Integer/Selection fields as false or 0)
      const watched = JSON.stringify({ lastname: 'Müller', city: 'Wien 🏠' });
      const changed = {
        job_date: '2026-03-01 10:00:00', job_source_system: 'fso', job_source_model: 'x.thing', job_source_record_id: 17,
        job_source_target_record_id: false, job_source_sosync_write_date: '2026-03-01T09:59:59.123456Z',
        job_source_fields: watched, job_source_type: false, job_source_merge_into_record_id: false,
        job_source_target_merge_into_record_id: 0, job_priority: 2000,
      };
      const body = pythonJsonAscii(changed);
      assert.match(body, /M\\u00fcller/, 'the body is ASCII with \\u escapes, as Python\'s json.dumps(ensure_ascii=True) writes it');
      assert.match(body, /\\ud83c\\udfe0/, 'a character beyond the BMP as a surrogate pair');
      assert.ok(/^[\x00-\x7f]*$/.test(body));
      const r = await post(changed);
      assert.equal(r.status, 200, r.text);
      const row = (await api.table.store.getJob(r.json.job_id))!;
      assert.equal(row.job_date!.toISOString(), '2026-03-01T10:00:00.000Z');
      assert.equal(row.job_source_sosync_write_date!.toISOString(), '2026-03-01T09:59:59.123Z');
      assert.deepEqual(JSON.parse(row.job_source_fields!), { lastname: 'Müller', city: 'Wien 🏠' });
      assert.equal(row.job_source_target_record_id, null);
      assert.equal(row.job_source_type, '');
      assert.equal(row.job_priority, 2000);

      // created in the GUI: no write date, no fields; known target id; job_source_fields as an object
      const gui = await post({ ...changed, job_source_sosync_write_date: false, job_source_fields: false, job_source_target_record_id: 55, job_priority: false });
      assert.equal(gui.status, 200, gui.text);
      const guiRow = (await api.table.store.getJob(gui.json.job_id))!;
      assert.equal(guiRow.job_source_sosync_write_date, null);
      assert.equal(guiRow.job_source_fields, null);
      assert.equal(guiRow.job_source_target_record_id, 55);
      assert.equal(guiRow.job_priority, 1000, 'no priority: the default');
      const asObject = await post({ ...changed, job_source_fields: { lastname: 'Ö' } });
      assert.deepEqual(JSON.parse((await api.table.store.getJob(asObject.json.job_id))!.job_source_fields!), { lastname: 'Ö' });

      // a delete job
      const deleted = await post({ ...changed, job_source_type: 'delete' });
      assert.equal((await api.table.store.getJob(deleted.json.job_id))!.job_source_type, 'delete');

      // a merge: refused with the field named, nothing stored
      const before = await count();
      for (const field of ['job_source_merge_into_record_id', 'job_source_target_merge_into_record_id']) {
        const merge = await post({ ...changed, [field]: 8 });
        assert.equal(merge.status, 400, merge.text);
        assert.equal(merge.json.error_text, 'DataError');
        assert.deepEqual(Object.keys(merge.json.error_detail), [field]);
        assert.match(merge.json.error_detail[field], /merge jobs are not supported/);
      }
      assert.equal(await count(), before);
    });

    test('every accepted date format', async () => {
      const formats: Array<[string, string]> = [
        ['2026-03-01T10:00:00Z', '2026-03-01T10:00:00.000Z'],
        ['2026-03-01T10:00:00', '2026-03-01T10:00:00.000Z'],
        ['2026-03-01T10:00:00.123Z', '2026-03-01T10:00:00.123Z'],
        ['2026-03-01T10:00:00.1234567', '2026-03-01T10:00:00.123Z'],
        ['2026-03-01T12:00:00+02:00', '2026-03-01T10:00:00.000Z'],
        ['2026-03-01T05:30:00-0430', '2026-03-01T10:00:00.000Z'],
        ['2026-03-01T10:00:00.250+00:00', '2026-03-01T10:00:00.250Z'],
        ['2026-03-01 10:00:00', '2026-03-01T10:00:00.000Z'],
        ['2026-03-01 10:00:00.654321', '2026-03-01T10:00:00.654Z'],
      ];
      for (const [text, iso] of formats) {
        const r = await api.get(`/job/create?job_date=${encodeURIComponent(text)}&source_system=fs&source_model=dbo.Thing&source_record_id=1`);
        assert.equal(r.status, 200, `${text}: ${r.text}`);
        assert.equal((await api.table.store.getJob(r.json.job_id))!.job_date!.toISOString(), iso, text);
      }
    });

    describe('validation: 400, error code and detail per field, nothing stored', () => {
      const valid: Record<string, string> = { job_date: '2026-03-01T10:00:00Z', job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: '1' };
      const cases: Array<[string, Record<string, string | undefined>, number, string, RegExp]> = [
        ['missing job_date', { job_date: undefined }, 1, 'job_date', /required/],
        ['missing system', { job_source_system: undefined }, 1, 'job_source_system', /required \(or source_system\)/],
        ['missing model', { job_source_model: undefined }, 1, 'job_source_model', /required/],
        ['missing record id', { job_source_record_id: undefined }, 1, 'job_source_record_id', /required/],
        ['empty value', { job_source_model: '' }, 2, 'job_source_model', /must not be empty/],
        ['unknown system', { job_source_system: 'crm' }, 2, 'job_source_system', /not fs or fso/],
        ['record id not a number', { job_source_record_id: 'abc' }, 2, 'job_source_record_id', /positive 32-bit integer/],
        ['record id zero', { job_source_record_id: '0' }, 2, 'job_source_record_id', /positive 32-bit integer/],
        ['record id negative', { job_source_record_id: '-3' }, 2, 'job_source_record_id', /positive 32-bit integer/],
        ['record id too large', { job_source_record_id: '2147483648' }, 2, 'job_source_record_id', /positive 32-bit integer/],
        ['bad date', { job_date: '01.03.2026' }, 2, 'job_date', /not a date/],
        ['impossible date', { job_date: '2026-02-30T10:00:00Z' }, 2, 'job_date', /not a date/],
        ['bad write date', { job_source_sosync_write_date: 'yesterday' }, 2, 'job_source_sosync_write_date', /not a date/],
        ['model without flow', { job_source_model: 'res.users' }, 2, 'job_source_model', /no sync flow/],
        ['bad source fields', { job_source_fields: '{oops' }, 2, 'job_source_fields', /not valid JSON/],
        ['bad source type', { job_source_type: 'merge' }, 2, 'job_source_type', /"" or "delete"/],
        ['bad priority', { job_priority: 'high' }, 2, 'job_priority', /not an integer/],
        ['bad target id', { job_source_target_record_id: 'x' }, 2, 'job_source_target_record_id', /positive 32-bit/],
      ];
      for (const [name, change, code, field, problem] of cases) {
        test(name, async () => {
          const before = await count();
          const params = { ...valid, ...change };
          const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined) as [string, string][]);
          for (const accept of [{}, XML]) {
            const r = await api.get(`/job/create?${query}`, accept);
            assert.equal(r.status, 400);
            if ('accept' in accept) {
              const doc = xml.parse(r.text).job_result;
              assert.equal(doc.error_code, code);
              assert.match(String(doc.error_detail[field]), problem);
            } else {
              assert.equal(r.json.job_id, null);
              assert.equal(r.json.error_code, code);
              assert.equal(r.json.error_text, code === 1 ? 'InterfaceError' : 'DataError');
              assert.match(r.json.error_detail[field], problem);
            }
          }
          assert.equal(await count(), before, 'nothing stored');
        });
      }

      test('several problems at once: missing wins the code, every field is named', async () => {
        const r = await api.get('/job/create?job_date=nope&source_system=xx');
        assert.equal(r.json.error_code, 1);
        assert.deepEqual(Object.keys(r.json.error_detail).sort(), ['job_date', 'job_source_model', 'job_source_record_id', 'job_source_system']);
      });

      test('a malformed JSON body', async () => {
        const before = await count();
        const r = await api.post('/job/create', '{"job_date": ', 'application/json');
        assert.equal(r.status, 400);
        assert.equal(r.json.error_code, 1);
        assert.match(r.json.error_detail.body, /not valid JSON/);
        assert.equal(await count(), before);
      });
    });

    test('/job/create answers in XML when asked', async () => {
      for (const accept of ['application/xml', 'text/xml']) {
        const r = await api.get('/job/create?job_date=2026-03-01T10:00:00Z&source_system=fs&source_model=dbo.Thing&source_record_id=2', { accept });
        assert.equal(r.status, 200);
        assert.match(r.type, /application\/xml/);
        const doc = xml.parse(r.text);
        assert.ok(doc.job_result.job_id > 0);
        assert.equal(doc.job_result.error_code, 0);
        assert.equal(doc.job_result.error_text, 'None');
      }
    });

    test('/job/info/{id} in JSON and XML; 404 for unknown and non-numeric ids', async () => {
      const created = await api.get('/job/create?job_date=2026-03-01T10:00:00Z&source_system=fs&source_model=dbo.Thing&source_record_id=77');
      const id = created.json.job_id;
      const j = await api.get(`/job/info/${id}`);
      assert.equal(j.status, 200);
      assert.equal(j.json.job_id, id);
      assert.equal(j.json.job_source_record_id, 77);
      assert.equal(j.json.job_date, '2026-03-01T10:00:00.000Z');
      assert.ok('sync_target_answer' in j.json, 'every column present');
      const x = await api.get(`/job/info/${id}`, XML);
      const row = xml.parse(x.text).sync_table;
      assert.equal(row.job_id, id);
      assert.equal(row.job_state, 'new');
      for (const bad of ['999999', 'abc', '1.5', '-1']) {
        const r = await api.get(`/job/info/${bad}`);
        assert.equal(r.status, 404, bad);
        assert.equal(r.json.job_id, null);
        assert.equal(r.json.error_code, 2);
        assert.ok(r.json.error_detail.job_id, bad);
        const rx = await api.get(`/job/info/${bad}`, XML);
        assert.equal(rx.status, 404);
        assert.ok(xml.parse(rx.text).job_result.error_detail.job_id);
      }
    });

    test('/job/list streams with limit, cursor, offset and filters, in JSON and XML', async () => {
      await api.table.db.query('DELETE FROM sync_table');
      const ids: number[] = [];
      for (let i = 0; i < 12; i++) {
        const r = await api.get(`/job/create?job_date=2026-03-0${1 + (i % 3)}T10:00:00Z&source_system=${i % 2 ? 'fso' : 'fs'}&source_model=${i % 2 ? 'x.thing' : 'dbo.Thing'}&source_record_id=${i + 1}`);
        ids.push(r.json.job_id);
      }
      await api.table.store.updateJob(ids[3], { job_state: 'done' });
      const page1 = await api.get('/job/list?limit=5');
      assert.equal(page1.status, 200);
      assert.deepEqual(page1.json.jobs.map((j: { job_id: number }) => j.job_id), ids.slice().reverse().slice(0, 5));
      assert.equal(page1.json.count, 5);
      const page2 = await api.get(`/job/list?limit=5&cursor=${page1.json.next_cursor}`);
      assert.deepEqual(page2.json.jobs.map((j: { job_id: number }) => j.job_id), ids.slice().reverse().slice(5, 10));
      const last = await api.get(`/job/list?limit=5&cursor=${page2.json.next_cursor}`);
      assert.equal(last.json.count, 2);
      assert.equal(last.json.next_cursor, null);
      const asc = await api.get('/job/list?order=asc&offset=2&limit=3');
      assert.deepEqual(asc.json.jobs.map((j: { job_id: number }) => j.job_id), ids.slice(2, 5));
      assert.deepEqual((await api.get('/job/list?state=done')).json.jobs.map((j: { job_id: number }) => j.job_id), [ids[3]]);
      assert.equal((await api.get('/job/list?system=fso&limit=100')).json.count, 6);
      assert.equal((await api.get('/job/list?model=dbo.Thing')).json.count, 6);
      assert.equal((await api.get('/job/list?since=2026-03-03')).json.count, 4);
      assert.equal((await api.get('/job/list?since=2026-03-02T00:00:00Z&until=2026-03-03')).json.count, 4);
      const x = await api.get('/job/list?limit=2', XML);
      assert.match(x.type, /application\/xml/);
      const doc = xml.parse(x.text).job_list;
      assert.equal(doc.sync_table.length, 2);
      assert.equal(doc.count, 2);
      for (const [q, field] of [['limit=0', 'limit'], ['limit=x', 'limit'], ['state=finished', 'state'], ['system=crm', 'system'], ['since=soon', 'since'], ['order=up', 'order'], ['offset=1&cursor=2', 'offset'], ['model=%00', 'model'], ['model=dbo.Thing%00', 'model']]) {
        const r = await api.get(`/job/list?${q}`);
        assert.equal(r.status, 400, q);
        assert.ok(r.json.error_detail[field], `${q} names ${field}`);
      }
    });

    test('/job/list that the database cannot read is answered 500 with the reason, not a list cut off', async () => {
      await api.table.db.query('ALTER TABLE sync_table RENAME TO sync_table_away');
      try {
        const r = await api.get('/job/list?limit=3');
        assert.equal(r.status, 500, r.text);
        assert.match(r.json.error, /sync_table/);
      } finally {
        await api.table.db.query('ALTER TABLE sync_table_away RENAME TO sync_table');
      }
      assert.equal((await api.get('/job/list?limit=3')).status, 200);
    });

    test('/service/version is the 40-hex commit id as text', async () => {
      const r = await api.get('/service/version');
      assert.equal(r.status, 200);
      assert.match(r.type, /text\/plain/);
      assert.match(r.text, /^[0-9a-f]{40}$/);
    });

    test('unknown routes: 404 in the negotiated format', async () => {
      const j = await api.get('/nope');
      assert.equal(j.status, 404);
      assert.equal(j.json.error, 'not found');
      const x = await api.get('/job/nope', XML);
      assert.equal(x.status, 404);
      assert.equal(xml.parse(x.text).error.path, '/job/nope');
    });
  });
}
