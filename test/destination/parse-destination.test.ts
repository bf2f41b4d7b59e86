import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseDestination } from '../../src/destination/parse-destination.js';
import { MailwireError } from '../../src/errors.js';

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof MailwireError ? e.code : 'other';
  }
  return undefined;
}

describe('parseDestination (DEST-1..14)', () => {
  it('domain and domain:port look up MX; the port does not stop it', () => {
    expect(parseDestination('example.org')).toEqual([{ kind: 'mx', nexthop: 'example.org', host: 'example.org', port: 25, certName: 'example.org' }]);
    expect(parseDestination('example.org:2525')[0]).toMatchObject({ kind: 'mx', host: 'example.org', port: 2525, nexthop: 'example.org:2525' });
  });

  it('[host] and [host]:port turn MX off', () => {
    expect(parseDestination('[mx.example.org]:587')[0]).toMatchObject({ kind: 'host', host: 'mx.example.org', port: 587, nexthop: '[mx.example.org]:587' });
    expect(parseDestination('[mx.example.org]:')[0]).toMatchObject({ kind: 'host', port: 25 });
  });

  it('address literals, IPv4 and [ipv6:...] (tag case-insensitive), and bare [v6]', () => {
    expect(parseDestination('[192.0.2.1]')[0]).toMatchObject({ kind: 'address', address: '192.0.2.1', family: 4, port: 25 });
    expect(parseDestination('[IPv6:2001:db8::1]:25')[0]).toMatchObject({ kind: 'address', address: '2001:db8::1', family: 6, port: 25 });
    expect(parseDestination('[::1]:2525')[0]).toMatchObject({ kind: 'address', address: '::1', family: 6, port: 2525 });
    expect(parseDestination('192.0.2.1:2525')[0]).toMatchObject({ kind: 'address', address: '192.0.2.1', port: 2525 });
  });

  it('a bare IPv6 address is an error (the split is at the last colon)', () => {
    expect(code(() => parseDestination('2001:db8::1'))).toBe('EDESTINATION');
    expect(code(() => parseDestination('[ipv6:zz::1]'))).toBe('EDESTINATION');
  });

  it('LMTP: unix:/path, inet:host:port (never MX), default port 24', () => {
    expect(parseDestination('unix:/run/lmtp', { protocol: 'lmtp', myHostname: 'me.test' })).toEqual([{ kind: 'unix', nexthop: '/run/lmtp', path: '/run/lmtp', certName: 'me.test' }]);
    expect(parseDestination('inet:lmtp.example.org', { protocol: 'lmtp' })[0]).toMatchObject({ kind: 'host', host: 'lmtp.example.org', port: 24, nexthop: 'lmtp.example.org' });
    expect(parseDestination('inet:[127.0.0.1]:10024', { protocol: 'lmtp' })[0]).toMatchObject({ kind: 'address', port: 10024 });
    expect(parseDestination('lmtp.example.org', { protocol: 'lmtp' })[0]).toMatchObject({ kind: 'host' });
  });

  it('SMTP refuses the unix:/inet: prefixes (DEST-7)', () => {
    expect(code(() => parseDestination('unix:/run/x'))).toBe('EDESTINATION');
    expect(code(() => parseDestination('inet:host:25'))).toBe('EDESTINATION');
  });

  it('ports: digits must be all digits 1..65535; names come from known_tcp_ports', () => {
    expect(parseDestination('[h.example]:submission')[0]).toMatchObject({ port: 587 });
    expect(parseDestination('[h.example]:SMTPS')[0]).toMatchObject({ port: 465 });
    expect(parseDestination('[h.example]:custom', { knownTcpPorts: { custom: 2626 } })[0]).toMatchObject({ port: 2626 });
    for (const bad of ['[h.example]:0', '[h.example]:65536', '[h.example]:25x', '[h.example]:nosuch']) {
      expect(code(() => parseDestination(bad)), bad).toBe('EDESTINATION');
    }
    expect(parseDestination('example.org', { port: 2525 })[0]).toMatchObject({ port: 2525 });
  });

  it('lists separated by commas and/or white space, tried in order', () => {
    const d = parseDestination(' a.example, [b.example]:2525\tc.example ,, ');
    expect(d.map((x) => x.nexthop)).toEqual(['a.example', '[b.example]:2525', 'c.example']);
  });

  it('IDN names become A-labels (UTS #46 non-transitional: ß kept)', () => {
    expect(parseDestination('bücher.example')[0]).toMatchObject({ host: 'xn--bcher-kva.example' });
    expect(parseDestination('[straße.de]')[0]).toMatchObject({ host: 'xn--strae-oqa.de' });
  });

  it('empty or malformed input is EDESTINATION', () => {
    for (const bad of ['', '   ', ',', '[host', '[h]x', 'a..b', '-a.example', 'a b!.example', '[]', 'inet:']) {
      expect(code(() => parseDestination(bad)), JSON.stringify(bad)).toBe('EDESTINATION');
    }
  });

  it('property: never throws anything but MailwireError EDESTINATION', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom('smtp', 'lmtp') as fc.Arbitrary<'smtp' | 'lmtp'>, (s, protocol) => {
        const c = code(() => parseDestination(s, { protocol }));
        expect(c === undefined || c === 'EDESTINATION').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
