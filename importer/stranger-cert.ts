// A client certificate no Tyk definition can pin: the generated mTLS access tests
// (importer/mtls-tests.ts) present it to show that a certificate the API does not list is
// refused. Made once with openssl (EC P-256, extendedKeyUsage clientAuth, valid 2000-2126, so a
// test's `at:` never falls outside it); its private key was deleted at once: nobody can present
// it on a real connection, and a test needs only the public certificate.
// sha256:44dbdd13d8d84ee818e38a848d527794bf7615e96bf04fdc2dd32bc41e27bc81
export const STRANGER_PEM = `-----BEGIN CERTIFICATE-----
MIIB1TCCAXygAwIBAgICEAAwCgYIKoZIzj0EAwIwUDE7MDkGA1UEAwwybXRsc2dh
dGUgaW1wb3J0IHR5azogYSBjZXJ0aWZpY2F0ZSBubyBUeWsgQVBJIHBpbnMxETAP
BgNVBAoMCG10bHNnYXRlMCAXDTAwMDEwMTAwMDAwMFoYDzIxMjYwMTAxMDAwMDAw
WjBQMTswOQYDVQQDDDJtdGxzZ2F0ZSBpbXBvcnQgdHlrOiBhIGNlcnRpZmljYXRl
IG5vIFR5ayBBUEkgcGluczERMA8GA1UECgwIbXRsc2dhdGUwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAASWm7Ht3m8PPbq/nAaBcE1VxFT4JHzrzMTCtjh8FxK1Ummb
nlZCsuR0sog36ZFNT9H8+tEqkXQE3k8lTrEGVGjoo0QwQjAMBgNVHRMBAf8EAjAA
MBMGA1UdJQQMMAoGCCsGAQUFBwMCMB0GA1UdDgQWBBS70d2sc2G94NfRjbbslHR8
j5+zpTAKBggqhkjOPQQDAgNHADBEAiB8dqlw8QdDTyvGfdpj+OP4Q21mp5Iotsi5
PFkFr4WuIQIgTXQZ1qKwtx2Po2Gkom8CfYsIhKON4ySA/jAUz0v4nV4=
-----END CERTIFICATE-----
`;
