/**
 * RFC 3464 §2.3 per-recipient DSN fields from a RecipientResult (DSN-11, DSN-13), with the
 * RFC 6533 §3 `utf-8` address type, and their rendering as folded header-style lines.
 *
 * Server text is made safe the way Postfix's bounce daemon does it: the lines of a multi-line
 * reply are joined with a space (as in smtp_proto.c and bounce_notify_util.c), and what is not
 * printable becomes `?` (bounce_log.c: `printable(…, '?')`), so a field is always one logical
 * line and nothing a server sends can start a new field.
 */
import { MailwireError } from '../errors.js';
import { formatMailbox, parseMailbox } from '../protocol/address.js';
import { encodeUtf8AddrXtext } from '../protocol/xtext.js';
import type { DeliveryAction, RecipientResult } from './delivery-result.js';

/** The RFC 3464 §2.3 fields of one recipient, values as they go after `Name: `. */
export interface DsnRecipientFields {
  /** §2.3.1, from the ORCPT parameter: `rfc822; a@example.org`. Only when an ORCPT was given. */
  originalRecipient?: string;
  /** §2.3.2: `rfc822; a@example.org`, or RFC 6533 `utf-8; …` for an address that is not ASCII. */
  finalRecipient: string;
  /** §2.3.3. */
  action: DeliveryAction;
  /** §2.3.4: RFC 3463 `x.y.z`. */
  status: string;
  /** §2.3.5: `dns; mx.example.org`, only when a server spoke. */
  remoteMta?: string;
  /**
   * §2.3.6: `smtp; 550 5.1.1 …` (the whole reply on one line); without a server reply,
   * mailwire's reason as `X-mailwire; …` (Postfix writes `X-Postfix; <reason>`).
   */
  diagnosticCode?: string;
  /** §2.3.7. */
  lastAttemptDate?: Date;
  /** §2.3.9: only for `delayed`. */
  willRetryUntil?: Date;
}

export interface DsnFieldsContext {
  /** The recipient's RFC 3461 ORCPT in `type;address` form (decoded, as in `Recipient.orcpt`). */
  orcpt?: string;
  lastAttemptDate?: Date;
  /** Used only when the action is `delayed` (RFC 3464 §2.3.9). */
  willRetryUntil?: Date;
  /**
   * The fields go into a `message/global-delivery-status` (RFC 6533): `utf-8` addresses
   * in the utf-8-addr-unitext form and UTF-8 kept in diagnostic text. Default false: every
   * value is 7-bit (utf-8-addr-xtext; other non-ASCII text becomes `?`).
   */
  global?: boolean;
}

/** RFC 3464 §2.3 fields for one result. Nothing in them can contain CR, LF or other controls. */
export function toDsnFields(recipient: RecipientResult, context: DsnFieldsContext = {}): DsnRecipientFields {
  const global = context.global ?? false;
  const fields: DsnRecipientFields = {
    finalRecipient: addressField(recipient.recipient, global),
    action: recipient.action,
    status: statusField(recipient),
  };
  if (context.orcpt !== undefined) {
    const o = originalRecipientField(context.orcpt, global);
    if (o !== undefined) fields.originalRecipient = o;
  }
  if (recipient.remoteMta !== undefined) {
    const m = typedField(recipient.remoteMta, 'dns', global);
    if (m !== undefined) fields.remoteMta = m;
  }
  const d =
    recipient.diagnosticCode !== undefined
      ? typedField(recipient.diagnosticCode, 'X-mailwire', global)
      : typedField(`X-mailwire; ${recipient.reason}`, 'X-mailwire', global);
  if (d !== undefined) fields.diagnosticCode = d;
  if (context.lastAttemptDate !== undefined) fields.lastAttemptDate = checkedDate(context.lastAttemptDate, 'lastAttemptDate');
  if (context.willRetryUntil !== undefined && recipient.action === 'delayed') {
    fields.willRetryUntil = checkedDate(context.willRetryUntil, 'willRetryUntil');
  }
  return fields;
}

/**
 * The fields as one RFC 3464 §2.3 per-recipient group: `Name: value` lines in the order of the
 * §2.3 ABNF, each ending in CR LF, folded (RFC 5322 §2.2.3) so that unfolding gives the value back.
 */
export function renderDsnFields(fields: DsnRecipientFields): string {
  let out = '';
  if (fields.originalRecipient !== undefined) out += foldField('Original-Recipient', fields.originalRecipient);
  out += foldField('Final-Recipient', fields.finalRecipient);
  out += foldField('Action', fields.action);
  out += foldField('Status', fields.status);
  if (fields.remoteMta !== undefined) out += foldField('Remote-MTA', fields.remoteMta);
  if (fields.diagnosticCode !== undefined) out += foldField('Diagnostic-Code', fields.diagnosticCode);
  if (fields.lastAttemptDate !== undefined) out += foldField('Last-Attempt-Date', rfc5322Date(fields.lastAttemptDate));
  if (fields.willRetryUntil !== undefined) out += foldField('Will-Retry-Until', rfc5322Date(fields.willRetryUntil));
  return out;
}

/**
 * `Name: value` CR LF, folded before white space (RFC 5322 §2.2.3) at 78 octets where it can
 * be; a run without white space longer than 998 octets (§2.1.1) is cut and continued after
 * CR LF SPACE, which adds one space to the unfolded value (Postfix `smtp_line_length_limit`).
 * The value must not contain CR or LF; use only after the caller made it safe.
 */
