/**
 * Search domains, through the production client and the stand-in: every operator, the prefix
 * operators and implicit and, dotted paths, and Odoo's treatment of empty values.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createOnlineClient, type Domain, type OnlineClient } from '../../src/adapters/online/index.ts';
import { silentLogger } from '../../src/log.ts';
import { startOnlineStandIn, type OnlineStandIn } from '../../sandbox/online/index.ts';

let fso: OnlineStandIn;
let client: OnlineClient;
const ids: Record<string, number> = {};

before(async () => {
  fso = await startOnlineStandIn({ database: 'dom', users: [{ login: 'u', password: 'p' }], logger: silentLogger() });
  client = createOnlineClient({ host: fso.url, database: 'dom', user: 'u', password: 'p', timeoutMs: 5000 }, silentLogger());
  const at = fso.store.countryId('AT')!;
  const de = fso.store.countryId('DE')!;
  const rows: [string, Record<string, unknown>][] = [
    ['anna', { firstname: 'Anna', lastname: 'Gruber', zip: '1010', city: 'Wien', country_id: at, sosync_fs_id: 10, birthdate_web: '1970-01-01', newsletter_web: true }],
    ['bert', { firstname: 'Bert', lastname: 'Huber', zip: '8010', city: 'Graz', country_id: at, sosync_fs_id: 20, birthdate_web: '1980-06-15' }],
    ['cora', { firstname: 'Cora', lastname: 'gruber-Maier', zip: '80331', city: 'München', country_id: de, sosync_fs_id: 30, birthdate_web: '1990-12-31', newsletter_web: true }],
    ['dora', { firstname: 'Dora', lastname: 'Ohneland', zip: false, city: false }],
  ];
  for (const [key, values] of rows) ids[key] = fso.store.create('res.partner', values);
});

after(async () => {
  client.close();
  await fso.close();
});

async function names(domain: Domain): Promise<string[]> {
  const found = new Set(await client.search('res.partner', domain));
  return Object.entries(ids).filter(([, id]) => found.has(id)).map(([k]) => k);
}

const cases: [string, Domain, string[]][] = [
  ['=', [['city', '=', 'Graz']], ['bert']],
  ['= false matches empty', [['zip', '=', false]], ['dora']],
  ['!= includes empty values', [['city', '!=', 'Graz']], ['anna', 'cora', 'dora']],
  ['!= false matches set values', [['zip', '!=', false]], ['anna', 'bert', 'cora']],
  ['<', [['sosync_fs_id', '<', 20]], ['anna']],
  ['<=', [['sosync_fs_id', '<=', 20]], ['anna', 'bert']],
  ['>', [['sosync_fs_id', '>', 20]], ['cora']],
  ['>=', [['sosync_fs_id', '>=', 20]], ['bert', 'cora']],
  ['> on dates', [['birthdate_web', '>', '1975-01-01']], ['bert', 'cora']],
  ['in', [['zip', 'in', ['1010', '80331', '9999']]], ['anna', 'cora']],
  ['in with false', [['zip', 'in', ['1010', false]]], ['anna', 'dora']],
  ['not in includes empty values', [['zip', 'not in', ['1010', '8010']]], ['cora', 'dora']],
  ['like is case-sensitive substring', [['lastname', 'like', 'ruber']], ['anna', 'cora']],
  ['like is case-sensitive', [['lastname', 'like', 'Gruber']], ['anna']],
  ['ilike ignores case', [['lastname', 'ilike', 'GRUBER']], ['anna', 'cora']],
  ['ilike with umlaut', [['city', 'ilike', 'münch']], ['cora']],
  ['=like takes the pattern as is', [['zip', '=like', '80%']], ['bert', 'cora']],
  ['=like with _', [['zip', '=like', '801_']], ['bert']],
  ['=ilike', [['lastname', '=ilike', 'GRUBER%']], ['anna', 'cora']],
  ['not ilike includes empty values', [['city', 'not ilike', 'wien']], ['bert', 'cora', 'dora']],
  ['implicit &', [['country_id.code', '=', 'AT'], ['sosync_fs_id', '>', 10]], ['bert']],
  ['prefix &', ['&', ['country_id.code', '=', 'AT'], ['sosync_fs_id', '>', 10]], ['bert']],
  ['prefix |', ['|', ['city', '=', 'Wien'], ['city', '=', 'Graz']], ['anna', 'bert']],
  ['!', ['!', ['city', '=', 'Wien']], ['bert', 'cora', 'dora']],
  ['nested', ['|', '&', ['newsletter_web', '=', true], ['country_id.code', '=', 'DE'], ['zip', '=', false]], ['cora', 'dora']],
  ['many2one by id', [['country_id', '=', 0]], []],
  ['many2one by display name', [['country_id', 'ilike', 'austr']], ['anna', 'bert']],
  ['many2one empty', [['country_id', '=', false]], ['dora']],
  ['boolean true', [['newsletter_web', '=', true]], ['anna', 'cora']],
  ['boolean false', [['newsletter_web', '=', false]], ['bert', 'dora']],
  ['constant true leaf', [[1, '=', 1] as unknown as Domain[number]], ['anna', 'bert', 'cora', 'dora']],
  ['empty domain', [], ['anna', 'bert', 'cora', 'dora']],
];

for (const [name, domain, expected] of cases) {
  test(`domain ${name}`, async () => {
    assert.deepEqual(await names(domain), expected);
  });
}

test('many2one by id matches', async () => {
  assert.deepEqual(await names([['country_id', '=', fso.store.countryId('DE')!]]), ['cora']);
});

test('a Date in a domain is sent as Odoo datetime text', async () => {
  const future = new Date(Date.now() + 86_400_000);
  assert.deepEqual(await names([['write_date', '<', future]]), ['anna', 'bert', 'cora', 'dora']);
  assert.deepEqual(await names([['write_date', '>', future]]), []);
  const recorded = client.recording();
  await recorded.search('res.partner', [['write_date', '<', future]]);
  assert.match(recorded.exchanges[0].request, /<string>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d<\/string>/);
});

test('res.country holds all 249 ISO codes', async () => {
  assert.equal(await client.searchCount('res.country', []), 249);
  const [at] = await client.searchRead('res.country', [['code', '=', 'AT']], { fields: ['code', 'name'] });
  assert.deepEqual({ code: at.code, name: at.name }, { code: 'AT', name: 'Austria' });
});
