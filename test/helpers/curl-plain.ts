// curl over plain HTTP (no TLS: a load balancer's side of --listen-plain, or a gateway test
// without client certificates), sending headers a proxy would; the status and the JSON body.
import { execFile } from 'node:child_process';

export interface PlainAnswer {
  status: number;
  json: { code?: string; headers?: Record<string, string>; error?: string };
}

/** Plain-HTTP curl to `url` with `headers`; the status and JSON body. */
export function curlPlain(url: string, headers: Record<string, string> = {}, extra: string[] = []): Promise<PlainAnswer> {
  const args = ['-sS', '--max-time', '30', '-w', '\n%{http_code}', ...extra];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  args.push(url);
  return new Promise((resolve, reject) =>
    execFile('curl', args, { timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl ${url} failed: ${stderr || err.message}`));
      const nl = stdout.lastIndexOf('\n');
      let json = {};
      try {
        json = JSON.parse(stdout.slice(0, nl));
      } catch {
        // not JSON
      }
      resolve({ status: Number(stdout.slice(nl + 1)), json });
    }),
  );
}
