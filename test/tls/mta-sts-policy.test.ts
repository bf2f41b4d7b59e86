import { describe, expect, it } from 'vitest';
import { mxMatchesPolicy, parseStsPolicy, parseStsTxt, readStsTxt } from '../../src/tls/mta-sts.js';
import { MemoryMtaStsStore, type MtaStsCached } from '../../src/tls/policy-store.js';

describe('parseStsTxt (RFC 8461 §3.1)', () => {
  it.each([
    ['the RFC example', [['v=STSv1; id=20160831085700Z;']], '20160831085700Z'],
    ['no trailing semicolon', [['v=STSv1; id=abc']], 'abc'],
    ['no white space', [['v=STSv1;id=abc;']], 'abc'],
    ['tabs and spaces around ;', [['v=STSv1 \t;\t id=abc \t; ']], 'abc'],
    ['32 characters of id', [[`v=STSv1; id=${'a1'.repeat(16)}`]], 'a1'.repeat(16)],
    ['an extension field before id', [['v=STSv1; ext.x_y-z=v4lue!; id=abc']], 'abc'],
    ['chunks of one record concatenated without spaces', [['v=STSv1; i', 'd=ab', 'c;']], 'abc'],
    ['other TXT records discarded', [['v=spf1 -all'], ['v=STSv1; id=abc'], ['some text']], 'abc'],
    ['a repeated id: the first counts', [['v=STSv1; id=first; id=second']], 'first'],
  ])('accepts %s', (_name, records, id) => {
    expect(parseStsTxt(records)).toEqual({ ok: true, id });
  });

  it.each([
    ['no records', []],
    ['only other records', [['v=spf1 -all'], ['google-site-verification=x']]],
    ['v=STSv10 (not the token v=STSv1)', [['v=STSv10; id=abc']]],
    ['lower-case version (case-sensitive %s)', [['v=stsv1; id=abc']]],
    ['a record not at its start', [[' v=STSv1; id=abc']]],
  ])('finds no record in %s', (_name, records) => {
    expect(readStsTxt(records)).toEqual({ kind: 'absent' });
    expect(parseStsTxt(records).ok).toBe(false);
  });

  it.each([
    ['two STSv1 records', [['v=STSv1; id=abc'], ['v=STSv1; id=def']], /2 TXT records/],
    ['no id', [['v=STSv1;']], /no id/],
    ['only v=STSv1', [['v=STSv1']], /no id/],
    ['an id of 33 characters', [[`v=STSv1; id=${'a'.repeat(33)}`]], /1 to 32/],
    ['an empty id', [['v=STSv1; id=']], /1 to 32/],
    ['an id with a dash', [['v=STSv1; id=2024-01-01']], /1 to 32/],
    ['ID= in upper case (an extension, so no id)', [['v=STSv1; ID=abc']], /no id/],
    ['an empty field between semicolons', [['v=STSv1; ; id=abc']], /empty field/],
    ['white space inside a field', [['v=STSv1; id = abc']], /malformed field/],
    ['a field without =', [['v=STSv1; id=abc; junk']], /malformed field/],
    ['an extension value with a space', [['v=STSv1; id=abc; x=a b']], /malformed field/],
  ])('rejects %s', (_name, records, detail) => {
    const r = readStsTxt(records);
    expect(r.kind).toBe('invalid');
    const p = parseStsTxt(records);
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.detail).toMatch(detail);
  });
});

const enforce = 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n';

