/**
 * A self-signed certificate for tests, so that STARTTLS and wrapper mode work without files:
 * `TestServer.start({ tls: testCertificate, extensions: { starttls: true } })`, and a client
 * that trusts `testCertificate.cert` as its CA verifies it.
 *
 * EC P-256, subject `CN=mx.test.invalid, O=mailwire testing`, valid until 2126, with the
 * subject alternative names `mx.test.invalid`, `*.test.invalid`, `localhost`, `127.0.0.1` and
 * `::1` (`.invalid` is reserved, RFC 2606 §2). The private key is public: use it only in tests.
 */
export const testCertificate: { readonly key: string; readonly cert: string } = Object.freeze({
  key: `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgoqKmQrCCd0UbbGho
3QN3oJ8c4T9CUDLTySDrO7qKv0GhRANCAARJjV7D+G0tobPuHl9F61n/DHOXaAVp
Yv6oRqDSrQjo7XKsEjMmnpatwb8uNtgL90H2vYYk0wqqfW8DkwJUvmY5
-----END PRIVATE KEY-----
`,
  cert: `-----BEGIN CERTIFICATE-----
MIICQjCCAeegAwIBAgIUSbhfgu9ZaJEgDXK3cV92Bjdh+0YwCgYIKoZIzj0EAwIw
NTEZMBcGA1UECgwQbWFpbHdpcmUgdGVzdGluZzEYMBYGA1UEAwwPbXgudGVzdC5p
bnZhbGlkMCAXDTI2MTEyNTE1MTcxNloYDzIxMjYxMTAxMTUxNzE2WjA1MRkwFwYD
VQQKDBBtYWlsd2lyZSB0ZXN0aW5nMRgwFgYDVQQDDA9teC50ZXN0LmludmFsaWQw
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARJjV7D+G0tobPuHl9F61n/DHOXaAVp
Yv6oRqDSrQjo7XKsEjMmnpatwb8uNtgL90H2vYYk0wqqfW8DkwJUvmY5o4HSMIHP
MB0GA1UdDgQWBBTnJWkUp6ju7MGHpAPUpKtNbJ8b2jAfBgNVHSMEGDAWgBTnJWkU
p6ju7MGHpAPUpKtNbJ8b2jBNBgNVHREERjBEgg9teC50ZXN0LmludmFsaWSCDiou
dGVzdC5pbnZhbGlkgglsb2NhbGhvc3SHBH8AAAGHEAAAAAAAAAAAAAAAAAAAAAEw
DwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAoQwHQYDVR0lBBYwFAYIKwYB
BQUHAwEGCCsGAQUFBwMCMAoGCCqGSM49BAMCA0kAMEYCIQCj7HdFNPYUmONsHqln
uWPibyjtrT2dEeM24aMmw62muQIhAKFwk+61MVfhk0Ij5VzCBhdvilP6oovS5jYQ
e7Kg2qOS
-----END CERTIFICATE-----
`,
});
