/**
 * The XML-RPC reader gives what the xmlrpc package's deserializer gave for every message the
 * writer writes and for what Odoo (Python's xmlrpc.client) writes, and refuses malformed XML
 * saying where. The writer writes what the package's serializer wrote, byte for byte, except that
 * a string is always escaped text (the package's CDATA broke on a second "]]>").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { readXmlrpc } from '../../src/adapters/online/xmlrpcReader.ts';
import { parseMethodCall, parseMethodResponse, serializeFault, serializeMethodCall, serializeMethodResponse } from '../../src/adapters/online/wire.ts';

const require = createRequire(import.meta.url);
type Deserializer = {
  deserializeMethodResponse(stream: NodeJS.ReadableStream, cb: (err: unknown, value?: unknown) => void): void;
  deserializeMethodCall(stream: NodeJS.ReadableStream, cb: (err: unknown, method?: string, params?: unknown[]) => void): void;
};
const DeserializerOf = require('xmlrpc/lib/deserializer.js') as new () => Deserializer;
const packageSerializer = require('xmlrpc/lib/serializer.js') as {
  serializeMethodCall(method: string, params: unknown[]): string;
  serializeMethodResponse(value: unknown): string;
  serializeFault(fault: unknown): string;
};

/** the xmlrpc package's reading of a message: the reference the reader must match */
function reference(xml: string, kind: 'response' | 'call'): Promise<unknown> {
  return new Promise((resolve) => {
    const stream = new PassThrough();
    stream.end(xml);
    const d = new DeserializerOf();
    if (kind === 'response') {
      d.deserializeMethodResponse(stream, (err, value) => resolve(err ? { error: err } : { value }));
    } else {
      d.deserializeMethodCall(stream, (err, method, params) => resolve(err ? { error: err } : { method, params }));
    }
  });
}

const text = fc.string({ unit: fc.constantFrom('a', 'Z', '7', ' ', '\n', '\t', '<', '>', '&', '"', "'", ']]>', 'ä', '€', '😀', ';', '#') });
const leaf = fc.oneof(
  fc.integer({ min: -2147483648, max: 2147483647 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
  fc.boolean(),
  text,
  fc.constant(null),
  fc.date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true })
    .map((d) => new Date(Math.floor(d.getTime() / 1000) * 1000)),
  fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)),
);
const value = fc.letrec((tie) => ({
  any: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('struct')),
  array: fc.array(tie('any'), { maxLength: 4 }),
  struct: fc.dictionary(text.filter((k) => k !== '__proto__'), tie('any'), { maxKeys: 4, noNullPrototype: true }),
})).any;

/** no string in `v` that the package wrote as CDATA (one holding "<", "&" or "]]>") */
const writtenAsText = (v: unknown): boolean => {
  if (typeof v === 'string') return !/[<&]|]]>/.test(v);
  if (Array.isArray(v)) return v.every(writtenAsText);
  if (v && typeof v === 'object' && !(v instanceof Date) && !Buffer.isBuffer(v)) return Object.entries(v).every(([k, x]) => writtenAsText(k) && writtenAsText(x));
  return true;
};

test('the writer writes what the xmlrpc serializer wrote, byte for byte, for every value it wrote as text', () => {
  fc.assert(fc.property(value.filter(writtenAsText), (v) => {
    assert.equal(serializeMethodResponse(v), packageSerializer.serializeMethodResponse(v));
    assert.equal(serializeMethodCall('execute_kw', [v, 'x', []]), packageSerializer.serializeMethodCall('execute_kw', [v, 'x', []]));
  }), { numRuns: 300 });
  assert.equal(serializeMethodCall('version', []), packageSerializer.serializeMethodCall('version', []));
  assert.equal(serializeFault({ faultCode: 2, faultString: 'no' }), packageSerializer.serializeFault({ faultCode: 2, faultString: 'no' }));
  assert.equal(serializeMethodResponse([undefined, {}, [], '']), packageSerializer.serializeMethodResponse([undefined, {}, [], '']));
});

test('every value the writer writes reads back as itself, a string with "]]>" twice or a carriage return too', () => {
  fc.assert(fc.property(value, (v) => {
    const read = readXmlrpc(serializeMethodResponse(v));
    assert.deepStrictEqual((read as { value: unknown }).value, v);
  }), { numRuns: 300 });
  for (const tricky of [']]>]]><a', 'a]]>b]]>c&d<e', 'line\r\nbreak', '<![CDATA[x]]>']) {
    assert.deepStrictEqual(readXmlrpc(serializeMethodCall('write', [{ name: tricky }])), { type: 'methodCall', method: 'write', params: [{ name: tricky }] });
  }
});

test('a character XML cannot carry is refused with where it is', () => {
  assert.throws(() => serializeMethodCall('write', [{ name: 'Anna\u0001' }]), /XML cannot carry the character U\+0001 at index 4 of the string "Anna\\u0001"/);
  assert.throws(() => serializeMethodResponse({ ['bad\u0000key']: 1 }), /U\+0000 at index 3/);
});

test('every response the writer writes reads as the xmlrpc deserializer reads it', async () => {
  await fc.assert(fc.asyncProperty(value, async (v) => {
    const xml = serializeMethodResponse(v);
    const expected = await reference(xml, 'response') as { value: unknown };
    const read = readXmlrpc(xml);
    assert.equal(read.type, 'methodResponse');
    assert.deepStrictEqual((read as { value: unknown }).value, expected.value);
  }), { numRuns: 300 });
});

