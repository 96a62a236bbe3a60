/**
 * A small T-SQL tokenizer: enough to translate the subset sosync sends without touching the
 * inside of string literals or quoted names, and to split a batch into statements.
 */
import { SqlServerError } from '../engine.ts';

export type TokenKind = 'word' | 'qident' | 'string' | 'number' | 'binary' | 'param' | 'sysvar' | 'punct';

export interface Token {
  kind: TokenKind;
  /** word: as written; qident/string: the content without quotes; param/sysvar: name without @ */
  text: string;
  /** upper-case text of a word */
  upper: string;
  start: number;
  end: number;
}

const wordStart = /[\p{L}_#]/u;
const wordPart = /[\p{L}\p{N}_$#@]/u;
const twoCharOps = new Set(['<=', '>=', '<>', '!=', '!<', '!>', '::']);
const oneCharOps = new Set(['(', ')', ',', '.', ';', '*', '=', '<', '>', '+', '-', '/', '%', '&', '|', '^', '~']);

const syntaxError = (near: string) => new SqlServerError(`Incorrect syntax near '${near}'.`, 102, 15);

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  const push = (kind: TokenKind, text: string, start: number, end: number) =>
    tokens.push({ kind, text, upper: kind === 'word' ? text.toUpperCase() : text, start, end });

  while (i < n) {
    const c = sql[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      // T-SQL block comments nest.
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') { depth++; i += 2; }
        else if (sql[i] === '*' && sql[i + 1] === '/') { depth--; i += 2; }
        else i++;
      }
      if (depth > 0) throw new SqlServerError('Missing end comment mark \'*/\'.', 113, 15);
      continue;
    }
    const start = i;
    if (c === "'" || ((c === 'N' || c === 'n') && sql[i + 1] === "'")) {
      i += c === "'" ? 1 : 2;
      let text = '';
      for (;;) {
        if (i >= n) {
          throw new SqlServerError(`Unclosed quotation mark after the character string '${text}'.`, 105, 15);
        }
        if (sql[i] === "'") {
          if (sql[i + 1] === "'") { text += "'"; i += 2; continue; }
          i++;
          break;
        }
        text += sql[i++];
      }
      push('string', text, start, i);
      continue;
    }
    if (c === '[' || c === '"') {
      const close = c === '[' ? ']' : '"';
      i++;
      let text = '';
      for (;;) {
        if (i >= n) {
          throw new SqlServerError(`Unclosed quotation mark after the character string '${text}'.`, 105, 15);
        }
        if (sql[i] === close) {
          if (sql[i + 1] === close) { text += close; i += 2; continue; }
          i++;
          break;
        }
        text += sql[i++];
      }
      push('qident', text, start, i);
      continue;
    }
    if (c === '0' && (sql[i + 1] === 'x' || sql[i + 1] === 'X')) {
      i += 2;
      while (i < n && /[0-9a-fA-F]/.test(sql[i])) i++;
      push('binary', sql.slice(start, i), start, i);
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      while (i < n && /[0-9]/.test(sql[i])) i++;
      if (sql[i] === '.') { i++; while (i < n && /[0-9]/.test(sql[i])) i++; }
      if ((sql[i] === 'e' || sql[i] === 'E') && /[-+0-9]/.test(sql[i + 1] ?? '')) {
        i += 2;
        while (i < n && /[0-9]/.test(sql[i])) i++;
      }
      push('number', sql.slice(start, i), start, i);
      continue;
    }
    if (c === '@') {
      const sys = sql[i + 1] === '@';
      i += sys ? 2 : 1;
      const nameStart = i;
      while (i < n && wordPart.test(sql[i])) i++;
      if (i === nameStart) throw syntaxError('@');
      push(sys ? 'sysvar' : 'param', sql.slice(nameStart, i), start, i);
      continue;
    }
    if (wordStart.test(c)) {
      while (i < n && wordPart.test(sql[i])) i++;
      push('word', sql.slice(start, i), start, i);
      continue;
    }
    const two = sql.slice(i, i + 2);
    if (twoCharOps.has(two)) { i += 2; push('punct', two, start, i); continue; }
    if (oneCharOps.has(c)) { i++; push('punct', c, start, i); continue; }
    throw syntaxError(c);
  }
  return tokens;
}

const isWord = (t: Token | undefined, ...words: string[]) => t?.kind === 'word' && words.includes(t.upper);
const isPunct = (t: Token | undefined, p: string) => t?.kind === 'punct' && t.text === p;

/** Does `t` begin a new statement, given the tokens of the statement so far (T-SQL needs no `;`)? */
function beginsStatement(t: Token, current: Token[]): boolean {
  if (t.kind !== 'word' || current.length === 0) return false;
  const first = current[0].upper;
  const prev = current[current.length - 1];
  switch (t.upper) {
    case 'INSERT': case 'DELETE': case 'DECLARE': case 'EXEC': case 'EXECUTE':
    case 'COMMIT': case 'ROLLBACK': case 'BEGIN': case 'MERGE': case 'IF': case 'WHILE':
    case 'PRINT': case 'CREATE': case 'DROP': case 'ALTER': case 'TRUNCATE': case 'SAVE':
      return true;
    case 'UPDATE':
      return true;
    case 'SET':
      return first !== 'UPDATE';
    case 'SELECT': {
      if (isWord(prev, 'UNION', 'ALL', 'EXCEPT', 'INTERSECT')) return false;
      if (first === 'INSERT') {
        // INSERT ... SELECT is one statement; a SELECT after INSERT ... VALUES (...) is the next one.
        let depth = 0;
        for (const x of current) {
          if (isPunct(x, '(')) depth++;
          else if (isPunct(x, ')')) depth--;
          else if (depth === 0 && isWord(x, 'VALUES', 'SELECT')) return true;
        }
        return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** Splits a batch's tokens into statements (at `;` and where a new statement evidently begins). */
export function splitStatements(tokens: Token[]): Token[][] {
  const statements: Token[][] = [];
  let current: Token[] = [];
  let depth = 0;
  for (const t of tokens) {
    if (isPunct(t, '(')) depth++;
    if (isPunct(t, ')')) depth--;
    if (depth === 0 && isPunct(t, ';')) {
      if (current.length) statements.push(current);
      current = [];
      continue;
    }
    if (depth === 0 && beginsStatement(t, current)) {
      statements.push(current);
      current = [];
    }
    current.push(t);
  }
  if (current.length) statements.push(current);
  return statements;
}

export { isWord, isPunct };
