/**
 * A production-shaped sync_table on the local PostgreSQL server (10 thousand, 1 million,
 * 10 million rows), filled or grown with one INSERT … SELECT generate_series. The rows are
 * finished history as a long-running installation keeps it: mostly done, some skipped and failed,
 * a tenth child jobs, a few waiting for a later retry, with the evidence texts a job leaves.
 * Open root jobs are added separately (addOpenJobs), as the newest rows.
 *
 * While it inserts, the secondary indexes (exactly those the migrations made) are dropped and
 * then built again from their own definitions, which is much faster than maintaining them row by
 * row; ANALYZE follows, as autovacuum would do after such a load.
 */
import pg from 'pg';

export const FILL_BASE_DATE = '2020-01-01 00:00:00';

/** The finished rows job_id from+1 .. to, one statement. */
const fillSql = `
  INSERT INTO sync_table (job_id, job_date, job_priority, job_source_system, job_source_model, job_source_record_id,
    job_source_sosync_write_date, job_source_fields, job_source_type, job_fetched, job_start, job_end, job_run_count,
    job_state, job_error_code, job_error_text, job_log, job_last_change, job_closed_by_job_id, parent_job_id,
    child_job_start, child_job_end, sync_source_system, sync_source_model, sync_source_record_id, sync_target_system,
    sync_target_model, sync_target_record_id, sync_source_data, sync_target_data_before, sync_target_request,
    sync_target_answer, sync_start, sync_end, job_fso_id, job_to_fso_can_sync, job_to_fso_sync_date, job_retry_at,
    job_retry_count)
  SELECT g, d, CASE g % 20 WHEN 0 THEN 2000 WHEN 1 THEN 4500 ELSE 1000 END,
    sys, model, rec,
    d, NULL, '', d, d + interval '1 second', d + interval '2 seconds', 1,
    state, CASE state WHEN 'error' THEN 'sync_source' WHEN 'error_retry' THEN 'timeout' END,
    CASE WHEN state IN ('error', 'error_retry') THEN 'record ' || rec || ' could not be read' END,
    CASE state WHEN 'skipped' THEN 'Skipped due to job_id = ' || (g + 1) WHEN 'done' THEN 'updated ' || model || ' ' || rec END,
    d + interval '2 seconds', CASE WHEN state = 'skipped' THEN g + 1 END,
    CASE WHEN g % 10 = 5 THEN g - 1 END, NULL, NULL,
    sys, model, rec, CASE sys WHEN 'fs' THEN 'fso' ELSE 'fs' END, model, rec + 7,
    '{"firstname":"Maria","lastname":"Muster ' || rec || '","email":"m' || rec || '@example.org","sosync_write_date":"' || d || '"}',
    '{"firstname":"Maria","lastname":"Muster","email":null}',
    '<?xml version="1.0"?><methodCall><methodName>execute_kw</methodName><params><param><value><int>' || rec || '</int></value></param></params></methodCall>',
    'success', d + interval '1 second', d + interval '2 seconds', g, true, d + interval '3 seconds',
    CASE WHEN state = 'error_retry' THEN timestamp '2100-01-01' END, CASE WHEN state = 'error_retry' THEN 1 ELSE 0 END
  FROM (
    SELECT g,
      timestamp '${FILL_BASE_DATE}' + g * interval '1 second' AS d,
      CASE WHEN g % 2 = 0 THEN 'fs' ELSE 'fso' END AS sys,
      (ARRAY['dbo.Person', 'res.partner', 'dbo.PersonEmail', 'dbo.PersonBPK', 'res.company'])[1 + g % 5] AS model,
      (1 + (g::bigint * 7919) % 500000)::integer AS rec,
      CASE WHEN g % 10000 = 17 THEN 'error_retry' WHEN g % 500 = 7 THEN 'error' WHEN g % 100 = 3 THEN 'skipped' ELSE 'done' END AS state
    FROM generate_series($1::integer + 1, $2::integer) AS g
  ) AS s`;

export interface FillStep {
  rows: number;
  /** seconds: inserting, building the indexes again, ANALYZE */
  insertS: number;
  indexS: number;
  analyzeS: number;
}

function since(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Grows sync_table (finished rows) to `rows` rows; returns what each part took. */
export async function growSyncTable(client: pg.Client, rows: number): Promise<FillStep> {
  const have = Number((await client.query<{ m: number | null }>('SELECT max(job_id) AS m FROM sync_table')).rows[0].m ?? 0);
  const indexes = (await client.query<{ indexname: string; indexdef: string }>(
    `SELECT i.indexname, i.indexdef FROM pg_indexes i
      WHERE i.tablename = 'sync_table' AND i.schemaname = current_schema()
        AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`,
  )).rows;
  await client.query(`SET maintenance_work_mem = '512MB'`);
  for (const ix of indexes) await client.query(`DROP INDEX ${ix.indexname}`);
  let t = process.hrtime.bigint();
  if (rows > have) await client.query(fillSql, [have, rows]);
  const insertS = since(t);
  t = process.hrtime.bigint();
  for (const ix of indexes) await client.query(ix.indexdef);
  const indexS = since(t);
  await client.query(`SELECT setval(pg_get_serial_sequence('sync_table', 'job_id'), (SELECT max(job_id) FROM sync_table))`);
  t = process.hrtime.bigint();
  await client.query('VACUUM ANALYZE sync_table');
  return { rows, insertS, indexS, analyzeS: since(t) };
}

/**
 * Makes `open` root jobs wait in state new (the newest rows, priorities mixed as announced),
 * counting those already open.
 */
export async function addOpenJobs(client: pg.Client, open: number): Promise<number> {
  const have = Number((await client.query<{ n: string }>(
    `SELECT count(*) AS n FROM sync_table WHERE parent_job_id IS NULL AND job_state IN ('new', 'inprogress')`,
  )).rows[0].n);
  if (open > have) {
    await client.query(
      `INSERT INTO sync_table (job_date, job_priority, job_source_system, job_source_model, job_source_record_id,
         job_source_sosync_write_date, job_source_type, job_fetched, job_run_count, job_state, job_last_change)
       SELECT now()::timestamp - g * interval '1 millisecond', CASE g % 20 WHEN 0 THEN 2000 ELSE 1000 END, 'fs', 'dbo.Person',
              (1 + (g::bigint * 104729) % 500000)::integer, now()::timestamp - g * interval '1 millisecond', '', now()::timestamp, 0, 'new', now()::timestamp
         FROM generate_series(1, $1::integer) AS g`,
      [open - have],
    );
    await client.query('ANALYZE sync_table');
  }
  return Math.max(open, have);
}
