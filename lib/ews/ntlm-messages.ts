/**
 * The NTLM message layer, written against MS-NLMP (the NTLM protocol spec): the NEGOTIATE (Type 1),
 * CHALLENGE (Type 2) and AUTHENTICATE (Type 3) messages, NTLMv2 only, with what Windows servers
 * check today — Unicode names, the MIC (message integrity code) when the challenge carries a
 * timestamp, and the channel binding token (`MsvAvChannelBindings`) that Extended Protection
 * requires over HTTPS.
 *
 * Pure functions over bytes: no I/O, no clock or randomness that a caller cannot supply (the
 * client challenge and the timestamp are inputs, so the spec's test vectors can be reproduced).
 * `@ewsjs/ntlm-client`, used before, could not do this: it writes the Type 3 into a fixed buffer
 * with the server's target information copied verbatim, so neither `MsvAvFlags` (MIC present) nor
 * `MsvAvChannelBindings` can be added, it has no MIC, and its Type 1 asks for OEM names only.
 */
import { createHash, createHmac } from 'node:crypto';
import md4 from 'js-md4';

/** NegotiateFlags bits (MS-NLMP §2.2.2.5) this code sets or reads. */
export const NTLM_FLAGS = {
  UNICODE: 0x00000001,
  OEM: 0x00000002,
  REQUEST_TARGET: 0x00000004,
  NTLM: 0x00000200,
  ALWAYS_SIGN: 0x00008000,
  EXTENDED_SESSIONSECURITY: 0x00080000,
  TARGET_INFO: 0x00800000,
  VERSION: 0x02000000,
  NEGOTIATE_128: 0x20000000,
  NEGOTIATE_56: 0x80000000,
} as const;

/** AV pair ids (MS-NLMP §2.2.2.1). */
export const AV_ID = {
  EOL: 0,
  NB_COMPUTER_NAME: 1,
  NB_DOMAIN_NAME: 2,
  DNS_COMPUTER_NAME: 3,
  DNS_DOMAIN_NAME: 4,
  DNS_TREE_NAME: 5,
  FLAGS: 6,
  TIMESTAMP: 7,
  SINGLE_HOST: 8,
  TARGET_NAME: 9,
  CHANNEL_BINDINGS: 10,
} as const;

/** `MsvAvFlags` bit: the AUTHENTICATE message carries a MIC. */
export const AV_FLAG_MIC_PRESENT = 0x2;

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');

/**
 * The flags of our NEGOTIATE message: Unicode (OEM too, as Windows clients offer both, so the
 * server picks Unicode), NTLM with extended session security, target info, 128/56-bit, version.
 * No KEY_EXCH: the exported session key is then the session base key, which the MIC needs, and
 * no RC4 (absent from Node's OpenSSL 3 without the legacy provider) is needed.
 */
export const CLIENT_FLAGS =
  NTLM_FLAGS.UNICODE |
  NTLM_FLAGS.OEM |
  NTLM_FLAGS.REQUEST_TARGET |
  NTLM_FLAGS.NTLM |
  NTLM_FLAGS.ALWAYS_SIGN |
  NTLM_FLAGS.EXTENDED_SESSIONSECURITY |
  NTLM_FLAGS.TARGET_INFO |
  NTLM_FLAGS.VERSION |
  NTLM_FLAGS.NEGOTIATE_128 |
  NTLM_FLAGS.NEGOTIATE_56;

/** The VERSION structure we send: Windows 10.0 build 20348 (Server 2022), NTLMSSP revision 15. */
const VERSION = Buffer.from([10, 0, 0x4c, 0x4f, 0, 0, 0, 15]);

/** A malformed or unusable NTLM message. The message never contains a credential. */
export class NtlmMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NtlmMessageError';
  }
}

/** One attribute-value pair of target information. */
export interface AvPair {
  /** `AvId`: which attribute this is (MS-NLMP §2.2.2.1). */
  readonly id: number;
  /** The value's bytes. */
  readonly value: Buffer;
}

/** A decoded CHALLENGE message. */
export interface NtlmChallenge {
  /** The message exactly as received: the MIC covers these bytes. */
  readonly raw: Buffer;
  /** `NegotiateFlags` the server chose. */
  readonly flags: number;
  /** The 8-byte server challenge. */
  readonly serverChallenge: Buffer;
  /** The target (domain) name, decoded per the Unicode flag. */
  readonly targetName: string;
  /** The target information, `MsvAvEOL` excluded. */
  readonly targetInfo: readonly AvPair[];
}

