/**
 * A small, seeded fuzzer for the parsers of untrusted input (tests only; *.fuzz.test.ts).
 *
 * Pure: no I/O, no clock and no ambient randomness. Every random choice comes from a seeded
 * PRNG (mulberry32), and each iteration gets its own generator derived from (seed, index), so
 * a failure at iteration N of seed S is replayed by the same seed alone, or directly with
 * `fuzzInput(…, N)`. The caller passes the clock (`now`) and the seed (from the environment
 * variable PATCHWARDEN_FUZZ_SEED through `fuzzSettings`).
 *
 * The contract a fuzz test asserts: for every input the parser returns, or throws the project's
 * coded error (PatchwardenError, optionally of the listed codes). Anything else (a TypeError, a
 * RangeError, a stack overflow, an iteration slower than `slowMs`) fails the run with the seed,
 * the iteration and the input.
 */
import { PatchwardenError, type ErrorCode } from '../errors.js';

// ─── Randomness ──────────────────────────────────────────────────────────────

/** mulberry32: a 32-bit state, fast, good enough to pick mutations. */
export class FuzzRng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** a uniform unsigned 32-bit integer */
  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** an integer in [0, n) (n ≥ 1) */
  int(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** an integer in [lo, hi] */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(list: readonly T[]): T {
    if (list.length === 0) throw new RangeError('pick from an empty list');
    return list[this.int(list.length)]!;
  }

  /** small numbers often, large ones rarely: 1..max */
  small(max: number): number {
    let n = 1;
    while (n < max && this.chance(0.5)) n *= 2;
    return this.range(1, Math.min(n, max));
  }
}

/** The generator of one iteration: depends on (seed, index) only. */
export function iterationRng(seed: number, index: number): FuzzRng {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return new FuzzRng((h ^ (h >>> 16)) >>> 0);
}

// ─── Byte-level mutations ────────────────────────────────────────────────────

const INTERESTING_BYTES = [0x00, 0x01, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x2f, 0x3a, 0x5b, 0x5c, 0x7b, 0x7d, 0x7f, 0x80, 0xc0, 0xfe, 0xff];
const INTERESTING_U32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];
const RUN_BYTES = [0x00, 0x0a, 0x20, 0x30, 0x37, 0x39, 0x41, 0x5b, 0x7b, 0x20, 0xff, 0x3a];

export interface ByteMutationOptions {
  /** tokens the format uses (field names, delimiters); inserted or overwritten as a whole */
  dictionary?: readonly (string | Uint8Array)[];
  /** the output is cut to this length (default 256 KiB) */
  maxLength?: number;
  /** at most this many stacked mutations (default 4) */
  maxStack?: number;
}

const utf8 = new TextEncoder();
const toBytes = (t: string | Uint8Array) => (typeof t === 'string' ? utf8.encode(t) : t);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

type ByteOp = (b: Uint8Array, rng: FuzzRng, corpus: readonly Uint8Array[], opts: ByteMutationOptions) => Uint8Array;

