/**
 * A small semantic-versioning matcher (semver 2.0.0 versions, npm's range syntax), enough to check an
 * application's or a service's version at `hello` without a dependency. Ranges: exact versions
 * (`1.2.3`, `=1.2.3`, `v1.2.3`), comparators (`>`, `>=`, `<`, `<=`), caret (`^1.2.3`), tilde
 * (`~1.2.3`), x-ranges (`1.x`, `1.2.*`, `1`, `*`), hyphen ranges (`1.2.3 - 2.0.0`), comparators joined
 * by spaces (all must hold) and sets joined by `||` (one must hold). As in npm, a prerelease version
 * (`2.0.0-rc.1`) satisfies a range only when one of the comparators of the matching set names a
 * prerelease of the same `major.minor.patch`. Build metadata (`+build`) is ignored.
 */

export const SEMVER_PATTERN =
  /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

/** A parsed version: `major.minor.patch`, and the prerelease identifiers (numbers where numeric). */
export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  prerelease: Array<string | number>;
}

/** Parses a semver 2.0.0 version (a leading `v` is allowed); undefined when it is not one. */
export function parseVersion(version: string): SemVer | undefined {
  const match = SEMVER_PATTERN.exec(version.trim());
  if (!match) return undefined;
  const [major, minor, patch] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (!Number.isSafeInteger(major) || !Number.isSafeInteger(minor) || !Number.isSafeInteger(patch)) return undefined;
  const prerelease = match[4] === undefined ? [] : match[4].split('.').map((part) => (/^\d+$/.test(part) ? Number(part) : part));
  return { major, minor, patch, prerelease };
}

/** True when `version` is a valid semver 2.0.0 version. */
export function isVersion(version: string): boolean {
  return parseVersion(version) !== undefined;
}

