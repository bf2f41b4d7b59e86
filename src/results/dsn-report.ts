/**
 * A complete delivery status notification (DSN-13): RFC 6522 multipart/report with an RFC 3464
 * message/delivery-status part, or the RFC 6533 `global` types when UTF-8 is needed. Shaped like
 * Postfix's bounce(8) notices (bounce_notify_util.c): a text part, the delivery report, and the
 * returned message or its headers. When and to whom it is sent stays the caller's job.
 */
import { randomBytes } from 'node:crypto';
import { MailwireError } from '../errors.js';
import type { Envelope, Recipient } from '../envelope.js';
import { formatMailbox, parseMailbox } from '../protocol/address.js';
import { encodeContent } from '../protocol/content-encoder.js';
import { concatBytes } from '../protocol/bytes.js';
import type { DeliveryAction, DeliveryResult, RecipientResult } from './delivery-result.js';
import { cutOctets, dsnSafeText, foldField, isAscii, renderDsnFields, rfc5322Date, toDsnFields } from './dsn-fields.js';

export interface DsnOptions {
  /** Our host name, for `Reporting-MTA: dns; …`, the default From and the Message-Id. */
  reportingMta: string;
  /** Default `MAILER-DAEMON@<reportingMta>`. */
  from?: string;
  /** The envelope sender being notified. `''` (the null sender) gets no report (RFC 5321 §4.5.5). */
  to: string;
  /** The original envelope's DSN data; `to` gives each recipient's ORCPT and NOTIFY, by index. */
  envelope?: { envid?: string; ret?: 'FULL' | 'HDRS'; to?: Envelope['to'] };
  /** The original message, returned in the third part. */
  original?: string | Uint8Array;
  /** When the original entered the caller's queue (RFC 3464 §2.2.5 Arrival-Date). */
  arrivalDate?: Date;
  /** Date of the report. Default: now. */
  date?: Date;
  /** Default: generated, `<…@reportingMta>`. */
  messageId?: string;
  /** Which actions are reported. Default `['failed', 'delayed']`. */
  include?: Array<'failed' | 'delayed' | 'delivered' | 'relayed'>;
  /** Replaces the explanatory text of the first part; the per-recipient lines still follow. */
  humanText?: string;
  /** MIME boundary (for deterministic tests): 1-70 RFC 2046 bchars, no space. */
  boundary?: string;
  /** RFC 3464 §2.3.9 Will-Retry-Until for delayed recipients (Postfix: arrival + maximal_queue_lifetime). */
  willRetryUntil?: Date;
  /**
   * Postfix `bounce_size_limit` (50000): a returned message larger than this many octets is
   * returned as headers only, so the MIME structure stays whole. 0: no limit.
   */
  bounceSizeLimit?: number;
}

export interface BuiltDsn {
  /** The complete RFC 5322 message, CR LF line ends. */
  message: Uint8Array;
  /** Indexes into `result.recipients` of the recipients reported. */
  recipients: number[];
}

const SUBJECT: Record<'failed' | 'delayed' | 'success', string> = {
  failed: 'Undelivered Mail Returned to Sender',
  delayed: 'Delayed Mail (still being retried)',
  success: 'Successful Mail Delivery Report',
};

const utf8 = new TextEncoder();

/**
 * Build the report for the recipients that qualify, or undefined when none does. NOTIFY
 * (RFC 3461 §4.1): NEVER is never reported; `failed` needs FAILURE, `delayed` needs DELAY
 * (or no NOTIFY); `delivered`/`relayed` need `include` and an explicit SUCCESS that the next
 * server did not take over (DSN-3).
 */
