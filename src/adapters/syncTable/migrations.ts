/**
 * Versioned, idempotent migrations of sync_table. Each runs once (recorded in
 * sosync_schema_migrations) and is written so that running it again changes nothing, which also
 * lets sosync adopt a sync_table created by an older installation: missing columns and indexes are
 * added, rows are kept.
 */
import type { SqlDatabase } from './database.ts';
import { claimFunctionSql } from './claims.ts';
import { activeWorkerTableSql } from './leadership.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string[];
}

/** Every column of SPEC §3 with its type, in table order. */
export const syncTableColumns: ReadonlyArray<readonly [name: string, type: string]> = [
  ['job_id', 'serial primary key'],
  ['job_date', 'timestamp without time zone'],
  ['job_priority', 'integer not null default 1000'],
  ['job_source_system', 'varchar(3)'],
  ['job_source_model', 'varchar(200)'],
  ['job_source_record_id', 'integer not null'],
  ['job_source_target_record_id', 'integer'],
  ['job_source_sosync_write_date', 'timestamp without time zone'],
  ['job_source_fields', 'text'],
  ['job_source_type', "varchar(20) not null default ''"],
  ['job_fetched', 'timestamp without time zone'],
  ['job_start', 'timestamp without time zone'],
  ['job_end', 'timestamp without time zone'],
  ['job_run_count', 'integer not null default 0'],
  ['job_state', "varchar(20) not null default 'new'"],
  ['job_error_code', 'varchar(20)'],
  ['job_error_text', 'text'],
  ['job_log', 'text'],
  ['job_last_change', 'timestamp without time zone'],
  ['job_closed_by_job_id', 'integer'],
  ['parent_job_id', 'integer'],
  ['child_job_start', 'timestamp without time zone'],
  ['child_job_end', 'timestamp without time zone'],
  ['sync_source_system', 'varchar(3)'],
  ['sync_source_model', 'varchar(200)'],
  ['sync_source_record_id', 'integer'],
  ['sync_target_system', 'varchar(3)'],
  ['sync_target_model', 'varchar(200)'],
  ['sync_target_record_id', 'integer'],
  ['sync_source_data', 'text'],
  ['sync_target_data_before', 'text'],
  ['sync_target_request', 'text'],
  ['sync_target_answer', 'text'],
  ['sync_start', 'timestamp without time zone'],
  ['sync_end', 'timestamp without time zone'],
  ['job_fso_id', 'integer'],
  ['job_to_fso_can_sync', 'boolean not null default false'],
  ['job_to_fso_sync_date', 'timestamp without time zone'],
  ['job_retry_at', 'timestamp without time zone'],
  ['job_retry_count', 'integer not null default 0'],
];

