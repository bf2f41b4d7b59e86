/**
 * DNS messages (RFC 1035 §4, EDNS0 RFC 6891, DNSSEC header bits RFC 4035 §3.2): encode and
 * decode, no I/O. The decoder is total: for any input it either returns a message or throws
 * a `DnsError` with code `EBADRESP` (never a RangeError or TypeError). Name compression
 * pointers must point backwards and names stay within 255 octets, so no input loops.
 *
 * Names are text in master-file form without the trailing dot ('' is the root): bytes
 * outside `!`..`~` and the characters `.` and `\` inside a label are written as `\DDD` or
 * `\.`/`\\` escapes, so every wire name has exactly one text form and back.
 */

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  DNAME: 39,
  OPT: 41,
  TLSA: 52,
} as const;

export const CLASS_IN = 1;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

/** Error codes as Node's dns module uses them, so that one classifier serves both. */
export type DnsErrorCode =
  | 'ENOTFOUND'
  | 'ENODATA'
  | 'ESERVFAIL'
  | 'EREFUSED'
  | 'ENOTIMP'
  | 'EFORMERR'
  | 'EBADRESP'
  | 'ETIMEOUT'
  | 'ECANCELLED'
  | 'EBADNAME'
  | 'ECONNREFUSED';

/** A DNS failure: `code` as in Node's dns module; `hostname` and `syscall` set by the resolver. */
export class DnsError extends Error {
  readonly code: DnsErrorCode;
  hostname?: string;
  syscall?: string;
  constructor(code: DnsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = code === 'ECANCELLED' ? 'AbortError' : 'DnsError';
    this.code = code;
  }
}

const bad = (why: string): DnsError => new DnsError('EBADRESP', `malformed DNS message: ${why}`);
const badName = (name: string, why: string): DnsError => new DnsError('EBADNAME', `bad domain name ${JSON.stringify(name)}: ${why}`);

// ---------------------------------------------------------------------------------------------
// Message shape

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

export type RecordData =
  | { kind: 'address'; address: string } // A, AAAA: textual address (IPv6 compressed as Node does)
  | { kind: 'name'; name: string } // CNAME, NS, PTR, DNAME
  | { kind: 'mx'; priority: number; exchange: string }
  | { kind: 'txt'; strings: Uint8Array[] } // the character-strings, raw
  | { kind: 'tlsa'; usage: number; selector: number; matchingType: number; data: Uint8Array }
  | { kind: 'raw'; bytes: Uint8Array }; // every other type (SOA names are not decompressed)

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: RecordData;
}

/** The OPT pseudo-record, taken out of the additional section. */
export interface Edns {
  udpSize: number;
  version: number;
  /** DNSSEC OK. */
  do: boolean;
  /** The upper 8 bits of the 12-bit rcode, as sent. */
  extendedRcode: number;
  /** The options, raw (code/length/value triples). */
  options: Uint8Array;
}

export interface DnsMessage {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  /** Authentic Data: a validating resolver checked the answer with DNSSEC. */
  ad: boolean;
  cd: boolean;
  /** The full rcode: the header's 4 bits plus EDNS's extended bits. */
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
  edns?: Edns;
}

// ---------------------------------------------------------------------------------------------
// Names

