/**
 * MTA-STS (RFC 8461): discover a domain's policy through the `_mta-sts` TXT record, fetch it
 * over HTTPS from `mta-sts.<domain>`, cache it for `max_age`, and tell the delivery loop which
 * policy applies and what went wrong (for TLS-RPT, RFC 8460).
 *
 * ```ts
 * const sts = await getMtaStsPolicy('example.com', { resolver });
 * if (sts.policy && sts.policy.mode !== 'none') {
 *   const allowed = mxMatchesPolicy('mx1.example.com', sts.policy.mx);
 *   // enforce: skip MX hosts that do not match, require TLS verified for the MX name
 * }
 * if (sts.failure) report(sts.failure); // sts-policy-fetch-error, sts-policy-invalid, sts-webpki-invalid
 * ```
 *
 * Parsing and matching are pure (`mta-sts-policy.ts`), the HTTPS I/O is in `mta-sts-fetch.ts`,
 * and the cache interface in `policy-store.ts`; this module re-exports all of them.
 */
import { domainToASCII } from 'node:url';
import { raceAbort } from '../abort.js';
import { isIP } from 'node:net';
import { MailwireError } from '../errors.js';
import type { DnsResolver } from '../routing/resolver.js';
import { parseStsPolicy, readStsTxt, type MtaStsFailure, type MtaStsPolicy } from './mta-sts-policy.js';
import { fetchStsPolicyText, policyUrl } from './mta-sts-fetch.js';
import { MemoryMtaStsStore, type MtaStsCached, type MtaStsStore } from './policy-store.js';

export { parseStsTxt, parseStsPolicy, readStsTxt, mxMatchesPolicy, MTA_STS_MAX_AGE_LIMIT } from './mta-sts-policy.js';
export type { MtaStsPolicy, MtaStsFailure, StsTxtReading } from './mta-sts-policy.js';
export { MemoryMtaStsStore } from './policy-store.js';
export type { MtaStsStore, MtaStsCached, MemoryMtaStsStoreOptions } from './policy-store.js';
export { fetchStsPolicyText, policyUrl, MTA_STS_WELL_KNOWN_PATH } from './mta-sts-fetch.js';
export type { PolicyFetchOptions, PolicyFetchResult } from './mta-sts-fetch.js';

/** Options of {@link getMtaStsPolicy}. */
export interface MtaStsOptions {
  /** DNS for the `_mta-sts.<domain>` TXT record (needs `resolveTxt`) and the policy host's A/AAAA. */
  resolver: DnsResolver;
  /** Policy cache; default: one module-level {@link MemoryMtaStsStore} shared by every call. */
  store?: MtaStsStore;
  /** The whole HTTPS fetch (policy host lookup, connect, TLS, request, body), ms; default 10000. */
  fetchTimeout?: number;
  /** Largest policy body accepted, octets; default 65536 (RFC 8461 §3.3). */
  maxPolicySize?: number;
  /** Trust anchors (PEM) used besides Node's root store for the policy host's certificate. */
  ca?: string | Uint8Array | Array<string | Uint8Array>;
  /** HTTPS port of the policy host; default 443. */
  port?: number;
  /** Aborting rejects the lookup with the signal's reason (nothing is cached). */
  signal?: AbortSignal;
  /** Clock, ms since the epoch; default `Date.now`. */
  now?: () => number;
  /**
   * After a failed fetch, the same domain and TXT `id` are not fetched again for this many ms
   * (RFC 8461 §3.3: "SHOULD limit further attempts to a period of five minutes or longer per
   * version ID"); meanwhile the lookup repeats the failure with `fetches: 0`. Default 300000;
   * 0 fetches every time. Kept per store.
   */
  fetchRetryInterval?: number;
}

/** What {@link getMtaStsPolicy} found. */
export interface MtaStsLookup {
  /**
   * The policy to apply: freshly fetched, or cached and unexpired. Absent: no policy, deliver as
   * without MTA-STS. A policy in mode `none` means the same as no policy.
   */
  policy?: MtaStsPolicy;
  /** `fetched`: `policy` comes from this call's fetch; `cache`: from the store; `none`: no policy. */
  source: 'none' | 'cache' | 'fetched';
  /**
   * A problem worth a TLS-RPT report (RFC 8461 §6), also when a cached policy is used: any
   * HTTPS fetch failure after a valid TXT record; and a broken or unanswered TXT lookup while a
   * cached policy (not in mode `none`) applies.
   */
  failure?: MtaStsFailure;
  /** HTTPS fetches this call started (0 or 1); a call that joined another call's fetch has 0. */
  fetches: number;
}

