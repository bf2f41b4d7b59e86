import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

describe('close()', () => {
  it('lets a process exit by itself once the servers are closed', () => {
    const script = fileURLToPath(new URL('./fixtures/exit-after-close.mts', import.meta.url));
    const started = Date.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 15_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('closed');
    expect(r.status).toBe(0);
    // well before the 2 s linger or any server timer would have ended it
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