describe('parseStsPolicy (RFC 8461 §3.2)', () => {
  it('parses the RFC example', () => {
    expect(parseStsPolicy(enforce, 'id1')).toEqual({
      ok: true,
      policy: { version: 'STSv1', mode: 'enforce', mx: ['mail.example.com', '*.example.net', 'backupmx.example.com'], maxAge: 604800, id: 'id1' },
    });
  });

  it('takes CRLF, LF, mixed line ends, no final line end, and blank lines', () => {
    const want = parseStsPolicy(enforce, 'x');
    expect(parseStsPolicy(enforce.replaceAll('\n', '\r\n'), 'x')).toEqual(want);
    expect(parseStsPolicy(enforce.replace('\n', '\r\n').trimEnd(), 'x')).toEqual(want);
    expect(parseStsPolicy(`\n${enforce.replaceAll('\n', '\n\n')}\r\n\r\n`, 'x')).toEqual(want);
  });

  it('accepts any field order, white space after the colon and at the end of a line', () => {
    const r = parseStsPolicy('max_age:86400  \r\nmx:\t mx1.example.org\t\nmode:   testing \nversion: STSv1', 'x');
    expect(r).toEqual({ ok: true, policy: { version: 'STSv1', mode: 'testing', mx: ['mx1.example.org'], maxAge: 86400, id: 'x' } });
  });

  it('ignores unknown keys, whatever their value', () => {
    const r = parseStsPolicy(`${enforce}x-future_key.v2: some value, with: colons ✓\nreport: yes\n`, 'x');
    expect(r.ok && r.policy.mx).toHaveLength(3);
  });

  it('mode none needs no mx', () => {
    expect(parseStsPolicy('version: STSv1\nmode: none\nmax_age: 86400\n', 'x')).toEqual({
      ok: true,
      policy: { version: 'STSv1', mode: 'none', mx: [], maxAge: 86400, id: 'x' },
    });
  });

  it('a repeated key other than mx: the first counts, later ones are ignored even when malformed', () => {
    const r = parseStsPolicy('version: STSv1\nmode: testing\nmode: enforce\nmode: bogus\nmx: a.example\nmax_age: 5\nmax_age: x\n', 'x');
    expect(r.ok && [r.policy.mode, r.policy.maxAge]).toEqual(['testing', 5]);
  });

  it('mx patterns are lower-cased, a trailing dot dropped, duplicates merged', () => {
    const r = parseStsPolicy('version: STSv1\nmode: enforce\nmx: MX.Example.COM.\nmx: mx.example.com\nmx: *.Example.NET\nmax_age: 0\n', 'x');
    expect(r.ok && r.policy.mx).toEqual(['mx.example.com', '*.example.net']);
    expect(r.ok && r.policy.maxAge).toBe(0);
  });

  it('max_age bounds: 0 and 31557600 are fine', () => {
    for (const age of ['0', '31557600', '0000000001']) {
      const r = parseStsPolicy(`version: STSv1\nmode: none\nmax_age: ${age}\n`, 'x');
      expect(r.ok && r.policy.maxAge).toBe(Number(age));
    }
  });

  it.each([
    ['no version', 'mode: enforce\nmx: a.example\nmax_age: 5\n', /no version/],
    ['no mode', 'version: STSv1\nmx: a.example\nmax_age: 5\n', /no mode/],
    ['no max_age', 'version: STSv1\nmode: enforce\nmx: a.example\n', /no max_age/],
    ['enforce without mx', 'version: STSv1\nmode: enforce\nmax_age: 5\n', /mode enforce has no mx/],
    ['testing without mx', 'version: STSv1\nmode: testing\nmax_age: 5\n', /mode testing has no mx/],
    ['an empty body', '', /no version/],
    ['version STSv2', 'version: STSv2\nmode: none\nmax_age: 5\n', /unsupported version/],
    ['mode in upper case', 'version: STSv1\nmode: ENFORCE\nmx: a.example\nmax_age: 5\n', /mode must be/],
    ['mode report (an old draft)', 'version: STSv1\nmode: report\nmx: a.example\nmax_age: 5\n', /mode must be/],
    ['max_age above 31557600', 'version: STSv1\nmode: none\nmax_age: 31557601\n', /above 31557600/],
    ['max_age of 11 digits', 'version: STSv1\nmode: none\nmax_age: 00000000001\n', /1 to 10 digits/],
    ['negative max_age', 'version: STSv1\nmode: none\nmax_age: -1\n', /1 to 10 digits/],
    ['max_age with a unit', 'version: STSv1\nmode: none\nmax_age: 86400s\n', /1 to 10 digits/],
    ['empty max_age', 'version: STSv1\nmode: none\nmax_age:\n', /1 to 10 digits/],
    ['a line without colon', `${enforce}garbage\n`, /not a "key: value" line/],
    ['white space before the colon', 'version : STSv1\nmode: none\nmax_age: 5\n', /malformed key/],
    ['a line starting with white space', ' version: STSv1\nmode: none\nmax_age: 5\n', /malformed key/],
    ['a bare CR inside a line', 'version: STSv1\rmode: none\nmax_age: 5\n', /control character/],
    ['an mx with a wildcard in the middle', 'version: STSv1\nmode: enforce\nmx: mx.*.example\nmax_age: 5\n', /mx must be/],
    ['an mx of *', 'version: STSv1\nmode: enforce\nmx: *\nmax_age: 5\n', /mx must be/],
    ['an mx with an underscore', 'version: STSv1\nmode: enforce\nmx: mx_1.example\nmax_age: 5\n', /mx must be/],
    ['an empty mx', 'version: STSv1\nmode: enforce\nmx:\nmax_age: 5\n', /mx must be/],
    ['an HTML page', '<html><body>Not found</body></html>\n', /not a "key: value" line/],
  ])('rejects %s', (_name, text, detail) => {
    const r = parseStsPolicy(text, 'x');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.detail).toMatch(detail);
  });
});

