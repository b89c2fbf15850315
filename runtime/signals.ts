// Signals for one `serve` (or `demo`) process: SIGHUP reloads, SIGTERM/SIGINT drain and stop.
import type { Logger } from './log.ts';
import type { RunningGateway } from './supervisor.ts';

/**
 * Wires SIGHUP to reload and SIGTERM/SIGINT to a graceful stop; resolves once stopped. A
 * second SIGTERM/SIGINT during the drain gives up waiting and exits at once (status 1).
 */
export function runUntilSignalled(running: RunningGateway, logger: Logger, onStopped?: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolveStopped) => {
    let stopRequested = false;
    const onHup = () => void running.reload();
    const onStop = (signal: NodeJS.Signals) => {
      if (stopRequested) {
        logger.warn({ signal }, 'second stop signal: exiting without waiting for the drain');
        logger.flush();
        process.exit(1);
      }
      stopRequested = true;
      void running
        .stop(signal)
        .then(() => onStopped?.())
        .finally(() => {
          process.off('SIGHUP', onHup);
          process.off('SIGTERM', onStop);
          process.off('SIGINT', onStop);
          resolveStopped();
        });
    };
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
  });
}
