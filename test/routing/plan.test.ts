import { describe, expect, it } from 'vitest';
import { planServers, type PlanOptions } from '../../src/routing/plan.js';
import { parseDestination } from '../../src/destination/parse-destination.js';
import { describe as describeWhy } from '../../src/results/describe.js';
import type { DnsResolver } from '../../src/routing/resolver.js';

type Zone = Record<string, { mx?: Array<[number, string]> | 'servfail' | 'nxdomain'; a?: string[] | 'servfail'; aaaa?: string[] }>;

function fakeResolver(zone: Zone): DnsResolver {
  const err = (code: string) => Object.assign(new Error(code), { code });
  const get = (name: string) => zone[name.toLowerCase()];
  return {
    async resolveMx(name) {
      const z = get(name);
      if (!z) throw err('ENOTFOUND');
      if (z.mx === 'servfail') throw err('ESERVFAIL');
      if (z.mx === 'nxdomain') throw err('ENOTFOUND');
      if (!z.mx) throw err('ENODATA');
      return z.mx.map(([priority, exchange]) => ({ priority, exchange }));
    },
    async resolve4(name) {
      const z = get(name);
      if (!z) throw err('ENOTFOUND');
      if (z.a === 'servfail') throw err('ESERVFAIL');
      if (!z.a) throw err('ENODATA');
      return z.a;
    },
    async resolve6(name) {
      const z = get(name);
      if (!z) throw err('ENOTFOUND');
      if (!z.aaaa) throw err('ENODATA');
      return z.aaaa;
    },
  };
}

