/** One helper for every await that an AbortSignal may cut short. */

/**
 * `p`, or a rejection with the signal's reason as soon as the signal aborts (`onLeave` runs
 * then). The work behind `p` is not cancelled by this; callers pass the signal down too.
 */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined, onLeave?: () => void): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    onLeave?.();
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      onLeave?.();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