/** The NEGOTIATE (Type 1) message: our flags, no domain or workstation, a version. */
export function negotiateMessage(): Buffer {
  const message = Buffer.alloc(40);
  SIGNATURE.copy(message, 0);
  message.writeUInt32LE(1, 8);
  message.writeUInt32LE(CLIENT_FLAGS >>> 0, 12);
  // Empty domain and workstation fields point just past the header.
  message.writeUInt32LE(40, 20);
  message.writeUInt32LE(40, 28);
  VERSION.copy(message, 32);
  return message;
}

function field(bytes: Buffer, at: number, what: string): Buffer {
  if (at + 8 > bytes.length) throw new NtlmMessageError(`The NTLM message is too short for its ${what} field`);
  const length = bytes.readUInt16LE(at);
  const offset = bytes.readUInt32LE(at + 4);
  if (length === 0) return Buffer.alloc(0);
  if (offset + length > bytes.length) throw new NtlmMessageError(`The NTLM message's ${what} field points outside the message`);
  return bytes.subarray(offset, offset + length);
}

/** Parses target information into AV pairs, stopping at `MsvAvEOL` (which is not returned). */
export function parseAvPairs(bytes: Buffer): AvPair[] {
  const pairs: AvPair[] = [];
  let at = 0;
  while (at + 4 <= bytes.length) {
    const id = bytes.readUInt16LE(at);
    const length = bytes.readUInt16LE(at + 2);
    if (id === AV_ID.EOL) return pairs;
    if (at + 4 + length > bytes.length) throw new NtlmMessageError('The NTLM target information has a pair running past its end');
    pairs.push({ id, value: Buffer.from(bytes.subarray(at + 4, at + 4 + length)) });
    at += 4 + length;
  }
  throw new NtlmMessageError('The NTLM target information has no end marker (MsvAvEOL)');
}

/** Encodes AV pairs, appending `MsvAvEOL`. */
export function encodeAvPairs(pairs: readonly AvPair[]): Buffer {
  const parts: Buffer[] = [];
  for (const pair of pairs) {
    const head = Buffer.alloc(4);
    head.writeUInt16LE(pair.id, 0);
    head.writeUInt16LE(pair.value.length, 2);
    parts.push(head, pair.value);
  }
  parts.push(Buffer.alloc(4));
  return Buffer.concat(parts);
}

/**
 * Parses a CHALLENGE (Type 2) message.
 *
 * @throws NtlmMessageError when it is not a well-formed Type 2 message.
 */
export function parseChallengeMessage(raw: Buffer): NtlmChallenge {
  if (raw.length < 32 || !raw.subarray(0, 8).equals(SIGNATURE) || raw.readUInt32LE(8) !== 2) {
    throw new NtlmMessageError('The server sent an NTLM challenge that could not be decoded');
  }
  const flags = raw.readUInt32LE(20);
  const unicode = (flags & NTLM_FLAGS.UNICODE) !== 0;
  const targetName = field(raw, 12, 'target name').toString(unicode ? 'utf16le' : 'latin1');
  const targetInfoBytes = (flags & NTLM_FLAGS.TARGET_INFO) !== 0 && raw.length >= 48 ? field(raw, 40, 'target info') : Buffer.alloc(0);
  return {
    raw: Buffer.from(raw),
    flags,
    serverChallenge: Buffer.from(raw.subarray(24, 32)),
    targetName,
    targetInfo: targetInfoBytes.length === 0 ? [] : parseAvPairs(targetInfoBytes),
  };
}

/**
 * Upper-cases a user name the way Windows does for NTOWFv2: character by character, never
 * changing the length (JavaScript's `'ß'.toUpperCase()` is `'SS'`; Windows keeps `ß`).
 */
export function upcaseLikeWindows(text: string): string {
  let out = '';
  for (const char of text) {
    const upper = char.toUpperCase();
    out += upper.length === char.length ? upper : char;
  }
  return out;
}

/** MS-NLMP NTOWFv1, the NT hash: MD4 over the UTF-16LE password (pure JS: OpenSSL 3 has no MD4 by default). */
export function ntowfV1(password: string): Buffer {
  return Buffer.from(md4.create().update(Buffer.from(password, 'utf16le')).digest());
}

/** MS-NLMP NTOWFv2: HMAC-MD5 keyed by the NT hash, over UTF-16LE(uppercase(user) ‖ domain). */
export function ntowfV2(password: string, user: string, domain: string): Buffer {
  return createHmac('md5', ntowfV1(password))
    .update(Buffer.from(upcaseLikeWindows(user) + domain, 'utf16le'))
    .digest();
}

