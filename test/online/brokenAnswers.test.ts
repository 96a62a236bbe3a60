/**
 * Broken answers from FSO (issue 12 point 4): a proxy's HTML page, a body that is not XML, a
 * truncated body, a Fault without a traceback, values of the wrong type. Each becomes an error
 * naming FSO, the host and the call; transient ones (HTTP 5xx, a connection dropped mid-answer)
 * say so, the others do not. The client keeps working once the answers are good again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createOnlineClient, OnlineFaultError, OnlineProtocolError, OnlineUnavailableError, type OnlineClient } from '../../src/adapters/online/index.ts';
import { serializeFault, serializeMethodResponse } from '../../src/adapters/online/wire.ts';
import { failureTraits } from '../../src/adapters/failure.ts';
import { silentLogger } from '../../src/log.ts';
import { startOnlineStandIn, type OnlineStandIn } from '../../sandbox/online/index.ts';

let fso: OnlineStandIn;
let client: OnlineClient;

before(async () => {
  fso = await startOnlineStandIn({ database: 'demo', users: [{ login: 'sosync', password: 'pw' }], logger: silentLogger(), seed: true });
  client = createOnlineClient({ host: fso.url, database: 'demo', user: 'sosync', password: 'pw', timeoutMs: 1500 }, silentLogger());
  await client.searchRead('res.partner', [], { limit: 1 }); // logged in, field types cached
});

after(async () => {
  fso.faults.answerRaw(null);
  client.close();
  await fso.close();
});

async function failure(call: () => Promise<unknown>): Promise<Error> {
  try {
    await call();
  } catch (err) {
    return err as Error;
  }
  assert.fail('the call succeeded');
}

const htmlPage = '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>';

describe('broken FSO answers', () => {
  test('a proxy\'s 502 HTML page: unavailable (transient), naming the call and the start of the page', async () => {
    fso.faults.answerRaw({ status: 502, contentType: 'text/html', body: htmlPage });
    const err = await failure(() => client.searchRead('res.partner', [], { limit: 1 }));
    assert.ok(err instanceof OnlineUnavailableError, err.message);
    assert.match(err.message, new RegExp(`^FSO res\\.partner\\.search_read at ${fso.url} is unavailable: HTTP 502 .*502 Bad Gateway`));
    assert.deepEqual(failureTraits(err), { system: 'fso', transient: true, unavailable: true, timeout: false });
  });

  test('an HTML page with status 200: an invalid answer, not transient', async () => {
    fso.faults.answerRaw({ status: 200, contentType: 'text/html', body: htmlPage });
    const err = await failure(() => client.searchRead('res.partner', [], { limit: 1 }));
    assert.ok(err instanceof OnlineProtocolError, err.message);
    assert.match(err.message, /^FSO res\.partner\.search_read at .* sent an invalid XML-RPC answer: .*502 Bad Gateway/);
    assert.equal(failureTraits(err)?.transient, false);
  });

  test('a body that is not XML at all', async () => {
    fso.faults.answerRaw({ status: 200, body: 'Internal Server Error: worker died' });
    const err = await failure(() => client.write('res.partner', 1, { lastname: 'X' }));
    assert.ok(err instanceof OnlineProtocolError, err.message);
    assert.match(err.message, /^FSO res\.partner\.write at .* sent an invalid XML-RPC answer: .*worker died/);
  });

  test('a truncated body (connection dropped mid-answer): unavailable, transient', async () => {
    fso.faults.answerRaw({ status: 200, body: serializeMethodResponse([{ id: 1, name: 'A'.repeat(2000) }]), truncate: true });
    const err = await failure(() => client.searchRead('res.partner', [], { limit: 1 }));
    assert.ok(err instanceof OnlineUnavailableError || err instanceof OnlineProtocolError, `${err.name}: ${err.message}`);
    assert.match(err.message, /^FSO res\.partner\.search_read at /);
  });

  test('a Fault without a traceback: its text is the message', async () => {
    fso.faults.answerRaw({ status: 200, body: serializeFault({ faultCode: 1, faultString: 'database is locked' }) });
    const err = await failure(() => client.create('res.partner', { lastname: 'Y' }));
    assert.ok(err instanceof OnlineFaultError, err.message);
    assert.equal(err.message, 'FSO res.partner.create failed: database is locked');
    assert.equal(failureTraits(err)?.transient, false);
  });

  test('an empty Fault', async () => {
    fso.faults.answerRaw({ status: 200, body: serializeFault({ faultCode: 1, faultString: '' }) });
    const err = await failure(() => client.unlink('res.partner', 1));
    assert.ok(err instanceof OnlineFaultError, err.message);
    assert.equal(err.message, 'FSO res.partner.unlink failed: (empty fault)');
  });

  test('values of the wrong type: records that are not records, an id that is not a number', async () => {
    fso.faults.answerRaw({ status: 200, body: serializeMethodResponse(['not', 'records']) });
    const list = await failure(() => client.searchRead('res.partner', [], { limit: 1 }));
    assert.ok(list instanceof OnlineProtocolError, list.message);
    assert.match(list.message, /^FSO res\.partner\.search_read at .* expected a list of records with ids, got \["not","records"\]/);
    fso.faults.answerRaw({ status: 200, body: serializeMethodResponse('seven') });
    const created = await failure(() => client.create('res.partner', { lastname: 'Z' }));
    assert.ok(created instanceof OnlineProtocolError, created.message);
    assert.match(created.message, /^FSO res\.partner\.create at .* returned no id but "seven"/);
    fso.faults.answerRaw({ status: 200, body: serializeMethodResponse({ unexpected: true }) });
    const read = await failure(() => client.read('res.partner', [1]));
    assert.match(read.message, /^FSO res\.partner\.read at /);
  });

  test('good answers again: the same client works', async () => {
    fso.faults.answerRaw(null);
    const rows = await client.searchRead('res.partner', [], { limit: 1 });
    assert.equal(rows.length, 1);
  });
});