const DEFAULTS = { fetchTimeout: 10_000, maxPolicySize: 65_536, port: 443, fetchRetryInterval: 300_000 };

/** The store used when `options.store` is not given. */
const defaultStore = new MemoryMtaStsStore();

type FetchOutcome = { ok: true; policy: MtaStsPolicy } | { ok: false; failure: MtaStsFailure };

interface StoreState {
  /** Fetches under way, by `domain id`: concurrent lookups share one. */
  inflight: Map<string, { promise: Promise<FetchOutcome>; waiters: number; controller: AbortController }>;
  /** Recent failed fetches, by domain (RFC 8461 §3.3 retry limit). */
  failures: Map<string, { id: string; until: number; failure: MtaStsFailure }>;
}
const MAX_REMEMBERED_FAILURES = 10_000;
const states = new WeakMap<MtaStsStore, StoreState>();

function stateOf(store: MtaStsStore): StoreState {
  let s = states.get(store);
  if (!s) {
    s = { inflight: new Map(), failures: new Map() };
    states.set(store, s);
  }
  return s;
}

interface Checked {
  resolver: DnsResolver & { resolveTxt: NonNullable<DnsResolver['resolveTxt']> };
  store: MtaStsStore;
  fetchTimeout: number;
  maxPolicySize: number;
  ca: MtaStsOptions['ca'];
  port: number;
  signal: AbortSignal | undefined;
  now: () => number;
  fetchRetryInterval: number;
}

function checkOptions(options: MtaStsOptions): Checked {
  const bad = (what: string): never => {
    throw new MailwireError('EOPTION', `MTA-STS: ${what}`);
  };
  if (options === null || typeof options !== 'object') bad('options must be an object');
  const { resolver, store = defaultStore, ca, signal, now = Date.now } = options;
  const fetchTimeout = options.fetchTimeout ?? DEFAULTS.fetchTimeout;
  const maxPolicySize = options.maxPolicySize ?? DEFAULTS.maxPolicySize;
  const port = options.port ?? DEFAULTS.port;
  const fetchRetryInterval = options.fetchRetryInterval ?? DEFAULTS.fetchRetryInterval;
  if (!resolver || typeof resolver !== 'object') bad('resolver is required');
  if (typeof resolver.resolveTxt !== 'function') bad('the resolver has no resolveTxt method');
  if (typeof resolver.resolve4 !== 'function' || typeof resolver.resolve6 !== 'function') bad('the resolver needs resolve4 and resolve6');
  if (!store || typeof store.get !== 'function' || typeof store.set !== 'function' || typeof store.delete !== 'function') {
    bad('store must have get, set and delete methods');
  }
  if (typeof fetchTimeout !== 'number' || !(fetchTimeout > 0) || !Number.isFinite(fetchTimeout)) bad('fetchTimeout must be a positive number of ms');
  if (!Number.isInteger(maxPolicySize) || maxPolicySize < 1) bad('maxPolicySize must be a positive integer');
  if (!Number.isInteger(port) || port < 1 || port > 65535) bad('port must be an integer from 1 to 65535');
  if (typeof fetchRetryInterval !== 'number' || !(fetchRetryInterval >= 0)) bad('fetchRetryInterval must be a number of ms, 0 or more');
  if (typeof now !== 'function') bad('now must be a function');
  if (signal !== undefined && !(signal instanceof AbortSignal)) bad('signal must be an AbortSignal');
  if (ca !== undefined) {
    const list = Array.isArray(ca) ? ca : [ca];
    if (!list.every((c) => typeof c === 'string' || c instanceof Uint8Array)) bad('ca must be PEM text or bytes, or an array of them');
  }
  return { resolver: resolver as Checked['resolver'], store, fetchTimeout, maxPolicySize, ca, port, signal, now, fetchRetryInterval };
}

const LDH_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;

