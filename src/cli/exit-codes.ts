/** The exit codes of `mailwire` (BSD sysexits.h, as sendmail(1) and Postfix use them). */
export const EX_OK = 0;
/** A flag, its value or the destination's syntax is wrong. */
export const EX_USAGE = 64;
/** The message cannot be read, or is not an RFC 5322 message. */
export const EX_DATAERR = 65;
/** A password or CA file named by a flag cannot be read or is empty. */
export const EX_NOINPUT = 66;
/** At least one recipient failed (bounce). */
export const EX_UNAVAILABLE = 69;
/** A bug in mailwire: an unexpected exception. */
export const EX_SOFTWARE = 70;
/** Some recipients are delayed (try again later) and none failed. */
export const EX_TEMPFAIL = 75;

/** An error that ends the command with an exit code and a one-line message on stderr. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(exitCode: number, message: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}
