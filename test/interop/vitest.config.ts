import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Interop tests against real Postfix, Dovecot LMTP and unbound (DNS) on loopback (see test/interop/README.md).
// `npm run test:interop` starts the peers itself (test/interop/global-setup.ts) unless they run.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/interop/**/*.test.ts'],
    globalSetup: ['test/interop/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
