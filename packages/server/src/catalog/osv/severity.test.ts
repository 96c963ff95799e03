import { describe, expect, it } from 'vitest';
import { cvss2BaseScore, cvss3BaseScore, maxSeverity, osvSeverity, ratingOf, wordSeverity } from './severity.js';

describe('CVSS base scores', () => {
  // scores as NVD publishes them for these vectors
  it.each([
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L', 5.3],
    ['CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H', 7.8],
    ['CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N', 5.5],
    ['CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:N', 5.9],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N', 6.1],
    ['CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', 10],
    ['CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H', 9.9],
    ['CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N', 1.6],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N', 0],
  ])('v3 %s → %d', (vector, score) => {
    expect(cvss3BaseScore(vector)).toBe(score);
  });

  it.each([
    ['AV:N/AC:L/Au:N/C:P/I:P/A:P', 7.5],
    ['AV:N/AC:L/Au:N/C:C/I:C/A:C', 10],
    ['AV:N/AC:M/Au:N/C:N/I:P/A:N', 4.3],
    ['(AV:L/AC:L/Au:N/C:P/I:N/A:N)', 2.1],
  ])('v2 %s → %d', (vector, score) => {
    expect(cvss2BaseScore(vector)).toBe(score);
  });

  it('refuses what is not a complete vector of its version', () => {
    for (const v of ['', 'CVSS:3.1/AV:N', 'CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:Q/C:H/I:H/A:H', 'CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 'AV:N/AC:L/Au:N/C:P/I:P/A:P']) {
      expect(cvss3BaseScore(v), v).toBeNull();
    }
    expect(cvss2BaseScore('AV:N/AC:L/Au:N/C:P/I:P')).toBeNull();
    expect(cvss2BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H')).toBeNull();
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/constructor:x')).toBe(9.8);
    expect(cvss3BaseScore('CVSS:3.1/AV:__proto__/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H')).toBeNull();
  });
});

describe('severities', () => {
  it('rates scores with the CVSS bands', () => {
    expect([0, 0.1, 3.9, 4, 6.9, 7, 8.9, 9, 10].map((s) => ratingOf(s, 3))).toEqual(['none', 'low', 'low', 'medium', 'medium', 'high', 'high', 'critical', 'critical']);
    expect(ratingOf(10, 2)).toBe('high');
  });

  it('takes the OSV severity types it can score, and no other', () => {
    expect(osvSeverity({ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' })).toBe('critical');
    expect(osvSeverity({ type: 'CVSS_V2', score: 'AV:N/AC:L/Au:N/C:P/I:P/A:P' })).toBe('high');
    expect(osvSeverity({ type: 'Ubuntu', score: 'medium' })).toBe('medium');
    expect(osvSeverity({ type: 'CVSS_V4', score: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N' })).toBeNull();
    expect(osvSeverity({ type: 'CVSS_V3', score: 'high' })).toBeNull();
  });

  it("maps the words of feeds, Debian's urgencies among them", () => {
    expect(['CRITICAL', 'HIGH', 'MODERATE', 'LOW', 'high', 'medium**', 'low*', 'unimportant', 'not yet assigned', 'end-of-life', 'bogus'].map(wordSeverity)).toEqual([
      'critical',
      'high',
      'medium',
      'low',
      'high',
      'medium',
      'low',
      'none',
      null,
      null,
      null,
    ]);
    expect(maxSeverity('medium', 'high')).toBe('high');
    expect(maxSeverity('critical', 'none')).toBe('critical');
  });
});
