// `mtlsgate explain --bundle FILE [--cert PEM] [--as-key ID | --token T] [METHOD] URL`: the
// decision the gateway's stages make for one request, and each stage's verdict in order.
import { MAX_CERT_FILE_BYTES } from '../../cert/read.ts';
import { containsPrivateKey } from '../../cert/private-key.ts';
import { errnoMessage } from '../../common/errno.ts';
import { explainRequest, formatExplanation } from '../../access/explain.ts';
import { identityFromPem } from '../../access/identity.ts';
import { splitUrl } from '../../access/request.ts';
import { buildSnapshot } from '../../runtime/snapshot.ts';
import { UsageError, type Command } from '../command.ts';
import { parseAt, parseCommandLine } from '../flags.ts';
import { readBundleInput, readInput, STDIO } from '../io.ts';
import { visibleLines } from '../../common/visible-text.ts';
import { FORMAT_OPTIONS, githubLine, parseFormat, Reporter } from '../report.ts';

const usage = `usage: mtlsgate explain --bundle FILE [--cert PEM] [--as-key ID | --token T] [--at ISO] [--format text|json|github] [METHOD] URL

Decides one request against the bundle with the gateway's own request stages and shows the
answer and each stage's verdict in order: route (which API), static mTLS (which pin or CA
admitted the certificate, or why none did), authenticate (which key), key state, access
(which access right and allowed_urls entry), limits (the key's limits; nothing is counted).
URL is a path (/logistics/shipments) or https://HOST/PATH (the host chooses the domain).
Exit status: 0 the request would be let through, 1 it would be refused, 2 usage or I/O.

Options:
  --bundle FILE   the bundle to ask (what \`mtlsgate compile\` wrote, or what is deployed;
                  - reads it from standard input)
  --cert PEM      the client certificate presented (public PEM; chain certificates after it;
                  - reads it from standard input)
  --as-key ID     the request bears that key's token (known by its token_sha256: no secret)
  --token T       the request bears this literal token
  --at ISO        decide at this moment (expiry), e.g. 2027-01-01T00:00:00Z; default now
  --format text|json|github
                  text (default); json: the envelope of docs/cli-conventions.md with the
                  decision and every stage; github: the text, and a refused request as an
                  error annotation (its code and the refusing stage's reason)`;

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, {
    bundle: { type: 'string' },
    cert: { type: 'string' },
    'as-key': { type: 'string' },
    token: { type: 'string' },
    at: { type: 'string' },
    ...FORMAT_OPTIONS,
  });
  const format = parseFormat(values);
  if (!values.bundle) throw new UsageError('give the bundle with --bundle FILE');
  if (values['as-key'] !== undefined && values.token !== undefined) throw new UsageError('give --as-key or --token, not both');
  if (values.bundle === STDIO && values.cert === STDIO) throw new UsageError('standard input holds one of them: give --bundle or --cert as a file');
  if (positionals.length < 1 || positionals.length > 2) throw new UsageError('give [METHOD] URL');
  const [method, url] = positionals.length === 2 ? positionals : ['GET', positionals[0]];
  if (!/^[A-Za-z]+$/.test(method)) throw new UsageError(`method ${JSON.stringify(method)} is not an HTTP method`);
  const parsedUrl = splitUrl(url);
  if ('problem' in parsedUrl) throw new UsageError(parsedUrl.problem);
  const now = parseAt(values.at);
  const report = new Reporter('explain', format);
  const fail = (code: string, message: string) => {
    report.error(code, message);
    report.finish();
    return 2;
  };
  let bundle;
  let identity = null;
  try {
    bundle = readBundleInput(values.bundle);
  } catch (err) {
    return fail('io', `--bundle ${values.bundle}: ${errnoMessage(err)}`);
  }
  try {
    if (values.cert !== undefined) identity = certIdentity(values.cert);
  } catch (err) {
    return fail('io', `--cert ${values.cert}: ${errnoMessage(err)}`);
  }
  const spec = { method: method.toUpperCase(), url, asKey: values['as-key'] ?? null, token: values.token ?? null, headers: {} };
  const e = explainRequest(bundle, buildSnapshot(bundle), spec, identity, now);
  if ('problem' in e) return fail('request', e.problem);
  if (format === 'json') report.finish({ ...e }, e.code === null);
  else {
    // Subjects (certificate_match, the client's) are text from certificates: hidden characters as \uXXXX.
    const text = visibleLines(formatExplanation(e, bundle));
    process.stdout.write(text);
    // The refusal is the answer, not a failure of the command: an annotation, not a message on stderr.
    const refusing = e.stages.find((s) => s.outcome === 'refuse');
    if (format === 'github' && e.code !== null)
      process.stdout.write(
        githubLine('error', { code: e.code, message: `${text.split('\n')[0]}${refusing ? `; ${refusing.stage}: ${refusing.detail}` : ''}` }),
      );
  }
  return e.code === null ? 0 : 1;
}

/** The client identity from a PEM file; a private key given by mistake is named as such. */
function certIdentity(file: string) {
  const text = readInput(file, MAX_CERT_FILE_BYTES).toString('latin1');
  try {
    return identityFromPem(text);
  } catch (err) {
    if (containsPrivateKey(text)) throw new Error('it holds a private key, not a certificate: give the public certificate (PEM) the client presents');
    throw err;
  }
}

export const command: Command = { name: 'explain', summary: "why a request gets its answer: each stage's verdict", usage, run };
