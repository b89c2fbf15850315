// The rule every reload follows (bundle file, bundle URL, the demo's recompile): never two
// runs at once; asking during a run means exactly one more run after it, whose end is what
// the asker waits for.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { oneAtATime } from '../runtime/one-at-a-time.ts';

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describe('oneAtATime', () => {
  it('runs never overlap; requests during a run make one more run, not one each', async () => {
    let active = 0;
    let runs = 0;
    const gates = [gate(), gate()];
    const task = oneAtATime(async () => {
      active++;
      assert.equal(active, 1, 'two runs at once');
      await gates[runs++]?.opened;
      active--;
    });
    const first = task.run();
    const second = task.run();
    const third = task.run();
    assert.equal(runs, 1);
    gates[0].open();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(runs, 2, 'the requests during the first run made one more run');
    let secondDone = false;
    void second.then(() => (secondDone = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(secondDone, false, 'a request made during a run waits for the run after it');
    gates[1].open();
    await Promise.all([first, second, third]);
    assert.equal(runs, 2);
    await task.idle();
    await task.run();
    assert.equal(runs, 3, 'idle again: the next request runs at once');
  });

  it('a failing run rejects its waiters and does not wedge the next request', async () => {
    let fail = true;
    let runs = 0;
    const task = oneAtATime(async () => {
      runs++;
      if (fail) throw new Error('boom');
    });
    await assert.rejects(task.run(), /boom/);
    fail = false;
    await task.run();
    assert.equal(runs, 2);
  });
});
