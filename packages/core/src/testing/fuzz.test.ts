import { describe, expect, it } from 'vitest';
import { PatchwardenError } from '../errors.js';
import {
  FuzzFailure,
  FuzzRng,
  fuzz,
  fuzzInput,
  fuzzSettings,
  iterationRng,
  mutateBytes,
  mutateJson,
  mutateJsonText,
  mutateText,
} from './fuzz.js';

const now = () => performance.now();
const corpus = [new TextEncoder().encode('Package: hello\nVersion: 1.0-1\n\nPackage: b\nVersion: 2\n'), new TextEncoder().encode('{"a":[1,2,{"b":"c"}]}')];
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('the fuzz mutator', () => {
  it('mulberry32 is deterministic and spreads its values', () => {
    const a = new FuzzRng(42);
    const b = new FuzzRng(42);
    const xs = Array.from({ length: 1000 }, () => a.u32());
    expect(Array.from({ length: 1000 }, () => b.u32())).toEqual(xs);
    expect(new Set(xs).size).toBe(1000);
    const c = new FuzzRng(43);
    expect(Array.from({ length: 10 }, () => c.u32())).not.toEqual(xs.slice(0, 10));
    const r = new FuzzRng(7);
    for (let i = 0; i < 1000; i++) {
      const n = r.int(10);
      expect(n).toBeGreaterThanOrEqual(0);
      expect(n).toBeLessThan(10);
    }
  });

  it('gives the same mutations for the same seed and different ones for different seeds', () => {
    const run = (seed: number) => Array.from({ length: 50 }, (_, i) => hex(mutateBytes(corpus[0]!, iterationRng(seed, i), corpus)));
    expect(run(1)).toEqual(run(1));
    const other = run(2);
    expect(other.filter((x, i) => x === run(1)[i]).length).toBeLessThan(10);
    const json = (seed: number) => Array.from({ length: 50 }, (_, i) => JSON.stringify(mutateJson({ a: [1, 2, { b: 'c' }], d: true }, iterationRng(seed, i))));
    expect(json(9)).toEqual(json(9));
    expect(json(9)).not.toEqual(json(10));
  });

  it('never changes its input and makes inputs that differ from it', () => {
    const input = corpus[0]!.slice();
    let changed = 0;
    for (let i = 0; i < 300; i++) {
      const out = mutateBytes(input, iterationRng(5, i), corpus, { maxLength: 4096 });
      expect(out.length).toBeLessThanOrEqual(4096);
      if (hex(out) !== hex(input)) changed++;
    }
    expect(hex(input)).toBe(hex(corpus[0]!));
    expect(changed).toBeGreaterThan(270);
    const value = { a: [1, 2], b: { c: 'x' } };
    for (let i = 0; i < 200; i++) mutateJson(value, iterationRng(5, i));
    expect(value).toEqual({ a: [1, 2], b: { c: 'x' } });
  });

  it('makes the structure-aware mutations it promises: odd own keys, deep nesting, huge values', () => {
    const seen = { proto: false, deep: false, huge: false, wrongType: false };
    for (let i = 0; i < 1000; i++) {
      const text = mutateJsonText('{"id":"x","n":1,"list":[{"k":"v"}]}', iterationRng(11, i));
      if (text.includes('"__proto__"')) seen.proto = true;
      if (text.length > 1000 && (text.includes('[[[[[[[[[[') || text.includes('{"a":{"a":{"a":') || text.includes('{"all":{"all":{"all":'))) seen.deep = true;
      if (text.length > 10_000 && text.includes('A'.repeat(10_000))) seen.huge = true;
      if (/"id":(null|true|false|-?\d|\[|\{)/.test(text)) seen.wrongType = true;
    }
    expect(seen).toEqual({ proto: true, deep: true, huge: true, wrongType: true });
    // an own __proto__ key survives serialisation as data, not as a prototype
    for (let i = 0; i < 500; i++) {
      const v = mutateJson({ a: { b: 1 } }, iterationRng(3, i)) as Record<string, unknown>;
      const text = JSON.stringify(v);
      if (text.includes('"__proto__"')) {
        expect(Object.getPrototypeOf(JSON.parse(text))).toBe(Object.prototype);
        return;
      }
    }
    throw new Error('no __proto__ key in 500 mutations');
  });

  it('mutates text through its UTF-8 bytes', () => {
    const outs = new Set(Array.from({ length: 100 }, (_, i) => mutateText('héllo wörld', iterationRng(1, i))));
    expect(outs.size).toBeGreaterThan(80);
  });
});

describe('the fuzz runner', () => {
  const text = (b: Uint8Array) => new TextDecoder().decode(b);

  it('counts inputs past the front door and coded rejections, and replays one iteration alone', async () => {
    const opts = {
      corpus,
      seed: 123,
      iterations: 300,
      budgetMs: 10_000,
      now,
      mutate: (b: Uint8Array, rng: FuzzRng, c: readonly Uint8Array[]) => mutateBytes(b, rng, c),
      run: (b: Uint8Array, reached: () => void) => {
        if (!text(b).includes(':')) throw new PatchwardenError('E_VALIDATION', 'no colon');
        reached();
      },
    };
    const s = await fuzz(opts);
    expect(s.iterations).toBe(300);
    expect(s.passed + s.rejected).toBe(300);
    expect(s.accepted).toBe(s.passed);
    expect(s.passed).toBeGreaterThan(100);
    const again = await fuzz(opts);
    expect({ ...again, elapsedMs: 0, slowestMs: 0 }).toEqual({ ...s, elapsedMs: 0, slowestMs: 0 });
    expect(hex(fuzzInput(opts, 17))).toBe(hex(fuzzInput(opts, 17)));
  });

  it('fails with the seed, the iteration and the input on an uncoded error, and on the wrong code', async () => {
    const base = { corpus, seed: 77, iterations: 200, budgetMs: 10_000, now, mutate: (b: Uint8Array, rng: FuzzRng) => mutateBytes(b, rng) };
    const err = await fuzz({
      ...base,
      run: (b) => {
        if (b.length % 7 === 3) throw new TypeError('boom');
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FuzzFailure);
    const f = err as FuzzFailure;
    expect(f.seed).toBe(77);
    expect(f.message).toMatch(/iteration \d+ of seed 77 threw TypeError: boom/);
    expect(f.message).toContain('PATCHWARDEN_FUZZ_SEED=77');
    expect((fuzzInput(base, f.iteration) as Uint8Array).length % 7).toBe(3);
    const wrong = await fuzz({
      ...base,
      codes: ['E_FEED_INVALID'],
      run: () => {
        throw new PatchwardenError('E_INTERNAL', 'x');
      },
    }).catch((e: unknown) => e);
    expect((wrong as Error).message).toMatch(/corpus item 0 of seed 77 threw PatchwardenError E_INTERNAL/);
  });

  it('fails an iteration slower than slowMs, and stops at the time budget', async () => {
    let t = 0;
    const clock = () => t;
    const slow = await fuzz({
      corpus,
      seed: 1,
      iterations: 10,
      budgetMs: 1e9,
      slowMs: 100,
      now: clock,
      mutate: (b) => b,
      run: () => {
        t += 150;
      },
    }).catch((e: unknown) => e);
    expect((slow as Error).message).toMatch(/took 150 ms/);
    const s = await fuzz({
      corpus,
      seed: 1,
      iterations: 1000,
      budgetMs: 100,
      now: clock,
      mutate: (b) => b,
      run: () => {
        t += 10;
      },
    });
    expect(s.iterations).toBeLessThan(20);
  });

  it('reads the seed and scale from an environment record', () => {
    expect(fuzzSettings({}, 5)).toEqual({ seed: 5, scale: 1 });
    expect(fuzzSettings({ PATCHWARDEN_FUZZ_SEED: '0x10', PATCHWARDEN_FUZZ_SCALE: '20' }, 5)).toEqual({ seed: 16, scale: 20 });
    expect(fuzzSettings({ PATCHWARDEN_FUZZ_SEED: '4294967295' }, 5).seed).toBe(4294967295);
    expect(() => fuzzSettings({ PATCHWARDEN_FUZZ_SEED: 'abc' }, 5)).toThrow(/unsigned 32-bit/);
  });
});
