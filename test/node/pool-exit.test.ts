/** POOL-15: a process that used a Pool exits by itself, with or without pool.close(). */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TestServer } from '../../src/testing/index.js';
import { runNode } from '../helpers/process.js';

const child = fileURLToPath(new URL('./fixtures/pool-exit.ts', import.meta.url));
const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

// A process kept alive by the pool would outlive the test: killed after 15 s, and it fails.
const run = (args: string[]) => runNode(['--import', 'tsx', child, ...args], { timeoutMs: 15_000, until: 'exit' });

describe('the process exits by itself', () => {
  it('after pool.close(): QUIT sent, connection closed, exit code 0', async () => {
    const s = await TestServer.start();
    servers.push(s);
    const r = await run([s.destination, 'close']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.stdout) as { results: string[]; before: { open: number; idle: number }; after: { open: number } };
    expect(o.results).toEqual(['relayed', 'relayed', 'relayed']);
    expect(o.before).toMatchObject({ open: 1, idle: 1 });
    expect(o.after.open).toBe(0);
    await s.waitForSessions(1);
    expect(s.sessions).toHaveLength(1);
    expect(s.sessions[0]!.transcript).toContain('C: QUIT');
  }, 20_000);

  it('without pool.close(), an idle pooled connection (idleTimeout 60 s) does not hold the process', async () => {
    const s = await TestServer.start();
    servers.push(s);
    const r = await run([s.destination]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ results: ['relayed', 'relayed', 'relayed'], before: { open: 1, idle: 1 } });
    expect(r.ms).toBeLessThan(14_000);
  }, 20_000);
});
