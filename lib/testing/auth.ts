/**
 * Authentication the way Exchange's IIS front end does it: Basic, Bearer (checked by a callback)
 * and NTLM — a connection-bound challenge/response handshake on one keep-alive socket
 * (Type 1 ⟶ 401 with a Type 2 challenge ⟶ Type 3), after which the socket stays authenticated.
 *
 * NTLM scope: the Type 3 message is checked structurally (signature, type, every security buffer
 * inside the message, an NT response of NTLM/NTLMv2 size). With `users` set, it must name a known
 * user and carry a valid NTLMv2 response: the NTProofStr is recomputed (HMAC-MD5 keyed by
 * NTOWFv2, over the server challenge and the client's blob) from the configured password, as a
 * domain controller at LmCompatibilityLevel 5 does; NTLMv1 responses are refused. Without `users`,
 * any structurally valid Type 3 passes. MD4 (for the NT hash) comes from js-md4's pure-JavaScript
 * path, since Node 20's OpenSSL 3 has no MD4 without the legacy provider.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import md4 from 'js-md4';

/** Authentication schemes the simulator can offer. */
export type AuthScheme = 'Basic' | 'NTLM' | 'Bearer';

/** The result of a token check: `true`/`false`, or the user name the token stands for. */
export type TokenVerdict = boolean | string;

/** What the {@link Authenticator} needs to know. */
export interface AuthSettings {
  readonly schemes: readonly AuthScheme[];
  readonly users: Readonly<Record<string, string>> | undefined;
  readonly verifyToken: ((token: string) => TokenVerdict | Promise<TokenVerdict>) | undefined;
}

/** Who made a request. */
export interface Principal {
  /** User name as authenticated (Basic/NTLM), the user a token stands for, or `app` for an app token. */
  readonly user: string;
  readonly scheme: AuthScheme;
  /** An application token (no user): it must name a mailbox through impersonation. */
  readonly appOnly?: boolean;
}

/** The outcome of authenticating one request. */
export type AuthOutcome =
  | { readonly ok: true; readonly principal: Principal }
  /** `ntlmChallenge`: the Type 2 message to send (handshake in progress), else a plain refusal. */
  | { readonly ok: false; readonly ntlmChallenge?: string };

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');
const NEGOTIATE_UNICODE = 0x1;
const FLAGS_TYPE2 =
  0x1 /* UNICODE */ | 0x4 /* REQUEST_TARGET */ | 0x200 /* NTLM */ | 0x8000 /* ALWAYS_SIGN */ | 0x10000 /* TARGET_TYPE_DOMAIN */ |
  0x80000 /* EXTENDED_SESSIONSECURITY */ | 0x800000 /* TARGET_INFO */ | 0x20000000 /* 128 */ | 0x80000000; /* 56 */

interface NtlmSocketState {
  challenge?: Buffer;
  principal?: Principal;
}

/** A parsed NTLM Type 3 (AUTHENTICATE) message. */
export interface NtlmAuthenticate {
  readonly domain: string;
  readonly user: string;
  readonly workstation: string;
  readonly ntResponse: Buffer;
  readonly lmResponse: Buffer;
  readonly flags: number;
}

function ntlmType(bytes: Buffer): number | undefined {
  if (bytes.length < 12 || !bytes.subarray(0, 8).equals(SIGNATURE)) return undefined;
  return bytes.readUInt32LE(8);
}

function utf16(text: string): Buffer {
  return Buffer.from(text, 'utf16le');
}

