/**
 * Growable output buffer for the content converters: bytes are appended, and `take()` hands
 * out what was written since the last call.
 */
export class ByteSink {
  private buf: Uint8Array;
  private len = 0;

  constructor(capacity = 4096) {
    this.buf = new Uint8Array(capacity);
  }

  get length(): number {
    return this.len;
  }

  /** Make room for `n` more bytes. */
  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  write(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }

  /** A latin1 string, one octet per character. */
  latin1(s: string): void {
    this.reserve(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.len++] = s.charCodeAt(i) & 0xff;
  }

  /** Everything written since the last take(), as a new array. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.len);
    this.len = 0;
    return out;
  }
}
