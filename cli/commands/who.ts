// `mtlsgate who --bundle FILE API_ID [--method M] [--path P] [--certs DIR]`: every identity that
// can reach an API, answered by the gateway's own stages from the bundle that is deployed, with
// real client certificates from DIR (the bundle holds fingerprints, the stages need certificates;
// without them each grant is listed as not checked).
import { errnoMessage } from '../../common/errno.ts';
import { certsFrom } from '../../access/given-certs.ts';
import { whoCanReach } from '../../access/who.ts';
import { formatWho } from '../../access/who-format.ts';
import { buildSnapshot } from '../../runtime/snapshot.ts';
import { UsageError, type Command } from '../command.ts';
import { parseAt, parseCommandLine } from '../flags.ts';
import { readBundleInput } from '../io.ts';
import { visibleLines } from '../../common/visible-text.ts';
import { FORMAT_OPTIONS, githubLine, parseFormat, Reporter } from '../report.ts';

const usage = `usage: mtlsgate who --bundle FILE API_ID [--method M] [--path P] [--certs DIR] [--at ISO] [--format text|json|github|csv]

Lists every identity that gets through to the API (and path): anyone (a keyless API), its
pinned certificates, CAs and subject entries (certificate_match), and each key whose own
credentials (its certificate, its token, or both) pass the gateway's request stages, with its
policies. The stages judge real certificates (validity, extendedKeyUsage, path validation,
subject, revocation) and the bundle holds only fingerprints, so give the client certificates
with --certs DIR (the config directory will do: every *.pem / *.crt under it, leaf first).
A grant whose certificate is not there is still a row (fingerprint, key, policies, expiry from
the bundle), marked not checked (csv: checked=no; json: "checked": false) with why: the key's
state and access rights are judged, the certificate itself is not. A grant refused whatever
the certificate (key inactive or expired, path not allowed, pin revoked) is a note (with
--format csv, the notes go to stderr).
Exit status: 0 the answer is listed ("nobody" included), 2 usage or I/O (no such API, a
bundle that cannot be read).

Options:
  --bundle FILE   the bundle to ask (- reads it from standard input)
  --method M      the request method (default GET)
  --path P        a path on the API (default its listen_path); relative to the listen path unless it starts with it
  --certs DIR     client certificates (PEM) to put through the stages
  --at ISO        decide at this moment (certificate and key expiry); default now
  --format text|json|github|csv
                  text (default); json: the envelope of docs/cli-conventions.md; github: the
                  text, and each note (a grant refused whatever its certificate, ...) as a
                  notice annotation;
                  csv: one row per identity (notes on stderr)`;

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, {
    bundle: { type: 'string' },
    method: { type: 'string', default: 'GET' },
    path: { type: 'string' },
    certs: { type: 'string' },
    at: { type: 'string' },
    ...FORMAT_OPTIONS,
  });
  const format = parseFormat(values, ['csv'] as const);
  if (!values.bundle) throw new UsageError('give the bundle with --bundle FILE');
  if (positionals.length !== 1) throw new UsageError('give one API id');
  const now = parseAt(values.at);
  const report = new Reporter('who', format === 'csv' ? 'text' : format);
  // Which flag named the file that failed, as explain says it: "--bundle nope.json: ENOENT".
  const read = <T>(flag: string, path: string, load: (path: string) => T): T => {
    try {
      return load(path);
    } catch (err) {
      const notDir = (err as NodeJS.ErrnoException).code === 'ENOTDIR';
      throw new Error(
        `${flag} ${path}: ${notDir ? 'not a directory (give the directory holding the client certificates: every *.pem / *.crt under it is read)' : errnoMessage(err)}`,
      );
    }
  };
  try {
    const bundle = read('--bundle', values.bundle, readBundleInput);
    const certs = values.certs ? read('--certs', values.certs, certsFrom) : [];
    const answer = whoCanReach(bundle, buildSnapshot(bundle), positionals[0], { method: values.method!, path: values.path ?? null, now, certs });
    if (format === 'json') {
      report.finish({ ...answer });
      return 0;
    }
    // Subjects and file names come from certificates and the disk: hidden characters as \uXXXX.
    process.stdout.write(visibleLines(formatWho(answer, format === 'csv' ? 'csv' : 'text')));
    // A spreadsheet has no room for notes, and without them an empty one reads as "nobody":
    // the grants not checked (a certificate not given with --certs) go to stderr.
    if (format === 'csv') for (const note of answer.notes) console.error(`mtlsgate who: note: ${visibleLines(note)}`);
    // On a pull request the notes (a grant refused whatever its certificate, ...) show where people look.
    if (format === 'github') for (const note of answer.notes) process.stdout.write(githubLine('notice', { code: 'note', message: note }));
    return 0;
  } catch (err) {
    report.error('io', (err as Error).message);
    report.finish();
    return 2;
  }
}

export const command: Command = { name: 'who', summary: 'who can reach an API: certificates, CAs and keys, from the bundle', usage, run };
