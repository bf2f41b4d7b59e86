import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { optionsTable } from '../scripts/options-table.js';

describe('README', () => {
  it('holds the options table generated from src/options.ts (npm run docs:options)', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const m = /<!-- options-table:start -->\n([\s\S]*?)\n<!-- options-table:end -->/.exec(readme);
    expect(m, 'options-table markers').not.toBeNull();
    expect(m![1]).toBe(optionsTable());
  });
});
