import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOnlineHost, OnlineHostError } from '../../src/adapters/online/index.ts';

test('a plain host means http on port 80', () => {
  const h = parseOnlineHost('fso.example.org');
  assert.deepEqual(h, { protocol: 'http:', hostname: 'fso.example.org', port: 80, basePath: '', url: 'http://fso.example.org:80' });
});

test('host:port keeps the port, still http', () => {
  const h = parseOnlineHost('fso.example.org:8069');
  assert.equal(h.protocol, 'http:');
  assert.equal(h.port, 8069);
  assert.equal(h.url, 'http://fso.example.org:8069');
});

test('http:// and https:// prefixes are honoured, https defaults to 443', () => {
  assert.equal(parseOnlineHost('http://10.1.2.3:8069').url, 'http://10.1.2.3:8069');
  const s = parseOnlineHost('https://fso.example.org');
  assert.equal(s.protocol, 'https:');
  assert.equal(s.port, 443);
  assert.equal(parseOnlineHost('HTTPS://fso.example.org:8443/').url, 'https://fso.example.org:8443');
});

test('a path after the host is kept as prefix, trailing slashes dropped', () => {
  const h = parseOnlineHost('https://proxy.example.org/odoo/');
  assert.equal(h.basePath, '/odoo');
  assert.equal(h.url, 'https://proxy.example.org:443/odoo');
});

test('IPv6 literals work in brackets', () => {
  const h = parseOnlineHost('[::1]:8069');
  assert.equal(h.hostname, '::1');
  assert.equal(h.url, 'http://[::1]:8069');
});

test('bad hosts get a clear error naming online_host', () => {
  for (const bad of ['', '   ', 'ftp://fso.example.org', 'fso.example.org:notaport', 'fso.example.org:70000', 'http://user:pw@fso', 'http://fso?x=1']) {
    assert.throws(() => parseOnlineHost(bad), (e: unknown) => e instanceof OnlineHostError && /^online_host: /.test((e as Error).message), bad);
  }
});
