// The longest event-loop block while something runs: a 1 ms timer's worst lateness (it sees a
// block once the loop is free again) and perf_hooks' event-loop delay max.
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoopWatch {
  /** Starts over (the worst lateness from now on). */
  reset(): void;
  /** The worst lateness so far (ms), after letting the timers run. */
  worst(): Promise<number>;
  /** Stops watching: the worst lateness and perf_hooks' max (ms). */
  stop(): Promise<{ worst: number; perfMax: number }>;
}

export function watchLoop(): LoopWatch {
  let worst = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 1);
    last = now;
  }, 1);
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const settle = () => new Promise((r) => setTimeout(r, 50));
  return {
    reset() {
      worst = 0;
      last = performance.now();
    },
    async worst() {
      await settle();
      return worst;
    },
    async stop() {
      await settle();
      delay.disable();
      clearInterval(ticker);
      return { worst, perfMax: delay.max / 1e6 };
    },
  };
}
