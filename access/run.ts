// The access-test runner the CLI hands the compiler: every case is decided by the gateway's own
// request stages (runtime/stages, `decide`) on the snapshot built from the very bundle bytes
// `compile` writes, exactly as `serve` loads it. No second implementation of the rules.
import { loadBundle } from '../bundle/read.ts';
import type { Bundle } from '../bundle/types.ts';
import type { AccessCase, AccessOutcome, AccessTestRunner } from '../compiler/index.ts';
import { errorStatus } from '../runtime/errors.ts';
import type { ClientIdentity } from '../runtime/identity.ts';
import { buildSnapshot, type Snapshot } from '../runtime/snapshot.ts';
import { decide, type Decision } from '../runtime/stages/decide.ts';
import { IdentityCache } from './identity.ts';
import { describe, type RequestSpec } from './request.ts';

export interface Decided {
  decision: Decision;
  status: number;
}

/** Where a literal token goes: the auth header of the API the request routes to. */
export function tokenHeader(bundle: Bundle, snapshot: Snapshot, spec: RequestSpec, identity: ClientIdentity | null, now: number): string | null {
  if (spec.token === null) return null;
  const first = describe(bundle, { ...spec, token: null, asKey: null }, null);
  if ('problem' in first) return null;
  const api = decide(snapshot, first, identity, now).api;
  return api === null ? 'authorization' : bundle.content.apis[api].auth_header_name;
}

/** Decides one request with the gateway's stages. */
export function decideRequest(
  bundle: Bundle,
  snapshot: Snapshot,
  spec: RequestSpec,
  identity: ClientIdentity | null,
  now: number,
): Decided | { problem: string } {
  const req = describe(bundle, spec, tokenHeader(bundle, snapshot, spec, identity, now));
  if ('problem' in req) return req;
  const decision = decide(snapshot, req, identity, now);
  return { decision, status: decision.refusal === null ? 200 : errorStatus(decision.refusal.code) };
}

const NO_ANSWER = { status: 0, code: null, key: null, api: null };

function outcome(c: AccessCase, d: Decided | { problem: string }): AccessOutcome {
  if ('problem' in d) return { pass: false, actual: NO_ANSWER, problem: d.problem };
  const actual = { status: d.status, code: d.decision.refusal?.code ?? null, key: d.decision.key, api: d.decision.api };
  const e = c.expect;
  const pass =
    (e.status === undefined || e.status === actual.status) &&
    (e.code === undefined || e.code === actual.code) &&
    (e.key === undefined || e.key === actual.key) &&
    (e.api === undefined || e.api === actual.api);
  return { pass, actual, problem: null };
}

export const runAccessTests: AccessTestRunner = (bytes, cases) => {
  const bundle = loadBundle(bytes);
  const snapshot = buildSnapshot(bundle);
  // One instant for every case without `at:` (the run is one moment, and identities are cached
  // per PEM and instant); a case with `at:` is decided at that instant.
  const runNow = Date.now();
  const identities = new IdentityCache();
  return cases.map((c) => {
    const now = c.request.at === null ? runNow : Date.parse(c.request.at);
    let identity: ClientIdentity | null = null;
    if (c.request.certificatePem !== null) {
      try {
        identity = identities.get(c.request.certificatePem, now);
      } catch (err) {
        return { pass: false, actual: NO_ANSWER, problem: `certificate: ${(err as Error).message}` };
      }
    }
    return outcome(c, decideRequest(bundle, snapshot, c.request, identity, now));
  });
};
