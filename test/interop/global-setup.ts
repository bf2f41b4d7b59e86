// Starts the interop peers (test/interop/peers.sh) before the suite, unless they already run,
// and stops them afterwards only if this run started them (MAILWIRE_INTEROP_KEEP=1 keeps them).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const PEERS = fileURLToPath(new URL('./peers.sh', import.meta.url));

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .concat(['/usr/sbin', '/sbin'])
    .some((dir) => dir !== '' && existsSync(`${dir}/${cmd}`));
}

function peers(command: 'start' | 'stop' | 'status', stdio: 'inherit' | 'pipe'): number {
  const r = spawnSync('bash', [PEERS, command], { stdio, encoding: 'utf8' });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

export default function setup(): () => void {
  const missing: string[] = [];
  if (!onPath('postfix')) missing.push('postfix');
  if (!onPath('dovecot')) missing.push('dovecot-core');
  if (!existsSync('/usr/lib/dovecot/lmtp')) missing.push('dovecot-lmtpd');
  if (!onPath('unbound') || !onPath('unbound-checkconf')) missing.push('unbound');
  if (!onPath('ldns-signzone') || !onPath('ldns-keygen') || !onPath('drill')) missing.push('ldnsutils');
  if (!onPath('openssl')) missing.push('openssl');
  if (missing.length > 0) {
    throw new Error(
      `mailwire interop tests need real Postfix, Dovecot LMTP and unbound (DNS) servers, but the Debian package(s) ` +
        `${missing.join(', ')} are not installed.\n` +
        `  Install: apt-get install --no-install-recommends postfix dovecot-core dovecot-lmtpd unbound ldnsutils openssl\n` +
        `  (.ci/run does this on a clean Debian 12 machine), then: npm run test:interop`,
    );
  }
  if (process.getuid?.() !== 0) {
    throw new Error(
      'mailwire interop tests start private Postfix, Dovecot and unbound instances and read the mail they ' +
        'store, which needs root: run them as root (e.g. `sudo npm run test:interop`).',
    );
  }

  const wasRunning = peers('status', 'pipe') === 0;
  if (!wasRunning && peers('start', 'inherit') !== 0) {
    throw new Error(`${PEERS} start failed (its messages are above); the suite cannot run.`);
  }
  return () => {
    if (!wasRunning && process.env.MAILWIRE_INTEROP_KEEP !== '1') peers('stop', 'inherit');
  };
}
