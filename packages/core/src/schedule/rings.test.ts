import { describe, expect, it } from 'vitest';
import { assignRings, deploymentProgress, Ring, ringSize, ringVerdict, type RingVerdictInput } from './rings.js';

describe('ringSize', () => {
  it('rounds up, at least one device', () => {
    expect(ringSize(1, 10)).toBe(1);
    expect(ringSize(50, 3)).toBe(2);
    expect(ringSize(7, 100)).toBe(7);
    expect(ringSize(10, 10)).toBe(1);
    expect(ringSize(10, 11)).toBe(2);
    expect(ringSize(0.5, 1000)).toBe(5);
    expect(ringSize(100, 3)).toBe(3);
    expect(ringSize(5, 0)).toBe(0);
  });
});

describe('assignRings', () => {
  const devices = Array.from({ length: 10 }, (_, i) => ({ id: `dev-${i}`, groups: i < 2 ? ['canary'] : ['fleet'] }));
  const rings = [
    { name: 'canary', groups: ['canary'] },
    { name: 'early', percent: 10 },
    { name: 'broad', percent: 100 },
  ];

  it('group rings first, then shares of the whole fleet, each device once', () => {
    const a = assignRings(devices, rings, 'deployment-1');
    expect(a.rings.map((r) => [r.name, r.devices.length])).toEqual([
      ['canary', 2],
      ['early', 1],
      ['broad', 7],
    ]);
    expect(a.rings[0]!.devices).toEqual(['dev-0', 'dev-1']);
    const all = a.rings.flatMap((r) => r.devices);
    expect(new Set(all).size).toBe(10);
    expect(a.unassigned).toEqual([]);
  });

  it('is deterministic: same salt, any input order, same rings; pinned for one salt', () => {
    const a = assignRings(devices, rings, 'deployment-1');
    const b = assignRings([...devices].reverse(), rings, 'deployment-1');
    expect(b).toEqual(a);
    expect(assignRings(devices, [{ name: 'half', percent: 50 }], 'deployment-1').rings[0]!.devices).toEqual(
      PINNED_HALF,
    );
  });

  it('another salt picks other devices', () => {
    const picks = new Set(
      ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'].map((salt) => assignRings(devices, [{ name: 'half', percent: 50 }], salt).rings[0]!.devices.join(',')),
    );
    expect(picks.size).toBeGreaterThan(1);
  });

  it('leaves devices no ring selects unassigned, and refuses duplicates', () => {
    const a = assignRings(devices, [{ name: 'canary', groups: ['canary'] }], 's');
    expect(a.unassigned).toHaveLength(8);
    expect(() => assignRings([devices[0]!, devices[0]!], rings, 's')).toThrow(/twice/);
  });

  it('a percentage ring takes what is left when earlier rings took more', () => {
    const a = assignRings(devices, [{ name: 'all-fleet', groups: ['fleet'] }, { name: 'p', percent: 50 }], 's');
    expect(a.rings[1]!.devices).toEqual(['dev-0', 'dev-1']);
  });

  it('checks the ring schema', () => {
    expect(Ring.parse({ name: 'r1', percent: 5 })).toEqual({ name: 'r1', percent: 5, bakeMinutes: 0, failureThreshold: 0, maxNotReporting: 0 });
    expect(() => Ring.parse({ name: 'r1', percent: 0 })).toThrow();
    expect(() => Ring.parse({ name: 'r1', percent: 101 })).toThrow();
    expect(() => Ring.parse({ name: 'r1', groups: [] })).toThrow();
    expect(() => Ring.parse({ name: 'r1', failureThreshold: 0.1 })).toThrow();
  });
});

const HOUR = 3_600_000;
const T = Date.parse('2026-06-01T00:00:00Z');
const jobs = (spec: Record<string, number>) => Object.entries(spec).flatMap(([state, n]) => Array.from({ length: n }, () => ({ state })));
const base: RingVerdictInput = { jobs: [], total: 10, failureThreshold: 0.2, maxNotReporting: 2, bakeMs: 24 * HOUR, deadlinePassed: false, now: T };

