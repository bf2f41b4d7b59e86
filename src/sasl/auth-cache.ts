/**
 * The SASL authentication-failure cache (Postfix smtp_sasl_auth_cache_name / _time, 90 days;
 * SASL-10): after a 535, remember (server, username) with a hash of the secret and the
 * server's reply; while fresh and the secret unchanged, AUTH is not tried again and the cached
 * reply decides. The secret itself is never stored.
 */
import { createHash } from 'node:crypto';
import type { SaslCredentials } from './credentials.js';

export interface AuthCacheEntry {
  /** When the failure happened (ms epoch). */
  time: number;
  /** SHA-256 of (server, username, secret): detects a changed password without keeping it. */
  secretHash: string;
  /** The server's reply lines to AUTH. */
  reply: string[];
}

/** API.md's store shape: sync or async. */
export interface AuthCacheStore {
  get(key: string): AuthCacheEntry | undefined | Promise<AuthCacheEntry | undefined>;
  set(key: string, value: AuthCacheEntry, ttlMs: number): void | Promise<void>;
  delete(key: string): void | Promise<void>;
}

export class MemoryAuthCache implements AuthCacheStore {
  private readonly entries = new Map<string, { value: AuthCacheEntry; expires: number }>();
  constructor(private readonly maxEntries = 10_000) {}
  get(key: string): AuthCacheEntry | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }
  set(key: string, value: AuthCacheEntry, ttlMs: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expires: Date.now() + ttlMs });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
  delete(key: string): void {
    this.entries.delete(key);
  }
}

/** Postfix keys the cache by server host name and username. */
export function authCacheKey(host: string, username: string): string {
  return `${host.toLowerCase()}\n${username}`;
}

export function secretHash(host: string, c: SaslCredentials): string {
  return createHash('sha256')
    .update(`${host.toLowerCase()}\0${c.username}\0${c.password ?? ''}\0${c.accessToken ?? ''}`)
    .digest('hex');
}

/** The cached failure to apply, or undefined (and a stale or outdated entry is removed). */
export async function cachedFailure(store: AuthCacheStore, host: string, c: SaslCredentials, ttlMs: number): Promise<string[] | undefined> {
  const key = authCacheKey(host, c.username);
  let entry: AuthCacheEntry | undefined;
  try {
    entry = await store.get(key);
  } catch {
    return undefined; // a failing cache is a miss, never a reason to fail delivery
  }
  if (!entry) return undefined;
  if (Date.now() - entry.time > ttlMs || entry.secretHash !== secretHash(host, c)) {
    try {
      await store.delete(key);
    } catch {
      /* ignored */
    }
    return undefined;
  }
  return entry.reply;
}
