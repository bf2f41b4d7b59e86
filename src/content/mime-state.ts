/**
 * Postfix's MIME state machine as smtp(8) runs it (global/mime_state.c, set up in
 * smtp/smtp_proto.c:smtp_loop): one streaming pass over the message that can do two things.
 *
 * Content hooks (REW-1 .. REW-6), when given: `headerCheck` for every header (ctx.part says
 * primary, MIME part or nested message: smtp_header_checks, smtp_mime_header_checks,
 * smtp_nested_header_checks), then `rewriteAddress` for the addresses of the primary sender
 * and recipient headers (smtp_generic_maps, smtp_header_rewrite), and `bodyCheck` for every
 * body record (smtp_body_checks). The MIME structure is always read from the original
 * headers. Unlike Postfix, body checks see the line before any quoted-printable encoding.
 * A hook that throws, or returns an action the SMTP client does not allow, stops the pass
 * with ContentHookError (the caller defers, 4.3.0); nothing more is written.
 *
 * 8BITMIME downgrade, with `downgrade` (PROTO-10, PROTO-11; Postfix
 * `disable_mime_output_conversion = no`; MIME_OPT_DOWNGRADE | MIME_OPT_REPORT_NESTING):
 *
 * - input is cut into records like a Postfix queue file: one per line (CRLF or bare LF; a bare
 *   CR is data), a line longer than a record (2048 octets, Postfix `line_length_limit`) in
 *   pieces that only the boundary test can tell apart. Output lines end
 *   in CRLF; a last line without a line end gets one; empty input gives empty output;
 * - header blocks (primary, after each `--boundary`, at the start of message/rfc822 and
 *   message/global) are read one header at a time, continuation lines included, to find
 *   Content-Type (text, message/{rfc822,partial,external-body,global}, multipart/* with its
 *   boundary; multipart/digest parts default to message/rfc822) and
 *   Content-Transfer-Encoding. The obsolete `name :` form is written `name:`, as Postfix does;
 * - an entity whose Content-Transfer-Encoding is 8bit or binary loses that header; at the end
 *   of its header block it gets `Content-Transfer-Encoding: 7bit` if it is multipart/* or
 *   message/rfc822, `quoted-printable` otherwise, and a leaf body is encoded quoted-printable;
 * - multipart bodies: `--boundary` and `--boundary--` are recognized at the start of a line
 *   (of any enclosing multipart; trailing text is ignored), comparing at most
 *   `boundaryLengthLimit` characters (`mime_boundary_length_limit`); preamble and epilogue
 *   pass unchanged, even 8-bit;
 * - 8-bit octets in headers, and in bodies not declared 8bit or binary, pass unchanged:
 *   Postfix cannot downgrade them (`MIME_OPT_REPORT_8BIT_IN_*` are off when it downgrades);
 * - the only MIME error that fails the message is nesting beyond `nestingLimit`
 *   (`mime_nesting_limit`): MimeConversionError 5.6.0 "MIME nesting exceeds safety limit"
 *   (smtp_proto.c:smtp_mime_fail). Postfix's counter starts at -1 (HISTORY 20170512), so
 *   nestingLimit + 2 nested multiparts pass and the next boundary fails.
 *
 * Departures from Postfix, each marked "Departure" below:
 * - an unrecognized Content-Type (application/pdf, …) makes the entity "other". Postfix keeps
 *   the previous or default type, so an application/* part of a multipart/digest would be
 *   parsed as message/rfc822 and relabeled 7bit (RFC 2045 §5.2: an explicit type wins);
 * - message/partial, message/external-body and unknown message/* subtypes declared 8bit or
 *   binary (and a message/rfc822 whose headers are not ended by an empty line): Postfix
 *   encodes the body quoted-printable but labels it 7bit, which no reader can undo; mailwire
 *   labels it quoted-printable. (RFC 2046 §5.2.2-§5.2.4 forbid 8bit/binary for partial and
 *   external-body and any encoding for other message/* subtypes, so no valid 7-bit form
 *   exists; this one at least decodes back to the original.)
 * - a boundary line longer than a record (2048 octets, Postfix `line_length_limit`): Postfix
 *   takes the rest of the line for the first line of the part's headers and so misses them;
 *   mailwire keeps it on the boundary line. Records are also made long enough to hold `--`
 *   and a boundary of `boundaryLengthLimit` characters, so long boundaries are recognized;
 * - a header longer than `headerSizeLimit` (`header_size_limit`): Postfix drops the excess
 *   silently (cleanup(8) has already cut it before smtp(8) runs); mailwire has no cleanup
 *   stage, so it sends the excess unchanged, unparsed, instead of losing it.
 *
 * mailwire extension, beyond Postfix: with `eightBitMessage` (the caller knows the message has
 * 8-bit octets) and a primary header block without MIME-Version, Content-Type and
 * Content-Transfer-Encoding, the message is taken as text/plain in an unknown 8-bit charset:
 * `MIME-Version: 1.0`, `Content-Type: text/plain; charset=unknown-8bit` (RFC 1428 §3: the
 * body is streamed, so whether it is valid UTF-8 is not known when the header goes out) and
 * `Content-Transfer-Encoding: quoted-printable` end the header block, and the body is encoded.
 * Postfix sends such a body unchanged, 8-bit, to the 7-bit server.
 *
 * Memory: one record, one header (headerSizeLimit plus one record), one
 * encoded line, and the boundary stack; never the message.
 */
