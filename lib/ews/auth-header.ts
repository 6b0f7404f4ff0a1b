/**
 * How the transport authenticates a request. Each {@link EwsAuth} becomes an {@link Authorizer}
 * that produces `Authorization` header values round by round, so a challenge/response scheme
 * (NTLM, in `ntlm.ts`) fits the same seam as one-shot schemes (Basic, Bearer).
 */
import { EwsCredentialsError, EwsPeerMissingError, EwsTokenProviderError } from '../errors.js';
import { describeKind, describeValue } from '../validate.js';
import type { Authorizer } from './authorizer.js';
import { negotiateAuthorizer, type NegotiateAuth } from './negotiate.js';
import { ntlmAuthorizer, type NtlmAuth } from './ntlm.js';

export type { NtlmAuth } from './ntlm.js';
export type { NegotiateAuth } from './negotiate.js';
export type { AuthContext, Authorizer } from './authorizer.js';

/** No `Authorization` header (the server authenticates otherwise, or not at all). */
export interface NoAuth {
  /** Discriminant. */
  readonly type: 'none';
}

/** HTTP Basic. Use it only over TLS: the password travels base64-encoded in every request. */
export interface BasicAuth {
  /** Discriminant. */
  readonly type: 'basic';
  /** The account, in the form the server expects (`CONTOSO\svc` or `svc@contoso.com`). */
  readonly username: string;
  /** Its password. Never logged; removed from error messages. */
  readonly password: string;
}

/**
 * OAuth bearer token. With a function, the token is fetched on first use and cached; after an
 * HTTP 401 the function is called once more and the request retried once before failing.
 *
 * A function that throws or rejects fails the call with `EwsTokenProviderError`
 * (`EWS_AUTH_FAILED`), which is not retriable: a source stops instead of retrying a broken
 * credential source forever. To say "try again later" (the token endpoint is briefly down), throw
 * an error whose `retriable` is `true`; network errors (`ECONNRESET`, `ETIMEDOUT`, `EAI_AGAIN`, …,
 * also as the `cause` of a `fetch failed`) and `TimeoutError`s count as transient on their own.
 */
export interface BearerAuth {
  /** Discriminant. */
  readonly type: 'bearer';
  /** The access token, or a function that fetches one (called again after an HTTP 401). */
  readonly token: string | (() => Promise<string>);
}

/** The authentication settings accepted by the transport and the sources. */
export type EwsAuth = NoAuth | BasicAuth | BearerAuth | NtlmAuth | NegotiateAuth;

const noneAuthorizer: Authorizer = {
  initial: () => Promise.resolve(undefined),
  challenge: () => Promise.resolve(undefined),
};

