/**
 * Evaluates rules to true | false | unknown. The fast form returns the result and the facts it
 * lacked; the traced form also says which leaves decided it, with the values compared (for
 * `explain`). Both share one leaf evaluator, so they cannot disagree.
 */
import { VERSION_SCHEMES } from '../version/index.js';
import type { EvalFacts, InstalledPackage } from './facts.js';
import { MANAGER_SCHEME, type Comparison, type FileTest, type OsMatch, type PackageTest, type RegistryTest, type Rule } from './schema.js';

export type Tri = 'true' | 'false' | 'unknown';

export interface TraceNode {
  rule: string;
  result: Tri;
  detail?: string;
  children?: TraceNode[];
}

export interface Evaluation {
  result: Tri;
  /** Fact keys the device has not reported (`packages:dpkg`, `file:/etc/x`, `registry:…`, `hotfixes`, `os`). */
  missing: string[];
}

const SYMBOL: Record<Comparison, string> = { lt: '<', le: '<=', eq: '=', ne: '!=', ge: '>=', gt: '>' };

function holds(c: number, op: Comparison): boolean {
  switch (op) {
    case 'lt': return c < 0;
    case 'le': return c <= 0;
    case 'eq': return c === 0;
    case 'ne': return c !== 0;
    case 'ge': return c >= 0;
    case 'gt': return c > 0;
  }
}

function onlyComparison(test: Partial<Record<Comparison, string>>): [Comparison, string] {
  return Object.entries(test)[0] as [Comparison, string];
}

interface Leaf {
  result: Tri;
  missing?: string;
  detail: string;
}

function osLeaf(m: OsMatch, f: EvalFacts): Leaf {
  const os = f.os;
  if (!os) return { result: 'unknown', missing: 'os', detail: 'the device has not reported its OS' };
  const have: Record<string, string | undefined> = {
    family: os.family,
    distribution: os.distribution,
    version: os.version,
    codename: os.versionCodename,
  };
  for (const k of ['family', 'distribution', 'version', 'codename'] as const) {
    const want = m[k];
    if (want !== undefined && have[k] !== want) return { result: 'false', detail: `${k} is ${have[k] ?? '(none)'}, not ${want}` };
  }
  if (m.arch) {
    const arch = os.packageArch ?? os.machine;
    if (!m.arch.includes(arch) && !m.arch.includes(os.machine)) return { result: 'false', detail: `architecture ${arch} is not one of ${m.arch.join(', ')}` };
  }
  return { result: 'true', detail: 'matches' };
}

function describeInstance(p: InstalledPackage, bySource: boolean): string {
  return bySource ? `${p.name} ${p.version} (${p.arch}, source ${p.source ?? p.name} ${p.sourceVersion ?? p.version})` : `${p.name} ${p.version} (${p.arch})`;
}

function packageLeaf(t: PackageTest, f: EvalFacts): Leaf {
  if (!f.managers.has(t.manager)) return { result: 'unknown', missing: `packages:${t.manager}`, detail: `no ${t.manager} inventory from this device` };
  const bySource = t.match === 'source';
  const all = (bySource ? f.sources : f.packages).get(`${t.manager}\t${t.name}`) ?? [];
  const found = t.arch === undefined ? all : all.filter((p) => p.arch === t.arch);
  const what = `${bySource ? 'source ' : ''}${t.name}${t.arch ? `:${t.arch}` : ''}`;
  if (t.installed) return found.length ? { result: 'true', detail: `installed: ${found.map((p) => describeInstance(p, bySource)).join(', ')}` } : { result: 'false', detail: `${what} is not installed` };
  if (t.absent) return found.length ? { result: 'false', detail: `installed: ${found.map((p) => describeInstance(p, bySource)).join(', ')}` } : { result: 'true', detail: `${what} is not installed` };
  const [op, want] = onlyComparison(t.version!);
  if (found.length === 0) return { result: 'false', detail: `${what} is not installed` };
  const scheme = VERSION_SCHEMES[t.scheme ?? MANAGER_SCHEME[t.manager]]!;
  // any installed instance (multi-arch) that satisfies the comparison makes the leaf true
  for (const p of found) {
    const have = bySource ? (p.sourceVersion ?? p.version) : p.version;
    // inventories are checked at ingest against their manager's scheme; a rule may name another
    if (t.scheme !== undefined && scheme.invalidReason(have) !== null) continue;
    if (holds(scheme.compare(have, want), op)) return { result: 'true', detail: `${describeInstance(p, bySource)} ${SYMBOL[op]} ${want}` };
  }
  return { result: 'false', detail: `${found.map((p) => describeInstance(p, bySource)).join(', ')} not ${SYMBOL[op]} ${want}` };
}