const BYTE_OPS: readonly [string, ByteOp][] = [
  [
    'flip',
    (b, rng) => {
      if (b.length === 0) return b;
      const c = b.slice();
      c[rng.int(c.length)]! ^= 1 << rng.int(8);
      return c;
    },
  ],
  [
    'set',
    (b, rng) => {
      if (b.length === 0) return b;
      const c = b.slice();
      c[rng.int(c.length)] = rng.chance(0.5) ? rng.pick(INTERESTING_BYTES) : rng.int(256);
      return c;
    },
  ],
  [
    'insert',
    (b, rng) => {
      const at = rng.int(b.length + 1);
      const ins = new Uint8Array(rng.small(16)).map(() => (rng.chance(0.5) ? rng.pick(INTERESTING_BYTES) : rng.int(256)));
      return concat(b.subarray(0, at), ins, b.subarray(at));
    },
  ],
  [
    'delete',
    (b, rng) => {
      if (b.length === 0) return b;
      const at = rng.int(b.length);
      const n = Math.min(rng.small(256), b.length - at);
      return concat(b.subarray(0, at), b.subarray(at + n));
    },
  ],
  [
    'duplicate',
    (b, rng) => {
      if (b.length === 0) return b;
      const from = rng.int(b.length);
      const n = Math.min(rng.small(1024), b.length - from);
      const slice = b.slice(from, from + n);
      const times = rng.chance(0.1) ? rng.small(64) : 1;
      const at = rng.int(b.length + 1);
      return concat(b.subarray(0, at), ...Array.from({ length: times }, () => slice), b.subarray(at));
    },
  ],
  ['truncate', (b, rng) => b.subarray(0, rng.int(b.length + 1))],
  [
    'splice',
    (b, rng, corpus) => {
      const other = rng.pick(corpus);
      const cut = rng.int(b.length + 1);
      const from = rng.int(other.length + 1);
      return concat(b.subarray(0, cut), other.subarray(from));
    },
  ],
  [
    'u32',
    (b, rng) => {
      if (b.length < 4) return b;
      const c = b.slice();
      const v = rng.pick(INTERESTING_U32);
      const at = rng.int(c.length - 3);
      const view = new DataView(c.buffer, c.byteOffset, c.length);
      view.setUint32(at, v, rng.chance(0.5));
      return c;
    },
  ],
  [
    'run',
    (b, rng) => {
      // a very long run of one byte: long lines, long numbers, deep brackets, NUL floods
      const n = rng.chance(0.2) ? rng.range(4096, 65536) : rng.small(4096);
      const run = new Uint8Array(n).fill(rng.pick(RUN_BYTES));
      const at = rng.int(b.length + 1);
      if (rng.chance(0.3) && b.length > 0) {
        // replace instead of insert
        return concat(b.subarray(0, at), run, b.subarray(Math.min(b.length, at + n)));
      }
      return concat(b.subarray(0, at), run, b.subarray(at));
    },
  ],
  [
    'token',
    (b, rng, _corpus, opts) => {
      const dict = opts.dictionary?.length ? opts.dictionary : ['\n', '\n\n', ' ', ':', '"', '{', '}', '[', ']', ',', '\\u0000', '-1', '1e999'];
      const t = toBytes(rng.pick(dict));
      const at = rng.int(b.length + 1);
      const over = rng.chance(0.3) ? t.length : 0;
      return concat(b.subarray(0, at), t, b.subarray(Math.min(b.length, at + over)));
    },
  ],
];

/** Names of the byte mutations, in the order `mutateBytes` picks from. */
export const BYTE_MUTATIONS = BYTE_OPS.map(([name]) => name);

/** One to `maxStack` stacked byte mutations of `input` (never modified in place). */
export function mutateBytes(input: Uint8Array, rng: FuzzRng, corpus: readonly Uint8Array[] = [input], opts: ByteMutationOptions = {}): Uint8Array {
  const max = opts.maxLength ?? 256 * 1024;
  const stack = rng.small(opts.maxStack ?? 4);
  let b = input;
  for (let i = 0; i < stack; i++) {
    b = BYTE_OPS[rng.int(BYTE_OPS.length)]![1](b, rng, corpus.length ? corpus : [input], opts);
    if (b.length > max) b = b.subarray(0, max);
  }
  return b === input ? input.slice() : b;
}

/** The same on text: UTF-8 bytes mutated, decoded again (bad sequences become U+FFFD). */
export function mutateText(input: string, rng: FuzzRng, corpus: readonly string[] = [input], opts: ByteMutationOptions = {}): string {
  const out = mutateBytes(utf8.encode(input), rng, corpus.map((c) => utf8.encode(c)), opts);
  return new TextDecoder('utf-8', { fatal: false }).decode(out);
}

/** Text read as latin1 (every byte one character), as the apt readers do. */
export function mutateLatin1(input: string, rng: FuzzRng, corpus: readonly string[] = [input], opts: ByteMutationOptions = {}): string {
  const enc = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0) & 0xff);
  const out = mutateBytes(enc(input), rng, corpus.map(enc), opts);
  let s = '';
  for (let i = 0; i < out.length; i += 8192) s += String.fromCharCode(...out.subarray(i, i + 8192));
  return s;
}

// ─── Structure-aware JSON mutations ─────────────────────────────────────────

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Container = Json[] | { [k: string]: Json };

