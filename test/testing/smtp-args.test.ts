import { describe, expect, it } from 'vitest';
import { checkMailParams, checkRcptParams, isXtext, parsePathArgument } from '../../src/testing/smtp-args.js';

const all = new Map([['SIZE', ''], ['8BITMIME', ''], ['DSN', ''], ['SMTPUTF8', ''], ['AUTH', 'PLAIN']]);

describe('parsePathArgument', () => {
  it('parses brackets, params, case and a space after the colon', () => {
    expect(parsePathArgument('FROM:<a@b> SIZE=10 BODY=8BITMIME', 'FROM')).toEqual({ address: 'a@b', params: ['SIZE=10', 'BODY=8BITMIME'] });
    expect(parsePathArgument('from: <a@b>', 'FROM')).toEqual({ address: 'a@b', params: [] });
    expect(parsePathArgument('FROM:<>', 'FROM')).toEqual({ address: '', params: [] });
    expect(parsePathArgument('To:<x@y>  NOTIFY=NEVER ', 'TO')).toEqual({ address: 'x@y', params: ['NOTIFY=NEVER'] });
  });

  it('keeps quoted local parts with spaces and ">"', () => {
    expect(parsePathArgument('TO:<"a b>c"@x> ORCPT=rfc822;a@x', 'TO')).toEqual({ address: '"a b>c"@x', params: ['ORCPT=rfc822;a@x'] });
    expect(parsePathArgument('TO:<"a\\"b"@x>', 'TO')?.address).toBe('"a\\"b"@x');
  });

  it('drops a source route and accepts a bare address', () => {
    expect(parsePathArgument('TO:<@a,@b:u@x>', 'TO')?.address).toBe('u@x');
    expect(parsePathArgument('TO:u@x NOTIFY=NEVER', 'TO')).toEqual({ address: 'u@x', params: ['NOTIFY=NEVER'] });
  });

  it('refuses bad syntax', () => {
    expect(parsePathArgument('TO <a@b>', 'TO')).toBeUndefined();
    expect(parsePathArgument('FROM:<a@b', 'FROM')).toBeUndefined();
    expect(parsePathArgument('FROM:<a@b>X', 'FROM')).toBeUndefined();
    expect(parsePathArgument('TO:<a@b>', 'FROM')).toBeUndefined();
    expect(parsePathArgument('TO:', 'TO')).toBeUndefined();
  });
});

describe('parameter checks', () => {
  it('refuses parameters of extensions that were not announced', () => {
    expect(checkMailParams(['SIZE=1'], new Map())).toBe('555 5.5.4 Unsupported option: SIZE=1');
    expect(checkMailParams(['RET=FULL'], new Map([['SIZE', '']]))).toMatch(/^555 /);
    expect(checkRcptParams(['NOTIFY=NEVER'], new Map())).toMatch(/^555 /);
    expect(checkMailParams(['FOO=1'], all)).toBe('555 5.5.4 Unsupported option: FOO=1');
  });

  it('checks DSN syntax (RFC 3461)', () => {
    expect(checkMailParams(['RET=HDRS', 'ENVID=abc+2B'], all)).toBeUndefined();
    expect(checkMailParams(['RET=ALL'], all)).toMatch(/^501 .*RET/);
    expect(checkMailParams(['ENVID=a=b'], all)).toMatch(/^501 .*ENVID/);
    expect(checkRcptParams(['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;a+40b@x'], all)).toBeUndefined();
    expect(checkRcptParams(['NOTIFY=NEVER,SUCCESS'], all)).toMatch(/^501 .*NOTIFY/);
    expect(checkRcptParams(['ORCPT=rfc822;a=b@x'], all)).toMatch(/^501 .*ORCPT/);
    expect(checkRcptParams(['ORCPT=utf-8;j\u00f6rg@x'], all)).toBeUndefined();
    expect(checkRcptParams(['ORCPT=rfc822;a@x', 'ORCPT=rfc822;a@x'], all)).toMatch(/^501 .*Duplicate/);
  });

  it('checks SIZE, BODY, SMTPUTF8 and AUTH', () => {
    expect(checkMailParams(['SIZE=12', 'BODY=7BIT', 'SMTPUTF8', 'AUTH=<>'], all)).toBeUndefined();
    expect(checkMailParams(['SIZE=x'], all)).toMatch(/^501 /);
    expect(checkMailParams(['BODY=9BIT'], all)).toMatch(/^501 /);
    expect(checkMailParams(['SMTPUTF8=yes'], all)).toMatch(/^501 /);
  });

  it('knows xtext', () => {
    expect(isXtext('abc+2B+3D')).toBe(true);
    expect(isXtext('a+2b')).toBe(false);
    expect(isXtext('a b')).toBe(false);
  });
});
