// The built `mailwire` command (node dist/cli.js) against the real Postfix and Dovecot of
// test/interop/peers.sh: the table, the exit codes, the mail in the maildirs, stdin, LMTP, SASL.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { SASL, SASL_USERS, peers, saslLab, smtpNexthop, token, waitForMaildirFile } from './helpers.js';
import { newestMtime, runNode, type ProcessRun } from '../helpers/process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli.js');
const P = peers();
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const postfixMaildir = (user: string): string => `${P.postfixMaildirs}/example.test/${user}`;
const lmtpMaildir = (user: string): string => `${P.lmtpMaildirs}/${user}`;

beforeAll(() => {
  let built = 0;
  try {
    built = statSync(CLI).mtimeMs;
  } catch {
    /* not built yet */
  }
  if (built >= newestMtime(join(ROOT, 'src'))) return;
  // Only the command's bundle (no config: no cleaning of dist/, no type declarations).
  const r = spawnSync('npx', ['tsup', 'src/cli.ts', '--no-config', '--format', 'esm', '--target', 'node20', '--platform', 'node', '--out-dir', 'dist', '--sourcemap', '--treeshake'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`npx tsup failed:\n${r.stdout}\n${r.stderr}`);
}, 120_000);

function mailwire(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<ProcessRun> {
  return runNode([CLI, ...args], { cwd: ROOT, ...(opts.env ? { env: opts.env } : {}), input: opts.input ?? '', timeoutMs: 50_000 });
}

/** Table rows: recipient, action, status, remote MTA, reason. */
function rows(stdout: string): string[][] {
  const lines = stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^RECIPIENT\s+ACTION\s+STATUS\s+REMOTE MTA\s+REASON$/);
  return lines.slice(1).map((l) => /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.*)$/.exec(l)?.slice(1) ?? [l]);
}