const isContainer = (v: unknown): v is Container => typeof v === 'object' && v !== null;

/** A deep copy that keeps own `__proto__` keys as data (plain assignment would not). */
function clone(v: unknown): Json {
  if (Array.isArray(v)) return v.map(clone);
  if (isContainer(v)) {
    const o: { [k: string]: Json } = {};
    for (const k of Object.keys(v)) setKey(o, k, clone((v as Record<string, unknown>)[k]));
    return o;
  }
  return v as Json;
}

function setKey(o: { [k: string]: Json }, k: string, value: Json) {
  Object.defineProperty(o, k, { value, enumerable: true, writable: true, configurable: true });
}

interface Slot {
  parent: Container | null;
  key: string | number;
  value: Json;
  depth: number;
}

/** Every value of the tree with its parent (the root has none); bounded so huge trees stay cheap. */
function slots(root: Json, limit = 5000): Slot[] {
  const out: Slot[] = [{ parent: null, key: '', value: root, depth: 0 }];
  for (let i = 0; i < out.length && out.length < limit; i++) {
    const s = out[i]!;
    if (Array.isArray(s.value)) s.value.forEach((v, k) => out.push({ parent: s.value as Json[], key: k, value: v, depth: s.depth + 1 }));
    else if (isContainer(s.value)) for (const k of Object.keys(s.value)) out.push({ parent: s.value, key: k, value: (s.value as Record<string, Json>)[k]!, depth: s.depth + 1 });
  }
  return out;
}

function keysOf(values: readonly unknown[]): string[] {
  const keys = new Set<string>();
  for (const v of values) for (const s of slots(clone(v), 2000)) if (typeof s.key === 'string' && s.key !== '') keys.add(s.key);
  return [...keys];
}

const ODD_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', ' ', '\u0000', 'length', '0'];
const HUGE_NUMBERS = [0, -0, -1, 1, 0.5, -1.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e21, 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER];

function randomString(rng: FuzzRng): string {
  switch (rng.int(8)) {
    case 0:
      return '';
    case 1:
      return 'A'.repeat(rng.chance(0.3) ? rng.range(10_000, 200_000) : rng.small(2048));
    case 2:
      return '\u0000\u0001\n\r\t\u007f';
    case 3:
      return '\ud800x\udfff';
    case 4:
      return '../../etc/passwd';
    case 5:
      return '0'.repeat(rng.small(400));
    case 6:
      return String.fromCharCode(...Array.from({ length: rng.small(32) }, () => rng.int(0x3000)));
    default:
      return ['__proto__', 'null', 'true', '-1', '1e999', 'NaN', 'CVE-2024-0001', 'dpkg', 'debian', 'bookworm'][rng.int(10)]!;
  }
}

function randomValue(rng: FuzzRng, corpusValues: readonly Json[]): Json {
  switch (rng.int(9)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick(HUGE_NUMBERS);
    case 3:
      return randomString(rng);
    case 4:
      return [];
    case 5:
      return {};
    case 6:
      return rng.int(1000) - 10;
    default:
      return corpusValues.length ? clone(rng.pick(corpusValues)) : null;
  }
}

function nest(value: Json, depth: number, rng: FuzzRng): Json {
  let v = value;
  const asArray = rng.chance(0.5);
  const key = rng.chance(0.5) ? 'all' : 'a';
  for (let i = 0; i < depth; i++) v = asArray ? [v] : { [key]: v };
  return v;
}

type JsonOp = (root: Json, rng: FuzzRng, pool: { keys: string[]; values: Json[] }) => Json;

function replaceAt(root: Json, s: Slot, value: Json): Json {
  if (s.parent === null) return value;
  if (Array.isArray(s.parent)) s.parent[s.key as number] = value;
  else setKey(s.parent, s.key as string, value);
  return root;
}

