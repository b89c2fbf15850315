// Micro-benchmark timing: the best of 5 rounds, so a round disturbed by GC or another process
// does not count against the code measured.

/** Nanoseconds per call of `run`: the fastest of 5 rounds of `n` calls. */
export function bestNsPerCall(run: () => void, n = 1_000_000): number {
  let min = Infinity;
  for (let round = 0; round < 5; round++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) run();
    min = Math.min(min, Number(process.hrtime.bigint() - t) / n);
  }
  return min;
}
