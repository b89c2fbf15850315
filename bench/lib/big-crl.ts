// A CA and a CRL revoking `entries` serials, made by `openssl ca -gencrl` from an index.txt
// written directly (issuing 10,000 certificates only to revoke them would take minutes).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { opensslRootCa } from '../../test/helpers/openssl-pki.ts';

export interface BigCrl {
  caPem: string;
  crlPem: string;
}

export function makeBigCrl(dir: string, entries: number): BigCrl {
  const marker = join(dir, `crl-${entries}.pem`);
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'ca.pem'))) {
    opensslRootCa(dir, 'bench CRL CA', 3650);
  }
  if (!existsSync(marker)) {
    const lines: string[] = [];
    for (let i = 0; i < entries; i++) lines.push(`R\t351231000000Z\t250101000000Z\t${(0x100000 + i).toString(16).toUpperCase()}\tunknown\t/CN=revoked-${i}`);
    writeFileSync(join(dir, 'index.txt'), lines.join('\n') + '\n');
    writeFileSync(join(dir, 'crlnumber'), '01\n');
    writeFileSync(
      join(dir, 'ca.cnf'),
      `[ ca ]\ndefault_ca = d\n[ d ]\ndir = ${dir}\ndatabase = $dir/index.txt\ncertificate = $dir/ca.pem\nprivate_key = $dir/ca-key.pem\ncrlnumber = $dir/crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n`,
    );
    execFileSync('openssl', ['ca', '-config', 'ca.cnf', '-gencrl', '-out', marker], { cwd: dir, stdio: 'ignore' });
  }
  return { caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'), crlPem: readFileSync(marker, 'utf8') };
}
