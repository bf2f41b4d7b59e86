/**
 * The README's options table, generated from OPTION_TABLE (src/options.ts), so that the
 * documentation and the code have one source. `npm run docs:options` prints it;
 * test/readme.test.ts checks that the README holds exactly this table.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { OPTION_TABLE } from '../src/options.js';

export function optionsTable(): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const rows = OPTION_TABLE.map((r) => `| \`${r.name}\` | ${esc(r.postfix)} | ${esc(r.default)} | ${esc(r.meaning)} |`);
  return ['| option | Postfix parameter | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** Replace the table between the README's options-table markers. */
export function writeReadme(path: string): void {
  const readme = readFileSync(path, 'utf8');
  const next = readme.replace(/(<!-- options-table:start -->\n)[\s\S]*?(\n<!-- options-table:end -->)/, `$1${optionsTable()}$2`);
  writeFileSync(path, next);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes('--write')) writeReadme(new URL('../README.md', import.meta.url).pathname);
  else console.log(optionsTable());
}
