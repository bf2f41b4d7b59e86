/**
 * Why → status, reason text and DSN fields: the one place where mailwire's statuses and
 * Postfix's texts are made (POSTFIX-BEHAVIOR.md §1.2, §1.4; DSN-4, DSN-11).
 */
import type { Reply } from '../protocol/reply.js';
import { replyText } from '../protocol/reply.js';
import { statusClass, withClass } from '../protocol/enhanced-status.js';
import type { LocalReason, TlsResultType, Why } from '../protocol/why.js';
import type { ReplySummary } from './delivery-result.js';

/** The server a Why happened at, as Postfix names it: `host[address]`. */
export interface ServerIdentity {
  /** The MX or next-hop host name (for a unix socket: our own name, as Postfix logs it). */
  host: string;
  /** IP address, or the unix socket path. */
  address: string;
  port?: number;
}

export interface Described {
  status: string;
  reason: string;
  success: boolean;
  /** Postfix SMTP_MISC_FAIL_SOFT_NON_FINAL: soft while other servers remain, hard at the last. */
  softNonFinal?: boolean;
  diagnosticCode?: string;
  remoteMta?: string;
  reply?: ReplySummary;
  /** RFC 8460 details of a TLS failure. */
  tlsFailure?: { resultType: TlsResultType; detail: string };
}

export interface DescribeOptions {
  /** Postfix `smtp_skip_5xx_greeting` (true): a 5xx greeting is a soft error (4.x.x). */
  skip5xxGreeting?: boolean;
  /** Postfix `smtp_sasl_auth_soft_bounce` (true): a 5xx AUTH failure is soft. */
  authSoftBounce?: boolean;
}

const LOCAL: Record<LocalReason, { status: string; withServer?: boolean; softNonFinal?: boolean }> = {
  'bad-sender': { status: '5.1.7' },
  'bad-recipient': { status: '5.1.3' },
  'message-too-big': { status: '5.3.4', withServer: true },
  // RFC 6531 §3.7.2 / Postfix: soft while another MX may have SMTPUTF8.
  'smtputf8-required': { status: '5.6.7', withServer: true, softNonFinal: true },
  'starttls-missing': { status: '4.7.4', withServer: true },
  'tls-handshake': { status: '4.7.5' },
  'tls-policy': { status: '4.7.5' },
  'tls-not-verified': { status: '4.7.5' },
  requiretls: { status: '5.7.30', withServer: true, softNonFinal: true },
  'unexpected-reply': { status: '4.7.0', withServer: true },
  'message-source': { status: '4.3.0' },
  protocol: { status: '5.5.0' },
  sasl: { status: '4.7.0', withServer: true },
  aborted: { status: '4.4.7' },
  'forwarding-loop': { status: '5.4.6' },
  mime: { status: '5.6.0' },
  'content-hook': { status: '4.3.0' },
};

export function serverLabel(s: ServerIdentity): string {
  return `${s.host}[${s.address}]`;
}

function summary(reply: Reply): ReplySummary {
  return reply.enhanced
    ? { code: reply.code, enhanced: reply.enhanced, text: reply.lines.join('\n') }
    : { code: reply.code, text: reply.lines.join('\n') };
}

function fromServer(reply: Reply, server: ServerIdentity | undefined): Pick<Described, 'diagnosticCode' | 'remoteMta' | 'reply'> {
  const d: Pick<Described, 'diagnosticCode' | 'remoteMta' | 'reply'> = {
    diagnosticCode: `smtp; ${replyText(reply)}`,
    reply: summary(reply),
  };
  if (server) d.remoteMta = `dns; ${server.host}`;
  return d;
}