const JSON_OPS: readonly [string, JsonOp][] = [
  [
    'drop',
    (root, rng) => {
      const s = rng.pick(slots(root));
      if (s.parent === null) return rng.chance(0.5) ? {} : null;
      if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
      else delete s.parent[s.key as string];
      return root;
    },
  ],
  [
    'duplicate',
    (root, rng, pool) => {
      const s = rng.pick(slots(root));
      if (Array.isArray(s.parent)) {
        const times = rng.chance(0.1) ? rng.range(100, 3000) : 1;
        s.parent.splice(s.key as number, 0, ...Array.from({ length: times }, () => clone(s.value)));
      } else if (s.parent) setKey(s.parent, rng.chance(0.5) ? rng.pick(pool.keys.length ? pool.keys : ODD_KEYS) : `${s.key}_`, clone(s.value));
      return root;
    },
  ],
  ['retype', (root, rng, pool) => replaceAt(root, rng.pick(slots(root)), randomValue(rng, pool.values))],
  [
    'string',
    (root, rng) => {
      const strings = slots(root).filter((s) => typeof s.value === 'string');
      const s = strings.length ? rng.pick(strings) : rng.pick(slots(root));
      const v = typeof s.value === 'string' && rng.chance(0.6) ? mutateText(s.value, rng, [s.value], { maxStack: 2, maxLength: 64 * 1024 }) : randomString(rng);
      return replaceAt(root, s, v);
    },
  ],
  ['number', (root, rng) => replaceAt(root, rng.pick(slots(root)), rng.chance(0.5) ? rng.pick(HUGE_NUMBERS) : rng.int(2 ** 31) * (rng.chance(0.5) ? -1 : 1))],
  ['nest', (root, rng) => replaceAt(root, rng.pick(slots(root)), nest(clone(rng.pick(slots(root)).value), rng.chance(0.3) ? rng.range(500, 2500) : rng.small(64), rng))],
  [
    'odd-key',
    (root, rng, pool) => {
      const objects = slots(root).filter((s) => isContainer(s.value) && !Array.isArray(s.value));
      if (!objects.length) return root;
      const o = rng.pick(objects).value as Record<string, Json>;
      setKey(o, rng.pick(ODD_KEYS), randomValue(rng, pool.values));
      return root;
    },
  ],
  [
    'rename',
    (root, rng, pool) => {
      const keyed = slots(root).filter((s) => s.parent && !Array.isArray(s.parent));
      if (!keyed.length) return root;
      const s = rng.pick(keyed);
      const parent = s.parent as Record<string, Json>;
      delete parent[s.key as string];
      setKey(parent, rng.chance(0.7) && pool.keys.length ? rng.pick(pool.keys) : rng.pick(ODD_KEYS), s.value);
      return root;
    },
  ],
  ['graft', (root, rng, pool) => (pool.values.length ? replaceAt(root, rng.pick(slots(root)), clone(rng.pick(pool.values))) : root)],
];

export const JSON_MUTATIONS = JSON_OPS.map(([name]) => name);

/**
 * One to `maxStack` structure-aware mutations of a JSON value (a deep copy is mutated): drop or
 * duplicate keys and elements, change types, deep nesting, huge strings and numbers, odd keys
 * such as `__proto__` (as own data properties), values grafted from other corpus items.
 */
export function mutateJson(input: unknown, rng: FuzzRng, corpus: readonly unknown[] = [input], opts: { maxStack?: number } = {}): Json {
  const values: Json[] = [];
  for (const c of corpus.length ? corpus : [input]) for (const s of slots(clone(c), 500)) values.push(s.value);
  const pool = { keys: keysOf(corpus.length ? corpus : [input]), values };
  let root = clone(input);
  const stack = rng.small(opts.maxStack ?? 3);
  for (let i = 0; i < stack; i++) root = JSON_OPS[rng.int(JSON_OPS.length)]![1](root, rng, pool);
  return root;
}

/**
 * JSON text: mostly structure-aware (parse, mutate, serialise), sometimes byte-level, so both
 * the JSON reader and what reads the value behind it are exercised.
 */
export function mutateJsonText(input: string, rng: FuzzRng, corpus: readonly string[] = [input], opts: ByteMutationOptions & { structural?: number } = {}): string {
  if (rng.chance(opts.structural ?? 0.7)) {
    try {
      const parsed = corpus.map((c) => JSON.parse(c) as unknown);
      const out = JSON.stringify(mutateJson(JSON.parse(input), rng, parsed));
      // deep nesting can exceed what JSON.stringify walks; fall through to bytes then
      if (out !== undefined) return out;
    } catch {
      /* not JSON (a mutated corpus item): byte-level below */
    }
  }
  return mutateText(input, rng, corpus, opts);
}

