/**
 * The Resolver against a real unbound (Debian package `unbound`; `ldnsutils` for the DNSSEC
 * part), started on a 127.0.0.1 port with local data only. It never recurses: "." is a
 * refused local zone, and the only stub for "." is a localhost address that unbound is not
 * allowed to query. Skipped when /usr/sbin/unbound is absent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { Resolver } from '../../src/routing/resolver.js';

const UNBOUND = '/usr/sbin/unbound';
const hasUnbound = existsSync(UNBOUND);
const which = (cmd: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const hasLdns = hasUnbound && which('ldns-keygen') && which('ldns-signzone');

const TLSA_HEX = 'a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8';
const LONG = 'x'.repeat(100);

async function freePort(): Promise<number> {
  for (;;) {
    const u = dgram.createSocket('udp4');
    u.bind(0, '127.0.0.1');
    await once(u, 'listening');
    const port = u.address().port;
    const t = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      t.once('error', () => resolve(false));
      t.listen(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((r) => u.close(() => r()));
    if (ok) {
      await new Promise<void>((r) => t.close(() => r()));
      return port;
    }
  }
}

function config(dir: string, port: number, trustAnchor: string | undefined): string {
  const zonefile = join(dir, trustAnchor ? 'signed.test.zone.signed' : 'signed.test.zone');
  const data = [
    'example.test. 300 IN MX 10 mx1.example.test.',
    'example.test. 300 IN MX 20 mx2.example.test.',
    'example.test. 300 IN TXT "v=spf1 -all"',
    'example.test. 300 IN TXT "two" "strings"',
    'mx1.example.test. 300 IN A 192.0.2.1',
    'mx1.example.test. 300 IN AAAA 2001:db8::1',
    'mx2.example.test. 300 IN A 192.0.2.2',
    `_25._tcp.mx1.example.test. 300 IN TLSA 3 1 1 ${TLSA_HEX}`,
    'null.example.test. 300 IN MX 0 .',
    'www.example.test. 300 IN CNAME mx1.example.test.',
    ...Array.from({ length: 150 }, (_, i) => `big.example.test. 300 IN A 10.1.${i >> 8}.${i & 255}`),
    ...Array.from({ length: 30 }, (_, i) => `long.example.test. 300 IN TXT "${i} ${LONG}"`),
  ];
  return [
    'server:',
    `  interface: 127.0.0.1@${port}`,
    `  port: ${port}`,
    '  do-ip4: yes',
    '  do-ip6: no',
    '  do-udp: yes',
    '  do-tcp: yes',
    '  do-daemonize: no',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    '  pidfile: ""',
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 0',
    '  num-threads: 1',
    '  access-control: 127.0.0.0/8 allow',
    '  edns-buffer-size: 1232',
    '  minimal-responses: yes',
    // No recursion: everything outside the local zones is refused.
    '  local-zone: "." refuse',
    '  local-zone: "example.test." static',
    ...data.map((d) => (d.includes('"') ? `  local-data: '${d}'` : `  local-data: "${d}"`)),
    ...(trustAnchor ? ['  module-config: "validator iterator"', `  trust-anchor-file: "${trustAnchor}"`] : ['  module-config: "iterator"']),
    // signed.test comes from a zone file through the iterator (which follows CNAMEs), validated
    // when there is a trust anchor.
    '  local-zone: "signed.test." transparent',
    'auth-zone:',
    '  name: "signed.test."',
    `  zonefile: "${zonefile}"`,
    '  for-downstream: no',
    '  for-upstream: yes',
    '  fallback-enabled: no',
    'stub-zone:',
    '  name: "."',
    '  stub-addr: 127.0.0.1@9', // unusable (do-not-query-localhost): a last guard against recursion
    'remote-control:',
    '  control-enable: no',
    '',
  ].join('\n');
}

function writeZone(dir: string): void {
  writeFileSync(
    join(dir, 'signed.test.zone'),
    [
      '$ORIGIN signed.test.',
      '$TTL 300',
      '@ IN SOA ns.signed.test. hostmaster.signed.test. 1 3600 600 86400 300',
      '@ IN NS ns.signed.test.',
      'ns IN A 127.0.0.1',
      '@ IN MX 10 mx.signed.test.',
      'mx IN A 192.0.2.53',
      'www IN CNAME alias',
      'alias IN CNAME mx',
      `_25._tcp.mx IN TLSA 3 1 1 ${TLSA_HEX}`,
      '',
    ].join('\n'),
  );
}

/** Signs the zone with a fresh Ed25519 key; returns the trust anchor file (the DNSKEY). */
function signZone(dir: string): string {
  const base = execFileSync('ldns-keygen', ['-a', 'ED25519', '-k', 'signed.test'], { cwd: dir }).toString().trim();
  execFileSync('ldns-signzone', ['signed.test.zone', base], { cwd: dir });
  return join(dir, `${base}.key`);
}