/** The policy domain: lower case, A-labels, no trailing dot; undefined for IP literals and non-names. */
function policyDomainOf(domain: string): string | undefined {
  let d = domain;
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (/[^\x00-\x7f]/.test(d)) d = domainToASCII(d);
  d = d.toLowerCase();
  if (d === '' || isIP(d) !== 0 || d.length > 253 - 'mta-sts.'.length) return undefined;
  return d.split('.').every((l) => LDH_LABEL.test(l)) ? d : undefined;
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isCached(v: unknown): v is MtaStsCached {
  const c = v as MtaStsCached | undefined;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.fetchedAt === 'number' &&
    typeof c.policy === 'object' &&
    c.policy !== null &&
    typeof c.policy.maxAge === 'number' &&
    typeof c.policy.id === 'string' &&
    Array.isArray(c.policy.mx)
  );
}

/**
 * The unexpired cached policy for `domain`, if any. A store that fails or returns something
 * malformed counts as a miss: the cache is an optimization and a safety net, never a reason to
 * fail delivery.
 */
async function readCache(o: Checked, domain: string): Promise<MtaStsCached | undefined> {
  let value: unknown;
  try {
    value = await raceAbort(Promise.resolve(o.store.get(domain)), o.signal);
  } catch (err) {
    if (o.signal?.aborted) throw err;
    return undefined;
  }
  if (!isCached(value)) return undefined;
  return o.now() < value.fetchedAt + value.policy.maxAge * 1000 ? value : undefined;
}

/** Stores a freshly fetched policy for `max_age`; `max_age` 0 removes the previous entry instead (it is replaced, §3.3). */
async function writeCache(o: Checked, domain: string, policy: MtaStsPolicy, fetchedAt: number): Promise<void> {
  try {
    if (policy.maxAge > 0) await o.store.set(domain, { policy, fetchedAt }, policy.maxAge * 1000);
    else await o.store.delete(domain);
  } catch {
    /* a failing store only costs a later refetch */
  }
}

/** One fetch, parse and cache update. Rejects only when `signal` aborts. */
async function fetchAndCache(o: Checked, domain: string, id: string, signal: AbortSignal): Promise<FetchOutcome> {
  const state = stateOf(o.store);
  const fetched = await fetchStsPolicyText(`mta-sts.${domain}`, {
    resolver: o.resolver,
    port: o.port,
    ca: o.ca,
    timeout: o.fetchTimeout,
    maxSize: o.maxPolicySize,
    signal,
  });
  let outcome: FetchOutcome;
  if (!fetched.ok) outcome = fetched;
  else {
    const parsed = parseStsPolicy(fetched.text, id);
    outcome = parsed.ok
      ? { ok: true, policy: parsed.policy }
      : { ok: false, failure: { resultType: 'sts-policy-invalid', detail: `${policyUrl(`mta-sts.${domain}`, o.port)}: ${parsed.detail}` } };
  }
  if (outcome.ok) {
    state.failures.delete(domain);
    await writeCache(o, domain, outcome.policy, o.now());
  } else if (o.fetchRetryInterval > 0) {
    state.failures.delete(domain);
    state.failures.set(domain, { id, until: o.now() + o.fetchRetryInterval, failure: outcome.failure });
    while (state.failures.size > MAX_REMEMBERED_FAILURES) state.failures.delete(state.failures.keys().next().value as string);
  }
  return outcome;
}

/** Runs the fetch for `domain`/`id`, or joins one already under way for the same store. */
async function sharedFetch(o: Checked, domain: string, id: string): Promise<{ outcome: FetchOutcome; started: boolean }> {
  const state = stateOf(o.store);
  const key = `${domain} ${id}`;
  let entry = state.inflight.get(key);
  const started = entry === undefined;
  if (!entry) {
    const controller = new AbortController();
    const promise = fetchAndCache(o, domain, id, controller.signal);
    const created = { promise, waiters: 0, controller };
    promise.then(
      () => state.inflight.get(key) === created && state.inflight.delete(key),
      () => state.inflight.get(key) === created && state.inflight.delete(key),
    );
    state.inflight.set(key, created);
    entry = created;
  }
  const joined = entry;
  joined.waiters++;
  // When every caller waiting for a fetch has aborted, the fetch is aborted too.
  const outcome = await raceAbort(joined.promise, o.signal, () => {
    if (--joined.waiters === 0) joined.controller.abort(o.signal?.reason);
  });
  return { outcome, started };
}

