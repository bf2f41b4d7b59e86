/**
 * Certificate name matching as Postfix asks OpenSSL to do it (tls_client.c:add_namechecks,
 * X509_check_host without partial-label wildcards; REQUIREMENTS TLS-11):
 * - names come from subjectAltName dNSNames, the subject CN only when there are none;
 * - a reference name `example.com` matches exactly; `.example.com` matches any subdomain;
 * - a certificate wildcard must be the whole left-most label (`*.example.com` matches
 *   `a.example.com`, never `example.com`, `a.b.example.com`, and `f*.example.com` matches nothing);
 * - comparison is case-insensitive, on A-labels, a trailing dot ignored.
 */
import type { X509Certificate } from 'node:crypto';

/** The DNS names a certificate asserts: SAN dNSNames, else the subject CN. */
export function certificateNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName ?? '';
  const dns: string[] = [];
  // Node's format: 'DNS:a.example, DNS:b.example, IP Address:192.0.2.1' (values may be quoted).
  for (const part of splitSan(san)) {
    const m = /^DNS:(.*)$/.exec(part);
    if (m) dns.push(unquote(m[1]!));
  }
  if (dns.length > 0) return dns.map(norm);
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject ?? '');
  return cn ? [norm(unquote(cn[1]!))] : [];
}

function splitSan(san: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of san) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      out.push(cur.trim());
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function unquote(s: string): string {
  return s.startsWith('"') && s.endsWith('"') ? JSON.parse(s) : s;
}

function norm(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** Does one certificate name satisfy one reference name (`host`, or `.domain` for subdomains)? */
export function nameMatches(certName: string, reference: string): boolean {
  const c = norm(certName);
  const ref = norm(reference);
  if (ref.length === 0 || c.length === 0) return false;
  if (ref.startsWith('.')) {
    // Any subdomain of ref: a literal name under it, or a wildcard whose base is ref or under it.
    const suffix = ref;
    if (c.startsWith('*.')) {
      const base = c.slice(1); // ".example.com"
      return base === suffix || base.endsWith(suffix);
    }
    if (c.includes('*')) return false;
    return c.endsWith(suffix) && c.length > suffix.length;
  }
  if (c === ref) return !c.includes('*');
  if (c.startsWith('*.') && !c.slice(2).includes('*')) {
    const dot = ref.indexOf('.');
    return dot > 0 && ref.slice(dot + 1) === c.slice(2) && c.slice(2).includes('.');
  }
  return false;
}

/** The first of `references` that the certificate satisfies, or undefined. */
export function matchCertificate(cert: X509Certificate, references: readonly string[]): string | undefined {
  const names = certificateNames(cert);
  return references.find((ref) => names.some((n) => nameMatches(n, ref)));
}
