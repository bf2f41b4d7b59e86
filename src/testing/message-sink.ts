/**
 * Collects one received message: its size, a SHA-256 of it, and (unless discarded) its octets.
 * The octets are kept as the slices they arrived in and joined once at the end.
 */
import { createHash, type Hash } from 'node:crypto';

export interface SunkMessage {
  size: number;
  sha256: string;
  /** Absent when discarding, or when the message went over the keep limit. */
  data?: Buffer;
}

export class MessageSink {
  size = 0;
  private readonly hash: Hash = createHash('sha256');
  private parts: Buffer[] | undefined;

  /**
   * @param keep keep the octets (false with `discardData`).
   * @param keepLimit stop keeping octets beyond this size (a message over the SIZE limit is
   *   rejected anyway; this bounds memory). Size and hash are still computed.
   */
  constructor(keep: boolean, private readonly keepLimit = Infinity) {
    if (keep) this.parts = [];
  }

  /** Whether the message went over the keep limit. */
  get overLimit(): boolean {
    return this.size > this.keepLimit;
  }

  write(b: Buffer): void {
    if (b.length === 0) return;
    this.size += b.length;
    this.hash.update(b);
    if (this.parts !== undefined) {
      if (this.size > this.keepLimit) this.parts = undefined;
      else this.parts.push(b);
    }
  }

  finish(): SunkMessage {
    const m: SunkMessage = { size: this.size, sha256: this.hash.digest('hex') };
    if (this.parts !== undefined) m.data = this.parts.length === 1 ? Buffer.from(this.parts[0]!) : Buffer.concat(this.parts, this.size);
    this.parts = undefined;
    return m;
  }
}
