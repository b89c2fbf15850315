// The mtlsgate version, from package.json (inlined by the bundler, so dist/mtlsgate.mjs knows it
// without a package.json beside it). The start-up log, /health, the build_info metric and
// `mtlsgate --version` all print this one value.
import pkg from '../package.json' with { type: 'json' };

export const VERSION: string = pkg.version;
