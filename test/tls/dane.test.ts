/**
 * DANE TLSA matching (src/tls/dane.ts). The certificates are made with `openssl` in a temp
 * dir at test time (skipped without openssl): a root CA, an intermediate, leaves for
 * mx.example.test (RSA and ECDSA), a wrong-name, an expired, wildcard and CN-only leaves, a
 * self-signed leaf, a non-CA "issuer", an expired intermediate and an unrelated CA. The
 * hostile-input and property tests use the built-in test certificate and always run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tlsaAssociation, usableTlsa, verifyDane, type DaneResult } from '../../src/tls/dane.js';
import type { TlsaRecord } from '../../src/routing/resolver.js';
import { testCertificate } from '../../src/testing/test-certificate.js';

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const MX = 'mx.example.test';

/** Builds every certificate the tests use; run with the temp dir as cwd. */
const SCRIPT = String.raw`
set -eu
exec 2>openssl.log
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }
rsa() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key"; }
CAEXT='basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid'
LEAF='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid'
# root NAME CN
root() {
  openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 3650 -subj "/O=mailwire test/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash"
}
# sign NAME ISSUER CN EXTENSIONS [STARTDATE ENDDATE]
sign() {
  openssl req -new -key "$1.key" -subj "/O=mailwire test/CN=$3" -out "$1.csr"
  printf '%s\n' "$4" > "$1.ext"
  if [ $# -ge 5 ]; then
    # openssl x509 -req in OpenSSL 3.0 cannot back-date; openssl ca can.
    mkdir -p "db-$2"; : > "db-$2/index.txt"; [ -s "db-$2/serial" ] || openssl rand -hex 8 > "db-$2/serial"
    printf '%s\n' '[ ca ]' 'default_ca = t' '[ t ]' "dir = db-$2" 'database = $dir/index.txt' \
      'serial = $dir/serial' 'new_certs_dir = $dir' "certificate = $2.crt" "private_key = $2.key" \
      'default_md = sha256' 'policy = p' 'unique_subject = no' 'copy_extensions = none' \
      '[ p ]' 'O = optional' 'CN = supplied' > "db-$2/ca.cnf"
    openssl ca -batch -config "db-$2/ca.cnf" -in "$1.csr" -out "$1.crt" -startdate "$5" -enddate "$6" \
      -extfile "$1.ext" -notext
  else
    openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 3650 -sha256 \
      -extfile "$1.ext" -out "$1.crt"
  fi
}
rsa ca; root ca "mailwire test root"
ec other; root other "unrelated root"
ec int; sign int ca "mailwire test intermediate" "$CAEXT"
rsa mx-rsa; sign mx-rsa int $MX "$LEAF
subjectAltName=DNS:$MX"
ec mx-ec; sign mx-ec int $MX "$LEAF
subjectAltName=DNS:$MX"
ec wrong; sign wrong int not-the-mx.example.test "$LEAF
subjectAltName=DNS:not-the-mx.example.test"
ec expired; sign expired int $MX "$LEAF
subjectAltName=DNS:$MX" 20200101000000Z 20210101000000Z
ec wild; sign wild int "*.example.test" "$LEAF
subjectAltName=DNS:*.example.test"
ec partial; sign partial int "m*.example.test" "$LEAF
subjectAltName=DNS:m*.example.test"
ec cnonly; sign cnonly int $MX "$LEAF"
ec sancn; sign sancn int $MX "$LEAF
subjectAltName=DNS:other.example.test"
ec direct; sign direct ca $MX "$LEAF
subjectAltName=DNS:$MX"
ec notca; sign notca ca "not a CA" 'basicConstraints=critical,CA:FALSE
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid'
ec undernotca; sign undernotca notca $MX "$LEAF
subjectAltName=DNS:$MX"
ec oldint; sign oldint ca "expired intermediate" "$CAEXT" 20200101000000Z 20210101000000Z
ec underold; sign underold oldint $MX "$LEAF
subjectAltName=DNS:$MX"
# same subject as "int", another key; its leaf has no authorityKeyIdentifier, so "int" looks like its issuer
ec fakeint; sign fakeint ca "mailwire test intermediate" "$CAEXT"
ec forged; sign forged fakeint $MX 'basicConstraints=critical,CA:FALSE
authorityKeyIdentifier=none
subjectAltName=DNS:mx.example.test'
ec self
openssl req -x509 -new -key self.key -out self.crt -days 3650 -subj "/O=self/CN=$MX" \
  -addext "subjectAltName=DNS:$MX" -addext "basicConstraints=critical,CA:FALSE"
`;

