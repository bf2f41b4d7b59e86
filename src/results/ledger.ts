/**
 * One slot per envelope recipient: Postfix's mark-and-sweep across sessions
 * (POSTFIX-BEHAVIOR.md §1.0 I-1, I-2; DSN-1, DSN-14). Each outcome either records the
 * recipient's final result (DROP) or keeps it for the next server (KEEP); one "why" buffer
 * holds the last error, and whatever it holds when servers run out is what the recipients
 * still kept get. Recording a recipient twice, or finishing with one unrecorded, throws.
 */
import type { DeliveryAction, RecipientResult } from './delivery-result.js';
import type { Described, ServerIdentity } from './describe.js';
import { isEnhancedStatus, statusClass, withClass } from '../protocol/enhanced-status.js';

export interface OutcomeContext {
  /** Postfix FINAL_SERVER: no other server will be tried for this recipient. */
  finalServer: boolean;
  server?: ServerIdentity;
  /** Success is `delivered` (LMTP, flag X, server without DSN) instead of `relayed` (DSN-2). */
  deliveredOnSuccess?: boolean;
  /** The server announced DSN: it takes over NOTIFY=SUCCESS (DSN-3). */
  serverDsn?: boolean;
  tls?: RecipientResult['tls'];
  /** A TLS problem to report even on success (MTA-STS testing mode). */
  tlsFailure?: { resultType: string; detail: string };
}

/** DSN-10: the final status and text of a recipient, before it is recorded. */
export type DeliveryStatusFilter = (r: { recipient: string; status: string; text: string }) => { status: string; text: string } | undefined;

export interface LedgerOptions {
  /** Postfix `soft_bounce` (false): every would-be bounce is deferred instead (DSN-9). */
  softBounce?: boolean;
  /**
   * Postfix `smtp_delivery_status_filter` (DSN-10): runs once per recipient, when its result
   * becomes final. The class must stay (2 to 2; 4 or 5 to 4 or 5) and the text must not be
   * empty; anything else is ignored with a warning. `soft_bounce` still applies after it.
   */
  statusFilter?: DeliveryStatusFilter;
  /** Where a rejected filter result is reported. */
  onWarning?: (message: string) => void;
}

interface LastError {
  described: Described;
  server: ServerIdentity | undefined;
}

export class RecipientLedger {
  private readonly results: Array<RecipientResult | undefined>;
  private last: LastError | undefined;

  constructor(
    private readonly recipients: readonly string[],
    private readonly options: LedgerOptions = {},
  ) {
    this.results = recipients.map(() => undefined);
  }

  /** Indices still without a final result (KEEP), in envelope order. */
  get left(): number[] {
    const out: number[] = [];
    this.results.forEach((r, i) => {
      if (r === undefined) out.push(i);
    });
    return out;
  }

  /** Whether this recipient already has its final result. */
  has(index: number): boolean {
    return this.results[index] !== undefined;
  }

  /** The result recorded for a recipient, if any. */
  get(index: number): RecipientResult | undefined {
    return this.results[index];
  }

  /** Postfix smtp_rcpt_done / smtp_rcpt_fail for one recipient. Returns what was decided. */
  outcome(index: number, described: Described, ctx: OutcomeContext): 'recorded' | 'kept' {
    if (described.success) {
      this.record(index, described, ctx.deliveredOnSuccess ? 'delivered' : 'relayed', ctx);
      return 'recorded';
    }
    const soft = statusClass(described.status) === '4' || described.softNonFinal === true;
    if (soft && !ctx.finalServer) {
      this.last = { described, server: ctx.server };
      return 'kept';
    }
    this.record(index, described, undefined, ctx);
    return 'recorded';
  }

  /** A failure that marks no recipient (connect, lookup, TLS policy): it only updates the why. */
  siteError(described: Described, server?: ServerIdentity): void {
    this.last = { described, server };
  }

  /** The last error (Postfix's why buffer), if any. */
  get lastError(): Described | undefined {
    return this.last?.described;
  }

