/**
 * `genericMap(table)`: Postfix smtp_generic_maps semantics for a table held in memory
 * (generic(5); REW-1), as a `rewriteAddress` hook. For `user+ext@domain` the lookups are, in
 * order: `user+ext@domain`, `user@domain`, then (only when `domain` is ours: `myOrigin` or
 * `myDomains`) `user+ext` and `user`, then `@domain`. A result `@other` keeps the user part
 * (`user@other`). Extensions are not carried over to the result (propagate_unmatched_extensions
 * leaves out generic). Keys are compared case-insensitively, as Postfix folds lookup keys.
 */
import { MailwireError } from '../errors.js';
import type { RewriteAddress } from './hooks.js';

export interface GenericMapOptions {
  /** `myorigin`: a domain that is ours. */
  myOrigin?: string;
  /** `mydestination` and the other domains that are ours. */
  myDomains?: string[];
  /** `recipient_delimiter` (empty: no extensions); each character is a delimiter. */
  recipientDelimiter?: string;
}

export function genericMap(table: Record<string, string> | Map<string, string>, options: GenericMapOptions = {}): RewriteAddress {
  const map = new Map<string, string>();
  for (const [k, v] of table instanceof Map ? table : Object.entries(table)) {
    if (typeof k !== 'string' || typeof v !== 'string' || k === '' || v === '' || /[\s\0]/.test(k) || /[\r\n\0]/.test(v)) {
      throw new MailwireError('EOPTION', `genericMap: bad entry ${JSON.stringify(k)} → ${JSON.stringify(v)}`);
    }
    map.set(k.toLowerCase(), v.trim());
  }
  const ours = new Set([options.myOrigin, ...(options.myDomains ?? [])].filter((d): d is string => !!d).map((d) => d.toLowerCase()));
  const delimiters = options.recipientDelimiter ?? '';

  return (address) => {
    const at = address.lastIndexOf('@');
    const local = at < 0 ? address : address.slice(0, at);
    const domain = at < 0 ? '' : address.slice(at + 1);
    let user = local;
    let ext = '';
    if (delimiters !== '') {
      const cut = [...delimiters].map((d) => local.indexOf(d)).filter((i) => i > 0);
      if (cut.length > 0) {
        const i = Math.min(...cut);
        user = local.slice(0, i);
        ext = local.slice(i);
      }
    }
    const keys: string[] = [];
    if (domain !== '') {
      keys.push(`${local}@${domain}`);
      if (ext) keys.push(`${user}@${domain}`);
    }
    if (domain === '' || ours.has(domain.toLowerCase())) {
      keys.push(local);
      if (ext) keys.push(user);
    }
    if (domain !== '') keys.push(`@${domain}`);
    for (const key of keys) {
      const found = map.get(key.toLowerCase());
      if (found === undefined) continue;
      // "@other" keeps the user part (without the extension).
      return found.startsWith('@') ? `${user}${found}` : found;
    }
    return undefined;
  };
}
