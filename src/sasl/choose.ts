/**
 * Which SASL mechanism to use with a server (Postfix smtp_sasl_glue.c with Cyrus' security
 * properties; SASL-4..8): the server's AUTH list, narrowed by `mechanismFilter`
 * (smtp_sasl_mechanism_filter), then by the security options of the connection
 * (smtp_sasl_security_options / _tls_ / _tls_verified_), then the strongest that the
 * credentials can use — never the server's order (SASL-5).
 */
import type { SaslMechanism } from '../protocol/sasl-exchange.js';
import type { SaslCredentials } from './credentials.js';
import { anonymous, cramMd5, external, login, oauthBearer, plain, scram, xoauth2 } from './mechanisms.js';

export type SecurityOption = 'noplaintext' | 'noactive' | 'nodictionary' | 'noanonymous' | 'mutual_auth' | 'forward_secrecy';

/**
 * The properties each mechanism has, strongest first within each kind of secret:
 *
 * | mechanism     | secret   | sends it in the clear | active/dictionary attacks | anonymous | mutual auth |
 * |---------------|----------|-----------------------|---------------------------|-----------|-------------|
 * | SCRAM-SHA-256 | password | no                    | no                        | no        | yes         |
 * | SCRAM-SHA-1   | password | no                    | no                        | no        | yes         |
 * | CRAM-MD5      | password | no                    | yes                       | no        | no          |
 * | PLAIN         | password | yes                   | yes                       | no        | no          |
 * | LOGIN         | password | yes                   | yes                       | no        | no          |
 * | OAUTHBEARER   | token    | yes                   | no                        | no        | no          |
 * | XOAUTH2       | token    | yes                   | no                        | no        | no          |
 * | EXTERNAL      | cert     | no                    | no                        | no        | no          |
 * | ANONYMOUS     | none     | no                    | no                        | yes       | no          |
 *
 * `noplaintext` excludes "in the clear"; `noactive` and `nodictionary` exclude PLAIN, LOGIN and
 * CRAM-MD5; `noanonymous` excludes ANONYMOUS; `mutual_auth` keeps only SCRAM; none of these
 * offers forward secrecy, so `forward_secrecy` excludes them all (as with Cyrus).
 */
interface MechanismInfo {
  name: string;
  secret: 'password' | 'token' | 'cert' | 'none';
  plaintext: boolean;
  attackable: boolean;
  anonymous: boolean;
  mutual: boolean;
}

const TABLE: readonly MechanismInfo[] = [
  { name: 'SCRAM-SHA-256', secret: 'password', plaintext: false, attackable: false, anonymous: false, mutual: true },
  { name: 'SCRAM-SHA-1', secret: 'password', plaintext: false, attackable: false, anonymous: false, mutual: true },
  { name: 'CRAM-MD5', secret: 'password', plaintext: false, attackable: true, anonymous: false, mutual: false },
  { name: 'PLAIN', secret: 'password', plaintext: true, attackable: true, anonymous: false, mutual: false },
  { name: 'LOGIN', secret: 'password', plaintext: true, attackable: true, anonymous: false, mutual: false },
  { name: 'OAUTHBEARER', secret: 'token', plaintext: true, attackable: false, anonymous: false, mutual: false },
  { name: 'XOAUTH2', secret: 'token', plaintext: true, attackable: false, anonymous: false, mutual: false },
  { name: 'EXTERNAL', secret: 'cert', plaintext: false, attackable: false, anonymous: false, mutual: false },
  { name: 'ANONYMOUS', secret: 'none', plaintext: false, attackable: false, anonymous: true, mutual: false },
];

export interface SaslOptions {
  /** smtp_sasl_mechanism_filter: names to allow (`!NAME` excludes), or a predicate. Empty: no filter. */
  mechanismFilter?: string[] | ((mechanism: string) => boolean);
  /** smtp_sasl_security_options for plaintext connections (default `noplaintext, noanonymous`). */
  securityOptions?: SecurityOption[];
  /** smtp_sasl_tls_security_options (mailwire default `noanonymous`: PLAIN works over TLS). */
  tlsSecurityOptions?: SecurityOption[];
  /** smtp_sasl_tls_verified_security_options (default: the TLS set). */
  tlsVerifiedSecurityOptions?: SecurityOption[];
}

