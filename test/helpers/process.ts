/** Child processes and file times for tests and benchmarks (no test framework imported). */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface ProcessRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Run `node ...args` and collect its output. `input` goes to stdin, which is then closed (and
 * ignored when not given); killed after `timeoutMs`. `until: 'exit'` resolves when the process
 * exits even if something still holds its output open.
 */
export function runNode(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; input?: string | Buffer; timeoutMs: number; until?: 'close' | 'exit' },
): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, args, {
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      env: { ...process.env, ...opts.env },
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs);
    p.on('error', reject);
    p.on(opts.until ?? 'close', (code: number | null) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
    if (p.stdin) {
      p.stdin.on('error', () => {}); // the child may exit without reading stdin
      p.stdin.end(opts.input);
    }
  });
}

/** The newest modification time of any file under `dir` (is a build older than its sources?). */
export function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}
