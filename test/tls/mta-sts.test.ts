/**
 * getMtaStsPolicy against a real node:https server on loopback, with certificates made at test
 * time by openssl (a test CA passed as `ca`) and a fake resolver that maps
 * `_mta-sts.example.test` TXT and `mta-sts.example.test` A/AAAA to it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SecureContext } from 'node:tls';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MailwireError } from '../../src/errors.js';
import type { DnsResolver, LookupOptions } from '../../src/routing/resolver.js';
import { getMtaStsPolicy, MemoryMtaStsStore, type MtaStsCached, type MtaStsOptions, type MtaStsStore } from '../../src/tls/mta-sts.js';

const DOMAIN = 'example.test';
const HOST = `mta-sts.${DOMAIN}`;
const POLICY = 'version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmx: *.mx.example.test\r\nmax_age: 86400\r\n';

// ---------------------------------------------------------------- certificates (openssl)

type KeyCert = { key: string; cert: string };
let dir: string;
let caPem: string;
const certs: Record<'good' | 'wrongName' | 'rogue' | 'wildcard' | 'cnOnly', KeyCert> = {} as never;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function makeCa(name: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`,
    '-days', '2', '-subj', `/O=mailwire tests/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

function makeLeaf(name: string, ca: string, cn: string, san: string | undefined): KeyCert {
  const ext = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth'];
  if (san) ext.push(`subjectAltName=${san}`);
  writeFileSync(join(dir, `${name}.ext`), `${ext.join('\n')}\n`);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`]);
  return { key: readFileSync(join(dir, `${name}.key`), 'utf8'), cert: readFileSync(join(dir, `${name}.crt`), 'utf8') };
}

// ---------------------------------------------------------------- the policy server

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servePolicy =
  (body: string | Buffer = POLICY, type = 'text/plain; charset=utf-8'): Handler =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': type });
    res.end(body);
  };

let server: https.Server;
let port: number;
let handler: Handler;
let presented: keyof typeof certs;
let requests: Array<{ path: string | undefined; host: string | undefined; servername: string | false | null | undefined }>;
const contexts = new Map<string, SecureContext>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mailwire-mta-sts-'));
  makeCa('ca');
  makeCa('rogue-ca');
  caPem = readFileSync(join(dir, 'ca.crt'), 'utf8');
  certs.good = makeLeaf('good', 'ca', HOST, `DNS:${HOST}`);
  certs.wrongName = makeLeaf('wrong', 'ca', 'mta-sts.other.test', 'DNS:mta-sts.other.test,DNS:example.test');
  certs.rogue = makeLeaf('rogue', 'rogue-ca', HOST, `DNS:${HOST}`);
  certs.wildcard = makeLeaf('wildcard', 'ca', '*.example.test', 'DNS:*.example.test');
  certs.cnOnly = makeLeaf('cnonly', 'ca', HOST, undefined);
  for (const [name, kc] of Object.entries(certs)) contexts.set(name, tls.createSecureContext(kc));

  server = https.createServer({ ...certs.good, SNICallback: (_name, cb) => cb(null, contexts.get(presented)) }, (req, res) => {
    requests.push({ path: req.url, host: req.headers.host, servername: (req.socket as tls.TLSSocket).servername });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  handler = servePolicy();
  presented = 'good';
  requests = [];
});
afterEach(() => server.closeAllConnections());

// ---------------------------------------------------------------- the fake resolver

function dnsError(code: string, name: string): Error {
  return Object.assign(new Error(`query ${code} ${name}`), { code });
}

interface Zone {
  txt?: string[][] | string; // a string is an error code
  a?: string[] | string;
  aaaa?: string[] | string;
}

function fakeResolver(zone: Zone): DnsResolver & { zone: Zone; queries: string[] } {
  const answer = <T,>(name: string, owner: string, data: T[] | string | undefined): Promise<T[]> => {
    if (name !== owner) return Promise.reject(dnsError('ENOTFOUND', name));
    if (data === undefined) return Promise.reject(dnsError('ENODATA', name));
    if (typeof data === 'string') return Promise.reject(dnsError(data, name));
    return Promise.resolve(data);
  };
  const r = {
    zone,
    queries: [] as string[],
    resolveMx: () => Promise.reject(dnsError('ENODATA', 'mx')),
    resolveTxt(name: string, _o?: LookupOptions) {
      r.queries.push(`TXT ${name}`);
      return answer(name, `_mta-sts.${DOMAIN}`, r.zone.txt);
    },
    resolve4(name: string, _o?: LookupOptions) {
      r.queries.push(`A ${name}`);
      return answer(name, HOST, r.zone.a);
    },
    resolve6(name: string, _o?: LookupOptions) {
      r.queries.push(`AAAA ${name}`);
      return answer(name, HOST, r.zone.aaaa);
    },
  };
  return r;
}

const txt = (id: string) => [[`v=STSv1; id=${id};`]];

function setup(zone: Zone = { txt: txt('id1'), a: ['127.0.0.1'] }, extra: Partial<MtaStsOptions> = {}) {
  const resolver = fakeResolver(zone);
  const store = new MemoryMtaStsStore();
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const options: MtaStsOptions = { resolver, store, port, ca: caPem, fetchTimeout: 2000, now: () => clock, ...extra };
  return {
    resolver,
    store,
    options,
    advance: (ms: number) => (clock += ms),
    lookup: (o: Partial<MtaStsOptions> = {}) => getMtaStsPolicy(DOMAIN, { ...options, ...o }),
  };
}

const enforcePolicy = { version: 'STSv1', mode: 'enforce', mx: ['mx1.example.test', '*.mx.example.test'], maxAge: 86400 };

// ---------------------------------------------------------------- tests

describe('getMtaStsPolicy: fetch', () => {
  it('fetches the policy over HTTPS with SNI and Host mta-sts.<domain>, then serves it from the cache while the id is unchanged', async () => {
    const t = setup();
    expect(await t.lookup()).toEqual({ policy: { ...enforcePolicy, id: 'id1' }, source: 'fetched', fetches: 1 });
    expect(requests).toEqual([{ path: '/.well-known/mta-sts.txt', host: `${HOST}:${port}`, servername: HOST }]);
    expect(t.resolver.queries).toEqual([`TXT _mta-sts.${DOMAIN}`, `A ${HOST}`]);

    expect(await t.lookup()).toEqual({ policy: { ...enforcePolicy, id: 'id1' }, source: 'cache', fetches: 0 });
    expect(await t.lookup()).toMatchObject({ source: 'cache', fetches: 0 });
    expect(requests).toHaveLength(1); // cache hit by id: no more fetches
    expect(t.resolver.queries.filter((q) => q.startsWith('TXT'))).toHaveLength(3); // the TXT record is checked every time
  });

  it('a new id in the TXT record means a new fetch that replaces the cached policy', async () => {
    const t = setup();
    await t.lookup();
    t.resolver.zone.txt = txt('id2');
    handler = servePolicy(POLICY.replace('mode: enforce', 'mode: testing'));
    expect(await t.lookup()).toMatchObject({ policy: { mode: 'testing', id: 'id2' }, source: 'fetched', fetches: 1 });
    expect(requests).toHaveLength(2);
    expect((await t.store.get(DOMAIN))?.policy).toMatchObject({ mode: 'testing', id: 'id2' });
    expect(await t.lookup()).toMatchObject({ policy: { id: 'id2' }, source: 'cache', fetches: 0 });
  });

  it('an expired cached policy is fetched again, even with the same id (clock from options.now)', async () => {
    const t = setup();
    handler = servePolicy(POLICY.replace('86400', '3600'));
    await t.lookup();
    t.advance(3600 * 1000 - 1);
    expect(await t.lookup()).toMatchObject({ source: 'cache', fetches: 0 });
    t.advance(1);
    expect(await t.lookup()).toMatchObject({ source: 'fetched', fetches: 1 });
    expect(requests).toHaveLength(2);
  });

  it('a certificate with a wildcard DNS-ID *.<domain> is valid for the policy host', async () => {
    presented = 'wildcard';
    expect(await setup().lookup()).toMatchObject({ source: 'fetched', policy: { mode: 'enforce' } });
  });

  it('Content-Type text/plain without parameters, and in any case, is accepted', async () => {
    handler = servePolicy(POLICY, 'Text/Plain');
    expect(await setup().lookup()).toMatchObject({ source: 'fetched' });
  });

  it('tries the next A address when one refuses the connection', async () => {
    const t = setup({ txt: txt('id1'), a: ['127.0.0.2', '127.0.0.1'] }); // nothing listens on 127.0.0.2
    expect(await t.lookup()).toMatchObject({ source: 'fetched', fetches: 1 });
  });

  it('falls back to AAAA when the policy host has no A record', async (ctx) => {
    const v6 = https.createServer({ ...certs.good }, servePolicy());
    try {
      await new Promise<void>((resolve, reject) => v6.once('error', reject).listen(0, '::1', resolve));
    } catch {
      ctx.skip(); // no IPv6 loopback here
    }
    try {
      const t = setup({ txt: txt('id1'), aaaa: ['::1'] }, { port: (v6.address() as net.AddressInfo).port });
      expect(await t.lookup()).toMatchObject({ source: 'fetched', fetches: 1 });
      expect(t.resolver.queries).toEqual([`TXT _mta-sts.${DOMAIN}`, `A ${HOST}`, `AAAA ${HOST}`]);
    } finally {
      v6.closeAllConnections();
      await new Promise((resolve) => v6.close(resolve));
    }
  });

  it('a domain given with upper case and a trailing dot is the same policy domain', async () => {
    const t = setup();
    await getMtaStsPolicy('Example.TEST.', t.options);
    expect(await t.lookup()).toMatchObject({ source: 'cache' });
    expect(t.resolver.queries[0]).toBe(`TXT _mta-sts.${DOMAIN}`);
  });
});

describe('getMtaStsPolicy: fetch failures', () => {
  it('HTTP 404 is a fetch error; no policy without a cache', async () => {
    handler = (_q, s) => s.writeHead(404, { 'content-type': 'text/plain' }).end('nope');
    const r = await setup().lookup();
    expect(r).toEqual({ source: 'none', fetches: 1, failure: { resultType: 'sts-policy-fetch-error', detail: expect.stringMatching(/HTTP 404/) } });
  });

  it('a redirect is not followed (3xx is a fetch error)', async () => {
    handler = (_q, s) => s.writeHead(301, { location: `https://${HOST}:${port}/elsewhere.txt` }).end();
    const r = await setup().lookup();
    expect(r.failure).toEqual({ resultType: 'sts-policy-fetch-error', detail: expect.stringMatching(/HTTP 301 to .*elsewhere.txt, redirects are not followed/) });
    expect(requests.map((q) => q.path)).toEqual(['/.well-known/mta-sts.txt']);
  });

  it('a Content-Type other than text/plain makes the policy invalid', async () => {
    handler = servePolicy(POLICY, 'text/html; charset=utf-8');
    const r = await setup().lookup();
    expect(r).toMatchObject({ source: 'none', failure: { resultType: 'sts-policy-invalid', detail: expect.stringMatching(/text\/html.* is not text\/plain/) } });
    handler = (_q, s) => s.writeHead(200).end(POLICY); // no Content-Type at all
    expect((await setup().lookup()).failure?.detail).toMatch(/Content-Type \(none\)/);
  });

  it('a body larger than maxPolicySize is invalid, with and without Content-Length', async () => {
    const big = `${POLICY}${'x-pad: '.padEnd(1000, 'y')}\n`.repeat(70); // about 70 KB, over the default 64 KiB
    handler = (_q, s) => s.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(big)) }).end(big);
    const declared = await setup().lookup();
    expect(declared.failure).toEqual({ resultType: 'sts-policy-invalid', detail: expect.stringMatching(/policy of 7\d{4} octets is larger than 65536/) });

    handler = (_q, s) => {
      s.writeHead(200, { 'content-type': 'text/plain' }); // chunked: the size is only known while reading
      s.write(POLICY);
      const timer = setInterval(() => s.write('x'.repeat(1000)), 1);
      s.on('close', () => clearInterval(timer));
    };
    const r = await setup(undefined, { maxPolicySize: 4096 }).lookup();
    expect(r.failure).toEqual({ resultType: 'sts-policy-invalid', detail: expect.stringMatching(/policy is larger than 4096 octets/) });
  });

  it('a policy that breaks the syntax is invalid', async () => {
    handler = servePolicy('version: STSv1\nmode: enforce\nmax_age: 86400\n');
    expect((await setup().lookup()).failure).toEqual({
      resultType: 'sts-policy-invalid',
      detail: `https://${HOST}:${port}/.well-known/mta-sts.txt: policy in mode enforce has no mx field`,
    });
  });

  it('a body that is not UTF-8 is invalid', async () => {
    handler = servePolicy(Buffer.concat([Buffer.from(POLICY), Buffer.from([0x78, 0x3a, 0x20, 0xff, 0x0a])]));
    expect((await setup().lookup()).failure?.detail).toMatch(/not valid UTF-8/);
  });

  it('a connection lost in the middle of the body is a fetch error', async () => {
    handler = (_q, s) => {
      s.writeHead(200, { 'content-type': 'text/plain', 'content-length': '500' });
      s.write(POLICY, () => s.socket?.destroy());
    };
    expect((await setup().lookup()).failure?.resultType).toBe('sts-policy-fetch-error');
  });

  it('a server that accepts the request but never answers: fetch error after fetchTimeout', async () => {
    handler = () => {};
    const started = Date.now();
    const r = await setup(undefined, { fetchTimeout: 300 }).lookup();
    const elapsed = Date.now() - started;
    expect(r.failure).toEqual({ resultType: 'sts-policy-fetch-error', detail: expect.stringMatching(/timed out after 300 ms while waiting for the HTTP response/) });
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1500);
  });

  it('a server that accepts TCP but never does the TLS handshake: fetch error after fetchTimeout', async () => {
    const sockets = new Set<net.Socket>();
    const mute = net.createServer((s) => sockets.add(s));
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const r = await setup(undefined, { fetchTimeout: 300, port: (mute.address() as net.AddressInfo).port }).lookup();
      expect(r.failure?.detail).toMatch(/timed out after 300 ms while connecting to mta-sts.example.test\[127.0.0.1\]/);
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => mute.close(resolve));
    }
  });

  it('a certificate for another name: sts-webpki-invalid, and nothing is sent', async () => {
    presented = 'wrongName';
    const r = await setup().lookup();
    expect(r).toMatchObject({ source: 'none', fetches: 1 });
    expect(r.failure).toEqual({ resultType: 'sts-webpki-invalid', detail: expect.stringMatching(/not valid for mta-sts.example.test: DNS:mta-sts.other.test/) });
    expect(requests).toEqual([]);
  });

  it('a certificate whose only name is the subject CN: sts-webpki-invalid (DNS-IDs only)', async () => {
    presented = 'cnOnly';
    expect((await setup().lookup()).failure?.resultType).toBe('sts-webpki-invalid');
    expect(requests).toEqual([]);
  });

  it('a certificate from an untrusted CA: sts-webpki-invalid', async () => {
    presented = 'rogue';
    const r = await setup().lookup();
    expect(r.failure).toEqual({ resultType: 'sts-webpki-invalid', detail: expect.stringMatching(/not trusted/) });
    expect(requests).toEqual([]);
  });

  it("without the test CA in `ca`, Node's root store alone does not trust the test certificate", async () => {
    const r = await setup(undefined, { ca: undefined }).lookup();
    expect(r.failure).toEqual({ resultType: 'sts-webpki-invalid', detail: expect.stringMatching(/not trusted: UNABLE_TO_VERIFY_LEAF_SIGNATURE/) });
  });

  it('extra anchors as bytes work like PEM text', async () => {
    const r = await setup(undefined, { ca: [new TextEncoder().encode(caPem)] }).lookup();
    expect(r.source).toBe('fetched');
  });

  it('the policy host does not exist: fetch error', async () => {
    const r = await setup({ txt: txt('id1'), a: 'ENOTFOUND' }).lookup();
    expect(r).toEqual({ source: 'none', fetches: 1, failure: { resultType: 'sts-policy-fetch-error', detail: expect.stringMatching(/has no A or AAAA record/) } });
  });

  it('every address refuses: fetch error naming the last one', async () => {
    const r = await setup({ txt: txt('id1'), a: ['127.0.0.2', '127.0.0.3'] }).lookup();
    expect(r.failure?.detail).toMatch(/127\.0\.0\.3.*ECONNREFUSED/);
  });
});

describe('getMtaStsPolicy: cache', () => {
  it('falls back to the cached unexpired policy when a fetch for a new id fails, and reports the failure', async () => {
    const t = setup();
    await t.lookup();
    t.resolver.zone.txt = txt('id2');
    handler = (_q, s) => s.writeHead(500).end();
    expect(await t.lookup()).toEqual({
      policy: { ...enforcePolicy, id: 'id1' },
      source: 'cache',
      fetches: 1,
      failure: { resultType: 'sts-policy-fetch-error', detail: expect.stringMatching(/HTTP 500/) },
    });
  });

  it('the cached policy also covers a certificate failure', async () => {
    const t = setup();
    await t.lookup();
    t.resolver.zone.txt = txt('id2');
    presented = 'rogue';
    expect(await t.lookup()).toMatchObject({ policy: { id: 'id1' }, source: 'cache', failure: { resultType: 'sts-webpki-invalid' } });
  });

  it('no TXT record: the cached policy while it lasts (no failure), then no policy', async () => {
    const t = setup();
    await t.lookup();
    for (const code of ['ENOTFOUND', 'ENODATA']) {
      t.resolver.zone.txt = code;
      expect(await t.lookup()).toEqual({ policy: { ...enforcePolicy, id: 'id1' }, source: 'cache', fetches: 0 });
    }
    t.resolver.zone.txt = [['v=spf1 -all']]; // other TXT records only
    expect(await t.lookup()).toMatchObject({ source: 'cache', fetches: 0 });
    expect(await t.lookup()).not.toHaveProperty('failure');
    t.advance(86400 * 1000);
    expect(await t.lookup()).toEqual({ source: 'none', fetches: 0 });
    expect(requests).toHaveLength(1);
  });

  it('no TXT record and nothing cached: no policy, no fetch, no failure', async () => {
    const t = setup({ a: ['127.0.0.1'] });
    expect(await t.lookup()).toEqual({ source: 'none', fetches: 0 });
    expect(t.resolver.queries).toEqual([`TXT _mta-sts.${DOMAIN}`]);
  });

  it('a failing TXT lookup or a broken TXT record: the cached policy, with a failure to report', async () => {
    const t = setup();
    await t.lookup();
    t.resolver.zone.txt = 'ESERVFAIL';
    expect(await t.lookup()).toMatchObject({ source: 'cache', policy: { id: 'id1' }, failure: { resultType: 'sts-policy-fetch-error', detail: expect.stringMatching(/TXT lookup failed/) } });
    t.resolver.zone.txt = [['v=STSv1; id=a'], ['v=STSv1; id=b']];
    expect(await t.lookup()).toMatchObject({ source: 'cache', policy: { id: 'id1' }, failure: { resultType: 'sts-policy-invalid', detail: expect.stringMatching(/2 TXT records/) } });
    expect(requests).toHaveLength(1);
  });

  it('a failing TXT lookup or a broken TXT record without a cached policy: no policy and nothing to report', async () => {
    expect(await setup({ txt: 'ETIMEOUT' }).lookup()).toEqual({ source: 'none', fetches: 0 });
    expect(await setup({ txt: [['v=STSv1; id=has-dash']] }).lookup()).toEqual({ source: 'none', fetches: 0 });
    expect(requests).toHaveLength(0);
  });

  it('mode none is cached like any policy and withdraws the older one', async () => {
    const t = setup();
    await t.lookup();
    t.resolver.zone.txt = txt('gone');
    handler = servePolicy('version: STSv1\nmode: none\nmax_age: 86400\n');
    expect(await t.lookup()).toMatchObject({ policy: { mode: 'none', mx: [], id: 'gone' }, source: 'fetched' });
    t.resolver.zone.txt = 'ENOTFOUND';
    expect(await t.lookup()).toMatchObject({ policy: { mode: 'none' }, source: 'cache' });
  });

  it('max_age 0 is not cached, and it removes the older cached policy', async () => {
    const t = setup();
    await t.lookup();
    t.resolver.zone.txt = txt('id2');
    handler = servePolicy(POLICY.replace('86400', '0'));
    expect(await t.lookup()).toMatchObject({ policy: { maxAge: 0, id: 'id2' }, source: 'fetched', fetches: 1 });
    expect(await t.store.get(DOMAIN)).toBeUndefined();
    expect(await t.lookup()).toMatchObject({ source: 'fetched', fetches: 1 });
    expect(requests).toHaveLength(3);
  });

  it('a failed fetch is not repeated for the same id within fetchRetryInterval; a new id is fetched at once', async () => {
    const t = setup();
    handler = (_q, s) => s.writeHead(503).end();
    expect(await t.lookup()).toMatchObject({ source: 'none', fetches: 1, failure: { detail: expect.stringMatching(/HTTP 503/) } });
    handler = servePolicy();
    t.advance(299_999);
    expect(await t.lookup()).toMatchObject({ source: 'none', fetches: 0, failure: { detail: expect.stringMatching(/HTTP 503/) } });
    t.advance(1);
    expect(await t.lookup()).toMatchObject({ source: 'fetched', fetches: 1 });

    t.resolver.zone.txt = txt('id2');
    handler = (_q, s) => s.writeHead(503).end();
    expect(await t.lookup()).toMatchObject({ source: 'cache', fetches: 1 });
    t.resolver.zone.txt = txt('id3');
    expect(await t.lookup()).toMatchObject({ source: 'cache', fetches: 1 });
    expect(requests).toHaveLength(4);
  });

  it('fetchRetryInterval 0 fetches every time', async () => {
    const t = setup(undefined, { fetchRetryInterval: 0 });
    handler = (_q, s) => s.writeHead(503).end();
    await t.lookup();
    await t.lookup();
    expect(requests).toHaveLength(2);
  });

  it('concurrent lookups share one fetch', async () => {
    const t = setup();
    handler = (q, s) => setTimeout(() => servePolicy()(q, s), 50);
    const results = await Promise.all([t.lookup(), t.lookup(), t.lookup()]);
    expect(results.map((r) => [r.source, r.fetches])).toEqual([
      ['fetched', 1],
      ['fetched', 0],
      ['fetched', 0],
    ]);
    expect(requests).toHaveLength(1);
  });

  it('works with an async store, and a store that fails counts as empty', async () => {
    const map = new Map<string, MtaStsCached>();
    const asyncStore: MtaStsStore = {
      get: async (d) => map.get(d),
      set: async (d, v) => void map.set(d, v),
      delete: async (d) => void map.delete(d),
    };
    const t = setup(undefined, { store: asyncStore });
    await t.lookup();
    expect(map.get(DOMAIN)?.policy.id).toBe('id1');
    expect(await t.lookup()).toMatchObject({ source: 'cache', fetches: 0 });

    const broken: MtaStsStore = {
      get: () => Promise.reject(new Error('redis down')),
      set: () => {
        throw new Error('redis down');
      },
      delete: () => {},
    };
    expect(await setup(undefined, { store: broken }).lookup()).toMatchObject({ source: 'fetched', fetches: 1 });
  });

  it('the default store is used without options.store', async () => {
    const t = setup();
    const { store: _ignored, ...withoutStore } = t.options;
    await getMtaStsPolicy(DOMAIN, withoutStore);
    expect(await getMtaStsPolicy(DOMAIN, withoutStore)).toMatchObject({ source: 'cache', fetches: 0 });
  });
});

describe('getMtaStsPolicy: programmer errors and abort', () => {
  it('rejects bad options with MailwireError EOPTION before any lookup', async () => {
    const t = setup();
    const { resolveTxt: _no, ...noTxt } = t.resolver;
    await expect(getMtaStsPolicy(DOMAIN, { ...t.options, resolver: noTxt as DnsResolver })).rejects.toMatchObject({ code: 'EOPTION', message: /resolveTxt/ });
    await expect(getMtaStsPolicy(DOMAIN, { ...t.options, fetchTimeout: 0 })).rejects.toBeInstanceOf(MailwireError);
    await expect(getMtaStsPolicy(DOMAIN, { ...t.options, port: 70000 })).rejects.toBeInstanceOf(MailwireError);
    await expect(getMtaStsPolicy(42 as unknown as string, t.options)).rejects.toBeInstanceOf(MailwireError);
    expect(t.resolver.queries).toEqual([]);
  });

  it('an IP literal or a non-name has no policy and looks nothing up', async () => {
    const t = setup();
    for (const d of ['192.0.2.1', '[192.0.2.1]', '2001:db8::1', '', 'a b.example']) {
      expect(await getMtaStsPolicy(d, t.options)).toEqual({ source: 'none', fetches: 0 });
    }
    expect(t.resolver.queries).toEqual([]);
  });

  it('aborting rejects with the abort reason and closes the connection; nothing is cached', async () => {
    let closed!: Promise<void>;
    handler = (q) => {
      closed = new Promise((resolve) => q.socket.once('close', () => resolve()));
    };
    const t = setup();
    const controller = new AbortController();
    const pending = t.lookup({ signal: controller.signal });
    while (requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    await closed;
    expect(await t.store.get(DOMAIN)).toBeUndefined();
    await expect(t.lookup({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });
});
