/**
 * One `mailwire` run: argv → options → deliver() → table → exit code. Standard streams, the
 * environment and an outside abort signal (SIGINT) come in through {@link CliIo}, so the whole
 * run can be tested in-process; `src/cli.ts` wires it to `process`.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { deliver } from '../deliver.js';
import type { Envelope } from '../envelope.js';
import { MailwireError } from '../errors.js';
import type { DeliverOptions, TlsPolicy } from '../options.js';
import type { DeliveryResult } from '../results/delivery-result.js';
import { parseCliArgs, type CliArgs, type HeaderField } from './args.js';
import { CliError, EX_DATAERR, EX_NOINPUT, EX_OK, EX_SOFTWARE, EX_USAGE } from './exit-codes.js';
import { helpText } from './flags.js';
import { buildMessage, checkMessage, replaceHeaders } from './message.js';
import { passwordFromEnv, passwordFromFile, promptPassword, type TtyInput } from './secrets.js';
import { exitCodeFor, formatTable, summary } from './table.js';
import { formatEvent } from './transcript.js';

export interface CliIo {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  stdin: TtyInput;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Aborts the delivery from outside (SIGINT): unfinished recipients become delayed. */
  signal?: AbortSignal;
  /** For `--version`. */
  version?: string;
}

/** Run the command; resolves to the exit code. Never rejects. */
export async function run(io: CliIo): Promise<number> {
  try {
    return await runUnsafe(io);
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`mailwire: ${err.message}\n`);
      if (err.exitCode === EX_USAGE) io.stderr.write(`Try 'mailwire --help' for more information.\n`);
      return err.exitCode;
    }
    if (err instanceof MailwireError) {
      // deliver() refused the options or the envelope before any traffic: a usage problem.
      io.stderr.write(`mailwire: ${err.message}\n`);
      return EX_USAGE;
    }
    io.stderr.write(`mailwire: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EX_SOFTWARE;
  }
}

async function runUnsafe(io: CliIo): Promise<number> {
  const parsed = parseCliArgs(io.argv);
  if (parsed.kind === 'usage') throw new CliError(EX_USAGE, parsed.message);
  if (parsed.kind === 'help') {
    io.stdout.write(helpText());
    return EX_OK;
  }
  if (parsed.kind === 'version') {
    io.stdout.write(`mailwire ${io.version ?? '(unknown version)'}\n`);
    return EX_OK;
  }
  const args = parsed.args;
  const log = (line: string): void => {
    if (args.verbose) io.stderr.write(`${line}\n`);
  };

  const password = args.authUser !== undefined ? await password_(args, io) : undefined;
  const ca = args.tlsCaFile !== undefined ? await readCa(args.tlsCaFile) : undefined;
  const sender = args.from ?? defaultSender(io.env);
  const message = await theMessage(args, io, sender);

  const controller = new AbortController();
  let deadline: NodeJS.Timeout | undefined;
  const onOutsideAbort = (): void => {
    log('* interrupted: unfinished recipients are delayed');
    controller.abort(io.signal?.reason);
  };
  if (io.signal?.aborted === true) onOutsideAbort();
  io.signal?.addEventListener('abort', onOutsideAbort, { once: true });
  if (args.timeoutMs !== undefined) {
    const ms = args.timeoutMs;
    deadline = setTimeout(() => {
      log(`* deadline of ${ms} ms reached: unfinished recipients are delayed`);
      controller.abort(new Error(`deadline of ${ms} ms reached`));
    }, ms);
  }

  if (args.destinationFromRecipients) log(`* destination ${args.destination} (the recipients' domain)`);
  const envelope: Envelope = { from: sender, to: args.to, message };
  let result: DeliveryResult;
  try {
    result = await deliver(envelope, args.destination, deliverOptions(args, password, ca, controller.signal, args.verbose ? (e) => {
      const line = formatEvent(e);
      if (line !== undefined) io.stderr.write(`${line}\n`);
    } : undefined));
  } finally {
    clearTimeout(deadline);
    io.signal?.removeEventListener('abort', onOutsideAbort);
  }

  if (args.json) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else if (!args.quiet) io.stdout.write(formatTable(result));
  const code = exitCodeFor(result);
  log(`* ${summary(result)}: exit ${code}`);
  return code;
}

export function deliverOptions(
  args: CliArgs,
  password: string | undefined,
  ca: string | undefined,
  signal: AbortSignal,
  onEvent: DeliverOptions['onEvent'],
): DeliverOptions {
  const o: DeliverOptions = { protocol: args.protocol, signal };
  if (args.heloName !== undefined) o.heloName = args.heloName;
  if (args.port !== undefined) o.port = args.port;
  if (args.inetProtocols !== undefined) o.inetProtocols = args.inetProtocols;
  const tls: TlsPolicy = {};
  if (args.tlsLevel !== undefined) tls.level = args.tlsLevel;
  if (ca !== undefined) tls.ca = ca;
  if (args.tlsFingerprints.length > 0) tls.fingerprints = args.tlsFingerprints;
  if (args.tlsOnConnect) tls.wrapperMode = true;
  if (Object.keys(tls).length > 0) o.tls = tls;
  // DANE needs DNSSEC-validated answers (smtp_dns_support_level = dnssec).
  if (args.tlsLevel === 'dane' || args.tlsLevel === 'dane-only') o.dnsSupportLevel = 'dnssec';
  if (args.authUser !== undefined && password !== undefined) o.auth = { username: args.authUser, password };
  if (args.authMechanisms !== undefined) o.sasl = { mechanismFilter: args.authMechanisms };
  if (onEvent !== undefined) o.onEvent = onEvent;
  return o;
}

async function password_(args: CliArgs, io: CliIo): Promise<string> {
  if (args.authPasswordFile !== undefined) return passwordFromFile(args.authPasswordFile);
  if (args.authPasswordEnv !== undefined) return passwordFromEnv(args.authPasswordEnv, io.env);
  if (args.data === '-') {
    throw new CliError(EX_USAGE, '--auth-user with --data -: standard input holds the message, so give the password with --auth-password-file FILE or --auth-password-env VAR');
  }
  return promptPassword(`Password for ${args.authUser}: `, io.stdin, io.stderr);
}

async function readCa(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(EX_NOINPUT, `--tls-ca: cannot read ${file}: ${(err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new CliError(EX_NOINPUT, `--tls-ca: ${file} holds no PEM certificate`);
  return pem;
}

/** USER@HOSTNAME, as swaks and sendmail default the sender. */
export function defaultSender(env: Readonly<Record<string, string | undefined>>): string {
  let user: string | undefined;
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry (containers) */
  }
  user = user || env.USER || env.LOGNAME || 'mailwire';
  return `${user}@${hostname()}`;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function theMessage(args: CliArgs, io: CliIo, sender: string): Promise<Buffer> {
  const headers: HeaderField[] = [...(args.subject !== undefined ? [{ name: 'Subject', value: args.subject }] : []), ...args.headers];
  if (args.data === undefined) {
    return buildMessage({
      from: sender === '' ? defaultSender(io.env) : sender,
      to: args.to,
      subject: args.subject,
      body: args.body,
      headers: args.headers,
      date: new Date(),
      messageId: `${Date.now().toString(36)}.${randomBytes(6).toString('hex')}@${args.heloName ?? hostname()}`,
    });
  }
  const fromStdin = args.data === '-';
  const what = fromStdin ? 'standard input' : args.data;
  let bytes: Buffer;
  try {
    if (fromStdin && io.stdin.isTTY === true) io.stderr.write('mailwire: reading the message from the terminal; end it with Ctrl-D\n');
    bytes = fromStdin ? await readAll(io.stdin) : await readFile(args.data);
  } catch (err) {
    throw new CliError(EX_DATAERR, `cannot read the message from ${what}: ${(err as Error).message}`);
  }
  const check = checkMessage(bytes);
  if (!check.ok) throw new CliError(EX_DATAERR, `${what} is not a message: ${check.reason}`);
  return replaceHeaders(bytes, headers);
}
