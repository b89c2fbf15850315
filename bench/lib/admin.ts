// Reads mtlsgate's admin listener: /health (JSON) and /metrics (Prometheus text).
import { request } from 'node:http';

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

export async function health(adminUrl: string): Promise<Record<string, unknown>> {
  return JSON.parse(await get(`${adminUrl}/health`));
}

/** Sum of a metric's samples whose labels include every `labels` pair (e.g. {result: 'ok'}). */
export async function metricSum(adminUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sumIn(await scrape(adminUrl), name, labels);
}

/** The /metrics text, for several `sumIn` reads of one scrape. */
export function scrape(adminUrl: string): Promise<string> {
  return get(`${adminUrl}/metrics`);
}

/** `metricSum` over a scrape already taken. */
export function sumIn(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
