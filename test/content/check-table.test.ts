import { describe, expect, it } from 'vitest';
import { bodyCheckTable, headerCheckTable } from '../../src/content/check-table.js';

const h = (name: string, value: string) => ({ name, value, raw: new TextEncoder().encode(`${name}:${value}`) });

describe('headerCheckTable / bodyCheckTable (regexp_table(5), header_checks(5))', () => {
  const table = headerCheckTable(`
# comments and empty lines are skipped

/^Subject: *(.*)$/   REPLACE Subject: [ext] $1
/^X-Secret:/         IGNORE
/^Received:.*internal/
    STRIP internal hop
!/^(From|To|Subject|Received|X-Secret|Date):/  WARN unexpected header
`);

  it('first match decides; $1 substitution; case-insensitive by default; continuation lines; !negation', () => {
    expect(table(h('Subject', ' Hello'), { part: 'primary' })).toEqual({ action: 'replace', text: 'Subject: [ext] Hello' });
    expect(table(h('x-secret', ' 42'), { part: 'primary' })).toEqual({ action: 'ignore' });
    expect(table(h('Received', ' from internal.host'), { part: 'primary' })).toEqual({ action: 'strip', text: 'internal hop' });
    expect(table(h('Received', ' from outside'), { part: 'primary' })).toBeUndefined();
    expect(table(h('X-Other', ' 1'), { part: 'mime' })).toEqual({ action: 'warn', text: 'unexpected header' });
    expect(table(h('Date', ' today'), { part: 'primary' })).toBeUndefined();
  });

  it('the i flag makes a pattern case-sensitive', () => {
    const t = headerCheckTable('/^subject:/i IGNORE');
    expect(t(h('Subject', ' x'), { part: 'primary' })).toBeUndefined();
    expect(t(h('subject', ' x'), { part: 'primary' })).toEqual({ action: 'ignore' });
  });

  it('actions the SMTP client does not allow, unknown actions, if/endif and bad patterns are EOPTION', () => {
    for (const bad of ['/x/ REJECT no', '/x/ DISCARD', '/x/ REDIRECT a@b', '/x/ FROBNICATE', 'if /x/\n/y/ IGNORE\nendif', '/(/ IGNORE', 'x IGNORE', '/x/ PREPEND', '/x/q IGNORE']) {
      expect(() => headerCheckTable(bad), bad).toThrow(expect.objectContaining({ code: 'EOPTION' }));
    }
  });

  it('body checks match each line', () => {
    const b = bodyCheckTable('/^password: .*/ REPLACE password: [redacted]\n/^-- $/ DUNNO');
    expect(b({ text: 'password: hunter2', raw: new Uint8Array() }, { part: 'primary' })).toEqual({ action: 'replace', text: 'password: [redacted]' });
    expect(b({ text: 'hello', raw: new Uint8Array() }, { part: 'primary' })).toBeUndefined();
  });
});