export function foldField(name: string, value: string): string {
  const line = value === '' ? `${name}:` : `${name}: ${value}`;
  if (/[\r\n]/.test(line)) throw new MailwireError('EOPTION', `${name}: value contains CR or LF`);
  // Pieces start where a run of white space starts; the first fold point is after `Name: `.
  const pieces: string[] = [];
  let start = 0;
  for (let i = name.length + 2; i < line.length; i++) {
    if (isWsp(line[i]!) && !isWsp(line[i - 1]!)) {
      pieces.push(line.slice(start, i));
      start = i;
    }
  }
  pieces.push(line.slice(start));
  const lines: string[] = [];
  let cur = '';
  for (const p of pieces) {
    if (cur !== '' && octets(cur) + octets(p) > 78) {
      lines.push(cur);
      cur = p;
    } else {
      cur += p;
    }
  }
  lines.push(cur);
  return lines.flatMap((l) => cutOctets(l, 998, ' ')).join('\r\n') + '\r\n';
}

/** RFC 5322 §3.3 date-time in UTC: `Tue, 1 Jul 2003 10:52:37 +0000`. */
export function rfc5322Date(date: Date): string {
  const d = checkedDate(date, 'date');
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()]!;
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()]!;
  const two = (n: number): string => String(n).padStart(2, '0');
  const year = String(d.getUTCFullYear()).padStart(4, '0');
  return `${day}, ${d.getUTCDate()} ${month} ${year} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

/**
 * Text from a server or from mailwire, made safe for one field or one text line: line breaks
 * become a space (Postfix joins reply lines with a space), other controls and broken UTF-16
 * become `?` (Postfix `printable()`), runs of white space become one space; without `utf8`,
 * non-ASCII becomes `?` too.
 */
export function dsnSafeText(text: string, utf8: boolean): string {
  let s = wellFormed(text)
    .replace(/\r\n|[\r\n\t]/g, ' ')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  if (!utf8) s = s.replace(/[^\u0000-\u007f]/gu, '?');
  return s.replace(/ {2,}/g, ' ').trim();
}

/** RFC 6533 §3 utf-8-addr-unitext: QCHAR and non-ASCII stand for themselves; the rest is `\x{HEX}`. */
export function encodeUtf8AddrUnitext(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xa0) out += ch;
    else out += encodeUtf8AddrXtext(ch);
  }
  return out;
}

/** True when the text is all ASCII (no UTF-8 needed to carry it). */
export function isAscii(text: string): boolean {
  return !/[^\u0000-\u007f]/.test(text);
}

function addressField(address: string, global: boolean): string {
  let a = wellFormed(address);
  if (a.startsWith('<') && a.endsWith('>')) a = a.slice(1, -1);
  const parsed = parseMailbox(a, 'recipient');
  if (parsed.ok) {
    const f = formatMailbox(parsed, true);
    if (f.ok) a = f.text;
  }
  if (a === '') return 'rfc822;';
  // RFC 3464 §2.1.2 / Postfix: `rfc822` for a printable ASCII address, `utf-8` otherwise.
  // An address with controls (only a rejected one can have them) takes the utf-8 form too:
  // its escapes keep it whole and on one line.
  if (/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(a)) return `rfc822; ${a}`;
  return `utf-8; ${utf8Address(a, global)}`;
}

function originalRecipientField(orcpt: string, global: boolean): string | undefined {
  const semi = orcpt.indexOf(';');
  if (semi <= 0) return undefined;
  const type = orcpt.slice(0, semi).trim();
  const value = wellFormed(orcpt.slice(semi + 1).trim());
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(type) || value === '') return undefined;
  // RFC 3464 §2.3.1: the ORCPT address-type and address (xtext-decoded). `utf-8` addresses,
  // and any value that is not printable ASCII, take the RFC 6533 escapes.
  if (type.toLowerCase() !== 'utf-8' && /^[\x20-\x7e]+$/.test(value)) return `${type}; ${value}`;
  return `utf-8; ${utf8Address(value, global)}`;
}

function utf8Address(a: string, global: boolean): string {
  return global ? encodeUtf8AddrUnitext(a) : encodeUtf8AddrXtext(a);
}

/** `type; text` with a safe text; a value without a type takes `defaultType`. */
function typedField(value: string, defaultType: string, global: boolean): string | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9-]*)\s*;([\s\S]*)$/.exec(value);
  const type = m ? m[1]! : defaultType;
  const text = dsnSafeText(m ? m[2]! : value, global);
  if (text === '') return undefined;
  return `${type}; ${text}`;
}

function statusField(r: RecipientResult): string {
  // RFC 3463 §2: class 2, 4 or 5, subject and detail of 1-3 digits.
  if (/^[245]\.\d{1,3}\.\d{1,3}$/.test(r.status)) return r.status;
  return r.action === 'failed' ? '5.0.0' : r.action === 'delayed' ? '4.0.0' : '2.0.0';
}

function checkedDate(d: Date, what: string): Date {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw new MailwireError('EOPTION', `${what} must be a valid Date`);
  return d;
}

function isWsp(c: string): boolean {
  return c === ' ' || c === '\t';
}

const utf8 = new TextEncoder();

function octets(s: string): number {
  return utf8.encode(s).length;
}

/** Lone surrogates (not valid Unicode, no UTF-8 form) become `?`. */
function wellFormed(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '?');
}

/**
 * Cut a line into pieces of at most `limit` octets at character boundaries; each piece after
 * the first starts with `continuation` (which counts toward its limit).
 */
export function cutOctets(line: string, limit: number, continuation = ''): string[] {
  if (octets(line) <= limit) return [line];
  const out: string[] = [];
  let cur = '';
  let n = 0;
  for (const ch of line) {
    const len = octets(ch);
    if (n + len > limit) {
      out.push(cur);
      cur = continuation;
      n = continuation.length;
    }
    cur += ch;
    n += len;
  }
  out.push(cur);
  return out;
}
