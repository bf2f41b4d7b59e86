/** mailwire CLI: flags → DeliverOptions (what deliver() is asked to do). */
import { describe, expect, it } from 'vitest';
import { parseCliArgs, type CliArgs } from '../../src/cli/args.js';
import { deliverOptions } from '../../src/cli/run.js';

function args(argv: string[]): CliArgs {
  const r = parseCliArgs(argv);
  if (r.kind !== 'run') throw new Error(JSON.stringify(r));
  return r.args;
}
const signal = new AbortController().signal;

describe('deliverOptions', () => {
  it('defaults: protocol and the signal only (every other option keeps Postfix\'s default)', () => {
    expect(deliverOptions(args(['-t', 'a@b.test', 'b.test']), undefined, undefined, signal, undefined)).toEqual({ protocol: 'smtp', signal });
  });

  it('connection, TLS and SASL flags', () => {
    const o = deliverOptions(
      args(['--lmtp', '--helo', 'me.test', '-p', 'submission', '-6', '--tls', 'verify', '--tls-on-connect', '--auth-user', 'tim', '--auth-password-env', 'PW', '--auth-mech', 'scram-sha-256', '-t', 'a@b.test', 'inet:b.test']),
      'pw',
      'PEM',
      signal,
      undefined,
    );
    expect(o).toEqual({
      protocol: 'lmtp',
      signal,
      heloName: 'me.test',
      port: 'submission',
      inetProtocols: 'ipv6',
      tls: { level: 'verify', ca: 'PEM', wrapperMode: true },
      auth: { username: 'tim', password: 'pw' },
      sasl: { mechanismFilter: ['SCRAM-SHA-256'] },
    });
  });

  it('DANE asks for DNSSEC (smtp_dns_support_level = dnssec); fingerprints go into the policy', () => {
    expect(deliverOptions(args(['--tls', 'dane', '-t', 'a@b.test', 'b.test']), undefined, undefined, signal, undefined)).toMatchObject({ tls: { level: 'dane' }, dnsSupportLevel: 'dnssec' });
    expect(deliverOptions(args(['--tls-fingerprint', 'AB:CD', '-t', 'a@b.test', 'b.test']), undefined, undefined, signal, undefined).tls).toEqual({ level: 'fingerprint', fingerprints: ['AB:CD'] });
  });
});
