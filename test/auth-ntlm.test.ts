/**
 * NTLM, issue 7: the MD4/NTLMv2 primitives against RFC 1320 and MS-NLMP §4.2.4 test vectors (and
 * OpenSSL's legacy MD4 when the CLI has it), the client library against the same vectors, the
 * transport's handshake against EwsSimulator (which verifies the NTLMv2 proof) and against a bare
 * server for the edge cases, and the sources re-authenticating every connection.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo, Socket } from 'node:net';
import ntlmClient from '@ewsjs/ntlm-client';
import md4 from 'js-md4';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EwsAuthError } from '../lib/errors.js';
import type { NtlmAuth } from '../lib/ews/auth-header.js';
import { SOAP_ACTIONS, buildPullSubscribeRequest } from '../lib/ews/requests.js';
import { postSoap, type SoapRequest } from '../lib/ews/transport.js';
import { Authenticator, ntHash, ntowfV2, parseNtlmAuthenticate, verifyNtlmV2Response } from '../lib/testing/auth.js';
import { EwsSimulator, type RecordedRequest } from '../lib/testing/index.js';
import { subscribeResponse } from './fixtures/ews-wire.js';
import { ready, runSource, type SourceRun, stopRun } from './helpers/auth-sources.js';
import { until } from './helpers/until.js';

const hex = (b: Uint8Array | readonly number[]): string => Buffer.from(b as Uint8Array).toString('hex');
const utf16 = (s: string): Buffer => Buffer.from(s, 'utf16le');

const MAILBOX = 'alice@contoso.com';
const PASSWORD = 'Pa55-w0rd-ntlm!';
const SUBSCRIBE: SoapRequest = {
  soapAction: SOAP_ACTIONS.Subscribe,
  envelope: buildPullSubscribeRequest({ folders: ['inbox'], eventTypes: ['NewMail'], timeoutMinutes: 10, requestServerVersion: 'Exchange2013' }),
};

/** What the simulator saw of NTLM: negotiations answered with a challenge, and handshakes it accepted. */
function ntlmCounts(requests: readonly RecordedRequest[]): { negotiations: number; handshakes: number; unauthenticated: number } {
  const ntlm = requests.filter((r) => r.headers['authorization'] === 'NTLM [redacted]');
  return {
    negotiations: ntlm.filter((r) => r.status === 401 && r.body === '').length,
    handshakes: ntlm.filter((r) => r.status !== 401 && r.user !== undefined).length,
    unauthenticated: requests.filter((r) => r.headers['authorization'] === undefined).length,
  };
}

// -------------------------------------------------------------------------------------------------
// Primitives

