/**
 * Negotiate (SPNEGO/Kerberos) as the transport's {@link Authorizer}, through the `kerberos`
 * package (MongoDB's GSSAPI binding) — an optional peer dependency, loaded on first use, so the
 * library installs and runs without it and only `auth: { type: 'negotiate' }` needs it.
 *
 * Each call gets a fresh GSSAPI security context (`forCall`): round 0 sends the initial token with
 * the request (one round trip for Kerberos); a 401 carrying a continuation token gets the next
 * token; a bare `Negotiate` after ours means the server refused the ticket.
 *
 * Credentials come from MIT Kerberos's usual places, read by the library on every context:
 * `KRB5CCNAME` (a ticket cache, e.g. kept fresh by `kinit -k` or k5start), or a client keytab
 * (`KRB5_CLIENT_KTNAME`), from which the library gets a ticket itself. `KRB5_CONFIG` names the
 * krb5.conf.
 */
import { EwsAuthError, EwsCredentialsError, EwsPeerMissingError } from '../errors.js';
import type { AuthContext, Authorizer } from './authorizer.js';
import { schemesOf, tokenOf } from './ntlm.js';

/**
 * Negotiate with Kerberos (Windows integrated authentication without NTLM). Needs the optional
 * peer dependency `kerberos` (`npm install kerberos`; it builds a native addon against the
 * system's GSSAPI: Debian/Ubuntu `libkrb5-dev`, RHEL `krb5-devel`).
 */
export interface NegotiateAuth {
  /** Discriminant. */
  readonly type: 'negotiate';
  /**
   * The service principal name of the EWS server, `service/host`. Default: `HTTP/` and the host of
   * the EWS URL — the name Exchange registers (`setspn -S HTTP/mail.contoso.com <account>` for a
   * load balancer name served by an alternate service account).
   */
  readonly spn?: string;
  /**
   * The client principal whose credentials to use (`svc-ews@CONTOSO.COM`). Default: the ticket
   * cache's default principal, or the client keytab's first one.
   */
  readonly principal?: string;
  /**
   * `'spnego'` (default) wraps the Kerberos token in SPNEGO, as browsers and Windows send it to
   * IIS; `'kerberos'` sends the raw Kerberos token, which some proxies expect.
   */
  readonly mechanism?: 'spnego' | 'kerberos';
}

/** The part of the `kerberos` package this module uses (its own types are not needed to build). */
export interface KerberosModule {
  initializeClient(service: string, options?: { principal?: string; mechOID?: number; flags?: number }): Promise<KerberosClientContext>;
  readonly GSS_MECH_OID_KRB5: number;
  readonly GSS_MECH_OID_SPNEGO: number;
}

/** One GSSAPI initiator context of the `kerberos` package. */
export interface KerberosClientContext {
  step(challenge: string): Promise<string>;
  readonly contextComplete: boolean;
}

/** Loads the `kerberos` package. */
export type KerberosLoader = () => Promise<KerberosModule>;

// A non-literal specifier: TypeScript does not try to resolve it (the package may be absent) and
// the bundler leaves the import to run time.
const KERBEROS_PACKAGE = 'kerberos';

let loaded: Promise<KerberosModule> | undefined;

/**
 * Imports the optional peer `kerberos` once per process.
 *
 * @throws EwsPeerMissingError (`EWS_PEER_MISSING`) when it is not installed or its addon does not load.
 */
export function importKerberos(): Promise<KerberosModule> {
  loaded ??= import(KERBEROS_PACKAGE).then(
    (module: { default?: KerberosModule } & Partial<KerberosModule>) => (module.default ?? (module as KerberosModule)),
    (error: unknown) => {
      loaded = undefined;
      throw kerberosLoadError(error);
    },
  );
  return loaded;
}

/** The typed error for a failed import of `kerberos`. @internal */
export function kerberosLoadError(error: unknown): EwsPeerMissingError {
  const code = (error as { code?: unknown } | undefined)?.code;
  const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
  return new EwsPeerMissingError(
    KERBEROS_PACKAGE,
    missing
      ? "auth.type 'negotiate' needs the optional peer dependency kerberos: npm install kerberos (it builds against the system's GSSAPI: apt-get install libkrb5-dev, or krb5-devel)"
      : "The kerberos package is installed but its native addon did not load (rebuild it: npm rebuild kerberos, with libkrb5-dev installed)",
    { cause: error },
  );
}

/** `HTTP/mail.contoso.com` → the GSSAPI host-based service name `HTTP@mail.contoso.com`. */
export function hostBasedServiceName(spn: string): string {
  const slash = spn.indexOf('/');
  return `${spn.slice(0, slash)}@${spn.slice(slash + 1)}`;
}

/** GSSAPI texts that say "the KDC could not be reached": worth trying again later. */
const TRANSIENT_GSS = /cannot contact any KDC|cannot find KDC|timed out|connection refused|resource temporarily unavailable/i;

function credentialsError(spn: string, error: unknown): EwsCredentialsError {
  const text = error instanceof Error ? error.message : String(error);
  const retriable = TRANSIENT_GSS.test(text);
  return new EwsCredentialsError(`Kerberos could not produce a ticket for ${spn}: ${text}`, { retriable, cause: error });
}

/**
 * The {@link Authorizer} for Negotiate. `load` is the seam for the optional peer (tests).
 */
export function negotiateAuthorizer(auth: NegotiateAuth, load: KerberosLoader = importKerberos): Authorizer {
  const spnOf = (url: URL): string => auth.spn ?? `HTTP/${url.hostname}`;
  const perCall = (): Authorizer => {
    let client: KerberosClientContext | undefined;
    let spn = '';
    return {
      initial: async (context: AuthContext) => {
        const kerberos = await load();
        spn = spnOf(context.url);
        try {
          client = await kerberos.initializeClient(hostBasedServiceName(spn), {
            ...(auth.principal === undefined ? {} : { principal: auth.principal }),
            mechOID: auth.mechanism === 'kerberos' ? kerberos.GSS_MECH_OID_KRB5 : kerberos.GSS_MECH_OID_SPNEGO,
          });
          return `Negotiate ${await client.step('')}`;
        } catch (error) {
          throw credentialsError(spn, error);
        }
      },
      challenge: async (wwwAuthenticate) => {
        const token = tokenOf(wwwAuthenticate, 'Negotiate');
        if (token === undefined || client === undefined || client.contextComplete) {
          const offered = schemesOf(wwwAuthenticate);
          throw new EwsAuthError(
            401,
            /(^|, )Negotiate($|, )/i.test(offered)
              ? `The server refused the Kerberos ticket for ${spn} (is the SPN registered on the account that runs EWS, and is this client's account allowed?)`
              : `The server does not offer Negotiate (it offers: ${offered})`,
          );
        }
        let next: string;
        try {
          next = await client.step(token);
        } catch (error) {
          throw new EwsAuthError(401, `The server's Negotiate answer was refused by GSSAPI: ${error instanceof Error ? error.message : String(error)}`);
        }
        return next === '' ? undefined : `Negotiate ${next}`;
      },
    };
  };
  return {
    initial: (context) => perCall().initial(context),
    challenge: () => Promise.resolve(undefined),
    forCall: perCall,
  };
}