import { MailwireError } from '../errors.js';
import { CHECK_ACTIONS, type BodyCheck, type CheckAction, type HeaderCheck, type HeaderPart, type RewriteAddress } from './hooks.js';
import { ADDRESS_HEADERS, rewriteAddressList } from './address-header.js';
import { headerNameLength } from './header-block.js';
import { concatBytes } from '../protocol/bytes.js';
import { ByteSink } from './byte-sink.js';
import { RFC822_SPECIALS, RFC2045_TSPECIALS, headerTokens, tokenIs } from './header-token.js';
import { QuotedPrintableEncoder } from './quoted-printable.js';

/** A content check's action worth reporting (info, warn, strip, and every change). */
export interface CheckReport {
  hook: 'headerCheck' | 'bodyCheck' | 'rewriteAddress';
  action: CheckAction['action'] | 'rewrite';
  part: HeaderPart;
  /** The header or body line the action applied to (UTF-8, bad bytes U+FFFD; at most 200 characters). */
  line: string;
  text?: string;
}

export interface MimeStateOptions extends MimeDowngradeOptions {
  /** Convert 8-bit MIME to 7 bit (see the file header). Default false. */
  downgrade?: boolean;
  headerCheck?: HeaderCheck;
  bodyCheck?: BodyCheck;
  /** smtp_generic_maps for the addresses of the primary sender and recipient headers. */
  rewriteAddress?: RewriteAddress;
  /** Called for each action worth reporting. */
  onCheck?: (report: CheckReport) => void;
}

/** A content hook threw or misbehaved: the message must not go (REW-5: defer, 4.3.0). */
export class ContentHookError extends Error {
  readonly status = '4.3.0';
  constructor(
    readonly hook: 'headerCheck' | 'bodyCheck' | 'rewriteAddress',
    readonly detail: string,
  ) {
    super(`${hook} failed: ${detail}`);
    this.name = 'ContentHookError';
  }
}

export interface MimeDowngradeOptions {
  /** Postfix `mime_boundary_length_limit` (2048): boundaries are compared on this many characters. */
  boundaryLengthLimit?: number;
  /** Postfix `mime_nesting_limit` (100): deeper multipart nesting fails with 5.6.0. */
  nestingLimit?: number;
  /** Postfix `header_size_limit` (102400): octets of one header that are parsed. */
  headerSizeLimit?: number;
  /** mailwire: the message has 8-bit octets; a message without MIME headers becomes text/plain (see above). */
  eightBitMessage?: boolean;
}

/** A MIME error that fails the message when it is downgraded (Postfix smtp_mime_fail). */
export class MimeConversionError extends Error {
  readonly status = '5.6.0';
  /** Postfix's text (mime_state.c:mime_err_detail). */
  readonly detail: string;
  constructor(detail: string) {
    super(`${detail} (5.6.0)`);
    this.name = 'MimeConversionError';
    this.detail = detail;
  }
}

