/**
 * The crash harness's workload: changes made in FS (over TDS, as a user of FS would: its triggers
 * announce them) and in FSO (over XML-RPC without sosync's loop guard, so FSO announces them),
 * creates, updates and deletes in both directions, for every flow — company, partner, and partner
 * bPK with its child jobs. Each change is also announced by the harness itself (at-least-once, as
 * a system retrying would), so it knows the id of every job it announced.
 */
import sql from 'mssql';
import xmlrpc from 'xmlrpc';
import type { OnlineClient } from '../../src/adapters/online/index.ts';
import { random } from '../../sandbox/studio/seed.ts';

export type SystemName = 'fs' | 'fso';

/** what the harness announces after a change */
export interface Announcement {
  system: SystemName;
  model: string;
  id: number;
  delete?: boolean;
}

/** the operation kinds, with their share of the mix */
export const mixWeights = {
  'fs announce unsynced person': 8,
  'fs insert person': 8,
  'fs insert company': 5,
  'fs update person': 14,
  'fs update company': 5,
  'fs delete person': 4,
  'fs delete company': 3,
  'fso create partner': 9,
  'fso create company': 5,
  'fso update partner': 12,
  'fso update company': 5,
  'fso delete partner': 3,
  'fso delete company': 3,
  'fso create bPK (child jobs)': 8,
  'fso update bPK': 8,
} as const;

export type OpKind = keyof typeof mixWeights;

/** a small seeded generator (the seed's), so a mix can be repeated */
export const randomSource = random;

/** XML-RPC as an FSO user: the stand-in announces the change (no create_sync_job: false). */
class FsoUser {
  private uid: number | null = null;
  private readonly common: xmlrpc.Client;
  private readonly object: xmlrpc.Client;
  constructor(url: string, private readonly db: string, private readonly login: string, private readonly password: string) {
    const u = new URL(url);
    const options = (p: string) => ({ host: '127.0.0.1', port: Number(u.port), path: p });
    this.common = xmlrpc.createClient(options('/xmlrpc/2/common'));
    this.object = xmlrpc.createClient(options('/xmlrpc/2/object'));
  }

  private call<T>(client: xmlrpc.Client, method: string, params: unknown[]): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`FSO ${method}: no answer within 30 s`)), 30_000);
      client.methodCall(method, params, (err, value) => {
        clearTimeout(timer);
        if (err) reject(err as Error);
        else resolve(value as T);
      });
    });
  }

  async execute<T>(model: string, method: string, args: unknown[]): Promise<T> {
    this.uid ??= await this.call<number>(this.common, 'authenticate', [this.db, this.login, this.password, {}]);
    return await this.call<T>(this.object, 'execute_kw', [this.db, this.uid, this.password, model, method, args]);
  }
}

export interface MixOptions {
  fsPool: sql.ConnectionPool;
  /** sosync's own client (writes carry the loop guard: nothing announced) */
  online: OnlineClient;
  base: Record<string, string>;
  random: () => number;
}

/** the records the mix knows on either side, so updates and deletes find targets */
export class Mix {
  readonly counts: Record<string, number> = {};
  private readonly fsoUser: FsoUser;
  private readonly pools = {
    fsPersons: [] as number[], fsCompanies: [] as number[], fsoPartners: [] as number[], fsoCompanies: [] as number[], fsoBpks: [] as number[],
    unsyncedPersons: [] as number[],
  };
  /** created by the mix and not referenced elsewhere: these may be deleted (with the op number they were made at) */
  private readonly deletable = {
    fsPersons: [] as Array<[number, number]>, fsCompanies: [] as Array<[number, number]>,
    fsoPartners: [] as Array<[number, number]>, fsoCompanies: [] as Array<[number, number]>,
  };
  private op = 0;
  /** records the mix made or changed that still exist: system|model|id */
  private readonly changed = new Map<string, [SystemName, string, number]>();
  /** every record the mix created, deleted or not: system|model|id */
  readonly made = new Set<string>();
  private readonly kinds: OpKind[];
  private readonly total: number;