  /**
   * End of the destination list: every recipient still kept gets the last error (Postfix
   * smtp_connect → smtp_sess_fail), or 4.3.0 when none was recorded. Then the results.
   */
  finish(options: { hardIsConfigurationProblem?: boolean } = {}): RecipientResult[] {
    let last = this.last ?? {
      described: { status: '4.3.0', reason: 'server unavailable or unable to receive mail', success: false },
      server: undefined,
    };
    // MX-20: a hard error at a fallback relay or at the relayhost becomes 4.3.5 (text kept).
    if (options.hardIsConfigurationProblem && statusClass(last.described.status) === '5') {
      last = { ...last, described: { ...last.described, status: '4.3.5', softNonFinal: false } };
    }
    for (const index of this.left) {
      this.record(index, last.described, undefined, { finalServer: true, ...(last.server ? { server: last.server } : {}) });
    }
    return this.results.map((r, i) => {
      if (!r) throw new Error(`RecipientLedger: recipient ${i} has no result (mark-and-sweep)`);
      return r;
    });
  }

  private record(index: number, d: Described, success: DeliveryAction | undefined, ctx: OutcomeContext): void {
    if (index < 0 || index >= this.results.length) throw new RangeError(`RecipientLedger: no recipient ${index}`);
    if (this.results[index]) throw new Error(`RecipientLedger: recipient ${index} recorded twice (mark-and-sweep)`);
    let status = d.status;
    let reason = d.reason;
    if (this.options.statusFilter) {
      const f = this.filter(index, status, reason, success !== undefined);
      status = f.status;
      reason = f.text;
    }
    let action: DeliveryAction;
    if (success) {
      action = success;
    } else {
      // A failure whose class is 5 bounces; soft_bounce turns it into a deferral.
      if (statusClass(status) === '5' && this.options.softBounce) status = withClass(status, '4');
      action = statusClass(status) === '5' ? 'failed' : 'delayed';
    }
    const r: RecipientResult = { recipient: this.recipients[index]!, action, status, reason };
    if (d.diagnosticCode !== undefined) r.diagnosticCode = d.diagnosticCode;
    if (d.remoteMta !== undefined) r.remoteMta = d.remoteMta;
    if (ctx.server) r.remoteAddress = ctx.server.address;
    if (d.reply) r.reply = d.reply;
    if (ctx.tls) r.tls = ctx.tls;
    const tlsFailure = d.tlsFailure ?? ctx.tlsFailure;
    if (tlsFailure) {
      r.tlsFailure = { resultType: tlsFailure.resultType, detail: tlsFailure.detail };
      if (ctx.server) {
        if (ctx.server.host !== ctx.server.address) r.tlsFailure.receivingMxHostname = ctx.server.host;
        if (ctx.server.port !== undefined) r.tlsFailure.receivingIp = ctx.server.address;
      }
    }
    if (success && ctx.serverDsn !== undefined) r.successNotifyHandedOff = ctx.serverDsn;
    this.results[index] = r;
  }

  /** DSN-10: the caller's filter, kept only when it keeps the class and gives a text. */
  private filter(index: number, status: string, text: string, success: boolean): { status: string; text: string } {
    let out: { status: string; text: string } | undefined;
    try {
      out = this.options.statusFilter!({ recipient: this.recipients[index]!, status, text });
    } catch (err) {
      this.options.onWarning?.(`deliveryStatusFilter threw: ${err instanceof Error ? err.message : String(err)}; result kept`);
      return { status, text };
    }
    if (out === undefined) return { status, text };
    const ok =
      typeof out === 'object' &&
      out !== null &&
      typeof out.status === 'string' &&
      isEnhancedStatus(out.status) &&
      typeof out.text === 'string' &&
      out.text.trim() !== '' &&
      !/[\r\n\0]/.test(out.text) &&
      (success ? statusClass(out.status) === '2' : statusClass(out.status) !== '2');
    if (!ok) {
      this.options.onWarning?.(`deliveryStatusFilter result ignored for ${this.recipients[index]}: the class must stay ${success ? '2' : '4 or 5'} and the text must be one non-empty line`);
      return { status, text };
    }
    return { status: out.status, text: out.text };
  }
}
