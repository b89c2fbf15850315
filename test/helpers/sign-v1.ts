// A v1 bundle signature (over the digest alone, no signing time), as mtlsgate wrote them before
// signatures carried a time (bundle/sign.ts): bundles signed then must still verify.
import { type KeyObject, sign } from 'node:crypto';
import { keyId } from '../../bundle/sign.ts';

export function signBundleV1(bytes: Buffer, privateKey: KeyObject): Buffer {
  const head = /^\{"format":"[^"]+","digest":"(sha256:[0-9a-f]{64})"(?:,"signature":"[^"]*")?/.exec(bytes.subarray(0, 512).toString('latin1'));
  if (!head) throw new Error('not a bundle header');
  const signature = sign(null, Buffer.from(`mtlsgate.signature/v1\n${head[1]}`, 'utf8'), privateKey).toString('base64');
  const unsigned = head[0].replace(/,"signature":"[^"]*"$/, '');
  return Buffer.concat([Buffer.from(`${unsigned},"signature":"ed25519:${keyId(privateKey)}:${signature}"`, 'latin1'), bytes.subarray(head[0].length)]);
}