const hmacMd5 = (key: Buffer, ...parts: Buffer[]): Buffer => {
  const hmac = createHmac('md5', key);
  for (const part of parts) hmac.update(part);
  return hmac.digest();
};

/** What an NTLMv2 response is computed from (MS-NLMP §3.3.2). */
export interface NtlmV2Input {
  /** NTOWFv2 of the account: the response key. */
  readonly responseKey: Buffer;
  readonly serverChallenge: Buffer;
  /** 8 random bytes. */
  readonly clientChallenge: Buffer;
  /** FILETIME, 8 bytes little-endian (100 ns since 1601). */
  readonly timestamp: Buffer;
  /** The target information as sent back in the response (`MsvAvEOL` included). */
  readonly targetInfo: Buffer;
}

/** An NTLMv2 response and the keys derived from it. */
export interface NtlmV2Response {
  /** NTProofStr ‖ blob. */
  readonly ntResponse: Buffer;
  /** LMv2: HMAC-MD5(key, server ‖ client challenge) ‖ client challenge. */
  readonly lmResponse: Buffer;
  /** HMAC-MD5(key, NTProofStr): the key-exchange key, and (without KEY_EXCH) the exported session key. */
  readonly sessionBaseKey: Buffer;
}

/** Computes the NTLMv2 and LMv2 responses (MS-NLMP §3.3.2). */
export function ntlmV2Response(input: NtlmV2Input): NtlmV2Response {
  const blob = Buffer.concat([
    Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]),
    input.timestamp,
    input.clientChallenge,
    Buffer.alloc(4),
    input.targetInfo,
    Buffer.alloc(4),
  ]);
  const proof = hmacMd5(input.responseKey, input.serverChallenge, blob);
  return {
    ntResponse: Buffer.concat([proof, blob]),
    lmResponse: Buffer.concat([hmacMd5(input.responseKey, input.serverChallenge, input.clientChallenge), input.clientChallenge]),
    sessionBaseKey: hmacMd5(input.responseKey, proof),
  };
}

/** The current time as a FILETIME (100 ns since 1601-01-01), 8 bytes little-endian. */
export function fileTimeNow(nowMs = Date.now()): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE((BigInt(nowMs) + 11_644_473_600_000n) * 10_000n);
  return out;
}

/** The account and the inputs a Type 3 message is computed from. */
export interface AuthenticateInput {
  /** The NEGOTIATE message exactly as sent (the MIC covers it). */
  readonly negotiate: Buffer;
  /** The server's CHALLENGE, decoded. */
  readonly challenge: NtlmChallenge;
  /** The account name. */
  readonly user: string;
  /** The account's domain (may be empty). */
  readonly domain: string;
  /** This machine's name as sent (may be empty). */
  readonly workstation: string;
  /** The account's password. */
  readonly password: string;
  /**
   * `MsvAvChannelBindings`: the 16-byte MD5 from {@link channelBindingsHash}. `undefined` sends
   * 16 zero bytes, as Windows does without a TLS channel (it says "binding-aware client").
   */
  readonly channelBindings?: Buffer;
  /** `MsvAvTargetName`, the service's SPN (`HTTP/mail.contoso.com`): Extended Protection's service binding. Default: none. */
  readonly targetName?: string;
  /** 8 random bytes (an input, so test vectors can be reproduced). */
  readonly clientChallenge: Buffer;
  /** FILETIME used when the challenge has no `MsvAvTimestamp`. */
  readonly timestamp: Buffer;
}

/** A built AUTHENTICATE message and what went into it (for tests and diagnostics). */
export interface AuthenticateMessage {
  /** The AUTHENTICATE (Type 3) message's bytes (sent base64-encoded after `NTLM `). */
  readonly message: Buffer;
  /** Whether a MIC was computed (the challenge carried `MsvAvTimestamp`). */
  readonly mic: boolean;
  /** The NTLMv2 session base key. */
  readonly sessionBaseKey: Buffer;
}

const HEADER_BYTES = 88; // 64 fixed + 8 version + 16 MIC

