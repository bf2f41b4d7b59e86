/**
 * Open a TCP or unix-domain connection with Postfix's connect limit (`smtp_connect_timeout`,
 * 0 = the OS limit), Nagle off, and the caller's AbortSignal. Errors come back as Postfix's
 * errno text ("Connection refused"), never as exceptions.
 */
import { connect as netConnect, type Socket } from 'node:net';

export type ConnectTarget = { host: string; port: number; family?: 4 | 6; localAddress?: string } | { path: string };

export type ConnectResult = { ok: true; socket: Socket } | { ok: false; detail: string; aborted?: boolean; bindFailed?: boolean };

const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: 'Connection refused',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  ECONNRESET: 'Connection reset by peer',
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EADDRINUSE: 'Address already in use',
  ENOTSOCK: 'Socket operation on non-socket',
  EINVAL: 'Invalid argument',
};

export function errnoText(err: unknown): string {
  const e = err as { code?: string; message?: string } | undefined;
  return (e?.code && ERRNO_TEXT[e.code]) ?? e?.message ?? String(err);
}

export function connectSocket(target: ConnectTarget, timeoutMs: number, signal?: AbortSignal): Promise<ConnectResult> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve({ ok: false, detail: 'aborted', aborted: true });
    const socket =
      'path' in target
        ? netConnect({ path: target.path })
        : netConnect({
            host: target.host,
            port: target.port,
            ...(target.family ? { family: target.family } : {}),
            ...(target.localAddress ? { localAddress: target.localAddress } : {}),
          });
    let timer: NodeJS.Timeout | undefined;
    const done = (r: ConnectResult) => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.removeListener('error', onError);
      socket.removeListener('connect', onConnect);
      if (!r.ok) socket.destroy();
      resolve(r);
    };
    const onError = (err: Error) => {
      const code = (err as { code?: string; syscall?: string }).code;
      const syscall = (err as { syscall?: string }).syscall;
      done({ ok: false, detail: errnoText(err), ...(syscall === 'bind' || code === 'EADDRNOTAVAIL' ? { bindFailed: true } : {}) });
    };
    const onConnect = () => {
      socket.setNoDelay(true);
      done({ ok: true, socket });
    };
    const onAbort = () => done({ ok: false, detail: 'aborted', aborted: true });
    socket.once('error', onError);
    socket.once('connect', onConnect);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs > 0) timer = setTimeout(() => done({ ok: false, detail: 'Connection timed out' }), timeoutMs);
  });
}