describe('MD4 and NTLMv2 primitives (test vectors)', () => {
  it('js-md4 (incremental, pure JS) matches RFC 1320', () => {
    const digest = (text: string): string => hex(md4.create().update(Buffer.from(text, 'latin1')).digest());
    expect(digest('')).toBe('31d6cfe0d16ae931b73c59d7e0c089c0');
    expect(digest('abc')).toBe('a448017aaf21d8525fc10ae87aa6729d');
    expect(digest('message digest')).toBe('d9130a8164549fe818874806e1c7014b');
    expect(digest('12345678901234567890123456789012345678901234567890123456789012345678901234567890')).toBe('e33b4ddc9c38f2199c3e7b164fcc0536');
  });

  it('the NT hash needs no OpenSSL MD4 (which Node 20 with OpenSSL 3 lacks without the legacy provider)', () => {
    expect(hex(ntHash('password'))).toBe('8846f7eaee8fb117ad06bdd830b7586c');
    expect(hex(ntHash('Password'))).toBe('a4f49c406510bdcab6824ee7c30fd852'); // MS-NLMP §4.2.2.1.2
    let openssl: string | undefined;
    try {
      openssl = createHash('md4').update(utf16('Password')).digest('hex');
    } catch (error) {
      // The reason this code never calls crypto.createHash('md4').
      expect((error as NodeJS.ErrnoException).code).toBe('ERR_OSSL_EVP_UNSUPPORTED');
    }
    if (openssl !== undefined) expect(openssl).toBe(hex(ntHash('Password')));
  });

  const cli = spawnSync('openssl', ['dgst', '-md4', '-provider', 'legacy', '-provider', 'default'], { input: utf16('Password') });
  const cliDigest = cli.status === 0 ? /([0-9a-f]{32})\s*$/.exec(cli.stdout.toString())?.[1] : undefined;
  it.skipIf(cliDigest === undefined)('agrees with the openssl CLI (legacy provider) on the NT hash', () => {
    expect(hex(ntHash('Password'))).toBe(cliDigest);
  });

  // MS-NLMP §4.2.4: user "User", domain "Domain", password "Password", server challenge
  // 0123456789abcdef, client challenge aa…, time 0, target info NbDomainName "Domain" + NbComputerName "Server".
  const SPEC_TARGET_INFO = Buffer.concat([
    Buffer.from([2, 0, 12, 0]),
    utf16('Domain'),
    Buffer.from([1, 0, 12, 0]),
    utf16('Server'),
    Buffer.from([0, 0, 0, 0]),
  ]);
  const SPEC_SERVER_CHALLENGE = Buffer.from('0123456789abcdef', 'hex');
  const SPEC_NTLMV2_RESPONSE = Buffer.concat([
    Buffer.from('68cd0ab851e51c96aabc927bebef6a1c' + '0101' + '0000' + '00000000' + '0000000000000000' + 'aaaaaaaaaaaaaaaa' + '00000000', 'hex'),
    SPEC_TARGET_INFO,
    Buffer.from('00000000', 'hex'),
  ]);

  it('NTOWFv2 and the simulator\'s NTLMv2 check match MS-NLMP §4.2.4', () => {
    expect(hex(ntowfV2('Password', 'User', 'Domain'))).toBe('0c868a403bfd7a93a3001ef22ef02e3f');
    expect(hex(ntowfV2('Password', 'user', 'Domain'))).toBe('0c868a403bfd7a93a3001ef22ef02e3f'); // the user name is case-insensitive
    expect(verifyNtlmV2Response(SPEC_NTLMV2_RESPONSE, SPEC_SERVER_CHALLENGE, 'Password', 'User', 'Domain')).toBe(true);
    expect(verifyNtlmV2Response(SPEC_NTLMV2_RESPONSE, SPEC_SERVER_CHALLENGE, 'password', 'User', 'Domain')).toBe(false);
    expect(verifyNtlmV2Response(SPEC_NTLMV2_RESPONSE, SPEC_SERVER_CHALLENGE, 'Password', 'User', 'DOMAIN')).toBe(false); // the domain is not
    expect(verifyNtlmV2Response(SPEC_NTLMV2_RESPONSE, Buffer.from('0123456789abcdee', 'hex'), 'Password', 'User', 'Domain')).toBe(false);
    const tampered = Buffer.from(SPEC_NTLMV2_RESPONSE);
    tampered[40] = 0xab; // inside the client challenge
    expect(verifyNtlmV2Response(tampered, SPEC_SERVER_CHALLENGE, 'Password', 'User', 'Domain')).toBe(false);
    expect(verifyNtlmV2Response(SPEC_NTLMV2_RESPONSE.subarray(0, 24), SPEC_SERVER_CHALLENGE, 'Password', 'User', 'Domain')).toBe(false); // NTLMv1 size
  });

  it('@ewsjs/ntlm-client produces exactly the MS-NLMP §4.2.4 LMv2 and NTLMv2 responses', () => {
    // A Type 2 message carrying the spec's challenge and target info (Unicode, extended session security, target info).
    const target = utf16('Domain');
    const head = Buffer.alloc(48);
    head.write('NTLMSSP\0', 0, 'latin1');
    head.writeUInt32LE(2, 8);
    head.writeUInt16LE(target.length, 12);
    head.writeUInt16LE(target.length, 14);
    head.writeUInt32LE(48, 16);
    head.writeUInt32LE(0x00000001 | 0x00000200 | 0x00080000 | 0x00800000, 20);
    SPEC_SERVER_CHALLENGE.copy(head, 24);
    head.writeUInt16LE(SPEC_TARGET_INFO.length, 40);
    head.writeUInt16LE(SPEC_TARGET_INFO.length, 42);
    head.writeUInt32LE(48 + target.length, 44);
    const type2 = ntlmClient.decodeType2Message(Buffer.concat([head, target, SPEC_TARGET_INFO]).toString('base64'));
    expect(type2.version).toBe(2);
    // The spec's time (0 = 1601-01-01) and client challenge (aa…): the library draws hex digits with Math.random.
    const now = vi.spyOn(Date, 'now').mockReturnValue(-11_644_473_600_000);
    const random = vi.spyOn(Math, 'random').mockReturnValue(10 / 16);
    let type3: string;
    try {
      type3 = ntlmClient.createType3Message(type2, 'User', 'Password', 'COMPUTER', 'Domain');
    } finally {
      now.mockRestore();
      random.mockRestore();
    }
    const message = parseNtlmAuthenticate(Buffer.from(type3.slice('NTLM '.length), 'base64'));
    expect(message).toBeDefined();
    expect(hex(message!.ntResponse)).toBe(hex(SPEC_NTLMV2_RESPONSE));
    expect(hex(message!.lmResponse)).toBe('86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa');
    expect(message).toMatchObject({ user: 'User', domain: 'Domain', workstation: 'COMPUTER' });
  });

  it('the library\'s internal NT hash is the pure-JS one (would throw on Node 20 otherwise)', () => {
    const hash = createRequire(import.meta.url)('@ewsjs/ntlm-client/lib/hash.js') as { createNTLMHash(password: string): Buffer };
    expect(hex(hash.createNTLMHash('Password'))).toBe('a4f49c406510bdcab6824ee7c30fd852');
  });
});