function basicAuthorizer(auth: BasicAuth): Authorizer {
  // RFC 7617 with UTF-8, which is what Exchange/IIS decode.
  const header = `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
  return {
    initial: () => Promise.resolve(header),
    challenge: () => Promise.resolve(undefined),
  };
}

function bearerAuthorizer(auth: BearerAuth): Authorizer {
  const source = auth.token;
  if (typeof source === 'string') {
    const header = `Bearer ${source}`;
    return { initial: () => Promise.resolve(header), challenge: () => Promise.resolve(undefined) };
  }
  // One in-flight fetch shared by concurrent requests, so a burst does not call the provider N times.
  let cached: Promise<string> | undefined;
  const fetchToken = (): Promise<string> => {
    const pending = Promise.resolve()
      .then(source)
      .then(
        (token) => {
          if (typeof token !== 'string' || token === '') {
            throw new EwsTokenProviderError('The bearer token function (auth.token) did not resolve to a non-empty string', { retriable: false });
          }
          return token;
        },
        (error: unknown) => {
          throw tokenProviderError(error);
        },
      );
    cached = pending;
    // A failed fetch must not be cached: the next request asks again.
    pending.catch(() => {
      if (cached === pending) cached = undefined;
    });
    return pending;
  };
  return {
    initial: async () => `Bearer ${await (cached ?? fetchToken())}`,
    challenge: async (_wwwAuthenticate, round) => (round === 1 ? `Bearer ${await fetchToken()}` : undefined),
  };
}

/**
 * Socket and DNS failures (Node's and undici's codes) that say "the token endpoint could not be
 * reached right now". `ENOTFOUND` is left out on purpose: a host name that does not exist is a
 * configuration mistake far more often than an outage.
 */
const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/** How deep a `cause` chain is searched (`fetch failed` → undici's error → the socket's). */
const MAX_CAUSE_DEPTH = 4;

function fieldOf(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/** Whether a token function's failure says it is worth trying again later. */
function isTransientProviderFailure(error: unknown): boolean {
  let current = error;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && typeof current === 'object' && current !== null; depth++) {
    if (fieldOf(current, 'retriable') === true) return true;
    // An explicit "no" (e.g. one of our own non-retriable errors) is not overridden by its cause.
    if (fieldOf(current, 'retriable') === false) return false;
    const code = fieldOf(current, 'code');
    if (typeof code === 'string' && TRANSIENT_NETWORK_CODES.has(code)) return true;
    if (fieldOf(current, 'name') === 'TimeoutError') return true;
    current = fieldOf(current, 'cause');
  }
  return false;
}

/** A system-style code (`ENOENT`, `ECONNRESET`) is safe to quote; anything else could be a secret. */
const QUOTABLE_CODE = /^[A-Z][A-Z0-9_]{1,39}$/;

/**
 * The typed error for a failed bearer token function: retriable only when the function signalled a
 * transient failure. The message quotes at most the failure's system code, never its text (which
 * the function's author controls and might contain the token); the failure itself is the `cause`.
 *
 * @internal
 */
export function tokenProviderError(error: unknown): EwsTokenProviderError | EwsCredentialsError | EwsPeerMissingError {
  if (error instanceof EwsTokenProviderError) return error;
  // Negotiate's own typed failures (no ticket, no addon) already say what went wrong.
  if (error instanceof EwsCredentialsError || error instanceof EwsPeerMissingError) return error;
  const code = fieldOf(error, 'code');
  const quoted = typeof code === 'string' && QUOTABLE_CODE.test(code) ? ` (${code})` : '';
  const retriable = isTransientProviderFailure(error);
  return new EwsTokenProviderError(
    `The bearer token function (auth.token) failed${quoted}; ${retriable ? 'a transient failure, will be retried' : 'not retried: fix the credential source'}`,
    { retriable, cause: error },
  );
}

const authorizers = new WeakMap<EwsAuth, Authorizer>();

/**
 * Returns the {@link Authorizer} for an auth setting. The same settings object always gets the same
 * authorizer, so a bearer token fetched for one request is reused by the next.
 *
 * @throws TypeError when `auth.type` is unknown or a field is missing (the message names the field,
 *   never its value).
 */
export function authorizerFor(auth: EwsAuth | undefined): Authorizer {
  if (auth === undefined) return noneAuthorizer;
  const known = authorizers.get(auth);
  if (known) return known;
  const created = createAuthorizer(auth);
  authorizers.set(auth, created);
  return created;
}

function createAuthorizer(auth: EwsAuth): Authorizer {
  validateAuth(auth);
  switch (auth.type) {
    case 'none':
      return noneAuthorizer;
    case 'basic':
      return basicAuthorizer(auth);
    case 'bearer':
      return bearerAuthorizer(auth);
    case 'ntlm':
      return ntlmAuthorizer(auth);
    case 'negotiate':
      return negotiateAuthorizer(auth);
  }
}

/** Names travel inside NTLM messages: a control character in one can only be a mistake. */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/**
 * Checks an auth setting's shape. Messages name the option, never a secret.
 *
 * @param name - How the option is called in messages. Default `auth`.
 * @throws TypeError
 */
export function validateAuth(auth: unknown, name = 'auth'): asserts auth is EwsAuth {
  if (typeof auth !== 'object' || auth === null) throw new TypeError(`${name} must be an object with a type (got ${describeKind(auth)})`);
  const type = (auth as { type?: unknown }).type;
  switch (type) {
    case 'none':
      return;
    case 'basic': {
      const { username, password } = auth as { username?: unknown; password?: unknown };
      if (typeof username !== 'string' || username === '') throw new TypeError(`${name}.username must be a non-empty string (got ${describeKind(username)})`);
      if (typeof password !== 'string') throw new TypeError(`${name}.password must be a string (got ${describeKind(password)})`);
      return;
    }
    case 'bearer': {
      const { token } = auth as { token?: unknown };
      if (!((typeof token === 'string' && token !== '') || typeof token === 'function')) {
        throw new TypeError(`${name}.token must be a non-empty string or a function returning a promise of one (got ${describeKind(token)})`);
      }
      return;
    }
    case 'ntlm': {
      const { username, password, domain, workstation, spn } = auth as { username?: unknown; password?: unknown; domain?: unknown; workstation?: unknown; spn?: unknown };
      if (typeof username !== 'string' || username === '' || hasControlCharacter(username)) throw new TypeError(`${name}.username must be a non-empty string without control characters (got ${describeKind(username)})`);
      if (typeof password !== 'string') throw new TypeError(`${name}.password must be a string (got ${describeKind(password)})`);
      if (domain !== undefined) {
        if (typeof domain !== 'string' || hasControlCharacter(domain)) throw new TypeError(`${name}.domain must be a string without control characters (got ${describeKind(domain)})`);
        if (username.includes('\\')) throw new TypeError(`${name}.username must not contain a domain (DOMAIN\\user) when ${name}.domain is set`);
      }
      if (workstation !== undefined && (typeof workstation !== 'string' || hasControlCharacter(workstation))) throw new TypeError(`${name}.workstation must be a string without control characters (got ${describeKind(workstation)})`);
      if (spn !== undefined && (typeof spn !== 'string' || spn === '' || hasControlCharacter(spn))) throw new TypeError(`${name}.spn must be a non-empty string without control characters (got ${describeKind(spn)})`);
      return;
    }
    case 'negotiate': {
      const { spn, principal, mechanism } = auth as { spn?: unknown; principal?: unknown; mechanism?: unknown };
      if (spn !== undefined && (typeof spn !== 'string' || !/^[^/@\s]+\/[^/@\s]+$/.test(spn))) throw new TypeError(`${name}.spn must be service/host, e.g. HTTP/mail.contoso.com (got ${describeKind(spn)})`);
      if (principal !== undefined && (typeof principal !== 'string' || principal === '' || hasControlCharacter(principal))) throw new TypeError(`${name}.principal must be a non-empty string without control characters (got ${describeKind(principal)})`);
      if (mechanism !== undefined && mechanism !== 'spnego' && mechanism !== 'kerberos') throw new TypeError(`${name}.mechanism must be "spnego" or "kerberos" (got ${describeValue(mechanism)})`);
      return;
    }
    default:
      throw new TypeError(`${name}.type must be one of "basic", "ntlm", "negotiate", "bearer", "none" (got ${describeValue(type)})`);
  }
}