// ─── The runner ──────────────────────────────────────────────────────────────

export interface FuzzOptions<T> {
  /** valid inputs to start from */
  corpus: readonly T[];
  seed: number;
  /** at most this many iterations */
  iterations: number;
  /** and at most this much time (checked between iterations) */
  budgetMs: number;
  /** but at least this many iterations, however long they take (a loaded machine still runs them all) */
  minIterations?: number;
  mutate: (input: T, rng: FuzzRng, corpus: readonly T[]) => T;
  /**
   * Feeds one input to the parser. Call `reached()` when the input got past the first parse
   * (the front door); return normally when accepted, throw a coded error when rejected.
   */
  run: (input: T, reached: () => void) => unknown;
  /** the clock (milliseconds), e.g. `() => performance.now()` */
  now: () => number;
  /** which PatchwardenError codes are an expected rejection (default: any code) */
  codes?: readonly ErrorCode[];
  /** other errors that are the parser's documented contract (e.g. SyntaxError of JSON.parse) */
  expected?: (err: unknown) => boolean;
  /** an iteration slower than this is a failure (default 500 ms) */
  slowMs?: number;
  /** names the parser in failures */
  label?: string;
}

export interface FuzzStats {
  label: string;
  seed: number;
  iterations: number;
  /** inputs that got past the first parse */
  passed: number;
  /** inputs rejected with an expected (coded) error */
  rejected: number;
  /** inputs the parser accepted */
  accepted: number;
  elapsedMs: number;
  /** the slowest iteration */
  slowestMs: number;
}

/** A fuzz run that found an input the parser does not handle within its contract. */
export class FuzzFailure extends Error {
  constructor(
    message: string,
    readonly seed: number,
    readonly iteration: number,
    readonly input: unknown,
    cause: unknown,
  ) {
    super(message, { cause });
    this.name = 'FuzzFailure';
  }
}

/** The input of iteration `index`: what a failure names can be rebuilt without running the rest. */
export function fuzzInput<T>(opts: Pick<FuzzOptions<T>, 'corpus' | 'seed' | 'mutate'>, index: number): T {
  const rng = iterationRng(opts.seed, index);
  const base = opts.corpus[rng.int(opts.corpus.length)]!;
  return opts.mutate(base, rng, opts.corpus);
}

/** A short, printable picture of an input for a failure message. */
export function describeInput(input: unknown, max = 300): string {
  let s: string;
  if (input instanceof Uint8Array) s = `${input.length} bytes: ${Buffer.from(input.subarray(0, max)).toString('hex')}`;
  else if (typeof input === 'string') s = `${input.length} chars: ${JSON.stringify(input.slice(0, max))}`;
  else {
    try {
      const j = JSON.stringify(input) ?? String(input);
      s = `${j.length} chars of JSON: ${j.slice(0, max)}`;
    } catch (err) {
      s = `(cannot be shown: ${(err as Error).message})`;
    }
  }
  return s.length > max + 40 ? `${s.slice(0, max + 40)}…` : s;
}