/** `not null` columns added to a table that already has rows need their default to be usable. */
function addColumnSql(name: string, type: string): string {
  if (name === 'job_id') return `SELECT 1`;
  if (name === 'job_source_record_id') return `ALTER TABLE sync_table ADD COLUMN IF NOT EXISTS ${name} integer`;
  return `ALTER TABLE sync_table ADD COLUMN IF NOT EXISTS ${name} ${type}`;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'create sync_table',
    sql: [
      `CREATE TABLE IF NOT EXISTS sync_table (\n  ${syncTableColumns.map(([n, t]) => `${n} ${t}`).join(',\n  ')}\n)`,
    ],
  },
  {
    version: 2,
    name: 'add columns missing from older sync tables',
    sql: syncTableColumns.map(([n, t]) => addColumnSql(n, t)),
  },
  {
    version: 3,
    name: 'indexes for picking, duplicates, children and the protocol',
    sql: [
      // next open root job by priority/date/id (SPEC §4.1)
      `CREATE INDEX IF NOT EXISTS sync_table_open_root_jobs ON sync_table (job_priority, job_date, job_id)
         WHERE parent_job_id IS NULL AND job_state IN ('new', 'inprogress')`,
      // open jobs of one source record (superseded jobs, duplicates)
      `CREATE INDEX IF NOT EXISTS sync_table_open_by_source_record ON sync_table (job_source_record_id, job_source_model, job_source_system)
         WHERE job_state IN ('new', 'inprogress')`,
      `CREATE INDEX IF NOT EXISTS sync_table_children ON sync_table (parent_job_id) WHERE parent_job_id IS NOT NULL`,
      `CREATE INDEX IF NOT EXISTS sync_table_protocol_pending ON sync_table (job_id)
         WHERE job_to_fso_can_sync AND (job_to_fso_sync_date IS NULL OR job_to_fso_sync_date < job_last_change)`,
      `CREATE INDEX IF NOT EXISTS sync_table_state ON sync_table (job_state, job_id)`,
      `CREATE INDEX IF NOT EXISTS sync_table_source_record ON sync_table (job_source_record_id, job_id)`,
    ],
  },
  {
    version: 4,
    name: 'pick order inprogress first, priority and date descending; supersede index',
    sql: [
      // SPEC §4.1: higher priority and newer announcements first; replaces version 3's ascending index
      `CREATE INDEX IF NOT EXISTS sync_table_pick_next ON sync_table
         ((job_state = 'inprogress') DESC, job_priority DESC, job_date DESC, job_id)
         WHERE parent_job_id IS NULL AND job_state IN ('new', 'inprogress')`,
      `DROP INDEX IF EXISTS sync_table_open_root_jobs`,
      // SPEC §4.2 step 8: the jobs a finished job may close as skipped
      `CREATE INDEX IF NOT EXISTS sync_table_supersedable_by_source_record ON sync_table
         (job_source_record_id, job_source_model, job_source_system)
         WHERE job_state IN ('new', 'error', 'error_retry')`,
    ],
  },
  {
    version: 5,
    name: 'indexes for job statistics, retries and the cleanup of finished jobs',
    sql: [
      // counts by model and state (an index-only scan instead of reading the rows)
      `CREATE INDEX IF NOT EXISTS sync_table_model_state ON sync_table (job_source_model, job_state)`,
      // jobs finished per hour
      `CREATE INDEX IF NOT EXISTS sync_table_finished ON sync_table (job_end, job_state) WHERE job_end IS NOT NULL`,
      // error counts by code, and the failed jobs a retry resets
      `CREATE INDEX IF NOT EXISTS sync_table_failed ON sync_table (job_error_code, job_id) WHERE job_state IN ('error', 'error_retry')`,
      // finished root jobs old enough to be removed, oldest first
      `CREATE INDEX IF NOT EXISTS sync_table_finished_roots ON sync_table (job_end)
         WHERE parent_job_id IS NULL AND job_state IN ('done', 'skipped')`,
    ],
  },
  {
    version: 6,
    name: 'retry after transient failures: next attempt time and attempts so far',
    sql: [
      `ALTER TABLE sync_table ADD COLUMN IF NOT EXISTS job_retry_at timestamp without time zone`,
      `ALTER TABLE sync_table ADD COLUMN IF NOT EXISTS job_retry_count integer not null default 0`,
      // root jobs waiting for their next attempt, by due time (pickNextJob's second branch)
      `CREATE INDEX IF NOT EXISTS sync_table_retry_due ON sync_table (job_retry_at)
         WHERE parent_job_id IS NULL AND job_state = 'error_retry'`,
    ],
  },
  {
    version: 7,
    name: 'which process holds the job worker (processes sharing one PostgreSQL sync table)',
    sql: [activeWorkerTableSql],
  },
  {
    version: 8,
    name: 'parallel workers claim a job in one call: sosync_claim_job',
    sql: [claimFunctionSql],
  },
];

export interface MigrationReport {
  applied: number[];
  current: number;
}

/** Applies every migration not yet recorded, each in its own transaction. */
export async function migrate(db: SqlDatabase): Promise<MigrationReport> {
  // serialise concurrent starts on a shared server; PGlite has one connection anyway
  const serialise = (tx: Pick<SqlDatabase, 'query'>) => (db.kind === 'postgres' ? tx.query(`SELECT pg_advisory_xact_lock(5050)`) : null);
  await db.transaction(async (tx) => {
    await serialise(tx);
    await tx.query(`CREATE TABLE IF NOT EXISTS sosync_schema_migrations (
      version integer primary key,
      name text not null,
      applied_at timestamp without time zone not null default (now() at time zone 'utc'))`);
  });
  const applied: number[] = [];
  for (const migration of migrations) {
    const done = await db.transaction(async (tx) => {
      await serialise(tx);
      const seen = await tx.query(`SELECT 1 FROM sosync_schema_migrations WHERE version = $1`, [migration.version]);
      if (seen.rows.length > 0) return false;
      for (const statement of migration.sql) await tx.query(statement);
      await tx.query(`INSERT INTO sosync_schema_migrations (version, name) VALUES ($1, $2)`, [migration.version, migration.name]);
      return true;
    });
    if (done) applied.push(migration.version);
  }
  return { applied, current: migrations[migrations.length - 1].version };
}