describe('ringVerdict', () => {
  it('gives the same verdict for jobs listed one by one and for states with their counts', () => {
    const cases: [Record<string, number>, Partial<RingVerdictInput>][] = [
      [{ done: 8, 'rolled-back': 1, needs_attention: 1 }, { failureThreshold: 0.1 }],
      [{ done: 3, failed: 3, queued: 4 }, {}],
      [{ done: 9 }, { deadlinePassed: true }],
      [{ done: 10 }, { bakeStartedAt: T - HOUR }],
    ];
    for (const [spec, extra] of cases) {
      const counted = Object.entries(spec).map(([state, n]) => ({ state, n }));
      expect(ringVerdict({ ...base, ...extra, jobs: counted })).toEqual(ringVerdict({ ...base, ...extra, jobs: jobs(spec) }));
    }
  });

  it('running while jobs are unfinished and the threshold is not certainly crossed', () => {
    const v = ringVerdict({ ...base, jobs: jobs({ done: 3, failed: 2, installing: 5 }) });
    expect(v.status).toBe('running');
    expect(v.counts).toEqual({ total: 10, succeeded: 3, failed: 2, unfinished: 5 });
  });

  it('halts early once the threshold is certainly crossed, with the numbers', () => {
    const v = ringVerdict({ ...base, jobs: jobs({ done: 2, failed: 3, queued: 5 }) });
    expect(v.status).toBe('halted');
    expect(v.reason).toBe('3 of 5 finished jobs failed (60%), above the failure threshold of 20% (certain: at least 30% of all 10 devices)');
  });

  it('judges failed ÷ finished when the ring is done: at the threshold passes, above halts', () => {
    expect(ringVerdict({ ...base, jobs: jobs({ done: 8, failed: 2 }) }).status).toBe('baking');
    const v = ringVerdict({ ...base, failureThreshold: 0.1, jobs: jobs({ done: 8, 'rolled-back': 1, needs_attention: 1 }) });
    expect(v).toMatchObject({ status: 'halted', reason: '2 of 10 finished jobs failed (20%), above the failure threshold of 10%' });
  });

  it('at the deadline, failed ÷ finished counts only the finished jobs', () => {
    const v = ringVerdict({ ...base, maxNotReporting: 5, deadlinePassed: true, jobs: jobs({ done: 4, failed: 2, downloading: 1 }) });
    expect(v).toMatchObject({ status: 'halted', reason: '2 of 6 finished jobs failed (33.3%), above the failure threshold of 20%' });
  });

  it('halts on too many devices not reporting by the deadline', () => {
    const input = { ...base, deadlinePassed: true, jobs: jobs({ done: 6, failed: 1, installing: 1 }) };
    expect(ringVerdict(input)).toMatchObject({ status: 'halted', reason: '3 of 10 devices did not report by the deadline, above the limit of 2' });
    expect(ringVerdict({ ...input, maxNotReporting: 3 }).status).toBe('baking');
    // before the deadline the same numbers are just a running ring
    expect(ringVerdict({ ...input, deadlinePassed: false }).status).toBe('running');
  });

  it('bakes for bakeMs from the bake start, then is healthy', () => {
    const done = { ...base, jobs: jobs({ succeeded: 10 }), bakeStartedAt: T };
    expect(ringVerdict({ ...done, now: T + HOUR })).toMatchObject({ status: 'baking', bakeEndsAt: T + 24 * HOUR });
    expect(ringVerdict({ ...done, now: T + 24 * HOUR - 1 }).status).toBe('baking');
    expect(ringVerdict({ ...done, now: T + 24 * HOUR })).toEqual({ status: 'healthy', counts: { total: 10, succeeded: 10, failed: 0, unfinished: 0 } });
    // no recorded start: the bake starts now
    expect(ringVerdict({ ...done, bakeStartedAt: undefined, now: T + 5 * HOUR })).toMatchObject({ status: 'baking', bakeEndsAt: T + 29 * HOUR });
    // a failure reported late, during the bake, still halts
    expect(ringVerdict({ ...done, failureThreshold: 0, jobs: jobs({ succeeded: 9, failed: 1 }), now: T + HOUR }).status).toBe('halted');
  });

  it('an empty ring is healthy at once; a zero bake is healthy at once', () => {
    expect(ringVerdict({ ...base, total: 0 })).toMatchObject({ status: 'healthy', reason: 'the ring has no devices' });
    expect(ringVerdict({ ...base, bakeMs: 0, jobs: jobs({ done: 10 }) }).status).toBe('healthy');
  });
});

/** The five smallest sha256('deployment-1\0' + id), checked with a separate script. */
describe('deploymentProgress', () => {
  it('the first ring that is not healthy is current; a halt halts the deployment', () => {
    expect(deploymentProgress([{ status: 'healthy' }, { status: 'baking' }, { status: 'running' }])).toEqual({ ring: 1, status: 'baking' });
    expect(deploymentProgress([{ status: 'healthy' }, { status: 'halted', reason: '1 of 1 finished jobs failed (100%), above the failure threshold of 0%' }])).toEqual({
      ring: 1,
      status: 'halted',
      reason: 'ring 2: 1 of 1 finished jobs failed (100%), above the failure threshold of 0%',
    });
    expect(deploymentProgress([{ status: 'healthy' }, { status: 'healthy' }])).toEqual({ ring: 2, status: 'complete' });
  });
});

const PINNED_HALF = ['dev-1', 'dev-4', 'dev-5', 'dev-6', 'dev-8'];