/**
 * Longest record (Postfix `line_length_limit`, 2048), or enough for `--`, a boundary of
 * `boundaryLengthLimit` characters and `--`: a boundary is only seen at the start of a record.
 */
const LINE_LENGTH_LIMIT = 2048;

type ContentType = 'text' | 'message' | 'multipart' | 'other';
type Subtype = 'plain' | 'rfc822' | 'partial' | 'external-body' | 'global' | 'digest' | 'other';
type Domain = '7bit' | '8bit' | 'binary';
type State = 'primary' | 'multipart' | 'nested' | 'body';

/** RFC 2045 §6.1: each encoding and its domain; quoted-printable and base64 are 7bit. */
const ENCODING_DOMAIN: Record<string, Domain> = {
  '7bit': '7bit',
  '8bit': '8bit',
  binary: 'binary',
  base64: '7bit',
  'quoted-printable': '7bit',
};

interface Boundary {
  /** Content type of a part without Content-Type: message/rfc822 in multipart/digest (RFC 2046 §5.1.5). */
  defaultType: ContentType;
  defaultSubtype: Subtype;
  /** `--` is not included; cut at boundaryLengthLimit. */
  bytes: Uint8Array;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const DASH = 0x2d;
const CRLF = Uint8Array.of(CR, LF);

export class MimeState {
  private readonly downgrade: boolean;
  private readonly hooks: Pick<MimeStateOptions, 'headerCheck' | 'bodyCheck' | 'rewriteAddress' | 'onCheck'>;
  /** The part whose body is being read (for bodyCheck). */
  private bodyPart: HeaderPart = 'primary';
  private readonly boundaryLengthLimit: number;
  private readonly nestingLimit: number;
  private readonly headerSizeLimit: number;
  private readonly eightBitMessage: boolean;
  private readonly recordLimit: number;

  private readonly out = new ByteSink();
  private readonly qp = new QuotedPrintableEncoder();

  // Record splitter: the start of the current line, not yet a record (at most recordLimit octets).
  private readonly pending: Uint8Array;
  private pendingLen = 0;
  private prevPartial = false; // the previous record was a piece of a longer line (REC_TYPE_CONT)

  // MIME state (mime_state.c: curr_state, curr_ctype, curr_stype, curr_domain, stack).
  private state: State = 'primary';
  private type: ContentType = 'text';
  private subtype: Subtype = 'plain';
  private domain: Domain = '7bit';
  private readonly stack: Boundary[] = [];
  private nestingLevel = -1;

  // The header being read: 'buffer' holds it; 'pass' and 'drop' follow one that outgrew
  // headerSizeLimit, copying or dropping the rest (the output is then in the middle of a line).
  private header = '';
  private headerMode: 'none' | 'buffer' | 'pass' | 'drop' = 'none';
  private sawMimeHeader = false;

  private started = false;
  private changedFlag = false;
  private failed: MimeConversionError | ContentHookError | null = null;
  private ended = false;

  constructor(options: MimeStateOptions = {}) {
    this.downgrade = options.downgrade ?? false;
    this.hooks = { headerCheck: options.headerCheck, bodyCheck: options.bodyCheck, rewriteAddress: options.rewriteAddress, onCheck: options.onCheck };
    this.boundaryLengthLimit = positive(options.boundaryLengthLimit, 2048, 'boundaryLengthLimit');
    this.nestingLimit = positive(options.nestingLimit, 100, 'nestingLimit');
    this.headerSizeLimit = positive(options.headerSizeLimit, 102400, 'headerSizeLimit');
    this.eightBitMessage = options.eightBitMessage ?? false;
    this.recordLimit = Math.max(LINE_LENGTH_LIMIT, this.boundaryLengthLimit + 4);
    this.pending = new Uint8Array(this.recordLimit);
  }

  /**
   * True once the output differs from the input in more than line ends (LF becoming CRLF, a
   * line end added to the last line do not count): a label replaced or added, a body encoded,
   * `name :` rewritten, an empty line added after the primary headers.
   */
  get changed(): boolean {
    return this.changedFlag;
  }

