/**
 * NTLM (Windows integrated authentication) as the transport's {@link Authorizer}: NTLMv2 only, the
 * messages built by `ntlm-messages.ts` (MS-NLMP): Unicode names, a MIC when the challenge carries
 * a timestamp, and over HTTPS the channel binding token of the very connection that carries the
 * AUTHENTICATE message, which Exchange's Extended Protection requires.
 *
 * NTLM authenticates a TCP connection, not a request: the transport runs each request on a
 * connection of its own (see `connectionBound`), sends the Type 1 (NEGOTIATE) message without a
 * body, answers the server's 401 + Type 2 (CHALLENGE) with the Type 3 (AUTHENTICATE) message on
 * the same socket, and that socket then carries the request.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { EwsAuthError } from '../errors.js';
import type { AuthContext, Authorizer } from './authorizer.js';
import {
  authenticateMessage,
  channelBindingsHash,
  fileTimeNow,
  negotiateMessage,
  NtlmMessageError,
  parseChallengeMessage,
  tlsServerEndPoint,
  type NtlmChallenge,
} from './ntlm-messages.js';

/**
 * NTLMv2 (Windows integrated authentication), what most on-premises Exchange servers offer. NTLMv1
 * and LM are never used: a server whose challenge allows only those is refused.
 */
export interface NtlmAuth {
  /** Discriminant. */
  readonly type: 'ntlm';
  /** The account: `alice`, `CONTOSO\\alice` or `alice@contoso.com`. Required. */
  readonly username: string;
  /** The account's password. Required. */
  readonly password: string;
  /**
   * The account's domain. Default: taken from `username` when it is `DOMAIN\\user`; empty for a
   * user principal name (`alice@contoso.com`, which Windows resolves itself); otherwise the domain
   * the server names in its challenge.
   */
  readonly domain?: string;
  /** The workstation name sent in the Type 3 message (servers log it). Default: this machine's host name, as NetBIOS would have it. */
  readonly workstation?: string;
  /**
   * The service principal name sent as `MsvAvTargetName` (Extended Protection's service binding,
   * checked where no TLS channel reaches the server, e.g. behind a TLS-offloading proxy).
   * Default: `HTTP/<host of the EWS URL>`.
   */
  readonly spn?: string;
}

interface Account {
  readonly user: string;
  /** `undefined`: use the server's target name. */
  readonly domain: string | undefined;
  readonly workstation: string;
}

function accountOf(auth: NtlmAuth): Account {
  const workstation = auth.workstation ?? defaultWorkstation();
  if (auth.domain !== undefined) return { user: auth.username, domain: auth.domain, workstation };
  const backslash = auth.username.indexOf('\\');
  if (backslash > 0) return { user: auth.username.slice(backslash + 1), domain: auth.username.slice(0, backslash), workstation };
  if (auth.username.includes('@')) return { user: auth.username, domain: '', workstation };
  return { user: auth.username, domain: undefined, workstation };
}

function defaultWorkstation(): string {
  // NetBIOS names are at most 15 characters; a Linux host name is often an FQDN.
  return (hostname().split('.')[0] ?? '').toUpperCase().slice(0, 15);
}

/** The scheme names among `WWW-Authenticate` values, for error messages: `NTLM, Negotiate`. */
export function schemesOf(wwwAuthenticate: readonly string[]): string {
  const names = wwwAuthenticate.map((value) => value.trim().split(/\s+/)[0] ?? '').filter((name) => name !== '');
  return names.length === 0 ? 'none' : [...new Set(names)].join(', ');
}

/** The base64 token of `scheme` among the `WWW-Authenticate` values, if any. */
export function tokenOf(wwwAuthenticate: readonly string[], scheme: string): string | undefined {
  const pattern = new RegExp(`^\\s*${scheme}\\s+([A-Za-z0-9+/]+=*)\\s*$`, 'i');
  for (const value of wwwAuthenticate) {
    const match = pattern.exec(value);
    if (match?.[1] !== undefined) return match[1];
  }
  return undefined;
}

