// Layered layout of a state machine's shape (GET /inspect/machines) for drawing as SVG.
// Each compound state lays out its own children: ranks by longest path from the initial child
// (back edges ignored), order within a rank by the neighbours' average position. Directions
// alternate with depth (left-to-right at the top, top-to-bottom inside), which keeps the job
// machine wide rather than tall and its nested steps compact.

const FONT = 14;
const SMALL = 11;
const CHAR = FONT * 0.6;
const SMALL_CHAR = SMALL * 0.6;
const ATOMIC_H = 36;
const ATOMIC_INVOKE_H = 50;
const PAD = 14;
const HEADER = 26;
const RANK_GAP = 44;
const ITEM_GAP = 16;

export const metrics = { FONT, SMALL, HEADER, PAD };

export function layoutMachine(shape) {
  const byPath = new Map(shape.states.map((s) => [s.path, s]));
  const kids = new Map(shape.states.map((s) => [s.path, []]));
  for (const s of shape.states) if (s.parent !== null) kids.get(s.parent).push(s.path);

  const isInside = (path, ancestor) => ancestor === '' ? path !== '' : path.startsWith(`${ancestor}.`);
  // the child of `ancestor` that holds `path` (or is it)
  const childHolding = (ancestor, path) => {
    for (const k of kids.get(ancestor)) if (k === path || isInside(path, k)) return k;
    return null;
  };

  const local = new Map(); // path → { w, h, at: Map(child → {x, y}) }

  function measure(path, depth) {
    const state = byPath.get(path);
    const children = kids.get(path);
    if (!children.length) {
      const invoke = state.invokes.length ? state.invokes.map((i) => i.src).join(', ') : '';
      const w = Math.max(92, state.key.length * CHAR + 28, invoke.length * SMALL_CHAR + 34);
      const h = invoke ? ATOMIC_INVOKE_H : ATOMIC_H;
      local.set(path, { w, h, at: new Map() });
      return;
    }
    for (const c of children) measure(c, depth + 1);
    const across = depth % 2 === 0; // left-to-right at even depths

    const edges = [];
    for (const t of shape.transitions) {
      if (!(t.source === path || isInside(t.source, path))) continue;
      const from = childHolding(path, t.source);
      for (const target of t.targets) {
        const to = childHolding(path, target);
        if (from && to && from !== to) edges.push([from, to]);
      }
    }

    // back edges: found by a depth-first walk from the initial child, then the others in order
    const order = [...children];
    const initial = state.initial && children.find((c) => byPath.get(c).key === state.initial);
    if (initial) order.splice(order.indexOf(initial), 1), order.unshift(initial);
    const out = new Map(children.map((c) => [c, []]));
    for (const [a, b] of edges) out.get(a).push(b);
    const mark = new Map();
    const forward = [];
    const visit = (n) => {
      mark.set(n, 'open');
      for (const m of out.get(n)) {
        if (mark.get(m) === 'open') continue; // back edge
        forward.push([n, m]);
        if (!mark.has(m)) visit(m);
      }
      mark.set(n, 'done');
    };
    for (const n of order) if (!mark.has(n)) visit(n);

    // longest path ranks over the forward edges (a DAG now)
    const rank = new Map(children.map((c) => [c, 0]));
    for (let changed = true, guard = 0; changed && guard < children.length + 2; guard++) {
      changed = false;
      for (const [a, b] of forward) {
        if (rank.get(b) < rank.get(a) + 1) rank.set(b, rank.get(a) + 1), (changed = true);
      }
    }
    const ranks = [];
    for (const c of children) (ranks[rank.get(c)] ??= []).push(c);
    for (let i = 0; i < ranks.length; i++) ranks[i] ??= [];

    // order within ranks: two sweeps of the barycentre heuristic
    const pos = new Map();
    const index = () => ranks.forEach((r) => r.forEach((c, i) => pos.set(c, i)));
    index();
    const neighbours = new Map(children.map((c) => [c, []]));
    for (const [a, b] of forward) neighbours.get(a).push(b), neighbours.get(b).push(a);
    for (let sweep = 0; sweep < 4; sweep++) {
      for (const r of ranks) {
        const score = new Map(r.map((c) => {
          const ns = neighbours.get(c).filter((n) => rank.get(n) !== rank.get(c));
          return [c, ns.length ? ns.reduce((s, n) => s + pos.get(n), 0) / ns.length : pos.get(c)];
        }));
        r.sort((a, b) => score.get(a) - score.get(b));
      }
      index();
    }

    // place: ranks along the main axis, items stacked across it, each rank centred
    const main = (c) => (across ? local.get(c).w : local.get(c).h);
    const cross = (c) => (across ? local.get(c).h : local.get(c).w);
    const rankMain = ranks.map((r) => Math.max(0, ...r.map(main)));
    const rankCross = ranks.map((r) => r.reduce((s, c) => s + cross(c), 0) + ITEM_GAP * Math.max(0, r.length - 1));
    const totalCross = Math.max(...rankCross);
    const at = new Map();
    let m = 0;
    ranks.forEach((r, i) => {
      let x = (totalCross - rankCross[i]) / 2;
      for (const c of r) {
        const offsetMain = (rankMain[i] - main(c)) / 2;
        at.set(c, across ? { x: m + offsetMain, y: x } : { x, y: m + offsetMain });
        x += cross(c) + ITEM_GAP;
      }
      m += rankMain[i] + RANK_GAP;
    });
    const totalMain = m - RANK_GAP;
    const isRoot = path === '';
    const padTop = isRoot ? 0 : HEADER + PAD / 2;
    const pad = isRoot ? 0 : PAD;
    const contentW = across ? totalMain : totalCross;
    const contentH = across ? totalCross : totalMain;
    const headerW = isRoot ? 0 : state.key.length * CHAR + 2 * PAD;
    const w = Math.max(contentW + 2 * pad, headerW);
    for (const p of at.values()) p.x += pad + (w - 2 * pad - contentW) / 2, p.y += padTop;
    local.set(path, { w, h: contentH + padTop + pad, at });
  }

  measure('', 0);

  // absolute boxes
  const boxes = new Map();
  const place = (path, x, y) => {
    const l = local.get(path);
    boxes.set(path, { x, y, w: l.w, h: l.h, state: byPath.get(path), compound: kids.get(path).length > 0 });
    for (const [c, p] of l.at) place(c, x + p.x, y + p.y);
  };
  const MARGIN = 24;
  place('', MARGIN, MARGIN);
  const root = boxes.get('');

  const edges = [];
  const notes = [];
  let bottom = root.y + root.h;
  for (const t of shape.transitions) {
    if (!t.targets.length) continue;
    for (const target of t.targets) {
      if (t.source === '') {
        notes.push({ transition: t, target });
        continue;
      }
      const route = routeEdge(boxes.get(t.source), boxes.get(target), isInside(t.source, target));
      bottom = Math.max(bottom, route.lowest);
      edges.push({ transition: t, source: t.source, target, ...route });
    }
  }

  // the initial marker of each compound state (and the machine)
  const initials = [];
  for (const s of shape.states) {
    if (!s.initial) continue;
    const box = boxes.get(s.path === '' ? s.initial : `${s.path}.${s.initial}`);
    if (box) initials.push({ parent: s.path, x: box.x, y: box.y, w: box.w, h: box.h, across: depthOf(s.path) % 2 === 0 });
  }

  return {
    width: root.x + root.w + MARGIN + 40,
    height: bottom + MARGIN,
    boxes,
    edges,
    notes,
    initials,
  };
}

