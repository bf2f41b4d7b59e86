import { describe, expect, it } from 'vitest';
import { anonymous, cramMd5, external, login, oauthBearer, plain, scram, xoauth2 } from '../../src/sasl/mechanisms.js';
import { chooseMechanism } from '../../src/sasl/choose.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (b: Uint8Array | Error | undefined) => (b instanceof Error ? `Error: ${b.message}` : b === undefined ? undefined : dec.decode(b));

describe('SCRAM (RFC 5802, RFC 7677 test vectors)', () => {
  it('SCRAM-SHA-1, RFC 5802 §5', () => {
    const m = scram({ username: 'user', password: 'pencil' }, 'sha1', { nonce: 'fyko+d2lbbFgONRv9qkxdawL' });
    expect(text(m.start())).toBe('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
    expect(text(m.next(enc.encode('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096')))).toBe(
      'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
    );
    expect(text(m.next(enc.encode('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=')))).toBe('');
    expect(m.verified()).toBe(true);
    expect(m.finish!()).toBeUndefined();
  });

  it('SCRAM-SHA-256, RFC 7677 §3', () => {
    const m = scram({ username: 'user', password: 'pencil' }, 'sha256', { nonce: 'rOprNGfwEbeRWgbNEkqO' });
    expect(text(m.start())).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    expect(text(m.next(enc.encode('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')))).toBe(
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    );
    expect(text(m.next(enc.encode('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')))).toBe('');
    expect(m.verified()).toBe(true);
  });

  it('a server that cannot prove the password fails the exchange', () => {
    const m = scram({ username: 'user', password: 'pencil' }, 'sha256', { nonce: 'rOprNGfwEbeRWgbNEkqO' });
    m.start();
    m.next(enc.encode('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'));
    expect(m.next(enc.encode('v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='))).toBeInstanceOf(Error);
    const early = scram({ username: 'u', password: 'p' }, 'sha1');
    early.start();
    expect(early.finish!()).toBeInstanceOf(Error); // 235 without the server signature
  });

  it('rejects a nonce that does not extend ours, and absurd iteration counts', () => {
    const m = scram({ username: 'u', password: 'p' }, 'sha1', { nonce: 'abc' });
    m.start();
    expect(m.next(enc.encode('r=xyz123,s=QSXCR+Q6sek8bf92,i=4096'))).toBeInstanceOf(Error);
    const n = scram({ username: 'u', password: 'p' }, 'sha1', { nonce: 'abc' });
    n.start();
    expect(n.next(enc.encode('r=abcdef,s=QSXCR+Q6sek8bf92,i=999999999'))).toBeInstanceOf(Error);
  });

  it('escapes = and , in the username; sends the authzid only when given', () => {
    expect(text(scram({ username: 'a=b,c', password: 'p' }, 'sha1', { nonce: 'n' }).start())).toBe('n,,n=a=3Db=2Cc,r=n');
    expect(text(scram({ username: 'u', password: 'p', authzid: 'admin' }, 'sha1', { nonce: 'n' }).start())).toBe('n,a=admin,n=u,r=n');
  });
});

describe('other mechanisms', () => {
  it('CRAM-MD5, RFC 2195 test vector', () => {
    const m = cramMd5({ username: 'tim', password: 'tanstaaftanstaaf' });
    expect(m.start()).toBeUndefined();
    expect(text(m.next(enc.encode('<1896.697170952@postoffice.reston.mci.net>')))).toBe('tim b913a602c7eda7a495b4e6e7334d3890');
  });
  it('PLAIN: authzid NUL authcid NUL password, initial response (RFC 4616)', () => {
    expect(text(plain({ username: 'tim', password: 'tanstaaf' }).start())).toBe('\0tim\0tanstaaf');
    expect(text(plain({ username: 'tim', password: 'x', authzid: 'boss' }).start())).toBe('boss\0tim\0x');
  });
  it('LOGIN: username then password', () => {
    const m = login({ username: 'tim', password: 'pw' });
    expect(m.start()).toBeUndefined();
    expect(text(m.next(enc.encode('Username:')))).toBe('tim');
    expect(text(m.next(enc.encode('Password:')))).toBe('pw');
  });
  it('OAUTHBEARER (RFC 7628): GS2 header, host/port/auth, and the error challenge answered with %x01', () => {
    const m = oauthBearer({ username: 'user@example.com', accessToken: 'vF9dft4qmT' }, { host: 'server.example.com', port: 587 });
    expect(text(m.start())).toBe('n,a=user@example.com,\x01host=server.example.com\x01port=587\x01auth=Bearer vF9dft4qmT\x01\x01');
    expect(Array.from(m.next(enc.encode('{"status":"invalid_token"}')) as Uint8Array)).toEqual([1]);
  });
  it('XOAUTH2: user, bearer token; an error challenge gets an empty response', () => {
    const m = xoauth2({ username: 'someuser@example.com', accessToken: 'ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg' });
    expect(text(m.start())).toBe('user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01');
    expect(text(m.next(enc.encode('{"status":"401"}')))).toBe('');
  });
  it('EXTERNAL and ANONYMOUS', () => {
    expect(text(external({ username: 'u' }).start())).toBe('');
    expect(text(external({ username: 'u', authzid: 'z' }).start())).toBe('z');
    expect(text(anonymous({ username: 'trace@example' }).start())).toBe('trace@example');
  });
});

describe('chooseMechanism (SASL-4..8)', () => {
  const all = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-1', 'SCRAM-SHA-256', 'XOAUTH2', 'OAUTHBEARER', 'EXTERNAL', 'ANONYMOUS'];
  const pw = { username: 'u', password: 'p' };
  const plainConn = { tls: false, verified: false, clientCertificate: false };
  const tlsConn = { tls: true, verified: false, clientCertificate: false };
  const name = (c: ReturnType<typeof chooseMechanism>) => ('fail' in c ? 'none' : c.mechanism.name);

  it('the strongest acceptable, not the server\'s order', () => {
    expect(name(chooseMechanism(['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-1', 'SCRAM-SHA-256'], pw, plainConn))).toBe('SCRAM-SHA-256');
    expect(name(chooseMechanism(['plain', 'cram-md5', 'scram-sha-1'], pw, plainConn))).toBe('SCRAM-SHA-1');
  });
  it('plaintext connection: noplaintext, noanonymous by default: PLAIN/LOGIN never', () => {
    expect(chooseMechanism(['PLAIN', 'LOGIN'], pw, plainConn)).toMatchObject({ fail: /offered no compatible authentication mechanisms/ });
    expect(name(chooseMechanism(['PLAIN', 'CRAM-MD5'], pw, plainConn))).toBe('CRAM-MD5');
  });
  it('over TLS the default is noanonymous: PLAIN works (mailwire\'s deliberate difference)', () => {
    expect(name(chooseMechanism(['PLAIN', 'LOGIN'], pw, tlsConn))).toBe('PLAIN');
    expect(chooseMechanism(['PLAIN'], pw, tlsConn, { tlsSecurityOptions: ['noplaintext', 'noanonymous'] })).toMatchObject({ fail: expect.any(String) });
    // Verified TLS may have its own set.
    expect(name(chooseMechanism(['PLAIN'], pw, { ...tlsConn, verified: true }, { tlsSecurityOptions: ['noplaintext'], tlsVerifiedSecurityOptions: ['noanonymous'] }))).toBe('PLAIN');
  });
  it('noactive / nodictionary exclude PLAIN, LOGIN, CRAM-MD5; mutual_auth keeps SCRAM only', () => {
    expect(name(chooseMechanism(['PLAIN', 'CRAM-MD5', 'SCRAM-SHA-1'], pw, tlsConn, { tlsSecurityOptions: ['nodictionary'] }))).toBe('SCRAM-SHA-1');
    expect(chooseMechanism(['PLAIN', 'CRAM-MD5'], pw, tlsConn, { tlsSecurityOptions: ['noactive'] })).toMatchObject({ fail: expect.any(String) });
    expect(chooseMechanism(['PLAIN', 'CRAM-MD5'], pw, tlsConn, { tlsSecurityOptions: ['mutual_auth'] })).toMatchObject({ fail: expect.any(String) });
  });
  it('mechanismFilter narrows, !NAME excludes', () => {
    expect(name(chooseMechanism(all, pw, tlsConn, { mechanismFilter: ['plain', 'login'] }))).toBe('PLAIN');
    expect(name(chooseMechanism(all, pw, tlsConn, { mechanismFilter: ['!scram-sha-256'] }))).toBe('SCRAM-SHA-1');
    expect(name(chooseMechanism(all, pw, tlsConn, { mechanismFilter: (m) => m === 'LOGIN' }))).toBe('LOGIN');
  });
  it('tokens: OAUTHBEARER > XOAUTH2; bearer tokens count as plaintext secrets', () => {
    const tok = { username: 'u', accessToken: 't' };
    expect(name(chooseMechanism(all, tok, tlsConn))).toBe('OAUTHBEARER');
    expect(name(chooseMechanism(['XOAUTH2', 'PLAIN'], tok, tlsConn))).toBe('XOAUTH2');
    expect(chooseMechanism(['XOAUTH2'], tok, plainConn)).toMatchObject({ fail: expect.any(String) });
  });
  it('EXTERNAL with a client certificate and no password; ANONYMOUS only without any secret and with noanonymous lifted', () => {
    expect(name(chooseMechanism(all, { username: 'u' }, { ...tlsConn, clientCertificate: true }))).toBe('EXTERNAL');
    expect(chooseMechanism(['ANONYMOUS'], { username: 'trace' }, tlsConn)).toMatchObject({ fail: expect.any(String) });
    expect(name(chooseMechanism(['ANONYMOUS'], { username: 'trace' }, tlsConn, { tlsSecurityOptions: [] }))).toBe('ANONYMOUS');
    expect(chooseMechanism(['ANONYMOUS'], pw, tlsConn, { tlsSecurityOptions: [] })).toMatchObject({ fail: expect.any(String) });
  });
});