export function buildDsn(result: DeliveryResult, options: DsnOptions): BuiltDsn | undefined {
  const reportingMta = options.reportingMta;
  if (typeof reportingMta !== 'string' || !/^[\x21-\x3a\x3c-\x7e]+$/.test(reportingMta)) {
    throw new MailwireError('EOPTION', 'reportingMta must be a host name (printable ASCII, no space or ";")');
  }
  if (options.to === '') return undefined;
  const to = `<${headerAddress(options.to, 'to')}>`;
  const fromText = options.from ?? `MAILER-DAEMON@${reportingMta}`;
  const from = fromText.includes('<') ? checkedHeaderText(fromText, 'from') : `Mail Delivery System <${headerAddress(fromText, 'from')}>`;
  const date = options.date ?? new Date();
  const messageId = options.messageId !== undefined ? checkedMessageId(options.messageId) : `<${Date.now().toString(36)}.${randomBytes(8).toString('hex')}@${reportingMta}>`;
  if (options.boundary !== undefined && !/^[0-9A-Za-z'()+_,\-./:=?]{1,70}$/.test(options.boundary)) {
    throw new MailwireError('EOPTION', 'boundary must be 1-70 RFC 2046 bchars without space');
  }

  // Which recipients qualify (RFC 3461 §4.1, Postfix bounce_diagnostic_dsn notify_filter).
  const include = new Set(options.include ?? ['failed', 'delayed']);
  const indexes: number[] = [];
  result.recipients.forEach((r, i) => {
    if (include.has(r.action) && wanted(r, recipientAt(options.envelope?.to, i)?.notify)) indexes.push(i);
  });
  if (indexes.length === 0) return undefined;
  const reported = indexes.map((i) => result.recipients[i]!);
  const hasFailed = reported.some((r) => r.action === 'failed');
  const hasDelayed = reported.some((r) => r.action === 'delayed');
  const kind = hasFailed ? 'failed' : hasDelayed ? 'delayed' : 'success';

  // RFC 3464 §2.3.7: the last attempt of this delivery is when its last server was left.
  let lastAttemptDate: Date | undefined;
  for (const a of result.attempts) {
    if (a.endedAt instanceof Date && !Number.isNaN(a.endedAt.getTime()) && (!lastAttemptDate || a.endedAt > lastAttemptDate)) lastAttemptDate = a.endedAt;
  }
  const fieldsFor = (global: boolean) =>
    indexes.map((i) => {
      const orcpt = recipientAt(options.envelope?.to, i)?.orcpt;
      return toDsnFields(result.recipients[i]!, {
        global,
        ...(orcpt !== undefined ? { orcpt } : {}),
        ...(lastAttemptDate ? { lastAttemptDate } : {}),
        ...(options.willRetryUntil ? { willRetryUntil: options.willRetryUntil } : {}),
      });
    });

  // The returned message (RFC 6522 §3 third part): bare LF / CR become CR LF and lines over
  // 998 octets (RFC 5322 §2.1.1) are cut and continued after CR LF SPACE, as Postfix's SMTP
  // client does (smtp_line_length_limit); in the header section that is a fold.
  let original: { bytes: Uint8Array; headers: Uint8Array; headersOnly: boolean } | undefined;
  if (options.original !== undefined) {
    const raw = typeof options.original === 'string' ? utf8.encode(options.original) : options.original;
    const bytes = encodeContent(raw, { lineLengthLimit: 998, dotStuff: false }).bytes;
    const limit = options.bounceSizeLimit ?? 50000;
    // Postfix returns the full message only in a failure notice (and not with RET=HDRS);
    // delay and success notices carry the headers only (bounce_warn_service.c, bounce_trace_service.c).
    const headersOnly = kind !== 'failed' || options.envelope?.ret === 'HDRS' || (limit > 0 && bytes.length > limit);
    original = { bytes, headers: headerSection(bytes), headersOnly };
  }

  // RFC 6533: the global types when an address or the returned header section needs UTF-8
  // (Postfix: when the original asked for SMTPUTF8). Server text that is UTF-8 counts too,
  // so it is carried rather than masked.
  const asciiFields = fieldsFor(false);
  const unicodeFields = fieldsFor(true);
  const global =
    unicodeFields.some((f) => !isAscii(renderDsnFields(f))) ||
    !isAscii(options.to) ||
    !isAscii(from) ||
    (original !== undefined && original.headers.some((b) => b >= 0x80));
  const fields = global ? unicodeFields : asciiFields;

  // Part 1: text/plain in the manner of Postfix's bounce templates (own wording).
  const text = humanPart(options, reportingMta, reported, hasFailed, hasDelayed, original);
  const textBytes = utf8.encode(text);
  const textIs8bit = !isAscii(text);

  // Part 2: RFC 3464 §2.2 per-message fields, then one §2.3 group per recipient.
  let status = foldField('Reporting-MTA', `dns; ${reportingMta}`);
  if (options.envelope?.envid !== undefined && options.envelope.envid !== '') {
    // §2.2.1: the ENVID as given (mailwire keeps it xtext-decoded); made printable.
    status += foldField('Original-Envelope-Id', dsnSafeText(options.envelope.envid, false));
  }
  if (options.arrivalDate !== undefined) status += foldField('Arrival-Date', rfc5322Date(options.arrivalDate));
  for (const f of fields) status += '\r\n' + renderDsnFields(f);
  const statusBytes = utf8.encode(status);
  const statusIs8bit = !isAscii(status);

  // Part 3.
  let third: { type: string; description: string; body: Uint8Array; eightBit: boolean } | undefined;
  if (original) {
    const body = original.headersOnly ? original.headers : original.bytes;
    const type = original.headersOnly ? (global ? 'message/global-headers' : 'text/rfc822-headers') : global ? 'message/global' : 'message/rfc822';
    const description = `${kind === 'success' ? '' : 'Undelivered '}${original.headersOnly ? 'Message Headers' : 'Message'}`;
    third = { type, description, body, eightBit: body.some((b) => b >= 0x80) };
  }

  const bodies = [textBytes, statusBytes, ...(third ? [third.body] : [])];
  const boundary = chooseBoundary(options.boundary, bodies);
  const any8bit = textIs8bit || statusIs8bit || (third?.eightBit ?? false);

  // RFC 6522 §3: report-type is the subtype of the second part (so `global-delivery-status` with RFC 6533).
  const reportType = global ? 'global-delivery-status' : 'delivery-status';
  let head = '';
  head += foldField('From', from);
  head += foldField('To', to);
  head += foldField('Subject', SUBJECT[kind]);
  head += foldField('Date', rfc5322Date(date));
  head += foldField('Message-Id', messageId);
  // RFC 3834 §5: a response to a message (Postfix: auto-replied; auto-generated for postmaster copies).
  head += 'Auto-Submitted: auto-replied\r\n';
  head += 'MIME-Version: 1.0\r\n';
  head += `Content-Type: multipart/report; report-type=${reportType};\r\n\tboundary="${boundary}"\r\n`;
  if (any8bit) head += 'Content-Transfer-Encoding: 8bit\r\n';
  head += '\r\nThis is a MIME-encapsulated delivery status notification.\r\n';

  const chunks: Uint8Array[] = [utf8.encode(head)];
  const part = (headers: string, body: Uint8Array) => {
    chunks.push(utf8.encode(`\r\n--${boundary}\r\n${headers}\r\n`), body);
  };
  part(
    `Content-Description: Notification\r\nContent-Type: text/plain; charset=${textIs8bit ? 'utf-8' : 'us-ascii'}\r\n` +
      (textIs8bit ? 'Content-Transfer-Encoding: 8bit\r\n' : ''),
    textBytes,
  );
  part(
    `Content-Description: Delivery report\r\nContent-Type: message/${global ? 'global-' : ''}delivery-status\r\n` +
      (statusIs8bit ? 'Content-Transfer-Encoding: 8bit\r\n' : ''),
    statusBytes,
  );
  if (third) {
    part(`Content-Description: ${third.description}\r\nContent-Type: ${third.type}\r\n` + (third.eightBit ? 'Content-Transfer-Encoding: 8bit\r\n' : ''), third.body);
  }
  chunks.push(utf8.encode(`\r\n--${boundary}--\r\n`));
  return { message: concatBytes(...chunks), recipients: indexes };
}

/** RFC 3461 §4.1 NOTIFY filter (Postfix: no NOTIFY reports failures and delays). */
function wanted(r: RecipientResult, notify: Recipient['notify']): boolean {
  if (notify === 'NEVER') return false;
  const given = Array.isArray(notify) && notify.length > 0;
  switch (r.action) {
    case 'failed':
      return !given || notify.includes('FAILURE');
    case 'delayed':
      return !given || notify.includes('DELAY');
    case 'delivered':
    case 'relayed':
      // DSN-3: a server that announced DSN took SUCCESS over; it will report itself.
      return given && notify.includes('SUCCESS') && r.successNotifyHandedOff !== true;
  }
}

function recipientAt(to: Envelope['to'] | undefined, i: number): Recipient | undefined {
  const r = to?.[i];
  return typeof r === 'object' && r !== null ? r : undefined;
}

function humanPart(
  options: DsnOptions,
  host: string,
  reported: RecipientResult[],
  hasFailed: boolean,
  hasDelayed: boolean,
  original: { headersOnly: boolean } | undefined,
): string {
  const lines: string[] = [];
  if (options.humanText !== undefined) {
    lines.push(...options.humanText.replace(/\r\n?/g, '\n').replace(/\n$/, '').split('\n'));
  } else {
    lines.push(`This is the mail system at host ${host}.`, '');
    if (hasFailed) {
      lines.push(
        'Your message could not be delivered to one or more of its recipients,',
        'and the mail system has given up on them. The reasons are listed below.',
        '',
      );
    }
    if (hasDelayed) {
      const until = options.willRetryUntil ? ` until ${rfc5322Date(options.willRetryUntil)}` : '';
      if (hasFailed) {
        lines.push(`Delivery to the other recipients below is only delayed: the mail system`, `keeps trying${until}, and you need not send it to them again.`);
      } else {
        lines.push(
          'This is a warning only; you do not need to send your message again.',
          '',
          'Delivery to the recipients below is delayed. The mail system keeps',
          `trying${until}, and will tell you if it gives up.`,
        );
      }
      lines.push('');
    }
    if (reported.some((r) => r.action === 'delivered' || r.action === 'relayed')) {
      lines.push(
        'Your message reached the destinations marked as delivered or relayed',
        'below. After a delivery to a mailbox nothing more will be reported; a',
        'system further along may still report problems after a relay.',
        '',
      );
    }
    if (original) lines.push(original.headersOnly ? 'The headers of your message are attached.' : 'Your message is attached.', '');
    lines.push(`If you need help, write to the postmaster of ${host} and include this`, 'report.', '', '                   The mail system');
  }
  // Postfix bounce_recipient_log: "<address>: reason", wrapped at 79 columns, indent 4.
  const mixed = new Set(reported.map((r) => r.action)).size > 1;
  const order: DeliveryAction[] = ['failed', 'delayed', 'delivered', 'relayed'];
  const heading: Record<DeliveryAction, string> = {
    failed: 'Failed (not retried):',
    delayed: 'Delayed (still being retried):',
    delivered: 'Delivered:',
    relayed: 'Relayed:',
  };
  for (const action of order) {
    const group = reported.filter((r) => r.action === action);
    if (group.length === 0) continue;
    if (mixed) lines.push('', heading[action]);
    for (const r of group) {
      lines.push('', ...wrap(`<${dsnSafeText(r.recipient, true)}>: ${dsnSafeText(r.reason, true)}`, 79, 4));
    }
  }
  return lines.flatMap((l) => cutOctets(l, 998)).join('\r\n') + '\r\n';
}

/** Postfix line_wrap(): fill to `width` at spaces; continuation lines indented. */
function wrap(text: string, width: number, indent: number): string[] {
  const words = text.split(' ');
  const out: string[] = [];
  let cur = '';
  for (const w of words) {
    if (cur === '') cur = w;
    else if ([...cur].length + 1 + [...w].length > width) {
      out.push(cur);
      cur = ' '.repeat(indent) + w;
    } else cur += ' ' + w;
  }
  out.push(cur);
  return out;
}


/** The header section of a CR LF message: up to and including the CR LF before the empty line. */
function headerSection(bytes: Uint8Array): Uint8Array {
  if (bytes[0] === 0x0d && bytes[1] === 0x0a) return bytes.subarray(0, 0);
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 0x0d && bytes[i + 1] === 0x0a && bytes[i + 2] === 0x0d && bytes[i + 3] === 0x0a) return bytes.subarray(0, i + 2);
  }
  return bytes;
}

