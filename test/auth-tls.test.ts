/**
 * TLS, issue 7: an https endpoint (a TLS-terminating TCP proxy in front of EwsSimulator, so NTLM's
 * connection binding survives) with a certificate from a throwaway CA made by the openssl CLI at
 * test time. Verification is on by default, a private CA is trusted through `tls.ca` (public roots
 * kept), `rejectUnauthorized: false` works but warns once, client certificates are presented, and
 * the NTLM per-call connection inherits all of it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { rootCertificates, createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type https from 'node:https';
import { firstValueFrom } from 'rxjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EwsBridgeError } from '../lib/errors.js';
import { SOAP_ACTIONS, buildPullSubscribeRequest } from '../lib/ews/requests.js';
import { createEwsAgent, postSoap } from '../lib/ews/transport.js';
import type { Logger } from '../lib/logger.js';
import { pullSignals } from '../lib/sources/pull.js';
import { streamingNotifications, streamingSignals } from '../lib/sources/streaming.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { ready, runSource, sleep, SOURCE_KINDS, type SourceRun } from './helpers/auth-sources.js';
import { makeTestPki, opensslAvailable, type TestPki } from './helpers/capture-listener.js';
import { until } from './helpers/until.js';

const MAILBOX = 'alice@contoso.com';
const PASSWORD = 'tls-test-Passw0rd';
const NTLM = { type: 'ntlm', username: 'CONTOSO\\svc', password: PASSWORD } as const;
const SUBSCRIBE = {
  soapAction: SOAP_ACTIONS.Subscribe,
  envelope: buildPullSubscribeRequest({ folders: ['inbox'], eventTypes: ['NewMail'], timeoutMinutes: 10, requestServerVersion: 'Exchange2013' }),
};

const haveOpenssl = opensslAvailable();
if (!haveOpenssl) console.warn('auth-tls tests skipped: the openssl command is not available to make test certificates');

interface TlsFront {
  readonly url: string;
  /** TLS connections accepted (handshake done). */
  readonly accepted: () => number;
  close(): Promise<void>;
}

