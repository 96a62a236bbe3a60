import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatOdooDatetime, formatOdooDatetimeMicro, many2oneId, normaliseOdooRecord, normaliseOdooValue,
  nullIfFalse, parseOdooDatetime, toOdooValue,
} from '../../src/adapters/online/index.ts';
import { odooFaultMessage } from '../../src/adapters/online/client.ts';

test('Odoo datetimes are UTC and round-trip through Date', () => {
  const d = parseOdooDatetime('2024-03-31 01:30:05');
  assert.equal(d.toISOString(), '2024-03-31T01:30:05.000Z');
  assert.equal(formatOdooDatetime(d), '2024-03-31 01:30:05');
  assert.equal(parseOdooDatetime('2024-03-31 01:30:05.123456').getUTCMilliseconds(), 123);
  assert.equal(formatOdooDatetimeMicro(new Date('2024-03-31T01:30:05.123Z')), '2024-03-31 01:30:05.123000');
  assert.throws(() => parseOdooDatetime('2024-02-30 00:00:00'));
  assert.throws(() => parseOdooDatetime('yesterday'));
});

test('false becomes null except for booleans', () => {
  assert.equal(normaliseOdooValue(false, 'char'), null);
  assert.equal(normaliseOdooValue(false, 'integer'), null);
  assert.equal(normaliseOdooValue(false, 'many2one'), null);
  assert.equal(normaliseOdooValue(false, 'datetime'), null);
  assert.equal(normaliseOdooValue(false, 'boolean'), false);
  assert.equal(normaliseOdooValue(true, 'boolean'), true);
  assert.equal(normaliseOdooValue(0, 'integer'), 0);
  assert.equal(nullIfFalse(false), null);
  assert.equal(nullIfFalse('x'), 'x');
});

test('many2one pairs become { id, name }, datetimes Date, dates stay day strings', () => {
  const rec = normaliseOdooRecord(
    { id: 7, country_id: [12, 'Austria'], write_date: '2024-01-02 03:04:05', birthdate_web: '1980-05-06', email: false, newsletter_web: false },
    { country_id: 'many2one', write_date: 'datetime', birthdate_web: 'date', email: 'char', newsletter_web: 'boolean' },
  );
  assert.deepEqual(rec, {
    id: 7, country_id: { id: 12, name: 'Austria' }, write_date: new Date('2024-01-02T03:04:05Z'),
    birthdate_web: '1980-05-06', email: null, newsletter_web: false,
  });
});

test('values going to Odoo: null → false, Date → UTC text, many2one → id, undefined dropped', () => {
  assert.deepEqual(
    toOdooValue({ a: null, b: new Date('2024-01-02T03:04:05.900Z'), c: { id: 4, name: 'X' }, d: undefined, e: 'x' }),
    { a: false, b: '2024-01-02 03:04:05', c: 4, e: 'x' },
  );
  assert.deepEqual(toOdooValue([['write_date', '>', new Date('2024-01-01T00:00:00Z')]]), [['write_date', '>', '2024-01-01 00:00:00']]);
});

test('many2oneId reads every form', () => {
  assert.equal(many2oneId({ id: 3, name: 'x' }), 3);
  assert.equal(many2oneId([3, 'x']), 3);
  assert.equal(many2oneId(3), 3);
  assert.equal(many2oneId(false), null);
  assert.equal(many2oneId(null), null);
});

test("Odoo's message is the first line, or the last line of a bare traceback", () => {
  assert.equal(odooFaultMessage('Access Denied'), 'Access Denied');
  assert.equal(odooFaultMessage('Record does not exist\n(Records: x)\nTraceback (most recent call last):\n  File "a"\nMissingError: y'), 'Record does not exist');
  assert.equal(odooFaultMessage('Traceback (most recent call last):\n  File "x.py", line 1\nValueError: Invalid field \'foo\'\n'), "ValueError: Invalid field 'foo'");
});
