/**
 * Options of {@link EwsSimulator.start}, their defaults and their validation.
 */
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { describeKind, describeValue, intInRange, nonEmptyString, oneOf, positiveMs, requireIntInRange } from '../validate.js';
import type { AuthScheme, ExtendedProtection, NegotiateAcceptor, TokenVerdict } from './auth.js';
import type { SimulatedAutodiscover } from './autodiscover.js';

/** Options of `EwsSimulator.start()`. Every one is optional: with none, any Basic credentials work. */
export interface EwsSimulatorOptions {
  /**
   * TCP port to listen on; `0` picks a free one (read it back from `url`).
   * @defaultValue 0
   */
  readonly port?: number;
  /**
   * Address to listen on. Anything but loopback exposes a server that accepts any credentials
   * unless `users` is set.
   * @defaultValue '127.0.0.1'
   */
  readonly host?: string;
  /**
   * Multiplies every duration the protocol measures in minutes: GetStreamingEvents
   * `ConnectionTimeout`, pull `Timeout`, push `StatusFrequency` and the push retry schedule.
   * `0.001` makes a minute last 60 ms.
   * @defaultValue 1
   */
  readonly timeScale?: number;
  /**
   * How long a streaming connection may stay idle before the simulator writes a
   * `ConnectionStatus OK` keep-alive (not scaled by `timeScale`).
   * @defaultValue 30_000
   */
  readonly keepAliveIntervalMs?: number;
  /**
   * Strict credentials: user name ⟶ password, for Basic and NTLM (names may be `DOMAIN\\user`).
   * @defaultValue any Basic/NTLM user is accepted
   */
  readonly users?: Readonly<Record<string, string>>;
  /**
   * Checks a Bearer token: `true` accepts it as an application token (the mailbox then comes from
   * `ExchangeImpersonation` or `X-AnchorMailbox`), a string accepts it as that user, `false` refuses.
   * Setting it offers Bearer in `WWW-Authenticate`.
   * @defaultValue Bearer is not offered
   */
  readonly verifyToken?: (token: string) => TokenVerdict | Promise<TokenVerdict>;
  /**
   * Schemes offered in `WWW-Authenticate` and accepted.
   * @defaultValue `['Basic', 'NTLM']`, plus `'Bearer'` when `verifyToken` is set, plus `'Negotiate'` when `acceptNegotiate` is set
   */
  readonly authSchemes?: readonly AuthScheme[];
  /**
   * Accepts a `Negotiate` (Kerberos/SPNEGO) token: resolve to the user it authenticates (and an
   * optional mutual-authentication token for the answer's `WWW-Authenticate`), or `undefined` to
   * refuse. Typically the `kerberos` package's GSSAPI server with a keytab. Setting it offers
   * Negotiate. NTLM sent inside Negotiate is handled by the simulator itself.
   * @defaultValue Negotiate is not offered
   */
  readonly acceptNegotiate?: NegotiateAcceptor;
  /**
   * Serve HTTPS with this certificate and key (PEM) instead of HTTP; `url` is then
   * `https://127.0.0.1:PORT/…`, so the certificate should name `IP:127.0.0.1`.
   * @defaultValue plain HTTP
   */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /**
   * Windows Extended Protection for NTLM over TLS (needs `tls`): `'require'` refuses an
   * AUTHENTICATE message without the channel binding of this server's certificate, `'allow'`
   * refuses only a wrong one, `'off'` checks nothing.
   * @defaultValue 'off'
   */
  readonly extendedProtection?: ExtendedProtection;
  /**
   * Autodiscover (SOAP GetUserSettings at `/autodiscover/autodiscover.svc`, POX at
   * `/autodiscover/autodiscover.xml`), behind the same authentication; `false` answers 404 there.
   * @defaultValue every address gets this simulator's EWS URL and GroupingInformation `SIM-MBX01`
   */
  readonly autodiscover?: SimulatedAutodiscover | false;
  /**
   * Impersonation rights: caller ⟶ the SMTP addresses it may impersonate, or `'*'` for any.
   * Callers not listed get `ErrorImpersonateUserDenied`.
   * @defaultValue everyone may impersonate anyone
   */
  readonly impersonation?: Readonly<Record<string, readonly string[] | '*'>>;
  /**
   * Create a mailbox for every new user and impersonated address on first use. When `false`, only
   * mailboxes named in `mailboxes` (or made by `deliver()`) exist; others get `ErrorNonExistentMailbox`.
   * @defaultValue true
   */
  readonly autoCreateMailboxes?: boolean;
  /** Mailboxes that exist from the start. @defaultValue none */
  readonly mailboxes?: readonly string[];
  /**
   * Server affinity (Exchange 2013+): an anchored Subscribe (`X-AnchorMailbox` +
   * `X-PreferServerAffinity: true`) sets `X-BackEndOverrideCookie`, and every later call about the
   * subscription without that cookie gets `ErrorSubscriptionNotFound`.
   * @defaultValue false
   */
  readonly affinity?: boolean;
  /** Subscriptions one user may hold (EWSMaxSubscriptions) before `ErrorExceededSubscriptionCount`. @defaultValue 5000 */
  readonly maxSubscriptionsPerUser?: number;
  /**
   * Open GetStreamingEvents connections per mailbox (HangingConnectionLimit) before
   * `ErrorExceededConnectionCount`.
   * @defaultValue 10
   */
  readonly maxStreamingConnectionsPerMailbox?: number;
  /** Largest request body accepted; larger ones get HTTP 413. @defaultValue 1_048_576 */
  readonly maxRequestBytes?: number;
  /**
   * How many requests `sim.requests` keeps (the oldest go first): bounds the memory of a simulator
   * that runs for long (the `simulator` command keeps 1,000). @defaultValue Infinity (tests read
   * every request)
   */
  readonly maxRecordedRequests?: number;
  /**
   * An extra request validator, run after the simulator's own checks — typically a real XSD
   * validator, so a client cannot drift from the schema. Returned messages make the request fail
   * with `ErrorSchemaValidation`; `undefined` or `[]` means valid. A throwing validator fails the
   * request with `ErrorInternalServerError`.
   * @defaultValue none
   */
  readonly validateRequest?: (xml: string) => readonly string[] | undefined | Promise<readonly string[] | undefined>;
  /**
   * Identifies this simulator inside its watermarks, subscription ids and sync states, so that ids of
   * one simulator are unknown to another (as on a different mailbox database).
   * @defaultValue a per-process counter (1, 2, 3…)
   */
  readonly serverId?: number;
  /** Diagnostics (requests, faults, push failures). @defaultValue silent */
  readonly logger?: Logger;
}

