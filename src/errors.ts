/**
 * Programmer and configuration errors. Everything the network or a server does is a
 * per-recipient result instead (API.md "errors").
 */
export type MailwireErrorCode =
  | 'EDESTINATION' // next-hop syntax (DEST-*)
  | 'EOPTION' // unknown option value, or a value mailwire cannot honor
  | 'EENVELOPE'; // envelope is not an object, or has no recipient

export class MailwireError extends Error {
  readonly code: MailwireErrorCode;
  constructor(code: MailwireErrorCode, message: string) {
    super(message);
    this.name = 'MailwireError';
    this.code = code;
  }
}