function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}${err instanceof PatchwardenError ? ` ${err.code}` : ''}: ${err.message.slice(0, 300)}`;
  return `a thrown ${typeof err}: ${String(err).slice(0, 100)}`;
}

/**
 * Runs `iterations` mutated inputs (or until `budgetMs`), each from a corpus item picked and
 * mutated by the iteration's own generator. Throws a FuzzFailure naming the seed, the iteration
 * and the replay command when `run` throws anything but an expected coded rejection, or when
 * one iteration takes longer than `slowMs`. A corpus item itself is never a failure case: the
 * corpus is checked first (it must be accepted or rejected within the contract too).
 */
export async function fuzz<T>(opts: FuzzOptions<T>): Promise<FuzzStats> {
  if (opts.corpus.length === 0) throw new RangeError('fuzz: the corpus is empty');
  const label = opts.label ?? 'parser';
  const slowMs = opts.slowMs ?? 500;
  const isExpected = (err: unknown) =>
    (err instanceof PatchwardenError && (opts.codes === undefined || opts.codes.includes(err.code))) || (opts.expected?.(err) ?? false);
  const stats: FuzzStats = { label, seed: opts.seed, iterations: 0, passed: 0, rejected: 0, accepted: 0, elapsedMs: 0, slowestMs: 0 };
  const start = opts.now();
  const fail = (what: string, index: number, input: unknown, cause: unknown): never => {
    const where = index < 0 ? `corpus item ${-index - 1}` : `iteration ${index}`;
    throw new FuzzFailure(
      `fuzz ${label}: ${where} of seed ${opts.seed} ${what}\n  input: ${describeInput(input)}\n` +
        `  replay: PATCHWARDEN_FUZZ_SEED=${opts.seed} npx vitest run <this file> (or fuzzInput(options, ${index}) for the input alone)`,
      opts.seed,
      index,
      input,
      cause,
    );
  };
  const one = async (input: T, index: number) => {
    let reached = false;
    const t0 = opts.now();
    try {
      await opts.run(input, () => {
        reached = true;
      });
      stats.accepted++;
    } catch (err) {
      if (!isExpected(err)) fail(`threw ${errorText(err)}`, index, input, err);
      stats.rejected++;
    }
    const took = opts.now() - t0;
    stats.slowestMs = Math.max(stats.slowestMs, took);
    if (took > slowMs) fail(`took ${Math.round(took)} ms (more than ${slowMs} ms): a hang or a super-linear path`, index, input, undefined);
    if (reached) stats.passed++;
  };
  // the unmutated corpus, outside the statistics
  const before = { ...stats };
  for (let i = 0; i < opts.corpus.length; i++) await one(opts.corpus[i]!, -i - 1);
  Object.assign(stats, before);
  for (let i = 0; i < opts.iterations; i++) {
    if (i > 0 && i >= (opts.minIterations ?? 0) && opts.now() - start > opts.budgetMs) break;
    const input = fuzzInput(opts, i);
    stats.iterations++;
    await one(input, i);
  }
  stats.elapsedMs = Math.round(opts.now() - start);
  stats.slowestMs = Math.round(stats.slowestMs * 10) / 10;
  return stats;
}

/** `passed` as a share of `iterations`, in percent with one decimal. */
export function passedShare(s: FuzzStats): number {
  return s.iterations === 0 ? 0 : Math.round((s.passed / s.iterations) * 1000) / 10;
}

export function formatFuzzStats(s: FuzzStats): string {
  return `fuzz ${s.label}: seed ${s.seed}, ${s.iterations} iterations in ${s.elapsedMs} ms, ${s.passed} past the first parse (${passedShare(s)} %), ${s.accepted} accepted, ${s.rejected} rejected with a coded error, slowest ${s.slowestMs} ms`;
}

export interface FuzzSettings {
  seed: number;
  /** a multiplier of every test's iteration cap and time budget (longer local runs) */
  scale: number;
}

/**
 * The seed and scale from the environment, given as a plain record (core reads no environment
 * itself): PATCHWARDEN_FUZZ_SEED (decimal or 0x hex) replays a failure; PATCHWARDEN_FUZZ_SCALE
 * (e.g. 20) runs longer. Without them, `defaultSeed` and 1.
 */
export function fuzzSettings(env: Readonly<Record<string, string | undefined>>, defaultSeed: number): FuzzSettings {
  const raw = env.PATCHWARDEN_FUZZ_SEED?.trim();
  let seed = defaultSeed;
  if (raw) {
    const n = /^0x[0-9a-f]+$/i.test(raw) ? parseInt(raw.slice(2), 16) : /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n > 0xffffffff) throw new RangeError(`PATCHWARDEN_FUZZ_SEED must be an unsigned 32-bit integer, not ${raw}`);
    seed = n;
  }
  const scaleRaw = env.PATCHWARDEN_FUZZ_SCALE?.trim();
  const scale = scaleRaw ? Number(scaleRaw) : 1;
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`PATCHWARDEN_FUZZ_SCALE must be a positive number, not ${scaleRaw}`);
  return { seed: seed >>> 0, scale };
}