describe.skipIf(!hasUnbound)('Resolver against a local unbound', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let stderr = '';
  let resolver: Resolver;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mailwire-unbound-'));
    writeZone(dir);
    const anchor = hasLdns ? signZone(dir) : undefined;
    const port = await freePort();
    writeFileSync(join(dir, 'unbound.conf'), config(dir, port, anchor));
    child = spawn(UNBOUND, ['-d', '-c', join(dir, 'unbound.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    resolver = new Resolver({ servers: [`127.0.0.1:${port}`], timeout: 1000, tries: 2 });
    const probe = new Resolver({ servers: [`127.0.0.1:${port}`], timeout: 100, tries: 1 });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`unbound exited: ${stderr}`);
      try {
        await probe.resolve4('mx1.example.test');
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`unbound did not answer: ${String(err)} ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }, 20_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('MX, A, AAAA, TXT, TLSA, null MX and CNAME', async () => {
    const mxs = await resolver.resolveMx('example.test');
    expect([...mxs].sort((x, y) => x.priority - y.priority)).toEqual([
      { exchange: 'mx1.example.test', priority: 10 },
      { exchange: 'mx2.example.test', priority: 20 },
    ]);
    expect(mxs.authenticated).toBe(false);
    expect([...(await resolver.resolveMx('null.example.test.'))]).toEqual([{ exchange: '', priority: 0 }]);
    expect([...(await resolver.resolve4('MX1.example.test'))]).toEqual(['192.0.2.1']);
    expect([...(await resolver.resolve6('mx1.example.test'))]).toEqual(['2001:db8::1']);
    expect([...(await resolver.resolveTxt('example.test'))].sort()).toEqual([['two', 'strings'], ['v=spf1 -all']].sort());
    const tlsa = await resolver.resolveTlsa('_25._tcp.mx1.example.test');
    expect(tlsa).toHaveLength(1);
    expect(tlsa[0]).toMatchObject({ usage: 3, selector: 1, matchingType: 1 });
    expect(Buffer.from(tlsa[0]!.data).toString('hex')).toBe(TLSA_HEX);
  });

  it('follows a CNAME chain in the answer; a bare CNAME (unbound does not chase local data) is ENODATA', async () => {
    expect([...(await resolver.resolve4('www.signed.test'))]).toEqual(['192.0.2.53']);
    await expect(resolver.resolve4('www.example.test')).rejects.toMatchObject({ code: 'ENODATA' });
  });

  it('NXDOMAIN, NODATA and REFUSED (no recursion)', async () => {
    await expect(resolver.resolve4('nowhere.example.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver.resolve6('mx2.example.test')).rejects.toMatchObject({ code: 'ENODATA' });
    await expect(resolver.resolveMx('example.com')).rejects.toMatchObject({ code: 'EREFUSED', syscall: 'queryMx' });
  });

  it('truncated UDP answers are asked again over TCP; lists capped at 100', async () => {
    const txt = await resolver.resolveTxt('long.example.test');
    expect(txt).toHaveLength(30);
    expect(txt.every((t) => t.length === 1 && t[0]!.endsWith(LONG))).toBe(true);
    expect(await resolver.resolve4('big.example.test')).toHaveLength(100);
  });

  it.skipIf(!hasLdns)('a validating unbound sets AD for a signed zone: authenticated', async () => {
    const mxs = await resolver.resolveMx('signed.test');
    expect([...mxs]).toEqual([{ exchange: 'mx.signed.test', priority: 10 }]);
    expect(mxs.authenticated).toBe(true);
    expect((await resolver.resolve4('mx.signed.test')).authenticated).toBe(true);
    const tlsa = await resolver.resolveTlsa('_25._tcp.mx.signed.test');
    expect(tlsa.authenticated).toBe(true);
    expect(Buffer.from(tlsa[0]!.data).toString('hex')).toBe(TLSA_HEX);
    // Without EDNS (no DO bit) the AD flag in our query still asks for it (RFC 6840 §5.7).
    const plain = new Resolver({ servers: resolver.getServers(), edns: false });
    expect((await plain.resolveMx('signed.test')).authenticated).toBe(true);
    // The local-data zone is not signed.
    expect((await resolver.resolve4('mx1.example.test')).authenticated).toBe(false);
  });

  it('left its files in a temporary directory only', () => {
    expect(readdirSync(dir)).toContain('unbound.conf');
    expect(readFileSync(join(dir, 'unbound.conf'), 'utf8')).toContain('local-zone: "." refuse');
  });
});
