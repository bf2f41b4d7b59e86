/**
 * Where fetched MTA-STS policies are kept between deliveries (RFC 8461 §3.3, §5.1). The shape
 * follows API.md's `AuthCacheStore`: three methods, each sync or async, so a caller can put
 * the cache in Redis or a database and share it across processes.
 */
import { MailwireError } from '../errors.js';
import type { MtaStsPolicy } from './mta-sts-policy.js';

/** A policy as cached: the policy and when it was fetched. */
export interface MtaStsCached {
  policy: MtaStsPolicy;
  /** When the policy was fetched, in ms since the epoch; it expires `policy.maxAge` seconds later. */
  fetchedAt: number;
}

/**
 * A cache of MTA-STS policies keyed by policy domain (lower case, A-labels, no trailing dot).
 * Methods may return values or promises. `getMtaStsPolicy` checks expiry itself from
 * `fetchedAt` and `maxAge`, so a store need not expire entries exactly on time; `ttlMs` lets it
 * drop them eventually.
 */
export interface MtaStsStore {
  get(domain: string): MtaStsCached | undefined | Promise<MtaStsCached | undefined>;
  set(domain: string, value: MtaStsCached, ttlMs: number): void | Promise<void>;
  delete(domain: string): void | Promise<void>;
}

export interface MemoryMtaStsStoreOptions {
  /** Most entries kept; the least recently used goes first (default 10000). */
  maxEntries?: number;
  /** Clock for expiry, ms (default `Date.now`). */
  now?: () => number;
}

/**
 * The default in-memory {@link MtaStsStore}: entries expire `ttlMs` after `set`, and at most
 * `maxEntries` are kept (least recently used evicted first). Not shared between processes.
 */
export class MemoryMtaStsStore implements MtaStsStore {
  readonly #entries = new Map<string, { value: MtaStsCached; expires: number }>();
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: MemoryMtaStsStoreOptions = {}) {
    if (options === null || typeof options !== 'object') throw new MailwireError('EOPTION', 'MemoryMtaStsStore options must be an object');
    const { maxEntries = 10_000, now = Date.now } = options;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new MailwireError('EOPTION', 'MemoryMtaStsStore maxEntries must be a positive integer');
    if (typeof now !== 'function') throw new MailwireError('EOPTION', 'MemoryMtaStsStore now must be a function');
    this.#maxEntries = maxEntries;
    this.#now = now;
  }

  /** The number of entries held, expired ones included until they are next looked at. */
  get size(): number {
    return this.#entries.size;
  }

  get(domain: string): MtaStsCached | undefined {
    const key = domain.toLowerCase();
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (this.#now() >= entry.expires) {
      this.#entries.delete(key);
      return undefined;
    }
    this.#entries.delete(key); // most recently used goes to the end
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** Stores `value` for `ttlMs` milliseconds; a ttl that is not positive deletes the entry instead. */
  set(domain: string, value: MtaStsCached, ttlMs: number): void {
    const key = domain.toLowerCase();
    this.#entries.delete(key);
    if (!(ttlMs > 0)) return;
    this.#entries.set(key, { value, expires: this.#now() + ttlMs });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  delete(domain: string): void {
    this.#entries.delete(domain.toLowerCase());
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
  }
}