/** Terminates TLS and pipes each connection to its own connection to the simulator (so NTLM stays connection-bound). */
async function tlsFront(pki: TestPki, target: EwsSimulator, options: { requireClientCert?: boolean } = {}): Promise<TlsFront> {
  const targetUrl = new URL(target.url);
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: TlsServer = createTlsServer(
    { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: options.requireClientCert ?? false, rejectUnauthorized: options.requireClientCert ?? false },
    (tlsSocket: TLSSocket) => {
      accepted++;
      const upstream = connect(Number(targetUrl.port), '127.0.0.1');
      for (const s of [tlsSocket, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      }
      tlsSocket.on('error', () => upstream.destroy());
      upstream.on('error', () => tlsSocket.destroy());
      tlsSocket.pipe(upstream).pipe(tlsSocket);
    },
  );
  // Failed handshakes (the client refused our certificate, or sent none) must not crash the test.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}${targetUrl.pathname}`,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function recordingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string) => void lines.push({ level, message });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe.skipIf(!haveOpenssl)('TLS', () => {
  let pki: TestPki;
  let sim: EwsSimulator | undefined;
  let front: TlsFront | undefined;
  let run: SourceRun | undefined;
  const agents: { destroy(): void }[] = [];

  beforeAll(() => {
    pki = makeTestPki();
  }, 60_000);
  afterEach(async () => {
    run?.stop();
    run = undefined;
    for (const a of agents.splice(0)) a.destroy();
    await sleep(20);
    await front?.close();
    front = undefined;
    await sim?.close();
    sim = undefined;
  });

  async function start(options: { requireClientCert?: boolean } = {}): Promise<{ sim: EwsSimulator; front: TlsFront }> {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, users: { 'CONTOSO\\svc': PASSWORD, [MAILBOX]: PASSWORD } });
    front = await tlsFront(pki, sim, options);
    return { sim, front };
  }

  it('verifies the server certificate by default: an unknown CA fails the connection, nothing reaches the server', async () => {
    const { sim, front } = await start();
    const error = await postSoap(SUBSCRIBE, { url: front.url, auth: { type: 'basic', username: MAILBOX, password: PASSWORD } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsBridgeError);
    expect((error as EwsBridgeError).code).toBe('EWS_CONNECTION_FAILED');
    expect((error as Error).message).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT/);
    // A refused certificate does not heal by waiting: sources must fail fast, not retry forever.
    expect((error as EwsBridgeError).retriable).toBe(false);
    expect(sim.requests).toHaveLength(0);
  });

  it('a streaming source fails fast with the typed error when the certificate is refused', async () => {
    const { sim, front } = await start();
    const error = await firstValueFrom(
      streamingNotifications({ url: front.url, auth: { type: 'basic', username: MAILBOX, password: PASSWORD }, requestTimeoutMs: 5_000 }),
    ).catch((e: unknown) => e);
    expect((error as EwsBridgeError).code).toBe('EWS_CONNECTION_FAILED');
    expect((error as EwsBridgeError).retriable).toBe(false);
    expect(sim.requests).toHaveLength(0);
  });

  /** Runs `check` with NODE_EXTRA_CA_CERTS set to `value` (or unset), restoring it afterwards. */
  function withExtraCaCerts(value: string | undefined, check: () => void): void {
    const previous = process.env['NODE_EXTRA_CA_CERTS'];
    try {
      if (value === undefined) delete process.env['NODE_EXTRA_CA_CERTS'];
      else process.env['NODE_EXTRA_CA_CERTS'] = value;
      check();
    } finally {
      if (previous === undefined) delete process.env['NODE_EXTRA_CA_CERTS'];
      else process.env['NODE_EXTRA_CA_CERTS'] = previous;
    }
  }

  function agentCa(ca: string): unknown {
    const agent = createEwsAgent({ url: 'https://mail.contoso.com/EWS/Exchange.asmx', tls: { ca } }) as https.Agent;
    agents.push(agent);
    return agent.options.ca;
  }

  it('tls.ca adds a private CA to the public roots instead of replacing them', () => {
    withExtraCaCerts(undefined, () => expect(agentCa(pki.caCert)).toEqual([...rootCertificates, pki.caCert]));
  });

  it('tls.ca keeps the certificates of NODE_EXTRA_CA_CERTS trusted too; an unreadable file adds nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ews-extra-ca-'));
    try {
      const file = join(dir, 'corporate.pem');
      writeFileSync(file, pki.caCert);
      withExtraCaCerts(file, () => expect(agentCa('PRIVATE-CA-PEM')).toEqual([...rootCertificates, pki.caCert, 'PRIVATE-CA-PEM']));
      withExtraCaCerts(join(dir, 'missing.pem'), () => expect(agentCa('PRIVATE-CA-PEM')).toEqual([...rootCertificates, 'PRIVATE-CA-PEM']));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(SOURCE_KINDS)('%s over https with a private CA, NTLM on a verified connection per call', async (kind) => {
    const { sim, front } = await start();
    run = runSource(kind, sim, { url: front.url, auth: NTLM, mailbox: MAILBOX, tls: { ca: pki.caCert } });
    await ready(run);
    const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(seq), 'the event');
    const accepted = sim.requests.filter((r) => r.status !== 401);
    expect(accepted.every((r) => r.user === 'CONTOSO\\svc')).toBe(true);
    // Every NTLM call opened its own TLS connection (negotiate + authenticate on it).
    expect(front.accepted()).toBeGreaterThanOrEqual(accepted.length);
  });

  it('the NTLM per-call connection takes the TLS settings of a createAgent agent', async () => {
    const { sim, front } = await start();
    run = runSource('pull', sim, { url: front.url, auth: NTLM, mailbox: MAILBOX, createAgent: () => createEwsAgent({ url: front.url, tls: { ca: pki.caCert } }) });
    await ready(run);
    expect(sim.requests.some((r) => r.operation === 'GetEvents' && r.status === 200)).toBe(true);
  });

  it('rejectUnauthorized: false connects, and warns once per logger however many agents are made', async () => {
    const { sim, front } = await start();
    const logger = recordingLogger();
    const options = { url: front.url, auth: { type: 'basic', username: MAILBOX, password: PASSWORD } as const, mailbox: MAILBOX, tls: { rejectUnauthorized: false }, logger, pollIntervalMs: 50 };
    const subs = [streamingSignals(options).subscribe({ error: () => undefined }), pullSignals(options).subscribe({ error: () => undefined })];
    try {
      await until(() => sim.requests.some((r) => r.operation === 'GetEvents') && sim.openStreamingConnections > 0, 'a GetEvents and a streaming connection', { intervalMs: 10 });
      expect(sim.openStreamingConnections).toBe(1);
    } finally {
      for (const s of subs) s.unsubscribe();
    }
    const warnings = logger.lines.filter((l) => l.level === 'warn' && l.message.includes('rejectUnauthorized'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toMatch(/verification is disabled/);
  });

  it('presents a client certificate when the endpoint requires one', async () => {
    const { sim, front } = await start({ requireClientCert: true });
    const auth = { type: 'basic', username: MAILBOX, password: PASSWORD } as const;
    const without = createEwsAgent({ url: front.url, tls: { ca: pki.caCert } });
    agents.push(without);
    const refused = await postSoap(SUBSCRIBE, { url: front.url, auth, agent: without }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(EwsBridgeError);
    expect(sim.requests).toHaveLength(0);
    const withCert = createEwsAgent({ url: front.url, tls: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey } });
    agents.push(withCert);
    const envelope = await postSoap(SUBSCRIBE, { url: front.url, auth, agent: withCert });
    expect(envelope.body.type).toBe('response');
    expect(sim.requests.at(-1)).toMatchObject({ status: 200, user: MAILBOX });
  });

  it('validation: TLS settings are never silently ignored', () => {
    const base = { auth: { type: 'none' } as const };
    const error = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    expect(error(() => createEwsAgent({ url: 'http://127.0.0.1/EWS/Exchange.asmx', tls: { ca: 'x' } }))).toMatchObject({ message: 'tls (and ca) apply only to an https url' });
    expect(error(() => createEwsAgent({ url: 'https://h/EWS/Exchange.asmx', maxSockets: 0 }))).toMatchObject({ message: 'maxSockets must be a positive integer or Infinity (got 0)' });
    // `user:secret@h` parses as a URL with the scheme `user:`: only the kind of value is named.
    expect(error(() => createEwsAgent({ url: 'user:secret@h' }))).toMatchObject({ message: 'url must be an absolute http or https URL (got a string)' });
    expect(error(() => createEwsAgent({ url: 'https://h/EWS/Exchange.asmx', tls: { cert: 'c' } }))).toMatchObject({ message: 'tls.cert and tls.key must be given together (got only tls.cert)' });
    expect(error(() => createEwsAgent({ url: 'https://h/EWS/Exchange.asmx', tls: { rejectUnauthorized: 'no' as unknown as boolean } }))).toMatchObject({
      message: 'tls.rejectUnauthorized must be a boolean (got "no")',
    });
    const sourceError = (options: object): Promise<unknown> =>
      new Promise((resolve) => {
        pullSignals({ ...base, url: 'https://h/EWS/Exchange.asmx', ...options }).subscribe({ error: resolve, complete: () => resolve(undefined) });
      });
    return Promise.all([
      expect(sourceError({ url: 'http://h/EWS/Exchange.asmx', tls: { ca: 'x' } })).resolves.toMatchObject({ message: 'tls applies only to an https url' }),
      expect(sourceError({ tls: { ca: 'x' }, createAgent: () => {
          throw new Error('never called: the options are refused first');
        } })).resolves.toMatchObject({
        message: 'give tls or createAgent, not both (put the TLS settings on your agent)',
      }),
      expect(sourceError({ tls: { passphrase: 5 } })).resolves.toMatchObject({ message: 'tls.passphrase must be a string (got a number)' }),
      // A secret's value is never echoed, only its kind.
      expect(sourceError({ tls: { key: 12345678, cert: 'c' } })).resolves.toMatchObject({ message: 'tls.key must be a string, a Buffer or a non-empty array of them (got a number)' }),
    ]);
  });
});