  /** Convert one chunk; the result may be empty. Throws MimeConversionError (5.6.0). */
  write(chunk: Uint8Array): Uint8Array {
    this.check();
    try {
      let i = 0;
      while (i < chunk.length) {
        const lf = chunk.indexOf(LF, i);
        const end = lf === -1 ? chunk.length : lf;
        this.lineBytes(chunk, i, end, lf !== -1);
        i = end + 1;
      }
    } catch (err) {
      this.fail(err);
    }
    return this.out.take();
  }

  /** The rest of the output. Throws MimeConversionError (5.6.0). */
  end(): Uint8Array {
    this.check();
    this.ended = true;
    try {
      // A last line without a line end is still a line (Postfix adds the hard line break).
      if (this.pendingLen > 0) this.lineBytes(this.pending, 0, 0, true);
      this.endOfInput();
    } catch (err) {
      this.fail(err);
    }
    return this.out.take();
  }

  private check(): void {
    if (this.failed) throw this.failed;
    if (this.ended) throw new MailwireError('EOPTION', 'MimeDowngrade: write() or end() after end()');
  }

  private fail(err: unknown): never {
    if (err instanceof MimeConversionError || err instanceof ContentHookError) this.failed = err;
    throw err;
  }

  // ---- records ------------------------------------------------------------------------------

  /**
   * src[from, to) continues the current line; `complete` when a LF followed it. Emits records
   * of at most recordLimit octets: pieces while more than that is known, the rest at the LF.
   */
  private lineBytes(src: Uint8Array, from: number, to: number, complete: boolean): void {
    const limit = this.recordLimit;
    const pending = this.pending;
    if (complete) {
      // CRLF: the CR may have come in the previous chunk.
      if (to > from) {
        if (src[to - 1] === CR) to--;
      } else if (this.pendingLen > 0 && pending[this.pendingLen - 1] === CR) {
        this.pendingLen--;
      }
    }
    while (this.pendingLen + (to - from) > limit) {
      if (this.pendingLen === 0) {
        this.record(src.subarray(from, from + limit), false);
        from += limit;
      } else {
        const take = limit - this.pendingLen;
        pending.set(src.subarray(from, from + take), this.pendingLen);
        this.pendingLen = 0;
        from += take;
        this.record(pending, false);
      }
    }
    if (!complete) {
      pending.set(src.subarray(from, to), this.pendingLen);
      this.pendingLen += to - from;
      return;
    }
    if (this.pendingLen === 0) {
      this.record(src.subarray(from, to), true);
    } else {
      if (src !== pending) pending.set(src.subarray(from, to), this.pendingLen);
      const n = this.pendingLen + (src !== pending ? to - from : 0);
      this.pendingLen = 0;
      this.record(pending.subarray(0, n), true);
    }
  }

  /** One record (mime_state_update with REC_TYPE_NORM when `complete`, else REC_TYPE_CONT). */
  private record(rec: Uint8Array, complete: boolean): void {
    this.started = true;
    if (this.state !== 'body' && this.prevPartial && this.headerMode === 'none') {
      // Departure: the rest of a boundary line longer than a record. Postfix reads it as the
      // first line of the part's header block, which is then cut short; it is the text after
      // the boundary that RFC 2046 §5.1.1 lets readers ignore, so it stays on its line.
      this.out.write(rec);
      if (complete) this.out.write(CRLF);
      this.prevPartial = !complete;
      return;
    }
    if (this.state !== 'body') {
      if (this.headerRecord(rec)) {
        this.prevPartial = !complete;
        return;
      }
      this.endOfHeaders(rec);
    }
    this.bodyRecord(rec, complete);
    this.prevPartial = !complete;
  }

  /** End of input (mime_state_update with a non-text record). */
  private endOfInput(): void {
    if (!this.started) return; // no output for empty input, as in Postfix
    if (this.state !== 'body') {
      this.closeHeader();
      this.endOfHeaders(null);
    }
  }

  // ---- headers ------------------------------------------------------------------------------

