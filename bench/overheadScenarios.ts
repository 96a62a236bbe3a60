/**
 * The jobs the overhead benchmark times, per flow: an up-to-date job and an update job in each
 * direction the flow syncs. Each scenario makes its change the way a user of FS or FSO would
 * (untimed), names the job to run, and does the bare client round trips such a job cannot avoid
 * with sosync's own clients:
 * - up to date: the model info of the announced record and of its counterpart (SPEC §4.2 step 3);
 * - update: those two reads (the counterpart's with the fields its "before" evidence needs), the
 *   consistency re-read of the source with the fields the write transforms (step 5), the write
 *   (step 6); a partner bPK also has its two child jobs, each an up-to-date direction step (step 4).
 * Lookups of reference data (countries, FS defaults) are done once, untimed: they are cacheable.
 */
import type { OnlineRecord } from '../src/adapters/online/index.ts';
import type { SystemName } from '../src/adapters/syncTable/index.ts';
import { typenIds } from '../src/adapters/studio/index.ts';
import { parseSosyncWriteDate } from '../src/flows/onlineModel.ts';
import { partnerFields, partnerToStack, stackToPartner } from '../src/flows/partnerMapping.ts';
import { bpkToStudio } from '../src/flows/partnerBpk.ts';
import type { OverheadSystem } from './overheadHarness.ts';

export type FlowName = 'company' | 'partner' | 'partner bPK';
export type ScenarioKind = 'up to date' | 'update FS → FSO' | 'update FSO → FS';

export interface Scenario {
  flow: FlowName;
  kind: ScenarioKind;
  /** makes the change (round `i`), untimed; the job to run for it */
  prepare(i: number): Promise<{ system: SystemName; model: string; id: number }>;
  /** the bare client round trips of such a job */
  bare(): Promise<void>;
  /** the child jobs such a job runs (SPEC §4.2 step 4): each has a sync-table row of its own */
  children?: number;
}

const infoFields = ['sosync_fs_id', 'sosync_write_date', 'write_date'];
const bpkFields = ['create_date', 'BPKPrivate', 'BPKPublic', 'BPKRequestFirstname', 'BPKRequestLastname', 'BPKRequestBirthdate',
  'BPKRequestDate', 'BPKResponseData', 'BPKErrorRequestDate', 'BPKErrorRequestData', 'BPKErrorResponseData',
  'BPKErrorRequestFirstname', 'BPKErrorRequestLastname', 'BPKErrorRequestBirthdate', 'BPKErrorCode', 'BPKErrorText',
  'BPKRequestPartnerID', 'BPKRequestCompanyID'];

function must<T>(value: T | null | undefined, what: string): T {
  if (value === null || value === undefined) throw new Error(`overhead scenarios: ${what} is missing`);
  return value;
}

