import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseEhlo } from '../../src/protocol/ehlo-parser.js';

describe('parseEhlo', () => {
  it('reads Postfix smtpd\'s reply', () => {
    const c = parseEhlo(['250-mx1.example.test', '250-PIPELINING', '250-SIZE 52428800', '250-VRFY', '250-ETRN', '250-STARTTLS', '250-AUTH PLAIN LOGIN', '250-ENHANCEDSTATUSCODES', '250-8BITMIME', '250-DSN', '250-SMTPUTF8', '250 CHUNKING']);
    expect(c).toMatchObject({ serverName: 'mx1.example.test', pipelining: true, size: 52428800, sizeAnnounced: true, startTls: true, enhancedStatusCodes: true, eightBitMime: true, dsn: true, smtputf8: true, chunking: true });
    expect(c.auth).toEqual(['PLAIN', 'LOGIN']);
  });

  it('keywords are case-insensitive; the old AUTH= form and several AUTH lines are joined', () => {
    const c = parseEhlo(['250-mx', '250-auth=login PLAIN', '250-AUTH CRAM-MD5 plain', '250 pipelining']);
    expect(c.auth).toEqual(['LOGIN', 'PLAIN', 'CRAM-MD5']);
    expect(c.pipelining).toBe(true);
  });

  it('SIZE without a number is 0 (unknown) with a warning; SIZE alone is 0 without one', () => {
    expect(parseEhlo(['250-mx', '250 SIZE abc']).size).toBe(0);
    expect(parseEhlo(['250-mx', '250 SIZE abc']).warnings).toHaveLength(1);
    expect(parseEhlo(['250-mx', '250 SIZE']).warnings).toHaveLength(0);
  });

  it('smtp-sink\'s bare "250 " last line is no keyword', () => {
    const c = parseEhlo(['250-sink.example.test', '250-PIPELINING', '250 ']);
    expect([...c.keywords.keys()]).toEqual(['PIPELINING']);
  });

  it('SMTPUTF8 without 8BITMIME counts as 8BITMIME (Postfix)', () => {
    expect(parseEhlo(['250-mx', '250 SMTPUTF8']).eightBitMime).toBe(true);
  });

  it('discardEhloKeywords hides keywords case-insensitively, silent-discard mutes the warning', () => {
    const lines = ['250-mx', '250-PIPELINING', '250 CHUNKING'];
    const c = parseEhlo(lines, { discardEhloKeywords: ['chunking'] });
    expect(c.chunking).toBe(false);
    expect(c.pipelining).toBe(true);
    expect(c.warnings).toHaveLength(1);
    expect(parseEhlo(lines, { discardEhloKeywords: ['chunking', 'silent-discard'] }).warnings).toHaveLength(0);
  });

  it('a single-line reply has no extensions', () => {
    const c = parseEhlo(['250 mx.example Hello']);
    expect(c.serverName).toBe('mx.example');
    expect(c.keywords.size).toBe(0);
  });

  it('property: every announced keyword is found whatever its case, and nothing else', () => {
    const known = ['PIPELINING', 'CHUNKING', '8BITMIME', 'SMTPUTF8', 'DSN', 'ENHANCEDSTATUSCODES', 'STARTTLS', 'REQUIRETLS', 'BINARYMIME'];
    fc.assert(
      fc.property(fc.subarray(known), fc.array(fc.boolean(), { minLength: known.length, maxLength: known.length }), (kw, cases) => {
        const lines = ['250-mx.test', ...kw.map((k, i) => `250-${cases[i] ? k.toLowerCase() : k}`), '250 X-END'];
        const c = parseEhlo(lines);
        expect(c.pipelining).toBe(kw.includes('PIPELINING'));
        expect(c.chunking).toBe(kw.includes('CHUNKING'));
        expect(c.dsn).toBe(kw.includes('DSN'));
        expect(c.startTls).toBe(kw.includes('STARTTLS'));
        expect(c.smtputf8).toBe(kw.includes('SMTPUTF8'));
        expect(c.eightBitMime).toBe(kw.includes('8BITMIME') || kw.includes('SMTPUTF8'));
        expect(new Set(c.keywords.keys())).toEqual(new Set([...kw, 'X-END']));
      }),
    );
  });

  it('property: arbitrary lines never throw', () => {
    fc.assert(fc.property(fc.array(fc.string(), { maxLength: 20 }), (lines) => void parseEhlo(lines)));
  });
});