/** Options with their defaults applied. */
export interface ResolvedOptions {
  readonly port: number;
  readonly host: string;
  readonly timeScale: number;
  readonly keepAliveIntervalMs: number;
  readonly maxRecordedRequests: number;
  readonly users: Readonly<Record<string, string>> | undefined;
  readonly verifyToken: EwsSimulatorOptions['verifyToken'];
  readonly authSchemes: readonly AuthScheme[];
  readonly acceptNegotiate: NegotiateAcceptor | undefined;
  readonly tls: EwsSimulatorOptions['tls'];
  readonly extendedProtection: ExtendedProtection;
  readonly autodiscover: SimulatedAutodiscover | false;
  readonly impersonation: EwsSimulatorOptions['impersonation'];
  readonly autoCreateMailboxes: boolean;
  readonly mailboxes: readonly string[];
  readonly affinity: boolean;
  readonly maxSubscriptionsPerUser: number;
  readonly maxStreamingConnectionsPerMailbox: number;
  readonly maxRequestBytes: number;
  readonly validateRequest: EwsSimulatorOptions['validateRequest'];
  readonly serverId: number;
  readonly logger: Logger;
}

let nextServerId = 1;

const AUTH_SCHEMES: readonly AuthScheme[] = ['Basic', 'NTLM', 'Bearer', 'Negotiate'];

