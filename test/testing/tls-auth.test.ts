import { afterEach, describe, expect, it } from 'vitest';
import { X509Certificate, createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { TestServer, testCertificate, type TestServerOptions } from '../../src/testing/index.js';
import { RawClient } from './raw-client.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(options?: TestServerOptions): Promise<{ s: TestServer; c: RawClient }> {
  server = await TestServer.start(options);
  const c = await RawClient.connect(server);
  await c.readReply();
  return { s: server, c };
}

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

describe('STARTTLS (RFC 3207)', () => {
  it('upgrades, forgets the EHLO, stops offering STARTTLS, and records the session as TLS', async () => {
    const { s, c } = await start({ tls: testCertificate, extensions: { starttls: true } });
    expect(await c.command('EHLO x')).toContain('250-STARTTLS');
    expect(await c.command('STARTTLS')).toBe('220 2.0.0 Ready to start TLS');
    const secure = await c.startTls(testCertificate.cert, 'mx.test.invalid');
    expect(secure.authorized).toBe(true);
    expect(await c.command('MAIL FROM:<a@x> BODY=8BITMIME')).toBe('555 5.5.4 Unsupported option: BODY=8BITMIME');
    const ehlo = await c.command('EHLO x');
    expect(ehlo).not.toContain('STARTTLS');
    expect(ehlo).toContain('250-8BITMIME');
    expect(await c.command('STARTTLS')).toBe('554 5.5.1 Error: TLS already active');
    c.write('MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n');
    await c.readReplies(3);
    c.write('secret\r\n.\r\n');
    expect(await c.readReply()).toMatch(/^250 2\.0\.0 Ok/);
    expect(s.sessions[0]).toMatchObject({ tls: true, helo: 'x', heloVerb: 'EHLO' });
    expect(s.sessions[0]!.tlsInfo).toMatchObject({ protocol: 'TLSv1.3', servername: 'mx.test.invalid' });
    expect(s.transactions[0]!.data!.toString()).toBe('secret\r\n');
  });

  it('discards plaintext pipelined after STARTTLS (CVE-2011-0411)', async () => {
    const { s, c } = await start({ tls: testCertificate, extensions: { starttls: true } });
    await c.command('EHLO x');
    c.write('STARTTLS\r\nMAIL FROM:<injected@x>\r\n');
    expect(await c.readReply()).toBe('220 2.0.0 Ready to start TLS');
    await c.startTls(testCertificate.cert);
    expect(await c.command('EHLO x')).toMatch(/^250-/);
    expect(await c.command('RCPT TO:<b@x>')).toBe('503 5.5.1 Error: need MAIL command');
    expect(s.sessions[0]!.pipeliningViolations).toBe(1);
    expect(s.transactions).toHaveLength(0);
  });

  it('sends no SNI-derived name when the client sends none', async () => {
    const { s, c } = await start({ tls: testCertificate, extensions: { starttls: true } });
    await c.command('EHLO x');
    await c.command('STARTTLS');
    await c.startTls(testCertificate.cert);
    await c.command('NOOP');
    expect(s.sessions[0]!.tlsInfo!.servername).toBeUndefined();
  });

  it('says 454 when STARTTLS is announced without a certificate, 503 inside a transaction', async () => {
    const { c } = await start({ extensions: { starttls: true } });
    await c.command('EHLO x');
    expect(await c.command('STARTTLS')).toBe('454 4.7.0 TLS not available due to local problem');
    server!.configure({});
    await server!.close();
    const { c: c2 } = await start({ tls: testCertificate, extensions: { starttls: true } });
    await c2.command('EHLO x');
    await c2.command('MAIL FROM:<a@x>');
    expect(await c2.command('STARTTLS')).toBe('503 5.5.1 Error: MAIL transaction in progress');
  });

  it('records a failed handshake', async () => {
    const { s, c } = await start({ tls: testCertificate, extensions: { starttls: true } });
    await c.command('EHLO x');
    await c.command('STARTTLS');
    c.write('this is not a TLS ClientHello\r\n');
    await c.waitClosed();
    await s.waitForSessions(1);
    expect(s.sessions[0]!.tls).toBe(false);
    expect(s.sessions[0]!.tlsError).toBeTruthy();
  });

  it('speaks TLS from the first octet in wrapper mode (smtpd_tls_wrappermode)', async () => {
    server = await TestServer.start({ tls: testCertificate, wrapperMode: true });
    const socket = tlsConnect({ host: '127.0.0.1', port: server.port!, ca: testCertificate.cert, servername: 'mx.test.invalid' });
    const text = await new Promise<string>((resolve, reject) => {
      let got = '';
      socket.on('data', (d) => {
        got += d.toString();
        if (got.includes('\r\n')) resolve(got);
      });
      socket.on('error', reject);
    });
    expect(text).toBe('220 mx.test.invalid ESMTP mailwire-testing\r\n');
    socket.destroy();
    await server.waitForSessions(1);
    expect(server.sessions[0]!.tls).toBe(true);
  });
});

