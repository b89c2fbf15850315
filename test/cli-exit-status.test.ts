// Exit status is documented where users look for it: every command's help (`mtlsgate help
// COMMAND`, the generated docs/cli.md) has an "Exit status:" line, and it names only the codes
// of docs/cli-conventions.md (0 ok, 1 the thing checked has problems, 2 usage or I/O).
// Before session 16, who, keygen, certs, token, demo, completion, help and version had none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureBuilt, mtlsgate } from './helpers/cli.ts';

test('every command documents its exit status in its help, with the codes 0, 1 and 2 only', () => {
  ensureBuilt();
  const list = mtlsgate(['help']);
  assert.equal(list.code, 0);
  const commands = [...list.stdout.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]);
  assert.ok(commands.length >= 18, commands.join(' '));
  const missing: string[] = [];
  for (const name of commands) {
    const help = mtlsgate(['help', name]);
    assert.equal(help.code, 0, name);
    const m = /^Exit status: (.+(?:\n[^\n]+)*)/m.exec(help.stdout);
    if (m === null) {
      missing.push(name);
      continue;
    }
    const codes = [...m[1].matchAll(/\b(\d+) /g)].map((c) => Number(c[1]));
    assert.ok(codes.length > 0 && codes.every((c) => c <= 2), `${name}: ${m[0]}`);
  }
  assert.deepEqual(missing, []);
});
