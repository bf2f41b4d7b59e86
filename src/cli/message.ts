/**
 * The message `mailwire` sends: the check that a file is an RFC 5322 message at all, the small
 * test message built from --subject/--body, and --header replacement. Pure: bytes in, bytes out.
 *
 * Octets are handled as latin1 strings (one char per octet, lossless), so 8-bit content and
 * the file's line ends are kept as they are.
 */
import type { HeaderField } from './args.js';

export type MessageCheck = { ok: true } | { ok: false; reason: string };

const FIELD = /^[!-9;-~]+[ \t]*:/;

/** Lines with their line ends kept. */
function splitKeepingEnds(s: string): string[] {
  return s.match(/[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$/g) ?? [];
}

function stripEnd(line: string): string {
  return line.replace(/(?:\r\n|\n|\r)$/, '');
}

/**
 * Whether `message` looks like an RFC 5322 message: not empty, a header block of fields
 * (`Name: value`, folded lines starting with white space) that begins on the first line and
 * ends at an empty line or at the end of the message (a body is optional).
 */
export function checkMessage(message: Uint8Array): MessageCheck {
  const text = Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('latin1');
  if (text.trim() === '') return { ok: false, reason: message.length === 0 ? 'the message is empty' : 'the message has only white space' };
  const lines = splitKeepingEnds(text);
  for (let i = 0; i < lines.length; i++) {
    const line = stripEnd(lines[i]!);
    if (line === '') {
      if (i === 0) return { ok: false, reason: 'the message starts with an empty line: it has no header fields' };
      return { ok: true };
    }
    if (FIELD.test(line)) continue;
    if (i > 0 && /^[ \t]/.test(line)) continue;
    const shown = JSON.stringify(line.length > 40 ? `${line.slice(0, 40)}...` : line);
    if (i === 0) {
      if (line.startsWith('From ')) return { ok: false, reason: `line 1 is an mbox "From " separator, not a header field (${shown}); give one message without it` };
      return { ok: false, reason: `line 1 is not a header field "Name: value" (${shown}): not an RFC 5322 message` };
    }
    return { ok: false, reason: `line ${i + 1} is neither a header field nor a folded line, and no empty line before it ends the header (${shown})` };
  }
  return { ok: true }; // header fields only, no body
}

interface Field {
  /** Lower-cased field name. */
  key: string;
  /** The field with its folded lines and line ends, as latin1 octets. */
  raw: string;
}

function utf8AsLatin1(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/** Unstructured fields whose non-ASCII text is RFC 2047-encoded; others (addresses) stay UTF-8 (RFC 6532). */
const UNSTRUCTURED = new Set(['subject', 'comments']);

function fieldText(h: HeaderField, eol: string): string {
  const value = UNSTRUCTURED.has(h.name.toLowerCase()) ? encodeHeaderValue(h.value).replace(/\r\n/g, eol) : h.value;
  return utf8AsLatin1(`${h.name}: ${value}`) + eol;
}

/**
 * Replace header fields: every field named in `headers` is removed from the message, and the
 * given ones take the place of the first (or go at the end of the header block). Several
 * given fields of one name are all kept, in order. The message must pass {@link checkMessage}.
 */
export function replaceHeaders(message: Uint8Array, headers: readonly HeaderField[]): Buffer {
  const input = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  if (headers.length === 0) return input;
  const text = input.toString('latin1');
  const lines = splitKeepingEnds(text);
  const eol = /\r\n|\n|\r/.exec(text)?.[0] ?? '\r\n';
  const fields: Field[] = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (stripEnd(line) === '') break;
    if (/^[ \t]/.test(line) && fields.length > 0) {
      fields[fields.length - 1]!.raw += line;
      continue;
    }
    const colon = line.indexOf(':');
    fields.push({ key: line.slice(0, colon).trim().toLowerCase(), raw: line });
  }
  // A header-only message whose last line has no line end: give it one before adding fields.
  const last = fields[fields.length - 1];
  if (last !== undefined && !/(?:\r\n|\n|\r)$/.test(last.raw)) last.raw += eol;
  const rest = lines.slice(i).join('');
  return Buffer.from(mergeFields(fields, headers, eol).map((f) => f.raw).join('') + rest, 'latin1');
}

function mergeFields(fields: readonly Field[], headers: readonly HeaderField[], eol: string): Field[] {
  const given = new Map<string, Field[]>();
  for (const h of headers) {
    const key = h.name.toLowerCase();
    given.set(key, [...(given.get(key) ?? []), { key, raw: fieldText(h, eol) }]);
  }
  const out: Field[] = [];
  const placed = new Set<string>();
  for (const f of fields) {
    const replacement = given.get(f.key);
    if (replacement === undefined) out.push(f);
    else if (!placed.has(f.key)) {
      out.push(...replacement);
      placed.add(f.key);
    }
  }
  for (const [key, list] of given) if (!placed.has(key)) out.push(...list);
  return out;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 date-time in UTC: `Wed, 25 Nov 2026 12:00:00 +0000`. */
export function rfc5322Date(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** RFC 2047 B encoding for a header value with non-ASCII characters (encoded words of at most 75 characters). */
export function encodeHeaderValue(value: string): string {
  if (/^[\x20-\x7e\t]*$/.test(value)) return value;
  const words: string[] = [];
  let chunk = '';
  for (const ch of value) {
    // 39 octets of UTF-8 give 52 base64 characters: "=?UTF-8?B?" + 52 + "?=" = 64, so even
    // the first word stays within 78 columns after a field name like "Subject: ".
    if (Buffer.byteLength(chunk + ch, 'utf8') > 39) {
      words.push(chunk);
      chunk = '';
    }
    chunk += ch;
  }
  if (chunk !== '') words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join('\r\n ');
}

export interface BuildInput {
  /** For the From header (the envelope sender, or the default one for the null sender). */
  from: string;
  to: readonly string[];
  subject?: string | undefined;
  body?: string | undefined;
  headers?: readonly HeaderField[];
  date: Date;
  /** Without angle brackets: `id@host`. */
  messageId: string;
}

export const DEFAULT_BODY = 'This is a test mailing from mailwire.';

/** The test message sent when no --data is given: Date, Message-ID, From, To, Subject, MIME headers, body. CRLF line ends. */
export function buildMessage(input: BuildInput): Buffer {
  const date = rfc5322Date(input.date);
  const body = (input.body ?? DEFAULT_BODY).replace(/\r\n|\r|\n/g, '\r\n');
  const eightBit = /[^\x00-\x7f]/.test(body);
  const fields: HeaderField[] = [
    { name: 'Date', value: date },
    { name: 'Message-ID', value: `<${input.messageId}>` },
    { name: 'From', value: `<${input.from}>` },
    { name: 'To', value: input.to.map((t) => `<${t}>`).join(', ') },
    { name: 'Subject', value: input.subject ?? `test ${date}` },
    { name: 'MIME-Version', value: '1.0' },
    { name: 'Content-Type', value: 'text/plain; charset=utf-8' },
    { name: 'Content-Transfer-Encoding', value: eightBit ? '8bit' : '7bit' },
  ];
  const base = fields.map((f) => ({ key: f.name.toLowerCase(), raw: fieldText(f, '\r\n') }));
  const merged = mergeFields(base, input.headers ?? [], '\r\n');
  const text = merged.map((f) => f.raw).join('') + '\r\n' + utf8AsLatin1(body) + (body.endsWith('\r\n') || body === '' ? '' : '\r\n');
  return Buffer.from(text, 'latin1');
}