function rec(usage: number, selector: 0 | 1, matchingType: 0 | 1 | 2, cert: X509Certificate): TlsaRecord {
  return { usage, selector, matchingType, data: tlsaAssociation(cert, selector, matchingType) };
}

function flip(r: TlsaRecord): TlsaRecord {
  const data = Uint8Array.from(r.data);
  data[data.length - 1] = (data[data.length - 1] as number) ^ 1;
  return { ...r, data };
}

function expectOk(res: DaneResult, usage: 2 | 3, depth: number, record?: TlsaRecord): void {
  expect(res).toMatchObject({ ok: true, usage, depth });
  if (record !== undefined && res.ok) expect(res.record).toBe(record);
}

function expectFail(res: DaneResult, resultType: string, detail?: RegExp): void {
  expect(res).toMatchObject({ ok: false, resultType });
  if (detail !== undefined && !res.ok) expect(res.detail).toMatch(detail);
}

describe.skipIf(!hasOpenssl)('DANE with openssl-made certificates', () => {
  let dir = '';
  const certs = new Map<string, X509Certificate>();
  const c = (name: string): X509Certificate => {
    const x = certs.get(name);
    if (x === undefined) throw new Error(`no certificate ${name}`);
    return x;
  };
  const chain = (...names: string[]): X509Certificate[] => names.map(c);
  const check = (names: string[], tlsa: TlsaRecord[], refs: string[] = [MX], now?: Date): DaneResult =>
    verifyDane({ chain: chain(...names), tlsa, names: refs, ...(now ? { now } : {}) });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mailwire-dane-'));
    try {
      execFileSync('sh', ['-c', SCRIPT], { cwd: dir, env: { ...process.env, MX } });
    } catch (err) {
      let log = '';
      try {
        log = readFileSync(join(dir, 'openssl.log'), 'utf8');
      } catch {
        // no log
      }
      throw new Error(`openssl failed: ${String(err)}\n${log}`);
    }
    for (const name of ['ca', 'other', 'int', 'mx-rsa', 'mx-ec', 'wrong', 'expired', 'wild', 'partial', 'cnonly', 'sancn', 'direct', 'notca', 'undernotca', 'oldint', 'underold', 'fakeint', 'forged', 'self']) {
      certs.set(name, new X509Certificate(readFileSync(join(dir, `${name}.crt`))));
    }
  }, 60_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('made the certificates it meant to', () => {
    expect(c('mx-rsa').checkIssued(c('int'))).toBe(true);
    expect(c('int').checkIssued(c('ca'))).toBe(true);
    expect(c('mx-rsa').publicKey.asymmetricKeyType).toBe('rsa');
    expect(c('mx-ec').publicKey.asymmetricKeyType).toBe('ec');
    expect(c('expired').validTo).toMatch(/2021/);
    expect(c('oldint').validTo).toMatch(/2021/);
    expect(c('underold').checkIssued(c('oldint'))).toBe(true);
    expect(c('notca').ca).toBe(false);
    expect(c('cnonly').subjectAltName).toBeUndefined();
  });

  describe('tlsaAssociation', () => {
    const openssl = (cmd: string): Buffer => execFileSync('sh', ['-c', cmd], { cwd: dir });

    it('3 1 1 / 3 1 2 equal openssl x509 -pubkey | openssl pkey -pubin -outform DER | openssl dgst', () => {
      for (const name of ['mx-rsa', 'mx-ec']) {
        const spki = `openssl x509 -in ${name}.crt -noout -pubkey | openssl pkey -pubin -outform DER`;
        expect(Buffer.from(tlsaAssociation(c(name), 1, 1))).toEqual(openssl(`${spki} | openssl dgst -sha256 -binary`));
        expect(Buffer.from(tlsaAssociation(c(name), 1, 2))).toEqual(openssl(`${spki} | openssl dgst -sha512 -binary`));
        expect(Buffer.from(tlsaAssociation(c(name), 1, 0))).toEqual(openssl(spki));
      }
    });

    it('3 0 x equal the DER certificate and its digests', () => {
      const der = openssl('openssl x509 -in mx-ec.crt -outform DER');
      expect(Buffer.from(tlsaAssociation(c('mx-ec'), 0, 0))).toEqual(der);
      expect(Buffer.from(tlsaAssociation(c('mx-ec'), 0, 1))).toEqual(openssl('openssl x509 -in mx-ec.crt -outform DER | openssl dgst -sha256 -binary'));
      expect(Buffer.from(tlsaAssociation(c('mx-ec'), 0, 2))).toEqual(createHash('sha512').update(der).digest());
    });

    it('the SPKI taken from the certificate equals KeyObject.export for RSA and EC', () => {
      for (const name of ['ca', 'int', 'mx-rsa', 'mx-ec', 'self']) {
        expect(Buffer.from(tlsaAssociation(c(name), 1, 0))).toEqual(c(name).publicKey.export({ type: 'spki', format: 'der' }));
      }
    });

    it('rejects unknown selectors and matching types', () => {
      expect(() => tlsaAssociation(c('mx-ec'), 2 as 0, 1)).toThrow(RangeError);
      expect(() => tlsaAssociation(c('mx-ec'), 1, 255 as 0)).toThrow(RangeError);
    });
  });

  describe('DANE-EE(3)', () => {
    for (const [s, m] of [
      [0, 1],
      [1, 1],
      [1, 2],
      [0, 0],
      [1, 0],
      [0, 2],
    ] as const) {
      it(`3 ${s} ${m} matches the RSA and the ECDSA leaf`, () => {
        for (const leaf of ['mx-rsa', 'mx-ec']) {
          const r = rec(3, s, m, c(leaf));
          expectOk(check([leaf, 'int', 'ca'], [r]), 3, 0, r);
          expectOk(check([leaf], [r]), 3, 0, r);
        }
      });
    }

    it('checks no name: a wrong-name leaf matches, with any names or none', () => {
      const r = rec(3, 1, 1, c('wrong'));
      expectOk(check(['wrong', 'int', 'ca'], [r]), 3, 0);
      expectOk(check(['wrong'], [r], []), 3, 0);
    });

    it('checks no expiry: an expired leaf matches, and so does a leaf at a `now` outside its validity', () => {
      expectOk(check(['expired', 'int', 'ca'], [rec(3, 1, 1, c('expired'))]), 3, 0);
      expectOk(check(['mx-ec'], [rec(3, 0, 1, c('mx-ec'))], [MX], new Date('2300-01-01T00:00:00Z')), 3, 0);
    });

    it('needs no trusted chain: a self-signed leaf and a leaf under an unrelated chain match', () => {
      expectOk(check(['self'], [rec(3, 1, 1, c('self'))]), 3, 0);
      expectOk(check(['mx-ec', 'other'], [rec(3, 1, 1, c('mx-ec'))]), 3, 0);
    });

    it('matches only the leaf: a 3 x x record of the intermediate or the root does not match', () => {
      expectFail(check(['mx-ec', 'int', 'ca'], [rec(3, 1, 1, c('int')), rec(3, 0, 1, c('ca'))]), 'validation-failure', /tried DANE-EE 3 1 1 [0-9a-f]{16}…, 3 0 1 [0-9a-f]{16}… against the leaf$/);
    });

    it('a mismatching digest fails with the records tried in the detail', () => {
      expectFail(check(['mx-ec', 'int', 'ca'], [flip(rec(3, 1, 1, c('mx-ec')))]), 'validation-failure', /^no TLSA record matched: tried DANE-EE 3 1 1 /);
      expectFail(check(['mx-ec'], [rec(3, 1, 1, c('mx-rsa'))]), 'validation-failure');
      expectFail(check(['mx-ec'], [flip(rec(3, 0, 0, c('mx-ec')))]), 'validation-failure');
    });

    it('one matching record among several is enough', () => {
      const good = rec(3, 1, 1, c('mx-ec'));
      expectOk(check(['mx-ec'], [flip(rec(3, 0, 1, c('mx-ec'))), rec(3, 1, 1, c('mx-rsa')), good]), 3, 0, good);
    });
  });

  describe('DANE-TA(2)', () => {
    for (const [s, m] of [
      [0, 1],
      [1, 1],
      [1, 2],
      [0, 0],
      [1, 0],
    ] as const) {
      it(`2 ${s} ${m} of the intermediate (depth 1) and of the root (depth 2)`, () => {
        for (const leaf of ['mx-rsa', 'mx-ec']) {
          const ri = rec(2, s, m, c('int'));
          expectOk(check([leaf, 'int', 'ca'], [ri]), 2, 1, ri);
          expectOk(check([leaf, 'int'], [ri]), 2, 1, ri);
          const rr = rec(2, s, m, c('ca'));
          expectOk(check([leaf, 'int', 'ca'], [rr]), 2, 2, rr);
        }
      });
    }

    it('a root-signed leaf with the root as trust anchor', () => {
      expectOk(check(['direct', 'ca'], [rec(2, 0, 1, c('ca'))]), 2, 1);
    });

    it('checks the name: a wrong-name leaf is certificate-host-mismatch', () => {
      expectFail(check(['wrong', 'int', 'ca'], [rec(2, 0, 1, c('int'))]), 'certificate-host-mismatch', /matches none of "mx\.example\.test"/);
      expectFail(check(['wrong', 'int', 'ca'], [rec(2, 1, 1, c('ca'))]), 'certificate-host-mismatch');
    });

    it('accepts any of the names (TLSA base domain, MX qname, rname), case-insensitively, with a trailing dot', () => {
      const r = [rec(2, 1, 1, c('int'))];
      expectOk(check(['mx-ec', 'int'], r, ['tlsa-base.example.test', 'MX.Example.TEST']), 2, 1);
      expectOk(check(['mx-ec', 'int'], r, ['mx.example.test.']), 2, 1);
      expectOk(check(['wrong', 'int'], r, [MX, 'not-the-mx.example.test']), 2, 1);
      expectFail(check(['mx-ec', 'int'], r, []), 'certificate-host-mismatch', /no reference name/);
      expectFail(check(['mx-ec', 'int'], r, ['example.test', 'x.mx.example.test']), 'certificate-host-mismatch');
    });

    it('wildcards only as the whole left-most label, one label deep', () => {
      const r = [rec(2, 0, 1, c('int'))];
      expectOk(check(['wild', 'int'], r, ['a.example.test']), 2, 1);
      expectOk(check(['wild', 'int'], r, [MX]), 2, 1);
      expectFail(check(['wild', 'int'], r, ['example.test']), 'certificate-host-mismatch');
      expectFail(check(['wild', 'int'], r, ['a.b.example.test']), 'certificate-host-mismatch');
    });

    it('no partial-label wildcards: m*.example.test never matches', () => {
      const r = [rec(2, 0, 1, c('int'))];
      expectFail(check(['partial', 'int'], r, [MX]), 'certificate-host-mismatch');
      expectFail(check(['partial', 'int'], r, ['m.example.test']), 'certificate-host-mismatch');
    });

    it('the CN only without a DNS SAN', () => {
      const r = [rec(2, 0, 1, c('int'))];
      expectOk(check(['cnonly', 'int'], r, [MX]), 2, 1);
      expectFail(check(['sancn', 'int'], r, [MX]), 'certificate-host-mismatch');
      expectOk(check(['sancn', 'int'], r, ['other.example.test']), 2, 1);
    });

    it('checks expiry below the trust anchor: an expired leaf is certificate-expired', () => {
      expectFail(check(['expired', 'int', 'ca'], [rec(2, 0, 1, c('int'))]), 'certificate-expired', /depth 0 has expired \(notAfter 2021-01-01T00:00:00\.000Z\)/);
      expectFail(check(['expired', 'int', 'ca'], [rec(2, 1, 1, c('ca'))]), 'certificate-expired');
      // expired and wrong name: expiry is reported, the name problem is in the detail
      expectFail(check(['expired', 'int'], [rec(2, 0, 1, c('int'))], ['nope.example.test']), 'certificate-expired', /also the server certificate matches none/);
    });

    it('`now` decides expiry: the expired leaf was valid in 2020, the intermediate was not yet', () => {
      const mid2020 = new Date('2020-06-01T00:00:00Z');
      // the intermediate is the trust anchor: its own dates do not matter
      expectOk(check(['expired', 'int'], [rec(2, 0, 1, c('int'))], [MX], mid2020), 2, 1);
      // the root is the trust anchor: the intermediate below it is not yet valid
      expectFail(check(['expired', 'int', 'ca'], [rec(2, 0, 1, c('ca'))], [MX], mid2020), 'certificate-expired', /depth 1 is not yet valid/);
      expectFail(check(['mx-ec', 'int'], [rec(2, 0, 1, c('int'))], [MX], new Date('2300-01-01T00:00:00Z')), 'certificate-expired');
    });

    it("the trust anchor's own validity is not checked; an expired intermediate below the anchor is", () => {
      expectOk(check(['underold', 'oldint', 'ca'], [rec(2, 1, 1, c('oldint'))]), 2, 1);
      expectFail(check(['underold', 'oldint', 'ca'], [rec(2, 1, 1, c('ca'))]), 'certificate-expired', /depth 1 has expired/);
    });

    it('never matches the leaf itself (OpenSSL): 2 x x of the leaf, even a self-signed one, fails', () => {
      expectFail(check(['mx-ec', 'int', 'ca'], [rec(2, 0, 1, c('mx-ec')), rec(2, 1, 1, c('mx-ec'))]), 'validation-failure');
      expectFail(check(['self'], [rec(2, 0, 1, c('self')), rec(2, 1, 1, c('self')), rec(2, 0, 0, c('self'))]), 'validation-failure');
    });

    it("a self-signed leaf's own key as a bare 2 1 0 key verifies its self-signature (OpenSSL check_dane_pkeys); names still checked", () => {
      expectOk(check(['self'], [rec(2, 1, 0, c('self'))]), 2, 1);
      expectFail(check(['self'], [rec(2, 1, 0, c('self'))], ['nope.example.test']), 'certificate-host-mismatch');
    });

    it('a mismatching digest, or a trust anchor of another hierarchy, fails', () => {
      expectFail(check(['mx-ec', 'int', 'ca'], [flip(rec(2, 1, 1, c('int'))), flip(rec(2, 0, 1, c('ca')))]), 'validation-failure', /DANE-TA 2 1 1 [0-9a-f]+…, 2 0 1 [0-9a-f]+… against the issuer certificates at depths 1-2$/);
      expectFail(check(['mx-ec', 'int', 'ca'], [rec(2, 1, 1, c('other'))]), 'validation-failure');
    });

    it('a matching certificate that did not issue the chain is not a trust anchor', () => {
      // "other" is presented and matches, but did not sign the leaf
      expectFail(check(['mx-ec', 'other'], [rec(2, 0, 1, c('other'))]), 'validation-failure', /against no issuer certificate \(none presented issued the leaf\)/);
      // "int" is the TA but the leaf under "direct" was signed by the root
      expectFail(check(['direct', 'int'], [rec(2, 0, 1, c('int'))]), 'validation-failure');
    });

    it('issuers must be CAs: a CA:FALSE certificate cannot issue', () => {
      expectFail(check(['undernotca', 'notca', 'ca'], [rec(2, 0, 1, c('ca'))]), 'validation-failure', /depth 1 is not a CA/);
      expectFail(check(['undernotca', 'notca'], [rec(2, 0, 1, c('notca'))]), 'validation-failure', /not a CA/);
      // DANE-EE of the same leaf is fine
      expectOk(check(['undernotca', 'notca'], [rec(3, 1, 1, c('undernotca'))]), 3, 0);
    });

    it('an issuer by name whose key does not verify the signature is not an issuer', () => {
      expect(c('forged').checkIssued(c('int'))).toBe(true);
      expectFail(check(['forged', 'int', 'ca'], [rec(2, 0, 1, c('ca'))]), 'validation-failure', /signature of the certificate at depth 0 does not verify/);
      expectFail(check(['forged', 'int'], [rec(2, 0, 1, c('int'))]), 'validation-failure');
      expectOk(check(['forged', 'fakeint', 'ca'], [rec(2, 0, 1, c('ca'))]), 2, 2);
      expectOk(check(['forged', 'int', 'fakeint', 'ca'], [rec(2, 0, 1, c('ca'))]), 2, 2);
    });

    it('builds the path from an unordered chain with duplicates and strays', () => {
      const r = rec(2, 1, 1, c('ca'));
      expectOk(check(['mx-ec', 'ca', 'int'], [r]), 2, 2, r);
      expectOk(check(['mx-ec', 'other', 'int', 'int', 'wrong', 'ca'], [r]), 2, 2, r);
      expectOk(check(['mx-ec', 'mx-ec', 'int'], [rec(2, 0, 1, c('int'))]), 2, 1);
    });

    it('stops at the lowest matching depth', () => {
      const ri = rec(2, 1, 1, c('int'));
      const rr = rec(2, 1, 1, c('ca'));
      expectOk(check(['mx-ec', 'int', 'ca'], [rr, ri]), 2, 1, ri);
    });

    describe('trust anchors from DNS that the server did not send', () => {
      it('a bare 2 1 0 key that signed the top certificate: the intermediate key over the leaf, the root key over the intermediate', () => {
        const ri = rec(2, 1, 0, c('int'));
        expectOk(check(['mx-ec'], [ri]), 2, 1, ri);
        const rr = rec(2, 1, 0, c('ca'));
        expectOk(check(['mx-ec', 'int'], [rr]), 2, 2, rr);
        expectOk(check(['direct'], [rr]), 2, 1, rr);
      });

      it('a bare key is subject to the name and expiry checks', () => {
        expectFail(check(['wrong'], [rec(2, 1, 0, c('int'))]), 'certificate-host-mismatch');
        expectFail(check(['expired'], [rec(2, 1, 0, c('int'))]), 'certificate-expired');
        expectFail(check(['undernotca', 'notca'], [rec(2, 1, 0, c('ca'))]), 'validation-failure', /not a CA/);
      });

      it('a bare key that did not sign the top certificate fails', () => {
        expectFail(check(['mx-ec'], [rec(2, 1, 0, c('ca'))]), 'validation-failure', /and 1 bare key\(s\) against the signature of the certificate at depth 0/);
        expectFail(check(['mx-ec'], [rec(2, 1, 0, c('other'))]), 'validation-failure');
      });

      it('2 1 1 / 2 1 2 of a key that is not sent cannot verify anything: validation-failure', () => {
        expectFail(check(['mx-ec'], [rec(2, 1, 1, c('int')), rec(2, 1, 2, c('int'))]), 'validation-failure');
        expectFail(check(['mx-ec', 'int'], [rec(2, 1, 1, c('ca'))]), 'validation-failure');
      });

      it('a full 2 0 0 certificate from DNS completes the chain', () => {
        const ri = rec(2, 0, 0, c('int'));
        expectOk(check(['mx-ec'], [ri]), 2, 1, ri);
        const rr = rec(2, 0, 0, c('ca'));
        expectOk(check(['mx-ec', 'int'], [rr]), 2, 2, rr);
        expectFail(check(['wrong'], [ri]), 'certificate-host-mismatch');
      });
    });
  });

  describe('record handling', () => {
    it('digest agility (RFC 7671 §9): with a 3 1 2 record, 3 1 1 records are ignored', () => {
      const good256 = rec(3, 1, 1, c('mx-ec'));
      const bad512 = flip(rec(3, 1, 2, c('mx-ec')));
      expectFail(check(['mx-ec'], [good256, bad512]), 'validation-failure', /ignored by digest agility/);
      const good512 = rec(3, 1, 2, c('mx-ec'));
      expectOk(check(['mx-ec'], [flip(good256), good512]), 3, 0, good512);
    });

    it('digest agility is per usage and selector', () => {
      const good = rec(3, 1, 1, c('mx-ec'));
      expectOk(check(['mx-ec'], [good, flip(rec(3, 0, 2, c('mx-ec')))]), 3, 0, good);
      expectOk(check(['mx-ec'], [good, flip(rec(2, 1, 2, c('int')))]), 3, 0, good);
      const ta = rec(2, 1, 1, c('int'));
      expectOk(check(['mx-ec', 'int'], [ta, flip(rec(3, 1, 2, c('mx-ec')))]), 2, 1, ta);
      // full-data records are never skipped
      const full = rec(3, 1, 0, c('mx-ec'));
      expectOk(check(['mx-ec'], [full, flip(rec(3, 1, 2, c('mx-ec')))]), 3, 0, full);
    });

    it('DANE-EE wins over DANE-TA when both match', () => {
      const ee = rec(3, 1, 1, c('mx-ec'));
      expectOk(check(['mx-ec', 'int'], [rec(2, 1, 1, c('int')), ee]), 3, 0, ee);
    });

    it('usableTlsa keeps usages 2/3, selectors 0/1, matching 0/1/2 with correct lengths and well-formed full data', () => {
      const good = [rec(3, 1, 1, c('mx-ec')), rec(2, 0, 2, c('int')), rec(3, 0, 0, c('mx-ec')), rec(2, 1, 0, c('ca'))];
      const d32 = new Uint8Array(32);
      const d64 = new Uint8Array(64);
      const bad: TlsaRecord[] = [
        { usage: 0, selector: 1, matchingType: 1, data: d32 }, // PKIX-TA
        { usage: 1, selector: 1, matchingType: 1, data: d32 }, // PKIX-EE
        { usage: 4, selector: 1, matchingType: 1, data: d32 },
        { usage: 3, selector: 2, matchingType: 1, data: d32 },
        { usage: 3, selector: 1, matchingType: 255, data: d32 }, // private use (Postfix fingerprints)
        { usage: 3, selector: 1, matchingType: 3, data: d32 },
        { usage: 3, selector: 1, matchingType: 1, data: new Uint8Array(31) },
        { usage: 3, selector: 1, matchingType: 1, data: new Uint8Array(33) },
        { usage: 3, selector: 1, matchingType: 1, data: d64 },
        { usage: 3, selector: 1, matchingType: 2, data: new Uint8Array(63) },
        { usage: 3, selector: 1, matchingType: 2, data: new Uint8Array(65) },
        { usage: 3, selector: 1, matchingType: 2, data: d32 },
        { usage: 3, selector: 0, matchingType: 0, data: new Uint8Array(0) },
        { usage: 3, selector: 0, matchingType: 0, data: d64 }, // not a certificate
        { usage: 2, selector: 1, matchingType: 0, data: d64 }, // not a public key
        { usage: 3, selector: 0, matchingType: 0, data: Uint8Array.from([...c('mx-ec').raw, 0]) }, // trailing byte
        { usage: 2, selector: 1, matchingType: 0, data: Uint8Array.from([...tlsaAssociation(c('ca'), 1, 0), 0]) },
        { usage: 3, selector: 1, matchingType: 0, data: tlsaAssociation(c('mx-ec'), 0, 0) }, // a cert where a key belongs
      ];
      const out = usableTlsa([bad[0] as TlsaRecord, ...good.slice(0, 2), ...bad.slice(1), ...good.slice(2)]);
      expect(out).toHaveLength(good.length);
      out.forEach((r, i) => expect(r).toBe(good[i]));
    });

    it('no records, or none usable: tlsa-invalid', () => {
      expectFail(check(['mx-ec'], []), 'tlsa-invalid', /no TLSA records/);
      const pkix = { ...rec(3, 1, 1, c('mx-ec')), usage: 1 };
      const priv = { ...rec(3, 1, 1, c('mx-ec')), matchingType: 255 };
      expectFail(check(['mx-ec'], [pkix, priv]), 'tlsa-invalid', /none of the 2 TLSA records is usable/);
    });
  });
});