/**
 * Builds the AUTHENTICATE (Type 3) message (MS-NLMP §3.1.5.1.2): NTLMv2 response over the
 * challenge's target information plus `MsvAvFlags` (MIC present, when the challenge has a
 * timestamp), `MsvAvChannelBindings` and `MsvAvTargetName`; the MIC = HMAC-MD5(exported session
 * key, NEGOTIATE ‖ CHALLENGE ‖ AUTHENTICATE with a zero MIC).
 *
 * @throws NtlmMessageError when the challenge allows only NTLMv1 (no target information), or a
 *   name cannot be carried (OEM negotiated and a name beyond printable ASCII).
 */
export function authenticateMessage(input: AuthenticateInput): AuthenticateMessage {
  const { challenge } = input;
  if ((challenge.flags & NTLM_FLAGS.TARGET_INFO) === 0 || challenge.targetInfo.length === 0) {
    throw new NtlmMessageError("The server's NTLM challenge carries no target information, so only NTLMv1 would be possible; NTLMv1 is refused");
  }
  const unicode = (challenge.flags & NTLM_FLAGS.UNICODE) !== 0;
  if (!unicode && [input.domain, input.user, input.workstation].some((name) => /[^\x20-\x7e]/.test(name))) {
    throw new NtlmMessageError('The server negotiated OEM (non-Unicode) NTLM, which cannot carry this account or workstation name');
  }
  const serverTimestamp = challenge.targetInfo.find((pair) => pair.id === AV_ID.TIMESTAMP)?.value;
  const withMic = serverTimestamp !== undefined && serverTimestamp.length === 8;

  // The pairs we answer with: the server's, in order, with ours replacing any it sent.
  const ours = new Set<number>([AV_ID.FLAGS, AV_ID.CHANNEL_BINDINGS, AV_ID.TARGET_NAME]);
  const pairs: AvPair[] = challenge.targetInfo.filter((pair) => !ours.has(pair.id));
  const serverFlags = challenge.targetInfo.find((pair) => pair.id === AV_ID.FLAGS)?.value;
  const avFlags = (serverFlags !== undefined && serverFlags.length === 4 ? serverFlags.readUInt32LE(0) : 0) | (withMic ? AV_FLAG_MIC_PRESENT : 0);
  if (avFlags !== 0) {
    const value = Buffer.alloc(4);
    value.writeUInt32LE(avFlags >>> 0, 0);
    pairs.push({ id: AV_ID.FLAGS, value });
  }
  pairs.push({ id: AV_ID.CHANNEL_BINDINGS, value: input.channelBindings ?? Buffer.alloc(16) });
  if (input.targetName !== undefined) pairs.push({ id: AV_ID.TARGET_NAME, value: Buffer.from(input.targetName, 'utf16le') });

  const response = ntlmV2Response({
    responseKey: ntowfV2(input.password, input.user, input.domain),
    serverChallenge: challenge.serverChallenge,
    clientChallenge: input.clientChallenge,
    // With a server timestamp the client must use it (and may not send LMv2).
    timestamp: withMic ? serverTimestamp : input.timestamp,
    targetInfo: encodeAvPairs(pairs),
  });
  const lmResponse = serverTimestamp !== undefined ? Buffer.alloc(24) : response.lmResponse;

  const text = (name: string): Buffer => Buffer.from(name, unicode ? 'utf16le' : 'latin1');
  const payload = [text(input.domain), text(input.user), text(input.workstation), lmResponse, response.ntResponse, Buffer.alloc(0)];
  const header = Buffer.alloc(HEADER_BYTES);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(3, 8);
  // Field order in the header: LM, NT, domain, user, workstation, session key.
  const fieldAt = [12, 20, 28, 36, 44, 52];
  const payloadIndex = [3, 4, 0, 1, 2, 5];
  const offsets: number[] = [];
  let offset = HEADER_BYTES;
  for (const part of payload) {
    offsets.push(offset);
    offset += part.length;
  }
  if (offset > 0xffff) throw new NtlmMessageError('The NTLM authenticate message would be too large (very long target information or names)');
  fieldAt.forEach((at, i) => {
    const index = payloadIndex[i]!;
    const part = payload[index]!;
    header.writeUInt16LE(part.length, at);
    header.writeUInt16LE(part.length, at + 2);
    header.writeUInt32LE(offsets[index]!, at + 4);
  });
  const flags = (challenge.flags & CLIENT_FLAGS & ~(unicode ? NTLM_FLAGS.OEM : 0)) | NTLM_FLAGS.VERSION;
  header.writeUInt32LE(flags >>> 0, 60);
  VERSION.copy(header, 64);
  const message = Buffer.concat([header, ...payload]);
  if (withMic) {
    hmacMd5(response.sessionBaseKey, input.negotiate, challenge.raw, message).copy(message, 72);
  }
  return { message, mic: withMic, sessionBaseKey: response.sessionBaseKey };
}

