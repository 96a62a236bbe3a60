/**
 * Translates one T-SQL statement (as tokens) of the subset sosync uses into PostgreSQL.
 * Unsupported constructs become SqlServerErrors with SQL Server's numbers and wording.
 */
import { SqlServerError, type SqlParameter, type TdsTypeName } from '../engine.ts';
import { canonicalNames, fsFunctions, tableNames, triggeredActions, type FsTable } from './catalog.ts';
import { isPunct, isWord, type Token } from './tokenizer.ts';

export type TranslatedStatement =
  | { kind: 'ignore' }
  | { kind: 'begin' }
  | { kind: 'commit' }
  | { kind: 'rollback' }
  /** SET XACT_ABORT ON|OFF: whether a run-time error rolls the whole transaction back */
  | { kind: 'xactAbort'; on: boolean }
  | { kind: 'sessionContext'; key: string; value: unknown }
  | {
    kind: 'query';
    sql: string;
    /** parameter names (lower case) in `$n` order */
    parameters: string[];
    /** the INSERT's table when its identity comes back as a hidden last column */
    identityOf?: FsTable;
  };

export interface TranslationContext {
  parameters: Map<string, SqlParameter>;
  scopeIdentity: number | null;
  tranCount: number;
  rowCount: number;
  spid: number;
  /** add `::type` to every parameter (for places PostgreSQL cannot infer a type) */
  castParameters?: boolean;
}

export const hiddenIdentityColumn = '__studio_identity';

const keywords = new Set([
  'SELECT', 'DISTINCT', 'FROM', 'WHERE', 'AND', 'OR', 'NOT', 'NULL', 'IS', 'IN', 'LIKE', 'BETWEEN',
  'EXISTS', 'CASE', 'WHEN', 'THEN', 'ELSE', 'END', 'AS', 'ON', 'JOIN', 'INNER', 'LEFT', 'RIGHT', 'FULL',
  'OUTER', 'CROSS', 'ORDER', 'BY', 'ASC', 'DESC', 'GROUP', 'HAVING', 'UNION', 'ALL', 'EXCEPT', 'INTERSECT',
  'INSERT', 'INTO', 'VALUES', 'UPDATE', 'SET', 'DELETE', 'DEFAULT', 'OFFSET', 'ROWS', 'ROW', 'FETCH',
  'NEXT', 'FIRST', 'ONLY', 'ESCAPE', 'ANY', 'SOME',
]);

const functionMap: Record<string, string> = {
  ISNULL: 'COALESCE', COALESCE: 'COALESCE', NULLIF: 'NULLIF', COUNT: 'COUNT', MAX: 'MAX', MIN: 'MIN',
  SUM: 'SUM', AVG: 'AVG', UPPER: 'UPPER', LOWER: 'LOWER', LTRIM: 'LTRIM', RTRIM: 'RTRIM', TRIM: 'BTRIM',
  LEN: 'CHAR_LENGTH', ABS: 'ABS', ROUND: 'ROUND', CONCAT: 'CONCAT', REPLACE: 'REPLACE', LEFT: 'LEFT',
  RIGHT: 'RIGHT', SUBSTRING: 'SUBSTRING', GREATEST: 'GREATEST', LEAST: 'LEAST',
  // The stand-in's clock is UTC, like the servers FS runs on are expected to be.
  GETUTCDATE: 'studio.utc_now', SYSUTCDATETIME: 'studio.utc_now', GETDATE: 'studio.utc_now',
  SYSDATETIME: 'studio.utc_now',
};

const parameterPgType: Record<TdsTypeName, string> = {
  int: 'integer', bigint: 'bigint', smallint: 'smallint', tinyint: 'smallint', bit: 'smallint',
  nvarchar: 'text', varchar: 'text', date: 'date', datetime: 'timestamp(3)', datetime2: 'timestamp(3)',
  decimal: 'numeric',
};

const syntaxError = (near: Token | string | undefined) =>
  new SqlServerError(
    near === undefined ? 'Incorrect syntax near the end of the statement.' :
      `Incorrect syntax near '${typeof near === 'string' ? near : near.kind === 'string' ? near.text : tokenText(near)}'.`,
    102, 15,
  );

