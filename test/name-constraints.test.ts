// The name-constraint rules of RFC 5280 4.2.1.10 one form at a time (cert/name-constraints.ts);
// test/security-pki-constraints.test.ts drives them through the gateway with openssl certificates.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ConstrainedNames, type NameConstraints, nameConstraintViolation, type Subtree, uriHost } from '../cert/name-constraints.ts';

const names = (over: Partial<ConstrainedNames>): ConstrainedNames => ({ dns: [], email: [], uri: [], ip: [], dn: [], other: [], ...over });
const nc = (permitted: Subtree[], excluded: Subtree[] = []): NameConstraints => ({ permitted, excluded, unsupported: false });
const ok = (n: ConstrainedNames, c: NameConstraints) => nameConstraintViolation(n, c) === null;

test('DNS: "x" admits x and its subdomains, ".x" only subdomains; case and a trailing dot do not matter', () => {
  const base = nc([{ form: 'dns', value: 'b.example.com' }]);
  assert.equal(ok(names({ dns: ['b.example.com', 'A.B.Example.com', 'a.b.example.com.'] }), base), true);
  assert.equal(ok(names({ dns: ['xb.example.com'] }), base), false);
  const dot = nc([{ form: 'dns', value: '.b.example.com' }]);
  assert.equal(ok(names({ dns: ['b.example.com'] }), dot), false);
  assert.equal(ok(names({ dns: ['a.b.example.com'] }), dot), true);
  assert.equal(ok(names({ dns: ['secret.b.example.com'] }), nc([], [{ form: 'dns', value: 'secret.b.example.com' }])), false);
  // Names of a form no constraint names are not bounded by the others.
  assert.equal(ok(names({ email: ['x@a.example.com'] }), base), true);
});

test('email: a mailbox (local part case-sensitive), a host, a domain', () => {
  assert.equal(ok(names({ email: ['Ops@b.example.com'] }), nc([{ form: 'email', value: 'Ops@b.example.com' }])), true);
  assert.equal(ok(names({ email: ['ops@b.example.com'] }), nc([{ form: 'email', value: 'Ops@b.example.com' }])), false);
  // An excluded mailbox is excluded whatever the case of its host.
  assert.equal(ok(names({ email: ['Evil@B.EXAMPLE.com'] }), nc([], [{ form: 'email', value: 'Evil@b.example.com' }])), false);
  assert.equal(ok(names({ email: ['x@b.example.com'] }), nc([{ form: 'email', value: 'b.example.com' }])), true);
  assert.equal(ok(names({ email: ['x@a.b.example.com'] }), nc([{ form: 'email', value: 'b.example.com' }])), false);
  assert.equal(ok(names({ email: ['x@a.b.example.com'] }), nc([{ form: 'email', value: '.b.example.com' }])), true);
  assert.equal(ok(names({ email: ['no-at-sign'] }), nc([{ form: 'email', value: 'b.example.com' }])), false);
});

test('URI: the host only; "x" is that host, ".x" its subdomains; no host, userinfo or an IP literal fails', () => {
  assert.equal(uriHost('spiffe://Svc.B.example.com:8443/ns/x?q#f'), 'svc.b.example.com');
  assert.equal(uriHost('spiffe://a.example.com@x.b.example.com/'), null);
  assert.equal(uriHost('urn:uuid:1234'), null);
  assert.equal(uriHost('https://[::1]/x'), null);
  const host = nc([{ form: 'uri', value: 'b.example.com' }]);
  assert.equal(ok(names({ uri: ['spiffe://b.example.com/x'] }), host), true);
  assert.equal(ok(names({ uri: ['spiffe://a.b.example.com/x'] }), host), false);
  const domain = nc([{ form: 'uri', value: '.b.example.com' }]);
  assert.equal(ok(names({ uri: ['spiffe://a.b.example.com/x'] }), domain), true);
  assert.equal(ok(names({ uri: ['spiffe://a.example.com@x.b.example.com/x'] }), domain), false);
  assert.equal(ok(names({ uri: ['urn:uuid:1234'] }), domain), false);
  assert.equal(ok(names({ uri: ['spiffe://a.example.com@x.b.example.com/x'] }), nc([], [{ form: 'uri', value: '.a.example.com' }])), false);
});

test('IP: address and mask, one family at a time', () => {
  const net = nc([{ form: 'ip', value: Buffer.from([10, 1, 0, 0, 255, 255, 0, 0]) }]);
  assert.equal(ok(names({ ip: [Buffer.from([10, 1, 2, 3])] }), net), true);
  assert.equal(ok(names({ ip: [Buffer.from([10, 2, 2, 3])] }), net), false);
  assert.equal(ok(names({ ip: [Buffer.alloc(16)] }), net), false);
});

test('directory names: the base RDNs are a prefix of the subject; other forms and min/max fail closed', () => {
  const org = nc([{ form: 'dn', value: ['2.5.4.6=de', '2.5.4.10=tenant b'] }]);
  assert.equal(ok(names({ dn: [['2.5.4.6=de', '2.5.4.10=tenant b', '2.5.4.3=svc']] }), org), true);
  assert.equal(ok(names({ dn: [['2.5.4.6=de', '2.5.4.10=tenant a', '2.5.4.3=svc']] }), org), false);
  assert.equal(ok(names({ other: [0xa0] }), nc([{ form: 0xa0, value: '' }])), false);
  assert.equal(ok(names({ dns: ['a.b.example.com'] }), { permitted: [], excluded: [], unsupported: true }), false);
});
