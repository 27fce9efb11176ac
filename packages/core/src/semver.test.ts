import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareVersions, isRange, parseVersion, satisfies } from './semver.js';

/** npm's own matcher, as the reference (a dev dependency of the tests only). */
const npm = createRequire(import.meta.url)('semver') as {
  satisfies(version: string, range: string): boolean;
  validRange(range: string): string | null;
};

describe('semver', () => {
  it('parses semver 2.0.0 versions and refuses others', () => {
    expect(parseVersion('1.2.3')).toEqual({ major: 1, minor: 2, patch: 3, prerelease: [] });
    expect(parseVersion('v1.0.0-rc.1+build.5')).toEqual({ major: 1, minor: 0, patch: 0, prerelease: ['rc', 1] });
    for (const bad of ['1.2', '1.2.3.4', '01.2.3', '1.2.3-', '1.2.3-01', 'x.2.3', '', ' 1 . 2 . 3', '1.2.3+']) expect(parseVersion(bad), bad).toBeUndefined();
  });

  it('orders versions by semver precedence', () => {
    const ordered = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '1.0.1',
      '1.1.0',
      '2.0.0',
    ];
    for (let i = 0; i + 1 < ordered.length; i++) {
      expect(compareVersions(parseVersion(ordered[i]!)!, parseVersion(ordered[i + 1]!)!), `${ordered[i]} < ${ordered[i + 1]}`).toBeLessThan(0);
      expect(compareVersions(parseVersion(ordered[i + 1]!)!, parseVersion(ordered[i]!)!)).toBeGreaterThan(0);
    }
    expect(compareVersions(parseVersion('1.0.0+a')!, parseVersion('1.0.0+b')!)).toBe(0);
  });

  const table: Array<[range: string, yes: string[], no: string[]]> = [
    ['1.2.3', ['1.2.3', 'v1.2.3', '1.2.3+build'], ['1.2.4', '1.2.3-rc.1']],
    ['=1.2.3', ['1.2.3'], ['1.2.2']],
    ['^1.2.3', ['1.2.3', '1.9.9', '1.99.0'], ['1.2.2', '2.0.0', '2.0.0-rc.1', '1.5.0-beta']],
    ['^0.2.3', ['0.2.3', '0.2.9'], ['0.3.0', '0.2.2', '1.0.0']],
    ['^0.0.3', ['0.0.3'], ['0.0.4', '0.0.2']],
    ['^1.x', ['1.0.0', '1.9.0'], ['2.0.0', '0.9.0']],
    ['^0.x', ['0.0.0', '0.9.9'], ['1.0.0']],
    ['^1.2.3-beta.2', ['1.2.3-beta.2', '1.2.3-beta.10', '1.2.3', '1.3.0'], ['1.2.3-beta.1', '1.3.0-beta', '2.0.0']],
    ['~1.2.3', ['1.2.3', '1.2.9'], ['1.3.0', '1.2.2']],
    ['~1.2', ['1.2.0', '1.2.9'], ['1.3.0']],
    ['~1', ['1.0.0', '1.9.9'], ['2.0.0']],
    ['>=1.2.3', ['1.2.3', '5.0.0'], ['1.2.2', '6.0.0-rc.1']],
    ['>1.2.3', ['1.2.4'], ['1.2.3']],
    ['<1.2.3', ['1.2.2', '0.0.1'], ['1.2.3', '1.2.3-rc.1']],
    ['<=1.2.3', ['1.2.3'], ['1.2.4']],
    ['>1.2', ['1.3.0'], ['1.2.9']],
    ['<=1.2', ['1.2.9'], ['1.3.0']],
    ['<1.2', ['1.1.9'], ['1.2.0']],
    ['1.x', ['1.0.0', '1.9.9'], ['2.0.0', '0.9.0']],
    ['1.2.*', ['1.2.0', '1.2.9'], ['1.3.0']],
    ['1', ['1.0.0', '1.5.0'], ['2.0.0']],
    ['*', ['0.0.0', '9.9.9'], ['1.0.0-rc.1']],
    ['', ['1.0.0'], []],
    ['>=1.0.0 <2.0.0', ['1.0.0', '1.9.9'], ['2.0.0', '0.9.9']],
    ['>= 1.0.0  < 1.5.0', ['1.4.9'], ['1.5.0']],
    ['1.2.3 - 2.3.4', ['1.2.3', '2.3.4'], ['2.3.5', '1.2.2']],
    ['1.2 - 2.3', ['1.2.0', '2.3.9'], ['2.4.0']],
    ['^1.0.0 || ^3.0.0', ['1.5.0', '3.0.0'], ['2.0.0', '4.0.0']],
    ['<1.0.0 || >=2.0.0', ['0.5.0', '2.0.0'], ['1.5.0']],
  ];

  it.each(table)('%s', (range, yes, no) => {
    for (const version of yes) expect(satisfies(version, range), `${version} in ${range}`).toBe(true);
    for (const version of no) expect(satisfies(version, range), `${version} not in ${range}`).toBe(false);
    // The same answers as npm's matcher.
    for (const version of [...yes, ...no]) expect(satisfies(version, range), `${version} / ${range} like npm`).toBe(npm.satisfies(version, range));
  });

  it('refuses what is not a range, and never matches an invalid version', () => {
    for (const bad of ['1.2.3.4', '^^1', 'latest', '>=a.b.c', '1.2.3 -', 'x'.repeat(300)]) expect(isRange(bad), bad).toBe(false);
    expect(() => satisfies('1.0.0', 'nope')).toThrow(RangeError);
    expect(satisfies('not-a-version', '*')).toBe(false);
  });

  it('agrees with npm on random versions and ranges', () => {
    const part = fc.integer({ min: 0, max: 3 });
    const pre = fc.option(fc.constantFrom('alpha', 'beta.1', 'rc.2', '0'), { nil: undefined });
    const version = fc.tuple(part, part, part, pre).map(([a, b, c, p]) => `${a}.${b}.${c}${p === undefined ? '' : `-${p}`}`);
    const x = fc.oneof(part.map(String), fc.constant('x'));
    const partial = fc.oneof(
      version,
      fc.tuple(part, x).map(([a, b]) => `${a}.${b}`),
      part.map(String),
      fc.tuple(part, part, x).map(([a, b, c]) => `${a}.${b}.${c}`),
    );
    const comparator = fc.tuple(fc.constantFrom('', '=', '^', '~', '>', '>=', '<', '<='), partial).map(([op, v]) => `${op}${v}`);
    const set = fc.oneof(
      fc.array(comparator, { minLength: 1, maxLength: 3 }).map((parts) => parts.join(' ')),
      fc.tuple(partial, partial).map(([a, b]) => `${a} - ${b}`),
    );
    const range = fc.array(set, { minLength: 1, maxLength: 2 }).map((sets) => sets.join(' || '));
    fc.assert(
      fc.property(version, range, (v, r) => {
        expect(npm.validRange(r), r).not.toBeNull();
        expect(satisfies(v, r), `${v} / ${r}`).toBe(npm.satisfies(v, r));
      }),
      { numRuns: 3_000, seed: 20 },
    );
  });
});
