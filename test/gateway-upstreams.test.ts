// Upstream pools outlive snapshots: a reload keeps warm connections to origins it still uses,
// and retires (closes) the pool of an origin no snapshot has named for a while.
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { markOriginsInUse, upstreamFor } from '../runtime/upstreams.ts';

describe('upstream pools', () => {
  it('one Upstream per origin, shared across snapshots; an unused origin is retired after its grace period', () => {
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    try {
      const kept = upstreamFor('http://127.0.0.1:1');
      const dropped = upstreamFor('http://127.0.0.1:2');
      assert.equal(upstreamFor('http://127.0.0.1:1'), kept, 'same origin, same pools');
      const keptPool = kept.dispatcher();
      const droppedPool = dropped.dispatcher();
      markOriginsInUse(new Set(['http://127.0.0.1:1', 'http://127.0.0.1:2']));
      markOriginsInUse(new Set(['http://127.0.0.1:1'])); // a reload without origin 2
      mock.timers.tick(30_000);
      assert.equal(droppedPool.closed, false, 'still within the grace period');
      mock.timers.tick(60_000);
      assert.equal(droppedPool.closed, true, 'retired');
      assert.equal(keptPool.closed, false);
      assert.notEqual(upstreamFor('http://127.0.0.1:2'), dropped, 'a later snapshot gets a fresh upstream');
      assert.notEqual(dropped.dispatcher(), droppedPool, 'an old snapshot still holding it reopens a pool');
    } finally {
      mock.timers.reset();
    }
  });
});
