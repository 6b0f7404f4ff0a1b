/**
 * Self-signed server certificates for 127.0.0.1 made by the openssl CLI at test time, with a chosen
 * key type and signature hash, for channel-binding tests (RFC 5929 picks the hash from the
 * certificate's signature algorithm).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  readonly key: string;
  readonly cert: string;
  /** The certificate in DER. */
  readonly der: Buffer;
}

export interface TestCertOptions {
  /** Signature hash. Default `sha256`. */
  readonly digest?: 'sha1' | 'sha256' | 'sha384' | 'sha512';
  /** Key type. Default `rsa`. */
  readonly keyType?: 'rsa' | 'ec' | 'rsa-pss';
  /** Common name (and DNS SAN besides IP:127.0.0.1). Default `localhost`. */
  readonly name?: string;
  /** Validity. Default 2 days. */
  readonly days?: number;
}

/** Makes a self-signed certificate naming IP:127.0.0.1 (and DNS:`name`). */
export function makeSelfSignedCert(options: TestCertOptions = {}): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'ews-cert-'));
  const run = (...args: string[]): Buffer => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] });
  const name = options.name ?? 'localhost';
  try {
    const keyType = options.keyType ?? 'rsa';
    if (keyType === 'ec') run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'key.pem');
    else run('genpkey', '-algorithm', keyType === 'rsa-pss' ? 'RSA-PSS' : 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'key.pem');
    writeFileSync(join(dir, 'ext.cnf'), `[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=IP:127.0.0.1,DNS:${name}\n`);
    run(
      'req', '-x509', '-new', '-key', 'key.pem', `-${options.digest ?? 'sha256'}`, '-days', String(options.days ?? 2), '-subj', `/CN=${name}`,
      '-config', 'ext.cnf', '-extensions', 'ext', '-out', 'cert.pem',
    );
    const der = run('x509', '-in', 'cert.pem', '-outform', 'DER');
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), der };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The digest of `data` by the openssl CLI, hex: an implementation other than Node's for the check. */
export function opensslDigest(algorithm: string, data: Buffer): string {
  const out = execFileSync('openssl', ['dgst', `-${algorithm}`, '-r'], { input: data }).toString();
  return out.split(' ')[0]!.trim();
}

/** The certificate's signature algorithm as openssl names it (`sha384WithRSAEncryption`, …). */
export function opensslSignatureAlgorithm(der: Buffer): string {
  const text = execFileSync('openssl', ['x509', '-inform', 'DER', '-noout', '-text'], { input: der }).toString();
  return /Signature Algorithm:\s*(\S+)/.exec(text)?.[1] ?? 'unknown';
}
