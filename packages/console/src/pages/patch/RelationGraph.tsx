import type { PatchRelations, RelatedPatch } from '../../api/types';
import { StateBadge } from '../../components/Severity';
import { href, patchPath } from '../../router';

type Kind = keyof PatchRelations;
const OUT: Kind[] = ['requires', 'supersedes', 'conflicts'];
const IN: Kind[] = ['requiredBy', 'supersededBy', 'conflictedBy'];
const LABEL: Record<Kind, string> = {
  requires: 'requires', supersedes: 'supersedes', conflicts: 'conflicts with',
  requiredBy: 'required by', supersededBy: 'superseded by', conflictedBy: 'conflicted by',
};
const STROKE: Record<Kind, { color: string; dash?: string }> = {
  requires: { color: '#1d5bb8' }, requiredBy: { color: '#1d5bb8' },
  supersedes: { color: '#586273', dash: '6 4' }, supersededBy: { color: '#586273', dash: '6 4' },
  conflicts: { color: '#a1262b', dash: '2 3' }, conflictedBy: { color: '#a1262b', dash: '2 3' },
};
const MAX_PER_SIDE = 10;
const ROW = 34;
const W = 760;
const NODE_W = 220;

type Node = { kind: Kind; patch: RelatedPatch } | { kind: 'more'; count: number };

function side(rel: PatchRelations, kinds: Kind[]): Node[] {
  const all: Node[] = kinds.flatMap((k) => rel[k].map((p) => ({ kind: k, patch: p })));
  if (all.length <= MAX_PER_SIDE) return all;
  return [...all.slice(0, MAX_PER_SIDE - 1), { kind: 'more', count: all.length - (MAX_PER_SIDE - 1) }];
}

const clip = (s: string, n = 28) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/**
 * The patch in the middle, what it requires / supersedes / conflicts with on the left, and the
 * reverse links on the right. The drawing is decoration (aria-hidden); the list below it says
 * the same with links, for keyboards and screen readers.
 */
export function RelationGraph({ id, relations }: { id: string; relations: PatchRelations }) {
  const left = side(relations, OUT);
  const right = side(relations, IN);
  const total = [...OUT, ...IN].reduce((n, k) => n + relations[k].length, 0);
  if (total === 0) return <p className="muted">This patch has no requires, supersedes or conflicts links, in either direction.</p>;
  const rows = Math.max(left.length, right.length, 1);
  const h = rows * ROW + 24;
  const cy = h / 2;
  const cx0 = (W - 180) / 2;
  const y = (i: number, n: number) => cy - ((n - 1) * ROW) / 2 + i * ROW;

  const centreLeft = cx0;
  const centreRight = cx0 + 180;
  /** Left: this patch → the ones it links to. Right: the others → this patch. */
  const drawSide = (nodes: Node[], isLeft: boolean) =>
    nodes.map((n, i) => {
      const ny = y(i, nodes.length);
      const x = isLeft ? 8 : W - 8 - NODE_W;
      const key = n.kind === 'more' ? `more-${isLeft}` : `${n.kind}-${n.patch.id}`;
      const s = n.kind === 'more' ? { color: '#8a93a1', dash: undefined } : STROKE[n.kind];
      const edge = isLeft ? x + NODE_W : x;
      const line = isLeft
        ? { x1: centreLeft, y1: cy, x2: edge, y2: ny }
        : { x1: edge, y1: ny, x2: centreRight, y2: cy };
      return (
        <g key={key}>
          {n.kind !== 'more' ? <line {...line} stroke={s.color} strokeWidth={1.5} strokeDasharray={s.dash} markerEnd="url(#arrow)" /> : null}
          <rect x={x} y={ny - 12} width={NODE_W} height={24} rx={4} fill="#ffffff" stroke={s.color} />
          <text x={x + 8} y={ny + 4} fontSize={12} fill="#1a2230" fontFamily="ui-monospace, monospace">
            {n.kind === 'more' ? `+${n.count} more (see the list)` : clip(n.patch.id)}
          </text>
          {n.kind !== 'more' ? (
            <text x={isLeft ? edge + 6 : edge - 6} y={ny - 4} fontSize={10} fill="#586273" textAnchor={isLeft ? 'start' : 'end'}>
              {LABEL[n.kind]}
            </text>
          ) : null}
        </g>
      );
    });

  return (
    <div className="relations">
      <svg className="relations__graph" viewBox={`0 0 ${W} ${h}`} width="100%" aria-hidden="true" focusable="false"
        preserveAspectRatio="xMidYMid meet" style={{ maxHeight: `${h}px` }}>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" fill="#586273" />
          </marker>
        </defs>
        {drawSide(left, true)}
        {drawSide(right, false)}
        <rect x={cx0} y={cy - 16} width={180} height={32} rx={6} fill="#e8f0fb" stroke="#1d5bb8" strokeWidth={2} />
        <text x={cx0 + 90} y={cy + 5} fontSize={13} fontWeight={600} textAnchor="middle" fill="#1a2230" fontFamily="ui-monospace, monospace">
          {clip(id, 22)}
        </text>
      </svg>
      <dl className="relations__list">
        {[...OUT, ...IN].filter((k) => relations[k].length > 0).map((k) => (
          <div key={k} className="relations__group">
            <dt>This patch {LABEL[k]}</dt>
            {relations[k].map((p) => (
              <dd key={p.id}>
                <a className="mono" href={href(patchPath(p.id))}>{p.id}</a>
                {p.title ? <span> — {p.title}</span> : null}
                {p.state === 'missing' ? <> <StateBadge state="not in catalog" /></> : p.status ? <> <StateBadge state={p.status} /></> : null}
              </dd>
            ))}
          </div>
        ))}
      </dl>
    </div>
  );
}
