/**
 * Arguments of MAIL and RCPT (RFC 5321 §4.1.2): `FROM:<path> params`, `TO:<path> params`, and
 * the checks a server makes on the ESMTP parameters (RFC 1870, 6152, 3461, 6531, 4954).
 */

export interface PathArgument {
  /** The address without angle brackets and without a source route. */
  address: string;
  /** The ESMTP parameters, as sent. */
  params: string[];
}

/**
 * Parse `FROM:<a@b> P=V ...` (keyword `FROM`) or `TO:<...>` (keyword `TO`). A space after the
 * colon is accepted (Postfix does), quoted local parts may hold spaces and `>`, and an address
 * without brackets is taken up to the first space. Returns undefined on a syntax error.
 */
export function parsePathArgument(arg: string, keyword: 'FROM' | 'TO'): PathArgument | undefined {
  const prefix = `${keyword}:`;
  if (arg.slice(0, prefix.length).toUpperCase() !== prefix) return undefined;
  let i = prefix.length;
  while (arg[i] === ' ') i++;
  let address: string;
  let rest: string;
  if (arg[i] === '<') {
    const end = closingBracket(arg, i + 1);
    if (end === -1) return undefined;
    address = arg.slice(i + 1, end);
    rest = arg.slice(end + 1);
    if (rest !== '' && rest[0] !== ' ') return undefined;
  } else {
    const sp = arg.indexOf(' ', i);
    address = sp === -1 ? arg.slice(i) : arg.slice(i, sp);
    rest = sp === -1 ? '' : arg.slice(sp);
    if (address === '') return undefined;
  }
  // RFC 5321 §4.1.2 / App. C: a source route "@a,@b:" before the mailbox is ignored.
  if (address.startsWith('@')) {
    const colon = address.indexOf(':');
    if (colon === -1) return undefined;
    address = address.slice(colon + 1);
  }
  const params = rest.split(' ').filter((p) => p !== '');
  return { address, params };
}

/** Index of the `>` closing a path that starts at `from`, skipping quoted strings. */
function closingBracket(s: string, from: number): number {
  let quoted = false;
  for (let i = from; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === '>') {
      return i;
    }
  }
  return -1;
}

/** Split `KEY=VALUE` (the key upper-cased). */
export function splitParam(p: string): { key: string; value: string | undefined } {
  const eq = p.indexOf('=');
  return eq === -1 ? { key: p.toUpperCase(), value: undefined } : { key: p.slice(0, eq).toUpperCase(), value: p.slice(eq + 1) };
}

/** xtext (RFC 3461 §4): printable ASCII except "+" and "=", or "+" and two upper-case hex digits. */
export function isXtext(s: string): boolean {
  return /^(?:[!-*,-<>-~]|\+[0-9A-F]{2})*$/.test(s);
}

/**
 * ORCPT value (RFC 3461 §4.2): `addr-type ";" xtext`; for `utf-8` (RFC 6533 §3) the address may
 * hold UTF-8 and `\x{HEX}` escapes, and no "+", "=" or controls.
 */
export function isOrcpt(v: string): boolean {
  const semi = v.indexOf(';');
  if (semi <= 0) return false;
  const type = v.slice(0, semi);
  const addr = v.slice(semi + 1);
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(type) || addr === '') return false;
  if (type.toLowerCase() === 'utf-8') return !/[\0- +=\x7f]/.test(addr);
  return isXtext(addr);
}

/** Which announced keyword a MAIL parameter needs, or undefined when it is unknown. */
export function mailParamExtension(key: string, value: string | undefined): string | undefined {
  switch (key) {
    case 'SIZE':
      return 'SIZE';
    case 'BODY':
      return value?.toUpperCase() === 'BINARYMIME' ? 'BINARYMIME' : '8BITMIME';
    case 'SMTPUTF8':
      return 'SMTPUTF8';
    case 'RET':
    case 'ENVID':
      return 'DSN';
    case 'AUTH':
      return 'AUTH';
    case 'REQUIRETLS':
      return 'REQUIRETLS';
    case 'MT-PRIORITY':
      return 'MT-PRIORITY';
    case 'BY':
      return 'DELIVERBY';
    case 'HOLDFOR':
    case 'HOLDUNTIL':
      return 'FUTURERELEASE';
    default:
      return undefined;
  }
}

