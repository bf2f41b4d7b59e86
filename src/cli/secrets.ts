/**
 * Where the SASL password comes from: a file, an environment variable, or a prompt on the
 * terminal (echo off). Never from argv: `--auth-password` is refused by the parser.
 */
import { readFile } from 'node:fs/promises';
import { CliError, EX_NOINPUT, EX_USAGE } from './exit-codes.js';

/** What a password prompt needs of standard input: a TTY stream. */
export interface TtyInput extends NodeJS.ReadableStream {
  isTTY?: boolean;
  isRaw?: boolean;
  setRawMode?: (mode: boolean) => unknown;
}

/** Exit code for an interrupted prompt (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

/** The first line of FILE (without its line end); an empty first line is an error. */
export async function passwordFromFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(EX_NOINPUT, `--auth-password-file: cannot read ${file}: ${(err as Error).message}`);
  }
  const first = /^[^\r\n]*/.exec(text)![0];
  if (first === '') throw new CliError(EX_NOINPUT, `--auth-password-file: ${file} has no password on its first line`);
  return first;
}

export function passwordFromEnv(name: string, env: Readonly<Record<string, string | undefined>>): string {
  const v = env[name];
  if (v === undefined || v === '') throw new CliError(EX_USAGE, `--auth-password-env: the environment variable ${name} is not set or empty`);
  return v;
}

/** Ask on the terminal with echo off. Enter ends; Ctrl-C interrupts (exit 130); Backspace and Ctrl-U edit. */
export function promptPassword(prompt: string, input: TtyInput, output: NodeJS.WritableStream): Promise<string> {
  const setRaw = input.setRawMode;
  if (input.isTTY !== true || setRaw === undefined) {
    return Promise.reject(new CliError(EX_USAGE, '--auth-user needs --auth-password-file FILE or --auth-password-env VAR (there is no terminal to ask for the password)'));
  }
  return new Promise((resolve, reject) => {
    const wasRaw = input.isRaw === true;
    let password = '';
    const finish = (err?: Error): void => {
      input.removeListener('data', onData);
      setRaw.call(input, wasRaw);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(password);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new CliError(EXIT_INTERRUPTED, 'interrupted'));
        if (ch === '\u0004') return password === '' ? finish(new CliError(EX_USAGE, 'no password given')) : finish();
        if (ch === '\u007f' || ch === '\b') password = [...password].slice(0, -1).join('');
        else if (ch === '\u0015') password = '';
        else if (ch >= ' ') password += ch;
      }
    };
    output.write(prompt);
    setRaw.call(input, true);
    input.on('data', onData);
    input.resume();
  });
}
