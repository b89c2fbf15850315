// Before any load: prove a contender admits a pinned certificate and refuses an unlisted one
// (an HTTP 4xx or a failed handshake), with curl as an independent client.
import { spawn } from 'node:child_process';
import type { PkiFile } from './pki.ts';

export interface ProbeResult {
  /** HTTP status, or 0 when the TLS handshake (or connection) failed. */
  status: number;
  curlExit: number;
}

export function probe(url: string, client: PkiFile | null): Promise<ProbeResult> {
  const args = ['-sk', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10'];
  if (client) args.push('--cert', client.cert, '--key', client.key);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ status: Number(out.trim()) || 0, curlExit: code ?? -1 }));
  });
}

export function describeProbe(r: ProbeResult): string {
  return r.status === 0 ? `handshake refused (curl exit ${r.curlExit})` : `HTTP ${r.status}`;
}

export const isAdmitted = (r: ProbeResult): boolean => r.status >= 200 && r.status < 300;
export const isRefused = (r: ProbeResult): boolean => r.status === 0 || (r.status >= 400 && r.status < 500);
