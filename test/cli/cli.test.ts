/**
 * The `mailwire` command as a child process (`node --import tsx src/cli.ts`, no build needed)
 * against TestServers started here: the table, the exit codes, stdin, -v, LMTP, --timeout.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FLAGS } from '../../src/cli/flags.js';
import type { DeliveryResult } from '../../src/index.js';
import { testCertificate } from '../../src/testing/index.js';
import { start as server } from '../helpers/test-servers.js';
import { runNode, type ProcessRun } from '../helpers/process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'mailwire-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Run the CLI; stdin gets `input` (or nothing) and is always closed. */
function mailwire(args: string[], opts: { input?: string | Buffer; env?: Record<string, string> } = {}): Promise<ProcessRun> {
  return runNode(['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, ...(opts.env ? { env: opts.env } : {}), input: opts.input ?? '', timeoutMs: 25_000 });
}

/** The table's rows (without its header) as arrays of the first four cells and the reason. */
function rows(stdout: string): string[][] {
  const lines = stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^RECIPIENT\s+ACTION\s+STATUS\s+REMOTE MTA\s+REASON$/);
  return lines.slice(1).map((l) => {
    const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.*)$/.exec(l);
    expect(m, l).not.toBeNull();
    return m!.slice(1);
  });
}

const MESSAGE = 'From: <sender@client.test>\r\nTo: <a@t.test>\r\nSubject: from a file\r\nMessage-ID: <cli-1@client.test>\r\n\r\nhello from a file\r\n';