function fileLeaf(t: FileTest, f: EvalFacts): Leaf {
  const fact = f.files.get(t.path);
  if (!fact) return { result: 'unknown', missing: `file:${t.path}`, detail: `${t.path} not reported` };
  if (t.exists !== undefined) return { result: fact.exists === t.exists ? 'true' : 'false', detail: `${t.path} ${fact.exists ? 'exists' : 'does not exist'}` };
  if (!fact.exists) return { result: 'false', detail: `${t.path} does not exist` };
  if (t.sha256 !== undefined) {
    if (!fact.sha256) return { result: 'unknown', missing: `file:${t.path}#sha256`, detail: `sha256 of ${t.path} not reported` };
    return { result: fact.sha256 === t.sha256 ? 'true' : 'false', detail: `sha256 ${fact.sha256.slice(0, 12)}… ${fact.sha256 === t.sha256 ? '=' : '!='} ${t.sha256.slice(0, 12)}…` };
  }
  if (t.mtime !== undefined) {
    if (!fact.mtime) return { result: 'unknown', missing: `file:${t.path}#mtime`, detail: `mtime of ${t.path} not reported` };
    const [op, want] = onlyComparison(t.mtime);
    const c = Math.sign(Date.parse(fact.mtime) - Date.parse(want));
    return { result: holds(c, op) ? 'true' : 'false', detail: `mtime ${fact.mtime} ${holds(c, op) ? '' : 'not '}${SYMBOL[op]} ${want}` };
  }
  const field = t.field === 'product' ? 'productVersion' : 'fileVersion';
  const have = fact[field];
  if (!have) return { result: 'unknown', missing: `file:${t.path}#${field}`, detail: `${field} of ${t.path} not reported` };
  const [op, want] = onlyComparison(t.version!);
  const scheme = VERSION_SCHEMES[t.scheme ?? 'windows']!;
  // a device reports what it finds; a value outside the scheme is an answer, not an error
  if (scheme.invalidReason(have) !== null) return { result: 'false', detail: `${t.path} ${field} ${have} is not a ${scheme.name} version` };
  const ok = holds(scheme.compare(have, want), op);
  return { result: ok ? 'true' : 'false', detail: `${t.path} ${field} ${have} ${ok ? '' : 'not '}${SYMBOL[op]} ${want}` };
}

function registryLeaf(t: RegistryTest, f: EvalFacts): Leaf {
  const id = `${t.key}\\${t.value ?? ''}`;
  const fact = f.registry.get(id);
  if (!fact) return { result: 'unknown', missing: `registry:${id}`, detail: `${id} not reported` };
  if (t.exists !== undefined) return { result: fact.exists === t.exists ? 'true' : 'false', detail: `${id} ${fact.exists ? 'exists' : 'does not exist'}` };
  if (!fact.exists || fact.data === undefined) return { result: 'false', detail: `${id} does not exist` };
  if (t.equals !== undefined) return { result: fact.data === t.equals ? 'true' : 'false', detail: `${id} = ${JSON.stringify(fact.data)}` };
  const [op, want] = onlyComparison(t.version!);
  const scheme = VERSION_SCHEMES[t.scheme ?? 'windows']!;
  if (scheme.invalidReason(fact.data) !== null) return { result: 'false', detail: `${id} = ${JSON.stringify(fact.data)} is not a ${scheme.name} version` };
  const ok = holds(scheme.compare(fact.data, want), op);
  return { result: ok ? 'true' : 'false', detail: `${id} ${fact.data} ${ok ? '' : 'not '}${SYMBOL[op]} ${want}` };
}

function leaf(rule: Rule, f: EvalFacts): Leaf {
  if ('os' in rule) return osLeaf(rule.os, f);
  if ('package' in rule) return packageLeaf(rule.package, f);
  if ('file' in rule) return fileLeaf(rule.file, f);
  if ('registry' in rule) return registryLeaf(rule.registry, f);
  if ('hotfix' in rule) {
    if (!f.hotfixes) return { result: 'unknown', missing: 'hotfixes', detail: 'installed hotfixes not reported' };
    const has = f.hotfixes.has(rule.hotfix);
    return { result: has ? 'true' : 'false', detail: `${rule.hotfix} ${has ? 'installed' : 'not installed'}` };
  }
  throw new Error('not a leaf');
}

