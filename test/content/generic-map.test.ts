import { describe, expect, it } from 'vitest';
import { genericMap } from '../../src/content/generic-map.js';
import { MailwireError } from '../../src/errors.js';

describe('genericMap (smtp_generic_maps, generic(5))', () => {
  const map = genericMap(
    {
      'his@localdomain.local': 'hisaccount@hisisp.example',
      'Her+List@localdomain.local': 'list-owner@herisp.example',
      'her@localdomain.local': 'heraccount@herisp.example',
      root: 'postmaster@example.com',
      '@localdomain.local': 'hisaccount+local@hisisp.example',
      '@old.example': '@new.example',
    },
    { myOrigin: 'localdomain.local', recipientDelimiter: '+' },
  );
  const where = { where: 'mail' as const };

  it('looks up user@domain, user@domain without extension, user (our domains), @domain, in that order', () => {
    expect(map('his@localdomain.local', where)).toBe('hisaccount@hisisp.example');
    expect(map('her+list@localdomain.local', where)).toBe('list-owner@herisp.example'); // case folded
    expect(map('her+other@localdomain.local', where)).toBe('heraccount@herisp.example');
    expect(map('root@localdomain.local', where)).toBe('postmaster@example.com');
    expect(map('root', where)).toBe('postmaster@example.com');
    expect(map('root@elsewhere.example', where)).toBeUndefined(); // "user" only for our domains
    expect(map('nobody@localdomain.local', where)).toBe('hisaccount+local@hisisp.example');
  });

  it('"@other" keeps the user part, without the extension', () => {
    expect(map('ann@old.example', where)).toBe('ann@new.example');
    expect(map('ann+x@old.example', where)).toBe('ann@new.example');
  });

  it('rejects bad entries with EOPTION', () => {
    expect(() => genericMap({ 'a b': 'x' })).toThrow(MailwireError);
    expect(() => genericMap({ a: 'x\r\ny' })).toThrow(/bad entry/);
  });
});