describe('node dist/cli.js against real Postfix', () => {
  it('every recipient accepted: exit 0, the table, and the built message in both maildirs', async () => {
    const tok = token('cli-ok');
    const r = await mailwire(['-f', 'sender@client.test', '-t', ALICE, '-t', BOB, '--helo', 'client.test', '--subject', tok, smtpNexthop(P.postfix)]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const table = rows(r.stdout);
    expect(table.map((row) => row.slice(0, 4))).toEqual([
      [ALICE, 'relayed', '2.0.0', '127.0.0.1'],
      [BOB, 'relayed', '2.0.0', '127.0.0.1'],
    ]);
    expect(table[0]![4]).toMatch(/^250 2\.0\.0 Ok: \d+ bytes queued as [0-9A-F]+$/); // BDAT LAST on the CHUNKING listener
    for (const user of ['alice', 'bob']) {
      const file = (await waitForMaildirFile(postfixMaildir(user), tok)).toString();
      expect(file).toContain(`Subject: ${tok}\n`);
      expect(file).toContain('From: <sender@client.test>\n');
      expect(file).toContain('\n\nThis is a test mailing from mailwire.\n');
    }
  });

  it('a recipient Postfix rejects 550: exit 69, Postfix\'s reply in the table, the other one delivered', async () => {
    const tok = token('cli-550');
    const r = await mailwire(['-f', 'sender@client.test', '-t', `${ALICE},reject-5xx@example.test`, '--subject', tok, smtpNexthop(P.postfix)]);
    expect(r.code, r.stderr + r.stdout).toBe(69);
    expect(rows(r.stdout)).toEqual([
      [ALICE, 'relayed', '2.0.0', '127.0.0.1', expect.stringMatching(/queued as/)],
      [
        'reject-5xx@example.test',
        'failed',
        '5.1.1',
        '127.0.0.1',
        'host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <reject-5xx@example.test>: Recipient address rejected: interop: mailbox does not exist (in reply to RCPT TO command)',
      ],
    ]);
    await waitForMaildirFile(postfixMaildir('alice'), tok);
  });

  it('a recipient Postfix defers 450, none rejected: exit 75', async () => {
    const r = await mailwire(['-f', 'sender@client.test', '-t', ALICE, '-t', 'defer-4xx@example.test', smtpNexthop(P.postfix)]);
    expect(r.code, r.stderr + r.stdout).toBe(75);
    expect(rows(r.stdout).map((row) => row.slice(0, 3))).toEqual([
      [ALICE, 'relayed', '2.0.0'],
      ['defer-4xx@example.test', 'delayed', '4.2.0'],
    ]);
  });

  it('the message from stdin (--data -), over DATA on the listener without CHUNKING; -v shows the transcript', async () => {
    const tok = token('cli-stdin');
    const message = `From: <sender@client.test>\nTo: <${ALICE}>\nSubject: ${tok}\nMessage-ID: <${tok}@client.test>\n\n.a leading dot\nfrom stdin\n`;
    const r = await mailwire(['-v', '-f', 'sender@client.test', '-t', ALICE, '--data', '-', smtpNexthop(P.postfixNoChunking)], { input: message });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n');
    expect(lines).toContain('C: DATA');
    expect(lines.some((l) => /^S: 354 /.test(l))).toBe(true);
    expect(lines.some((l) => /^S: 250 2\.0\.0 Ok: queued as [0-9A-F]+$/.test(l))).toBe(true);
    const file = (await waitForMaildirFile(postfixMaildir('alice'), tok)).toString();
    expect(file).toContain(`\nMessage-ID: <${tok}@client.test>\n`);
    expect(file.endsWith('\n\n.a leading dot\nfrom stdin\n')).toBe(true); // dot-stuffed on the wire, unstuffed by Postfix
  });

  it('SASL at the SASL lab\'s submission server: STARTTLS, AUTH redacted in -v, exit 0; without AUTH Postfix refuses (554, exit 69)', async () => {
    const lab = saslLab();
    const dest = `[${SASL.submit}]:${lab.port}`;
    const { username, password } = SASL_USERS.test;
    const tok = token('cli-sasl');
    const r = await mailwire(['-v', '-f', username, '-t', ALICE, '--subject', tok, '--tls', 'encrypt', '--auth-user', username, '--auth-password-env', 'MAILWIRE_CLI_PW', dest], {
      env: { MAILWIRE_CLI_PW: password },
    });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).toMatch(/^C: AUTH \S+ <credentials>$/m);
    expect(r.stderr).toMatch(/^S: 235 /m);
    expect(r.stderr + r.stdout).not.toContain(password);
    const file = (await waitForMaildirFile(postfixMaildir('alice'), tok)).toString();
    expect(file).toContain(`(Authenticated sender: ${username})`);

    const anon = await mailwire(['-f', username, '-t', ALICE, '--tls', 'encrypt', dest]);
    expect(anon.code).toBe(69);
    expect(rows(anon.stdout)[0]!.slice(0, 3)).toEqual([ALICE, 'failed', '5.7.1']);
  });
});

describe('node dist/cli.js --lmtp against real Dovecot LMTP', () => {
  it.each([
    ['TCP', `inet:${P.lmtp}`],
    ['unix socket', `unix:${P.lmtpSocket}`],
  ])('over %s: delivered into the maildir (exit 0); an unknown user fails at RCPT (exit 69)', async (_, dest) => {
    const tok = token('cli-lmtp');
    const r = await mailwire(['--lmtp', '-f', 'sender@client.test', '-t', ALICE, '--subject', tok, dest]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(rows(r.stdout)[0]!.slice(0, 3)).toEqual([ALICE, 'relayed', '2.0.0']);
    await waitForMaildirFile(lmtpMaildir('alice'), tok);
    const bad = await mailwire(['--lmtp', '-t', ALICE, '-t', 'nobody@example.test', dest]);
    expect(bad.code).toBe(69);
    expect(rows(bad.stdout).map((row) => row.slice(0, 3))).toEqual([
      [ALICE, 'relayed', '2.0.0'],
      ['nobody@example.test', 'failed', '5.1.1'],
    ]);
  });
});
