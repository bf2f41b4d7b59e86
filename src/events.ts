/**
 * Transcript and progress events (`options.onEvent`). Credentials are redacted before an
 * event is built, so a logger may print every event as is.
 */
export type DeliveryEvent =
  | { type: 'warning'; message: string }
  /** The server broke the protocol in a way worth attention (e.g. plaintext after the 220 to STARTTLS). */
  | { type: 'protocol-error'; host: string; address: string; message: string }
  | { type: 'connect'; nexthop: string; host: string; address: string; port?: number }
  /** A connection is ready to use: new, or `reused` from the pool (`connection` is its id). */
  | { type: 'connected'; host: string; address: string; port?: number; localAddress?: string; localPort?: number; reused?: boolean; connection?: number }
  | { type: 'connect-failed'; host: string; address: string; port?: number; reason: string }
  /** A command line written to the server (no CRLF); message content is not reported line by line. */
  | { type: 'send'; line: string }
  /** A reply line received from the server (no CRLF). */
  | { type: 'receive'; line: string }
  /** Message content written: octets of this chunk as sent on the wire. */
  | { type: 'content'; bytes: number }
  | { type: 'tls'; version: string; cipher: string; verified: boolean; level: string }
  | { type: 'recipient'; index: number; recipient: string; action: string; status: string; reason: string }
  | { type: 'closed'; host: string; address: string }
  /**
   * A content hook acted on the message (REW-5: hook actions become events): `info`, `warn`,
   * `strip`, `ignore`, `prepend`, `replace`, or an address `rewrite`, with the line it applied to.
   */
  | { type: 'content-check'; hook: 'headerCheck' | 'bodyCheck' | 'rewriteAddress'; action: string; part: 'primary' | 'mime' | 'nested'; line: string; text?: string };