  /** In a header block: true when `rec` is (part of) a header and was taken. */
  private headerRecord(rec: Uint8Array): boolean {
    if (this.headerMode !== 'none') {
      if (this.prevPartial) {
        this.appendHeader(rec, '');
        return true;
      }
      if (rec.length > 0 && (rec[0] === SP || rec[0] === TAB)) {
        this.appendHeader(rec, '\n'); // RFC 5322 §2.2.3 folding
        return true;
      }
      this.closeHeader();
    }
    const nameLen = headerNameLength(rec);
    if (nameLen === 0) return false;
    let colon = nameLen;
    while (rec[colon] === SP || rec[colon] === TAB) colon++;
    if (colon > nameLen) this.changedFlag = true; // "name :" becomes "name:" (Postfix)
    this.header = latin1(rec.subarray(0, nameLen)) + latin1(rec.subarray(colon));
    this.headerMode = 'buffer';
    return true;
  }

  private appendHeader(rec: Uint8Array, fold: string): void {
    if (this.headerMode === 'buffer') {
      if (this.header.length < this.headerSizeLimit) {
        this.header += fold + latin1(rec);
        return;
      }
      // Departure: Postfix drops the rest of an oversized header; mailwire sends it unparsed.
      this.flushHeader(false);
    }
    if (this.headerMode === 'pass') {
      if (fold) this.out.write(CRLF);
      this.out.write(rec);
    }
  }

  private closeHeader(): void {
    if (this.headerMode === 'buffer') this.flushHeader(true);
    else if (this.headerMode === 'pass') this.out.write(CRLF);
    this.headerMode = 'none';
    this.header = '';
  }

  /** A complete (or oversized) header: learn from it, then write it or drop it. */
  private flushHeader(lineEnd: boolean): void {
    const text = this.header;
    const colon = text.indexOf(':');
    const name = text.slice(0, colon).toLowerCase();
    if (name === 'content-type') this.contentType(text, colon + 1);
    else if (name === 'content-transfer-encoding') this.contentTransferEncoding(text, colon + 1);
    if (
      this.state === 'primary' &&
      (name === 'mime-version' || name === 'content-type' || name === 'content-transfer-encoding')
    ) {
      this.sawMimeHeader = true;
    }
    // The 8bit/binary label goes; the right one is written at the end of the header block.
    if (this.downgrade && name === 'content-transfer-encoding' && this.domain !== '7bit') {
      this.changedFlag = true;
      this.headerMode = 'drop';
      return;
    }
    const out = this.hooks.headerCheck || this.hooks.rewriteAddress ? this.headerHooks(text, name) : text;
    if (out === undefined) {
      this.changedFlag = true;
      this.headerMode = 'drop';
      return;
    }
    this.headerMode = 'pass';
    this.headerLines(out);
    if (lineEnd) this.out.write(CRLF);
  }

  private get headerPart(): HeaderPart {
    return this.state === 'multipart' ? 'mime' : this.state === 'nested' ? 'nested' : 'primary';
  }

