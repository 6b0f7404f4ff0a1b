/**
 * Authentication the way Exchange's IIS front end does it: Basic, Bearer (checked by a callback),
 * NTLM — a connection-bound challenge/response handshake on one keep-alive socket (Type 1 ⟶ 401
 * with a Type 2 challenge ⟶ Type 3), after which the socket stays authenticated — and Negotiate
 * (Kerberos through a callback, or NTLM inside Negotiate).
 *
 * NTLM scope: the Type 3 message is checked structurally (signature, type, every security buffer
 * inside the message, an NT response of NTLM/NTLMv2 size). With `users` set, it must name a known
 * user and carry a valid NTLMv2 response: the NTProofStr is recomputed (HMAC-MD5 keyed by
 * NTOWFv2, over the server challenge and the client's blob) from the configured password, as a
 * domain controller at LmCompatibilityLevel 5 does, and a MIC announced in `MsvAvFlags` is
 * verified; NTLMv1 responses are refused. Without `users`, any structurally valid Type 3 passes.
 * The challenge carries `MsvAvTimestamp` (so clients add a MIC), and over TLS Extended Protection
 * checks `MsvAvChannelBindings` against this server's own certificate.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import {
  AV_FLAG_MIC_PRESENT,
  AV_ID,
  channelBindingsHash,
  encodeAvPairs,
  fileTimeNow,
  NTLM_FLAGS,
  ntowfV1,
  ntowfV2 as ntowfV2Impl,
  parseAvPairs,
  tlsServerEndPoint,
  type AvPair,
} from '../ews/ntlm-messages.js';

/** Authentication schemes the simulator can offer. */
export type AuthScheme = 'Basic' | 'NTLM' | 'Bearer' | 'Negotiate';

/** The result of a token check: `true`/`false`, or the user name the token stands for. */
export type TokenVerdict = boolean | string;

/**
 * Windows Extended Protection for Authentication, as IIS's `extendedProtection tokenChecking`:
 * `'off'` ignores channel bindings (`None`), `'allow'` checks a binding the client sends but
 * accepts clients that send none (`Allow`), `'require'` refuses an NTLM AUTHENTICATE message
 * without the binding of this server's certificate (`Require`). Needs TLS.
 */
export type ExtendedProtection = 'off' | 'allow' | 'require';

/** Accepts a Negotiate (SPNEGO/Kerberos) token: the user it authenticates, or `undefined` to refuse. */
export type NegotiateAcceptor = (token: string) => Promise<{ readonly user: string; readonly responseToken?: string } | undefined>;

/** What the {@link Authenticator} needs to know. */
export interface AuthSettings {
  readonly schemes: readonly AuthScheme[];
  readonly users: Readonly<Record<string, string>> | undefined;
  readonly verifyToken: ((token: string) => TokenVerdict | Promise<TokenVerdict>) | undefined;
  /** Default `'off'`. */
  readonly extendedProtection?: ExtendedProtection;
  /** Checks Negotiate tokens (required when `schemes` has `'Negotiate'`). */
  readonly acceptNegotiate?: NegotiateAcceptor;
}

/** How an NTLM logon went, beyond "accepted": what the simulator verified. */
export interface NtlmLogonDetails {
  /** The AUTHENTICATE message carried a MIC (and, with `users`, it was verified). */
  readonly mic: boolean;
  /**
   * `MsvAvChannelBindings`: absent, all zero (a binding-aware client without a channel), matching
   * this server's certificate, or for another certificate (a relay, or a TLS-intercepting proxy).
   */
  readonly channelBinding: 'absent' | 'zero' | 'match' | 'mismatch';
  /** Names were exchanged in Unicode (the NEGOTIATE message asked for it). */
  readonly unicode: boolean;
}

/** Who made a request. */
export interface Principal {
  /** User name as authenticated (Basic/NTLM), the user a token stands for, or `app` for an app token. */
  readonly user: string;
  readonly scheme: AuthScheme;
  /** An application token (no user): it must name a mailbox through impersonation. */
  readonly appOnly?: boolean;
  /** NTLM only: what was checked. */
  readonly ntlm?: NtlmLogonDetails;
}

/** The outcome of authenticating one request. */
export type AuthOutcome =
  | { readonly ok: true; readonly principal: Principal; readonly negotiateResponse?: string }
  /** `ntlmChallenge`: the Type 2 message to send (handshake in progress), else a plain refusal. */
  | { readonly ok: false; readonly ntlmChallenge?: string };

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');
const FLAGS_TYPE2 =
  0x4 /* REQUEST_TARGET */ | 0x200 /* NTLM */ | 0x8000 /* ALWAYS_SIGN */ | 0x10000 /* TARGET_TYPE_DOMAIN */ |
  0x80000 /* EXTENDED_SESSIONSECURITY */ | 0x800000 /* TARGET_INFO */ | 0x02000000 /* VERSION */ | 0x20000000 /* 128 */ | 0x80000000; /* 56 */