// -------------------------------------------------------------------------------------------------
// Transport against the simulator

let sim: EwsSimulator | undefined;
const servers: Server[] = [];
let run: SourceRun | undefined;
afterEach(async () => {
  await stopRun(run, sim);
  run = undefined;
  sim = undefined;
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

describe('NTLM transport against EwsSimulator (NTLMv2 proof verified)', () => {
  it.each<[string, NtlmAuth, string]>([
    ['DOMAIN\\user', { type: 'ntlm', username: 'CONTOSO\\alice', password: PASSWORD }, 'CONTOSO\\alice'],
    ['user + domain', { type: 'ntlm', username: 'alice', domain: 'CONTOSO', password: PASSWORD, workstation: 'WS-42' }, 'CONTOSO\\alice'],
    ['user principal name', { type: 'ntlm', username: MAILBOX, password: PASSWORD }, MAILBOX],
  ])('%s logs on', async (_form, auth, principal) => {
    sim = await EwsSimulator.start({ authSchemes: ['NTLM'], users: { 'CONTOSO\\alice': PASSWORD, [MAILBOX]: PASSWORD } });
    const envelope = await postSoap(SUBSCRIBE, { url: sim.url, auth, mailbox: MAILBOX });
    expect(envelope.body.type).toBe('response');
    expect(sim.requests.at(-1)).toMatchObject({ user: principal, status: 200 });
  });

  it('negotiates without the body, authenticates with it on the same connection, and gives every call its own connection', async () => {
    sim = await EwsSimulator.start({ authSchemes: ['NTLM'], users: { 'CONTOSO\\alice': PASSWORD } });
    const auth: NtlmAuth = { type: 'ntlm', username: 'CONTOSO\\alice', password: PASSWORD };
    for (let i = 0; i < 3; i++) await postSoap(SUBSCRIBE, { url: sim.url, auth });
    // A Type 3 only passes on the socket that got the challenge, so three accepted handshakes
    // prove the pinning; and no request ever arrived without credentials, so no call rode on an
    // earlier call's authenticated socket.
    expect(sim.requests.map((r) => [r.status, r.body === '' ? 'no body' : 'body'])).toEqual([
      [401, 'no body'],
      [200, 'body'],
      [401, 'no body'],
      [200, 'body'],
      [401, 'no body'],
      [200, 'body'],
    ]);
    expect(ntlmCounts(sim.requests)).toEqual({ negotiations: 3, handshakes: 3, unauthenticated: 0 });
  });

  it('runs concurrent calls on separate connections', async () => {
    sim = await EwsSimulator.start({ authSchemes: ['NTLM'], users: { 'CONTOSO\\alice': PASSWORD } });
    const auth: NtlmAuth = { type: 'ntlm', username: 'CONTOSO\\alice', password: PASSWORD };
    const answers = await Promise.all(Array.from({ length: 6 }, () => postSoap(SUBSCRIBE, { url: sim!.url, auth })));
    expect(answers.every((a) => a.body.type === 'response')).toBe(true);
    expect(ntlmCounts(sim.requests)).toMatchObject({ negotiations: 6, handshakes: 6 });
  });

  it('wrong password: a non-retriable EwsAuthError after exactly two requests', async () => {
    sim = await EwsSimulator.start({ authSchemes: ['NTLM'], users: { 'CONTOSO\\alice': PASSWORD } });
    const error = await postSoap(SUBSCRIBE, { url: sim.url, auth: { type: 'ntlm', username: 'CONTOSO\\alice', password: 'nope' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsAuthError);
    expect(error).toMatchObject({ code: 'EWS_AUTH_FAILED', retriable: false, status: 401 });
    expect(sim.requests.map((r) => r.status)).toEqual([401, 401]);
  });

  it('a server that does not offer NTLM: the error says what it offers', async () => {
    sim = await EwsSimulator.start({ authSchemes: ['Basic'] });
    const error = await postSoap(SUBSCRIBE, { url: sim.url, auth: { type: 'ntlm', username: 'alice', password: PASSWORD } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsAuthError);
    expect((error as Error).message).toBe('The server does not offer NTLM (it offers: Basic)');
    expect(sim.requests).toHaveLength(1);
  });

  it('validates the options, naming the field and never echoing a value', () => {
    const bad = (auth: unknown): unknown => postSoap(SUBSCRIBE, { url: 'http://127.0.0.1:9/EWS/Exchange.asmx', auth: auth as NtlmAuth }).catch((e: unknown) => e);
    return Promise.all([
      expect(bad({ type: 'ntlm', username: '', password: 'x' })).resolves.toMatchObject({ message: 'auth.username must be a non-empty string without control characters (got an empty string)' }),
      expect(bad({ type: 'ntlm', username: 'a', password: 5 })).resolves.toMatchObject({ message: 'auth.password must be a string (got a number)' }),
      expect(bad({ type: 'ntlm', username: 'D\\a', domain: 'D', password: 'x' })).resolves.toMatchObject({ message: 'auth.username must not contain a domain (DOMAIN\\user) when auth.domain is set' }),
      expect(bad({ type: 'ntlm', username: 'a', password: 'x', workstation: 'W\n' })).resolves.toMatchObject({ message: 'auth.workstation must be a string without control characters (got a string)' }),
    ]);
  });
});

// -------------------------------------------------------------------------------------------------
// Transport against a bare server, for what the simulator does not do

interface BareServer {
  readonly url: string;
  readonly requests: { authorization: string | undefined; body: string; socket: Socket }[];
  connections(): Promise<number>;
}

async function bareServer(handle: (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>): Promise<BareServer> {
  const requests: BareServer['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ authorization: req.headers.authorization, body, socket: req.socket });
      void Promise.resolve(handle(req, res, body)).catch(() => res.destroy());
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/EWS/Exchange.asmx`,
    requests,
    connections: () => new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n)))),
  };
}

/** An NTLM-only server built on the simulator's Authenticator; `closeAfterChallenge` breaks the connection between rounds, as a bad proxy does. */
function ntlmServer(options: { closeAfterChallenge?: boolean } = {}): Promise<BareServer> {
  const auth = new Authenticator({ schemes: ['NTLM'], users: { 'CONTOSO\\alice': PASSWORD }, verifyToken: undefined });
  return bareServer(async (req, res) => {
    const outcome = await auth.authenticate(req);
    if (!outcome.ok) {
      const close = options.closeAfterChallenge && outcome.ntlmChallenge !== undefined;
      res.writeHead(401, { 'WWW-Authenticate': auth.challenges(outcome.ntlmChallenge), 'Content-Length': '0', ...(close ? { Connection: 'close' } : {}) }).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' }).end(subscribeResponse('sub-1'));
  });
}

const ALICE: NtlmAuth = { type: 'ntlm', username: 'CONTOSO\\alice', password: PASSWORD };

describe('NTLM transport edge cases (bare server)', () => {
  it('closes the handshake connection once the response is read', async () => {
    const server = await ntlmServer();
    await postSoap(SUBSCRIBE, { url: server.url, auth: ALICE });
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]!.socket).toBe(server.requests[1]!.socket);
    await until(async () => (await server.connections()) === 0, 'the connection closed');
    expect(await server.connections()).toBe(0);
  });

  it('a server that drops the connection after its challenge: a clear, non-retriable error', async () => {
    const server = await ntlmServer({ closeAfterChallenge: true });
    const error = await postSoap(SUBSCRIBE, { url: server.url, auth: ALICE }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsAuthError);
    expect((error as Error).message).toMatch(/closed the connection in the middle of the NTLM handshake/);
    expect((error as EwsAuthError).retriable).toBe(false);
    expect(server.requests).toHaveLength(2);
  });

  it('refuses a challenge without target information (NTLMv1 only) instead of answering with NTLMv1', async () => {
    const server = await bareServer((_req, res) => {
      const t2 = Buffer.alloc(32);
      t2.write('NTLMSSP\0', 0, 'latin1');
      t2.writeUInt32LE(2, 8);
      t2.writeUInt32LE(0x00000201, 20); // Unicode + NTLM, no extended session security, no target info
      Buffer.from('0123456789abcdef', 'hex').copy(t2, 24);
      res.writeHead(401, { 'WWW-Authenticate': `NTLM ${t2.toString('base64')}`, 'Content-Length': '0' }).end();
    });
    const error = await postSoap(SUBSCRIBE, { url: server.url, auth: ALICE }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsAuthError);
    expect((error as Error).message).toMatch(/NTLMv1 is refused/);
    expect(server.requests).toHaveLength(1);
  });

  it('a malformed challenge is an EwsAuthError, not a crash', async () => {
    const server = await bareServer((_req, res) => {
      res.writeHead(401, { 'WWW-Authenticate': `NTLM ${Buffer.from('NTLMSSP\0garbage').toString('base64')}`, 'Content-Length': '0' }).end();
    });
    const error = await postSoap(SUBSCRIBE, { url: server.url, auth: ALICE }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsAuthError);
  });

  it('a server that wants no authentication gets the real request, once, after the negotiation', async () => {
    const server = await bareServer((_req, res, body) => {
      if (body === '') res.writeHead(400, { 'Content-Type': 'text/plain' }).end('empty');
      else res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' }).end(subscribeResponse('sub-open'));
    });
    const envelope = await postSoap(SUBSCRIBE, { url: server.url, auth: ALICE });
    expect(envelope.body.type).toBe('response');
    expect(server.requests.map((r) => [r.authorization?.split(' ')[0], r.body === '' ? 'no body' : 'body'])).toEqual([
      ['NTLM', 'no body'],
      [undefined, 'body'],
    ]);
    expect(server.requests[0]!.socket).toBe(server.requests[1]!.socket);
  });

  it('an abort in the middle of the handshake rejects with the reason and leaves no connection', async () => {
    const controller = new AbortController();
    const server = await bareServer((_req, _res) => {
      // Never answers the negotiation.
      controller.abort(new Error('stop'));
    });
    await expect(postSoap(SUBSCRIBE, { url: server.url, auth: ALICE, signal: controller.signal })).rejects.toThrow('stop');
    await until(async () => (await server.connections()) === 0, 'the connection closed');
    expect(await server.connections()).toBe(0);
  });
});

// -------------------------------------------------------------------------------------------------
// Sources

describe('NTLM sources: every connection is authenticated anew', () => {
  it('streaming: the reconnect after ConnectionStatus Closed runs a new handshake', async () => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, authSchemes: ['NTLM'], users: { 'CONTOSO\\svc': PASSWORD } });
    run = runSource('streaming', sim, { auth: { type: 'ntlm', username: 'CONTOSO\\svc', password: PASSWORD }, mailbox: MAILBOX, connectionTimeoutMinutes: 30 });
    await ready(run);
    const first = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(first.seq), 'first event');
    const streamsBefore = sim.requests.filter((r) => r.operation === 'GetStreamingEvents' && r.status === 200).length;
    sim.forceClose();
    await run.until(() => run!.lifecycle('connected').length >= 2, 'the reconnect');
    const second = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(second.seq), 'second event');
    const streams = sim.requests.filter((r) => r.operation === 'GetStreamingEvents' && r.status === 200);
    expect(streams.length).toBe(streamsBefore + 1);
    // Each GetStreamingEvents was itself the authenticating request of a fresh handshake.
    for (const r of streams) expect(r.headers['authorization']).toBe('NTLM [redacted]');
    const counts = ntlmCounts(sim.requests);
    expect(counts.unauthenticated).toBe(0);
    expect(counts.handshakes).toBe(sim.requests.filter((r) => r.status !== 401).length);
    expect(counts.negotiations).toBe(counts.handshakes);
    expect(sim.requests.filter((r) => r.status !== 401).every((r) => r.user === 'CONTOSO\\svc' && r.mailbox === MAILBOX)).toBe(true);
  });

  it.each(['pull', 'hybrid'] as const)('%s: each call is its own handshake, the mailbox reached through impersonation', async (kind) => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, authSchemes: ['NTLM'], users: { 'CONTOSO\\svc': PASSWORD } });
    run = runSource(kind, sim, { auth: { type: 'ntlm', username: 'svc', domain: 'CONTOSO', password: PASSWORD }, mailbox: MAILBOX });
    await ready(run);
    const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(seq), 'the event');
    const counts = ntlmCounts(sim.requests);
    expect(counts.unauthenticated).toBe(0);
    expect(counts.handshakes).toBeGreaterThanOrEqual(2);
    expect(counts.handshakes).toBe(sim.requests.filter((r) => r.status !== 401).length);
  });
});
