/** RFC 3464 Action values mailwire reports. `delayed` = try later; `failed` = do not retry. */
export type DeliveryAction = 'delivered' | 'relayed' | 'failed' | 'delayed';

/** A server reply as mailwire reports it. */
export interface ReplySummary {
  code: number;
  /** RFC 3463 status as the server sent it (only when valid and of the reply's class). */
  enhanced?: string;
  /** Every line with its code, joined with `\n`. */
  text: string;
}

/** One DSN-ready result per envelope recipient (API.md "result"). */
export interface RecipientResult {
  /** The recipient address as given. */
  recipient: string;
  action: DeliveryAction;
  /** RFC 3463 `x.y.z`, from the reply or derived as Postfix does. */
  status: string;
  /** Postfix's human-readable reason text; always set. */
  reason: string;
  /** RFC 3464 form, only when a server replied: `smtp; 550 5.1.1 ...`. */
  diagnosticCode?: string;
  /** RFC 3464 Remote-MTA: `dns; mx.example.org`, only when a server spoke. */
  remoteMta?: string;
  /** The address (or unix socket path) of the server that decided. */
  remoteAddress?: string;
  reply?: ReplySummary;
  /** The TLS session the result was decided in: protocol, cipher, whether the server was authenticated, the level applied, and whether the session was resumed. */
  tls?: { version: string; cipher: string; verified: boolean; level: string; resumed?: boolean };
  /**
   * RFC 8460 details when TLS failed (or, with MTA-STS `testing`, would have failed) at the
   * server that decided: ready for a TLS-RPT report.
   */
  tlsFailure?: { resultType: string; receivingMxHostname?: string; receivingIp?: string; detail?: string };
  /** DSN-3: the server announced DSN and took over NOTIFY=SUCCESS. */
  successNotifyHandedOff?: boolean;
}

/** One host/address tried, and why it was left. */
export interface Attempt {
  /** Next hop as written (DEST-13). */
  nexthop: string;
  host: string;
  address: string;
  port?: number;
  /** MX preference of this address (MX destinations). */
  preference?: number;
  /**
   * How far it got: `lookup` (no address), `connect`, or the stage whose reply was awaited when
   * it was left (`greeting`, `ehlo`, `starttls`, `mail`, `rcpt`, `data`, `dot`, `bdat-last`, …);
   * `quit` when the conversation ran to its end.
   */
  stage: string;
  /** Protocol violations seen (e.g. `plaintext-after-starttls`, CVE-2011-0411 class). */
  protocolErrors?: string[];
  /** How the attempt ended. */
  outcome: 'completed' | 'connect-failed' | 'session-failed' | 'skipped';
  /** The last error seen on this attempt, if any (Postfix's "why"). */
  reason?: string;
  status?: string;
  startedAt: Date;
  endedAt: Date;
}

export interface DeliveryResult {
  /** Exactly one per envelope.to entry, same order. */
  recipients: RecipientResult[];
  /** Every host/address tried, with why it was left. */
  attempts: Attempt[];
  /**
   * DSN-12 (Postfix "throttle"): `throttled` when recipients were left delayed by a failure of
   * the whole site at the last server tried (connect, lookup, greeting, handshake, TLS policy),
   * so a queue can back off the destination as a whole; otherwise `ok`.
   */
  destinationStatus?: 'ok' | 'throttled';
}
