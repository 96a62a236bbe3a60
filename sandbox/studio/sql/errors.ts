/** PostgreSQL errors → what SQL Server would have said (message wording and error number). */
import { SqlServerError } from '../engine.ts';

interface PgErrorLike {
  code?: string;
  message?: string;
  table?: string;
  column?: string;
  constraint?: string;
  detail?: string;
}

const quotedName = (message: string) => /"([^"]+)"/.exec(message)?.[1] ?? '';

export function toSqlServerError(err: unknown, databaseName: string): SqlServerError {
  if (err instanceof SqlServerError) return err;
  const e = (err ?? {}) as PgErrorLike;
  const message = e.message ?? String(err);
  switch (e.code) {
    case '42P01': {
      // relation "dbo.Foo" does not exist
      return new SqlServerError(`Invalid object name '${quotedName(message)}'.`, 208, 16);
    }
    case '3F000':
      return new SqlServerError(`Invalid object name '${quotedName(message)}'.`, 208, 16);
    case '42703':
      return new SqlServerError(`Invalid column name '${quotedName(message)}'.`, 207, 16);
    case '42601':
      return new SqlServerError(`Incorrect syntax near '${/at or near "([^"]*)"/.exec(message)?.[1] ?? ''}'.`, 102, 15);
    case '42883':
      return new SqlServerError(`Operand type clash or unknown function: ${message}.`, 206, 16);
    case '42804':
    case '42846':
      return new SqlServerError(`Operand type clash: ${message}.`, 206, 16);
    case '42P18':
      return new SqlServerError(`Implicit conversion is not allowed here: ${message}.`, 257, 16);
    case '23505':
      return new SqlServerError(
        `Violation of UNIQUE KEY constraint '${e.constraint ?? ''}'. Cannot insert duplicate key in object 'dbo.${e.table ?? ''}'. ${e.detail ?? ''}`.trim(),
        2627, 14,
      );
    case '23502':
      return new SqlServerError(
        `Cannot insert the value NULL into column '${e.column ?? quotedName(message)}', table '${databaseName}.dbo.${e.table ?? ''}'; column does not allow nulls. INSERT fails.`,
        515, 16,
      );
    case '23503':
      return new SqlServerError(
        `The statement conflicted with the REFERENCE constraint "${e.constraint ?? ''}". The conflict occurred in database "${databaseName}", table "dbo.${e.table ?? ''}".`,
        547, 16,
      );
    case '23514':
      return new SqlServerError(
        `The statement conflicted with the CHECK constraint "${e.constraint ?? ''}". The conflict occurred in database "${databaseName}", table "dbo.${e.table ?? ''}".`,
        547, 16,
      );
    case '22001':
      return new SqlServerError(`String or binary data would be truncated. ${message}`, 2628, 16);
    case '22P02':
    case '22003':
      return new SqlServerError(`Conversion failed: ${message}.`, 245, 16);
    case '22007':
    case '22008':
      return new SqlServerError('Conversion failed when converting date and/or time from character string.', 241, 16);
    case '22012':
      return new SqlServerError('Divide by zero error encountered.', 8134, 16);
    case '40P01':
      return new SqlServerError('Transaction was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction.', 1205, 13);
    case '57014':
      return new SqlServerError('The query was canceled.', 3617, 16);
    case '25P02':
      return new SqlServerError('The current transaction cannot be committed and cannot support operations that write to the log file. Roll back the transaction.', 3930, 16);
    default:
      return new SqlServerError(message, 50000, 16);
  }
}
