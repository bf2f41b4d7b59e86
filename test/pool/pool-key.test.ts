/** poolKey(): Postfix's two cache labels (smtp_key.c; POOL-7, POOL-10). */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { poolKey, type PoolKeyInput } from '../../src/pool/pool-key.js';

const base: PoolKeyInput = { protocol: 'smtp', heloName: 'client.test', nexthop: 'example.com', address: '192.0.2.1', port: 25, tls: 'may' };

describe('poolKey', () => {
  it('the destination label ignores the address; the endpoint label ignores the next hop', () => {
    expect(poolKey('destination', base)).toBe(poolKey('destination', { ...base, address: '192.0.2.2', port: 587 }));
    expect(poolKey('endpoint', base)).toBe(poolKey('endpoint', { ...base, nexthop: 'other.example' }));
    expect(poolKey('destination', base)).not.toBe(poolKey('destination', { ...base, nexthop: 'other.example' }));
    expect(poolKey('endpoint', base)).not.toBe(poolKey('endpoint', { ...base, port: 587 }));
    expect(poolKey('endpoint', base)).not.toBe(poolKey('destination', base));
  });

  it('protocol, TLS policy and credentials separate connections; the HELO name is case-insensitive', () => {
    for (const kind of ['destination', 'endpoint'] as const) {
      const k = poolKey(kind, base);
      expect(poolKey(kind, { ...base, protocol: 'lmtp' })).not.toBe(k);
      expect(poolKey(kind, { ...base, tls: 'secure' })).not.toBe(k);
      expect(poolKey(kind, { ...base, heloName: 'CLIENT.test' })).toBe(k);
      const alice = poolKey(kind, { ...base, credentials: { username: 'alice', password: 'a' } });
      expect(alice).not.toBe(k);
      expect(poolKey(kind, { ...base, credentials: { username: 'alice', password: 'b' } })).not.toBe(alice);
      expect(poolKey(kind, { ...base, credentials: { username: 'bob', password: 'a' } })).not.toBe(alice);
    }
  });

  it('the sender (sender-dependent credentials) changes only the destination label', () => {
    expect(poolKey('destination', { ...base, sender: 'a@x.test' })).not.toBe(poolKey('destination', { ...base, sender: 'b@x.test' }));
    expect(poolKey('destination', { ...base, sender: 'a@x.test' })).not.toBe(poolKey('destination', base));
    expect(poolKey('endpoint', { ...base, sender: 'a@x.test' })).toBe(poolKey('endpoint', base));
  });

  it('never contains a secret or the sender in clear (property)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 6 }), fc.string({ minLength: 6 }), (password, sender) => {
        for (const kind of ['destination', 'endpoint'] as const) {
          const k = poolKey(kind, { ...base, sender, credentials: { username: 'u', password, accessToken: password } });
          expect(k.includes(password)).toBe(false);
          expect(k.includes(sender)).toBe(false);
        }
      }),
    );
  });
});
