/**
 * NTLM as hardened Windows servers expect it (issue 16): the MS-NLMP message layer against the
 * spec's §4.2.4 vectors; Unicode negotiation; the MIC; `tls-server-end-point` channel binding
 * against the openssl CLI's digests; the whole AUTHENTICATE message accepted by gss-ntlmssp — an
 * NTLM server implementation nobody here wrote (C, through Python's gssapi binding) — with its
 * MIC and channel binding checked; and EwsSimulator over TLS with Extended Protection
 * `require`/`allow`, including a TLS-intercepting proxy whose certificate differs (refused).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import ntlmClient from '@ewsjs/ntlm-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EwsAuthError } from '../lib/errors.js';
import {
  AV_ID,
  authenticateMessage,
  channelBindingsHash,
  endPointHashAlgorithm,
  fileTimeNow,
  negotiateMessage,
  NTLM_FLAGS,
  ntlmV2Response,
  ntowfV2,
  parseAvPairs,
  parseChallengeMessage,
  tlsServerEndPoint,
  upcaseLikeWindows,
} from '../lib/ews/ntlm-messages.js';
import { SOAP_ACTIONS, buildPullSubscribeRequest } from '../lib/ews/requests.js';
import { postSoap } from '../lib/ews/transport.js';
import { Authenticator, ntlmChallengeMessage, parseNtlmAuthenticate } from '../lib/testing/auth.js';
import { EwsSimulator, type RecordedRequest } from '../lib/testing/index.js';
import { ready, runSource, SOURCE_KINDS, stopRun, type SourceRun } from './helpers/auth-sources.js';
import { opensslAvailable } from './helpers/capture-listener.js';
import { makeSelfSignedCert, opensslDigest, opensslSignatureAlgorithm, type TestCert } from './helpers/test-certs.js';

const hex = (b: Buffer): string => b.toString('hex');
const utf16 = (s: string): Buffer => Buffer.from(s, 'utf16le');
const MAILBOX = 'alice@contoso.com';
const PASSWORD = 'Pa55-w0rd-epa!';
const SUBSCRIBE = {
  soapAction: SOAP_ACTIONS.Subscribe,
  envelope: buildPullSubscribeRequest({ folders: ['inbox'], eventTypes: ['NewMail'], timeoutMinutes: 10, requestServerVersion: 'Exchange2013' }),
};

const haveOpenssl = opensslAvailable();
if (!haveOpenssl) console.warn('auth-ntlm-epa: TLS tests skipped, the openssl command is not available to make test certificates');

// -------------------------------------------------------------------------------------------------
// MS-NLMP §4.2.4 (NTLMv2): user "User", domain "Domain", password "Password", server challenge
// 0123456789abcdef, client challenge aa…, time 0.

const SPEC_CHALLENGE = Buffer.from(
  '4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef00000000000000002400240044000000060070170000000f' +
    '53006500720076006500720002000c0044006f006d00610069006e0001000c005300650072007600650072000000000000',
  'hex',
).subarray(0, 104);

describe('MS-NLMP message layer (§4.2.4 test vectors)', () => {
  it('parses the spec\'s CHALLENGE message', () => {
    const challenge = parseChallengeMessage(SPEC_CHALLENGE);
    expect(challenge.targetName).toBe('Server');
    expect(hex(challenge.serverChallenge)).toBe('0123456789abcdef');
    expect(challenge.flags >>> 0).toBe(0xe28a8233);
    expect(challenge.targetInfo.map((p) => [p.id, p.value.toString('utf16le')])).toEqual([
      [AV_ID.NB_DOMAIN_NAME, 'Domain'],
      [AV_ID.NB_COMPUTER_NAME, 'Server'],
    ]);
  });

  it('NTOWFv2, the NTLMv2 and LMv2 responses and the session base key match §4.2.4.2', () => {
    const challenge = parseChallengeMessage(SPEC_CHALLENGE);
    const responseKey = ntowfV2('Password', 'User', 'Domain');
    expect(hex(responseKey)).toBe('0c868a403bfd7a93a3001ef22ef02e3f');
    const targetInfo = Buffer.concat([Buffer.from([2, 0, 12, 0]), utf16('Domain'), Buffer.from([1, 0, 12, 0]), utf16('Server'), Buffer.alloc(4)]);
    const response = ntlmV2Response({
      responseKey,
      serverChallenge: challenge.serverChallenge,
      clientChallenge: Buffer.alloc(8, 0xaa),
      timestamp: Buffer.alloc(8),
      targetInfo,
    });
    expect(hex(response.ntResponse.subarray(0, 16))).toBe('68cd0ab851e51c96aabc927bebef6a1c');
    expect(hex(response.ntResponse.subarray(16))).toBe('0101000000000000' + '0000000000000000' + 'aaaaaaaaaaaaaaaa' + '00000000' + hex(targetInfo) + '00000000');
    expect(hex(response.lmResponse)).toBe('86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa');
    expect(hex(response.sessionBaseKey)).toBe('8de40ccadbc14a82f15cb0ad0de95ca3');
  });

  it('the NEGOTIATE message asks for Unicode (and OEM, as Windows does), NTLM, extended session security and a version', () => {
    const message = negotiateMessage();
    expect(message.subarray(0, 8).toString('latin1')).toBe('NTLMSSP\0');
    expect(message.readUInt32LE(8)).toBe(1);
    const flags = message.readUInt32LE(12);
    for (const flag of [NTLM_FLAGS.UNICODE, NTLM_FLAGS.NTLM, NTLM_FLAGS.EXTENDED_SESSIONSECURITY, NTLM_FLAGS.VERSION, NTLM_FLAGS.TARGET_INFO]) {
      expect(flags & flag).toBe(flag);
    }
    expect(message.length).toBe(40);
  });

  it('upper-cases user names as Windows does (one character for one: ß stays ß)', () => {
    expect(upcaseLikeWindows('straße')).toBe('STRAßE');
    expect(upcaseLikeWindows('jürgen')).toBe('JÜRGEN');
    expect(hex(ntowfV2('pw', 'straße', 'D'))).toBe(hex(ntowfV2('pw', 'STRAßE', 'D')));
  });

  const timestamped = (): ReturnType<typeof parseChallengeMessage> =>
    parseChallengeMessage(ntlmChallengeMessage(Buffer.from('0123456789abcdef', 'hex'), 'CONTOSO', { timestamp: fileTimeNow(0) }));

  it('with a timestamp in the challenge: MsvAvFlags says MIC, the server\'s time is used, LMv2 is zeros, the binding and SPN are in the blob', () => {
    const negotiate = negotiateMessage();
    const binding = channelBindingsHash(Buffer.from('tls-server-end-point:xyz'));
    const built = authenticateMessage({
      negotiate,
      challenge: timestamped(),
      user: 'jürgen',
      domain: 'CONTOSO',
      workstation: 'WS-1',
      password: PASSWORD,
      channelBindings: binding,
      targetName: 'HTTP/mail.contoso.com',
      clientChallenge: Buffer.alloc(8, 1),
      timestamp: fileTimeNow(),
    });
    expect(built.mic).toBe(true);
    const parsed = parseNtlmAuthenticate(built.message)!;
    expect(parsed).toMatchObject({ user: 'jürgen', domain: 'CONTOSO', workstation: 'WS-1' });
    expect(parsed.flags & NTLM_FLAGS.UNICODE).toBe(NTLM_FLAGS.UNICODE);
    expect(hex(parsed.lmResponse)).toBe('00'.repeat(24));
    expect(hex(parsed.ntResponse.subarray(24, 32))).toBe(hex(fileTimeNow(0))); // the blob's time is the server's
    const pairs = new Map(parsed.targetInfo.map((p) => [p.id, p.value]));
    expect(pairs.get(AV_ID.FLAGS)?.readUInt32LE(0)).toBe(0x2);
    expect(pairs.get(AV_ID.CHANNEL_BINDINGS)).toEqual(binding);
    expect(pairs.get(AV_ID.TARGET_NAME)?.toString('utf16le')).toBe('HTTP/mail.contoso.com');
    expect(parsed.mic).toBeDefined();
    expect(hex(parsed.mic!)).not.toBe('00'.repeat(16));
  });

  it('without a timestamp: no MIC bit and an LMv2 response; without a TLS channel the binding is 16 zero bytes', () => {
    const challenge = parseChallengeMessage(ntlmChallengeMessage(Buffer.alloc(8, 7), 'CONTOSO', { timestamp: null }));
    const built = authenticateMessage({
      negotiate: negotiateMessage(), challenge, user: 'u', domain: 'D', workstation: 'W', password: 'p',
      clientChallenge: Buffer.alloc(8, 2), timestamp: fileTimeNow(),
    });
    expect(built.mic).toBe(false);
    const parsed = parseNtlmAuthenticate(built.message)!;
    expect(hex(parsed.lmResponse)).not.toBe('00'.repeat(24));
    expect(parsed.targetInfo.find((p) => p.id === AV_ID.FLAGS)).toBeUndefined();
    expect(hex(parsed.targetInfo.find((p) => p.id === AV_ID.CHANNEL_BINDINGS)!.value)).toBe('00'.repeat(16));
    expect(hex(parsed.mic!)).toBe('00'.repeat(16));
  });

  it('OEM negotiated (the server ignored Unicode): ASCII names go, others are refused with a clear message', () => {
    const challenge = parseChallengeMessage(ntlmChallengeMessage(Buffer.alloc(8, 7), 'CONTOSO', { unicode: false }));
    const input = { negotiate: negotiateMessage(), challenge, domain: 'D', workstation: 'W', password: 'p', clientChallenge: Buffer.alloc(8), timestamp: fileTimeNow() };
    const ascii = parseNtlmAuthenticate(authenticateMessage({ ...input, user: 'alice' }).message)!;
    expect(ascii.flags & NTLM_FLAGS.UNICODE).toBe(0);
    expect(ascii.user).toBe('alice');
    expect(() => authenticateMessage({ ...input, user: 'jürgen' })).toThrow(/OEM/);
  });

  it('a malformed challenge or target information is a typed error, not a crash', () => {
    expect(() => parseChallengeMessage(Buffer.from('NTLMSSP\0garbage'))).toThrow(/could not be decoded/);
    const truncated = Buffer.from(SPEC_CHALLENGE);
    truncated.writeUInt16LE(0x400, 40); // target info longer than the message
    expect(() => parseChallengeMessage(truncated)).toThrow(/outside the message/);
    expect(() => parseAvPairs(Buffer.from([2, 0, 200, 0, 1]))).toThrow(/past its end/);
    expect(() => parseAvPairs(Buffer.from([2, 0, 0, 0]))).toThrow(/no end marker/);
  });
});

// -------------------------------------------------------------------------------------------------
// tls-server-end-point

describe.skipIf(!haveOpenssl)('tls-server-end-point (RFC 5929) against openssl', () => {
  it.each<[string, Parameters<typeof makeSelfSignedCert>[0], string]>([
    ['RSA, SHA-1 signature → SHA-256', { digest: 'sha1' }, 'sha256'],
    ['RSA, SHA-256', { digest: 'sha256' }, 'sha256'],
    ['RSA, SHA-384', { digest: 'sha384' }, 'sha384'],
    ['RSA, SHA-512', { digest: 'sha512' }, 'sha512'],
    ['ECDSA, SHA-384', { keyType: 'ec', digest: 'sha384' }, 'sha384'],
    ['RSASSA-PSS, SHA-512', { keyType: 'rsa-pss', digest: 'sha512' }, 'sha512'],
  ])('%s', (_name, options, algorithm) => {
    const cert = makeSelfSignedCert(options);
    expect(opensslSignatureAlgorithm(cert.der).toLowerCase()).toMatch(new RegExp(options?.digest === 'sha1' ? 'sha1' : options?.keyType === 'rsa-pss' ? 'pss' : options?.digest ?? 'sha256'));
    expect(endPointHashAlgorithm(cert.der)).toBe(algorithm);
    const data = tlsServerEndPoint(cert.der);
    expect(data.subarray(0, 21).toString('latin1')).toBe('tls-server-end-point:');
    expect(hex(data.subarray(21))).toBe(opensslDigest(algorithm, cert.der));
    // gss_channel_bindings_struct: four zero words (no addresses), the data's length, the data.
    const struct = Buffer.concat([Buffer.alloc(16), Buffer.from([data.length, 0, 0, 0]), data]);
    expect(hex(channelBindingsHash(data))).toBe(opensslDigest('md5', struct));
  }, 30_000);

  it('refuses bytes that are not a certificate', () => {
    expect(() => endPointHashAlgorithm(Buffer.from([0x30, 0x82, 0xff]))).toThrow(/not valid DER/);
  });
});

// -------------------------------------------------------------------------------------------------
// An NTLM server nobody here wrote: gss-ntlmssp (Debian's gss-ntlmssp) through python3-gssapi.

const PYTHON = '/usr/bin/python3';
const gssNtlmssp =
  existsSync('/etc/gss/mech.d/mech.ntlmssp.conf') && existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import gssapi'], { stdio: 'ignore' }).status === 0;
if (!gssNtlmssp) console.warn('auth-ntlm-epa: gss-ntlmssp interop skipped (apt-get install -y gss-ntlmssp python3-gssapi)');

const ACCEPTOR = `
import sys, base64, json, gssapi
from gssapi.raw import ChannelBindings
ntlm = gssapi.OID.from_int_seq('1.3.6.1.4.1.311.2.2.10')
data = bytes.fromhex(sys.argv[1]) if len(sys.argv) > 1 else b''
ctx = gssapi.SecurityContext(creds=gssapi.Credentials(usage='accept', mechs=[ntlm]), usage='accept',
                             channel_bindings=ChannelBindings(application_data=data) if data else None)
for line in sys.stdin:
    try:
        out = ctx.step(base64.b64decode(line.strip()))
    except Exception as e:
        print(json.dumps({'error': str(e)}), flush=True); break
    if ctx.complete:
        print(json.dumps({'user': str(ctx.initiator_name).rstrip(chr(0))}), flush=True); break
    print(json.dumps({'token': base64.b64encode(out).decode()}), flush=True)
`;

interface AcceptorResult {
  readonly user?: string;
  readonly error?: string;
}

/** Runs one NTLM handshake against gss-ntlmssp; `tamper` may change the AUTHENTICATE message. */
async function gssNtlmsspLogon(options: {
  acceptorBinding: Buffer | undefined;
  clientBinding: Buffer | undefined;
  user: string;
  password: string;
  tamper?: (message: Buffer) => void;
}): Promise<AcceptorResult> {
  const dir = mkdtempSync(join(tmpdir(), 'gss-ntlmssp-'));
  try {
    writeFileSync(join(dir, 'users'), `CONTOSO:alice:${PASSWORD}\nCONTOSO:jürgen:${PASSWORD}\n`);
    writeFileSync(join(dir, 'acceptor.py'), ACCEPTOR);
    const child = spawn(PYTHON, [join(dir, 'acceptor.py'), ...(options.acceptorBinding ? [hex(options.acceptorBinding)] : [])], {
      env: { PATH: process.env['PATH'] ?? '', NTLM_USER_FILE: join(dir, 'users') },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async (): Promise<{ token?: string } & AcceptorResult> => JSON.parse((await lines.next()).value as string) as { token?: string } & AcceptorResult;
    const negotiate = negotiateMessage();
    child.stdin.write(`${negotiate.toString('base64')}\n`);
    const first = await next();
    if (first.token === undefined) return first;
    const challenge = parseChallengeMessage(Buffer.from(first.token, 'base64'));
    const { message } = authenticateMessage({
      negotiate,
      challenge,
      user: options.user,
      domain: 'CONTOSO',
      workstation: 'WS-1',
      password: options.password,
      ...(options.clientBinding ? { channelBindings: options.clientBinding } : {}),
      targetName: 'HTTP/mail.contoso.com',
      clientChallenge: randomBytes(8),
      timestamp: fileTimeNow(),
    });
    options.tamper?.(message);
    child.stdin.write(`${message.toString('base64')}\n`);
    const result = await next();
    child.stdin.end();
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!gssNtlmssp)('interop: gss-ntlmssp accepts our AUTHENTICATE message (MIC and channel binding checked)', () => {
  // Application data as tlsServerEndPoint() makes it (its hashing is checked against openssl above).
  const binding = Buffer.concat([Buffer.from('tls-server-end-point:'), randomBytes(32)]);
  const other = Buffer.concat([Buffer.from('tls-server-end-point:'), randomBytes(32)]);

  it('logs on with the matching binding and a MIC', async () => {
    expect(await gssNtlmsspLogon({ acceptorBinding: binding, clientBinding: channelBindingsHash(binding), user: 'alice', password: PASSWORD })).toEqual({ user: 'CONTOSO\\alice' });
  });

  it('a Unicode user name logs on', async () => {
    expect(await gssNtlmsspLogon({ acceptorBinding: binding, clientBinding: channelBindingsHash(binding), user: 'jürgen', password: PASSWORD })).toEqual({ user: 'CONTOSO\\jürgen' });
  });

  it('refuses the binding of another certificate', async () => {
    const result = await gssNtlmsspLogon({ acceptorBinding: binding, clientBinding: channelBindingsHash(other), user: 'alice', password: PASSWORD });
    expect(result.error).toBeDefined();
  });

  it('refuses a wrong password', async () => {
    const result = await gssNtlmsspLogon({ acceptorBinding: binding, clientBinding: channelBindingsHash(binding), user: 'alice', password: 'wrong' });
    expect(result.error).toBeDefined();
  });

  it('refuses a message whose MIC was altered (so the MIC is really checked)', async () => {
    const result = await gssNtlmsspLogon({
      acceptorBinding: binding,
      clientBinding: channelBindingsHash(binding),
      user: 'alice',
      password: PASSWORD,
      tamper: (message) => void (message[80] = (message[80]! ^ 0xff) & 0xff),
    });
    expect(result.error).toBeDefined();
  });
});

// -------------------------------------------------------------------------------------------------
// The simulator's checks, message by message

function fakeRequest(authorization: string, socket: object): IncomingMessage {
  return { headers: { authorization }, socket } as unknown as IncomingMessage;
}

describe('EwsSimulator NTLM checks (MIC, binding modes)', () => {
  const socket = {};
  async function handshake(
    auth: Authenticator,
    change: (message: Buffer) => void = () => undefined,
  ): Promise<Awaited<ReturnType<Authenticator['authenticate']>>> {
    const negotiate = negotiateMessage();
    const first = await auth.authenticate(fakeRequest(`NTLM ${negotiate.toString('base64')}`, socket));
    expect(first.ok).toBe(false);
    const challenge = parseChallengeMessage(Buffer.from((first as { ntlmChallenge: string }).ntlmChallenge, 'base64'));
    const { message } = authenticateMessage({
      negotiate, challenge, user: 'alice', domain: 'CONTOSO', workstation: 'W', password: PASSWORD,
      clientChallenge: randomBytes(8), timestamp: fileTimeNow(),
    });
    change(message);
    return auth.authenticate(fakeRequest(`NTLM ${message.toString('base64')}`, socket));
  }
  const users = { 'CONTOSO\\alice': PASSWORD };

  it('verifies the MIC: an intact message passes, an altered MIC is refused', async () => {
    const auth = new Authenticator({ schemes: ['NTLM'], users, verifyToken: undefined });
    expect(await handshake(auth)).toMatchObject({ ok: true, principal: { user: 'CONTOSO\\alice', ntlm: { mic: true, channelBinding: 'zero', unicode: true } } });
    expect((await handshake(auth, (m) => void (m[75] = (m[75]! ^ 1) & 0xff))).ok).toBe(false);
  });

  it('a MIC announced but cut off (header too short to hold one) is refused', async () => {
    const auth = new Authenticator({ schemes: ['NTLM'], users, verifyToken: undefined });
    const outcome = await handshake(auth, (m) => {
      // Point every payload field at offset 64: the MIC slot is then payload, not a MIC.
      for (const at of [16, 24, 32, 40, 48, 56]) m.writeUInt32LE(m.readUInt32LE(at) - 24, at);
      m.copy(m, 64, 88);
    });
    expect(outcome.ok).toBe(false);
  });

  it("'require' refuses a binding-aware client on a plain connection (no certificate to bind to)", async () => {
    const auth = new Authenticator({ schemes: ['NTLM'], users, verifyToken: undefined, extendedProtection: 'require' });
    expect((await handshake(auth)).ok).toBe(false);
    const allow = new Authenticator({ schemes: ['NTLM'], users, verifyToken: undefined, extendedProtection: 'allow' });
    expect((await handshake(allow)).ok).toBe(true);
  });
});

// -------------------------------------------------------------------------------------------------
// Over TLS, end to end

/** A TLS-terminating proxy with its own certificate in front of `target` (as a relay or an inspecting proxy). */
async function interceptingProxy(cert: TestCert, target: string): Promise<{ url: string; close(): Promise<void> }> {
  const targetUrl = new URL(target);
  const sockets = new Set<Socket>();
  const server: TlsServer = createTlsServer({ key: cert.key, cert: cert.cert }, (client: TLSSocket) => {
    const upstream = tlsConnect({ host: '127.0.0.1', port: Number(targetUrl.port), rejectUnauthorized: false });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `https://127.0.0.1:${port}${targetUrl.pathname}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An NTLM handshake by `@ewsjs/ntlm-client`, which sends no channel binding, over one TLS connection. */
async function bindinglessLogon(url: string, ca: string): Promise<number> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
  const send = (authorization: string): Promise<{ status: number; www: string | undefined }> =>
    new Promise((resolve, reject) => {
      const req = https.request(url, { method: 'POST', agent, headers: { Authorization: authorization, 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: `"${SUBSCRIBE.soapAction}"` } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, www: res.headers['www-authenticate'] }));
      });
      req.on('error', reject);
      req.end(authorization.length > 200 ? SUBSCRIBE.envelope : '');
    });
  try {
    const first = await send(ntlmClient.createType1Message());
    const type2 = ntlmClient.decodeType2Message(first.www!);
    return (await send(ntlmClient.createType3Message(type2, 'alice', PASSWORD, 'WS', 'CONTOSO'))).status;
  } finally {
    agent.destroy();
  }
}

describe.skipIf(!haveOpenssl)('Extended Protection over TLS against EwsSimulator', () => {
  let serverCert: TestCert;
  let proxyCert: TestCert;
  let sim: EwsSimulator | undefined;
  let proxy: { close(): Promise<void> } | undefined;
  let run: SourceRun | undefined;
  beforeAll(() => {
    serverCert = makeSelfSignedCert({ digest: 'sha384' });
    proxyCert = makeSelfSignedCert();
  }, 60_000);
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await stopRun(run, sim);
    run = undefined;
    sim = undefined;
  });

  const start = (extendedProtection: 'off' | 'allow' | 'require'): Promise<EwsSimulator> =>
    EwsSimulator.start({
      timeScale: 0.001,
      keepAliveIntervalMs: 200,
      tls: { key: serverCert.key, cert: serverCert.cert },
      extendedProtection,
      authSchemes: ['NTLM'],
      users: { 'CONTOSO\\svc': PASSWORD, 'CONTOSO\\alice': PASSWORD, 'CONTOSO\\jürgen': PASSWORD },
    });
  const ntlm = (username = 'CONTOSO\\svc') => ({ type: 'ntlm', username, password: PASSWORD }) as const;
  const ntlmOf = (requests: readonly RecordedRequest[]) => requests.filter((r) => r.status !== 401).map((r) => r.ntlm);

  it("'require': the bridge logs on with the MIC and the binding of the server's certificate", async () => {
    sim = await start('require');
    expect(sim.url).toMatch(/^https:/);
    const envelope = await postSoap(SUBSCRIBE, { url: sim.url, auth: ntlm('CONTOSO\\jürgen'), agent: new https.Agent({ ca: serverCert.cert }) });
    expect(envelope.body.type).toBe('response');
    expect(sim.requests.map((r) => r.status)).toEqual([401, 200]);
    expect(sim.requests[1]).toMatchObject({ user: 'CONTOSO\\jürgen', authScheme: 'NTLM', ntlm: { mic: true, channelBinding: 'match', unicode: true } });
  });

  it.each(['require', 'allow'] as const)("'%s': a binding for a different certificate (an intercepting proxy) is refused", async (mode) => {
    sim = await start(mode);
    const front = await interceptingProxy(proxyCert, sim.url);
    proxy = front;
    const error = await postSoap(SUBSCRIBE, { url: front.url, auth: ntlm(), agent: new https.Agent({ ca: proxyCert.cert }) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsAuthError);
    expect(error).toMatchObject({ code: 'EWS_AUTH_FAILED', retriable: false });
    expect((error as Error).message).toMatch(/channel binding/);
    expect(sim.requests.map((r) => r.status)).toEqual([401, 401]);
    expect(sim.requests.every((r) => r.user === undefined)).toBe(true);
  });

  it("'off': the same proxied logon is accepted, and the simulator reports the binding as a mismatch", async () => {
    sim = await start('off');
    const front = await interceptingProxy(proxyCert, sim.url);
    proxy = front;
    await postSoap(SUBSCRIBE, { url: front.url, auth: ntlm(), agent: new https.Agent({ ca: proxyCert.cert }) });
    expect(ntlmOf(sim.requests)).toEqual([{ mic: true, channelBinding: 'mismatch', unicode: true }]);
  });

  it("a client that sends no binding: refused under 'require', accepted under 'allow'", async () => {
    sim = await start('require');
    expect(await bindinglessLogon(sim.url, serverCert.cert)).toBe(401);
    await sim.close();
    sim = await start('allow');
    expect(await bindinglessLogon(sim.url, serverCert.cert)).toBe(200);
    // That library's NEGOTIATE asks for OEM only, so the simulator answered in OEM, as Windows does.
    expect(ntlmOf(sim.requests)).toEqual([{ mic: false, channelBinding: 'absent', unicode: false }]);
  });

  it.each(SOURCE_KINDS)('%s source through NTLM + TLS + require: every connection bound to the certificate', async (kind) => {
    sim = await start('require');
    run = runSource(kind, sim, { auth: ntlm(), mailbox: MAILBOX, tls: { ca: serverCert.cert } });
    await ready(run);
    const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(seq), 'the event');
    const logons = ntlmOf(sim.requests);
    expect(logons.length).toBeGreaterThanOrEqual(2);
    expect(logons.every((d) => d?.channelBinding === 'match' && d.mic)).toBe(true);
    expect(sim.requests.filter((r) => r.status !== 401).every((r) => r.user === 'CONTOSO\\svc' && r.mailbox === MAILBOX)).toBe(true);
  });
});
