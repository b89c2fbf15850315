/** A bundle, manifest or shard file refused: its message says what is wrong and how to fix it. */
export class BundleError extends Error {
  override name = 'BundleError';
}
