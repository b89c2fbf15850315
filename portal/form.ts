// Reading the request form: the body is read up to a cap and no further, then parsed by the
// platform's FormData (multipart/form-data for file uploads, or urlencoded), then the plain
// fields are checked. The certificate itself is checked by validate-cert.ts.
import type { IncomingMessage } from 'node:http';
import { MAX_CERT_BYTES } from './validate-cert.ts';

/** The certificate's cap plus room for the other fields and multipart framing. */
export const MAX_BODY_BYTES = MAX_CERT_BYTES + 8 * 1024;

export class BodyTooLarge extends Error {
  override name = 'BodyTooLarge';
}

/** Reads the body; rejects with BodyTooLarge as soon as it would pass `limit` (the rest is never read). */
export function readCappedBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export interface RequestForm {
  csrf: unknown;
  policy: string;
  developer: string;
  /** What was typed or pasted in the text area. */
  pasted: string;
  /** The uploaded file's bytes, or null when no file was chosen. */
  uploaded: Buffer | null;
  /** The proof-of-possession challenge the form carried, and the pasted signature of it. */
  challenge: string;
  signature: string;
  /** A certificate fingerprint (the remove-certificate form). */
  fingerprint: string;
}

export class UnsupportedForm extends Error {
  override name = 'UnsupportedForm';
}

function text(value: FormDataEntryValue | null): string {
  return typeof value === 'string' ? value : '';
}

export async function parseRequestForm(body: Buffer, contentType: string | undefined): Promise<RequestForm> {
  const type = (contentType ?? '').toLowerCase();
  if (!type.startsWith('multipart/form-data') && !type.startsWith('application/x-www-form-urlencoded')) {
    throw new UnsupportedForm('send multipart/form-data or application/x-www-form-urlencoded');
  }
  let data: FormData;
  try {
    data = await new Response(new Uint8Array(body), { headers: { 'content-type': contentType! } }).formData();
  } catch {
    throw new UnsupportedForm('the form body could not be parsed');
  }
  const pasted = text(data.get('certificate'));
  const file = data.get('certificate_file');
  const uploaded = file !== null && typeof file !== 'string' && file.size > 0 ? Buffer.from(await file.arrayBuffer()) : null;
  return {
    csrf: data.get('csrf'),
    policy: text(data.get('policy')),
    developer: text(data.get('developer')).trim(),
    pasted,
    uploaded,
    challenge: text(data.get('challenge')),
    signature: text(data.get('signature')),
    fingerprint: text(data.get('fingerprint')),
  };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this pattern finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** A message for the developer field, or null when it is fine. */
export function developerProblem(developer: string): string | null {
  if (developer === '') return 'Enter your name or email address, so the platform team knows whose key this is.';
  if (developer.length > 200) return 'Keep your name or email under 200 characters.';
  if (CONTROL.test(developer)) return 'Your name or email contains control characters; type it on one line.';
  return null;
}