// -------------------------------------------------------------------------------------------------
// Channel binding (RFC 5929 tls-server-end-point, as Windows Extended Protection checks it)

/** Hash names by signature algorithm OID; MD5 and SHA-1 map to SHA-256 as RFC 5929 §4.1 says. */
const SIGNATURE_HASHES: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.4': 'sha256', // md5WithRSAEncryption
  '1.2.840.113549.1.1.5': 'sha256', // sha1WithRSAEncryption
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha256', // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha256', // dsa-with-sha1
  '2.16.840.1.101.3.4.3.2': 'sha256', // dsa-with-sha256
};
const DIGEST_OIDS: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'sha256', // sha1 → sha256
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
const RSASSA_PSS = '1.2.840.113549.1.1.10';

interface Tlv {
  readonly tag: number;
  /** Start of the value. */
  readonly start: number;
  /** End of the value (exclusive). */
  readonly end: number;
}

function readTlv(der: Buffer, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new NtlmMessageError('The server certificate is not valid DER');
  const tag = der[at]!;
  let length = der[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || start + bytes > limit) throw new NtlmMessageError('The server certificate is not valid DER');
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]!;
    start += bytes;
  }
  if (start + length > limit) throw new NtlmMessageError('The server certificate is not valid DER');
  return { tag, start, end: start + length };
}

function oidText(der: Buffer, tlv: Tlv): string {
  if (tlv.tag !== 0x06 || tlv.end <= tlv.start) throw new NtlmMessageError('The server certificate is not valid DER');
  const first = der[tlv.start]!;
  const parts = [Math.floor(first / 40), first % 40];
  let value = 0;
  for (let i = tlv.start + 1; i < tlv.end; i++) {
    value = value * 128 + (der[i]! & 0x7f);
    if ((der[i]! & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

/**
 * The hash algorithm RFC 5929's `tls-server-end-point` uses for a certificate: the one of its
 * signature algorithm, SHA-256 instead of MD5 or SHA-1, and SHA-256 for algorithms without their
 * own hash (Ed25519, unknown ones), as other implementations do.
 */
export function endPointHashAlgorithm(certificateDer: Buffer): string {
  const certificate = readTlv(certificateDer, 0, certificateDer.length);
  const tbs = readTlv(certificateDer, certificate.start, certificate.end);
  const algorithm = readTlv(certificateDer, tbs.end, certificate.end);
  const oidTlv = readTlv(certificateDer, algorithm.start, algorithm.end);
  const oid = oidText(certificateDer, oidTlv);
  if (oid === RSASSA_PSS) {
    // RSASSA-PSS-params: SEQUENCE { [0] hashAlgorithm AlgorithmIdentifier DEFAULT sha1, … }
    if (oidTlv.end < algorithm.end) {
      const params = readTlv(certificateDer, oidTlv.end, algorithm.end);
      if (params.tag === 0x30 && params.end > params.start) {
        const first = readTlv(certificateDer, params.start, params.end);
        if (first.tag === 0xa0) {
          const hashAlgorithm = readTlv(certificateDer, first.start, first.end);
          const hashOid = oidText(certificateDer, readTlv(certificateDer, hashAlgorithm.start, hashAlgorithm.end));
          return DIGEST_OIDS[hashOid] ?? 'sha256';
        }
      }
    }
    return 'sha256';
  }
  return SIGNATURE_HASHES[oid] ?? 'sha256';
}

/** The `tls-server-end-point` channel binding data: `tls-server-end-point:` ‖ hash(certificate). */
export function tlsServerEndPoint(certificateDer: Buffer): Buffer {
  const hash = createHash(endPointHashAlgorithm(certificateDer)).update(certificateDer).digest();
  return Buffer.concat([Buffer.from('tls-server-end-point:', 'ascii'), hash]);
}

/**
 * `MsvAvChannelBindings`: MD5 of the gss_channel_bindings_struct (RFC 2744) with no addresses and
 * the given application data, serialised as Windows does (five little-endian 32-bit words, then
 * the data).
 */
export function channelBindingsHash(applicationData: Buffer): Buffer {
  const head = Buffer.alloc(20);
  head.writeUInt32LE(applicationData.length, 16);
  return createHash('md5').update(head).update(applicationData).digest();
}