const zone: Zone = {
  'example.test': { mx: [[10, 'mx1.example.test'], [10, 'mx2.example.test'], [20, 'mx3.example.test']] },
  'mx1.example.test': { a: ['192.0.2.1'] },
  'mx2.example.test': { a: ['192.0.2.2'], aaaa: ['2001:db8::2'] },
  'mx3.example.test': { a: ['192.0.2.3'] },
  'implicit.test': { a: ['192.0.2.9'] },
  'nullmx.test': { mx: [[0, '']], a: ['192.0.2.66'] },
  'nxmx.test': { mx: [[10, 'missing.nxmx.test']] },
  'softmx.test': { mx: [[10, 'broken.softmx.test'], [20, 'missing.softmx.test']] },
  'broken.softmx.test': { a: 'servfail' },
  'servfail.test': { mx: 'servfail', a: ['192.0.2.77'] },
  'many.test': { mx: [[10, 'm.many.test']] },
  'm.many.test': { a: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6', '10.0.0.7'] },
};

function opts(extra: Partial<PlanOptions> = {}): PlanOptions {
  return {
    protocol: 'smtp',
    resolver: fakeResolver(zone),
    dnsSupportLevel: 'enabled',
    hostLookup: ['dns'],
    inetProtocols: 'all',
    mxAddressLimit: 5,
    randomizeAddresses: false,
    balanceInetProtocols: true,
    addressPreference: 'any',
    myAddresses: new Set(),
    deferIfNoMxAddressFound: false,
    ignoreMxLookupError: false,
    myHostname: 'me.test',
    ...extra,
  };
}

async function plan(dest: string, extra: Partial<PlanOptions> = {}) {
  return planServers(parseDestination(dest, { protocol: extra.protocol ?? 'smtp' })[0]!, opts(extra));
}

function status(p: Awaited<ReturnType<typeof plan>>): [string, string] {
  if (p.ok) throw new Error('expected a failure');
  const d = describeWhy(p.why, undefined);
  return [d.status, d.reason];
}

describe('planServers', () => {
  it('MX: preference order, every address of each host, the port kept', async () => {
    const p = await plan('example.test:2525');
    expect(p.ok && p.servers.map((s) => (s.kind === 'tcp' ? `${s.preference} ${s.host} ${s.address}:${s.port}` : ''))).toEqual([
      '10 mx1.example.test 192.0.2.1:2525',
      '10 mx2.example.test 192.0.2.2:2525',
      '10 mx2.example.test 2001:db8::2:2525',
      '20 mx3.example.test 192.0.2.3:2525',
    ]);
  });

  it('implicit MX: the domain\'s own addresses at preference 0', async () => {
    const p = await plan('implicit.test');
    expect(p.ok && p.servers.map((s) => s.kind === 'tcp' && s.address)).toEqual(['192.0.2.9']);
  });

  it('null MX: 5.1.10, no A fallback (RFC 7505 over Postfix\'s 5.1.0)', async () => {
    expect(status(await plan('nullmx.test'))).toEqual(['5.1.10', 'Domain nullmx.test does not accept mail (nullMX)']);
  });

  it('a domain that does not exist: 5.4.4', async () => {
    expect(status(await plan('nowhere.test'))[0]).toBe('5.4.4');
  });

  it('MX host without address: 5.4.4, or 4.4.4 with deferIfNoMxAddressFound', async () => {
    expect(status(await plan('nxmx.test'))).toEqual(['5.4.4', 'Host or domain name not found. Name service error for name=missing.nxmx.test type=A: Host not found']);
    expect(status(await plan('nxmx.test', { deferIfNoMxAddressFound: true }))[0]).toBe('4.4.4');
  });

  it('a soft lookup error dominates a later hard one (class stays 4)', async () => {
    const [s, reason] = status(await plan('softmx.test'));
    expect(s).toBe('4.4.4');
    expect(reason).toMatch(/name=missing\.softmx\.test/);
  });

  it('MX lookup SERVFAIL: 4.4.3, no A fallback unless ignoreMxLookupError', async () => {
    expect(status(await plan('servfail.test'))[0]).toBe('4.4.3');
    const p = await plan('servfail.test', { ignoreMxLookupError: true });
    expect(p.ok && p.servers.map((s) => s.kind === 'tcp' && s.address)).toEqual(['192.0.2.77']);
  });

  it('mxAddressLimit cuts the list (0 = no limit)', async () => {
    expect((await plan('many.test')).ok && ((await plan('many.test')) as { servers: unknown[] }).servers.length).toBe(5);
    expect(((await plan('many.test', { mxAddressLimit: 0 })) as { servers: unknown[] }).servers.length).toBe(7);
  });

  it('inetProtocols ipv4 skips AAAA', async () => {
    const p = await plan('example.test', { inetProtocols: 'ipv4' });
    expect(p.ok && p.servers.every((s) => s.kind === 'tcp' && s.family === 4)).toBe(true);
  });

  it('[host]: no MX lookup', async () => {
    const p = await plan('[mx3.example.test]');
    expect(p.ok && p.servers.map((s) => s.kind === 'tcp' && s.address)).toEqual(['192.0.2.3']);
  });

  it('dnsSupportLevel disabled: no MX lookup, native lookups', async () => {
    const p = await plan('localhost', { dnsSupportLevel: 'disabled' });
    expect(p.ok && p.servers.length).toBeGreaterThan(0);
    expect(p.ok && p.servers.every((s) => s.kind === 'tcp' && (s.address === '127.0.0.1' || s.address === '::1'))).toBe(true);
  });

  describe('self-detection (myAddresses, SMTP on port 25)', () => {
    it('we are a backup MX: only better MX hosts remain, and no fallback relay after us', async () => {
      const p = await plan('example.test', { myAddresses: new Set(['192.0.2.3']) });
      expect(p.ok && p.iAmMx).toBe(true);
      expect(p.ok && p.servers.map((s) => s.kind === 'tcp' && s.host)).toEqual(['mx1.example.test', 'mx2.example.test', 'mx2.example.test']);
    });
    it('we are the best MX: 5.4.6 mail loops back to myself, final', async () => {
      const p = await plan('example.test', { myAddresses: new Set(['192.0.2.2']) });
      expect(status(p)).toEqual(['5.4.6', 'mail for example.test loops back to myself']);
      expect(!p.ok && p.final).toBe(true);
    });
    it('better MX hosts exist but have no address: 4.4.4 unable to find primary relay', async () => {
      const z: Zone = { ...zone, 'backup.test': { mx: [[5, 'gone.backup.test'], [10, 'me.backup.test']] }, 'me.backup.test': { a: ['192.0.2.50'] } };
      const p = await planServers(parseDestination('backup.test')[0]!, opts({ resolver: fakeResolver(z), myAddresses: new Set(['192.0.2.50']) }));
      expect(status(p)).toEqual(['4.4.4', 'unable to find primary relay for backup.test']);
    });
    it('a host list with our address: 5.4.6; not on another port; not without myAddresses', async () => {
      expect(status(await plan('[mx1.example.test]', { myAddresses: new Set(['192.0.2.1']) }))[0]).toBe('5.4.6');
      expect((await plan('[mx1.example.test]:2525', { myAddresses: new Set(['192.0.2.1']) })).ok).toBe(true);
      expect((await plan('[mx1.example.test]')).ok).toBe(true);
    });
  });
});
