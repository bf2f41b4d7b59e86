/**
 * `checkTable(text)`: a Postfix regexp table (regexp_table(5)) of header_checks(5) or
 * body_checks rules, as a `headerCheck` or `bodyCheck` hook. Rules are `/pattern/flags ACTION
 * text` (or `!/pattern/` to match when the pattern does not), tried in order; the first match
 * decides. Patterns are case-insensitive unless the `i` flag toggles that (as in Postfix);
 * `$1`, `${1}` in the text take the match's groups. A header is matched as `Name: value`,
 * unfolded. Lines starting with white space continue the previous one; `#` starts a comment.
 *
 * Only the actions the SMTP client allows are accepted (DUNNO, IGNORE, INFO, PREPEND, REPLACE,
 * STRIP, WARN); REJECT, DISCARD, HOLD, REDIRECT, BCC, FILTER, PASS and anything else reject the
 * table with `MailwireError` `EOPTION`, before any mail is sent (REW-2). `if`/`endif` blocks
 * are not supported (EOPTION).
 */
import { MailwireError } from '../errors.js';
import type { BodyCheck, CheckAction, HeaderCheck } from './hooks.js';

const ALLOWED = new Set(['DUNNO', 'IGNORE', 'INFO', 'PREPEND', 'REPLACE', 'STRIP', 'WARN']);
const RESTRICTED = new Set(['REJECT', 'DISCARD', 'HOLD', 'REDIRECT', 'BCC', 'FILTER', 'PASS', 'OK', 'DEFER', 'DEFER_IF_PERMIT', 'DEFER_IF_REJECT', 'FREEZE']);

interface Rule {
  re: RegExp;
  negate: boolean;
  action: string;
  text: string;
  line: number;
}

function bad(line: number, message: string): never {
  throw new MailwireError('EOPTION', `checkTable line ${line}: ${message}`);
}

function parse(text: string): Rule[] {
  // Join continuation lines (white space at the start), dropping comments and empty lines.
  const logical: Array<{ text: string; line: number }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (/^\s*(#|$)/.test(raw)) return;
    if (/^\s/.test(raw) && logical.length > 0) logical[logical.length - 1]!.text += ` ${raw.trim()}`;
    else logical.push({ text: raw.trim(), line: i + 1 });
  });
  return logical.map(({ text: l, line }) => {
    if (/^(if|endif)\b/i.test(l)) bad(line, 'if/endif blocks are not supported');
    const negate = l.startsWith('!');
    const body = negate ? l.slice(1) : l;
    const delim = body[0];
    if (delim === undefined || /[\sA-Za-z0-9\\]/.test(delim)) bad(line, 'expected /pattern/flags');
    let end = 1;
    for (; end < body.length; end++) {
      if (body[end] === '\\') end++;
      else if (body[end] === delim) break;
    }
    if (end >= body.length) bad(line, 'unterminated pattern');
    const pattern = body.slice(1, end);
    const flagMatch = /^[A-Za-z]*/.exec(body.slice(end + 1))![0];
    let ignoreCase = true;
    let multiline = false;
    for (const f of flagMatch) {
      if (f === 'i') ignoreCase = !ignoreCase;
      else if (f === 'm') multiline = true;
      else if (f !== 'x') bad(line, `unknown flag ${f}`);
    }
    const rest = body.slice(end + 1 + flagMatch.length).trim();
    const m = /^(\S+)\s*(.*)$/.exec(rest);
    if (!m) bad(line, 'no action');
    const action = m[1]!.toUpperCase();
    if (RESTRICTED.has(action)) bad(line, `${action} is not allowed in SMTP client checks (only ${[...ALLOWED].join(', ')})`);
    if (!ALLOWED.has(action)) bad(line, `unknown action ${m[1]}`);
    if ((action === 'PREPEND' || action === 'REPLACE') && m[2] === '') bad(line, `${action} needs a text`);
    let re: RegExp;
    try {
      re = new RegExp(pattern, `${ignoreCase ? 'i' : ''}${multiline ? 'm' : ''}u`);
    } catch {
      try {
        re = new RegExp(pattern, `${ignoreCase ? 'i' : ''}${multiline ? 'm' : ''}`);
      } catch (err) {
        bad(line, `bad pattern: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return { re, negate, action, text: m[2]!, line };
  });
}

function decide(rules: Rule[], subject: string): CheckAction | undefined {
  for (const r of rules) {
    const m = r.re.exec(subject);
    if ((m !== null) === r.negate) continue;
    const text = m ? r.text.replace(/\$(?:\{(\d+)\}|(\d))/g, (_s, a: string | undefined, b: string | undefined) => m[Number(a ?? b)] ?? '') : r.text;
    switch (r.action) {
      case 'DUNNO':
        return { action: 'dunno' };
      case 'IGNORE':
        return { action: 'ignore' };
      case 'PREPEND':
        return { action: 'prepend', text };
      case 'REPLACE':
        return { action: 'replace', text };
      default:
        return { action: r.action.toLowerCase() as 'info' | 'strip' | 'warn', ...(text ? { text } : {}) };
    }
  }
  return undefined;
}

/** header_checks(5) rules as a `headerCheck` hook (the same table serves MIME and nested headers). */
export function headerCheckTable(text: string): HeaderCheck {
  const rules = parse(text);
  return (h) => decide(rules, `${h.name}:${h.value}`);
}

/** body_checks rules as a `bodyCheck` hook. */
export function bodyCheckTable(text: string): BodyCheck {
  const rules = parse(text);
  return (l) => decide(rules, l.text);
}
