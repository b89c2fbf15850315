// The server's TLS credentials from their files: `--tls-cert`/`--tls-key`, given once or as
// several pairs in order (the first is the default, the others are chosen by SNI:
// runtime/tls-servers.ts). Read at start and on SIGHUP; a reload takes every pair or none, so a
// bad file leaves all the old certificates serving.
import { createSecureContext } from 'node:tls';
import { containsPrivateKey } from '../cert/private-key.ts';
import { errnoMessage } from '../common/errno.ts';
import { readRegularFileAsync } from '../common/regular-file.ts';
import { MAX_TLS_FILE_BYTES } from '../common/size-limits.ts';
import type { TlsPair } from './tls-servers.ts';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** Where a file came from, for messages: "--tls-cert" for one pair, "--tls-cert #2" for the second of several. */
function flagName(flag: string, index: number, count: number): string {
  return count === 1 ? flag : `${flag} #${index + 1}`;
}

/** Every pair, each checked to be a usable certificate and matching key; throws (message naming the pair) on the first that is not. */
export async function readTlsPairs(files: readonly TlsFiles[]): Promise<TlsPair[]> {
  const pairs: TlsPair[] = [];
  for (const [i, f] of files.entries()) {
    const certFlag = flagName('--tls-cert', i, files.length);
    const keyFlag = flagName('--tls-key', i, files.length);
    // A regular file of at most MAX_TLS_FILE_BYTES: a named pipe is refused rather than waited
    // on (at start it held start-up; on SIGHUP every later reload), /dev/zero before a byte is read.
    const read = async (file: string, flag: string) => {
      try {
        return await readRegularFileAsync(file, MAX_TLS_FILE_BYTES);
      } catch (err) {
        throw new Error(`cannot read ${flag} ${file}: ${errnoMessage(err)}`);
      }
    };
    const cert = await read(f.certFile, certFlag);
    const key = await read(f.keyFile, keyFlag);
    try {
      createSecureContext({ cert, key });
    } catch (err) {
      throw new Error(
        `${certFlag} ${f.certFile} and ${keyFlag} ${f.keyFile} are not a usable certificate and matching private key: ${pairProblem(cert, key, err as Error)}`,
      );
    }
    pairs.push({ cert, key });
  }
  return pairs;
}

/**
 * Why a pair is unusable, said plainly for the usual mistakes (the two files swapped, a file
 * without the PEM it should hold, a key of another certificate); OpenSSL's words otherwise
 * ("PEM routines::no start line" names neither file).
 */
function pairProblem(cert: Buffer, key: Buffer, err: Error): string {
  const certHolds = cert.includes('-----BEGIN CERTIFICATE-----');
  const keyHolds = containsPrivateKey(key);
  const swapped = !certHolds && !keyHolds && containsPrivateKey(cert) && key.includes('-----BEGIN CERTIFICATE-----');
  if (swapped) return 'the two are swapped: the certificate file holds the private key, the key file the certificate';
  if (!certHolds) return `the certificate file holds no PEM certificate${containsPrivateKey(cert) ? ' (it holds a private key)' : ''}`;
  if (!keyHolds) return `the key file holds no private key${key.includes('-----BEGIN CERTIFICATE-----') ? ' (it holds a certificate)' : ''}`;
  if (/key values mismatch/.test(err.message)) return "the private key is not the certificate's (key values mismatch)";
  return err.message;
}