/** Turn what happened into a status, Postfix's reason text and the RFC 3464 fields. */
export function describe(why: Why, server: ServerIdentity | undefined, options: DescribeOptions = {}): Described {
  const label = server ? serverLabel(server) : 'none';
  switch (why.kind) {
    case 'success': {
      const status = statusClass(why.reply.status) === '2' ? why.reply.status : '2.0.0';
      return { status, reason: replyText(why.reply), success: true, ...fromServer(why.reply, server) };
    }
    case 'reply': {
      const text = replyText(why.reply);
      let status = why.reply.status;
      if (why.command === 'AUTH') {
        if ((options.authSoftBounce ?? true) && statusClass(status) === '5') status = withClass(status, '4');
        if (statusClass(status) === '2') status = '5.5.0';
        const tag = why.cached ? 'SASL [CACHED] authentication failed' : 'SASL authentication failed';
        return { status, reason: `${tag}; server ${label} said: ${text}`, success: false, ...fromServer(why.reply, server) };
      }
      if (why.command === 'STARTTLS') {
        if (statusClass(status) === '2') status = '5.5.0';
        return {
          status,
          reason: `TLS is required, but host ${label} refused to start TLS: ${text}`,
          success: false,
          tlsFailure: { resultType: 'starttls-not-supported', detail: text },
          ...fromServer(why.reply, server),
        };
      }
      let prefix = '';
      // Postfix vsmtp_fill_dsn: a failure given a 2.x.x status (a 250 to DATA) is a protocol error.
      if (statusClass(status) === '2') {
        status = '5.5.0';
        prefix = 'Protocol error: ';
      }
      return {
        status,
        reason: `${prefix}host ${label} said: ${text} (in reply to ${why.command} command)`,
        success: false,
        ...fromServer(why.reply, server),
      };
    }
    case 'refused': {
      let status = why.reply.status;
      // smtp_skip_5xx_greeting: only the class changes; the text stays as sent.
      if (why.greeting && (options.skip5xxGreeting ?? true) && why.reply.code >= 500 && why.reply.code <= 599) {
        status = withClass(status, '4');
      }
      return { status, reason: `host ${label} refused to talk to me: ${replyText(why.reply)}`, success: false, ...fromServer(why.reply, server) };
    }
    case 'lost':
      return { status: '4.4.2', reason: `lost connection with ${label} while ${why.stage}`, success: false };
    case 'not-sent':
      // Never a final result on its own (the recipient is tried again); kept soft if it ever is.
      return { status: '4.3.0', reason: `not sent to ${label}: ${why.detail}`, success: false };
    case 'timeout':
      return { status: '4.4.2', reason: `conversation with ${label} timed out while ${why.stage}`, success: false };
    case 'connect': {
      const where = server ? (server.port !== undefined ? `${label}:${server.port}` : server.address) : 'none';
      return { status: why.status ?? '4.4.1', reason: `connect to ${where}: ${why.detail}`, success: false };
    }
    case 'lookup': {
      const d = describeLookup(why);
      if (why.forceSoft) d.status = withClass(d.status, '4');
      return d;
    }
    case 'loop': {
      if (why.noPrimaryRelay) return { status: '4.4.4', reason: `unable to find primary relay for ${why.nexthop}`, success: false };
      const status = why.greeted && !why.greeted.bestMx ? '4.4.6' : '5.4.6';
      return { status, reason: `mail for ${why.nexthop} loops back to myself`, success: false };
    }
    case 'local': {
      const l = LOCAL[why.reason];
      let reason = why.detail;
      if (why.reason === 'protocol') reason = `Protocol error: host ${label} ${why.detail}`;
      else if (why.reason === 'sasl') {
        reason = why.detail.startsWith('offered ') ? `SASL authentication failed: server ${label} ${why.detail}` : `${why.detail} (server ${label})`;
      }
      else if (why.reason === 'tls-handshake') reason = `Cannot start TLS: handshake failure (${why.detail})`;
      else if (why.reason === 'tls-not-verified') reason = `Server certificate not verified: ${why.detail} (host ${label})`;
      else if (why.reason === 'starttls-missing') reason = `TLS is required, but was not offered by host ${label}`;
      else if (l.withServer) reason = `${why.detail} ${label}`;
      const d: Described = { status: l.status, reason, success: false };
      if (l.softNonFinal) d.softNonFinal = true;
      const tlsFailure = why.tlsFailure ?? (why.reason === 'starttls-missing' ? { resultType: 'starttls-not-supported' as const, detail: 'STARTTLS not offered' } : undefined);
      if (tlsFailure) d.tlsFailure = tlsFailure;
      if (why.reply) Object.assign(d, fromServer(why.reply, server));
      return d;
    }
  }
}

function describeLookup(why: Extract<Why, { kind: 'lookup' }>): Described {
  // Postfix smtp_addr.c statuses (POSTFIX-BEHAVIOR.md §1.1).
  const base = `Host or domain name not found. Name service error for name=${why.name} type=${why.rrtype}`;
  switch (why.error) {
    case 'retry':
      return { status: '4.4.3', reason: `${base}: Host not found, try again`, success: false };
    case 'fail':
      return { status: '5.4.3', reason: `${base}: Host not found`, success: false };
    case 'inval':
      return { status: '5.4.4', reason: `${base}: Malformed or unexpected name server reply`, success: false };
    case 'notfound':
      return { status: '5.4.4', reason: `${base}: Host not found`, success: false };
    case 'nullmx':
      // RFC 7505 §4.2 says 5.1.10; Postfix uses 5.1.0. The RFC wins (DEVELOPERS.md).
      return { status: '5.1.10', reason: `Domain ${why.name} does not accept mail (nullMX)`, success: false };
  }
}