/** A short, readable form of a rule for traces. */
export function describeRule(rule: Rule): string {
  if ('all' in rule) return `all of ${rule.all.length}`;
  if ('any' in rule) return `any of ${rule.any.length}`;
  if ('not' in rule) return 'not';
  if ('os' in rule) return `os ${Object.entries(rule.os).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('|') : v}`).join(' ')}`;
  if ('package' in rule) {
    const t = rule.package;
    const what = `${t.manager} ${t.match === 'source' ? 'source ' : ''}${t.name}${t.arch ? `:${t.arch}` : ''}`;
    if (t.installed) return `${what} installed`;
    if (t.absent) return `${what} absent`;
    const [op, v] = onlyComparison(t.version!);
    return `${what} ${SYMBOL[op]} ${v}`;
  }
  if ('file' in rule) return `file ${rule.file.path}`;
  if ('registry' in rule) return `registry ${rule.registry.key}\\${rule.registry.value ?? ''}`;
  return `hotfix ${rule.hotfix}`;
}

function combine(kind: 'all' | 'any', results: Tri[]): Tri {
  const decisive = kind === 'all' ? 'false' : 'true';
  if (results.includes(decisive)) return decisive;
  if (results.includes('unknown')) return 'unknown';
  return kind === 'all' ? 'true' : 'false';
}

function evalInto(rule: Rule, f: EvalFacts, missing: string[]): Tri {
  if ('all' in rule || 'any' in rule) {
    const kind = 'all' in rule ? 'all' : 'any';
    const items = 'all' in rule ? rule.all : rule.any;
    const decisive = kind === 'all' ? 'false' : 'true';
    let sawUnknown = false;
    const local: string[] = [];
    for (const r of items) {
      const v = evalInto(r, f, local);
      // a decisive child decides; the facts other children lacked do not matter then
      if (v === decisive) return v;
      if (v === 'unknown') sawUnknown = true;
    }
    if (sawUnknown) {
      missing.push(...local);
      return 'unknown';
    }
    return kind === 'all' ? 'true' : 'false';
  }
  if ('not' in rule) {
    const v = evalInto(rule.not, f, missing);
    return v === 'unknown' ? v : v === 'true' ? 'false' : 'true';
  }
  const l = leaf(rule, f);
  if (l.missing) missing.push(l.missing);
  return l.result;
}

export function evaluateRule(rule: Rule, facts: EvalFacts): Evaluation {
  const missing: string[] = [];
  const result = evalInto(rule, facts, missing);
  return { result, missing: result === 'unknown' ? [...new Set(missing)] : [] };
}

export function traceRule(rule: Rule, f: EvalFacts): TraceNode {
  if ('all' in rule || 'any' in rule) {
    const kind = 'all' in rule ? 'all' : 'any';
    const children = ('all' in rule ? rule.all : rule.any).map((r) => traceRule(r, f));
    return { rule: describeRule(rule), result: combine(kind, children.map((c) => c.result)), children };
  }
  if ('not' in rule) {
    const child = traceRule(rule.not, f);
    const result: Tri = child.result === 'unknown' ? 'unknown' : child.result === 'true' ? 'false' : 'true';
    return { rule: 'not', result, children: [child] };
  }
  const l = leaf(rule, f);
  return { rule: describeRule(rule), result: l.result, detail: l.detail };
}

/** The fact keys a rule reads, for the index that decides what to re-evaluate on a change. */
export function ruleFactKeys(rule: Rule, out: Set<string> = new Set()): Set<string> {
  if ('all' in rule) for (const r of rule.all) ruleFactKeys(r, out);
  else if ('any' in rule) for (const r of rule.any) ruleFactKeys(r, out);
  else if ('not' in rule) ruleFactKeys(rule.not, out);
  else if ('package' in rule) out.add(`${rule.package.match === 'source' ? 'source' : 'package'}:${rule.package.manager}:${rule.package.name}`);
  else if ('file' in rule) out.add(`file:${rule.file.path}`);
  else if ('registry' in rule) out.add(`registry:${rule.registry.key}\\${rule.registry.value ?? ''}`);
  else if ('hotfix' in rule) out.add('hotfixes');
  else if ('os' in rule) out.add('os');
  return out;
}
