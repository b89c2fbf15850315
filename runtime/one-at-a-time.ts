// "Run one at a time, and run again if it changed meanwhile": the rule for reloading a bundle
// file, polling a bundle URL and recompiling the demo's config. Runs never overlap (two
// reloads racing could leave the older bundle serving); a request during a run does not start
// a second one, it asks for one more run after the current one, and any number of such
// requests make one more run, not many. The last change is always covered by a run that
// started after it.

interface OneAtATime {
  /** Runs the task now, or once more after the running one; resolves when that run is done. */
  run(): Promise<void>;
  /** Resolves when no run is going on. */
  idle(): Promise<void>;
}

export function oneAtATime(task: () => Promise<void>): OneAtATime {
  let running: Promise<void> | null = null;
  let again = false;
  const loop = async (): Promise<void> => {
    try {
      do {
        again = false;
        await task();
      } while (again);
    } finally {
      running = null;
    }
  };
  return {
    run() {
      if (running !== null) {
        again = true;
        return running;
      }
      running = loop();
      return running;
    },
    idle: () => running ?? Promise.resolve(),
  };
}
