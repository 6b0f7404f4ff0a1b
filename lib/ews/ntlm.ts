/**
 * NTLM (Windows integrated authentication) as the transport's {@link Authorizer}: NTLMv2 only,
 * messages built by `@ewsjs/ntlm-client` (the library ews-javascript-api uses), whose NT hash runs
 * MD4 in pure JavaScript (js-md4's incremental API), so it works on Node 20 where OpenSSL 3 has
 * no MD4 without the legacy provider.
 *
 * NTLM authenticates a TCP connection, not a request: the transport runs each request on a
 * connection of its own (see `connectionBound`), sends the Type 1 (NEGOTIATE) message without a
 * body, answers the server's 401 + Type 2 (CHALLENGE) with the Type 3 (AUTHENTICATE) message on
 * the same socket, and that socket then carries the request.
 */
import { hostname } from 'node:os';
import ntlmClient from '@ewsjs/ntlm-client';
import { EwsAuthError } from '../errors.js';
import type { Authorizer } from './auth-header.js';

/**
 * NTLMv2 (Windows integrated authentication), what most on-premises Exchange servers offer. NTLMv1
 * and LM are never used: a server whose challenge allows only those is refused.
 */
export interface NtlmAuth {
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
}

// The library writes the Type 3 message into a fixed 1024-byte buffer and silently truncates
// anything beyond it, which would corrupt the message.
const TYPE3_BUFFER_BYTES = 1024;
const NEGOTIATE_TARGET_INFO = 0x00800000;

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

function schemesOf(wwwAuthenticate: readonly string[]): string {
  const names = wwwAuthenticate.map((value) => value.trim().split(/\s+/)[0] ?? '').filter((name) => name !== '');
  return names.length === 0 ? 'none' : [...new Set(names)].join(', ');
}

/** The base64 Type 2 message among the `WWW-Authenticate` values, if any. */
function type2Of(wwwAuthenticate: readonly string[]): string | undefined {
  for (const value of wwwAuthenticate) {
    const match = /^\s*NTLM\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(value);
    if (match?.[1] !== undefined) return match[1];
  }
  return undefined;
}

/** The Type 3 header for a challenge. Throws `EwsAuthError` (never with a credential in it) when it cannot be answered safely. */
function authenticateMessage(auth: NtlmAuth, account: Account, type2Base64: string): string {
  let type2: ReturnType<typeof ntlmClient.decodeType2Message>;
  try {
    type2 = ntlmClient.decodeType2Message(type2Base64);
  } catch {
    throw new EwsAuthError(401, 'The server sent an NTLM challenge that could not be decoded');
  }
  // The library picks NTLMv1 unless the server sets extended session security; NTLMv1 is crackable
  // offline, so we always answer NTLMv2, which needs the server's target information.
  if (!(type2.flags & NEGOTIATE_TARGET_INFO) || type2.targetInfo === undefined || type2.targetInfo.buffer.length === 0) {
    throw new EwsAuthError(401, 'The server\'s NTLM challenge carries no target information, so only NTLMv1 would be possible; NTLMv1 is refused');
  }
  type2.version = 2;
  const domain = account.domain ?? type2.targetName;
  const names = [domain, account.user, account.workstation];
  if (type2.encoding === 'ascii' && names.some((name) => /[^\x20-\x7e]/.test(name))) {
    throw new EwsAuthError(401, 'The server negotiated OEM (non-Unicode) NTLM, which cannot carry this account or workstation name');
  }
  const nameBytes = names.reduce((sum, name) => sum + (type2.encoding === 'ascii' ? name.length : name.length * 2), 0);
  // Header (64) + LMv2 response (24) + NTLMv2 response (48 + target info) + names.
  if (64 + 24 + 48 + type2.targetInfo.buffer.length + nameBytes > TYPE3_BUFFER_BYTES) {
    throw new EwsAuthError(401, 'The NTLM authenticate message would exceed 1024 bytes (very long target information or names)');
  }
  return ntlmClient.createType3Message(type2, account.user, auth.password, account.workstation, domain);
}

/**
 * The {@link Authorizer} for NTLM: round 0 sends the Type 1 message, the first 401 is answered with
 * the Type 3 message computed from its Type 2 challenge, a second 401 means wrong credentials.
 */
export function ntlmAuthorizer(auth: NtlmAuth): Authorizer {
  const account = accountOf(auth);
  // The Type 1 fields for domain and workstation are optional and, without the flags that announce
  // them (the library sets neither), ignored by servers: send them empty.
  const negotiate = ntlmClient.createType1Message('', '');
  return {
    connectionBound: true,
    initial: () => Promise.resolve(negotiate),
    challenge: (wwwAuthenticate, round) => {
      if (round !== 1) return Promise.resolve(undefined);
      const type2 = type2Of(wwwAuthenticate);
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
        return Promise.resolve(authenticateMessage(auth, account, type2));
      } catch (error) {
        return Promise.reject(error as Error);
      }
    },
  };
}
