/**
 * Addresses in an address header (From, To, Cc, Reply-To, …), found as Postfix's tok822
 * parser finds them for smtp_generic_maps (smtp_proto.c:smtp_header_rewrite, REW-1): each
 * `<addr-spec>` of a name-addr, and each bare addr-spec of an address list, groups included
 * (RFC 5322 §3.4). Quoted strings and comments are skipped, never rewritten.
 */

/** Postfix header_opts.c: headers with HDR_OPT_SENDER or HDR_OPT_RECIP. */
export const ADDRESS_HEADERS: ReadonlySet<string> = new Set([
  'apparently-to', 'bcc', 'cc', 'disposition-notification-to', 'errors-to', 'from', 'mail-followup-to',
  'reply-to', 'resent-bcc', 'resent-cc', 'resent-from', 'resent-reply-to', 'resent-sender', 'resent-to',
  'return-path', 'return-receipt-to', 'sender', 'to',
]);

interface Span {
  start: number;
  end: number;
}

/** The spans of the addresses in an address-list value (offsets into `value`). */
export function addressSpans(value: string): Span[] {
  const spans: Span[] = [];
  let depth = 0; // comment nesting
  let quoted = false;
  let angle = -1; // index after '<' while inside one
  let element = 0; // start of the current list element
  let sawAngle = false;
  let sawComment = false;
  const closeElement = (end: number) => {
    if (!sawAngle && !sawComment) {
      const text = value.slice(element, end);
      const lead = text.length - text.trimStart().length;
      const trimmed = text.trim();
      // A bare addr-spec: one word, no white space (a display name without <> is not one).
      if (trimmed !== '' && !/\s/.test(trimmed.replace(/"(?:[^"\\]|\\.)*"/g, '""'))) {
        spans.push({ start: element + lead, end: element + lead + trimmed.length });
      }
    }
    sawAngle = false;
    sawComment = false;
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
      continue;
    }
    if (depth > 0) {
      if (c === '\\') i++;
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      continue;
    }
    if (angle >= 0) {
      if (c === '"') quoted = true;
      else if (c === '>') {
        let start = angle;
        // An obsolete route (@a,@b:addr) is kept; only the addr-spec after it is rewritten.
        const inner = value.slice(angle, i);
        const colon = inner.startsWith('@') ? inner.indexOf(':') : -1;
        if (colon >= 0) start += colon + 1;
        const text = value.slice(start, i);
        const lead = text.length - text.trimStart().length;
        const trimmed = text.trim();
        if (trimmed !== '') spans.push({ start: start + lead, end: start + lead + trimmed.length });
        angle = -1;
      }
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '(') {
      depth = 1;
      sawComment = true;
    } else if (c === '<') {
      angle = i + 1;
      sawAngle = true;
    } else if (c === ',' || c === ';') {
      closeElement(i);
      element = i + 1;
    } else if (c === ':') {
      // A group's display name ends here (RFC 5322 §3.4): its members follow.
      sawAngle = false;
      sawComment = false;
      element = i + 1;
    }
  }
  if (angle < 0 && !quoted && depth === 0) closeElement(value.length);
  return spans;
}

/**
 * Rewrite each address of an address-list value; `rewrite` returns the new address or
 * undefined to keep it. Returns undefined when nothing changed.
 */
export function rewriteAddressList(value: string, rewrite: (address: string) => string | undefined): string | undefined {
  let out = value;
  let changed = false;
  const spans = addressSpans(value);
  for (let k = spans.length - 1; k >= 0; k--) {
    const { start, end } = spans[k]!;
    const address = value.slice(start, end);
    const next = rewrite(address);
    if (next === undefined || next === address) continue;
    out = out.slice(0, start) + next + out.slice(end);
    changed = true;
  }
  return changed ? out : undefined;
}
