/**
 * Odoo search domains over the stand-in's rows: prefix `&`, `|`, `!` with implicit `&` between
 * consecutive terms, and leaves `[field, operator, value]` (dotted paths follow many2one fields).
 * Negative operators (`!=`, `not in`, `not like`, `not ilike`) also match empty values, like Odoo's SQL.
 */
import { OdooException, leafRepr, pyRepr } from './faults.ts';
import type { ModelDef } from './models.ts';

export type Row = Record<string, unknown>;
export type RowPredicate = (row: Row) => boolean;

export interface DomainContext {
  model(name: string): ModelDef;
  /** the stored row of a related record, undefined when gone */
  row(model: string, id: number): Row | undefined;
  displayName(model: string, id: number): string;
}

export const domainOperators = new Set([
  '=', '!=', '<>', '<', '<=', '>', '>=', 'in', 'not in', 'like', 'ilike', '=like', '=ilike', 'not like', 'not ilike',
]);

const isEmpty = (v: unknown) => v === null || v === undefined || v === false;

function likeRegex(pattern: string, caseInsensitive: boolean): RegExp {
  let source = '';
  for (const ch of pattern) {
    if (ch === '%') source += '.*';
    else if (ch === '_') source += '.';
    else source += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, caseInsensitive ? 'is' : 's');
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' || typeof b === 'boolean') return Number(Boolean(a)) - Number(Boolean(b));
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** Build a predicate for `domain` on `model`; throws OdooException for a malformed domain. */
export function compileDomain(domain: unknown, model: ModelDef, ctx: DomainContext): RowPredicate {
  if (!Array.isArray(domain)) throw new OdooException(`Invalid domain ${pyRepr(domain)}`, 'ValueError');
  let pos = 0;

  const parseTerm = (): RowPredicate => {
    if (pos >= domain.length) {
      throw new OdooException(`This domain is syntactically not correct: ${pyRepr(domain)}`, 'AssertionError');
    }
    const term = domain[pos++];
    if (term === '&' || term === '|') {
      const left = parseTerm();
      const right = parseTerm();
      return term === '&' ? (r) => left(r) && right(r) : (r) => left(r) || right(r);
    }
    if (term === '!') {
      const inner = parseTerm();
      return (r) => !inner(r);
    }
    return compileLeaf(term, model, ctx);
  };

  const terms: RowPredicate[] = [];
  while (pos < domain.length) terms.push(parseTerm());
  return (row) => terms.every((t) => t(row));
}

function compileLeaf(term: unknown, model: ModelDef, ctx: DomainContext): RowPredicate {
  if (!Array.isArray(term) || term.length !== 3) {
    throw new OdooException(`Invalid leaf ${pyRepr(term)}`, 'ValueError');
  }
  const [left, rawOperator, value] = term as [unknown, unknown, unknown];
  // Odoo's constant leaves
  if ((left === 1 || left === 0) && rawOperator === '=' && value === 1) {
    return () => left === 1;
  }
  if (typeof left !== 'string' || typeof rawOperator !== 'string') {
    throw new OdooException(`Invalid leaf ${leafRepr(term)}`, 'ValueError');
  }
  const operator = rawOperator.toLowerCase();
  if (!domainOperators.has(operator)) {
    throw new OdooException(`Invalid operator ${pyRepr(rawOperator)} in domain term ${leafRepr(term)}`, 'ValueError');
  }
  if ((operator === 'in' || operator === 'not in') && !Array.isArray(value)) {
    throw new OdooException(`The value of operator ${pyRepr(operator)} must be a list: ${leafRepr(term)}`, 'ValueError');
  }

  // Resolve a dotted path to a getter of the final stored value plus its field definition.
  const path = left.split('.');
  let current = model;
  const steps: { field: string; relation?: string }[] = [];
  for (let i = 0; i < path.length; i++) {
    const name = path[i];
    const def = current.fields[name];
    if (!def) {
      throw new OdooException(`Invalid field ${pyRepr(name)} in leaf ${leafRepr(term)}`, 'ValueError');
    }
    if (i < path.length - 1) {
      if (def.type !== 'many2one' || !def.relation) {
        throw new OdooException(`Invalid field ${pyRepr(left)} in leaf ${leafRepr(term)}: ${name} is not a relation`, 'ValueError');
      }
      steps.push({ field: name, relation: def.relation });
      current = ctx.model(def.relation);
    } else {
      steps.push({ field: name, relation: def.type === 'many2one' ? def.relation : undefined });
    }
  }
  const last = steps[steps.length - 1];
  const get = (row: Row): unknown => {
    let r: Row | undefined = row;
    for (let i = 0; i < steps.length - 1; i++) {
      const id: unknown = r?.[steps[i].field];
      r = typeof id === 'number' ? ctx.row(steps[i].relation!, id) : undefined;
      if (!r) return null;
    }
    return r[last.field];
  };

  // A many2one compared with text matches the related record's display name (Odoo's name_search).
  const valueOf = (row: Row, against: unknown): unknown => {
    const v = get(row);
    if (last.relation && typeof against === 'string' && typeof v === 'number') return ctx.displayName(last.relation, v);
    return v;
  };

  const equals = (row: Row, want: unknown): boolean => {
    const v = valueOf(row, want);
    if (isEmpty(want)) return isEmpty(v);
    if (isEmpty(v)) return false;
    return compare(v, want) === 0;
  };

  switch (operator) {
    case '=': return (row) => equals(row, value);
    case '!=':
    case '<>': return (row) => !equals(row, value);
    case '<': case '<=': case '>': case '>=':
      return (row) => {
        const v = valueOf(row, value);
        if (isEmpty(v) || isEmpty(value)) return false;
        const c = compare(v, value);
        return operator === '<' ? c < 0 : operator === '<=' ? c <= 0 : operator === '>' ? c > 0 : c >= 0;
      };
    case 'in': return (row) => (value as unknown[]).some((want) => equals(row, want));
    case 'not in': return (row) => !(value as unknown[]).some((want) => equals(row, want));
    default: {
      // like family: like/ilike wrap the value in %…%, =like/=ilike take it as the pattern
      const exact = operator.startsWith('=');
      const negative = operator.startsWith('not ');
      const ci = operator.endsWith('ilike');
      if (isEmpty(value)) return (row) => (negative ? !isEmpty(get(row)) : isEmpty(get(row)));
      const pattern = exact ? String(value) : `%${String(value)}%`;
      const re = likeRegex(pattern, ci);
      return (row) => {
        const v = valueOf(row, String(value));
        const hit = !isEmpty(v) && re.test(String(v));
        return negative ? !hit : hit;
      };
    }
  }
}

/** Parse Odoo's `order` ("name desc, id") into a comparator; throws OdooException when invalid. */
export function compileOrder(order: string, model: ModelDef): (a: Row, b: Row) => number {
  const parts = order.split(',').map((p) => p.trim()).filter(Boolean);
  const keys = parts.map((part) => {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?$/i.exec(part);
    if (!m || !model.fields[m[1]]) {
      throw new OdooException(
        `Invalid "order" specified (${order}). A valid "order" specification is a comma-separated list of valid field names (optionally followed by asc/desc for the direction)`,
        'ValueError',
      );
    }
    return { field: m[1], desc: (m[2] ?? 'asc').toLowerCase() === 'desc' };
  });
  if (!keys.some((k) => k.field === 'id')) keys.push({ field: 'id', desc: false });
  return (a, b) => {
    for (const { field, desc } of keys) {
      const va = a[field];
      const vb = b[field];
      // PostgreSQL: empty values sort last ascending, first descending
      if (isEmpty(va) || isEmpty(vb)) {
        if (isEmpty(va) && isEmpty(vb)) continue;
        return (isEmpty(va) ? 1 : -1) * (desc ? -1 : 1);
      }
      const c = compare(va, vb);
      if (c !== 0) return desc ? -c : c;
    }
    return 0;
  };
}