describe('mxMatchesPolicy (RFC 8461 §4.1)', () => {
  const patterns = ['mail.example.com', '*.example.net'];
  it.each([
    ['mail.example.com', true],
    ['MAIL.Example.COM', true],
    ['mail.example.com.', true],
    ['mx1.example.net', true],
    ['MX1.EXAMPLE.NET.', true],
    ['example.net', false], // the wildcard needs a label in front
    ['a.b.example.net', false], // ... exactly one
    ['.example.net', false], // ... and not an empty one
    ['mail.example.com.evil', false],
    ['evilmail.example.com', false],
    ['xexample.net', false],
    ['other.example.com', false],
    ['', false],
  ])('%s → %s', (host, want) => {
    expect(mxMatchesPolicy(host, patterns)).toBe(want);
  });

  it('patterns are compared case-insensitively and without a trailing dot too', () => {
    expect(mxMatchesPolicy('mx.example.org', ['MX.EXAMPLE.ORG.'])).toBe(true);
    expect(mxMatchesPolicy('a.example.org', ['*.Example.Org.'])).toBe(true);
  });

  it('no patterns, no match; a bare "*." matches nothing', () => {
    expect(mxMatchesPolicy('mx.example.org', [])).toBe(false);
    expect(mxMatchesPolicy('mx.', ['*.'])).toBe(false);
    expect(mxMatchesPolicy('mx', ['*.'])).toBe(false);
  });

  it('an IDN MX host is compared as its A-label', () => {
    expect(mxMatchesPolicy('mx.bücher.example', ['mx.xn--bcher-kva.example'])).toBe(true);
    expect(mxMatchesPolicy('mx.xn--bcher-kva.example', ['*.xn--bcher-kva.example'])).toBe(true);
  });
});

describe('MemoryMtaStsStore', () => {
  const value = (id: string): MtaStsCached => ({ policy: { version: 'STSv1', mode: 'none', mx: [], maxAge: 60, id }, fetchedAt: 0 });

  it('returns what was set until the ttl passes', () => {
    let t = 1000;
    const s = new MemoryMtaStsStore({ now: () => t });
    s.set('example.org', value('a'), 500);
    expect(s.get('example.org')?.policy.id).toBe('a');
    expect(s.get('EXAMPLE.org')?.policy.id).toBe('a');
    t = 1499;
    expect(s.get('example.org')).toBeDefined();
    t = 1500;
    expect(s.get('example.org')).toBeUndefined();
    expect(s.size).toBe(0);
  });

  it('a ttl of 0 stores nothing and removes the old entry; delete removes', () => {
    const s = new MemoryMtaStsStore();
    s.set('a.example', value('a'), 1000);
    s.set('a.example', value('b'), 0);
    expect(s.get('a.example')).toBeUndefined();
    s.set('b.example', value('b'), 1000);
    s.delete('b.example');
    expect(s.get('b.example')).toBeUndefined();
  });

  it('is bounded: the least recently used entry goes first', () => {
    const s = new MemoryMtaStsStore({ maxEntries: 2 });
    s.set('a.example', value('a'), 1000);
    s.set('b.example', value('b'), 1000);
    s.get('a.example'); // a is now more recent than b
    s.set('c.example', value('c'), 1000);
    expect(s.size).toBe(2);
    expect(s.get('b.example')).toBeUndefined();
    expect(s.get('a.example')?.policy.id).toBe('a');
    expect(s.get('c.example')?.policy.id).toBe('c');
  });

  it('rejects a bad maxEntries', () => {
    expect(() => new MemoryMtaStsStore({ maxEntries: 0 })).toThrow(/maxEntries/);
  });
});
