/**
 * RFC 822 tokenizer for MIME header values, as Postfix reads Content-Type and
 * Content-Transfer-Encoding (global/header_token.c). Header text is a latin1 string, one char
 * per octet; 8-bit octets are ordinary token characters, as in Postfix.
 *
 * - linear white space (SP, HTAB, CR, LF) separates tokens and is dropped;
 * - comments `( … )` nest, honor `\` quoting, and are dropped;
 * - a quoted string is one token without its quotes; `\` quotes the next character; a fold
 *   inside it (LF) also drops the white space before the LF (Postfix's unfolding);
 * - each special and each ASCII control is a token of its own;
 * - with a terminator (`;` for Content-Type parameters) tokenizing stops after it, and tokens
 *   beyond `max` are read but not kept; without one it stops when `max` tokens are kept.
 */
export interface HeaderToken {
  /** `token` (RFC 822 atom, RFC 2045 token), `qstring` (quoted string), or `special` (value is the character). */
  kind: 'token' | 'qstring' | 'special';
  value: string;
}

/** RFC 822 §3.3 specials (Postfix LEX_822_SPECIALS). */
export const RFC822_SPECIALS = '()<>@,;:\\".[]';
/** RFC 2045 §5.1 tspecials. */
export const RFC2045_TSPECIALS = '()<>@,;:\\"/[]?=';

const isLwsp = (c: string) => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isControl = (code: number) => code < 32 || code === 127;

/**
 * Tokens from `text` starting at `pos`. Returns null when the text ran out before any token
 * (Postfix: -1), otherwise the tokens kept and the position after the last character read.
 */
export function headerTokens(
  text: string,
  pos: number,
  max: number,
  specials: string,
  terminator = '',
): { tokens: HeaderToken[]; next: number } | null {
  const tokens: HeaderToken[] = [];
  let i = pos;
  let last = '';
  while (i < text.length && (terminator !== '' || tokens.length < max)) {
    const c = text[i++]!;
    last = c;
    if (isLwsp(c)) continue;
    if (c === terminator) break;
    if (c === '(') {
      for (let depth = 1; i < text.length; ) {
        const d = text[i++]!;
        if (d === '(') depth++;
        else if (d === ')') {
          if (--depth === 0) break;
        } else if (d === '\\') {
          if (i >= text.length) break;
          i++;
        }
      }
      continue;
    }
    const keep = tokens.length < max;
    if (c === '"') {
      let value = '';
      while (i < text.length) {
        let d = text[i++]!;
        if (d === '"') break;
        if (d === '\n') {
          value = value.replace(/[ \t\r\n]+$/, '');
          continue;
        }
        if (d === '\\') {
          if (i >= text.length) break;
          d = text[i++]!;
        }
        value += d;
      }
      if (keep) tokens.push({ kind: 'qstring', value });
      continue;
    }
    if (specials.includes(c) || isControl(c.charCodeAt(0))) {
      if (keep) tokens.push({ kind: 'special', value: c });
      continue;
    }
    const start = i - 1;
    while (i < text.length) {
      const d = text[i]!;
      if (isLwsp(d) || isControl(d.charCodeAt(0)) || specials.includes(d)) break;
      i++;
    }
    if (keep) tokens.push({ kind: 'token', value: text.slice(start, i) });
  }
  // Postfix: "Ignore a zero-length item after the last terminator."
  if (tokens.length === 0 && (i >= text.length && last !== terminator)) return null;
  return { tokens, next: i };
}

/** True when `t` is an RFC 2045 token equal to `word`, ignoring case (Postfix TOKEN_MATCH). */
export function tokenIs(t: HeaderToken | undefined, word: string): boolean {
  return t !== undefined && t.kind === 'token' && t.value.toLowerCase() === word;
}
