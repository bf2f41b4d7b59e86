/**
 * What happened to a recipient in one session, as the engine saw it: structured, with no
 * text or status invented here. `results/` turns a Why into status, action and Postfix's
 * reason text (one place for every "4.4.2" string; DESIGN.md conventions).
 */
import type { Reply } from './reply.js';

/** RFC 8460 §4.3 result types for TLS failures. */
export type TlsResultType =
  | 'starttls-not-supported'
  | 'certificate-host-mismatch'
  | 'certificate-expired'
  | 'certificate-not-trusted'
  | 'validation-failure'
  | 'tlsa-invalid'
  | 'dnssec-invalid'
  | 'dane-required'
  | 'sts-policy-fetch-error'
  | 'sts-policy-invalid'
  | 'sts-webpki-invalid';

/** The command a reply answered, as Postfix names it in "(in reply to X command)". */
export type RepliedCommand = 'MAIL FROM' | 'RCPT TO' | 'DATA' | 'end of DATA' | 'BDAT' | 'AUTH' | 'STARTTLS';

/** Decisions mailwire takes itself (Postfix dsb_simple), each with a fixed status (results/). */
export type LocalReason =
  | 'bad-sender' // 5.1.7: sender not valid RFC 5321 syntax, or carries CR/LF/NUL
  | 'bad-recipient' // 5.1.3: likewise for a recipient or its parameters
  | 'message-too-big' // 5.3.4: server SIZE limit smaller than the message (no failover)
  | 'smtputf8-required' // 5.6.7: SMTPUTF8 needed, server lacks it (soft while servers remain)
  | 'starttls-missing' // 4.7.4: TLS required, STARTTLS not offered
  | 'tls-handshake' // 4.7.5: TLS handshake failed
  | 'tls-not-verified' // 4.7.5: "Server certificate not verified" (level above encrypt)
  | 'requiretls' // 5.7.30: REQUIRETLS without verified TLS or without the server's support (soft while servers remain)
  | 'unexpected-reply' // 4.7.0: a reply to MAIL before MAIL was sent, inside TLS (CVE-2009-3555)
  | 'tls-policy' // 4.7.5: the TLS policy is invalid ("client TLS configuration problem")
  | 'message-source' // 4.3.0: the message could not be read
  | 'protocol' // 5.5.0: the server broke the protocol (e.g. an endless reply)
  | 'sasl' // 4.7.0: SASL client-side problem (no usable mechanism, bad challenge, too many steps)
  | 'aborted' // 4.4.7: the caller aborted (options.signal)
  | 'forwarding-loop' // 5.4.6: flag D, the recipient is already in a Delivered-To header
  | 'mime' // 5.6.0: the MIME structure cannot be converted for a server without 8BITMIME
  | 'content-hook'; // 4.3.0: an address rewrite or a header/body check threw

export type Why =
  /** End-of-data 2xx: accepted (SMTP: one reply for all; LMTP: the recipient's own). */
  | { kind: 'success'; reply: Reply }
  /** A non-success reply to a command: "host H[A] said: … (in reply to X command)". */
  | { kind: 'reply'; reply: Reply; command: RepliedCommand; cached?: boolean }
  /** Greeting, EHLO 421, HELO or LHLO refused: "host H[A] refused to talk to me: …". */
  | { kind: 'refused'; reply: Reply; greeting: boolean }
  /** EOF or a socket error while `stage`: "lost connection with H[A] while <stage>". */
  | { kind: 'lost'; stage: string }
  /** A stage deadline passed: "conversation with H[A] timed out while <stage>". */
  | { kind: 'timeout'; stage: string }
  | { kind: 'local'; reason: LocalReason; detail: string; reply?: Reply; tlsFailure?: { resultType: TlsResultType; detail: string } }
  /**
   * The transaction never really reached the server (a reused connection failed its RSET probe,
   * or the connection ended before the transaction started): try it again elsewhere; it is
   * not a delivery attempt and never a result.
   */
  | { kind: 'not-sent'; detail: string }
  /** The TCP or unix-socket connect failed (never from the engine; the adapter's). */
  | { kind: 'connect'; detail: string; status?: '4.4.0' }
  /** A DNS lookup failed (routing): Postfix's smtp_addr.c statuses. */
  | {
      kind: 'lookup';
      name: string;
      rrtype: string;
      error: 'notfound' | 'retry' | 'fail' | 'inval' | 'nullmx';
      /** A soft status was recorded before: the class stays 4 (smtp_addr_one), or deferIfNoMxAddressFound. */
      forceSoft?: boolean;
    }
  /**
   * Mail loops back to us (MX-6, MX-7): we are the best MX left (5.4.6), better MX hosts have no
   * address (`noPrimaryRelay`, 4.4.4), or a server greeted us with our own name (`greeted`:
   * 5.4.6 at a best-preference MX, else 4.4.6).
   */
  | { kind: 'loop'; nexthop: string; noPrimaryRelay?: boolean; greeted?: { bestMx: boolean } };