describe('DANE: hostile input (built-in test certificate)', () => {
  const cert = new X509Certificate(testCertificate.cert);
  const good = rec(3, 1, 1, cert);

  it('an empty or missing chain is validation-failure', () => {
    expectFail(verifyDane({ chain: [], tlsa: [good], names: [] }), 'validation-failure', /no certificate/);
    expectFail(verifyDane({ chain: undefined as never, tlsa: [good], names: [] }), 'validation-failure');
  });

  it('non-certificates in the chain are validation-failure or ignored, never thrown', () => {
    const junk = [null, undefined, 42, 'PEM', {}, { raw: new Uint8Array(3) }, new Uint8Array(10)] as unknown as X509Certificate[];
    for (const j of junk) {
      expectFail(verifyDane({ chain: [j], tlsa: [good], names: ['mx.test.invalid'] }), 'validation-failure');
    }
    expectOk(verifyDane({ chain: [cert, ...junk], tlsa: [good], names: [] }), 3, 0);
    expectFail(verifyDane({ chain: [cert, ...junk], tlsa: [rec(2, 1, 1, cert)], names: ['mx.test.invalid'] }), 'validation-failure', /unreadable certificate/);
  });

  it('malformed records are unusable: tlsa-invalid', () => {
    const junk = [
      null,
      42,
      {},
      { usage: 3, selector: 1, matchingType: 1 },
      { usage: 3, selector: 1, matchingType: 1, data: 'a'.repeat(32) },
      { usage: 3, selector: 1, matchingType: 1, data: Array.from({ length: 32 }, () => 0) },
      { usage: '3', selector: 1, matchingType: 1, data: new Uint8Array(32) },
      { usage: 3.5, selector: 1, matchingType: 1, data: new Uint8Array(32) },
      { usage: 3, selector: Number.NaN, matchingType: 1, data: new Uint8Array(32) },
    ] as unknown as TlsaRecord[];
    expect(usableTlsa(junk)).toEqual([]);
    expect(usableTlsa(undefined as never)).toEqual([]);
    expectFail(verifyDane({ chain: [cert], tlsa: junk, names: [] }), 'tlsa-invalid');
    expectFail(verifyDane(undefined as never), 'tlsa-invalid');
    expectOk(verifyDane({ chain: [cert], tlsa: [...junk, good], names: [] }), 3, 0, good);
  });

  it('hostile names and dates never throw', () => {
    const ta = rec(2, 1, 0, cert); // self-signed: its own key verifies it
    const names = ['', '\0', 'mx.test.invalid\0.evil', '.', '..', '*', '*.invalid', 'x'.repeat(10_000), 'MX.TEST.İNVALID', 42, null] as unknown as string[];
    expectFail(verifyDane({ chain: [cert], tlsa: [ta], names }), 'certificate-host-mismatch');
    expectOk(verifyDane({ chain: [cert], tlsa: [ta], names: [...names, 'mx.test.invalid'] }), 2, 1);
    expectOk(verifyDane({ chain: [cert], tlsa: [ta], names: ['mx.test.invalid'], now: new Date(Number.NaN) }), 2, 1);
    expectOk(verifyDane({ chain: [cert], tlsa: [ta], names: ['mx.test.invalid'], now: 'yesterday' as never }), 2, 1);
  });

  it('the detail stays short with many records', () => {
    const many = Array.from({ length: 500 }, (_, i) => ({ usage: 3, selector: 1, matchingType: 1, data: new Uint8Array(32).fill(i % 256) }));
    const res = verifyDane({ chain: [cert], tlsa: [...many, ...many.map((r) => ({ ...r, matchingType: 2, data: new Uint8Array(64) }))], names: [] });
    expectFail(res, 'validation-failure');
    if (!res.ok) expect(res.detail.length).toBeLessThanOrEqual(1000);
  });

  it('a long chain of copies is bounded and fails cleanly', () => {
    const chain = Array.from({ length: 5000 }, () => cert);
    expectFail(verifyDane({ chain, tlsa: [rec(2, 1, 1, new X509Certificate(testCertificate.cert))], names: ['mx.test.invalid'] }), 'validation-failure', /first 16/);
  });

  it('property: verifyDane never throws and answers one of the five shapes; usableTlsa keeps only usable records', () => {
    const assoc = [0, 1].flatMap((s) => [0, 1, 2].map((m) => ({ s, m, data: tlsaAssociation(cert, s as 0 | 1, m as 0 | 1 | 2) })));
    const record = fc.oneof(
      fc.record({
        usage: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constant(255), fc.double()),
        selector: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.double()),
        matchingType: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(255)),
        data: fc.uint8Array({ maxLength: 80 }),
      }),
      fc.record({ usage: fc.integer({ min: 2, max: 3 }), a: fc.constantFrom(...assoc), bit: fc.integer({ min: -1, max: 40 }) }).map(({ usage, a, bit }) => {
        const data = Uint8Array.from(a.data);
        if (bit >= 0 && bit < data.length) data[bit] = (data[bit] as number) ^ 1;
        return { usage, selector: a.s, matchingType: a.m, data };
      }),
    );
    fc.assert(
      fc.property(fc.array(record, { maxLength: 8 }), fc.array(fc.string(), { maxLength: 3 }), (records, names) => {
        const res = verifyDane({ chain: [cert], tlsa: records as TlsaRecord[], names: [...names, 'mx.test.invalid'] });
        if (res.ok) {
          expect(records).toContain(res.record);
          expect([2, 3]).toContain(res.usage);
        } else {
          expect(['tlsa-invalid', 'certificate-host-mismatch', 'certificate-expired', 'validation-failure']).toContain(res.resultType);
          expect(typeof res.detail).toBe('string');
        }
        for (const r of usableTlsa(records as TlsaRecord[])) {
          expect([2, 3]).toContain(r.usage);
          expect([0, 1]).toContain(r.selector);
          expect([0, 1, 2]).toContain(r.matchingType);
          if (r.matchingType === 1) expect(r.data.length).toBe(32);
          if (r.matchingType === 2) expect(r.data.length).toBe(64);
        }
      }),
      { numRuns: 300 },
    );
  });
});
