/**
 * The seam between the FS stand-in's TDS wire server (sandbox/studio/tds/) and the engine that runs
 * the T-SQL subset over PostgreSQL (sandbox/studio/sql/). The wire server only speaks bytes; the
 * engine only speaks SQL. Both sides code against these types.
 */

/** SQL Server types the stand-in can send and receive. */
export type TdsTypeName =
  | 'int' | 'bigint' | 'smallint' | 'tinyint' | 'bit'
  | 'nvarchar' | 'varchar' | 'date' | 'datetime' | 'datetime2' | 'decimal';

export interface ColumnInfo {
  name: string;
  type: TdsTypeName;
  /** characters for (n)varchar; undefined = max */
  length?: number;
  precision?: number;
  scale?: number;
  nullable?: boolean;
}

/** A parameter of `sp_executesql`, decoded from the RPC request. */
export interface SqlParameter {
  /** without the leading `@` */
  name: string;
  type: TdsTypeName;
  /** number | bigint | boolean | string | Date | null */
  value: unknown;
  output?: boolean;
}

/** One statement's outcome. A statement without a result set has no `columns`. */
export interface StatementResult {
  columns?: ColumnInfo[];
  /** values in column order: number | bigint | boolean | string | Date | null */
  rows?: unknown[][];
  /** rows affected (DONE_COUNT); null when not meaningful */
  rowCount: number | null;
}

/** An error the client sees as a SQL Server error token. */
export class SqlServerError extends Error {
  constructor(
    message: string,
    /** SQL Server error number, e.g. 102 syntax, 208 invalid object, 2627 unique violation */
    readonly number = 50000,
    /** severity class; >= 11 is an error */
    readonly severity = 16,
    readonly state = 1,
    readonly lineNumber = 1,
  ) {
    super(message);
    this.name = 'SqlServerError';
  }
}

export interface SqlSession {
  /** Runs one batch (one or more statements). Throws SqlServerError for errors the client should see. */
  execute(sql: string, parameters: SqlParameter[]): Promise<StatementResult[]>;
  beginTransaction(name?: string): Promise<void>;
  commitTransaction(): Promise<void>;
  rollbackTransaction(): Promise<void>;
  readonly inTransaction: boolean;
  /** SET XACT_ABORT ON: an error, or the client's attention (a cancel), rolls the open transaction back */
  readonly xactAbort: boolean;
  close(): Promise<void>;
}

export interface SqlEngine {
  /** Checks a login; returns a reason when refused. */
  authenticate(user: string, password: string, database: string): { ok: true } | { ok: false; reason: string };
  openSession(database: string, user: string): Promise<SqlSession>;
}