interface NtlmSocketState {
  negotiate?: Buffer;
  challengeMessage?: Buffer;
  challenge?: Buffer;
  unicode?: boolean;
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
  /** The MIC field's bytes (16), when the header is long enough to hold one. */
  readonly mic: Buffer | undefined;
  /** The AV pairs of an NTLMv2 response (empty for NTLMv1). */
  readonly targetInfo: readonly AvPair[];
}

function ntlmType(bytes: Buffer): number | undefined {
  if (bytes.length < 12 || !bytes.subarray(0, 8).equals(SIGNATURE)) return undefined;
  return bytes.readUInt32LE(8);
}

function utf16(text: string): Buffer {
  return Buffer.from(text, 'utf16le');
}

/** Options of {@link ntlmChallengeMessage}. */
export interface ChallengeMessageOptions {
  /** Names in Unicode (else OEM). Default `true`. */
  readonly unicode?: boolean;
  /** FILETIME for `MsvAvTimestamp` (what makes a client send a MIC); `null` leaves it out. Default: now. */
  readonly timestamp?: Buffer | null;
}

/** Builds a Type 2 (CHALLENGE) message for a server challenge, with a timestamp as Windows Server 2008+ sends. */
export function ntlmChallengeMessage(challenge: Buffer, targetName = 'SIMULATOR', options: ChallengeMessageOptions = {}): Buffer {
  const unicode = options.unicode ?? true;
  const target = unicode ? utf16(targetName) : Buffer.from(targetName, 'latin1');
  const timestamp = options.timestamp === undefined ? fileTimeNow() : options.timestamp;
  const pairs: AvPair[] = [
    { id: AV_ID.NB_DOMAIN_NAME, value: utf16(targetName) },
    { id: AV_ID.NB_COMPUTER_NAME, value: utf16('SIM-MBX01') },
    { id: AV_ID.DNS_DOMAIN_NAME, value: utf16('simulator.local') },
    { id: AV_ID.DNS_COMPUTER_NAME, value: utf16('sim-mbx01.simulator.local') },
    ...(timestamp === null ? [] : [{ id: AV_ID.TIMESTAMP, value: timestamp }]),
  ];
  const targetInfo = encodeAvPairs(pairs);
  const header = Buffer.alloc(56);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(2, 8);
  header.writeUInt16LE(target.length, 12);
  header.writeUInt16LE(target.length, 14);
  header.writeUInt32LE(56, 16);
  header.writeUInt32LE((FLAGS_TYPE2 | (unicode ? NTLM_FLAGS.UNICODE : NTLM_FLAGS.OEM)) >>> 0, 20);
  challenge.copy(header, 24);
  header.writeUInt16LE(targetInfo.length, 40);
  header.writeUInt16LE(targetInfo.length, 42);
  header.writeUInt32LE(56 + target.length, 44);
  Buffer.from([10, 0, 0x4c, 0x4f, 0, 0, 0, 15]).copy(header, 48);
  return Buffer.concat([header, target, targetInfo]);
}

/** Parses a Type 3 (AUTHENTICATE) message; `undefined` when it is not structurally valid. */
export function parseNtlmAuthenticate(bytes: Buffer): NtlmAuthenticate | undefined {
  if (ntlmType(bytes) !== 3 || bytes.length < 64) return undefined;
  const fields = [12, 20, 28, 36, 44].map((at) => ({ len: bytes.readUInt16LE(at), offset: bytes.readUInt32LE(at + 4) }));
  const field = ({ len, offset }: { len: number; offset: number }): Buffer | undefined => {
    if (len === 0) return Buffer.alloc(0);
    if (offset < 64 || offset + len > bytes.length) return undefined;
    return bytes.subarray(offset, offset + len);
  };
  const flags = bytes.readUInt32LE(60);
  const [lm, nt, domain, user, workstation] = fields.map(field);
  if (!lm || !nt || !domain || !user || !workstation) return undefined;
  // NTLMv1 responses are 24 bytes; NTLMv2 ones are a 16-byte proof plus a blob of at least 28.
  if (nt.length !== 24 && nt.length < 44) return undefined;
  const text = (b: Buffer): string => (flags & NTLM_FLAGS.UNICODE ? b.toString('utf16le') : b.toString('latin1'));
  const userName = text(user);
  if (userName === '') return undefined;
  let targetInfo: AvPair[] = [];
  if (nt.length >= 44) {
    try {
      targetInfo = parseAvPairs(nt.subarray(16 + 28));
    } catch {
      return undefined;
    }
  }
  // The MIC sits at 72 when the payload starts at 88 or later (the header then has version and MIC).
  const payloadStart = Math.min(...fields.filter((f) => f.len > 0).map((f) => f.offset));
  const mic = payloadStart >= 88 ? Buffer.from(bytes.subarray(72, 88)) : undefined;
  return { domain: text(domain), user: userName, workstation: text(workstation), ntResponse: nt, lmResponse: lm, flags, mic, targetInfo };
}

