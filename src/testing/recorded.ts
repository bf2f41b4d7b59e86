/**
 * What the test server records: one {@link ServerSessionRecord} per accepted connection and one
 * {@link ReceivedTransaction} per MAIL transaction (a MAIL command that got a 2xx reply,
 * RFC 5321 §3.3).
 */

/** One RCPT command of a transaction, with the reply the server sent. */
export interface ReceivedRecipient {
  /** The address without angle brackets. */
  address: string;
  /** ESMTP parameters as sent, e.g. `['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;a@x']`. */
  params: string[];
  /** The reply sent to this RCPT (lines joined with `\n`). */
  reply: string;
}

/** One MAIL transaction as the server saw it. Mutated while the transaction is in progress. */
export interface ReceivedTransaction {
  /** Index of the session (connection) it belongs to. */
  session: number;
  /** 0-based index of this transaction within its session. */
  index: number;
  /** The reverse path without angle brackets (`''` for `<>`). */
  mailFrom: string;
  /** MAIL parameters as sent, e.g. `['SIZE=123', 'BODY=8BITMIME']`. */
  mailParams: string[];
  /** The reply sent to MAIL. */
  mailReply: string;
  /** Every RCPT command of the transaction, in order. */
  rcpts: ReceivedRecipient[];
  /** Addresses whose RCPT got a 2xx, in order. */
  accepted: string[];
  /** How the content was sent; absent when no content transfer started. */
  method?: 'DATA' | 'BDAT';
  /** The reply to the DATA command (354, or an error). */
  dataReply?: string;
  /** Sizes of each BDAT chunk, in order. */
  bdatChunks: number[];
  /**
   * The message as received: after dot-unstuffing (DATA) or the concatenated chunks (BDAT).
   * Absent with `discardData`, and absent while the content is still arriving.
   */
  data?: Buffer;
  /** Octets of that message (counted even with `discardData`). */
  size: number;
  /** SHA-256 of that message, lowercase hex; set when the end of data is reached. */
  sha256?: string;
  /** The end-of-data reply or replies sent (LMTP: one per accepted recipient). */
  replies: string[];
  /** The queue id in the default end-of-data reply. */
  queueId: string;
  /** XFORWARD attributes received before MAIL (Postfix XFORWARD_README), upper-case names. */
  xforward?: Record<string, string>;
  /** End of data reached and answered. */
  complete: boolean;
  /** Why the transaction ended without completing. */
  aborted?: 'rset' | 'quit' | 'disconnect';
}

/** One accepted connection. Mutated while the session is open. */
export interface ServerSessionRecord {
  /** 0-based index in accept order (restarts at 0 after `reset()`). */
  index: number;
  /** The client's IP address (TCP only). */
  remoteAddress?: string;
  /** The argument of the last HELO/EHLO/LHLO. */
  helo?: string;
  /** The verb of the last HELO/EHLO/LHLO that was accepted. */
  heloVerb?: 'EHLO' | 'HELO' | 'LHLO';
  /** The keywords announced in the last EHLO/LHLO reply, upper-case (e.g. `PIPELINING`, `SIZE`). */
  announced: string[];
  /** TLS is active (after STARTTLS, or from the start in wrapper mode). */
  tls: boolean;
  /** TLS details once the handshake completed. */
  tlsInfo?: { protocol: string; cipher: string; servername?: string; peerCertificateSha256?: string };
  /** Why a TLS handshake failed, if it did. */
  tlsError?: string;
  /** The identity of a successful AUTH. */
  auth?: { mechanism: string; username: string; authzid?: string };
  /** Every AUTH exchange: mechanism, username (if any) and the final reply. */
  authAttempts: Array<{ mechanism: string; username?: string; reply: string }>;
  /**
   * `C: <line>` and `S: <line>` command/reply lines. Message content is not included: one
   * `C: <n octets of message content>` per DATA body or BDAT chunk instead.
   */
  transcript: string[];
  /** How many separate socket reads carried at least one command (for checking pipelining). */
  reads: number;
  /**
   * Commands followed by unread input in the same read although the client could not have seen
   * the previous reply: without PIPELINING announced (each answered 503 when
   * `rejectUnauthPipelining`), or, with it, after a command that must end a pipelined group
   * (RFC 2920 §3.1: EHLO, DATA, VRFY, EXPN, NOOP, QUIT; also STARTTLS and AUTH), which are
   * answered normally.
   */
  pipeliningViolations: number;
  /** Replies the server counted as client errors (Postfix `smtpd_hard_error_limit` counter). */
  errors: number;
  /** The client sent QUIT. */
  quit: boolean;
  /** Who closed the connection. `server` also covers `server.close()`. */
  closedBy: 'client' | 'server' | 'fault';
  /** The socket has closed. */
  ended: boolean;
}

export function newSessionRecord(index: number, remoteAddress: string | undefined): ServerSessionRecord {
  const r: ServerSessionRecord = {
    index,
    announced: [],
    tls: false,
    authAttempts: [],
    transcript: [],
    reads: 0,
    pipeliningViolations: 0,
    errors: 0,
    quit: false,
    closedBy: 'client',
    ended: false,
  };
  if (remoteAddress !== undefined) r.remoteAddress = remoteAddress;
  return r;
}
