import { describe, expect, it } from 'vitest';
import { scanParagraphs, type Paragraph } from './deb822.js';

const scan = (text: string, opts = {}) => {
  const out: Paragraph[] = [];
  scanParagraphs(text, ['Package', 'Version'], (p) => out.push({ ...p, values: [...p.values], lines: [...p.lines] }), opts);
  return out;
};

describe('deb822 paragraphs', () => {
  it('reads the asked fields case-insensitively, skipping others and their continuations', () => {
    const r = scan('\ufeffPackage: a\nDescription: x\n more\n .\nversion:  1.0 \n\n  \nPackage: b\r\nVersion: 2\r\n');
    expect(r.map((p) => [p.line, p.values, p.issue])).toEqual([
      [1, ['a', '1.0'], null],
      [8, ['b', '2'], null],
    ]);
    expect(r[0]!.lines).toEqual([1, 5]);
  });

  it('reports the first structural problem of a paragraph and goes on', () => {
    const [lead, cont, junk, dup, long] = scan(' x\nPackage: a\n\nPackage: b\n c\n\nPackage: c\nno colon here\n\nPackage: d\nPackage: e\n\nPackage: f\nVersion: 123456\n', { maxValue: 5 });
    expect(lead!.issue).toEqual({ kind: 'leading-continuation', line: 1 });
    expect(cont!.issue).toEqual({ kind: 'continued', line: 5, field: 0 });
    expect(junk!.issue).toEqual({ kind: 'not-a-field', line: 8, text: 'no colon here' });
    expect(dup!.issue).toEqual({ kind: 'duplicate', line: 11, field: 0 });
    expect(dup!.values[0]).toBe('d');
    expect(long!.issue).toEqual({ kind: 'too-long', line: 14, field: 1, length: 7 });
  });

  it('survives garbage and a truncated last paragraph', () => {
    expect(scan('\u0000\u0001\u0002garbage\n\u00ff: x\nPackage: trunc')).toHaveLength(1);
    expect(scan('Package: trunc')[0]!.values).toEqual(['trunc']);
    expect(scan('')).toEqual([]);
  });
});
