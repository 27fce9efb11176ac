/** Small statistics helpers shared by the benchmarks. */

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index]!;
}

/** True when `pnpm bench -- --smoke` asked for tiny sizes. */
export const smoke = process.env.LOCKSTEP_BENCH_SMOKE === '1';

/** Prints the line bench/run.ts collects. */
export function report(result: unknown): void {
  console.log(`BENCH_RESULT ${JSON.stringify(result)}`);
}
