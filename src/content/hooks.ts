/**
 * Content hooks: Postfix's smtp_generic_maps, smtp_header_checks, smtp_mime_header_checks,
 * smtp_nested_header_checks and smtp_body_checks as functions (REW-1 .. REW-6). The actions are
 * the restricted set the SMTP client allows (header_checks(5), "smtp_header_checks"): nothing
 * that changes when or where mail goes (no REJECT, DISCARD, HOLD, REDIRECT, BCC, FILTER, PASS).
 */

/** What a check decides for one header or body line. */
export type CheckAction =
  /** Keep the line (the default when a hook returns undefined). */
  | { action: 'dunno' }
  /** Delete the line. */
  | { action: 'ignore' }
  /** Keep the line and report it (an `info` event). */
  | { action: 'info'; text?: string }
  /** Insert one line before this one; before a header it must itself be a header. */
  | { action: 'prepend'; text: string }
  /** Replace the line; a header must be replaced by a header. */
  | { action: 'replace'; text: string }
  /** Delete the line and report it. */
  | { action: 'strip'; text?: string }
  /** Keep the line and report a warning. */
  | { action: 'warn'; text?: string };

export const CHECK_ACTIONS: ReadonlySet<string> = new Set(['dunno', 'ignore', 'info', 'prepend', 'replace', 'strip', 'warn']);

/** Where a header is (smtp_header_checks, smtp_mime_header_checks, smtp_nested_header_checks). */
export type HeaderPart = 'primary' | 'mime' | 'nested';

export interface HeaderLine {
  /** Header name as written. */
  name: string;
  /** The value, unfolded (continuation line ends removed), decoded as UTF-8 (bad bytes U+FFFD). */
  value: string;
  /** The whole logical header as received, continuation lines and their line ends included (REW-6). */
  raw: Uint8Array;
}

export type HeaderCheck = (header: HeaderLine, ctx: { part: HeaderPart }) => CheckAction | undefined;

export interface BodyLine {
  /** The line without its line end, decoded as UTF-8 (bad bytes U+FFFD). */
  text: string;
  /** The line's octets without its line end (REW-6). */
  raw: Uint8Array;
}

/** smtp_body_checks: each body line of the message and of its MIME parts, as sent. */
export type BodyCheck = (line: BodyLine, ctx: { part: HeaderPart }) => CheckAction | undefined;

/**
 * smtp_generic_maps as a function (REW-1): one address in, one address out (or undefined to
 * keep it). `where` says whether it is the envelope sender, a recipient, or a header address.
 */
export type RewriteAddress = (address: string, ctx: { where: 'mail' | 'rcpt' | 'header'; header?: string }) => string | undefined;

/** Delivery flags D, O, R (pipe(8)/smtp(8) `flags=`; DSN-5 .. DSN-7). */
export interface DeliveryFlags {
  /** D: `Delivered-To: <recipient>`, with the loop check (5.4.6). One recipient per transaction. */
  deliveredTo?: boolean;
  /** O: `X-Original-To: <recipient as originally given>`. One recipient per transaction. */
  originalTo?: boolean;
  /** R: `Return-Path: <sender>`. */
  returnPath?: boolean;
}

/** smtp_send_xforward_command: the original client's attributes, sent only when announced (PROTO-18). */
export interface Xforward {
  name?: string;
  addr?: string;
  port?: string | number;
  proto?: string;
  helo?: string;
  ident?: string;
  domain?: 'LOCAL' | 'REMOTE';
}
