import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { addressSpans, rewriteAddressList } from '../../src/content/address-header.js';

const found = (v: string) => addressSpans(v).map((s) => v.slice(s.start, s.end));

describe('addressSpans / rewriteAddressList (REW-1 header addresses)', () => {
  it('finds name-addr and bare addr-spec forms, groups, and skips quoted strings and comments', () => {
    expect(found(' a@x.test')).toEqual(['a@x.test']);
    expect(found(' Alice <a@x.test>, b@y.test')).toEqual(['a@x.test', 'b@y.test']);
    expect(found(' "Smith, John" <j@x.test>')).toEqual(['j@x.test']);
    expect(found(' "a@fake.test" <real@x.test> (c@comment.test)')).toEqual(['real@x.test']);
    expect(found(' team: a@x.test, B <b@x.test>;, c@x.test')).toEqual(['a@x.test', 'b@x.test', 'c@x.test']);
    expect(found(' <@route.test,@r2.test:a@x.test>')).toEqual(['a@x.test']);
    expect(found(' undisclosed-recipients:;')).toEqual([]);
    expect(found(' Display Name Only')).toEqual([]);
    expect(found(' "quoted local"@x.test')).toEqual(['"quoted local"@x.test']);
  });

  it('rewrites in place and keeps everything else byte for byte', () => {
    const map = (a: string) => (a.endsWith('@host.local') ? a.replace('@host.local', '@example.com') : undefined);
    expect(rewriteAddressList(' Bob <bob@host.local>, "x@host.local" <y@other.test>', map)).toBe(' Bob <bob@example.com>, "x@host.local" <y@other.test>');
    expect(rewriteAddressList(' a@host.local,\n\tb@host.local', map)).toBe(' a@example.com,\n\tb@example.com');
    expect(rewriteAddressList(' y@other.test', map)).toBeUndefined();
  });

  it('never throws and identity rewriting changes nothing (property)', () => {
    fc.assert(
      fc.property(fc.string(), (v) => {
        expect(rewriteAddressList(v, (a) => a)).toBeUndefined();
        for (const s of addressSpans(v)) expect(s.end).toBeGreaterThan(s.start);
      }),
    );
  });
});