/** Builds a Type 2 (CHALLENGE) message for a server challenge. */
export function ntlmChallengeMessage(challenge: Buffer, targetName = 'SIMULATOR'): Buffer {
  const target = utf16(targetName);
  const avPair = (id: number, value: Buffer): Buffer => {
    const head = Buffer.alloc(4);
    head.writeUInt16LE(id, 0);
    head.writeUInt16LE(value.length, 2);
    return Buffer.concat([head, value]);
  };
  const targetInfo = Buffer.concat([avPair(2, target), avPair(1, utf16('SIM-MBX01')), avPair(0, Buffer.alloc(0))]);
  const header = Buffer.alloc(48);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(2, 8);
  header.writeUInt16LE(target.length, 12);
  header.writeUInt16LE(target.length, 14);
  header.writeUInt32LE(48, 16);
  header.writeUInt32LE(FLAGS_TYPE2 >>> 0, 20);
  challenge.copy(header, 24);
  header.writeUInt16LE(targetInfo.length, 40);
  header.writeUInt16LE(targetInfo.length, 42);
  header.writeUInt32LE(48 + target.length, 44);
  return Buffer.concat([header, target, targetInfo]);
}

/** Parses a Type 3 (AUTHENTICATE) message; `undefined` when it is not structurally valid. */
export function parseNtlmAuthenticate(bytes: Buffer): NtlmAuthenticate | undefined {
  if (ntlmType(bytes) !== 3 || bytes.length < 64) return undefined;
  const field = (at: number): Buffer | undefined => {
    const len = bytes.readUInt16LE(at);
    const offset = bytes.readUInt32LE(at + 4);
    if (len === 0) return Buffer.alloc(0);
    if (offset < 64 || offset + len > bytes.length) return undefined;
    return bytes.subarray(offset, offset + len);
  };
  const flags = bytes.readUInt32LE(60);
  const [lm, nt, domain, user, workstation] = [12, 20, 28, 36, 44].map(field);
  if (!lm || !nt || !domain || !user || !workstation) return undefined;
  // NTLMv1 responses are 24 bytes; NTLMv2 ones are a 16-byte proof plus a blob of at least 28.
  if (nt.length !== 24 && nt.length < 44) return undefined;
  const text = (b: Buffer): string => (flags & NEGOTIATE_UNICODE ? b.toString('utf16le') : b.toString('latin1'));
  const userName = text(user);
  if (userName === '') return undefined;
  return { domain: text(domain), user: userName, workstation: text(workstation), ntResponse: nt, lmResponse: lm, flags };
}

/** The NT hash of a password: MD4 over its UTF-16LE bytes (MS-NLMP NTOWFv1). */
export function ntHash(password: string): Buffer {
  return Buffer.from(md4.create().update(Buffer.from(password, 'utf16le')).digest());
}

/** MS-NLMP NTOWFv2: HMAC-MD5 keyed by the NT hash, over UTF-16LE(uppercase(user) + domain). */
export function ntowfV2(password: string, user: string, domain: string): Buffer {
  return createHmac('md5', ntHash(password))
    .update(Buffer.from(user.toUpperCase() + domain, 'utf16le'))
    .digest();
}

// NTProofStr (16) + blob header: RespType, HiRespType, reserved (6), timestamp (8), client challenge (8), reserved (4).
const NTLMV2_MIN_RESPONSE_BYTES = 16 + 28;

/**
 * Checks an NTLMv2 response (`NTProofStr` ‖ blob) against a password: the proof must equal
 * HMAC-MD5(NTOWFv2, server challenge ‖ blob).
 */
export function verifyNtlmV2Response(ntResponse: Buffer, serverChallenge: Buffer, password: string, user: string, domain: string): boolean {
  if (ntResponse.length < NTLMV2_MIN_RESPONSE_BYTES) return false;
  const proof = ntResponse.subarray(0, 16);
  const blob = ntResponse.subarray(16);
  if (blob[0] !== 0x01 || blob[1] !== 0x01) return false;
  const expected = createHmac('md5', ntowfV2(password, user, domain)).update(serverChallenge).update(blob).digest();
  return timingSafeEqual(expected, proof);
}

/** Authenticates requests; holds the per-socket NTLM state. */
export class Authenticator {
  private readonly ntlm = new WeakMap<Socket, NtlmSocketState>();

  constructor(private readonly settings: AuthSettings) {}

  /** The `WWW-Authenticate` values of a 401 (or only the NTLM challenge mid-handshake). */
  challenges(ntlmChallenge?: string): string[] {
    if (ntlmChallenge !== undefined) return [`NTLM ${ntlmChallenge}`];
    return this.settings.schemes.map((s) => (s === 'Basic' ? 'Basic realm="127.0.0.1"' : s === 'Bearer' ? 'Bearer' : 'NTLM'));
  }