  /**
   * headerCheck, then rewriteAddress for primary address headers (Postfix smtp_header_rewrite).
   * Returns the header to write (latin1, LF at folds; a prepended header comes first), or
   * undefined to drop it.
   */
  private headerHooks(text: string, name: string): string | undefined {
    const part = this.headerPart;
    let prepend = '';
    if (this.hooks.headerCheck) {
      const raw = bytesOf(text.replace(/\n/g, '\r\n'));
      const colon = text.indexOf(':');
      const value = utf8(bytesOf(text.slice(colon + 1).replace(/\n(?=[ \t])/g, '')));
      const header = { name: text.slice(0, colon), value, raw };
      let r: CheckAction | undefined;
      try {
        r = this.hooks.headerCheck(header, { part });
      } catch (err) {
        throw new ContentHookError('headerCheck', err instanceof Error ? err.message : String(err));
      }
      const d = this.action('headerCheck', r, part, utf8(raw), true);
      if (d.drop) return undefined;
      if (d.prepend !== undefined) prepend = `${d.prepend}\n`;
      if (d.replace !== undefined) text = d.replace;
    }
    const rewrite = this.hooks.rewriteAddress;
    if (rewrite && part === 'primary' && ADDRESS_HEADERS.has(name)) {
      const colon = text.indexOf(':');
      const value = utf8Strict(bytesOf(text.slice(colon + 1)));
      if (value !== undefined) {
        const header = text.slice(0, colon);
        let next: string | undefined;
        try {
          next = rewriteAddressList(value, (address) => {
            const r = rewrite(address, { where: 'header', header });
            if (r !== undefined && (typeof r !== 'string' || /[\r\n\0]/.test(r))) throw new Error(`rewriteAddress returned a bad address for ${address}`);
            return r;
          });
        } catch (err) {
          throw new ContentHookError('rewriteAddress', err instanceof Error ? err.message : String(err));
        }
        if (next !== undefined) {
          this.report({ hook: 'rewriteAddress', action: 'rewrite', part, line: `${header}:${value}`, text: `${header}:${next}` });
          text = `${header}:${latin1(new TextEncoder().encode(next))}`;
        }
      }
    }
    if (prepend !== '' || text !== this.header) this.changedFlag = true;
    return prepend + text;
  }

  /**
   * What a check's action means: drop the line, put one before it, replace it. Actions the
   * SMTP client does not allow are errors; a PREPEND or REPLACE text that is not one line
   * (or, for a header, not a header) is ignored with a warning, as Postfix does.
   */
  private action(
    hook: 'headerCheck' | 'bodyCheck',
    r: CheckAction | undefined,
    part: HeaderPart,
    line: string,
    header: boolean,
  ): { drop?: true; prepend?: string; replace?: string } {
    if (r === undefined || r === null) return {};
    const action = typeof r === 'object' ? (r as { action?: unknown }).action : undefined;
    if (typeof action !== 'string' || !CHECK_ACTIONS.has(action)) {
      throw new ContentHookError(hook, `returned an action the SMTP client does not allow: ${JSON.stringify(action ?? r)} (dunno, ignore, info, prepend, replace, strip, warn)`);
    }
    const text = (r as { text?: unknown }).text;
    const shown = line.length > 200 ? `${line.slice(0, 200)}…` : line;
    const report = (extra?: string) => this.report({ hook, action: action as CheckAction['action'], part, line: shown, ...(extra !== undefined ? { text: extra } : {}) });
    switch (action) {
      case 'dunno':
        return {};
      case 'ignore':
        report();
        return { drop: true };
      case 'strip':
      case 'info':
      case 'warn':
        report(typeof text === 'string' ? text : undefined);
        return action === 'strip' ? { drop: true } : {};
      default: {
        // prepend, replace
        const ok = typeof text === 'string' && text !== '' && !/[\r\n\0]/.test(text) && (!header || headerNameLength(new TextEncoder().encode(text)) > 0);
        if (!ok) {
          this.report({ hook, action: 'warn', part, line: shown, text: `${action.toUpperCase()} ignored: the text must be one line${header ? ' in header form (Name: value)' : ''}` });
          return {};
        }
        report(text);
        const bytes = latin1(new TextEncoder().encode(text as string));
        return action === 'prepend' ? { prepend: bytes } : { replace: bytes };
      }
    }
  }

  private report(r: CheckReport): void {
    try {
      this.hooks.onCheck?.(r);
    } catch {
      /* a listener never breaks the message */
    }
  }

  /** Header text with LF at each fold, written with CRLF between its lines. */
  private headerLines(text: string): void {
    const out = this.out;
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      out.latin1(text.slice(start, nl));
      out.write(CRLF);
      start = nl + 1;
    }
    out.latin1(text.slice(start));
  }

  private addHeader(text: string): void {
    this.out.latin1(text);
    this.out.write(CRLF);
    this.changedFlag = true;
  }