/** The NT hash of a password: MD4 over its UTF-16LE bytes (MS-NLMP NTOWFv1). */
export function ntHash(password: string): Buffer {
  return ntowfV1(password);
}

/** MS-NLMP NTOWFv2: HMAC-MD5 keyed by the NT hash, over UTF-16LE(uppercase(user) + domain). */
export function ntowfV2(password: string, user: string, domain: string): Buffer {
  return ntowfV2Impl(password, user, domain);
}

// NTProofStr (16) + blob header: RespType, HiRespType, reserved (6), timestamp (8), client challenge (8), reserved (4).
const NTLMV2_MIN_RESPONSE_BYTES = 16 + 28;

/**
 * Checks an NTLMv2 response (`NTProofStr` ‖ blob) against a password: the proof must equal
 * HMAC-MD5(NTOWFv2, server challenge ‖ blob).
 */
export function verifyNtlmV2Response(ntResponse: Buffer, serverChallenge: Buffer, password: string, user: string, domain: string): boolean {
  return ntlmV2SessionKey(ntResponse, serverChallenge, password, user, domain) !== undefined;
}

/** The session base key of a valid NTLMv2 response, `undefined` when the proof is wrong. */
function ntlmV2SessionKey(ntResponse: Buffer, serverChallenge: Buffer, password: string, user: string, domain: string): Buffer | undefined {
  if (ntResponse.length < NTLMV2_MIN_RESPONSE_BYTES) return undefined;
  const proof = ntResponse.subarray(0, 16);
  const blob = ntResponse.subarray(16);
  if (blob[0] !== 0x01 || blob[1] !== 0x01) return undefined;
  const key = ntowfV2(password, user, domain);
  const expected = createHmac('md5', key).update(serverChallenge).update(blob).digest();
  if (!timingSafeEqual(expected, proof)) return undefined;
  return createHmac('md5', key).update(proof).digest();
}

/** The channel binding hash a client must send to a server presenting the certificate of `socket`, or `undefined` without TLS. */
export function expectedChannelBindings(socket: Socket): Buffer | undefined {
  if (!(socket instanceof TLSSocket)) return undefined;
  const raw = (socket.getCertificate() as { raw?: Buffer } | null)?.raw;
  return raw === undefined ? undefined : channelBindingsHash(tlsServerEndPoint(raw));
}

/** Authenticates requests; holds the per-socket NTLM state. */
export class Authenticator {
  private readonly ntlm = new WeakMap<Socket, NtlmSocketState>();

  constructor(private readonly settings: AuthSettings) {}

  /**
   * The `WWW-Authenticate` values of a 401, or only the NTLM challenge mid-handshake (under the
   * scheme name the client used: `NTLM`, or `Negotiate` for NTLM inside Negotiate).
   */
  challenges(ntlmChallenge?: string, scheme: 'NTLM' | 'Negotiate' = 'NTLM'): string[] {
    if (ntlmChallenge !== undefined) return [`${scheme} ${ntlmChallenge}`];
    return this.settings.schemes.map((s) => (s === 'Basic' ? 'Basic realm="127.0.0.1"' : s));
  }

