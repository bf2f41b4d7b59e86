/**
 * The README's options table, generated from OPTION_TABLE (src/options.ts), so that the
 * documentation and the code have one source. `npm run docs:options` prints it;
 * test/readme.test.ts checks that the README holds exactly this table.
 */
import { OPTION_TABLE } from '../src/options.js';

export function optionsTable(): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const rows = OPTION_TABLE.map((r) => `| \`${r.name}\` | ${esc(r.postfix)} | ${esc(r.default)} | ${esc(r.meaning)} |`);
  return ['| option | Postfix parameter | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(optionsTable());
