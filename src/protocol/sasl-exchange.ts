/**
 * The AUTH command exchange (RFC 4954 §4), mechanism-agnostic: the SASL issue supplies the
 * mechanisms and the rules that pick one; this is where they plug into the engine.
 * Postfix smtp_sasl_proto.c:smtp_sasl_authenticate (POSTFIX-BEHAVIOR.md §1.7).
 */
import type { Reply } from './reply.js';

/** A client mechanism, go-sasl style: start, then one response per challenge. */
export interface SaslMechanism {
  /** IANA mechanism name, e.g. `PLAIN`. */
  readonly name: string;
  /** The initial response; `undefined` when the mechanism has none (an empty array is "="). */
  start(): Uint8Array | undefined;
  /** The response to a server challenge; throw (or return an Error) to give up. */
  next(challenge: Uint8Array): Uint8Array | Error;
  /** Called on the server's 2xx: a mechanism that must have verified the server (SCRAM) says so here. */
  finish?(): Error | undefined;
}

export type SaslStep =
  | { kind: 'send'; line: string }
  | { kind: 'done' }
  | { kind: 'reply' } // the server refused: its reply decides (soft-bounced by results/)
  | { kind: 'local'; detail: string };

/** Postfix: the 334 loop stops after 100 steps. */
const MAX_STEPS = 100;

export class SaslExchange {
  private steps = 0;
  private pendingInitial: Uint8Array | undefined;
  constructor(private readonly mechanism: SaslMechanism) {}

  /** The AUTH line: the initial response goes inline only when it fits (RFC 4954 §4, 512-octet line). */
  firstLine(): { line: string; redacted: string } {
    const initial = this.mechanism.start();
    const name = this.mechanism.name;
    if (initial === undefined) return { line: `AUTH ${name}`, redacted: `AUTH ${name}` };
    const encoded = initial.length === 0 ? '=' : toBase64(initial);
    if (name.length + encoded.length + 8 <= 512) return { line: `AUTH ${name} ${encoded}`, redacted: `AUTH ${name} <credentials>` };
    this.pendingInitial = initial; // sent after an empty 334
    return { line: `AUTH ${name}`, redacted: `AUTH ${name}` };
  }

  reply(reply: Reply): SaslStep {
    if (reply.code >= 200 && reply.code <= 299) {
      const problem = this.mechanism.finish?.();
      return problem ? { kind: 'local', detail: `SASL authentication failed: ${problem.message}` } : { kind: 'done' };
    }
    if (reply.code !== 334) return { kind: 'reply' };
    if (++this.steps > MAX_STEPS) return { kind: 'local', detail: `SASL authentication failed: more than ${MAX_STEPS} steps` };
    const text = (reply.lines[reply.lines.length - 1] ?? '').slice(4).trim();
    if (this.pendingInitial) {
      const initial = this.pendingInitial;
      this.pendingInitial = undefined;
      if (text !== '') return { kind: 'local', detail: 'SASL authentication failed: non-empty challenge before the initial response' };
      return { kind: 'send', line: toBase64(initial) };
    }
    const challenge = fromBase64(text);
    if (!challenge) return { kind: 'local', detail: 'SASL authentication failed: malformed challenge' };
    let response: Uint8Array | Error;
    try {
      response = this.mechanism.next(challenge);
    } catch (err) {
      response = err instanceof Error ? err : new Error(String(err));
    }
    // RFC 4954 §4: "*" cancels the exchange; Postfix reports a client-side error as 4.7.0.
    if (response instanceof Error) return { kind: 'local', detail: `SASL authentication failed: ${response.message}` };
    return { kind: 'send', line: toBase64(response) };
  }
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function toBase64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i]!;
    const b = bytes[i + 1];
    const c = bytes[i + 2];
    const n = (a << 16) | ((b ?? 0) << 8) | (c ?? 0);
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]!;
    out += b === undefined ? '=' : B64[(n >> 6) & 63]!;
    out += c === undefined ? '=' : B64[n & 63]!;
  }
  return out;
}

export function fromBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const n =
      (B64.indexOf(text[i]!) << 18) |
      (B64.indexOf(text[i + 1]!) << 12) |
      ((text[i + 2] === '=' ? 0 : B64.indexOf(text[i + 2]!)) << 6) |
      (text[i + 3] === '=' ? 0 : B64.indexOf(text[i + 3]!));
    if (o < out.length) out[o++] = (n >> 16) & 255;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}