/**
 * The channel binding hash for the TLS connection `socket` (the server certificate's
 * `tls-server-end-point`), or `undefined` on a plain connection.
 *
 * @throws EwsAuthError when the connection is TLS but its peer certificate cannot be read.
 */
export function channelBindingsOf(socket: Socket | undefined): Buffer | undefined {
  if (!(socket instanceof TLSSocket)) return undefined;
  const raw = socket.getPeerCertificate(false).raw as Buffer | undefined;
  if (raw === undefined || raw.length === 0) {
    throw new EwsAuthError(401, "The server's TLS certificate could not be read for the channel binding (Extended Protection)");
  }
  try {
    return channelBindingsHash(tlsServerEndPoint(raw));
  } catch (error) {
    throw new EwsAuthError(401, error instanceof Error ? error.message : 'The server certificate could not be parsed for the channel binding');
  }
}

/** The Type 3 header for a challenge. Throws `EwsAuthError` (never with a credential in it) when it cannot be answered safely. */
function answer(auth: NtlmAuth, account: Account, negotiate: Buffer, type2Base64: string, context: AuthContext): string {
  let challenge: NtlmChallenge;
  try {
    challenge = parseChallengeMessage(Buffer.from(type2Base64, 'base64'));
  } catch {
    throw new EwsAuthError(401, 'The server sent an NTLM challenge that could not be decoded');
  }
  const channelBindings = channelBindingsOf(context.socket);
  try {
    const { message } = authenticateMessage({
      negotiate,
      challenge,
      user: account.user,
      domain: account.domain ?? challenge.targetName,
      workstation: account.workstation,
      password: auth.password,
      ...(channelBindings === undefined ? {} : { channelBindings }),
      targetName: auth.spn ?? `HTTP/${context.url.hostname}`,
      clientChallenge: randomBytes(8),
      timestamp: fileTimeNow(),
    });
    return `NTLM ${message.toString('base64')}`;
  } catch (error) {
    if (error instanceof NtlmMessageError) throw new EwsAuthError(401, error.message);
    throw error;
  }
}

/**
 * The {@link Authorizer} for NTLM: round 0 sends the Type 1 message, the first 401 is answered with
 * the Type 3 message computed from its Type 2 challenge and the connection it arrived on, a second
 * 401 means wrong credentials (or, under Extended Protection, a binding the server refused).
 */
export function ntlmAuthorizer(auth: NtlmAuth): Authorizer {
  const account = accountOf(auth);
  const negotiate = negotiateMessage();
  const header = `NTLM ${negotiate.toString('base64')}`;
  return {
    connectionBound: true,
    initial: () => Promise.resolve(header),
    challenge: (wwwAuthenticate, round, context) => {
      if (round === 2 && context.socket instanceof TLSSocket) {
        // Over TLS a refused AUTHENTICATE is either the password or, under Extended Protection, the
        // binding: the server cannot tell us which, so the message names both.
        return Promise.reject(
          new EwsAuthError(
            401,
            'NTLM authentication failed (HTTP 401): wrong credentials, or the server refused the channel binding of this TLS connection (Extended Protection; a TLS-intercepting proxy between the bridge and Exchange changes the certificate)',
          ),
        );
      }
      if (round !== 1) return Promise.resolve(undefined);
      const type2 = tokenOf(wwwAuthenticate, 'NTLM');
      if (type2 === undefined) {
        const offered = schemesOf(wwwAuthenticate);
        const ntlmOffered = /(^|, )NTLM($|, )/i.test(offered);
        return Promise.reject(
          new EwsAuthError(
            401,
            ntlmOffered
              ? 'The server answered the NTLM negotiation without a challenge (did a proxy switch connections?)'
              : `The server does not offer NTLM (it offers: ${offered})`,
          ),
        );
      }
      try {
        return Promise.resolve(answer(auth, account, negotiate, type2, context));
      } catch (error) {
        return Promise.reject(error as Error);
      }
    },
  };
}
