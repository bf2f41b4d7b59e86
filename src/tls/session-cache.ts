/**
 * TLS session resumption cache per server (Postfix `smtp_tls_session_cache_database` and
 * `smtp_tls_session_cache_timeout`, 3600 s; TLS-26). In memory by default, bounded, no
 * timers (entries expire by timestamp), so nothing keeps the event loop alive.
 */
/**
 * A resumable session with what the full handshake learned about the peer: a resumed TLS 1.3
 * session carries no certificate, so the level's check runs on the chain kept here (Postfix
 * keeps the peer verification with its cached sessions likewise).
 */
export interface TlsSessionEntry {
  session: Uint8Array;
  /** The peer's chain (DER), leaf first, from the full handshake. */
  chain: Uint8Array[];
  /** Node's PKIX verdict from the full handshake (`socket.authorized`, `authorizationError`). */
  authorized: boolean;
  authorizationError?: string;
}

export interface TlsSessionStore {
  get(key: string): TlsSessionEntry | undefined;
  set(key: string, entry: TlsSessionEntry, ttlMs: number): void;
}

export class MemoryTlsSessionStore implements TlsSessionStore {
  private readonly entries = new Map<string, { entry: TlsSessionEntry; expires: number }>();
  constructor(private readonly maxEntries = 1000) {}

  get(key: string): TlsSessionEntry | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.entry;
  }

  set(key: string, entry: TlsSessionEntry, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { entry, expires: Date.now() + ttlMs });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}

/** The process-wide default store. */
export const defaultTlsSessionStore = new MemoryTlsSessionStore();

/** Postfix clamps the timeout: at most 100 days, under 2 minutes becomes 2 minutes, 0 turns it off. */
export function clampSessionTimeout(ms: number): number {
  if (ms <= 0) return 0;
  return Math.min(Math.max(ms, 120_000), 100 * 86_400_000);
}
