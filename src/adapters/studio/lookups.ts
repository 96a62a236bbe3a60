/**
 * What sosync looks up in FS without writing: system defaults in dbo.Typen, the country functions
 * of the sosync schema, and FS's clock.
 */
import { StudioQueryError } from './errors.ts';
import type { Runner, Statement } from './connection.ts';
import { checkId } from './tableAccess.ts';

/** The statement that reads dbo.Typen.Formularwert of `typenIds`, alone or first in a batch. */
export function typenDefaultsQuery(typenIds: readonly number[]): Statement {
  const params = typenIds.map((id, i) => ({ name: `t${i}`, type: 'int' as const, value: id }));
  return { text: `SELECT [TypenID], [Formularwert] FROM dbo.[Typen] WHERE [TypenID] IN (${params.map((p) => `@${p.name}`).join(', ')});`, params };
}

/** typenDefaultsQuery's result set: TypenID → Formularwert, for each that exists */
export function typenDefaultsFrom(rows: readonly Record<string, unknown>[] | undefined): Map<number, string | null> {
  return new Map((rows ?? []).map((r) => [Number(r.TypenID), r.Formularwert == null ? null : String(r.Formularwert)]));
}

/** dbo.Typen.Formularwert of each of `typenIds` that exists. */
export async function readTypenDefaults(run: Runner, typenIds: readonly number[]): Promise<Map<number, string | null>> {
  const { text, params } = typenDefaultsQuery(typenIds);
  const [rows] = await run(text, params);
  return typenDefaultsFrom(rows);
}

export async function readTypenDefault(run: Runner, typenId: number): Promise<string | null> {
  checkId('TypenID', typenId);
  return (await readTypenDefaults(run, [typenId])).get(typenId) ?? null;
}

export async function landIdToIso(run: Runner, landId: number): Promise<string | null> {
  const [rows] = await run('SELECT sosync.LandID_to_IsoCountryCode2(@landId) AS [code];', [{ name: 'landId', type: 'int', value: landId }]);
  const v = rows?.[0]?.code;
  return v == null ? null : String(v).trim();
}

export async function isoToLandId(run: Runner, isoCode: string): Promise<number | null> {
  const [rows] = await run('SELECT sosync.IsoCountryCode2_to_LandID(@code) AS [landId];', [{ name: 'code', type: 'nvarchar', value: isoCode }]);
  const v = rows?.[0]?.landId;
  return v == null ? null : Number(v);
}

export async function serverTimeUtc(run: Runner, address: string): Promise<Date> {
  const [rows] = await run('SELECT SYSUTCDATETIME() AS [now];');
  const v = rows?.[0]?.now;
  if (!(v instanceof Date)) throw new StudioQueryError(address, 'SYSUTCDATETIME() returned no date', 0);
  return v;
}
