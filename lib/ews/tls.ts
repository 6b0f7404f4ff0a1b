/**
 * TLS settings for an https EWS endpoint: which certificate authorities to trust, whether to check
 * the server's certificate at all, and a client certificate. Verification is on unless switched
 * off explicitly, and switching it off is never silent: it logs a warning.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates, type SecureContextOptions } from 'node:tls';
import type { Logger } from '../logger.js';
import { booleanOption, describeKind, optionalNonEmptyString } from '../validate.js';

/** PEM text or DER bytes, one or several. */
export type TlsMaterial = string | Buffer | readonly (string | Buffer)[];

/** TLS options for the connection to an https EWS endpoint. */
export interface EwsTlsOptions {
  /**
   * Certificate authorities to trust in addition to Node's bundled public roots and the file named
   * by `NODE_EXTRA_CA_CERTS` (PEM), e.g. the company's private CA that signed the Exchange
   * certificate. (A plain Node `ca` option replaces all of those; this one adds to them.)
   * Default: Node's default trust (its bundled roots, plus `NODE_EXTRA_CA_CERTS`, or the operating
   * system's store when Node runs with `--use-openssl-ca`).
   */
  readonly ca?: TlsMaterial;
  /**
   * Check the server's certificate chain and name. `false` accepts any certificate, so anyone on
   * the path can read the credentials: for a lab only, and it logs a warning.
   * Default `true`.
   */
  readonly rejectUnauthorized?: boolean;
  /** Client certificate chain (PEM), for endpoints that require client certificates. Default: none. */
  readonly cert?: TlsMaterial;
  /** The client certificate's private key (PEM). Default: none. */
  readonly key?: TlsMaterial;
  /** Client certificate and key as PKCS#12. Default: none. */
  readonly pfx?: string | Buffer;
  /** Passphrase of `key` or `pfx`. Default: none. */
  readonly passphrase?: string;
  /** Server name for SNI and certificate checking, when it differs from the URL's host. Default: the URL's host. */
  readonly servername?: string;
}

/** The subset of `https.AgentOptions` built from {@link EwsTlsOptions}. */
export type TlsAgentOptions = Pick<SecureContextOptions, 'ca' | 'cert' | 'key' | 'pfx' | 'passphrase'> & {
  rejectUnauthorized?: boolean;
  servername?: string;
};

function isMaterial(value: unknown): boolean {
  const one = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v);
  return one(value) || (Array.isArray(value) && value.length > 0 && value.every(one));
}

/**
 * Checks TLS options. Messages name the option and, for `ca`, `cert`, `key`, `pfx` and
 * `passphrase`, only the kind of value it got (`got a number`), never the value: a key or a
 * passphrase is a secret.
 *
 * @param name - How the option is called in messages. Default `tls`.
 * @throws TypeError
 */
export function validateTlsOptions(tls: unknown, name = 'tls'): asserts tls is EwsTlsOptions {
  // Not requireObject: a string here may be a key's PEM, which describeValue would quote.
  if (typeof tls !== 'object' || tls === null || Array.isArray(tls)) throw new TypeError(`${name} must be an object (got ${describeKind(tls)})`);
  const t = tls as Readonly<Record<string, unknown>>;
  for (const field of ['ca', 'cert', 'key'] as const) {
    if (t[field] !== undefined && !isMaterial(t[field])) throw new TypeError(`${name}.${field} must be a string, a Buffer or a non-empty array of them (got ${describeKind(t[field])})`);
  }
  if (t['pfx'] !== undefined && !(typeof t['pfx'] === 'string' || Buffer.isBuffer(t['pfx']))) throw new TypeError(`${name}.pfx must be a string or a Buffer (got ${describeKind(t['pfx'])})`);
  if (t['passphrase'] !== undefined && typeof t['passphrase'] !== 'string') throw new TypeError(`${name}.passphrase must be a string (got ${describeKind(t['passphrase'])})`);
  optionalNonEmptyString(t['servername'], `${name}.servername`);
  if (t['rejectUnauthorized'] !== undefined) booleanOption(t['rejectUnauthorized'], `${name}.rejectUnauthorized`, true);
  if ((t['key'] === undefined) !== (t['cert'] === undefined)) {
    throw new TypeError(`${name}.cert and ${name}.key must be given together (got only ${name}.${t['key'] === undefined ? 'cert' : 'key'})`);
  }
}

const warned = new WeakSet<Logger>();

/** Bundles already read, by path: one read (and one string) per process, as Node does. */
const environmentBundles = new Map<string, string | undefined>();

/**
 * The certificates of the file `NODE_EXTRA_CA_CERTS` names (one PEM bundle). An unreadable file
 * adds nothing: Node itself warned about it when the process started.
 */
function environmentCaCerts(): string[] {
  const file = process.env['NODE_EXTRA_CA_CERTS'];
  if (file === undefined || file === '') return [];
  if (!environmentBundles.has(file)) {
    let bundle: string | undefined;
    try {
      bundle = readFileSync(file, 'utf8');
    } catch {
      bundle = undefined;
    }
    environmentBundles.set(file, bundle);
  }
  const bundle = environmentBundles.get(file);
  return bundle === undefined ? [] : [bundle];
}

/**
 * The `https.Agent` options for TLS settings. Warns (once per logger) when certificate checking is
 * switched off.
 */
export function tlsAgentOptions(tls: EwsTlsOptions | undefined, logger: Logger): TlsAgentOptions {
  if (tls === undefined) return {};
  const options: TlsAgentOptions = {};
  if (tls.ca !== undefined) {
    // Node's `ca` replaces the default roots (and NODE_EXTRA_CA_CERTS); keep them trusted too, as documented.
    const extra = Array.isArray(tls.ca) ? (tls.ca as readonly (string | Buffer)[]) : [tls.ca as string | Buffer];
    options.ca = [...rootCertificates, ...environmentCaCerts(), ...extra];
  }
  if (tls.cert !== undefined) options.cert = tls.cert as string | Buffer | (string | Buffer)[];
  if (tls.key !== undefined) options.key = tls.key as string | Buffer | (string | Buffer)[];
  if (tls.pfx !== undefined) options.pfx = tls.pfx;
  if (tls.passphrase !== undefined) options.passphrase = tls.passphrase;
  if (tls.servername !== undefined) options.servername = tls.servername;
  if (tls.rejectUnauthorized === false) {
    options.rejectUnauthorized = false;
    if (!warned.has(logger)) {
      warned.add(logger);
      logger.warn('TLS certificate verification is disabled (tls.rejectUnauthorized: false): anyone on the network path can impersonate the server and read the credentials');
    }
  }
  return options;
}