/** Negative, zero or positive as `a` is lower than, equal to or higher than `b` (semver precedence). */
export function compareVersions(a: SemVer, b: SemVer): number {
  if (a.major !== b.major) return a.major - b.major;
  if (a.minor !== b.minor) return a.minor - b.minor;
  if (a.patch !== b.patch) return a.patch - b.patch;
  // A version without prerelease is higher than any of its prereleases.
  if (a.prerelease.length === 0 || b.prerelease.length === 0) return b.prerelease.length - a.prerelease.length;
  for (let i = 0; i < Math.max(a.prerelease.length, b.prerelease.length); i++) {
    const x = a.prerelease[i];
    const y = b.prerelease[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    // Numeric identifiers are lower than alphanumeric ones.
    if (typeof x === 'number') return -1;
    if (typeof y === 'number') return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

type Operator = '<' | '<=' | '>' | '>=' | '=';
interface Comparator {
  operator: Operator;
  version: SemVer;
}
/** A set of comparators that must all hold; an empty set matches every release. */
type ComparatorSet = Comparator[];

/** A version with x's in it: undefined parts are wildcards (`1.x` → minor and patch undefined). */
interface Partial {
  major: number | undefined;
  minor: number | undefined;
  patch: number | undefined;
  prerelease: Array<string | number>;
}

const PARTIAL_PATTERN =
  /^v?(0|[1-9]\d*|[xX*])(?:\.(0|[1-9]\d*|[xX*])(?:\.(0|[1-9]\d*|[xX*])(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?$/;

function parsePartial(text: string): Partial {
  const match = PARTIAL_PATTERN.exec(text);
  if (!match) throw new RangeError(`invalid version in range: ${JSON.stringify(text)}`);
  const part = (value: string | undefined) => (value === undefined || /^[xX*]$/.test(value) ? undefined : Number(value));
  const major = part(match[1]);
  const minor = major === undefined ? undefined : part(match[2]);
  const patch = minor === undefined ? undefined : part(match[3]);
  const prerelease = patch !== undefined && match[4] !== undefined ? (parseVersion(`0.0.0-${match[4]}`)?.prerelease ?? []) : [];
  return { major, minor, patch, prerelease };
}

const version = (major: number, minor: number, patch: number, prerelease: Array<string | number> = []): SemVer => ({ major, minor, patch, prerelease });
/** The lowest version of a major, minor or patch: `<2.0.0-0` excludes 2.0.0's prereleases too. */
const floor = (major: number, minor: number, patch: number): SemVer => version(major, minor, patch, [0]);
const exactOf = (p: Partial): SemVer => version(p.major ?? 0, p.minor ?? 0, p.patch ?? 0, p.prerelease);

/** The comparators one range token stands for (`^1.2`, `>=1.x`, `1.2.3`, `*`). */
function desugar(token: string): Comparator[] {
  const match = /^(\^|~>?|>=|<=|>|<|=)?\s*(.*)$/.exec(token)!;
  const operator = match[1] ?? '';
  const p = parsePartial(match[2]!);
  const { major, minor, patch } = p;
  if (operator === '^') {
    if (major === undefined) return [];
    const low = exactOf(p);
    if (major > 0 || minor === undefined)
      return [
        { operator: '>=', version: low },
        { operator: '<', version: floor(major + 1, 0, 0) },
      ];
    if (minor > 0 || patch === undefined)
      return [
        { operator: '>=', version: low },
        { operator: '<', version: floor(0, minor + 1, 0) },
      ];
    return [
      { operator: '>=', version: low },
      { operator: '<', version: floor(0, 0, patch + 1) },
    ];
  }
  if (operator === '~' || operator === '~>') {
    if (major === undefined) return [];
    const low = exactOf(p);
    if (minor === undefined)
      return [
        { operator: '>=', version: low },
        { operator: '<', version: floor(major + 1, 0, 0) },
      ];
    return [
      { operator: '>=', version: low },
      { operator: '<', version: floor(major, minor + 1, 0) },
    ];
  }
  if (major === undefined) {
    // `*`, `>=*`: every release; `<*`, `>*`: nothing.
    return operator === '<' || operator === '>' ? [{ operator: '<', version: floor(0, 0, 0) }] : [];
  }
  const wildcard = minor === undefined || patch === undefined;
  switch (operator) {
    case '':
    case '=':
      if (!wildcard) return [{ operator: '=', version: exactOf(p) }];
      return minor === undefined
        ? [
            { operator: '>=', version: version(major, 0, 0) },
            { operator: '<', version: floor(major + 1, 0, 0) },
          ]
        : [
            { operator: '>=', version: version(major, minor, 0) },
            { operator: '<', version: floor(major, minor + 1, 0) },
          ];
    case '>=':
      return [{ operator: '>=', version: exactOf(p) }];
    case '<':
      return [{ operator: '<', version: wildcard ? floor(major, minor ?? 0, 0) : exactOf(p) }];
    case '>':
      if (!wildcard) return [{ operator: '>', version: exactOf(p) }];
      return [{ operator: '>=', version: minor === undefined ? version(major + 1, 0, 0) : version(major, minor + 1, 0) }];
    case '<=':
      if (!wildcard) return [{ operator: '<=', version: exactOf(p) }];
      return [{ operator: '<', version: minor === undefined ? floor(major + 1, 0, 0) : floor(major, minor + 1, 0) }];
  }
  throw new RangeError(`invalid range token ${JSON.stringify(token)}`);
}

/** `a - b`: from `a` (x's as zeros) up to and including `b` (x's as "anything in it"). */
function hyphen(low: string, high: string): Comparator[] {
  const from = parsePartial(low);
  const to = parsePartial(high);
  const comparators: Comparator[] = from.major === undefined ? [] : [{ operator: '>=', version: exactOf(from) }];
  if (to.major === undefined) return comparators;
  if (to.minor === undefined) comparators.push({ operator: '<', version: floor(to.major + 1, 0, 0) });
  else if (to.patch === undefined) comparators.push({ operator: '<', version: floor(to.major, to.minor + 1, 0) });
  else comparators.push({ operator: '<=', version: exactOf(to) });
  return comparators;
}

function parseSet(text: string): ComparatorSet {
  const trimmed = text.trim();
  const range = /^(\S+)\s+-\s+(\S+)$/.exec(trimmed);
  if (range) return hyphen(range[1]!, range[2]!);
  if (trimmed === '') return [];
  // An operator may be separated from its version by spaces (`>= 1.2.3`).
  const tokens = trimmed.replace(/(\^|~>?|>=|<=|>|<|=)\s+/g, '$1').split(/\s+/);
  return tokens.flatMap(desugar);
}

const cache = new Map<string, ComparatorSet[]>();

/** Parses a range; throws a RangeError when it is not one. Parsed ranges are kept (there are few). */
export function parseRange(range: string): ComparatorSet[] {
  let sets = cache.get(range);
  if (sets) return sets;
  if (range.length > 256) throw new RangeError('ranges are at most 256 characters');
  sets = range.split('||').map(parseSet);
  if (cache.size < 256) cache.set(range, sets);
  return sets;
}

/** True when `range` is a range this matcher understands. */
export function isRange(range: string): boolean {
  try {
    parseRange(range);
    return true;
  } catch {
    return false;
  }
}

function holds({ operator, version: bound }: Comparator, v: SemVer): boolean {
  const order = compareVersions(v, bound);
  switch (operator) {
    case '<':
      return order < 0;
    case '<=':
      return order <= 0;
    case '>':
      return order > 0;
    case '>=':
      return order >= 0;
    case '=':
      return order === 0;
  }
}

function setHolds(set: ComparatorSet, v: SemVer): boolean {
  for (const comparator of set) if (!holds(comparator, v)) return false;
  if (v.prerelease.length === 0) return true;
  // A prerelease only matches a set that names a prerelease of the same major.minor.patch.
  return set.some(({ version: bound }) => bound.prerelease.length > 0 && bound.major === v.major && bound.minor === v.minor && bound.patch === v.patch);
}

/** True when `version` satisfies `range`. An invalid version satisfies nothing; an invalid range throws. */
export function satisfies(version: string, range: string): boolean {
  const v = parseVersion(version);
  if (!v) return false;
  return parseRange(range).some((set) => setHolds(set, v));
}
