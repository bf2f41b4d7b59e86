/**
 * EHLO/LHLO reply → server capabilities (RFC 5321 §4.1.1.1; Postfix smtp_proto.c:smtp_helo,
 * POSTFIX-BEHAVIOR.md §1.3 step 6).
 */
export interface Capabilities {
  /** First word of the first line: the name the server gives itself. */
  serverName: string;
  /** Every keyword kept (upper case) with its parameters, after discarding. */
  keywords: ReadonlyMap<string, readonly string[]>;
  pipelining: boolean; // RFC 2920
  chunking: boolean; // RFC 3030
  binaryMime: boolean; // RFC 3030
  eightBitMime: boolean; // RFC 6152
  smtputf8: boolean; // RFC 6531
  dsn: boolean; // RFC 3461
  enhancedStatusCodes: boolean; // RFC 2034 (Postfix does not consult it: statuses are read from every reply)
  startTls: boolean; // RFC 3207
  requireTls: boolean; // RFC 8689
  /** RFC 1870 SIZE limit; 0 when announced without a (numeric) limit or not announced. */
  size: number;
  sizeAnnounced: boolean;
  /** RFC 4954 mechanisms from every AUTH line (also the old `AUTH=` form), upper case, deduplicated. */
  auth: readonly string[];
  /** XFORWARD attributes (Postfix extension), upper case. */
  xforward: readonly string[];
  /** Warnings worth an event (e.g. a SIZE parameter that is not a number). */
  warnings: readonly string[];
}

export interface ParseEhloOptions {
  /**
   * Postfix `smtp_discard_ehlo_keywords`: keywords to ignore, case-insensitively.
   * The pseudo-keyword `silent-discard` turns off the warning about discarded keywords.
   */
  discardEhloKeywords?: readonly string[];
}

/** Parse the lines of an EHLO/LHLO reply (as `Reply.lines`: `250-…` / `250 …`, or the text after the code). */
export function parseEhlo(lines: readonly string[], options: ParseEhloOptions = {}): Capabilities {
  const discard = new Set((options.discardEhloKeywords ?? []).map((k) => k.toUpperCase()));
  const silent = discard.delete('SILENT-DISCARD');
  const keywords = new Map<string, string[]>();
  const warnings: string[] = [];
  const discarded: string[] = [];
  let serverName = '';
  lines.forEach((raw, i) => {
    const text = /^\d{3}[ -]?/.test(raw) ? raw.slice(4) : raw;
    // Postfix splits on space, tab and '=' (the old "AUTH=LOGIN" form).
    const words = text.split(/[ \t=]+/).filter((w) => w.length > 0);
    if (i === 0) {
      serverName = words[0] ?? '';
      return;
    }
    const keyword = words[0]?.toUpperCase();
    if (!keyword) return; // e.g. smtp-sink's bare "250 " last line
    if (discard.has(keyword)) {
      discarded.push(keyword);
      return;
    }
    const params = words.slice(1);
    const had = keywords.get(keyword);
    keywords.set(keyword, had ? had.concat(params) : params); // several AUTH lines are joined
  });
  if (discarded.length > 0 && !silent) warnings.push(`discarding EHLO keywords: ${discarded.join(' ')}`);

  const has = (k: string) => keywords.has(k);
  let size = 0;
  const sizeParams = keywords.get('SIZE');
  if (sizeParams && sizeParams.length > 0) {
    const p = sizeParams[0]!;
    if (/^\d+$/.test(p)) size = Number(p);
    else warnings.push(`unrecognized SIZE parameter: ${p}`);
  }
  const auth = [...new Set((keywords.get('AUTH') ?? []).map((m) => m.toUpperCase()))];
  const smtputf8 = has('SMTPUTF8');
  return {
    serverName,
    keywords,
    pipelining: has('PIPELINING'),
    chunking: has('CHUNKING'),
    binaryMime: has('BINARYMIME'),
    // Postfix: a server that offers SMTPUTF8 but not 8BITMIME is treated as offering 8BITMIME.
    eightBitMime: has('8BITMIME') || smtputf8,
    smtputf8,
    dsn: has('DSN'),
    enhancedStatusCodes: has('ENHANCEDSTATUSCODES'),
    startTls: has('STARTTLS'),
    requireTls: has('REQUIRETLS'),
    size,
    sizeAnnounced: has('SIZE'),
    auth,
    xforward: (keywords.get('XFORWARD') ?? []).map((a) => a.toUpperCase()),
    warnings,
  };
}

/** What a server that answered HELO (not EHLO) offers: nothing. */
export function noCapabilities(serverName = ''): Capabilities {
  return parseEhlo([`250 ${serverName}`]);
}
