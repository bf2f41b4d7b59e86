#!/usr/bin/env node
/**
 * `mailwire`: deliver one message by SMTP/LMTP from the command line (see `mailwire --help`).
 * Thin: process → run() (src/cli/run.ts) → exit code. The first SIGINT aborts the delivery
 * (unfinished recipients are delayed, the table is still printed); a second one exits at once.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run } from './cli/run.js';

function version(): string | undefined {
  try {
    // dist/cli.js and src/cli.ts both sit one level below package.json.
    const pkg = JSON.parse(readFileSync(join(dirname(realpathSync(process.argv[1] ?? '')), '..', 'package.json'), 'utf8')) as { name?: string; version?: string };
    return pkg.name === 'mailwire' ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

const interrupt = new AbortController();
const onSigint = (): void => {
  if (interrupt.signal.aborted) process.exit(130);
  interrupt.abort(new Error('interrupted'));
};
process.on('SIGINT', onSigint);

const v = version();
void run({
  argv: process.argv.slice(2),
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  signal: interrupt.signal,
  ...(v !== undefined ? { version: v } : {}),
}).then((code) => {
  process.removeListener('SIGINT', onSigint);
  process.exitCode = code;
});
