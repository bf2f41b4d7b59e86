/**
 * MAIL FROM / RCPT TO command lines with their ESMTP parameters (RFC 5321 §4.1.1.2-3,
 * RFC 1870 SIZE, RFC 6152 BODY, RFC 3461 DSN, RFC 6531 SMTPUTF8, RFC 8689 REQUIRETLS).
 * A parameter is written only when the server announced its extension, in Postfix's order
 * (POSTFIX-BEHAVIOR.md §1.3 "MAIL FROM parameters"). Nothing with CR, LF or NUL, and
 * nothing that is not valid RFC 5321 syntax, ever comes out of here.
 */
import type { Capabilities } from './ehlo-parser.js';
import { formatMailbox, parseMailbox, type ParsedMailbox } from './address.js';
import { encodeUtf8AddrXtext, encodeXtext } from './xtext.js';

export type EncodeResult = { ok: true; line: string } | { ok: false; reason: string };

export interface MailFromParams {
  /** Octets, sent as SIZE= when the server has SIZE (RFC 1870). */
  size?: number;
  /** BODY= when the server has 8BITMIME (RFC 6152). */
  body?: '7BIT' | '8BITMIME';
  /** DSN ENVID (xtext) and RET, when the server has DSN (RFC 3461 §4.3-4.4). */
  envid?: string;
  ret?: 'FULL' | 'HDRS';
  /** The transaction needs SMTPUTF8 (RFC 6531 §3.4); sent when the server has it. */
  smtputf8?: boolean;
  /** RFC 8689 REQUIRETLS, when the server has it. */
  requireTls?: boolean;
  /** Postfix `smtp_send_dummy_mail_auth`: `AUTH=<>` when the server has AUTH. */
  dummyMailAuth?: boolean;
  /** Postfix `smtp_quote_rfc821_envelope` (default true). */
  quoteRfc821Envelope?: boolean;
}

export interface RcptToParams {
  /** RFC 3461 NOTIFY, when the server has DSN. */
  notify?: ReadonlyArray<'SUCCESS' | 'FAILURE' | 'DELAY'> | 'NEVER';
  /**
   * RFC 3461 ORCPT as `type;address` (decoded), when the server has DSN. Absent: built from the
   * address as Postfix does (`rfc822;addr`, or `utf-8;` under SMTPUTF8, RFC 6533).
   */
  orcpt?: string;
  smtputf8?: boolean;
  quoteRfc821Envelope?: boolean;
}

// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\r\n\0]/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** `MAIL FROM:<sender> [params]`, or why it cannot be sent. */
export function encodeMailFrom(sender: string, params: MailFromParams, caps: Capabilities): EncodeResult {
  const path = envelopePath(sender, 'sender', params);
  if (!path.ok) return path;
  let line = `MAIL FROM:<${path.text}>`;
  if (caps.sizeAnnounced && params.size !== undefined) {
    if (!Number.isSafeInteger(params.size) || params.size < 0) return { ok: false, reason: `bad message size ${params.size}` };
    line += ` SIZE=${params.size}`;
  }
  if (caps.eightBitMime && params.body) line += ` BODY=${params.body}`;
  if (caps.dsn) {
    if (params.envid !== undefined) {
      // RFC 3461 §4.4: ENVID is printable ASCII, at most 100 characters.
      if (!PRINTABLE_ASCII.test(params.envid) || params.envid.length === 0 || params.envid.length > 100) {
        return { ok: false, reason: 'bad DSN ENVID: it must be 1-100 printable ASCII characters' };
      }
      line += ` ENVID=${encodeXtext(params.envid)}`;
    }
    if (params.ret) line += ` RET=${params.ret}`;
  }
  if (params.smtputf8 && caps.smtputf8) line += ' SMTPUTF8';
  if (params.requireTls && caps.requireTls) line += ' REQUIRETLS';
  if (params.dummyMailAuth && caps.auth.length > 0) line += ' AUTH=<>';
  return checked(line);
}

/** `RCPT TO:<recipient> [params]`, or why it cannot be sent. */
export function encodeRcptTo(recipient: string, params: RcptToParams, caps: Capabilities): EncodeResult {
  const path = envelopePath(recipient, 'recipient', params);
  if (!path.ok) return path;
  const { parsed, text } = path;
  let line = `RCPT TO:<${text}>`;
  if (caps.dsn) {
    if (params.notify !== undefined) {
      const n = params.notify;
      if (n !== 'NEVER' && (n.length === 0 || n.some((v) => v !== 'SUCCESS' && v !== 'FAILURE' && v !== 'DELAY'))) {
        return { ok: false, reason: 'bad DSN NOTIFY value' };
      }
      line += ` NOTIFY=${n === 'NEVER' ? 'NEVER' : [...new Set(n)].join(',')}`;
    }
    const orcpt = encodeOrcpt(params.orcpt, text, parsed.utf8, params.smtputf8 ?? false);
    if (!orcpt.ok) return orcpt;
    if (orcpt.value) line += ` ORCPT=${orcpt.value}`;
  }
  return checked(line);
}

/** The address as it goes between `<` and `>`, or why it cannot go at all. */
function envelopePath(
  address: string,
  role: 'sender' | 'recipient',
  params: { smtputf8?: boolean; quoteRfc821Envelope?: boolean },
): { ok: true; parsed: ParsedMailbox; text: string } | { ok: false; reason: string } {
  const parsed = parseMailbox(address, role);
  const shown = printableForReason(address);
  if (!parsed.ok) return { ok: false, reason: `bad ${role} address <${shown}>: ${parsed.reason}` };
  if (parsed.utf8 && !params.smtputf8) return { ok: false, reason: `${role} address <${shown}> is not ASCII and SMTPUTF8 is not in use` };
  const formatted = formatMailbox(parsed, params.quoteRfc821Envelope ?? true);
  if (!formatted.ok) return { ok: false, reason: `bad ${role} address <${shown}>: ${formatted.reason}` };
  return { ok: true, parsed, text: formatted.text };
}

function encodeOrcpt(
  given: string | undefined,
  address: string,
  utf8Address: boolean,
  smtputf8: boolean,
): { ok: true; value?: string } | { ok: false; reason: string } {
  if (given === undefined) {
    if (!utf8Address) return { ok: true, value: `rfc822;${encodeXtext(address)}` };
    // Postfix: utf-8 type only under SMTPUTF8; otherwise ORCPT is left out.
    return smtputf8 ? { ok: true, value: `utf-8;${encodeUtf8AddrXtext(address)}` } : { ok: true };
  }
  const semi = given.indexOf(';');
  const type = semi > 0 ? given.slice(0, semi) : '';
  const value = given.slice(semi + 1);
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(type) || value.length === 0 || FORBIDDEN.test(value)) {
    return { ok: false, reason: 'bad DSN ORCPT: expected "type;address", e.g. rfc822;user@example.org' };
  }
  if (type.toLowerCase() === 'utf-8') return { ok: true, value: `utf-8;${encodeUtf8AddrXtext(value)}` };
  return { ok: true, value: `${type};${encodeXtext(value)}` };
}

function checked(line: string): EncodeResult {
  // Defense in depth (go-smtp validateLine): a command line never carries CR, LF or NUL.
  if (FORBIDDEN.test(line)) return { ok: false, reason: 'command would contain CR, LF or NUL' };
  return { ok: true, line };
}

function printableForReason(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f]/g, '?');
}