export interface Connection {
  tls: boolean;
  verified: boolean;
  /** A TLS client certificate was presented (EXTERNAL). */
  clientCertificate: boolean;
  /** For OAUTHBEARER's host/port attributes. */
  host?: string;
  port?: number;
}

export type Choice = { mechanism: SaslMechanism } | { fail: string };

export const DEFAULT_SECURITY_OPTIONS: readonly SecurityOption[] = ['noplaintext', 'noanonymous'];
/** mailwire's deliberate difference from Postfix (whose TLS default is the plaintext set). */
export const DEFAULT_TLS_SECURITY_OPTIONS: readonly SecurityOption[] = ['noanonymous'];

function allowedByFilter(name: string, filter: SaslOptions['mechanismFilter']): boolean {
  if (!filter) return true;
  if (typeof filter === 'function') return filter(name);
  if (filter.length === 0) return true;
  const wanted = filter.map((f) => f.toUpperCase());
  if (wanted.includes(`!${name}`)) return false;
  const positive = wanted.filter((f) => !f.startsWith('!'));
  return positive.length === 0 || positive.includes(name);
}

function allowedBySecurity(m: MechanismInfo, opts: readonly SecurityOption[]): boolean {
  if (opts.includes('forward_secrecy')) return false;
  if (opts.includes('noplaintext') && m.plaintext) return false;
  if ((opts.includes('noactive') || opts.includes('nodictionary')) && m.attackable) return false;
  if (opts.includes('noanonymous') && m.anonymous) return false;
  if (opts.includes('mutual_auth') && !m.mutual) return false;
  return true;
}

/** The security options that apply to a connection (SASL-6, SASL-7). */
export function securityOptionsFor(conn: Connection, o: SaslOptions): readonly SecurityOption[] {
  if (!conn.tls) return o.securityOptions ?? DEFAULT_SECURITY_OPTIONS;
  const tls = o.tlsSecurityOptions ?? DEFAULT_TLS_SECURITY_OPTIONS;
  return conn.verified ? (o.tlsVerifiedSecurityOptions ?? tls) : tls;
}

/**
 * The mechanism for this server, or why there is none ("offered no compatible authentication
 * mechanisms": Postfix 4.7.0, the next server is tried).
 */
export function chooseMechanism(offered: readonly string[], credentials: SaslCredentials, conn: Connection, o: SaslOptions = {}): Choice {
  const server = new Set(offered.map((m) => m.toUpperCase()));
  const security = securityOptionsFor(conn, o);
  const hasPassword = credentials.password !== undefined;
  const hasToken = credentials.accessToken !== undefined;
  const usable = (m: MechanismInfo): boolean => {
    switch (m.secret) {
      case 'password':
        return hasPassword;
      case 'token':
        return hasToken;
      case 'cert':
        return conn.clientCertificate && !hasPassword;
      case 'none':
        return !hasPassword && !hasToken && !conn.clientCertificate;
    }
  };
  // Tokens first when there is one (OAUTHBEARER > XOAUTH2), then passwords strongest first.
  const order = hasToken ? [...TABLE.filter((m) => m.secret === 'token'), ...TABLE.filter((m) => m.secret !== 'token')] : TABLE;
  const pick = order.find((m) => server.has(m.name) && allowedByFilter(m.name, o.mechanismFilter) && allowedBySecurity(m, security) && usable(m));
  if (!pick) return { fail: 'offered no compatible authentication mechanisms for this type of connection security' };
  return { mechanism: build(pick.name, credentials, conn) };
}

function build(name: string, c: SaslCredentials, conn: Connection): SaslMechanism {
  switch (name) {
    case 'SCRAM-SHA-256':
      return scram(c, 'sha256');
    case 'SCRAM-SHA-1':
      return scram(c, 'sha1');
    case 'CRAM-MD5':
      return cramMd5(c);
    case 'PLAIN':
      return plain(c);
    case 'LOGIN':
      return login(c);
    case 'OAUTHBEARER':
      return oauthBearer(c, { ...(conn.host ? { host: conn.host } : {}), ...(conn.port ? { port: conn.port } : {}) });
    case 'XOAUTH2':
      return xoauth2(c);
    case 'EXTERNAL':
      return external(c);
    default:
      return anonymous(c);
  }
}