  /** Authenticates one request. Never throws (a throwing token checker counts as a refusal). */
  async authenticate(req: IncomingMessage): Promise<AuthOutcome & { readonly scheme?: 'NTLM' | 'Negotiate' }> {
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
    const isNtlm = ntlmType(Buffer.from(value, 'base64')) !== undefined;
    if (scheme === 'ntlm' && this.offers('NTLM')) return { ...this.ntlmStep(socket, value), scheme: 'NTLM' };
    // Negotiate carries either raw NTLMSSP (a client without Kerberos) or a Kerberos/SPNEGO token.
    if (scheme === 'negotiate' && isNtlm && (this.offers('NTLM') || this.offers('Negotiate'))) return { ...this.ntlmStep(socket, value), scheme: 'Negotiate' };
    if (scheme === 'negotiate' && this.offers('Negotiate')) return this.negotiate(value);
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

  private async negotiate(token: string): Promise<AuthOutcome> {
    const accept = this.settings.acceptNegotiate;
    if (!accept || token === '') return { ok: false };
    let accepted: Awaited<ReturnType<NegotiateAcceptor>>;
    try {
      accepted = await accept(token);
    } catch {
      return { ok: false };
    }
    if (accepted === undefined || accepted.user === '') return { ok: false };
    return {
      ok: true,
      principal: { user: accepted.user, scheme: 'Negotiate' },
      ...(accepted.responseToken === undefined ? {} : { negotiateResponse: accepted.responseToken }),
    };
  }

  private ntlmStep(socket: Socket, value: string): AuthOutcome {
    const bytes = Buffer.from(value, 'base64');
    const type = ntlmType(bytes);
    if (type === 1) {
      if (bytes.length < 16) return { ok: false };
      const challenge = randomBytes(8);
      // Unicode when the client asks for it, as Windows answers; OEM only for a client that asks for nothing else.
      const unicode = (bytes.readUInt32LE(12) & NTLM_FLAGS.UNICODE) !== 0;
      const challengeMessage = ntlmChallengeMessage(challenge, 'SIMULATOR', { unicode });
      this.ntlm.set(socket, { negotiate: Buffer.from(bytes), challengeMessage, challenge, unicode });
      return { ok: false, ntlmChallenge: challengeMessage.toString('base64') };
    }
    const state = this.ntlm.get(socket);
    this.ntlm.delete(socket);
    // A Type 3 is only valid on the socket that received the challenge (NTLM is connection-bound).
    if (type !== 3 || !state?.challenge) return { ok: false };
    const message = parseNtlmAuthenticate(bytes);
    if (!message) return { ok: false };
    const details = this.checkNtlm(message, bytes, state, socket);
    if (details === undefined) return { ok: false };
    const name = this.knownUser(message.user, message.domain);
    if (name === undefined) return { ok: false };
    const principal: Principal = { user: name, scheme: 'NTLM', ntlm: details };
    this.ntlm.set(socket, { principal });
    return { ok: true, principal };
  }

  /**
   * Checks the Type 3 message as a Windows server with a domain controller does. With `users`
   * set: an NTLMv2 response computed from that user's configured password (user name and domain
   * as the message gives them), NTLMv1 refused, and a MIC the `MsvAvFlags` announce must verify
   * (HMAC-MD5 with the session base key over the three messages, MIC zeroed). Without `users`
   * every structurally valid response passes the password check. In both cases the channel
   * binding is checked as `extendedProtection` says. `undefined`: refused.
   */
  protected checkNtlm(message: NtlmAuthenticate, raw: Buffer, state: NtlmSocketState, socket: Socket): NtlmLogonDetails | undefined {
    const avFlags = message.targetInfo.find((pair) => pair.id === AV_ID.FLAGS)?.value;
    const micPresent = avFlags !== undefined && avFlags.length === 4 && (avFlags.readUInt32LE(0) & AV_FLAG_MIC_PRESENT) !== 0;
    if (micPresent && message.mic === undefined) return undefined;
    const { users } = this.settings;
    if (users) {
      const name = this.knownUser(message.user, message.domain);
      const password = name === undefined ? undefined : users[name];
      if (password === undefined) return undefined;
      const sessionKey = ntlmV2SessionKey(message.ntResponse, state.challenge!, password, message.user, message.domain);
      if (sessionKey === undefined) return undefined;
      if (micPresent) {
        const zeroed = Buffer.from(raw);
        zeroed.fill(0, 72, 88);
        const expected = createHmac('md5', sessionKey).update(state.negotiate!).update(state.challengeMessage!).update(zeroed).digest();
        if (!timingSafeEqual(expected, message.mic!)) return undefined;
      }
    }
    const sent = message.targetInfo.find((pair) => pair.id === AV_ID.CHANNEL_BINDINGS)?.value;
    const expected = expectedChannelBindings(socket);
    let binding: NtlmLogonDetails['channelBinding'];
    if (sent === undefined) binding = 'absent';
    else if (sent.every((b) => b === 0)) binding = 'zero';
    else binding = expected !== undefined && sent.length === 16 && timingSafeEqual(expected, sent) ? 'match' : 'mismatch';
    const mode = this.settings.extendedProtection ?? 'off';
    // 'allow' accepts a client that sends no binding, never a wrong one; 'require' only the right one.
    if (mode === 'require' && binding !== 'match') return undefined;
    if (mode === 'allow' && binding === 'mismatch') return undefined;
    return { mic: micPresent, channelBinding: binding, unicode: state.unicode ?? true };
  }
}
