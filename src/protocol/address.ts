/**
 * RFC 5321 §4.1.2 mailbox syntax: validation and quoting of envelope addresses
 * (Postfix `smtp_quote_rfc821_envelope`, smtp_misc.c:smtp_quote_821_address), with the
 * RFC 6531 UTF-8 extension of local parts and domains.
 */

export interface ParsedMailbox {
  /** The local part, unquoted (Postfix's internal form). */
  local: string;
  /** The domain, or an address literal with its brackets; '' only for `postmaster` and `<>`. */
  domain: string;
  /** True when the address has non-ASCII characters (needs SMTPUTF8, RFC 6531). */
  utf8: boolean;
}

export type MailboxResult = ({ ok: true } & ParsedMailbox) | { ok: false; reason: string };

const ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~";
const DOT_STRING_ASCII = new RegExp(`^[${ATEXT}]+(\\.[${ATEXT}]+)*$`);
// RFC 6531 §3.3: atext also takes UTF8-non-ascii.
const DOT_STRING_UTF8 = new RegExp(`^[${ATEXT}\\u0080-\\u{10FFFF}]+(\\.[${ATEXT}\\u0080-\\u{10FFFF}]+)*$`, 'u');
/** Letters, digits and hyphens, 1..63 per label, no hyphen at a label's ends (RFC 1035 §2.3.1). */
const LDH = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const LDH_LABEL = new RegExp(`^${LDH}$`);
/** A whole domain of such labels: the common case, checked in one pass. */
const LDH_DOMAIN = new RegExp(`^${LDH}(?:\\.${LDH})*$`);
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\u0000-\u007f]/;

/**
 * Split and check an envelope address. Accepts the internal form (`john doe@example.org`)
 * and the quoted form (`"john doe"@example.org`), with or without one pair of angle brackets.
 */
export function parseMailbox(address: string, role: 'sender' | 'recipient'): MailboxResult {
  let a = address;
  if (a.startsWith('<') && a.endsWith('>')) a = a.slice(1, -1);
  if (CONTROL.test(a)) return { ok: false, reason: 'address contains a control character (CR, LF, NUL or other)' };
  if (!isWellFormed(a)) return { ok: false, reason: 'address is not valid Unicode' };
  if (a === '') {
    return role === 'sender' ? { ok: true, local: '', domain: '', utf8: false } : { ok: false, reason: 'empty recipient address' };
  }
  let local: string;
  let domain: string;
  if (a.startsWith('"')) {
    const q = unquote(a);
    if (!q) return { ok: false, reason: 'unterminated or malformed quoted local part' };
    local = q.local;
    if (q.rest === '') {
      domain = '';
    } else if (q.rest.startsWith('@')) {
      domain = q.rest.slice(1);
    } else {
      return { ok: false, reason: 'text after the quoted local part' };
    }
  } else {
    const at = a.lastIndexOf('@');
    if (at === -1) {
      local = a;
      domain = '';
    } else {
      local = a.slice(0, at);
      domain = a.slice(at + 1);
    }
  }
  if (domain === '') {
    // RFC 5321 §4.1.1.3: RCPT TO:<Postmaster> needs no domain. Nothing else may omit it.
    if (role === 'recipient' && local.toLowerCase() === 'postmaster' && !a.includes('@')) {
      return { ok: true, local, domain: '', utf8: false };
    }
    return { ok: false, reason: 'address has no domain' };
  }
  const domainProblem = checkDomain(domain);
  if (domainProblem) return { ok: false, reason: domainProblem };
  if (local.length === 0 && !a.startsWith('"')) return { ok: false, reason: 'empty local part' };
  return { ok: true, local, domain, utf8: NON_ASCII.test(local) || NON_ASCII.test(domain) };
}

/**
 * The address as it goes inside `<…>` on the wire. The local part is quoted when it is not
 * a Dot-string (RFC 5321 §4.1.2), escaping `"` and `\`; with `quote === false` it is sent as
 * is (Postfix `smtp_quote_rfc821_envelope = no`) and must then be a Dot-string already.
 */