  /** mime_state.c:mime_state_content_type. */
  private contentType(text: string, pos: number): void {
    const first = headerTokens(text, pos, 3, RFC2045_TSPECIALS, ';');
    if (first === null || first.tokens.length === 0) {
      this.type = 'other';
      return;
    }
    const [t0, t1, t2] = first.tokens;
    const sub = t1 !== undefined && t1.kind === 'special' && t1.value === '/' && t2 !== undefined;
    const subtypeIs = (word: string) => sub && tokenIs(t2, word);
    if (tokenIs(t0, 'text')) {
      this.type = 'text';
      this.subtype = subtypeIs('plain') ? 'plain' : 'other';
      return;
    }
    if (tokenIs(t0, 'message')) {
      // partial and external-body cannot be downgraded; rfc822 and global have headers inside.
      this.type = 'message';
      this.subtype = 'other';
      for (const s of ['rfc822', 'partial', 'external-body', 'global'] as const) {
        if (subtypeIs(s)) this.subtype = s;
      }
      return;
    }
    if (!tokenIs(t0, 'multipart')) {
      this.type = 'other'; // Departure: Postfix leaves the type as it was (see the file header).
      return;
    }
    this.type = 'multipart';
    const digest = subtypeIs('digest');
    this.subtype = digest ? 'digest' : 'other';
    // Every boundary parameter is pushed, as Postfix does: same-level duplicates are illegal,
    // and this finds the parts whichever one the sender uses.
    let next = first.next;
    for (;;) {
      const param = headerTokens(text, next, 3, RFC2045_TSPECIALS, ';');
      if (param === null) break;
      next = param.next;
      const [name, eq, value] = param.tokens;
      if (!tokenIs(name, 'boundary') || eq?.kind !== 'special' || eq.value !== '=' || value === undefined) continue;
      if (this.nestingLevel > this.nestingLimit) throw new MimeConversionError('MIME nesting exceeds safety limit');
      this.nestingLevel++;
      this.stack.push({
        defaultType: digest ? 'message' : 'text',
        defaultSubtype: digest ? 'rfc822' : 'plain',
        bytes: bytesOf(value.value.slice(0, this.boundaryLengthLimit)),
      });
    }
  }

  /** mime_state.c:mime_state_content_encoding: unknown encodings leave the domain as it was. */
  private contentTransferEncoding(text: string, pos: number): void {
    const r = headerTokens(text, pos, 1, RFC822_SPECIALS);
    const t = r?.tokens[0];
    if (t === undefined || t.kind !== 'token') return;
    const domain = ENCODING_DOMAIN[t.value.toLowerCase()];
    if (domain !== undefined) this.domain = domain;
  }

  /** A record that is not a header ends the header block; `null` at the end of input. */
  private endOfHeaders(rec: Uint8Array | null): void {
    this.bodyPart = this.headerPart;
    if (this.downgrade && this.state === 'primary' && this.eightBitMessage && !this.sawMimeHeader) {
      // mailwire extension (file header): unlabeled 8-bit text.
      this.addHeader('MIME-Version: 1.0');
      this.addHeader('Content-Type: text/plain; charset=unknown-8bit');
      this.type = 'text';
      this.subtype = 'plain';
      this.domain = '8bit';
    }
    if (this.downgrade && this.domain !== '7bit') {
      // RFC 2045 §6.4: multipart and message/rfc822 take a domain, not an encoding. Departure:
      // other message/* bodies, and a message/rfc822 whose headers run into a non-empty line,
      // are encoded below (as Postfix does), so they are labeled so.
      const enclosed = this.type === 'message' && this.subtype === 'rfc822' && (rec === null || rec.length === 0);
      const composite = this.type === 'multipart' || enclosed;
      this.addHeader(`Content-Transfer-Encoding: ${composite ? '7bit' : 'quoted-printable'}`);
    }
    if (rec === null) {
      this.state = 'body';
      return;
    }
    if (rec.length === 0) {
      if (this.type === 'message' && (this.subtype === 'rfc822' || (this.subtype === 'global' && this.domain === '7bit'))) {
        // An enclosed message: its own headers follow, text/plain 7bit until they say otherwise.
        this.setState('nested', 'text', 'plain');
      } else if (this.type === 'multipart') {
        this.setState('body', 'other', 'other'); // the preamble
      } else {
        this.state = 'body';
      }
      return;
    }
    // Not a header and not the empty line. Postfix adds the missing empty line after the
    // primary headers only (not inside attachments, to keep signatures intact).
    if (this.state === 'primary') {
      this.out.write(CRLF);
      this.changedFlag = true;
    }
    this.state = 'body';
  }

