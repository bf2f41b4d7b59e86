/**
 * One AUTH exchange (RFC 4954 §4) on the server side: the initial response, 334 challenges,
 * base64 responses, `*` to cancel, and the extra 334 some mechanisms send with their outcome.
 * The mechanisms themselves live in sasl-server.ts; the session writes what this returns.
 */
import type { AuthAttempt } from './options.js';
import { replyCode } from './reply.js';
import { decodeSaslBase64, type SaslMechanism, type SaslStep } from './sasl-server.js';

/** What the session does next. */
export type ExchangeOutcome =
  /** Send this `334 ...` line and read the next response line. */
  | { kind: 'challenge'; line: string }
  /** The exchange is over: send `reply` (through the `auth` fault step). */
  | { kind: 'done'; reply: string; success: boolean };

export interface ExchangeContext {
  /** Decide an identified client: the final reply (235 on success). */
  decide(attempt: AuthAttempt): string;
  /** A reply the server makes up itself (enhanced codes stripped when not announced). */
  own(text: string): string;
}

export class SaslExchange {
  /** The authentication identity, once the client has given one. */
  username: string | undefined;
  /** After the outcome: the reply to send once the extra 334 has been answered. */
  private finalReply: string | undefined;

  constructor(
    readonly mechanism: string,
    private readonly mech: SaslMechanism,
    private readonly ctx: ExchangeContext,
  ) {}

  /** Start with the initial response of the AUTH command, if any (`=` is an empty one). */
  start(initial: string | undefined): ExchangeOutcome {
    let decoded: Buffer | undefined;
    if (initial !== undefined) {
      decoded = decodeSaslBase64(initial);
      if (decoded === undefined) return this.fail('501 5.5.2 Cannot decode response');
    }
    return this.step(this.mech.start(decoded));
  }

  /** A response line from the client. */
  response(line: string): ExchangeOutcome {
    // RFC 4954 §4: "*" cancels the exchange.
    if (line === '*') return this.fail('501 5.7.0 Authentication aborted');
    if (this.finalReply !== undefined) {
      // The client answered the extra 334 (SCRAM server-final, or the OAuth error JSON).
      const reply = this.finalReply;
      return { kind: 'done', reply, success: replyCode(reply) === 235 };
    }
    const decoded = decodeSaslBase64(line);
    if (decoded === undefined) return this.fail('501 5.5.2 Cannot decode response');
    return this.step(this.mech.next(decoded));
  }

  private fail(text: string): ExchangeOutcome {
    return { kind: 'done', reply: this.ctx.own(text), success: false };
  }

  private step(step: SaslStep): ExchangeOutcome {
    switch (step.kind) {
      case 'challenge':
        return { kind: 'challenge', line: `334 ${step.data}` };
      case 'fail':
        return this.fail(step.reply);
      case 'verify': {
        this.username = step.attempt.username;
        const reply = this.ctx.decide(step.attempt);
        const success = replyCode(reply) === 235;
        const extra = success ? step.successData : step.failureData;
        if (extra !== undefined) {
          this.finalReply = reply;
          return { kind: 'challenge', line: `334 ${extra}` };
        }
        return { kind: 'done', reply, success };
      }
    }
  }
}
