// A self-signed root CA made by the openssl CLI, as an operator makes one: P-256 key,
// basicConstraints CA:true and keyUsage keyCertSign + cRLSign (both critical), written as
// DIR/ca.pem and DIR/ca-key.pem. Used by the tests' `openssl ca` PKI and the bench's big CRL.
import { execFileSync } from 'node:child_process';

export function opensslRootCa(dir: string, commonName: string, days: number): void {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca-key.pem',
      '-out',
      'ca.pem',
      '-days',
      String(days),
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      'basicConstraints=critical,CA:true',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    // stderr is kept: a failure throws with openssl's own message.
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
}
