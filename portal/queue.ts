// One submission at a time: each task starts when the previous one has settled, so two
// requests never interleave their write-compile-rollback steps on the config directory.
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    // The chain continues whether this task succeeds or fails; its caller sees the outcome.
    this.tail = result.catch(() => undefined);
    return result;
  }
}
