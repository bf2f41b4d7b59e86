/**
 * RFC 3463 enhanced status codes, read the way Postfix reads them
 * (global/dsn_util.c:dsn_valid; POSTFIX-BEHAVIOR.md §1.4).
 */

/** `d.ddd.ddd`: first digit 2, 4 or 5, then two fields of 1-3 digits (RFC 3463 §2). */
const VALID = /^[245]\.\d{1,3}\.\d{1,3}$/;

/** True for a complete, valid RFC 3463 status such as `5.1.1`. */
export function isEnhancedStatus(s: string): boolean {
  return VALID.test(s);
}

/**
 * The enhanced status at the start of `text` (after any spaces), or undefined. Like Postfix's
 * dsn_valid(), the code must end at white space or at the end of the text: `5.1.1x`, a field
 * of four digits, or two codes glued together are no code.
 */
export function leadingEnhancedStatus(text: string): string | undefined {
  let i = 0;
  while (text.charCodeAt(i) === 0x20) i++;
  const m = /^([245]\.\d{1,3}\.\d{1,3})(?=[ \t]|$)/.exec(text.slice(i));
  return m ? m[1] : undefined;
}

/** The class digit of a status or reply code: `'4'` for `4.2.0` or 450. */
export function statusClass(status: string | number): '2' | '4' | '5' | undefined {
  const c = String(status)[0];
  return c === '2' || c === '4' || c === '5' ? c : undefined;
}

/**
 * The status a reply stands for (Postfix smtp_chat_resp): the enhanced code from the
 * last line when it is valid and of the reply code's class, else `<d>.0.0`; a reply code
 * that is not 2xx/4xx/5xx (3xx, 1xx, 6xx, …) gives 5.5.0 whatever it carries.
 */
export function replyStatus(code: number, lastLineText: string): string {
  const d = Math.floor(code / 100);
  if (code < 200 || code > 599 || d === 3) return '5.5.0';
  const enhanced = leadingEnhancedStatus(lastLineText);
  if (enhanced !== undefined && enhanced[0] === String(d)) return enhanced;
  return `${d}.0.0`;
}

/** Replace the class digit: `softStatus('5.7.1') === '4.7.1'` (soft_bounce, skip5xxGreeting). */
export function withClass(status: string, cls: '2' | '4' | '5'): string {
  return cls + status.slice(1);
}
