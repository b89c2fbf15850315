// `mtlsgate who` as text (rows aligned, then notes) or CSV (one row per identity; the CLI writes
// the notes to stderr).
import { count } from '../common/count.ts';
import { shortFingerprint, type WhoAnswer } from './who-answer.ts';

const CSV_FIELDS = ['kind', 'id', 'fingerprints', 'subject', 'expires', 'how', 'policies', 'checked'] as const;

export function formatWho(a: WhoAnswer, format: 'text' | 'csv'): string {
  if (format === 'csv') {
    const cell = (v: string) => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
    const lines = [CSV_FIELDS.join(',')];
    for (const r of a.rows)
      lines.push(
        [
          r.kind,
          r.id,
          r.fingerprints.map((f) => `sha256:${f}`).join(' '),
          r.subject ?? '',
          r.expires ?? '',
          r.how,
          r.policies.join(' '),
          r.checked ? 'yes' : 'no',
        ]
          .map(cell)
          .join(','),
      );
    return `${lines.join('\n')}\n`;
  }
  const lines = [`who can reach API "${a.api}" (${a.method} ${a.path}):`];
  if (a.rows.length === 0) lines.push('  nobody');
  for (const r of a.rows) {
    const fps = r.fingerprints.map(shortFingerprint).join(' ');
    const bits = [
      r.kind.padEnd(11),
      (r.kind === 'ca' ? '' : r.id || '-').padEnd(14),
      r.how,
      fps,
      r.subject ? `subject "${r.subject}"` : '',
      r.expires ? `expires ${r.expires}` : '',
      r.policies.length ? `policies ${r.policies.join(', ')}` : '',
    ];
    lines.push(`  ${bits.filter(Boolean).join('  ')}`.trimEnd());
  }
  const unchecked = a.rows.filter((r) => !r.checked).length;
  if (unchecked > 0)
    lines.push(
      `${count(unchecked, 'grant')} listed from the bundle alone (not checked): give the client certificates with --certs DIR to put them through the stages`,
    );
  if (a.notes.length > 0) lines.push('notes:', ...a.notes.map((n) => `  ${n}`));
  return `${lines.join('\n')}\n`;
}
