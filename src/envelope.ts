/** A message body in any form `deliver()` accepts (API.md "envelope"). */
export type MessageSource =
  | string
  | Uint8Array
  | NodeJS.ReadableStream
  | AsyncIterable<Uint8Array>;

export type DsnNotify = Array<'SUCCESS' | 'FAILURE' | 'DELAY'> | 'NEVER';

/** One envelope recipient with its RFC 3461 DSN parameters. */
export interface Recipient {
  address: string;
  /** RFC 3461 NOTIFY=; sent only when the server announces DSN. */
  notify?: DsnNotify;
  /** RFC 3461 ORCPT=, e.g. `rfc822;user@example.org`; sent only when the server announces DSN. */
  orcpt?: string;
  /**
   * The recipient as originally given, before aliasing or forwarding (Postfix
   * enable_original_recipient): what flag O writes in X-Original-To. Default `address`.
   */
  original?: string;
}

export interface Envelope {
  /** Envelope sender; `''` is the null sender `<>`. */
  from: string;
  /** One result per entry, same order, duplicates kept. */
  to: Array<string | Recipient>;
  /** The message; a factory lets a retry on the next host re-read it. */
  message: MessageSource | (() => MessageSource);
  /** Octets, for SIZE=; measured when the message is in memory. */
  size?: number;
  dsn?: { ret?: 'FULL' | 'HDRS'; envid?: string };
  /** Default `'auto'`: SMTPUTF8 is asked for when an address or a header is not ASCII (PROTO-12). */
  smtputf8?: boolean | 'auto';
  /** RFC 8689 REQUIRETLS. */
  requireTls?: boolean;
  /** Declared body type; default: 8BITMIME when the message has 8-bit octets (in memory). */
  body?: '7BIT' | '8BITMIME';
  /** When the message entered the caller's queue (Postfix's message age). */
  queuedAt?: Date;
}