/** Which announced keyword a RCPT parameter needs, or undefined when it is unknown. */
export function rcptParamExtension(key: string): string | undefined {
  switch (key) {
    case 'NOTIFY':
    case 'ORCPT':
      return 'DSN';
    case 'RRVS':
      return 'RRVS';
    default:
      return undefined;
  }
}

/**
 * Check MAIL parameters against what was announced. Returns an error reply, or undefined.
 * Parameters of extensions that were not announced are refused, as RFC 5321 §4.1.1.11 asks
 * ("555 5.5.4 Unsupported option", Postfix's wording).
 */
export function checkMailParams(params: readonly string[], announced: ReadonlyMap<string, string>): string | undefined {
  const seen = new Set<string>();
  for (const p of params) {
    const { key, value } = splitParam(p);
    const ext = mailParamExtension(key, value);
    if (ext === undefined || !announced.has(ext)) return `555 5.5.4 Unsupported option: ${p}`;
    if (seen.has(key)) return `501 5.5.4 Duplicate ${key} parameter`;
    seen.add(key);
    switch (key) {
      case 'SIZE':
        if (value === undefined || !/^[0-9]{1,20}$/.test(value)) return '501 5.5.4 Bad message size syntax';
        break;
      case 'BODY':
        if (value === undefined || !/^(?:7BIT|8BITMIME|BINARYMIME)$/i.test(value)) return '501 5.5.4 Unsupported option: ' + p;
        break;
      case 'SMTPUTF8':
        if (value !== undefined) return '501 5.5.4 Bad SMTPUTF8 parameter syntax';
        break;
      case 'RET':
        if (value === undefined || !/^(?:FULL|HDRS)$/i.test(value)) return '501 5.5.4 Bad RET parameter syntax';
        break;
      case 'ENVID':
        if (value === undefined || value === '' || value.length > 100 || !isXtext(value)) return '501 5.5.4 Bad ENVID parameter syntax';
        break;
      case 'AUTH':
        if (value === undefined || (value !== '<>' && !isXtext(value))) return '501 5.5.4 Bad AUTH parameter syntax';
        break;
      default:
        break;
    }
  }
  return undefined;
}

/** Check RCPT parameters (RFC 3461 §4.1, §4.2). Returns an error reply, or undefined. */
export function checkRcptParams(params: readonly string[], announced: ReadonlyMap<string, string>): string | undefined {
  const seen = new Set<string>();
  for (const p of params) {
    const { key, value } = splitParam(p);
    const ext = rcptParamExtension(key);
    if (ext === undefined || !announced.has(ext)) return `555 5.5.4 Unsupported option: ${p}`;
    if (seen.has(key)) return `501 5.5.4 Duplicate ${key} parameter`;
    seen.add(key);
    if (key === 'NOTIFY') {
      const v = (value ?? '').toUpperCase();
      const items = v.split(',');
      const ok =
        v === 'NEVER' ||
        (v !== '' && items.every((x) => x === 'SUCCESS' || x === 'FAILURE' || x === 'DELAY') && new Set(items).size === items.length);
      if (!ok) return '501 5.5.4 Bad NOTIFY parameter syntax';
    } else if (key === 'ORCPT') {
      if (value === undefined || value.length > 500 || !isOrcpt(value)) return '501 5.5.4 Bad ORCPT parameter syntax';
    }
  }
  return undefined;
}

/** Whether a string has any octet outside US-ASCII. */
export function hasNonAscii(s: string): boolean {
  return /[^\0-\x7f]/.test(s);
}
