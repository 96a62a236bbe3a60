/**
 * XML-RPC answers carrying a DTD or entity declarations (billion laughs, external entities) are
 * refused by the FSO client before any parsing, from a loopback server speaking HTTP like FSO.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createOnlineClient, OnlineProtocolError, type OnlineClient } from '../../src/adapters/online/index.ts';
import { parseMethodCall, serializeMethodCall } from '../../src/adapters/online/wire.ts';
import { silentLogger } from '../../src/log.ts';

/** Ten levels of ten: 10^10 "lol"s when expanded. */
const billionLaughs = [
  '<?xml version="1.0"?>',
  '<!DOCTYPE methodResponse [',
  '  <!ENTITY lol "lol">',
  ...Array.from({ length: 9 }, (_, i) => `  <!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`),
  ']>',
  '<methodResponse><params><param><value><string>&lol9;</string></value></param></params></methodResponse>',
].join('\n');

const externalEntity = [
  '<?xml version="1.0"?>',
  '<!DOCTYPE methodResponse [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>',
  '<methodResponse><params><param><value><string>&secret;</string></value></param></params></methodResponse>',
].join('\n');

/** An entity declaration without a DOCTYPE line in front (not well-formed, still refused). */
const bareEntity = '<?xml version="1.0"?>\n<!ENTITY x "y">\n<methodResponse><params><param><value><int>1</int></value></param></params></methodResponse>';

describe('FSO answers with document type declarations', () => {
  let server: http.Server;
  let answer = '';
  let client: OnlineClient;
  before(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'text/xml' }).end(answer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    client = createOnlineClient({ host: `http://127.0.0.1:${port}`, database: 'db', user: 'u', password: 'p' }, silentLogger());
  });
  after(async () => {
    client.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  for (const [name, body, declaration] of [
    ['billion laughs', billionLaughs, 'DOCTYPE'],
    ['an external entity', externalEntity, 'DOCTYPE'],
    ['a bare entity declaration', bareEntity, 'ENTITY'],
    ['a lower-case doctype', billionLaughs.replace('<!DOCTYPE', '<!doctype'), 'DOCTYPE'],
  ] as const) {
    test(`${name} is refused without expansion`, async () => {
      answer = body;
      const err = await client.version().then(() => null, (e: unknown) => e);
      assert.ok(err instanceof OnlineProtocolError, `expected an OnlineProtocolError, got ${String(err)}`);
      assert.match(err.message, new RegExp(`contains a <!${declaration} declaration; refused without parsing`));
      assert.ok(!err.message.includes('lollollol'), 'nothing was expanded');
    });
  }

  test('a plain answer still parses (the check does not refuse XML-RPC itself)', async () => {
    answer = '<?xml version="1.0"?>\n<methodResponse><params><param><value><struct><member><name>server_version</name><value><string>16.0 &amp; more</string></value></member></struct></value></param></params></methodResponse>';
    assert.deepEqual(await client.version(), { server_version: '16.0 & more' });
  });

  test('the stand-in\'s side refuses a methodCall with a DTD the same way', async () => {
    const call = serializeMethodCall('version', []).replace('<methodCall>', '<!DOCTYPE methodCall [<!ENTITY a "b">]>\n<methodCall>');
    await assert.rejects(parseMethodCall(call), /contains a <!DOCTYPE declaration/);
  });
});