describe('mailwire (child process) against the test server', () => {
  it('every recipient accepted: exit 0, the table on stdout, nothing on stderr; the built test message', async () => {
    const s = await server();
    const r = await mailwire(['--from', 'sender@client.test', '--to', 'a@t.test', '--to', 'b@t.test', '--helo', 'client.test', '--subject', 'cli test', s.destination]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(rows(r.stdout)).toEqual([
      ['a@t.test', 'relayed', '2.0.0', '127.0.0.1', expect.stringMatching(/^250 2\.0\.0 Ok: queued as \w+$/)],
      ['b@t.test', 'relayed', '2.0.0', '127.0.0.1', expect.stringMatching(/^250 2\.0\.0 Ok: queued as \w+$/)],
    ]);
    await s.waitForSessions(1);
    expect(s.sessions[0]!.helo).toBe('client.test');
    const tx = s.transactions[0]!;
    expect(tx.mailFrom).toBe('sender@client.test');
    expect(tx.accepted).toEqual(['a@t.test', 'b@t.test']);
    const data = tx.data!.toString();
    expect(data).toMatch(/^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\nMessage-ID: <[^>]+@client\.test>\r\nFrom: <sender@client\.test>\r\nTo: <a@t\.test>, <b@t\.test>\r\nSubject: cli test\r\n/);
    expect(data).toContain('\r\n\r\nThis is a test mailing from mailwire.\r\n');
  });

  it('a recipient rejected 550: exit 69, the others still relayed', async () => {
    const s = await server({ onRcpt: (a) => (a === 'x@t.test' ? '550 5.1.1 <x@t.test>: Recipient address rejected: User unknown' : undefined) });
    const r = await mailwire(['-f', 'sender@client.test', '-t', 'a@t.test,x@t.test', s.destination]);
    expect(r.code, r.stderr).toBe(69);
    expect(rows(r.stdout)).toEqual([
      ['a@t.test', 'relayed', '2.0.0', '127.0.0.1', expect.stringMatching(/^250 /)],
      ['x@t.test', 'failed', '5.1.1', '127.0.0.1', 'host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <x@t.test>: Recipient address rejected: User unknown (in reply to RCPT TO command)'],
    ]);
  });

  it('a recipient deferred 450 and none failed: exit 75', async () => {
    const s = await server({ onRcpt: (a) => (a === 'busy@t.test' ? '450 4.2.0 <busy@t.test>: mailbox busy' : undefined) });
    const r = await mailwire(['-f', 'sender@client.test', '-t', 'a@t.test', '-t', 'busy@t.test', s.destination]);
    expect(r.code, r.stderr).toBe(75);
    expect(rows(r.stdout).map((row) => row.slice(0, 3))).toEqual([
      ['a@t.test', 'relayed', '2.0.0'],
      ['busy@t.test', 'delayed', '4.2.0'],
    ]);
  });

  it('failed beats delayed: 450 + 550 → 69', async () => {
    const s = await server({ onRcpt: (a) => (a.startsWith('busy') ? '450 4.2.0 busy' : a.startsWith('x') ? '550 5.1.1 unknown' : undefined) });
    const r = await mailwire(['-t', 'busy@t.test,x@t.test', s.destination]);
    expect(r.code).toBe(69);
  });

  it('the message from stdin (--data -), 8-bit octets intact, --header replacing a field', async () => {
    const s = await server();
    const input = Buffer.concat([Buffer.from('Subject: stdin\nX-Old: 1\n\nfrom stdin: '), Buffer.from([0xe9, 0xff]), Buffer.from('\n.leading dot\n')]);
    const r = await mailwire(['-f', 'sender@client.test', '-t', 'a@t.test', '--data', '-', '--header', 'X-Old: 2', s.destination], { input });
    expect(r.code, r.stderr).toBe(0);
    expect(rows(r.stdout)[0]!.slice(0, 2)).toEqual(['a@t.test', 'relayed']);
    const tx = s.transactions[0]!;
    expect(tx.mailParams).toContain('BODY=8BITMIME');
    expect(tx.data!.equals(Buffer.concat([Buffer.from('Subject: stdin\r\nX-Old: 2\r\n\r\nfrom stdin: '), Buffer.from([0xe9, 0xff]), Buffer.from('\r\n.leading dot\r\n')]))).toBe(true);
  });

  it('the message from a file, over DATA (no CHUNKING)', async () => {
    const s = await server({ extensions: { chunking: false } });
    const file = join(tmp, 'message.eml');
    writeFileSync(file, MESSAGE);
    const r = await mailwire(['-f', 'sender@client.test', '-t', 'a@t.test', '-d', file, s.destination]);
    expect(r.code, r.stderr).toBe(0);
    expect(s.transactions[0]!.method).toBe('DATA');
    expect(s.transactions[0]!.data!.toString()).toBe(MESSAGE);
  });

  it('a message file that cannot be read, or is not a message: exit 65, nothing sent', async () => {
    const s = await server();
    const notMessage = join(tmp, 'not-a-message.txt');
    writeFileSync(notMessage, 'just some text\nwithout any header\n');
    const empty = join(tmp, 'empty.eml');
    writeFileSync(empty, '');
    for (const [data, said] of [
      [join(tmp, 'no-such-file.eml'), /cannot read the message from .*no-such-file\.eml: ENOENT/],
      [tmp, /cannot read the message from .*: EISDIR/],
      [notMessage, /not-a-message\.txt is not a message: line 1 is not a header field/],
      [empty, /empty\.eml is not a message: the message is empty/],
    ] as const) {
      const r = await mailwire(['-t', 'a@t.test', '--data', data, s.destination]);
      expect(r.code, r.stderr).toBe(65);
      expect(r.stderr).toMatch(said);
      expect(r.stdout).toBe('');
    }
    const r = await mailwire(['-t', 'a@t.test', '--data', '-', s.destination], { input: '' });
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/standard input is not a message: the message is empty/);
    expect(s.sessions).toHaveLength(0);
  });

  it('bad destination syntax, an unknown flag, a missing recipient, a password in argv: exit 64, nothing sent', async () => {
    const s = await server();
    for (const [args, said] of [
      [['-t', 'a@t.test', `[127.0.0.1:${s.port}`], /bad destination: .*missing "\]"/],
      [['-t', 'a@t.test', `unix:/tmp/nowhere.sock`], /bad destination: .*LMTP only/],
      [['-t', 'a@t.test', '--frmo', 'x@y.test', s.destination], /unknown flag --frmo \(did you mean --from\?\)/],
      [[s.destination], /no recipient/],
      [['-t', 'a@t.test', '--tls', 'sometimes', s.destination], /--tls sometimes: unknown level/],
      [['-t', 'a@t.test', '--timeout', 'soon', s.destination], /--timeout soon: not a duration/],
      [['-t', 'a@t.test', '--auth-user', 'tim', '--auth-password', 'hunter2', s.destination], /--auth-password is not supported/],
    ] as const) {
      const r = await mailwire([...args]);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(64);
      expect(r.stderr).toMatch(said);
      expect(r.stderr).toContain("Try 'mailwire --help'");
      expect(r.stdout).toBe('');
    }
    expect(s.sessions).toHaveLength(0);
  });

  it('-v: the transcript on stderr (C:/S:), AUTH PLAIN redacted; the password from a file or the environment', async () => {
    const password = 'Very-s3cret!pw';
    const s = await server({ tls: testCertificate, users: { tim: password }, extensions: { starttls: true, auth: ['PLAIN'] } });
    const pwFile = join(tmp, 'password');
    writeFileSync(pwFile, `${password}\n`);
    const plainResponse = Buffer.from(`\0tim\0${password}`).toString('base64');
    for (const how of [['--auth-password-file', pwFile], ['--auth-password-env', 'MAILWIRE_TEST_PW']]) {
      const r = await mailwire(['-v', '-f', 'sender@client.test', '-t', 'a@t.test', '--auth-user', 'tim', ...how, s.destination], { env: { MAILWIRE_TEST_PW: password } });
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stderr.split('\n');
      expect(lines).toContain('C: STARTTLS');
      expect(lines.some((l) => /^\* TLS TLSv1\.[23] .*, level may, server certificate not verified$/.test(l))).toBe(true);
      expect(lines).toContain('C: AUTH PLAIN <credentials>');
      expect(lines.some((l) => l.startsWith('S: 235 '))).toBe(true);
      expect(lines).toContain('C: MAIL FROM:<sender@client.test> BODY=7BIT');
      expect(lines.at(-2)).toBe('* 1 relayed: exit 0');
      for (const secret of [password, plainResponse]) {
        expect(r.stderr).not.toContain(secret);
        expect(r.stdout).not.toContain(secret);
      }
      expect(rows(r.stdout)[0]!.slice(0, 2)).toEqual(['a@t.test', 'relayed']);
    }
    await s.waitForSessions(2);
    expect(s.sessions.map((x) => x.auth)).toEqual([
      { mechanism: 'PLAIN', username: 'tim' },
      { mechanism: 'PLAIN', username: 'tim' },
    ]);
  });

  it('authentication problems: unreadable password file → 66, unset variable → 64, no terminal to ask → 64', async () => {
    const s = await server({ extensions: { auth: ['PLAIN'] } });
    const missing = await mailwire(['-t', 'a@t.test', '--auth-user', 'tim', '--auth-password-file', join(tmp, 'nope'), s.destination]);
    expect(missing.code).toBe(66);
    expect(missing.stderr).toMatch(/--auth-password-file: cannot read/);
    const unset = await mailwire(['-t', 'a@t.test', '--auth-user', 'tim', '--auth-password-env', 'MAILWIRE_SURELY_UNSET', s.destination]);
    expect(unset.code).toBe(64);
    expect(unset.stderr).toMatch(/MAILWIRE_SURELY_UNSET is not set/);
    const noTty = await mailwire(['-t', 'a@t.test', '--auth-user', 'tim', s.destination]);
    expect(noTty.code).toBe(64);
    expect(noTty.stderr).toMatch(/no terminal to ask for the password/);
    expect(s.sessions).toHaveLength(0);
  });

  it('--lmtp to an LMTP server: LHLO, one reply per recipient after the data (552 → failed, 69)', async () => {
    const s = await server({ protocol: 'lmtp', onData: (tx) => tx.accepted.map((a) => (a === 'full@t.test' ? '552 5.2.2 <full@t.test> Quota exceeded' : `250 2.0.0 <${a}> Saved`)) });
    const ok = await mailwire(['--lmtp', '-f', 'sender@client.test', '-t', 'a@t.test', `inet:127.0.0.1:${s.port}`]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(rows(ok.stdout)).toEqual([['a@t.test', 'relayed', '2.0.0', '127.0.0.1', '250 2.0.0 <a@t.test> Saved']]);
    const mixed = await mailwire(['--lmtp', '--lhlo', 'client.test', '-t', 'a@t.test', '-t', 'full@t.test', `inet:127.0.0.1:${s.port}`]);
    expect(mixed.code).toBe(69);
    expect(rows(mixed.stdout).map((row) => row.slice(0, 3))).toEqual([
      ['a@t.test', 'relayed', '2.0.0'],
      ['full@t.test', 'failed', '5.2.2'],
    ]);
    await s.waitForSessions(2);
    expect(s.sessions.map((x) => x.heloVerb)).toEqual(['LHLO', 'LHLO']);
    expect(s.sessions[1]!.helo).toBe('client.test');
  });

  it('--timeout: a server that stalls at RCPT → delayed 4.4.7, exit 75, soon after the deadline', async () => {
    const s = await server({ faults: [{ step: 'rcpt', action: 'stall' }] });
    const r = await mailwire(['-v', '--timeout', '1500ms', '-t', 'a@t.test', s.destination]);
    expect(r.code, r.stderr).toBe(75);
    expect(rows(r.stdout)).toEqual([['a@t.test', 'delayed', '4.4.7', '127.0.0.1', expect.any(String)]]);
    expect(r.stderr).toContain('* deadline of 1500 ms reached: unfinished recipients are delayed');
    // Postfix's own RCPT limit is 300 s; the process (tsx start-up included) ends within seconds.
    expect(r.ms).toBeGreaterThanOrEqual(1500);
    expect(r.ms).toBeLessThan(12_000);
  });

  it('--json prints the DeliveryResult; --quiet prints nothing; the exit code is the same', async () => {
    const s = await server({ onRcpt: (a) => (a.startsWith('x') ? '550 5.1.1 unknown' : undefined) });
    const json = await mailwire(['--json', '-t', 'a@t.test,x@t.test', s.destination]);
    expect(json.code).toBe(69);
    const result = JSON.parse(json.stdout) as DeliveryResult;
    expect(result.recipients.map((x) => [x.recipient, x.action, x.status])).toEqual([
      ['a@t.test', 'relayed', '2.0.0'],
      ['x@t.test', 'failed', '5.1.1'],
    ]);
    expect(result.attempts[0]).toMatchObject({ address: '127.0.0.1', port: s.port, outcome: 'completed' });
    const quiet = await mailwire(['-q', '-t', 'a@t.test', s.destination]);
    expect(quiet).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it('a connection refused is delayed 4.4.1: exit 75', async () => {
    const s = await server();
    const dest = s.destination;
    await s.close();
    const r = await mailwire(['-t', 'a@t.test', dest]);
    expect(r.code).toBe(75);
    expect(rows(r.stdout)[0]!.slice(0, 3)).toEqual(['a@t.test', 'delayed', '4.4.1']);
  });

  it('--help exits 0 and explains every flag; --version', async () => {
    const r = await mailwire(['--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const flag of ['--from', '--to', '--lmtp', '--tls', '--auth-user', '--auth-password-file', '--helo', '--timeout', '-v', '--data', '--header', '--subject', '--body', '--port', '--tls-ca', '--ehlo', '--auth-password-env', '--quiet', '--json']) {
      expect(r.stdout).toMatch(new RegExp(`(^|[ ,])${flag.replace(/-/g, '\\-')}[ ,\\n]`, 'm'));
    }
    for (const f of FLAGS) expect(r.stdout).toContain(`--${f.name}`);
    for (const code of ['0', '64', '65', '69', '75']) expect(r.stdout).toMatch(new RegExp(`^  ${code}\\b`, 'm'));
    const v = await mailwire(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^mailwire \d+\.\d+\.\d+/);
  });
});