test('every call the writer writes reads as the xmlrpc deserializer reads it', async () => {
  await fc.assert(fc.asyncProperty(fc.string({ minLength: 1 }).filter((m) => /^[\w.]+$/.test(m)), fc.array(value, { maxLength: 4 }), async (method, params) => {
    const xml = serializeMethodCall(method, params);
    const expected = await reference(xml, 'call') as { method: string; params: unknown[] };
    assert.deepStrictEqual(await parseMethodCall(xml), { method: expected.method, params: expected.params });
  }), { numRuns: 200 });
});

test('Odoo\'s own answers: whitespace between elements, untyped values, nil, i8, upper case, comments, entities, CDATA', async () => {
  const odoo = `<?xml version='1.0'?>
<methodResponse>
<params>
<param>
<value><array><data>
<value><struct>
<member>
<name>id</name>
<value><int>7</int></value>
</member>
<member>
<name>name</name>
<value><string>Anna &amp; Bert &lt;3 &#228;&#x20AC;</string></value>
</member>
<member>
<name>untyped</name>
<value>plain text</value>
</member>
<member>
<name>empty</name>
<value/>
</member>
<member>
<name>parent_id</name>
<value><boolean>0</boolean></value>
</member>
<member>
<name>big</name>
<value><i8>9007199254740993</i8></value>
</member>
<member>
<name>none</name>
<value><nil/></value>
</member>
<!-- a comment -->
<member>
<name>cdata</name>
<value><string><![CDATA[<not a tag> & more]]></string></value>
</member>
</struct></value>
</data></array></value>
</param>
</params>
</methodResponse>
`;
  const expected = { id: 7, name: 'Anna & Bert <3 ä€', untyped: 'plain text', empty: '', parent_id: false, big: '9007199254740993', none: null, cdata: '<not a tag> & more' };
  assert.deepStrictEqual(await parseMethodResponse(odoo), { value: [expected] });
  assert.deepStrictEqual((await reference(odoo, 'response') as { value: unknown }).value, [expected], 'the reference agrees');
  const upper = '<METHODRESPONSE><PARAMS><PARAM><VALUE><INT>5</INT></VALUE></PARAM></PARAMS></METHODRESPONSE>';
  assert.deepStrictEqual(await parseMethodResponse(upper), { value: 5 });
});

test('an "&" or "<" that starts nothing stays as written, as the deserializer left it', async () => {
  for (const inner of ['a & b', 'x <3 y', '<]]', '&#;', 'a &b c']) {
    const xml = `<methodResponse><params><param><value><string>${inner}</string></value></param></params></methodResponse>`;
    assert.deepStrictEqual(await parseMethodResponse(xml), { value: inner });
    assert.deepStrictEqual(await reference(xml, 'response'), { value: inner }, 'the reference agrees');
  }
  // sax also knew HTML's entities; XML has five, and an XML-RPC writer sends no others
  assert.deepStrictEqual(await parseMethodResponse('<methodResponse><params><param><value>a &nbsp; b</value></param></params></methodResponse>'), { value: 'a &nbsp; b' });
});

test('a fault is a result with its code and text', async () => {
  assert.deepStrictEqual(await parseMethodResponse(serializeFault({ faultCode: 2, faultString: 'Access <Denied>' })),
    { fault: { faultCode: 2, faultString: 'Access <Denied>' } });
});

test('malformed or foreign XML is refused with what is wrong and where', async () => {
  const cases: [string, RegExp][] = [
    ['<methodResponse><params><param><value><int>1</int></value></param></params>', /<methodresponse> is not closed/],
    ['<methodResponse><params><param><value><int>1</string></value></param></params></methodResponse>', /<\/string> where <\/int> was expected \(character \d+\)/],
    ['<methodResponse><params><param><value><int>one</int></value></param></params></methodResponse>', /Expected an integer but got 'one'/],
    ['<methodResponse><params><param><value><boolean>yes</boolean></value></param></params></methodResponse>', /Illegal boolean value 'yes'/],
    ['<methodResponse><params><param><value><html>1</html></value></param></params></methodResponse>', /Unknown XML-RPC tag 'HTML'/],
    ['<methodResponse><params><param><value><int>1</int></value></param><param><value><int>2</int></value></param></params></methodResponse>', /more than one param/],
    ['<html><body>502 Bad Gateway</body></html>', /Unknown XML-RPC tag/],
    ['502 Bad Gateway', /text outside the document element/],
    ['', /Invalid XML-RPC message/],
    ['<methodResponse><params><param><value><int>1</int></value></param></params></methodResponse><methodResponse/>', /a second document element/],
    ['<methodResponse><params><param><value><string>a</string></value></param></params></methodResponse trailing', /a tag is not closed/],
  ];
  for (const [xml, message] of cases) {
    await assert.rejects(parseMethodResponse(xml), message, xml);
  }
  await assert.rejects(parseMethodResponse(serializeMethodCall('version', [])), /Not a method response/);
  await assert.rejects(parseMethodCall(serializeMethodResponse(1)), /Not a method call/);
});
