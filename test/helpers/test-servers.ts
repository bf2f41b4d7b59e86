/**
 * Test servers for one test file: `start()` opens one on loopback; every server started is
 * closed after each test (importing this module registers the afterEach hook in that file).
 */
import { afterEach } from 'vitest';
import { TestServer, type TestServerOptions } from '../../src/testing/index.js';

const servers: TestServer[] = [];

export async function start(o: TestServerOptions = {}): Promise<TestServer> {
  const s = await TestServer.start(o);
  servers.push(s);
  return s;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