/** RFC 2046 §5.1.1: the delimiter must not occur in any part; a given one that does is an error. */
function chooseBoundary(given: string | undefined, bodies: Uint8Array[]): string {
  for (;;) {
    const b = given ?? `=_mailwire.${randomBytes(12).toString('hex')}`;
    const delim = utf8.encode(`--${b}`);
    if (!bodies.some((body) => startsLine(body, delim))) return b;
    if (given !== undefined) throw new MailwireError('EOPTION', 'boundary occurs in the report content');
  }
}

function startsLine(body: Uint8Array, delim: Uint8Array): boolean {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let at = buf.indexOf(delim);
  while (at !== -1) {
    if (at === 0 || buf[at - 1] === 0x0a) return true;
    at = buf.indexOf(delim, at + 1);
  }
  return false;
}

function headerAddress(address: string, what: string): string {
  if (typeof address !== 'string') throw new MailwireError('EOPTION', `${what} must be a string`);
  const parsed = parseMailbox(address, 'recipient');
  if (!parsed.ok) throw new MailwireError('EOPTION', `${what}: ${parsed.reason}`);
  const f = formatMailbox(parsed, true);
  if (!f.ok) throw new MailwireError('EOPTION', `${what}: ${f.reason}`);
  return f.text;
}

function checkedHeaderText(text: string, what: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(text)) throw new MailwireError('EOPTION', `${what} contains a control character`);
  return text;
}

function checkedMessageId(id: string): string {
  const v = id.startsWith('<') ? id : `<${id}>`;
  if (!/^<[^\s<>]+@[^\s<>]+>$/.test(v) || !isAscii(v)) throw new MailwireError('EOPTION', 'messageId must be id-left@id-right (RFC 5322 §3.6.4)');
  return v;
}