function depthOf(path) {
  return path === '' ? 0 : path.split('.').length;
}

const cubic = (a, c1, c2, b) => `M${a.x},${a.y} C${c1.x},${c1.y} ${c2.x},${c2.y} ${b.x},${b.y}`;
const midpoint = (a, c1, c2, b) => ({
  x: 0.125 * a.x + 0.375 * c1.x + 0.375 * c2.x + 0.125 * b.x,
  y: 0.125 * a.y + 0.375 * c1.y + 0.375 * c2.y + 0.125 * b.y,
});

// A curve from one box to another chosen by where they are relative to each other.
function routeEdge(a, b, toAncestor) {
  const acx = a.x + a.w / 2, acy = a.y + a.h / 2;
  const bcx = b.x + b.w / 2, bcy = b.y + b.h / 2;
  let p;
  if (toAncestor) {
    // back to an enclosing state: up from the box into the enclosing header
    const s = { x: acx, y: a.y };
    const e = { x: b.x + 10, y: b.y + HEADER / 2 };
    p = [s, { x: s.x, y: s.y - 40 }, { x: e.x - 40, y: e.y }, e];
  } else if (a === b) {
    const s = { x: a.x + a.w - 14, y: a.y };
    const e = { x: a.x + a.w, y: a.y + 12 };
    p = [s, { x: s.x + 4, y: s.y - 30 }, { x: e.x + 30, y: e.y - 4 }, e];
  } else if (a.x + a.w <= b.x + 1) {
    const s = { x: a.x + a.w, y: acy };
    const e = { x: b.x, y: bcy };
    const dx = Math.max(24, (e.x - s.x) / 2);
    p = [s, { x: s.x + dx, y: s.y }, { x: e.x - dx, y: e.y }, e];
  } else if (b.x + b.w <= a.x + 1) {
    // backwards: dip below both boxes
    const s = { x: acx, y: a.y + a.h };
    const e = { x: bcx, y: b.y + b.h };
    const dip = Math.max(s.y, e.y) + 28 + Math.min(60, Math.abs(s.x - e.x) * 0.08);
    p = [s, { x: s.x, y: dip }, { x: e.x, y: dip }, e];
  } else if (b.y >= a.y + a.h - 1) {
    const s = { x: acx, y: a.y + a.h };
    const e = { x: bcx, y: b.y };
    const dy = Math.max(16, (e.y - s.y) / 2);
    p = [s, { x: s.x, y: s.y + dy }, { x: e.x, y: e.y - dy }, e];
  } else if (b.y + b.h <= a.y + 1) {
    // upwards in a top-to-bottom compound: loop round the right-hand side
    const s = { x: a.x + a.w, y: acy };
    const e = { x: b.x + b.w, y: bcy };
    const out = Math.max(s.x, e.x) + 34;
    p = [s, { x: out, y: s.y }, { x: out, y: e.y }, e];
  } else {
    p = [{ x: acx, y: acy }, { x: acx, y: acy }, { x: bcx, y: bcy }, { x: bcx, y: bcy }];
  }
  const [s, c1, c2, e] = p;
  return { d: cubic(s, c1, c2, e), mid: midpoint(s, c1, c2, e), lowest: Math.max(s.y, c1.y, c2.y, e.y) };
}