/** ASCII-only lower case (names compare case-insensitively in ASCII only, RFC 4343). */
export function lowerName(name: string): string {
  return name.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

export function sameName(a: string, b: string): boolean {
  return a.length === b.length && lowerName(a) === lowerName(b);
}

/**
 * Text → labels (each a byte array). A trailing dot is optional; '.' is the root. Rejects,
 * with `EBADNAME`: '', empty labels, a label over 63 octets, a name over 255 octets on the
 * wire (253 characters without escapes), non-ASCII (callers give A-labels), control
 * characters and space (write them as `\DDD`), bad escapes.
 */
export function nameToLabels(name: string): Uint8Array[] {
  if (typeof name !== 'string') throw new DnsError('EBADNAME', `bad domain name: a ${typeof name}, not a string`);
  if (name === '') throw badName(name, 'empty');
  if (name === '.') return [];
  const labels: Uint8Array[] = [];
  let label: number[] = [];
  let wire = 1;
  const endLabel = (): void => {
    if (label.length === 0) throw badName(name, 'empty label');
    if (label.length > 63) throw badName(name, 'label longer than 63 octets');
    wire += label.length + 1;
    labels.push(Uint8Array.from(label));
    label = [];
  };
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) {
      endLabel();
      continue;
    }
    if (c === 0x5c) {
      const d = name.slice(i + 1, i + 4);
      if (/^[0-9]{3}$/.test(d)) {
        const v = Number(d);
        if (v > 255) throw badName(name, 'escape \\DDD over 255');
        label.push(v);
        i += 3;
      } else {
        const n = name.charCodeAt(i + 1);
        if (Number.isNaN(n) || n < 0x20 || n > 0x7e || (n >= 0x30 && n <= 0x39)) throw badName(name, 'bad escape');
        label.push(n);
        i += 1;
      }
      continue;
    }
    if (c > 0x7e) throw badName(name, 'not ASCII (give IDN names as A-labels, xn--...)');
    if (c <= 0x20) throw badName(name, 'control character or space');
    label.push(c);
  }
  if (label.length > 0) endLabel(); // no trailing dot
  if (wire > 255) throw badName(name, 'longer than 255 octets (253 characters)');
  return labels;
}

/** The canonical text form (escapes normalized, no trailing dot, case kept). */
export function normalizeName(name: string): string {
  return labelsToText(nameToLabels(name));
}

function labelToText(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (b === 0x2e || b === 0x5c) s += '\\' + String.fromCharCode(b);
    else if (b > 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\' + String(b).padStart(3, '0');
  }
  return s;
}

function labelsToText(labels: Uint8Array[]): string {
  return labels.map((l) => labelToText(l, 0, l.length)).join('.');
}

// ---------------------------------------------------------------------------------------------
// Addresses

export function formatIPv4(b: Uint8Array, at = 0): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/**
 * 16 octets → text the way Node's dns module prints AAAA answers (libuv's inet_ntop6, from
 * BIND): lower-case hex, the longest run of two or more zero groups (the first of equals)
 * as '::', IPv4-mapped and IPv4-compatible addresses with a dotted quad tail.
 */
export function formatIPv6(b: Uint8Array, at = 0): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[at + 2 * i]! << 8) | b[at + 2 * i + 1]!);
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (w[i] === 0) {
      if (curBase === -1) {
        curBase = i;
        curLen = 1;
      } else curLen++;
    } else if (curBase !== -1) {
      if (curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (curBase !== -1 && curLen > bestLen) {
    bestBase = curBase;
    bestLen = curLen;
  }
  if (bestLen < 2) bestBase = -1;
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) s += ':';
      continue;
    }
    if (i !== 0) s += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 7 && w[7] !== 0x0001) || (bestLen === 5 && w[5] === 0xffff))) {
      s += formatIPv4(b, at + 12);
      break;
    }
    s += w[i]!.toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) s += ':';
  return s;
}

/** Dotted quad → 4 octets, or undefined. */
export function parseIPv4(text: string): Uint8Array | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const v = Number(m[i + 1]);
    if (v > 255) return undefined;
    out[i] = v;
  }
  return out;
}

