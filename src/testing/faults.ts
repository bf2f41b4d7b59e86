/**
 * Fault injection: which protocol step misbehaves, how, and how often.
 * Modeled on aiosmtplib's one-fault-per-step fixtures, against a real server.
 */

/**
 * A point in the conversation where the server replies (or, for `data-transfer`, receives).
 *
 * - `connect`: the greeting (RFC 5321 §4.3.1).
 * - `ehlo`, `helo`, `lhlo`, `starttls`, `mail`, `rcpt`, `rset`, `noop`, `quit`: the reply to that command.
 * - `auth`: the final reply of an AUTH exchange (235/535), RFC 4954 §4.
 * - `data`: the reply to the DATA command (its 354).
 * - `data-transfer`: while the body (after 354) or a BDAT payload is arriving, before it is complete.
 * - `dot`: the end-of-data reply (after "." or after the payload of `BDAT n LAST`).
 * - `bdat`: the reply to a BDAT chunk that is not the last (RFC 3030 §2).
 */
export type Step =
  | 'connect'
  | 'ehlo'
  | 'helo'
  | 'lhlo'
  | 'starttls'
  | 'auth'
  | 'mail'
  | 'rcpt'
  | 'data'
  | 'data-transfer'
  | 'dot'
  | 'bdat'
  | 'rset'
  | 'noop'
  | 'quit';

/** What a fault does instead of the normal reply. */
export type FaultAction = 'drop' | 'stall' | 'garbage' | 'reply';

/**
 * One scripted misbehavior.
 *
 * - `drop`: destroy the socket at that point without writing anything (replies to earlier
 *   commands of the same read are written first). For `data-transfer`: after some of the body
 *   has arrived.
 * - `stall`: write nothing for that reply and for everything after it; keep reading and
 *   discarding input; never close by itself (`server.close()` closes it).
 * - `garbage`: write {@link Fault.garbage} instead of the reply, then close (unless
 *   `closeAfter: false`).
 * - `reply`: write {@link Fault.reply} instead of the normal reply. The server then acts on the
 *   reply it sent (a 2xx to RCPT accepts that recipient, a non-354 to DATA does not start the
 *   body, and so on). A 421 closes the connection afterwards, as Postfix does. At
 *   `data-transfer` the reply is sent early, as soon as the content starts arriving, in place
 *   of the reply that content would get (the end-of-data reply, once per accepted recipient in
 *   LMTP, or the reply to a BDAT chunk that is not the last); the rest of the content is read
 *   and discarded without a further reply.
 */
export interface Fault {
  step: Step;
  action: FaultAction;
  /** For `reply`: the reply to send instead (multi-line with `\n`, e.g. `"250-a\n250 b"`). */
  reply?: string;
  /**
   * Only for this RCPT: 0-based index of the RCPT command within the transaction, or the address
   * (angle brackets optional, case-insensitive). For `dot` in LMTP: which accepted recipient's
   * reply (index in accepted order, or address). Ignored at steps without a recipient.
   */
  rcpt?: number | string;
  /**
   * For `bdat` and `data-transfer`: 0-based BDAT chunk index (a DATA body is chunk 0). Ignored
   * at steps without a chunk.
   */
  chunk?: number;
  /** Only in the Nth accepted connection (0-based). Default: every connection. */
  session?: number;
  /** Apply at most this many times in total. Default: unlimited. */
  times?: number;
  /**
   * For `garbage`: what to send, one octet per character (latin1).
   * Default `"\x00\xff this is not an SMTP reply\r\n"`.
   */
  garbage?: string;
  /**
   * For `reply` and `garbage`: close after writing. Default: `garbage` closes, `reply` closes
   * only when its code is 421.
   */
  closeAfter?: boolean;
}

/** The default garbage: a NUL, an 0xff octet and a line that is not an SMTP reply. */
export const DEFAULT_GARBAGE = '\x00\xff this is not an SMTP reply\r\n';

/** What identifies the current point of the conversation when faults are looked up. */
export interface FaultPoint {
  step: Step;
  session: number;
  /** RCPT index within the transaction (for `rcpt`) or accepted index (for LMTP `dot`). */
  rcptIndex?: number;
  /** The recipient address at this point, if any. */
  address?: string;
  /** BDAT chunk index (DATA body: 0). */
  chunk?: number;
}

/**
 * The faults of one server, with how often each has fired. The first matching fault that has
 * not used up its `times` wins.
 */
export class FaultBook {
  private faults: Fault[] = [];
  private used: number[] = [];

  constructor(faults: readonly Fault[] = []) {
    this.replace(faults);
  }

  /** Replace the list of faults and forget how often they fired. */
  replace(faults: readonly Fault[]): void {
    for (const f of faults) validateFault(f);
    this.faults = faults.slice();
    this.used = faults.map(() => 0);
  }

  /** Forget how often the faults fired. */
  resetCounts(): void {
    this.used = this.faults.map(() => 0);
  }

  /** Whether any fault is registered for this step (cheap pre-check). */
  has(step: Step): boolean {
    for (const f of this.faults) if (f.step === step) return true;
    return false;
  }

  /** Find the fault for this point and count it as used, or return undefined. */
  take(point: FaultPoint): Fault | undefined {
    for (let i = 0; i < this.faults.length; i++) {
      const f = this.faults[i]!;
      if (!matches(f, point)) continue;
      const used = this.used[i] ?? 0;
      if (f.times !== undefined && used >= f.times) continue;
      this.used[i] = used + 1;
      return f;
    }
    return undefined;
  }
}

function matches(f: Fault, p: FaultPoint): boolean {
  if (f.step !== p.step) return false;
  if (f.session !== undefined && f.session !== p.session) return false;
  // A filter for a detail the point does not have (rcpt at MAIL, at an SMTP 'dot') is ignored.
  if (f.rcpt !== undefined && (p.rcptIndex !== undefined || p.address !== undefined)) {
    if (typeof f.rcpt === 'number') {
      if (p.rcptIndex !== f.rcpt) return false;
    } else if (p.address === undefined || stripBrackets(f.rcpt).toLowerCase() !== p.address.toLowerCase()) {
      return false;
    }
  }
  if (f.chunk !== undefined && p.chunk !== undefined && f.chunk !== p.chunk) return false;
  return true;
}

function stripBrackets(s: string): string {
  return s.startsWith('<') && s.endsWith('>') ? s.slice(1, -1) : s;
}

const STEPS: ReadonlySet<string> = new Set<Step>([
  'connect', 'ehlo', 'helo', 'lhlo', 'starttls', 'auth', 'mail', 'rcpt', 'data',
  'data-transfer', 'dot', 'bdat', 'rset', 'noop', 'quit',
]);
const ACTIONS: ReadonlySet<string> = new Set<FaultAction>(['drop', 'stall', 'garbage', 'reply']);

function validateFault(f: Fault): void {
  if (!STEPS.has(f.step)) throw new TypeError(`mailwire/testing: unknown fault step ${JSON.stringify(f.step)}`);
  if (!ACTIONS.has(f.action)) throw new TypeError(`mailwire/testing: unknown fault action ${JSON.stringify(f.action)}`);
  if (f.action === 'reply' && (typeof f.reply !== 'string' || f.reply === '')) {
    throw new TypeError(`mailwire/testing: fault ${f.step}/reply needs a non-empty "reply"`);
  }
}