describe('AUTH (RFC 4954)', () => {
  const users = { alice: 'wonderland', 'b\u00f6b': 'p\u00e4ss' };
  const options = (extra: TestServerOptions = {}): TestServerOptions => ({
    extensions: { auth: ['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'XOAUTH2', 'OAUTHBEARER'] },
    users,
    ...extra,
  });

  it('PLAIN with an initial response, checked against users', async () => {
    const { s, c } = await start(options());
    expect(await c.command('EHLO x')).toContain('250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 SCRAM-SHA-1 XOAUTH2 OAUTHBEARER');
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0wrong')}`)).toBe('535 5.7.8 Error: authentication failed: authentication failure');
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0wonderland')}`)).toBe('235 2.7.0 Authentication successful');
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0wonderland')}`)).toBe('503 5.5.1 Error: already authenticated');
    expect(s.sessions[0]!.auth).toEqual({ mechanism: 'PLAIN', username: 'alice' });
    expect(s.sessions[0]!.authAttempts.map((a) => a.reply.slice(0, 3))).toEqual(['535', '235']);
  });

  it('PLAIN without an initial response, and LOGIN', async () => {
    const { s, c } = await start(options());
    await c.command('EHLO x');
    expect(await c.command('AUTH PLAIN')).toBe('334 ');
    expect(await c.command(b64('authz\0b\u00f6b\0p\u00e4ss'))).toBe('235 2.7.0 Authentication successful');
    expect(s.sessions[0]!.auth).toEqual({ mechanism: 'PLAIN', username: 'b\u00f6b' });

    const c2 = await RawClient.connect(s);
    await c2.readReply();
    await c2.command('EHLO x');
    expect(unb64((await c2.command('AUTH LOGIN')).slice(4))).toBe('Username:');
    expect(unb64((await c2.command(b64('alice'))).slice(4))).toBe('Password:');
    expect(await c2.command(b64('wonderland'))).toBe('235 2.7.0 Authentication successful');
  });

  it('CRAM-MD5 (RFC 2195)', async () => {
    const { c } = await start(options());
    await c.command('EHLO x');
    const challenge = unb64((await c.command('AUTH CRAM-MD5')).slice(4));
    expect(challenge).toMatch(/^<\d+\.\d+@mx\.test\.invalid>$/);
    const digest = createHmac('md5', 'wonderland').update(challenge).digest('hex');
    expect(await c.command(b64(`alice ${digest}`))).toBe('235 2.7.0 Authentication successful');
  });

  it('SCRAM-SHA-256 (RFC 7677), with the server signature before 235', async () => {
    const { s, c } = await start(options());
    await c.command('EHLO x');
    const cnonce = randomBytes(12).toString('base64');
    const clientFirstBare = `n=alice,r=${cnonce}`;
    const serverFirst = unb64((await c.command(`AUTH SCRAM-SHA-256 ${b64(`n,,${clientFirstBare}`)}`)).slice(4));
    const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
    expect(attrs.r!.startsWith(cnonce)).toBe(true);
    const salted = pbkdf2Sync('wonderland', Buffer.from(attrs.s!, 'base64'), Number(attrs.i), 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${attrs.r}`;
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = createHmac('sha256', storedKey).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((x, i) => x ^ signature[i]!));
    const serverFinal = unb64((await c.command(b64(`${withoutProof},p=${proof.toString('base64')}`))).slice(4));
    const serverKey = createHmac('sha256', salted).update('Server Key').digest();
    expect(serverFinal).toBe(`v=${createHmac('sha256', serverKey).update(authMessage).digest('base64')}`);
    expect(await c.command('')).toBe('235 2.7.0 Authentication successful');
    expect(s.sessions[0]!.auth).toEqual({ mechanism: 'SCRAM-SHA-256', username: 'alice' });
  });

  it('XOAUTH2: a refused token gets the JSON challenge, then 535', async () => {
    const { c } = await start(options({ onAuth: (a) => a.password === 'good-token' }));
    await c.command('EHLO x');
    const bad = await c.command(`AUTH XOAUTH2 ${b64('user=alice\x01auth=Bearer bad\x01\x01')}`);
    expect(JSON.parse(unb64(bad.slice(4)))).toMatchObject({ status: '401' });
    expect(await c.command('')).toBe('535 5.7.8 Error: authentication failed: authentication failure');
    expect(await c.command(`AUTH XOAUTH2 ${b64('user=alice\x01auth=Bearer good-token\x01\x01')}`)).toBe('235 2.7.0 Authentication successful');
  });

  it('lets onAuth answer anything, cancels on "*", and refuses unknown mechanisms', async () => {
    const { s, c } = await start(options({ onAuth: () => '454 4.7.0 Temporary authentication failure' }));
    await c.command('EHLO x');
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0wonderland')}`)).toBe('454 4.7.0 Temporary authentication failure');
    expect(await c.command('AUTH LOGIN')).toMatch(/^334 /);
    expect(await c.command('*')).toBe('501 5.7.0 Authentication aborted');
    expect(await c.command('AUTH GSSAPI')).toBe('504 5.5.4 Unrecognized authentication type');
    expect(await c.command('AUTH PLAIN !!!!')).toBe('501 5.5.2 Cannot decode response');
    expect(s.sessions[0]!.auth).toBeUndefined();
  });

  it('does not offer or accept AUTH before STARTTLS with tlsAuthOnly (smtpd_tls_auth_only)', async () => {
    const { s, c } = await start(options({ tls: testCertificate, tlsAuthOnly: true, extensions: { starttls: true, auth: ['PLAIN'] } }));
    expect(await c.command('EHLO x')).not.toContain('AUTH');
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0wonderland')}`)).toBe('503 5.5.1 Error: authentication not enabled');
    await c.command('STARTTLS');
    await c.startTls(testCertificate.cert);
    expect(await c.command('EHLO x')).toContain('250-AUTH PLAIN');
    expect(await c.command(`AUTH PLAIN ${b64('\0alice\0wonderland')}`)).toBe('235 2.7.0 Authentication successful');
    expect(s.sessions[0]!.auth?.username).toBe('alice');
  });

  it('accepts anyone without a users table, and fault-injects the final AUTH reply', async () => {
    const { c } = await start({
      extensions: { auth: ['PLAIN'] },
      faults: [{ step: 'auth', action: 'reply', reply: '421 4.7.0 going down', times: 1 }],
    });
    await c.command('EHLO x');
    expect(await c.command(`AUTH PLAIN ${b64('\0x\0y')}`)).toBe('421 4.7.0 going down');
    await c.waitClosed();
    const c2 = await RawClient.connect(server!);
    await c2.readReply();
    await c2.command('EHLO x');
    expect(await c2.command(`AUTH PLAIN ${b64('\0x\0y')}`)).toBe('235 2.7.0 Authentication successful');
  });
});

describe('client certificates and EXTERNAL (RFC 4422 App. A)', () => {
  it('records the client certificate and authenticates with it', async () => {
    const { s, c } = await start({
      tls: { ...testCertificate, requestCert: true },
      extensions: { starttls: true, auth: ['EXTERNAL'] },
    });
    await c.command('EHLO x');
    await c.command('STARTTLS');
    const plain = c.socket;
    plain.removeAllListeners('data');
    // RawClient.startTls has no client certificate option; do it here
    const secure = tlsConnect({ socket: plain, ca: testCertificate.cert, key: testCertificate.key, cert: testCertificate.cert, checkServerIdentity: () => undefined });
    await new Promise<void>((r, j) => {
      secure.once('secureConnect', r);
      secure.once('error', j);
    });
    const lines: string[] = [];
    secure.on('data', (d) => lines.push(d.toString()));
    const ask = async (line: string): Promise<string> => {
      const n = lines.length;
      secure.write(`${line}\r\n`);
      for (let i = 0; i < 100 && lines.length === n; i++) await new Promise((r) => setTimeout(r, 10));
      return lines.slice(n).join('').trim();
    };
    expect(await ask('EHLO x')).toContain('250-AUTH EXTERNAL');
    expect(await ask('AUTH EXTERNAL =')).toBe('235 2.7.0 Authentication successful');
    const fp = createHash('sha256').update(new X509Certificate(testCertificate.cert).raw).digest('hex');
    expect(s.sessions[0]!.tlsInfo!.peerCertificateSha256).toBe(fp);
    expect(s.sessions[0]!.auth).toEqual({ mechanism: 'EXTERNAL', username: fp });
    secure.destroy();
  });
});

describe('XFORWARD (Postfix XFORWARD_README)', () => {
  it('records attributes for the next transaction when announced', async () => {
    const { s, c } = await start({ extensions: { xforward: ['NAME', 'ADDR', 'PROTO', 'HELO'] } });
    await c.command('EHLO x');
    expect(await c.command('XFORWARD NAME=client.example ADDR=192.0.2.1')).toBe('250 2.0.0 Ok');
    expect(await c.command('XFORWARD PROTO=ESMTP HELO=client.example')).toBe('250 2.0.0 Ok');
    expect(await c.command('XFORWARD IDENT=x')).toBe('501 5.5.4 Bad XFORWARD attribute name: IDENT');
    await c.command('MAIL FROM:<a@x>');
    expect(s.transactions[0]!.xforward).toEqual({ NAME: 'client.example', ADDR: '192.0.2.1', PROTO: 'ESMTP', HELO: 'client.example' });
  });
});
