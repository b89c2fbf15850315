// One submission at a time: each task starts when the previous one has settled, so two
// requests never interleave their write-compile-rollback steps on the config directory.
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /**
   * Runs `task` after every task queued before it. With `deadline`: aborted before its turn,
   * the returned promise rejects at once with the signal's reason, and the task never runs
   * (aborted once it has started, nothing changes: it is answered as usual).
   */
  run<T>(task: () => Promise<T>, deadline?: AbortSignal): Promise<T> {
    let started = false;
    const turn = () => {
      if (deadline?.aborted) return Promise.reject(deadline.reason as Error);
      started = true;
      return task();
    };
    const result = this.tail.then(turn, turn);
    // The chain continues whether this task succeeds or fails; its caller sees the outcome.
    this.tail = result.catch(() => undefined);
    if (deadline === undefined) return result;
    return new Promise<T>((resolve, reject) => {
      const expired = () => {
        if (!started) reject(deadline.reason as Error);
      };
      deadline.addEventListener('abort', expired, { once: true });
      result.then(resolve, reject).finally(() => deadline.removeEventListener('abort', expired));
    });
  }
}