/** Links one person, one company and one bPK through the engine itself, then names the scenarios. */
export async function overheadScenarios(system: OverheadSystem): Promise<Scenario[]> {
  const { studio, online, fsUser, fso } = system;
  const personId = system.personIds[0];
  const companyId = system.companyIds[0];
  // a change as a user of FS or FSO makes it, and the job that syncs it
  const fsChange = async (model: string, text: string, id: number, value: string) => {
    await fsUser.request().input('id', id).input('v', value).query(text);
    return { system: 'fs' as const, model, id };
  };
  const fsoChange = async (model: string, id: number, values: Record<string, unknown>) => {
    fso.userWrite(model, id, values);
    return { system: 'fso' as const, model, id };
  };
  const linked = async (system_: SystemName, model: string, id: number) => {
    const { outcome, jobId } = await system.runJob(system_, model, id);
    if (outcome.outcome !== 'done') throw new Error(`overhead scenarios: linking ${model} ${id} ended ${outcome.outcome}: ${outcome.message}`);
    return must((await system.table.store.getJob(jobId))?.sync_target_record_id, `the target of ${model} ${id}`);
  };
  const partnerId = await linked('fs', 'dbo.Person', personId);
  const fsoCompanyId = await linked('fs', 'dbo.xBPKAccount', companyId);
  const bpkId = fso.userCreate('res.partner.bpk', {
    BPKRequestPartnerID: partnerId, BPKRequestCompanyID: fsoCompanyId, BPKPrivate: 'PRIV-0', BPKPublic: 'PUB-0',
    BPKRequestFirstname: 'Bea', BPKRequestLastname: 'Bench', BPKRequestBirthdate: '1980-05-17', BPKRequestDate: '2024-03-01 10:20:30',
  });
  const fsBpkId = await linked('fso', 'res.partner.bpk', bpkId);

  // reference data, once: what a cache would hold
  const stack0 = must(await studio.readPersonStack(personId), 'the person stack');
  const landId = stackToPartner(stack0).landId;
  const code = landId !== null ? await studio.landIdToIso(landId) : null;
  const countryId = code ? (await online.search('res.country', [['code', '=', code]], { limit: 1 }))[0] ?? false : false;
  const salutation = await studio.typenDefault(typenIds.addressSalutation);
  const defaultSalutationTypeId = salutation !== null && /^\d+$/.test(salutation) ? Number(salutation) : null;

  const stamp = (record: OnlineRecord) => must(parseSosyncWriteDate(record.sosync_write_date), 'sosync_write_date');

  return [
    {
      flow: 'company', kind: 'up to date',
      prepare: async () => ({ system: 'fs', model: 'dbo.xBPKAccount', id: companyId }),
      async bare() {
        await studio.xBPKAccount.read(companyId);
        await online.readOne('res.company', fsoCompanyId, infoFields);
      },
    },
    {
      flow: 'company', kind: 'update FS → FSO',
      prepare: (i) => fsChange('dbo.xBPKAccount', 'UPDATE dbo.xBPKAccount SET Name = @v WHERE xBPKAccountID = @id', companyId, `Verein FS ${i}`),
      async bare() {
        await studio.xBPKAccount.read(companyId);
        await online.readOne('res.company', fsoCompanyId, ['name', ...infoFields]);
        const row = must(await studio.xBPKAccount.read(companyId), 'the company row');
        await online.write('res.company', fsoCompanyId, { name: row.Name ?? '', sosync_write_date: must(row.sosync_write_date, 'stamp').toISOString() });
      },
    },
    {
      flow: 'company', kind: 'update FSO → FS',
      prepare: (i) => fsoChange('res.company', fsoCompanyId, { name: `Verein FSO ${i}` }),
      async bare() {
        await online.readOne('res.company', fsoCompanyId, infoFields);
        await studio.xBPKAccount.read(companyId);
        const record = must(await online.readOne('res.company', fsoCompanyId, ['name', ...infoFields]), 'the company');
        await studio.xBPKAccount.update(companyId, { Name: String(record.name) }, { sosyncWriteDate: stamp(record) });
      },
    },
    {
      flow: 'partner', kind: 'up to date',
      prepare: async () => ({ system: 'fs', model: 'dbo.Person', id: personId }),
      async bare() {
        await studio.readPersonStack(personId);
        await online.readOne('res.partner', partnerId, infoFields);
      },
    },
    {
      flow: 'partner', kind: 'update FS → FSO',
      prepare: (i) => fsChange('dbo.Person', 'UPDATE dbo.Person SET Vorname = @v WHERE PersonID = @id', personId, `Vorname FS ${i}`),
      async bare() {
        await studio.readPersonStack(personId);
        await online.readOne('res.partner', partnerId, [...partnerFields, ...infoFields]);
        const stack = must(await studio.readPersonStack(personId), 'the person stack');
        const values = { ...stackToPartner(stack).values, country_id: countryId, sosync_write_date: must(stack.sosyncWriteDate, 'stamp').toISOString() };
        await online.write('res.partner', partnerId, values);
      },
    },
    {
      flow: 'partner', kind: 'update FSO → FS',
      prepare: (i) => fsoChange('res.partner', partnerId, { lastname: `Nachname FSO ${i}` }),
      async bare() {
        await online.readOne('res.partner', partnerId, infoFields);
        const current = await studio.readPersonStack(personId);
        const partner = must(await online.readOne('res.partner', partnerId, [...partnerFields, ...infoFields]), 'the partner');
        const values = partnerToStack(partner, { current, landId, defaultSalutationTypeId });
        await studio.writePersonStack({ ...values, personId, sosyncWriteDate: stamp(partner), sosyncFsoId: partnerId });
      },
    },
    {
      flow: 'partner bPK', kind: 'up to date',
      prepare: async () => ({ system: 'fso', model: 'res.partner.bpk', id: bpkId }),
      async bare() {
        await online.readOne('res.partner.bpk', bpkId, infoFields);
        await studio.personBPK.read(fsBpkId);
      },
    },
    {
      flow: 'partner bPK', kind: 'update FSO → FS', children: 2,
      prepare: (i) => fsoChange('res.partner.bpk', bpkId, { BPKPrivate: `PRIV-${i}` }),
      async bare() {
        // direction (with the child references), the two children's direction steps, consistency, write
        await online.readOne('res.partner.bpk', bpkId, [...bpkFields, ...infoFields]);
        await studio.personBPK.read(fsBpkId);
        await online.readOne('res.company', fsoCompanyId, infoFields);
        await studio.xBPKAccount.read(companyId);
        await online.readOne('res.partner', partnerId, infoFields);
        await studio.readPersonStack(personId);
        const record = must(await online.readOne('res.partner.bpk', bpkId, [...bpkFields, ...infoFields]), 'the bPK');
        await studio.personBPK.update(fsBpkId, bpkToStudio(record), { sosyncWriteDate: stamp(record) });
      },
    },
  ];
}