  /** Authenticates one request. Never throws (a throwing token checker counts as a refusal). */
  async authenticate(req: IncomingMessage): Promise<AuthOutcome> {
    const header = req.headers.authorization;
    const socket = req.socket;
    if (header === undefined) {
      const bound = this.ntlm.get(socket)?.principal;
      return bound ? { ok: true, principal: bound } : { ok: false };
    }
    const space = header.indexOf(' ');
    const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
    const value = space < 0 ? '' : header.slice(space + 1).trim();
    if (scheme === 'basic' && this.offers('Basic')) return this.basic(value);
    if (scheme === 'bearer' && this.offers('Bearer')) return this.bearer(value);
    if ((scheme === 'ntlm' || scheme === 'negotiate') && this.offers('NTLM')) return this.ntlmStep(socket, value);
    return { ok: false };
  }

  private offers(scheme: AuthScheme): boolean {
    return this.settings.schemes.includes(scheme);
  }

  private knownUser(user: string, domain?: string): string | undefined {
    const { users } = this.settings;
    if (!users) return user;
    const wanted = [user, domain ? `${domain}\\${user}` : undefined].filter((x): x is string => x !== undefined).map((x) => x.toLowerCase());
    return Object.keys(users).find((name) => wanted.includes(name.toLowerCase()));
  }

  private basic(value: string): AuthOutcome {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return { ok: false };
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const { users } = this.settings;
    if (users) {
      const name = this.knownUser(user);
      if (name === undefined || users[name] !== password) return { ok: false };
      return { ok: true, principal: { user: name, scheme: 'Basic' } };
    }
    return { ok: true, principal: { user, scheme: 'Basic' } };
  }

  private async bearer(token: string): Promise<AuthOutcome> {
    const verify = this.settings.verifyToken;
    if (!verify || token === '') return { ok: false };
    let verdict: TokenVerdict;
    try {
      verdict = await verify(token);
    } catch {
      return { ok: false };
    }
    if (verdict === false || verdict === '') return { ok: false };
    return { ok: true, principal: verdict === true ? { user: 'app', scheme: 'Bearer', appOnly: true } : { user: verdict, scheme: 'Bearer' } };
  }

  private ntlmStep(socket: Socket, value: string): AuthOutcome {
    const bytes = Buffer.from(value, 'base64');
    const type = ntlmType(bytes);
    if (type === 1) {
      const challenge = randomBytes(8);
      this.ntlm.set(socket, { challenge });
      return { ok: false, ntlmChallenge: ntlmChallengeMessage(challenge).toString('base64') };
    }
    const state = this.ntlm.get(socket);
    this.ntlm.delete(socket);
    // A Type 3 is only valid on the socket that received the challenge (NTLM is connection-bound).
    if (type !== 3 || !state?.challenge) return { ok: false };
    const message = parseNtlmAuthenticate(bytes);
    if (!message || !this.verifyNtlmProof(message, state.challenge)) return { ok: false };
    const name = this.knownUser(message.user, message.domain);
    if (name === undefined) return { ok: false };
    const principal: Principal = { user: name, scheme: 'NTLM' };
    this.ntlm.set(socket, { principal });
    return { ok: true, principal };
  }

  /**
   * Checks the Type 3 message's proof of the password. With `users` set: an NTLMv2 response
   * computed from that user's configured password (user name and domain as the message gives
   * them); NTLMv1 is refused. Without `users` every structurally valid response passes: the
   * handshake shape is checked, not a password.
   */
  protected verifyNtlmProof(message: NtlmAuthenticate, challenge: Buffer): boolean {
    const { users } = this.settings;
    if (!users) return true;
    const name = this.knownUser(message.user, message.domain);
    const password = name === undefined ? undefined : users[name];
    if (password === undefined) return false;
    return verifyNtlmV2Response(message.ntResponse, challenge, password, message.user, message.domain);
  }
}
