/** mailwire CLI: argv → CliArgs or a usage error (exit 64). */
import { describe, expect, it } from 'vitest';
import { parseCliArgs, parseDuration, parseHeaderField, splitAddressList, type CliArgs } from '../../src/cli/args.js';
import { FLAGS, helpText } from '../../src/cli/flags.js';

function ok(argv: string[]): CliArgs {
  const r = parseCliArgs(argv);
  if (r.kind !== 'run') throw new Error(`expected a run, got ${JSON.stringify(r)}`);
  return r.args;
}
function usage(argv: string[]): string {
  const r = parseCliArgs(argv);
  if (r.kind !== 'usage') throw new Error(`expected a usage error, got ${JSON.stringify(r)}`);
  return r.message;
}

describe('parseCliArgs', () => {
  it('the main flags, long, short and with =', () => {
    const a = ok(['--from', 'me@a.test', '-t', 'x@b.test', '--to=y@b.test,z@b.test', '--lmtp', '--helo', 'client.test', '--timeout', '2m', '-p', '2525', '-v', 'inet:127.0.0.1']);
    expect(a).toMatchObject({
      from: 'me@a.test',
      to: ['x@b.test', 'y@b.test', 'z@b.test'],
      protocol: 'lmtp',
      heloName: 'client.test',
      timeoutMs: 120_000,
      port: 2525,
      verbose: true,
      quiet: false,
      json: false,
      destination: 'inet:127.0.0.1',
      destinationFromRecipients: false,
    });
  });

  it('defaults: SMTP, no TLS level (the library default may), no timeout, no sender (USER@HOST later)', () => {
    const a = ok(['-t', 'x@b.test', '[127.0.0.1]:2525']);
    expect(a).toMatchObject({ protocol: 'smtp', tlsLevel: undefined, timeoutMs: undefined, from: undefined, data: undefined, headers: [] });
  });

  it('--ehlo and --lhlo are aliases of --helo; short flags bundle (-vq is -v -q)', () => {
    expect(ok(['--ehlo', 'e.test', '-t', 'x@b.test', 'b.test']).heloName).toBe('e.test');
    expect(ok(['--lhlo', 'l.test', '-t', 'x@b.test', 'b.test']).heloName).toBe('l.test');
    expect(ok(['-vq', '-tx@b.test', 'b.test'])).toMatchObject({ verbose: true, quiet: true, to: ['x@b.test'] });
  });

  it('null sender and angle brackets', () => {
    expect(ok(['--from', '', '-t', 'x@b.test', 'b.test']).from).toBe('');
    expect(ok(['--from', '<>', '-t', '<x@b.test>', 'b.test'])).toMatchObject({ from: '', to: ['x@b.test'] });
  });

  it('commas inside a quoted local part do not split', () => {
    expect(splitAddressList('"a,b"@x.test, c@x.test,,')).toEqual(['"a,b"@x.test', 'c@x.test']);
  });

  it('no destination: the recipients\' common domain (MX lookup)', () => {
    expect(ok(['-t', 'a@Example.NET', '-t', 'b@example.net'])).toMatchObject({ destination: 'example.net', destinationFromRecipients: true });
    expect(usage(['-t', 'a@one.test', '-t', 'b@two.test'])).toMatch(/different domains \(one\.test, two\.test\)/);
    expect(usage(['-t', 'local'])).toMatch(/no domain/);
    expect(usage(['--lmtp', '-t', 'a@b.test'])).toMatch(/LMTP needs one/);
  });

  it('TLS: levels, fingerprints, implicit TLS', () => {
    expect(ok(['--tls', 'VERIFY', '--tls-ca', 'ca.pem', '-t', 'x@b.test', 'b.test'])).toMatchObject({ tlsLevel: 'verify', tlsCaFile: 'ca.pem' });
    expect(ok(['--tls-fingerprint', 'AB:CD:EF', '-t', 'x@b.test', 'b.test'])).toMatchObject({ tlsLevel: 'fingerprint', tlsFingerprints: ['AB:CD:EF'] });
    expect(ok(['--tls-on-connect', '-t', 'x@b.test', '[b.test]:465'])).toMatchObject({ tlsLevel: 'encrypt', tlsOnConnect: true });
    expect(ok(['--tls-on-connect', '--tls', 'secure', '-t', 'x@b.test', '[b.test]:465']).tlsLevel).toBe('secure');
    expect(usage(['--tls', 'maybe', '-t', 'x@b.test', 'b.test'])).toMatch(/--tls maybe: unknown level/);
    expect(usage(['--tls', 'fingerprint', '-t', 'x@b.test', 'b.test'])).toMatch(/needs at least one --tls-fingerprint/);
    expect(usage(['--tls', 'verify', '--tls-fingerprint', 'ABCD', '-t', 'x@b.test', 'b.test'])).toMatch(/needs --tls fingerprint/);
    expect(usage(['--tls-fingerprint', 'xyz', '-t', 'x@b.test', 'b.test'])).toMatch(/not a hex digest/);
    expect(usage(['--tls-on-connect', '--tls', 'may', '-t', 'x@b.test', 'b.test'])).toMatch(/encrypt or higher/);
  });

  it('authentication: user plus a file or a variable; never a password in argv', () => {
    expect(ok(['--auth-user', 'tim', '--auth-password-file', 'pw', '--auth-mech', 'plain,login', '-t', 'x@b.test', 'b.test'])).toMatchObject({
      authUser: 'tim',
      authPasswordFile: 'pw',
      authMechanisms: ['PLAIN', 'LOGIN'],
    });
    expect(ok(['--auth-user', 'tim', '--auth-password-env', 'SMTP_PW', '-t', 'x@b.test', 'b.test']).authPasswordEnv).toBe('SMTP_PW');
    expect(usage(['--auth-password', 'hunter2', '-t', 'x@b.test', 'b.test'])).toMatch(/--auth-password is not supported: .*--auth-password-file/);
    expect(usage(['--auth-password-file', 'pw', '-t', 'x@b.test', 'b.test'])).toMatch(/need --auth-user/);
    expect(usage(['--auth-user', 'tim', '--auth-password-file', 'pw', '--auth-password-env', 'X', '-t', 'x@b.test', 'b.test'])).toMatch(/exclude each other/);
    expect(usage(['--auth-user', 'tim', '--auth-password-env', 'NOT-A-NAME', '-t', 'x@b.test', 'b.test'])).toMatch(/not an environment variable name/);
  });

  it('message flags', () => {
    expect(ok(['--data', '-', '--header', 'X-Test: 1', '--header', 'X-Test:2', '--subject', 'hi', '-t', 'x@b.test', 'b.test'])).toMatchObject({
      data: '-',
      headers: [{ name: 'X-Test', value: '1' }, { name: 'X-Test', value: '2' }],
      subject: 'hi',
    });
    expect(usage(['--data', 'm.eml', '--body', 'x', '-t', 'x@b.test', 'b.test'])).toMatch(/--body .* cannot be combined with --data/);
    expect(usage(['--header', 'no colon', '-t', 'x@b.test', 'b.test'])).toMatch(/not a header field/);
    expect(usage(['--subject', 'a\nb', '-t', 'x@b.test', 'b.test'])).toMatch(/one line/);
  });

  it('usage errors: unknown flag (with a suggestion), missing value, repeated single flag, no recipient, two destinations', () => {
    expect(usage(['--form', 'a@b.test', '-t', 'x@b.test', 'b.test'])).toBe('unknown flag --form (did you mean --from?)');
    expect(usage(['-z', '-t', 'x@b.test', 'b.test'])).toMatch(/^unknown flag -z/);
    expect(usage(['-t'])).toMatch(/-t needs a value/);
    expect(usage(['--from', '--to', 'x@b.test', 'b.test'])).toMatch(/--from needs a value .*not the flag --to/);
    expect(usage(['--from', 'a@b.test', '--from', 'c@b.test', '-t', 'x@b.test', 'b.test'])).toMatch(/--from given more than once/);
    expect(usage(['--lmtp=yes', '-t', 'x@b.test', 'b.test'])).toMatch(/takes no value/);
    expect(usage(['b.test'])).toMatch(/no recipient/);
    expect(usage(['-t', 'x@b.test', 'a.test', 'b.test'])).toMatch(/one destination only/);
    expect(usage(['-t', 'x@b.test', '-4', '-6', 'b.test'])).toMatch(/exclude each other/);
    expect(usage(['-t', 'x@b.test', '--quiet', '--json', 'b.test'])).toMatch(/exclude each other/);
    expect(usage(['-t', 'x@b.test', '--port', '70000', 'b.test'])).toMatch(/not a port number/);
    expect(usage(['-t', 'x@b.test', '--port', 'nosuchservice', 'b.test'])).toMatch(/bad destination: unknown default port/);
    expect(usage(['-t', 'x@b.test', '--helo', 'a b', 'b.test'])).toMatch(/not a host name/);
    expect(usage(['-t', 'x@b.test', '--timeout', '10x', 'b.test'])).toMatch(/not a duration/);
  });

  it('destination syntax is checked with the library\'s parser (Postfix syntax)', () => {
    expect(usage(['-t', 'x@b.test', '[127.0.0.1'])).toMatch(/^bad destination: .*missing "\]"/);
    expect(usage(['-t', 'x@b.test', 'unix:/run/lmtp'])).toMatch(/LMTP only/);
    expect(ok(['--lmtp', '-t', 'x@b.test', 'unix:/run/lmtp']).destination).toBe('unix:/run/lmtp');
    expect(ok(['-t', 'x@b.test', 'a.test, [b.test]:2525']).destination).toBe('a.test, [b.test]:2525');
    expect(ok(['-t', 'x@b.test', '--', '[ipv6:::1]:25']).destination).toBe('[ipv6:::1]:25');
  });

  it('--help and --version win over everything else', () => {
    expect(parseCliArgs(['--bogus-but-later', '--help']).kind).toBe('usage'); // the unknown flag is seen first
    expect(parseCliArgs(['-h']).kind).toBe('help');
    expect(parseCliArgs(['--version', '--to']).kind).toBe('usage');
    expect(parseCliArgs(['--version']).kind).toBe('version');
    expect(parseCliArgs(['--help', '-t', 'x@b.test', '[bad']).kind).toBe('help');
  });
});