  constructor(private readonly o: MixOptions) {
    this.fsoUser = new FsoUser(o.base.online_host, o.base.instance, o.base.online_sosync_user, o.base.online_sosync_pw);
    this.kinds = Object.keys(mixWeights) as OpKind[];
    this.total = Object.values(mixWeights).reduce((a, b) => a + b, 0);
  }

  /**
   * what the seed left: linked persons and companies (both sides), unsynced FS persons, bPKs. Each
   * pool in id order, so a seed picks the same records on the same state: a row's place in an
   * unordered read, and which FSO id a person got, follow the order earlier syncs ran in.
   */
  async load(): Promise<void> {
    const q = async (text: string) => (await this.o.fsPool.request().query(text)).recordset;
    const ascending = (ids: number[]) => ids.sort((a, b) => a - b);
    for (const r of await q('SELECT PersonID, sosync_fso_id FROM dbo.Person WHERE sosync_fso_id IS NOT NULL ORDER BY PersonID')) {
      this.pools.fsPersons.push(r.PersonID);
      this.pools.fsoPartners.push(r.sosync_fso_id);
    }
    ascending(this.pools.fsoPartners);
    this.pools.unsyncedPersons = (await q('SELECT PersonID FROM dbo.Person WHERE sosync_fso_id IS NULL ORDER BY PersonID')).map((r) => r.PersonID as number);
    for (const r of await q('SELECT xBPKAccountID, sosync_fso_id FROM dbo.xBPKAccount WHERE sosync_fso_id IS NOT NULL ORDER BY xBPKAccountID')) {
      this.pools.fsCompanies.push(r.xBPKAccountID);
      this.pools.fsoCompanies.push(r.sosync_fso_id);
    }
    ascending(this.pools.fsoCompanies);
    this.pools.fsoBpks = ascending(await this.o.online.search('res.partner.bpk', []));
  }

  private note(a: Announcement, created = false): void {
    const key = `${a.system}|${a.model}|${a.id}`;
    if (created) this.made.add(key);
    if (a.delete) this.changed.delete(key);
    else this.changed.set(key, [a.system, a.model, a.id]);
  }

  /** every record the mix made or changed and did not delete; each must have a counterpart at the end */
  touched(): Array<[SystemName, string, number]> {
    return [...this.changed.values()];
  }

  private pick<T>(list: T[]): T | undefined {
    return list.length ? list[Math.floor(this.o.random() * list.length)] : undefined;
  }

  /** an old enough record made by the mix, taken out of every pool */
  private takeDeletable(list: Array<[number, number]>, pool: number[]): number | undefined {
    const candidates = list.filter(([, at]) => at < this.op - 10);
    const chosen = this.pick(candidates);
    if (!chosen) return undefined;
    list.splice(list.indexOf(chosen), 1);
    pool.splice(pool.indexOf(chosen[0]), 1);
    return chosen[0];
  }

  private word(): string {
    return `${['Anna', 'Bert', 'Cleo', 'Dora', 'Emil', 'Fritz', 'Greta', 'Hugo'][Math.floor(this.o.random() * 8)]}-${this.op}`;
  }

  /** the next change, made; returns what to announce */
  async next(): Promise<{ kind: OpKind; announce: Announcement[] }> {
    this.op++;
    let r = this.o.random() * this.total;
    let kind = this.kinds[0];
    for (const k of this.kinds) {
      r -= mixWeights[k];
      if (r < 0) { kind = k; break; }
    }
    let announce = await this.run(kind);
    if (announce === null) {
      // nothing to change for this kind yet (no old enough record): an update instead
      kind = this.o.random() < 0.5 ? 'fs update person' : 'fso update partner';
      announce = (await this.run(kind))!;
    }
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    for (const a of announce) this.note(a, / (insert|create)/.test(kind));
    return { kind, announce };
  }

