// The names of the demo set `mtlsgate certs DIR` writes (cli/pki.ts), apart from the generator:
// `compile` and `check` name the missing demo files in a hint (cli/missing-certs.ts) without
// loading @peculiar/x509.

/** The demo set that `mtlsgate certs DIR`, `npm start` and the examples use. */
export const DEMO_CLIENTS = ['partner-a', 'alice', 'bob', 'mallory'] as const;

/** Every name writeDemoPki writes, as DIR/<name>.pem and DIR/<name>-key.pem. */
export const DEMO_CERT_NAMES = ['ca', 'server', ...DEMO_CLIENTS, 'other-ca', 'stranger'] as const;
