// `mtlsgate token`: a new random bearer token and the token_sha256 that goes into a key's YAML.
import { createHash, randomBytes } from 'node:crypto';
import { UsageError, type Command } from '../command.ts';
import { FORMAT_OPTIONS, parseFormat, Reporter } from '../report.ts';
import { parseCommandLine } from '../flags.ts';

const usage = `usage: mtlsgate token [--format text|json|github]

Prints a new random bearer token (32 random bytes, base64url, 43 characters) and its
token_sha256: the lowercase hex SHA-256 of the token string's UTF-8 bytes, exactly what the
gateway computes from the token a client presents ("Authorization: Bearer <token>", or the
bare token, in the API's auth header) before it looks the key up.

Put ONLY the token_sha256 line into the key's YAML; give the token to the client over a secure
channel. mtlsgate never stores the token: lose it and you make a new one.
Exit status: 0 printed, 2 usage.

Options:
  --format text|json|github
                       json: the envelope of docs/cli-conventions.md with "token" (shown once,
                       as in the text) and "token_sha256"; github prints the text (nothing to
                       annotate)`;

/** The hash the config and the bundle hold for a bearer token: hex SHA-256 of its UTF-8 bytes. */
export function tokenSha256(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function newToken(): { token: string; token_sha256: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, token_sha256: tokenSha256(token) };
}

export const command: Command = {
  name: 'token',
  summary: 'a new random bearer token and its token_sha256 for the YAML',
  usage,
  async run(argv) {
    const { values, positionals } = parseCommandLine(argv, FORMAT_OPTIONS);
    const format = parseFormat(values);
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const t = newToken();
    if (format === 'json') {
      new Reporter('token', format).finish(t);
      return 0;
    }
    console.log(
      [
        '# Secret: give this token to the client (it sends "Authorization: Bearer <token>").',
        '# It is shown once and stored nowhere; do not commit it.',
        `token: ${t.token}`,
        '',
        "# Public: paste this line into the key's YAML (kind: key).",
        `token_sha256: ${t.token_sha256}`,
      ].join('\n'),
    );
    return 0;
  },
};
