// A bare node:net client for driving the test server by hand: write raw bytes, read whole
// SMTP replies (RFC 5321 §4.2), see when the connection closes.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { TestServer } from '../../src/testing/index.js';

export class RawClient {
  socket: Socket;
  /** Every octet received, in order. */
  received = Buffer.alloc(0);
  /** How many 'data' events delivered replies (to see replies written in one write). */
  dataEvents = 0;
  private consumed = 0;
  closed = false;
  private waiters: Array<() => void> = [];
  readonly closedPromise: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    this.listen(socket);
  }

  static async connect(server: TestServer): Promise<RawClient> {
    const socket =
      server.path !== undefined ? connect({ path: server.path }) : connect({ host: server.host, port: server.port! });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  private listen(socket: Socket): void {
    socket.on('data', (d: Buffer) => {
      this.dataEvents++;
      this.received = Buffer.concat([this.received, d]);
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private changed(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  /** Text not yet returned by readReply/readLine. */
  get unread(): string {
    return this.received.subarray(this.consumed).toString('latin1');
  }

  /** Read one whole reply (lines joined with \n, no CRLF). Rejects on close or timeout. */
  async readReply(timeoutMs = 3000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.tryReply();
      if (r !== undefined) return r;
      if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.unread)}`);
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.changed(left))) {
        throw new Error(`no complete reply within ${timeoutMs} ms; unread: ${JSON.stringify(this.unread)}`);
      }
    }
  }

  /** Read n replies. */
  async readReplies(n: number, timeoutMs = 3000): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await this.readReply(timeoutMs));
    return out;
  }

  private tryReply(): string | undefined {
    const lines: string[] = [];
    let pos = this.consumed;
    for (;;) {
      const lf = this.received.indexOf('\r\n', pos);
      if (lf === -1) return undefined;
      const line = this.received.toString('utf8', pos, lf);
      lines.push(line);
      pos = lf + 2;
      if (!/^[0-9]{3}-/.test(line)) {
        this.consumed = pos;
        return lines.join('\n');
      }
    }
  }

  /** Send a command and read its reply. */
  async command(line: string, timeoutMs = 3000): Promise<string> {
    this.write(`${line}\r\n`);
    return this.readReply(timeoutMs);
  }

  /** Resolve when the server has closed the connection; reject after the timeout. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.changed(left))) throw new Error('connection still open');
    }
  }

  /** Wait `ms` and return whatever arrived meanwhile (unread). */
  async quiet(ms: number): Promise<string> {
    await new Promise((r) => setTimeout(r, ms));
    return this.unread;
  }

  /** Upgrade to TLS after a 220 to STARTTLS (client side), trusting `ca`. */
  async startTls(ca: string, servername?: string): Promise<TLSSocket> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    const opts: ConnectionOptions = { socket: plain, ca, checkServerIdentity: () => undefined };
    if (servername !== undefined) opts.servername = servername;
    const secure = tlsConnect(opts);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.received = Buffer.alloc(0);
    this.consumed = 0;
    this.listen(secure);
    return secure;
  }

  close(): void {
    this.socket.destroy();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** RFC 5321 §4.5.2 dot-stuffing plus the end-of-data line, for building DATA bodies. */
export function dotStuff(message: string | Buffer): Buffer {
  const s = Buffer.isBuffer(message) ? message.toString('latin1') : message;
  const stuffed = s.replace(/(^|\r\n)\./g, '$1..');
  const ending = stuffed.endsWith('\r\n') || stuffed === '' ? '' : '\r\n';
  return Buffer.from(`${stuffed}${ending}.\r\n`, 'latin1');
}