function positive(name: string, value: number | undefined, fallback: number, integer: boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new RangeError(`${name} must be a positive ${integer ? 'integer' : 'number'} (got ${describeValue(value)})`);
  }
  return value;
}

/** Applies defaults and validates; throws a `RangeError`/`TypeError` naming the bad option. */
export function resolveOptions(options: EwsSimulatorOptions): ResolvedOptions {
  const schemes: readonly AuthScheme[] = options.authSchemes ?? [
    ...(options.acceptNegotiate ? ['Negotiate' as const] : []),
    'Basic',
    'NTLM',
    ...(options.verifyToken ? ['Bearer' as const] : []),
  ];
  if (!Array.isArray(schemes)) throw new TypeError(`authSchemes must be an array (got ${describeValue(schemes)})`);
  schemes.forEach((s: unknown, i) => {
    if (!(AUTH_SCHEMES as readonly unknown[]).includes(s)) {
      throw new RangeError(`authSchemes[${i}] must be one of ${AUTH_SCHEMES.map((a) => JSON.stringify(a)).join(', ')} (got ${describeValue(s)})`);
    }
  });
  if (schemes.length === 0) throw new RangeError('authSchemes must not be empty');
  if (schemes.includes('Bearer') && !options.verifyToken) throw new TypeError('authSchemes includes Bearer, so verifyToken is required');
  if (schemes.includes('Negotiate') && !options.acceptNegotiate && !schemes.includes('NTLM')) {
    throw new TypeError('authSchemes includes Negotiate without NTLM, so acceptNegotiate is required');
  }
  const extendedProtection = oneOf(options.extendedProtection, 'extendedProtection', ['off', 'allow', 'require'], 'off');
  const tls: unknown = options.tls;
  if (tls !== undefined) {
    // The key is a secret: only the kind of value is named.
    if (typeof tls !== 'object' || tls === null || Array.isArray(tls)) throw new TypeError(`tls must be an object with key and cert (PEM) (got ${describeKind(tls)})`);
    for (const field of ['key', 'cert'] as const) {
      const value = (tls as Record<string, unknown>)[field];
      if (!value) throw new TypeError(`tls.${field} must be a PEM string or Buffer (got ${describeKind(value)})`);
    }
  }
  if (extendedProtection !== 'off' && options.tls === undefined) throw new TypeError('extendedProtection needs tls: channel bindings exist only on a TLS connection');
  const serverId = requireIntInRange(options.serverId ?? nextServerId++, 'serverId', 0, 0xffff);
  const port = intInRange(options.port, 'port', 0, 0, 65535);
  const host = nonEmptyString(options.host ?? '127.0.0.1', 'host');
  return {
    port,
    host,
    timeScale: positive('timeScale', options.timeScale, 1, false),
    keepAliveIntervalMs: positiveMs(options.keepAliveIntervalMs, 'keepAliveIntervalMs', 30_000),
    maxRecordedRequests:
      options.maxRecordedRequests === undefined || options.maxRecordedRequests === Infinity ? Infinity : requireIntInRange(options.maxRecordedRequests, 'maxRecordedRequests', 0, 1_000_000_000),
    users: options.users,
    verifyToken: options.verifyToken,
    authSchemes: schemes,
    acceptNegotiate: options.acceptNegotiate,
    tls: options.tls,
    extendedProtection,
    autodiscover: options.autodiscover ?? {},
    impersonation: options.impersonation,
    autoCreateMailboxes: options.autoCreateMailboxes ?? true,
    mailboxes: options.mailboxes ?? [],
    affinity: options.affinity ?? false,
    maxSubscriptionsPerUser: positive('maxSubscriptionsPerUser', options.maxSubscriptionsPerUser, 5000, true),
    maxStreamingConnectionsPerMailbox: positive('maxStreamingConnectionsPerMailbox', options.maxStreamingConnectionsPerMailbox, 10, true),
    maxRequestBytes: positive('maxRequestBytes', options.maxRequestBytes, 1_048_576, true),
    validateRequest: options.validateRequest,
    serverId,
    logger: options.logger ?? silentLogger,
  };
}
