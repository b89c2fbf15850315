// One line ahead of the diagnostics when certificate files are missing because their whole
// directory does not exist yet: on a fresh clone, `mtlsgate check examples` names five
// unreadable certificates under examples/certs, which `npm start` (or `mtlsgate certs`) makes.
// The line says what to run instead of leaving the reader to work it out from five errors.
import { existsSync } from 'node:fs';
import { basename, dirname, relative } from 'node:path';
import { DEMO_CERT_NAMES } from './demo-names.ts';
import { count } from '../common/count.ts';

interface DiagnosticLike {
  code: string;
  message: string;
}

/** Files named by E_CERT_READ "no such file" diagnostics (the compiler puts the resolved path in the message). */
function missingFiles(diagnostics: readonly DiagnosticLike[]): string[] {
  const files = new Set<string>();
  for (const d of diagnostics) {
    if (d.code !== 'E_CERT_READ') continue;
    // The path is quoted and escaped as JSON (compiler/excerpt.ts quotedPath).
    const m = /\(resolved to ("(?:[^"\\]|\\.)*")\): no such file/.exec(d.message);
    if (m) files.add(JSON.parse(m[1]) as string);
  }
  return [...files];
}

/**
 * The hint line, or null. Only when a certificate directory is missing altogether (a wrong
 * path to one file is an ordinary error the diagnostics already explain).
 */
export function missingCertsHint(diagnostics: readonly DiagnosticLike[], cwd = process.cwd()): string | null {
  const byDir = new Map<string, string[]>();
  for (const file of missingFiles(diagnostics)) {
    const dir = dirname(file);
    if (existsSync(dir)) continue;
    byDir.set(dir, [...(byDir.get(dir) ?? []), basename(file)]);
  }
  if (byDir.size === 0) return null;
  const demoFiles = new Set(DEMO_CERT_NAMES.map((n) => `${n}.pem`));
  const lines = [...byDir].map(([dir, names]) => {
    const shown = relative(cwd, dir) || '.';
    const named = `${count(names.length, 'certificate file')} the config names`;
    if (names.every((n) => demoFiles.has(n))) {
      return `hint: ${shown} does not exist (${named}): they are the demo certificates; run \`npm start\` or \`mtlsgate certs ${shown}\` first`;
    }
    return `hint: ${shown} does not exist (${named}): create it with the certificates, or fix the paths`;
  });
  return lines.join('\n');
}
