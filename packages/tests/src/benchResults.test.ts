import { describe, expect, it } from 'vitest';
import { mergeResults, renderMarkdown, type Machine, type RecordedResult } from '../../../bench/results.js';

/** `pnpm bench -- <name>` keeps the other scenarios' figures (bench/results.ts). */

const machine = (overrides: Partial<Machine> = {}): Machine => ({
  cores: 2,
  cpu: 'AMD EPYC',
  node: 'v20.20.2',
  pinned: true,
  smoke: false,
  date: '2026-11-21T10:00:00.000Z',
  ...overrides,
});

const result = (file: string, value: number, measuredAt = '2026-11-21T10:00:00.000Z'): RecordedResult => ({
  scenario: file.replace('.bench.ts', ''),
  description: `${file} scenario`,
  units: { rate: 'events/s' },
  rows: [{ subject: 'lockstep', metrics: { rate: value } }],
  ratios: { 'lockstep / raw': value / 100 },
  file,
  measuredAt,
});

const earlier = { machine: machine(), results: [result('fanout.bench.ts', 1), result('throughput.bench.ts', 2), result('ws.bench.ts', 3)] };

describe('bench results: a run of some scenarios keeps the others', () => {
  it('replaces the scenarios that ran, in place, and keeps the others as they were', () => {
    const now = result('throughput.bench.ts', 20, '2026-11-21T12:00:00.000Z');
    const { file, why } = mergeResults(earlier, { machine: machine({ date: 'later' }), attempted: ['throughput.bench.ts'], results: [now] });
    expect(why).toBeUndefined();
    expect(file.machine.date).toBe('later');
    expect(file.results).toEqual([earlier.results[0], now, earlier.results[2]]);
  });

  it('drops a scenario that was attempted and failed, rather than keep its old figures', () => {
    const { file } = mergeResults(earlier, { machine: machine(), attempted: ['throughput.bench.ts', 'ws.bench.ts'], results: [result('ws.bench.ts', 30)] });
    expect(file.results.map((r) => [r.file, r.rows[0]!.metrics['rate']])).toEqual([
      ['fanout.bench.ts', 1],
      ['ws.bench.ts', 30],
    ]);
  });

  it('adds a scenario the earlier file did not have at the end', () => {
    const { file } = mergeResults(earlier, { machine: machine(), attempted: ['stores.bench.ts'], results: [result('stores.bench.ts', 4)] });
    expect(file.results.map((r) => r.file)).toEqual(['fanout.bench.ts', 'throughput.bench.ts', 'ws.bench.ts', 'stores.bench.ts']);
  });

  it.each([
    ['another mode (smoke)', machine({ smoke: true })],
    ['another Node', machine({ node: 'v22.0.0' })],
    ['another machine', machine({ cores: 8 })],
  ])('keeps nothing from a run on %s, and says why', (_, now) => {
    const { file, why } = mergeResults(earlier, { machine: now, attempted: ['ws.bench.ts'], results: [result('ws.bench.ts', 30)] });
    expect(file.results.map((r) => r.file)).toEqual(['ws.bench.ts']);
    expect(why).toMatch(/another machine, Node or mode/);
  });

  it.each([
    ['not an object', 'garbage'],
    [
      'a results file of the old format (no file, no measuredAt)',
      { machine: machine(), results: [{ ...result('ws.bench.ts', 3), file: undefined, measuredAt: undefined }] },
    ],
    ['unreadable JSON', { unreadable: 'Unexpected token' }],
  ])('keeps nothing from a previous file that is %s, and says why', (_, previous) => {
    const { file, why } = mergeResults(previous, { machine: machine(), attempted: ['throughput.bench.ts'], results: [result('throughput.bench.ts', 20)] });
    expect(file.results.map((r) => r.file)).toEqual(['throughput.bench.ts']);
    expect(why).toMatch(/not a results file/);
  });

  it('writes when each scenario was measured, and n/a for a ratio that could not be taken', () => {
    const odd = { ...result('ws.bench.ts', 3, '2026-11-20T09:00:00.000Z'), ratios: { 'lockstep / raw': null } };
    const markdown = renderMarkdown({ machine: machine(), results: [odd] });
    expect(markdown).toContain('Measured 2026-11-20T09:00:00.000Z (`bench/ws.bench.ts`).');
    expect(markdown).toContain('- lockstep / raw: **n/a**');
    expect(markdown).toContain('| lockstep | 3.00 |');
  });
});
