import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mulberry32 as seeded } from '../helpers/random.js';
import { balanceInetProtocols, normalizeAddress, orderMxHosts, truncateSelf, type MxAddress } from '../../src/routing/mx-order.js';

const v4 = (host: string, preference: number, address = `192.0.2.${host.length}`): MxAddress => ({ host, address, family: 4, preference });
const v6 = (host: string, preference: number, address = `2001:db8::${host.length}`): MxAddress => ({ host, address, family: 6, preference });

describe('orderMxHosts', () => {
  it('sorts by preference and never violates it (property)', () => {
    const arb = fc.array(fc.record({ preference: fc.integer({ min: 0, max: 50 }), v6: fc.boolean(), n: fc.nat(1000) }), { maxLength: 40 });
    fc.assert(
      fc.property(arb, fc.integer(), fc.constantFrom('any', 'ipv4', 'ipv6') as fc.Arbitrary<'any' | 'ipv4' | 'ipv6'>, fc.integer({ min: 0, max: 12 }), (specs, seed, pref, limit) => {
        const list = specs.map((s, i) => (s.v6 ? v6(`h${i}`, s.preference, `2001:db8::${i}`) : v4(`h${i}`, s.preference, `10.0.${i >> 8}.${i & 255}`)));
        const out = orderMxHosts(list, { random: seeded(seed), addressPreference: pref, mxAddressLimit: limit });
        for (let i = 1; i < out.length; i++) expect(out[i]!.preference).toBeGreaterThanOrEqual(out[i - 1]!.preference);
        if (limit > 0) expect(out.length).toBe(Math.min(limit, list.length));
        else expect(out.length).toBe(list.length);
        // Nothing invented, nothing duplicated.
        expect(new Set(out.map((a) => a.address)).size).toBe(out.length);
        for (const a of out) expect(list).toContain(a);
      }),
      { numRuns: 300 },
    );
  });

  it('shuffles equal preferences uniformly (chi-square over 10,000 draws, 6 permutations)', () => {
    const list = [v4('a.example', 10, '10.0.0.1'), v4('b.example', 10, '10.0.0.2'), v4('c.example', 10, '10.0.0.3'), v4('z.example', 20, '10.0.0.9')];
    const random = seeded(20261125);
    const counts = new Map<string, number>();
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      const out = orderMxHosts(list, { random, mxAddressLimit: 0 });
      expect(out[3]!.host).toBe('z.example'); // the worse preference always last
      const key = out.slice(0, 3).map((a) => a.host[0]).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    const expected = N / 6;
    const chi2 = [...counts.values()].reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    // 5 degrees of freedom: p = 0.001 at 20.52.
    expect(chi2).toBeLessThan(20.52);
  });

  it('randomizeAddresses: false keeps the given order at equal preference', () => {
    const list = [v4('a', 10), v4('bb', 10), v4('ccc', 10)];
    expect(orderMxHosts(list, { randomizeAddresses: false }).map((a) => a.host)).toEqual(['a', 'bb', 'ccc']);
  });

  it('addressPreference puts a family first at equal preference only', () => {
    const list = [v4('a', 10), v6('bb', 10), v4('ccc', 20), v6('dddd', 20)];
    expect(orderMxHosts(list, { randomizeAddresses: false, addressPreference: 'ipv6' }).map((a) => a.host)).toEqual(['bb', 'a', 'dddd', 'ccc']);
    expect(orderMxHosts(list, { randomizeAddresses: false, addressPreference: 'ipv4' }).map((a) => a.host)).toEqual(['a', 'bb', 'ccc', 'dddd']);
  });
});

describe('balanceInetProtocols (Postfix smtp_balance_inet_proto)', () => {
  const mk = (fams: string) => [...fams].map((f, i) => (f === '4' ? v4(`h${i}`, 10, `10.0.0.${i}`) : v6(`h${i}`, 10, `2001:db8::${i}`)));
  const fams = (l: MxAddress[]) => l.map((a) => a.family).join('');
  it('few IPv6: keep them all and fill with IPv4', () => {
    expect(fams(balanceInetProtocols(mk('44444446'), 5))).toBe('44446');
  });
  it('few IPv4: keep them all and fill with IPv6', () => {
    expect(fams(balanceInetProtocols(mk('66666664'), 5))).toBe('66664');
  });
  it('many of both: split, the first entry\'s family gets the odd one', () => {
    expect(fams(balanceInetProtocols(mk('4646464646'), 5))).toBe('46464');
    expect(fams(balanceInetProtocols(mk('6464646464'), 5))).toBe('64646');
  });
  it('one family, or a list within the limit: unchanged', () => {
    expect(fams(balanceInetProtocols(mk('4444444'), 5))).toBe('4444444');
    expect(fams(balanceInetProtocols(mk('4466'), 5))).toBe('4466');
  });
  it('property: both families survive when both exist and the limit is at least 2', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('4', '6'), { minLength: 2, maxLength: 30 }), fc.integer({ min: 2, max: 10 }), (f, limit) => {
        const list = mk(f.join(''));
        const out = balanceInetProtocols(list, limit);
        if (f.includes('4') && f.includes('6')) {
          expect(out.some((a) => a.family === 4) && out.some((a) => a.family === 6)).toBe(true);
        }
        if (list.length > limit && f.includes('4') && f.includes('6')) expect(out.length).toBe(limit);
      }),
    );
  });
});

describe('truncateSelf (MX-6)', () => {
  const list = [v4('mx1', 10, '192.0.2.1'), v4('mx2', 20, '192.0.2.2'), v4('mx2b', 20, '192.0.2.3'), v4('mx3', 30, '192.0.2.4')];
  it('drops us and everything at or worse than our preference', () => {
    const r = truncateSelf(list, new Set(['192.0.2.3']));
    expect(r).toMatchObject({ found: true, preference: 20 });
    expect(r.list.map((a) => a.host)).toEqual(['mx1']);
  });
  it('we are the best MX: nothing left', () => {
    expect(truncateSelf(list, new Set(['192.0.2.1'])).list).toEqual([]);
  });
  it('not us: unchanged; IPv6 is compared in canonical form', () => {
    expect(truncateSelf(list, new Set(['198.51.100.1']))).toMatchObject({ found: false });
    expect(normalizeAddress('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(normalizeAddress('::FFFF:127.0.0.1')).toBe('127.0.0.1');
  });
});