export function formatMailbox(m: ParsedMailbox, quote = true): { ok: true; text: string } | { ok: false; reason: string } {
  if (m.local === '' && m.domain === '') return { ok: true, text: '' };
  const dotString = (m.utf8 ? DOT_STRING_UTF8 : DOT_STRING_ASCII).test(m.local);
  let local = m.local;
  if (!dotString) {
    if (!quote) return { ok: false, reason: 'local part needs quoting but quoteRfc821Envelope is off' };
    local = '"' + m.local.replace(/["\\]/g, '\\$&') + '"';
  }
  return { ok: true, text: m.domain === '' ? local : `${local}@${m.domain}` };
}

function unquote(a: string): { local: string; rest: string } | undefined {
  let local = '';
  for (let i = 1; i < a.length; i++) {
    const c = a[i]!;
    if (c === '\\') {
      if (i + 1 >= a.length) return undefined;
      local += a[++i];
    } else if (c === '"') {
      return { local, rest: a.slice(i + 1) };
    } else {
      local += c;
    }
  }
  return undefined;
}

/** A problem with an RFC 5321 Domain or address-literal (RFC 6531: U-labels allowed), or undefined. */
export function checkDomain(domain: string): string | undefined {
  if (domain.startsWith('[')) {
    if (!domain.endsWith(']')) return 'malformed address literal';
    const inner = domain.slice(1, -1);
    if (isIPv4(inner)) return undefined;
    const colon = inner.indexOf(':');
    if (colon > 0) {
      const tag = inner.slice(0, colon);
      const rest = inner.slice(colon + 1);
      if (tag.toLowerCase() === 'ipv6') return isIPv6(rest) ? undefined : 'malformed IPv6 address literal';
      // General-address-literal (RFC 5321 §4.1.3): Standardized-tag ":" 1*dcontent
      if (/^[A-Za-z0-9-]*[A-Za-z0-9]$/.test(tag) && /^[\x21-\x5a\x5e-\x7e]+$/.test(rest)) return undefined;
    }
    return 'malformed address literal';
  }
  if (domain.length > 255) return 'domain name is longer than 255 octets';
  if (LDH_DOMAIN.test(domain)) return undefined; // the common case, in one pass
  for (const label of domain.split('.')) {
    if (label.length === 0) return 'domain has an empty label';
    if (NON_ASCII.test(label)) {
      // RFC 6531 U-label: no ASCII other than letters, digits and hyphens.
      if (/[\u0000-\u002c\u002e\u002f\u003a-\u0040\u005b-\u0060\u007b-\u007f]/.test(label)) return 'domain has an invalid character';
      if (label.startsWith('-') || label.endsWith('-')) return 'domain label starts or ends with a hyphen';
      continue;
    }
    if (label.length > 63) return 'domain label is longer than 63 octets';
    if (!LDH_LABEL.test(label)) return 'domain has an invalid character or label';
  }
  return undefined;
}

export function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/.test(p));
}

export function isIPv6(s: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(s)) return false;
  let groups = s.split(':');
  const last = groups[groups.length - 1]!;
  let extra = 0;
  if (last.includes('.')) {
    if (!isIPv4(last)) return false;
    groups = groups.slice(0, -1);
    extra = 2;
  }
  const dbl = s.indexOf('::');
  if (dbl !== -1 && s.indexOf('::', dbl + 1) !== -1) return false;
  const hex = /^[0-9A-Fa-f]{1,4}$/;
  if (dbl === -1) return groups.length + extra === 8 && groups.every((g) => hex.test(g));
  const [head, tail] = s.split('::') as [string, string];
  const h = head === '' ? [] : head.split(':');
  let t = tail === '' ? [] : tail.split(':');
  if (extra) t = t.slice(0, -1);
  if (![...h, ...t].every((g) => hex.test(g))) return false;
  return h.length + t.length + extra <= 7;
}

function isWellFormed(s: string): boolean {
  // Lone surrogates cannot be sent as UTF-8.
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}