  private async fs(text: string, params: Record<string, string | number> = {}): Promise<sql.IRecordSet<any>> {
    const request = this.o.fsPool.request();
    for (const [k, v] of Object.entries(params)) request.input(k, typeof v === 'number' ? sql.Int : sql.NVarChar, v);
    return (await request.query(text)).recordset;
  }

  private async run(kind: OpKind): Promise<Announcement[] | null> {
    const { pools, deletable } = this;
    const fso = (model: string, method: string, args: unknown[]) => this.fsoUser.execute(model, method, args);
    switch (kind) {
      case 'fs announce unsynced person': {
        const id = pools.unsyncedPersons.shift();
        if (id === undefined) return null;
        pools.fsPersons.push(id);
        return [{ system: 'fs', model: 'dbo.Person', id }];
      }
      case 'fs insert person': {
        const [row] = await this.fs('INSERT INTO dbo.Person (Vorname, Name) VALUES (@v, @n); SELECT CAST(SCOPE_IDENTITY() AS int) AS PersonID', { v: this.word(), n: `Neu ${this.op}` });
        pools.fsPersons.push(row.PersonID);
        deletable.fsPersons.push([row.PersonID, this.op]);
        return [{ system: 'fs', model: 'dbo.Person', id: row.PersonID }];
      }
      case 'fs insert company': {
        const [row] = await this.fs('INSERT INTO dbo.xBPKAccount (Name) VALUES (@n); SELECT CAST(SCOPE_IDENTITY() AS int) AS xBPKAccountID', { n: `Verein ${this.op}` });
        pools.fsCompanies.push(row.xBPKAccountID);
        deletable.fsCompanies.push([row.xBPKAccountID, this.op]);
        return [{ system: 'fs', model: 'dbo.xBPKAccount', id: row.xBPKAccountID }];
      }
      case 'fs update person': {
        const id = this.pick(pools.fsPersons);
        if (id === undefined) return null;
        await this.fs('UPDATE dbo.Person SET Vorname = @v WHERE PersonID = @id', { v: this.word(), id });
        return [{ system: 'fs', model: 'dbo.Person', id }];
      }
      case 'fs update company': {
        const id = this.pick(pools.fsCompanies);
        if (id === undefined) return null;
        await this.fs('UPDATE dbo.xBPKAccount SET Name = @n WHERE xBPKAccountID = @id', { n: `Verein ${this.word()}`, id });
        return [{ system: 'fs', model: 'dbo.xBPKAccount', id }];
      }
      case 'fs delete person': {
        const id = this.takeDeletable(deletable.fsPersons, pools.fsPersons);
        if (id === undefined) return null;
        const tx = new sql.Transaction(this.o.fsPool);
        await tx.begin();
        try {
          const q = (text: string) => new sql.Request(tx).input('id', sql.Int, id).query(text);
          await q('DELETE FROM dbo.PersonEmailGruppe WHERE PersonEmailID IN (SELECT PersonEmailID FROM dbo.PersonEmail WHERE PersonID = @id)');
          for (const table of ['PersonGruppe', 'PersonTelefon', 'PersonEmail', 'PersonAdresse', 'Person']) {
            await q(`DELETE FROM dbo.${table} WHERE PersonID = @id`);
          }
          await tx.commit();
        } catch (err) {
          await tx.rollback().catch(() => undefined);
          throw err;
        }
        return [{ system: 'fs', model: 'dbo.Person', id, delete: true }];
      }
      case 'fs delete company': {
        const id = this.takeDeletable(deletable.fsCompanies, pools.fsCompanies);
        if (id === undefined) return null;
        await this.fs('DELETE FROM dbo.xBPKAccount WHERE xBPKAccountID = @id', { id });
        return [{ system: 'fs', model: 'dbo.xBPKAccount', id, delete: true }];
      }
      case 'fso create partner': {
        const id = await fso('res.partner', 'create', [{ firstname: this.word(), lastname: `Online ${this.op}` }]) as number;
        pools.fsoPartners.push(id);
        deletable.fsoPartners.push([id, this.op]);
        return [{ system: 'fso', model: 'res.partner', id }];
      }
      case 'fso create company': {
        const id = await fso('res.company', 'create', [{ name: `Firma ${this.op}` }]) as number;
        pools.fsoCompanies.push(id);
        deletable.fsoCompanies.push([id, this.op]);
        return [{ system: 'fso', model: 'res.company', id }];
      }
      case 'fso update partner': {
        const id = this.pick(pools.fsoPartners);
        if (id === undefined) return null;
        await fso('res.partner', 'write', [[id], { lastname: `Online ${this.word()}` }]);
        return [{ system: 'fso', model: 'res.partner', id }];
      }
      case 'fso update company': {
        const id = this.pick(pools.fsoCompanies);
        if (id === undefined) return null;
        await fso('res.company', 'write', [[id], { name: `Firma ${this.word()}` }]);
        return [{ system: 'fso', model: 'res.company', id }];
      }
      case 'fso delete partner': {
        const id = this.takeDeletable(deletable.fsoPartners, pools.fsoPartners);
        if (id === undefined) return null;
        await fso('res.partner', 'unlink', [[id]]);
        return [{ system: 'fso', model: 'res.partner', id, delete: true }];
      }
      case 'fso delete company': {
        const id = this.takeDeletable(deletable.fsoCompanies, pools.fsoCompanies);
        if (id === undefined) return null;
        await fso('res.company', 'unlink', [[id]]);
        return [{ system: 'fso', model: 'res.company', id, delete: true }];
      }
      case 'fso create bPK (child jobs)': {
        // a partner and (mostly) a company FSO never announced: the bPK's child jobs bring them to FS
        const stamp = new Date(Date.now() - 60_000).toISOString();
        const partnerId = await this.o.online.create('res.partner', { firstname: 'Bea', lastname: `bPK ${this.op}`, birthdate_web: '1980-05-17', sosync_write_date: stamp });
        const companyId = this.o.random() < 0.7 || pools.fsoCompanies.length === 0
          ? await this.o.online.create('res.company', { name: `bPK Verein ${this.op}`, sosync_write_date: stamp })
          : this.pick(pools.fsoCompanies.filter((c) => !deletable.fsoCompanies.some(([d]) => d === c)))!;
        pools.fsoPartners.push(partnerId);
        this.note({ system: 'fso', model: 'res.partner', id: partnerId }, true);
        this.note({ system: 'fso', model: 'res.company', id: companyId }, true);
        if (!pools.fsoCompanies.includes(companyId)) pools.fsoCompanies.push(companyId);
        const id = await fso('res.partner.bpk', 'create', [{
          BPKRequestPartnerID: partnerId, BPKRequestCompanyID: companyId,
          BPKPrivate: `PRIV-${this.op}`, BPKPublic: `PUB-${this.op}`, BPKRequestFirstname: 'Bea', BPKRequestLastname: `bPK ${this.op}`,
          BPKRequestBirthdate: '1980-05-17', BPKRequestDate: '2024-03-01 10:20:30', BPKResponseData: '<response/>',
        }]) as number;
        pools.fsoBpks.push(id);
        return [{ system: 'fso', model: 'res.partner.bpk', id }];
      }
      case 'fso update bPK': {
        const id = this.pick(pools.fsoBpks);
        if (id === undefined) return null;
        await fso('res.partner.bpk', 'write', [[id], { BPKPrivate: `PRIV-${this.word()}`, BPKErrorText: `Text ${this.op}` }]);
        return [{ system: 'fso', model: 'res.partner.bpk', id }];
      }
    }
  }
}