/**
 * Finds the MTA-STS policy for a policy domain (the recipient domain / next-hop domain), as RFC
 * 8461 §3 and §5.1 describe:
 *
 * 1. Look up TXT `_mta-sts.<domain>`. No `v=STSv1` record (NXDOMAIN, NODATA, other records):
 *    use the cached unexpired policy if any (`source: 'cache'`), else no policy. The same when
 *    the record is broken (two candidates, bad syntax) or the lookup fails (SERVFAIL,
 *    timeout), and then `failure` is set if a cached policy applies.
 * 2. Same `id` as the cached unexpired policy: the cached policy, no fetch.
 * 3. Otherwise fetch `https://mta-sts.<domain>/.well-known/mta-sts.txt` (see
 *    {@link fetchStsPolicyText}), parse it, and cache it for `max_age` seconds (`max_age` 0:
 *    not cached, and the previous entry is removed; a policy in mode `none` is cached like any
 *    other, so that it withdraws the old one).
 * 4. If the fetch or the policy fails: the cached unexpired policy if any, else no policy; in
 *    both cases with `failure`. A failed fetch is not repeated for the same `id` within
 *    `fetchRetryInterval`.
 *
 * Concurrent calls for the same domain, `id` and store share one fetch. An IP literal or a
 * string that is not a domain name has no policy (`source: 'none'`, nothing looked up).
 *
 * Never rejects for DNS, network, certificate, HTTP, policy or store problems. Rejects with
 * `MailwireError` (`EOPTION`) for bad options or a domain that is not a string, and with
 * `options.signal.reason` when the signal aborts.
 */
export async function getMtaStsPolicy(domain: string, options: MtaStsOptions): Promise<MtaStsLookup> {
  const o = checkOptions(options);
  if (typeof domain !== 'string') throw new MailwireError('EOPTION', 'MTA-STS: domain must be a string');
  o.signal?.throwIfAborted();
  const policyDomain = policyDomainOf(domain);
  if (policyDomain === undefined) return { source: 'none', fetches: 0 };

  const cached = await readCache(o, policyDomain);
  const fromCache = (failure: MtaStsFailure | undefined, fetches: number): MtaStsLookup => {
    const f = failure ? { failure } : {};
    return cached ? { policy: cached.policy, source: 'cache', ...f, fetches } : { source: 'none', ...f, fetches };
  };
  // A broken TXT lookup is reportable only while a real cached policy applies (RFC 8461 §6).
  const txtProblem = (failure: MtaStsFailure) => fromCache(cached && cached.policy.mode !== 'none' ? failure : undefined, 0);

  const txtName = `_mta-sts.${policyDomain}`;
  let records: string[][];
  try {
    records = await raceAbort(Promise.resolve(o.resolver.resolveTxt(txtName, { signal: o.signal })), o.signal);
  } catch (err) {
    if (o.signal?.aborted) throw o.signal.reason;
    const code = errorCode(err);
    if (code === 'ENOTFOUND' || code === 'ENODATA') return fromCache(undefined, 0);
    return txtProblem({ resultType: 'sts-policy-fetch-error', detail: `${txtName} TXT lookup failed: ${describeError(err)}` });
  }
  const txt = readStsTxt(Array.isArray(records) ? records : []);
  if (txt.kind === 'absent') return fromCache(undefined, 0);
  if (txt.kind === 'invalid') return txtProblem({ resultType: 'sts-policy-invalid', detail: `${txtName}: ${txt.detail}` });

  if (cached && cached.policy.id === txt.id) return { policy: cached.policy, source: 'cache', fetches: 0 };

  const recent = stateOf(o.store).failures.get(policyDomain);
  if (recent && recent.id === txt.id && o.now() < recent.until) return fromCache(recent.failure, 0);

  const { outcome, started } = await sharedFetch(o, policyDomain, txt.id);
  const fetches = started ? 1 : 0;
  if (outcome.ok) return { policy: outcome.policy, source: 'fetched', fetches };
  return fromCache(outcome.failure, fetches);
}