function tokenText(t: Token): string {
  switch (t.kind) {
    case 'param': return `@${t.text}`;
    case 'sysvar': return `@@${t.text}`;
    case 'qident': return t.text;
    default: return t.text;
  }
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;
const canonical = (name: string) => canonicalNames.get(name.toLowerCase()) ?? name;

/** Translates the type of a CAST: tokens from `i`; returns the PostgreSQL type and the next index. */
function translateType(tokens: Token[], i: number): [string, number] {
  const t = tokens[i];
  if (!t || (t.kind !== 'word' && t.kind !== 'qident')) throw syntaxError(t);
  const name = t.text.toLowerCase();
  let args: string[] = [];
  let next = i + 1;
  if (isPunct(tokens[next], '(')) {
    next++;
    while (tokens[next] && !isPunct(tokens[next], ')')) {
      if (!isPunct(tokens[next], ',')) args.push(tokens[next].text.toLowerCase());
      next++;
    }
    if (!tokens[next]) throw syntaxError(undefined);
    next++;
  }
  switch (name) {
    case 'int': case 'integer': return ['integer', next];
    case 'bigint': return ['bigint', next];
    case 'smallint': case 'tinyint': case 'bit': return ['smallint', next];
    case 'date': return ['date', next];
    case 'datetime': case 'datetime2': case 'smalldatetime': return ['timestamp(3)', next];
    case 'nvarchar': case 'varchar': case 'nchar': case 'char': case 'ntext': case 'text':
      if (args.length === 0 && (name === 'nchar' || name === 'char')) args = ['1'];
      return [args.length && args[0] !== 'max' ? `varchar(${args[0]})` : 'text', next];
    case 'decimal': case 'numeric':
      return [args.length ? `numeric(${args.join(', ')})` : 'numeric(18, 0)', next];
    case 'float': case 'real': return ['double precision', next];
    default:
      throw new SqlServerError(`Type ${t.text} is not a defined system type.`, 243, 16);
  }
}

/** The table an INSERT, UPDATE or DELETE writes to, as named in the statement (without `dbo.`). */
function dmlTarget(tokens: Token[], statement: string): string | undefined {
  const after = statement === 'INSERT' ? 'INTO' : statement === 'DELETE' ? 'FROM' : 'UPDATE';
  let i = tokens.findIndex((t) => isWord(t, after));
  if (i < 0 && statement === 'DELETE') i = 0; // DELETE dbo.T …
  const first = tokens[i + 1];
  const name = isPunct(tokens[i + 2], '.') ? tokens[i + 3] : first;
  return name && (name.kind === 'word' || name.kind === 'qident') ? name.text : undefined;
}

/**
 * SQL Server refuses an OUTPUT clause without INTO on a table with an enabled trigger for the
 * statement's action (error 334), and FS's tables have them (catalog.ts, triggeredActions).
 */
function refuseOutputOnTriggers(tokens: Token[], statement: string): void {
  const name = dmlTarget(tokens, statement);
  const table = name === undefined ? undefined : tableNames.get(name.toLowerCase());
  if (!table || !triggeredActions(table).has(statement as 'INSERT' | 'UPDATE' | 'DELETE')) return;
  throw new SqlServerError(
    `The target table 'dbo.${table.name}' of the DML statement cannot have any enabled triggers if the statement contains an OUTPUT clause without INTO clause.`,
    334, 16,
  );
}

/** Whether a statement reads what an earlier one of its session left (@@ROWCOUNT, @@TRANCOUNT, SCOPE_IDENTITY(), …). */
export function readsSession(tokens: readonly Token[]): boolean {
  return tokens.some((t) => t.kind === 'sysvar' || (t.kind === 'word' && t.upper === 'SCOPE_IDENTITY'));
}

/** Parses an OUTPUT clause starting after the OUTPUT keyword; returns its items and the next index. */
function readOutputClause(tokens: Token[], i: number, statement: string): [Token[][], number] {
  const items: Token[][] = [];
  let current: Token[] = [];
  let depth = 0;
  for (; i < tokens.length; i++) {
    const t = tokens[i];
    if (depth === 0 && isWord(t, 'VALUES', 'SELECT', 'DEFAULT', 'WHERE', 'FROM', 'INTO')) break;
    if (isPunct(t, '(')) depth++;
    if (isPunct(t, ')')) depth--;
    if (depth === 0 && isPunct(t, ',')) { items.push(current); current = []; continue; }
    current.push(t);
  }
  if (current.length) items.push(current);
  if (isWord(tokens[i], 'INTO')) throw syntaxError(tokens[i]);
  for (const item of items) {
    const [pseudo, dot] = item;
    if (!isWord(pseudo, 'INSERTED', 'DELETED') || !isPunct(dot, '.') || item.length < 3) throw syntaxError(pseudo);
    const allowed = statement === 'DELETE' ? 'DELETED' : 'INSERTED';
    if (pseudo.upper !== allowed) {
      // PostgreSQL's RETURNING sees one version of the row only.
      throw new SqlServerError(`The multi-part identifier "${pseudo.text}.${tokenText(item[2])}" could not be bound.`, 4104, 16);
    }
  }
  return [items.map((item) => item.slice(2)), i];
}

export function translateStatement(tokens: Token[], ctx: TranslationContext): TranslatedStatement {
  const first = tokens[0];
  if (!first) return { kind: 'ignore' };
  if (first.kind !== 'word') throw syntaxError(first);
  switch (first.upper) {
    case 'SET': {
      // SET XACT_ABORT changes what an error does; the other session options drivers send on
      // connect (ANSI settings, isolation level, ...) change nothing the stand-in answers.
      const option = tokens.findIndex((t) => isWord(t, 'XACT_ABORT'));
      if (option > 0 && isWord(tokens[option + 1], 'ON', 'OFF')) return { kind: 'xactAbort', on: tokens[option + 1].upper === 'ON' };
      return { kind: 'ignore' };
    }
    case 'BEGIN':
      if (isWord(tokens[1], 'TRAN', 'TRANSACTION') && tokens.length <= 3) return { kind: 'begin' };
      throw syntaxError(tokens[1] ?? first);
    case 'COMMIT':
    case 'ROLLBACK':
      if (tokens.length === 1 || (isWord(tokens[1], 'TRAN', 'TRANSACTION', 'WORK') && tokens.length <= 3)) {
        return { kind: first.upper === 'COMMIT' ? 'commit' : 'rollback' };
      }
      throw syntaxError(tokens[1]);
    case 'EXEC':
    case 'EXECUTE':
      return translateExec(tokens, ctx);
    case 'SELECT':
    case 'INSERT':
    case 'UPDATE':
    case 'DELETE':
      return translateDml(tokens, ctx);
    default:
      throw syntaxError(first);
  }
}

function translateExec(tokens: Token[], ctx: TranslationContext): TranslatedStatement {
  const proc = tokens[1];
  const name = proc ? tokenText(proc) : '';
  if (!proc || name.toLowerCase() !== 'sp_set_session_context') {
    throw new SqlServerError(`Could not find stored procedure '${name}'.`, 2812, 16);
  }
  // EXEC sp_set_session_context [@key =] N'key', [@value =] value
  const values: unknown[] = [];
  let i = 2;
  while (i < tokens.length) {
    if (tokens[i].kind === 'param' && isPunct(tokens[i + 1], '=')) i += 2;
    const t = tokens[i];
    if (!t) throw syntaxError(undefined);
    if (t.kind === 'string') values.push(t.text);
    else if (t.kind === 'number') values.push(Number(t.text));
    else if (isWord(t, 'NULL')) values.push(null);
    else if (t.kind === 'param') {
      const p = ctx.parameters.get(t.text.toLowerCase());
      if (!p) throw new SqlServerError(`Must declare the scalar variable "@${t.text}".`, 137, 15);
      values.push(p.value);
    } else throw syntaxError(t);
    i++;
    if (i < tokens.length) {
      if (!isPunct(tokens[i], ',')) throw syntaxError(tokens[i]);
      i++;
    }
  }
  if (values.length < 2 || typeof values[0] !== 'string') {
    throw new SqlServerError("Procedure or function 'sp_set_session_context' expects parameter '@key', which was not supplied.", 201, 16);
  }
  return { kind: 'sessionContext', key: values[0], value: values[1] };
}

function translateDml(tokens: Token[], ctx: TranslationContext): TranslatedStatement {
  const statement = tokens[0].upper;
  const out: string[] = [];
  const parameters: string[] = [];
  let returning: string[] | null = null;
  let identityOf: FsTable | undefined;
  /** pending LIMIT per parenthesis depth (from TOP) */
  const limits = new Map<number, string>();
  /** parenthesis depths at which a CAST's `AS <type>` is expected */
  const castDepths: number[] = [];
  let depth = 0;
  let insertTableNext = false;

  const emit = (s: string) => out.push(s);
  const prevToken = (i: number) => tokens[i - 1];

  const parameterRef = (t: Token): string => {
    const key = t.text.toLowerCase();
    const p = ctx.parameters.get(key);
    if (!p) throw new SqlServerError(`Must declare the scalar variable "@${t.text}".`, 137, 15);
    let index = parameters.indexOf(key);
    if (index < 0) { parameters.push(key); index = parameters.length - 1; }
    // Typed parameters keep their type (SELECT @p), except strings: an untyped literal lets
    // PostgreSQL convert to the column's type the way SQL Server converts implicitly.
    const textual = p.type === 'nvarchar' || p.type === 'varchar';
    return ctx.castParameters || !textual ? `$${index + 1}::${parameterPgType[p.type] ?? 'text'}` : `$${index + 1}`;
  };

  const sysvar = (t: Token): string => {
    switch (t.upper) {
      case 'TRANCOUNT': return String(ctx.tranCount);
      case 'IDENTITY': return ctx.scopeIdentity === null ? 'NULL::integer' : String(ctx.scopeIdentity);
      case 'ROWCOUNT': return String(ctx.rowCount);
      case 'SPID': return String(ctx.spid);
      case 'VERSION': return literal('Microsoft SQL Server 2019 (sosync FS stand-in on PostgreSQL)');
      case 'SERVERNAME': return literal('studio');
      default: throw new SqlServerError(`Must declare the scalar variable "@@${t.text}".`, 137, 15);
    }
  };

  const identifier = (t: Token, i: number): string => {
    // Aliases keep the spelling the statement gives them.
    if (isWord(prevToken(i), 'AS')) return quote(t.text);
    const name = canonical(t.text);
    const qualified = isPunct(prevToken(i), '.') || isPunct(tokens[i + 1], '.');
    // An unqualified table name means dbo's table, but only where a table is named (not an alias).
    const tablePosition = isWord(prevToken(i), 'FROM', 'JOIN', 'INTO', 'UPDATE', 'DELETE', 'INSERT');
    if (!qualified && tablePosition && tableNames.has(name.toLowerCase())) return `dbo.${quote(name)}`;
    // Any other unqualified name read from or written into is dbo's too, as on SQL Server: the
    // PostgreSQL underneath holds others' tables in public (sosync's sync table, in the sandbox).
    // UPDATE and DELETE are left out: T-SQL lets an alias follow them.
    if (!qualified && isWord(prevToken(i), 'FROM', 'JOIN', 'INTO')) return `dbo.${quote(name)}`;
    return quote(name);
  };

  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const next = tokens[i + 1];
    switch (t.kind) {
      case 'string': emit(literal(t.text)); break;
      case 'number': emit(t.text); break;
      case 'binary': throw syntaxError(t);
      case 'param': emit(parameterRef(t)); break;
      case 'sysvar': emit(sysvar(t)); break;
      case 'qident':
        if (insertTableNext && !isPunct(next, '.')) {
          insertTableNext = false;
          identityOf = statement === 'INSERT' ? tableNames.get(t.text.toLowerCase()) : undefined;
        }
        emit(identifier(t, i));
        break;
      case 'punct':
        if (t.text === '(') depth++;
        if (t.text === ')') {
          const limit = limits.get(depth);
          if (limit !== undefined) { emit(`LIMIT ${limit}`); limits.delete(depth); }
          if (castDepths[castDepths.length - 1] === depth) castDepths.pop();
          depth--;
        }
        if (t.text === '::') throw syntaxError(t);
        emit(t.text);
        break;
      case 'word': {
        const u = t.upper;
        if (u === 'TOP') {
          if (!isWord(prevToken(i), 'SELECT', 'DISTINCT')) throw syntaxError(t);
          let value: string;
          if (isPunct(next, '(')) {
            const inner = tokens[i + 2];
            if (!inner || !isPunct(tokens[i + 3], ')')) throw syntaxError(next);
            value = inner.kind === 'param' ? parameterRef(inner) : inner.kind === 'number' ? inner.text : '';
            i += 3;
          } else {
            value = next?.kind === 'number' ? next.text : '';
            i += 1;
          }
          if (!/^(\d+|\$\d+(::\w+)?)$/.test(value)) throw syntaxError(t);
          if (isWord(tokens[i + 1], 'PERCENT', 'WITH')) throw syntaxError(tokens[i + 1]);
          limits.set(depth, value);
          break;
        }
        if (u === 'OUTPUT') {
          refuseOutputOnTriggers(tokens, statement);
          const [items, nextIndex] = readOutputClause(tokens, i + 1, statement);
          returning = items.map((item) => translateOutputItem(item));
          i = nextIndex - 1;
          break;
        }
        if (u === 'WITH' && isPunct(next, '(')) {
          // Table hints (NOLOCK, ROWLOCK, ...) mean nothing to PostgreSQL's MVCC.
          let j = i + 2;
          while (j < tokens.length && !isPunct(tokens[j], ')')) {
            if (!(tokens[j].kind === 'word' || isPunct(tokens[j], ','))) throw syntaxError(tokens[j]);
            j++;
          }
          i = j;
          break;
        }
        if (u === 'CAST' && isPunct(next, '(')) {
          emit('CAST');
          castDepths.push(depth + 1);
          break;
        }
        if (u === 'AS' && castDepths[castDepths.length - 1] === depth) {
          const [type, nextIndex] = translateType(tokens, i + 1);
          emit('AS');
          emit(type);
          i = nextIndex - 1;
          break;
        }
        if (u === 'SCOPE_IDENTITY' && isPunct(next, '(') && isPunct(tokens[i + 2], ')')) {
          emit(ctx.scopeIdentity === null ? 'NULL::integer' : String(ctx.scopeIdentity));
          i += 2;
          break;
        }
        if (u === 'CURRENT_TIMESTAMP') { emit('studio.utc_now()'); break; }
        if (u === 'INTO') {
          // SELECT ... INTO would create a table.
          if (statement !== 'INSERT') throw syntaxError(t);
          emit('INTO');
          insertTableNext = true;
          break;
        }
        if (keywords.has(u) && !(isPunct(next, '(') && functionMap[u])) {
          if (statement === 'INSERT' && u === 'INSERT' && !isWord(next, 'INTO')) {
            emit('INSERT INTO');
            insertTableNext = true;
            break;
          }
          emit(u);
          break;
        }
        if (isPunct(next, '(')) {
          const qualifier = isPunct(prevToken(i), '.') ? tokens[i - 2] : undefined;
          if (qualifier) {
            const fn = fsFunctions[`${qualifier.text.toLowerCase()}.${t.text.toLowerCase()}`];
            if (fn) { emit(quote(fn.name)); break; }
            if (qualifier.text.toLowerCase() !== 'dbo' || !tableNames.has(t.text.toLowerCase())) {
              if (!insertTableNext) {
                throw new SqlServerError(
                  `Cannot find either column "${qualifier.text}" or the user-defined function or aggregate "${qualifier.text}.${t.text}", or the name is ambiguous.`,
                  4121, 16,
                );
              }
            }
          } else if (!tableNames.has(t.text.toLowerCase()) && !insertTableNext) {
            const mapped = functionMap[u];
            if (!mapped) throw new SqlServerError(`'${t.text}' is not a recognized built-in function name.`, 195, 15);
            emit(mapped);
            break;
          }
        }
        if (insertTableNext && !isPunct(next, '.')) {
          insertTableNext = false;
          identityOf = statement === 'INSERT' ? tableNames.get(t.text.toLowerCase()) : undefined;
        }
        emit(identifier(t, i));
        break;
      }
    }
  }
  if (depth !== 0) throw syntaxError(undefined);
  const topLimit = limits.get(0);
  if (topLimit !== undefined) emit(`LIMIT ${topLimit}`);

  if (identityOf && !identityOf.identity) identityOf = undefined;
  if (identityOf) {
    returning = [...(returning ?? []), `${quote(identityOf.identity!)} AS ${quote(hiddenIdentityColumn)}`];
  }
  if (returning) emit(`RETURNING ${returning.join(', ')}`);

  return { kind: 'query', sql: join(out), parameters, identityOf };
}

function translateOutputItem(item: Token[]): string {
  return item
    .map((t) => {
      if (isPunct(t, '*') || t.kind === 'punct') return t.text;
      if (t.kind === 'word' && t.upper === 'AS') return 'AS';
      if (t.kind === 'word' || t.kind === 'qident') return quote(canonical(t.text));
      throw syntaxError(t);
    })
    .join(' ');
}

/** Joins translated pieces, keeping qualified names together (`dbo."Person"."PersonID"`). */
function join(parts: string[]): string {
  let sql = '';
  for (const part of parts) {
    if (sql === '' || part === '.' || part === ',' || part === ')' || sql.endsWith('.') || sql.endsWith('(')) sql += part;
    else if (part === '(' && /["\w]$/.test(sql) && !/\b(IN|VALUES|AS|EXISTS|AND|OR|NOT|ON|WHEN|THEN|ELSE|SELECT|FROM|WHERE|JOIN)$/.test(sql)) sql += part;
    else sql += ` ${part}`;
  }
  return sql;
}