describe('parseDuration', () => {
  it.each([
    ['30', 30_000],
    ['500ms', 500],
    ['45s', 45_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['0.5', 500],
  ])('%s → %i ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', '0', '-1', 'abc', '10x', '1e3', '0ms'])('%j is not a duration', (text) => expect(parseDuration(text)).toBeUndefined());
});

describe('parseHeaderField', () => {
  it('Name: value', () => {
    expect(parseHeaderField('X-A: b: c')).toEqual({ name: 'X-A', value: 'b: c' });
    expect(parseHeaderField('Subject:')).toEqual({ name: 'Subject', value: '' });
    expect(parseHeaderField(': x')).toBeUndefined();
    expect(parseHeaderField('A B: x')).toBeUndefined();
    expect(parseHeaderField('X: a\r\nBcc: evil@x')).toBeUndefined();
  });
});

describe('--help', () => {
  it('documents every flag, alias and short form, in at most 80 columns', () => {
    const text = helpText();
    for (const f of FLAGS) {
      expect(text).toContain(`--${f.name}`);
      for (const a of f.aliases ?? []) expect(text).toContain(`--${a}`);
      if (f.short !== undefined) expect(text).toContain(`-${f.short}, --${f.name}`);
    }
    for (const code of ['64', '65', '69', '75']) expect(text).toMatch(new RegExp(`^  ${code} `, 'm'));
    expect(text.split('\n').filter((l) => l.length > 80)).toEqual([]);
  });
});
