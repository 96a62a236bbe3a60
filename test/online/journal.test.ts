/**
 * The FSO stand-in's journal: what was committed comes back after a restart (snapshot + replay),
 * uncommitted changes do not, a torn last line (a crash mid-append) is dropped, damage elsewhere
 * stops the start with the file and line named.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OnlineStore } from '../../sandbox/online/store.ts';
import { OnlineJournal } from '../../sandbox/online/journal.ts';

const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-journal-'));

function reopened(dir: string): { store: OnlineStore; replayed: number } {
  const store = new OnlineStore();
  const replayed = new OnlineJournal(dir).restore(store);
  return { store, replayed };
}

describe('FSO stand-in journal', () => {
  test('committed creates, updates, deletes and cascaded deletes come back; uncommitted ones do not', () => {
    const dir = tmpDir();
    const store = new OnlineStore();
    const journal = new OnlineJournal(dir);
    journal.attach(store);
    const company = store.create('res.company', { name: 'Verein' });
    const a = store.create('res.partner', { firstname: 'Anna', lastname: 'A' });
    const b = store.create('res.partner', { firstname: 'Bert', lastname: 'B' });
    const bpk = store.create('res.partner.bpk', { BPKRequestPartnerID: b, BPKRequestCompanyID: company });
    store.update('res.partner', [a], { lastname: 'Neu' });
    store.remove('res.partner', [b]);
    journal.commit();
    store.create('res.partner', { firstname: 'Nie', lastname: 'Bestätigt' });
    // the process dies here: nothing after the last commit was answered

    const { store: back, replayed } = reopened(dir);
    assert.ok(replayed >= 5, `replayed ${replayed} lines`);
    assert.equal(back.get('res.partner', a)?.lastname, 'Neu');
    assert.equal(back.exists('res.company', company), true);
    assert.equal(back.exists('res.partner.bpk', bpk), false, 'deleted with its partner');
    assert.equal(back.exists('res.partner', b), false);
    assert.equal(back.search('res.partner', [['lastname', '=', 'Bestätigt']]).length, 0);
    // ids continue after the highest journalled one
    assert.equal(back.create('res.partner', { firstname: 'C', lastname: 'C' }), b + 1);
    fs.rmSync(dir, { recursive: true });
  });

  test('a torn last line is dropped; a damaged line before it stops the restore', () => {
    const dir = tmpDir();
    const store = new OnlineStore();
    const journal = new OnlineJournal(dir);
    journal.attach(store);
    const id = store.create('res.partner', { firstname: 'Ganz', lastname: 'Da' });
    journal.commit();
    fs.appendFileSync(journal.journalFile, '{"op":"put","model":"res.par');
    assert.equal(reopened(dir).store.get('res.partner', id)?.lastname, 'Da');

    fs.appendFileSync(journal.journalFile, '\n{"op":"drop","model":"res.partner","id":1}\n');
    assert.throws(() => reopened(dir), new RegExp(`${journal.journalFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 2 is not JSON`));
    fs.rmSync(dir, { recursive: true });
  });

  test('a restart compacts: the snapshot holds everything, the journal is empty, replaying again changes nothing', () => {
    const dir = tmpDir();
    const store = new OnlineStore();
    const journal = new OnlineJournal(dir);
    journal.attach(store);
    const id = store.create('res.partner', { firstname: 'Einmal', lastname: 'Zweimal' });
    journal.commit();
    const first = new OnlineStore();
    const again = new OnlineJournal(dir);
    again.restore(first);
    again.attach(first);
    assert.equal(fs.readFileSync(again.journalFile, 'utf8'), '');
    assert.equal(reopened(dir).store.get('res.partner', id)?.lastname, 'Zweimal');
    fs.rmSync(dir, { recursive: true });
  });
});