  private setState(state: State, type: ContentType, subtype: Subtype): void {
    this.state = state;
    this.type = type;
    this.subtype = subtype;
    this.domain = '7bit';
  }

  // ---- bodies -------------------------------------------------------------------------------

  private bodyRecord(rec: Uint8Array, complete: boolean): void {
    // A boundary of any enclosing multipart, at the start of a line (RFC 2046 §5.1.1).
    if (this.stack.length > 0 && !this.prevPartial && rec.length > 2 && rec[0] === DASH && rec[1] === DASH) {
      for (let k = this.stack.length - 1; k >= 0; k--) {
        const b = this.stack[k]!;
        if (!startsWithAt(rec, 2, b.bytes)) continue;
        this.pop(this.stack.length - 1 - k); // inner multiparts that were never closed
        const after = 2 + b.bytes.length;
        if (rec.length >= after + 2 && rec[after] === DASH && rec[after + 1] === DASH) {
          this.pop(1);
          this.setState('body', 'other', 'other'); // the epilogue
        } else {
          this.setState('multipart', b.defaultType, b.defaultSubtype);
        }
        break;
      }
    }
    if (this.hooks.bodyCheck) {
      const part = this.bodyPart;
      let r: CheckAction | undefined;
      try {
        r = this.hooks.bodyCheck({ text: utf8(rec), raw: rec }, { part });
      } catch (err) {
        throw new ContentHookError('bodyCheck', err instanceof Error ? err.message : String(err));
      }
      const d = this.action('bodyCheck', r, part, utf8(rec), false);
      if (d.drop) {
        this.changedFlag = true;
        return;
      }
      if (d.prepend !== undefined) {
        this.changedFlag = true;
        this.bodyOut(bytesOf(d.prepend), true);
      }
      if (d.replace !== undefined) {
        this.changedFlag = true;
        rec = bytesOf(d.replace);
      }
    }
    this.bodyOut(rec, complete);
  }

  private bodyOut(rec: Uint8Array, complete: boolean): void {
    if (this.downgrade && this.domain !== '7bit') {
      this.qp.encode(rec, complete, this.out);
    } else {
      this.out.write(rec);
      if (complete) this.out.write(CRLF);
    }
  }

  private pop(n: number): void {
    for (let i = 0; i < n; i++) {
      this.stack.pop();
      this.nestingLevel--;
    }
  }
}

/** The 8BITMIME downgrade alone (PROTO-10): a MimeState with `downgrade` on. */
export class MimeDowngrade extends MimeState {
  constructor(options: MimeDowngradeOptions = {}) {
    super({ ...options, downgrade: true });
  }
}

/** Convert a whole message held in memory. Throws MimeConversionError (5.6.0). */
export function downgradeMime(
  message: Uint8Array,
  options?: MimeDowngradeOptions,
): { bytes: Uint8Array; changed: boolean } {
  const d = new MimeDowngrade(options);
  const bytes = concatBytes(d.write(message), d.end());
  return { bytes, changed: d.changed };
}

function startsWithAt(rec: Uint8Array, at: number, prefix: Uint8Array): boolean {
  if (rec.length < at + prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (rec[at + i] !== prefix[i]) return false;
  return true;
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, Math.min(i + 4096, bytes.length)));
  }
  return s;
}

function bytesOf(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new MailwireError('EOPTION', `MimeDowngrade: ${name} must be a positive integer, not ${String(value)}`);
  }
  return value;
}

const utf8Decoder = new TextDecoder();
const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/** UTF-8, bad bytes U+FFFD (what hooks see as text, REW-6: `raw` has the bytes). */
function utf8(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/** UTF-8, or undefined when the bytes are not valid UTF-8. */
function utf8Strict(bytes: Uint8Array): string | undefined {
  try {
    return utf8Fatal.decode(bytes);
  } catch {
    return undefined;
  }
}