/** IPv6 text (with '::' and an optional dotted-quad tail, no zone) → 16 octets, or undefined. */
export function parseIPv6(text: string): Uint8Array | undefined {
  let head = text;
  let tail4: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(':');
  if (lastColon !== -1 && text.includes('.', lastColon)) {
    tail4 = parseIPv4(text.slice(lastColon + 1));
    if (!tail4) return undefined;
    head = text.slice(0, lastColon + 1);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const groupsWanted = tail4 ? 6 : 8;
  const parseGroups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[] | undefined;
  const dbl = head.indexOf('::');
  if (dbl !== -1) {
    if (head.indexOf('::', dbl + 1) !== -1) return undefined;
    const left = parseGroups(head.slice(0, dbl));
    const right = parseGroups(head.slice(dbl + 2));
    if (!left || !right || left.length + right.length > groupsWanted - 1) return undefined;
    groups = [...left, ...new Array<number>(groupsWanted - left.length - right.length).fill(0), ...right];
  } else {
    groups = parseGroups(head);
    if (!groups || groups.length !== groupsWanted) return undefined;
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  if (tail4) out.set(tail4, 12);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

class Reader {
  constructor(
    readonly buf: Uint8Array,
    public pos = 0,
  ) {}
  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw bad(`truncated ${what}`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return ((b[p]! << 24) >>> 0) + (b[p + 1]! << 16) + (b[p + 2]! << 8) + b[p + 3]!;
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /** A possibly compressed name; pointers must point before themselves (so no loops). */
  name(): string {
    const buf = this.buf;
    let pos = this.pos;
    let end = -1;
    let wire = 0;
    let jumps = 0;
    const parts: string[] = [];
    for (;;) {
      if (pos >= buf.length) throw bad('truncated name');
      const len = buf[pos]!;
      if ((len & 0xc0) === 0xc0) {
        if (pos + 1 >= buf.length) throw bad('truncated compression pointer');
        const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
        if (target >= pos) throw bad('compression pointer does not point backwards');
        if (++jumps > 64) throw bad('too many compression pointers');
        if (end === -1) end = pos + 2;
        pos = target;
        continue;
      }
      if ((len & 0xc0) !== 0) throw bad('unknown label type');
      wire += len + 1;
      if (wire > 255) throw bad('name longer than 255 octets');
      if (len === 0) {
        if (end === -1) end = pos + 1;
        break;
      }
      if (pos + 1 + len > buf.length) throw bad('truncated label');
      parts.push(labelToText(buf, pos + 1, pos + 1 + len));
      pos += 1 + len;
    }
    this.pos = end;
    return parts.join('.');
  }
}

function decodeQuestion(r: Reader): DnsQuestion {
  const name = r.name();
  const type = r.u16('question type');
  const cls = r.u16('question class');
  return { name, type, class: cls };
}

function decodeRecord(r: Reader): DnsRecord & { edns?: Edns } {
  const name = r.name();
  const type = r.u16('record type');
  const cls = r.u16('record class');
  const ttl = r.u32('record TTL');
  const rdlength = r.u16('record data length');
  r.need(rdlength, 'record data');
  const start = r.pos;
  const end = start + rdlength;
  const exact = (what: string): void => {
    if (r.pos !== end) throw bad(`${what} record data length mismatch`);
  };
  let data: RecordData;
  switch (type) {
    case TYPE.A:
      if (rdlength !== 4) throw bad('A record data is not 4 octets');
      data = { kind: 'address', address: formatIPv4(r.buf, start) };
      r.pos = end;
      break;
    case TYPE.AAAA:
      if (rdlength !== 16) throw bad('AAAA record data is not 16 octets');
      data = { kind: 'address', address: formatIPv6(r.buf, start) };
      r.pos = end;
      break;
    case TYPE.CNAME:
    case TYPE.NS:
    case TYPE.PTR:
    case TYPE.DNAME: {
      const sub = new Reader(r.buf.subarray(0, end), start);
      data = { kind: 'name', name: sub.name() };
      r.pos = sub.pos;
      exact('name');
      break;
    }
    case TYPE.MX: {
      const sub = new Reader(r.buf.subarray(0, end), start);
      const priority = sub.u16('MX preference');
      data = { kind: 'mx', priority, exchange: sub.name() };
      r.pos = sub.pos;
      exact('MX');
      break;
    }
    case TYPE.TXT: {
      const strings: Uint8Array[] = [];
      while (r.pos < end) {
        const n = r.buf[r.pos++]!;
        if (r.pos + n > end) throw bad('TXT character-string overruns its record');
        strings.push(r.buf.slice(r.pos, r.pos + n));
        r.pos += n;
      }
      data = { kind: 'txt', strings };
      break;
    }
    case TYPE.TLSA:
      if (rdlength < 3) throw bad('TLSA record data shorter than 3 octets');
      data = {
        kind: 'tlsa',
        usage: r.buf[start]!,
        selector: r.buf[start + 1]!,
        matchingType: r.buf[start + 2]!,
        data: r.buf.slice(start + 3, end),
      };
      r.pos = end;
      break;
    default:
      data = { kind: 'raw', bytes: r.buf.slice(start, end) };
      r.pos = end;
  }
  const rec: DnsRecord & { edns?: Edns } = { name, type, class: cls, ttl, data };
  if (type === TYPE.OPT) {
    if (name !== '') throw bad('OPT record not owned by the root');
    rec.edns = {
      udpSize: cls,
      extendedRcode: ttl >>> 24,
      version: (ttl >>> 16) & 0xff,
      do: (ttl & 0x8000) !== 0,
      options: (data as { bytes: Uint8Array }).bytes,
    };
  }
  return rec;
}

/** The header's first 12 octets and the first question, if any: enough to tell whose answer it is. */
export function decodeHeaderAndQuestion(buf: Uint8Array): { id: number; qr: boolean; opcode: number; rcode: number; question?: DnsQuestion } {
  if (buf.length < 12) throw bad('truncated header');
  const r = new Reader(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
  const id = r.u16('header');
  const flags = r.u16('header');
  const qdcount = r.u16('header');
  r.pos = 12;
  const head = { id, qr: (flags & 0x8000) !== 0, opcode: (flags >> 11) & 0xf, rcode: flags & 0xf };
  return qdcount > 0 ? { ...head, question: decodeQuestion(r) } : head;
}

/** Bytes → message. Throws `DnsError` EBADRESP, and nothing else, for any malformed input. */
export function decodeMessage(input: Uint8Array): DnsMessage {
  // A plain Uint8Array view, so that slice() copies (Buffer's slice() would share the memory).
  const buf = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const r = new Reader(buf);
  if (buf.length < 12) throw bad('truncated header');
  const id = r.u16('header');
  const flags = r.u16('header');
  const qd = r.u16('header');
  const an = r.u16('header');
  const ns = r.u16('header');
  const ar = r.u16('header');
  const msg: DnsMessage = {
    id,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    ad: (flags & 0x0020) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: flags & 0xf,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  };
  // Each entry takes at least 5 (question) or 11 (record) octets: reject absurd counts early.
  if (qd * 5 + (an + ns + ar) * 11 > buf.length - 12) throw bad('section counts exceed the message');
  for (let i = 0; i < qd; i++) msg.questions.push(decodeQuestion(r));
  for (const [count, list] of [
    [an, msg.answers],
    [ns, msg.authorities],
    [ar, msg.additionals],
  ] as const) {
    for (let i = 0; i < count; i++) {
      const rec = decodeRecord(r);
      if (rec.edns) {
        if (list !== msg.additionals) throw bad('OPT record outside the additional section');
        if (msg.edns) throw bad('more than one OPT record');
        msg.edns = rec.edns;
        msg.rcode |= rec.edns.extendedRcode << 4;
        continue;
      }
      list.push(rec);
    }
  }
  return msg;
}

// ---------------------------------------------------------------------------------------------
// Encoding

export interface RecordInput {
  name: string;
  type: number;
  class?: number;
  ttl?: number;
  /** Typed data, or the raw RDATA octets. */
  data: RecordData | Uint8Array;
}

export interface MessageInput {
  id: number;
  qr?: boolean;
  opcode?: number;
  aa?: boolean;
  tc?: boolean;
  rd?: boolean;
  ra?: boolean;
  ad?: boolean;
  cd?: boolean;
  /** Up to 12 bits; the upper 8 go into the OPT record (which `edns` must then be given for). */
  rcode?: number;
  questions?: DnsQuestion[];
  answers?: RecordInput[];
  authorities?: RecordInput[];
  additionals?: RecordInput[];
  edns?: { udpSize?: number; version?: number; do?: boolean; options?: Uint8Array };
  /** Compress names (default true). */
  compress?: boolean;
}

class Writer {
  private buf = new Uint8Array(512);
  len = 0;
  private readonly names = new Map<string, number>();
  constructor(private readonly compress: boolean) {}
  private grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  u8(v: number): void {
    this.grow(1);
    this.buf[this.len++] = v & 0xff;
  }
  u16(v: number): void {
    this.grow(2);
    this.buf[this.len++] = (v >> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
  }
  u32(v: number): void {
    this.u16((v >>> 16) & 0xffff);
    this.u16(v & 0xffff);
  }
  bytes(b: Uint8Array): void {
    this.grow(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  setU16(at: number, v: number): void {
    this.buf[at] = (v >> 8) & 0xff;
    this.buf[at + 1] = v & 0xff;
  }
  name(text: string, compress = this.compress): void {
    const labels = nameToLabels(text === '' ? '.' : text);
    for (let i = 0; i < labels.length; i++) {
      // Case-sensitive match: decoding gives back the names exactly as written.
      const key = labelsToText(labels.slice(i));
      const at = this.names.get(key);
      if (compress && at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.len < 0x4000) this.names.set(key, this.len);
      this.u8(labels[i]!.length);
      this.bytes(labels[i]!);
    }
    this.u8(0);
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function addressBytes(type: number, address: string): Uint8Array {
  const b = type === TYPE.AAAA ? parseIPv6(address) : parseIPv4(address);
  if (!b) throw new TypeError(`not an ${type === TYPE.AAAA ? 'IPv6' : 'IPv4'} address: ${address}`);
  return b;
}

function writeRecord(w: Writer, rec: RecordInput): void {
  w.name(rec.name);
  w.u16(rec.type);
  w.u16(rec.class ?? CLASS_IN);
  w.u32(rec.ttl ?? 0);
  const lenAt = w.len;
  w.u16(0);
  const start = w.len;
  const d = rec.data;
  if (d instanceof Uint8Array) w.bytes(d);
  else {
    switch (d.kind) {
      case 'address':
        w.bytes(addressBytes(rec.type, d.address));
        break;
      case 'name':
        w.name(d.name);
        break;
      case 'mx':
        w.u16(d.priority);
        w.name(d.exchange);
        break;
      case 'txt':
        for (const s of d.strings) {
          if (s.length > 255) throw new RangeError('TXT character-string longer than 255 octets');
          w.u8(s.length);
          w.bytes(s);
        }
        break;
      case 'tlsa':
        w.u8(d.usage);
        w.u8(d.selector);
        w.u8(d.matchingType);
        w.bytes(d.data);
        break;
      case 'raw':
        w.bytes(d.bytes);
        break;
    }
  }
  if (w.len - start > 0xffff) throw new RangeError('record data longer than 65535 octets');
  w.setU16(lenAt, w.len - start);
}

/** Message → bytes (for queries, and for test servers' responses). */
export function encodeMessage(m: MessageInput): Uint8Array {
  const w = new Writer(m.compress ?? true);
  const rcode = m.rcode ?? 0;
  if (rcode > 0xf && !m.edns) throw new RangeError('an extended rcode needs edns');
  w.u16(m.id & 0xffff);
  w.u16(
    (m.qr ? 0x8000 : 0) |
      (((m.opcode ?? 0) & 0xf) << 11) |
      (m.aa ? 0x0400 : 0) |
      (m.tc ? 0x0200 : 0) |
      (m.rd ? 0x0100 : 0) |
      (m.ra ? 0x0080 : 0) |
      (m.ad ? 0x0020 : 0) |
      (m.cd ? 0x0010 : 0) |
      (rcode & 0xf),
  );
  const qs = m.questions ?? [];
  const an = m.answers ?? [];
  const ns = m.authorities ?? [];
  const ar = m.additionals ?? [];
  w.u16(qs.length);
  w.u16(an.length);
  w.u16(ns.length);
  w.u16(ar.length + (m.edns ? 1 : 0));
  for (const q of qs) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const rec of [...an, ...ns, ...ar]) writeRecord(w, rec);
  if (m.edns) {
    const e = m.edns;
    writeRecord(w, {
      name: '',
      type: TYPE.OPT,
      class: e.udpSize ?? 1232,
      ttl: (((rcode >> 4) & 0xff) << 24) | (((e.version ?? 0) & 0xff) << 16) | (e.do ? 0x8000 : 0),
      data: e.options ?? new Uint8Array(0),
    });
  }
  return w.result();
}

export interface QueryInput {
  id: number;
  name: string;
  type: number;
  /** EDNS0 OPT with this UDP payload size and the DO bit; omitted: no OPT record. */
  edns?: { udpSize: number; do: boolean };
}

/**
 * A recursive query (RD) for one absolute name. The AD bit is set as well: RFC 6840 §5.7, a
 * validating resolver then reports AD even to a client that did not set DO.
 */
export function encodeQuery(q: QueryInput): Uint8Array {
  return encodeMessage({
    id: q.id,
    rd: true,
    ad: true,
    questions: [{ name: q.name, type: q.type, class: CLASS_IN }],
    ...(q.edns ? { edns: { udpSize: q.edns.udpSize, do: q.edns.do } } : {}),
  });
}
