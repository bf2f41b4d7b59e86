/**
 * Postfix fingerprint matching (tls_dane.c:tls_dane_add_fpt_digests; TLS-8): each configured
 * value matches the digest of the leaf certificate **or** of its public key; hex with optional
 * colons, any case. Digest: sha256 (Postfix `smtp_tls_fingerprint_digest` at compatibility
 * level 3.6+), sha1 and md5 accepted.
 */
import { createHash, type X509Certificate } from 'node:crypto';

export type FingerprintDigest = 'sha256' | 'sha1' | 'md5';

const LENGTH: Record<FingerprintDigest, number> = { sha256: 32, sha1: 20, md5: 16 };

/** Normalize a configured fingerprint to lower-case hex without colons; undefined if malformed. */
export function normalizeFingerprint(value: string, digest: FingerprintDigest): string | undefined {
  const hex = value.trim().replace(/:/g, '').toLowerCase();
  return /^[0-9a-f]+$/.test(hex) && hex.length === LENGTH[digest] * 2 ? hex : undefined;
}

/** Digests of the certificate and of its SubjectPublicKeyInfo, lower-case hex. */
export function certificateFingerprints(cert: X509Certificate, digest: FingerprintDigest): { cert: string; pubkey: string } {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return {
    cert: createHash(digest).update(cert.raw).digest('hex'),
    pubkey: createHash(digest).update(spki).digest('hex'),
  };
}

/** True when one of the (normalized) fingerprints is the certificate's or its key's digest. */
export function matchFingerprint(cert: X509Certificate, fingerprints: readonly string[], digest: FingerprintDigest): boolean {
  const fp = certificateFingerprints(cert, digest);
  return fingerprints.some((f) => f === fp.cert || f === fp.pubkey);
}
