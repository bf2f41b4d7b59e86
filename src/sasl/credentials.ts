/** SASL credentials (API.md `SaslCredentials`) and the SASLprep-like normalization RFC 4013 asks for. */
export interface SaslCredentials {
  /** Authentication identity (authcid). */
  username: string;
  /** For PLAIN, LOGIN, CRAM-MD5, SCRAM. */
  password?: string;
  /** OAuth 2.0 bearer token, for OAUTHBEARER and XOAUTH2. */
  accessToken?: string;
  /** Authorization identity; sent only when given (Postfix `send_cyrus_sasl_authzid = no`). */
  authzid?: string;
}

const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g;
// RFC 3454 B.1: commonly mapped to nothing.
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/g;

/** RFC 4013 SASLprep, the parts that matter for real passwords: mapping, then NFKC. */
export function saslPrep(s: string): string {
  return s.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
}
