/** Which `Timeouts` entry applies while the engine waits in a given stage (PROTO-29). */
import type { Stage } from '../protocol/client-session.js';
import type { Timeouts } from '../options.js';

const STAGE_TIMEOUT: Record<Stage, keyof Timeouts | undefined> = {
  greeting: 'helo',
  ehlo: 'helo',
  helo: 'helo',
  lhlo: 'helo',
  starttls: 'starttls',
  tls: 'starttls',
  auth: 'helo',
  mail: 'mail',
  rcpt: 'rcpt',
  data: 'dataInit',
  body: 'dataXfer',
  bdat: 'dataXfer',
  dot: 'dataDone',
  'bdat-last': 'dataDone',
  'lone-dot': 'dataDone',
  rset: 'rset',
  probe: 'rset',
  'xforward-name': 'xforward',
  'xforward-proto': 'xforward',
  quit: 'quit',
  idle: undefined,
  done: undefined,
};

export function stageTimeout(stage: Stage, timeouts: Timeouts): number {
  const key = STAGE_TIMEOUT[stage];
  return key ? timeouts[key] : 0;
}
