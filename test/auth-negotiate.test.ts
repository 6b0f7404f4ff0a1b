/**
 * Negotiate/Kerberos (issue 16). Without the optional peer `kerberos`: a typed `EWS_PEER_MISSING`
 * error, and everything else still works. With it and Debian's MIT KDC tools: a throwaway realm on
 * 127.0.0.1 (principals and keytabs made by the set-up), tickets from a client keytab and from a
 * ticket cache, accepted by the `kerberos` package's GSSAPI server inside EwsSimulator — MIT
 * Kerberos checks the ticket, not code of this project — and the three sources over TLS.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EwsAuthError, EwsCredentialsError, EwsPeerMissingError } from '../lib/errors.js';
import type { NegotiateAuth } from '../lib/ews/auth-header.js';
import { importKerberos, kerberosLoadError, negotiateAuthorizer } from '../lib/ews/negotiate.js';
import { SOAP_ACTIONS, buildPullSubscribeRequest } from '../lib/ews/requests.js';
import { postSoap } from '../lib/ews/transport.js';
import { EwsSimulator, kerberosAcceptor } from '../lib/testing/index.js';
import { ready, runSource, SOURCE_KINDS, stopRun, type SourceRun } from './helpers/auth-sources.js';
import { opensslAvailable } from './helpers/capture-listener.js';
import { kdcUnavailableReason, startKdc, type TestKdc } from './helpers/kdc.js';
import { makeSelfSignedCert } from './helpers/test-certs.js';

const MAILBOX = 'alice@contoso.com';
const SUBSCRIBE = {
  soapAction: SOAP_ACTIONS.Subscribe,
  envelope: buildPullSubscribeRequest({ folders: ['inbox'], eventTypes: ['NewMail'], timeoutMinutes: 10, requestServerVersion: 'Exchange2013' }),
};
const NEGOTIATE: NegotiateAuth = { type: 'negotiate' };

const kerberosLoads = await importKerberos().then(
  () => true,
  () => false,
);
const kdcMissing = kdcUnavailableReason();
const skipReason = !kerberosLoads
  ? 'the optional peer kerberos is not installed (npm_config_nodedir=/usr npm install --no-save kerberos, with libkrb5-dev)'
  : kdcMissing;
if (skipReason !== undefined) console.warn(`auth-negotiate: Kerberos suite skipped: ${skipReason}`);

describe('Negotiate without a KDC', () => {
  it('validates the options, naming the field', async () => {
    const bad = (auth: unknown): Promise<unknown> => postSoap(SUBSCRIBE, { url: 'http://127.0.0.1:9/EWS/Exchange.asmx', auth: auth as NegotiateAuth }).catch((e: unknown) => e);
    await expect(bad({ type: 'negotiate', spn: 'mail.contoso.com' })).resolves.toMatchObject({ message: 'auth.spn must be service/host, e.g. HTTP/mail.contoso.com (got a string)' });
    await expect(bad({ type: 'negotiate', principal: '' })).resolves.toMatchObject({ message: 'auth.principal must be a non-empty string without control characters (got an empty string)' });
    await expect(bad({ type: 'negotiate', mechanism: 'ntlm' })).resolves.toMatchObject({ message: 'auth.mechanism must be "spnego" or "kerberos" (got "ntlm")' });
  });

  it('a missing peer is a typed, non-retriable EWS_PEER_MISSING error that says what to install', async () => {
    const authorizer = negotiateAuthorizer(NEGOTIATE, () => Promise.reject(kerberosLoadError(Object.assign(new Error('Cannot find package'), { code: 'ERR_MODULE_NOT_FOUND' }))));
    const error = await authorizer.forCall!().initial({ url: new URL('https://mail.contoso.com/EWS/Exchange.asmx'), socket: undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsPeerMissingError);
    expect(error).toMatchObject({ code: 'EWS_PEER_MISSING', retriable: false, packageName: 'kerberos' });
    expect((error as Error).message).toMatch(/npm install kerberos/);
    expect(kerberosLoadError(new Error('undefined symbol: gss_init_sec_context')).message).toMatch(/native addon did not load/);
  });

  it.runIf(!kerberosLoads)('without the package installed, a call fails with EWS_PEER_MISSING before anything is sent', async () => {
    const sim = await EwsSimulator.start();
    try {
      const error = await postSoap(SUBSCRIBE, { url: sim.url, auth: NEGOTIATE }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'EWS_PEER_MISSING', retriable: false });
      expect(sim.requests).toHaveLength(0);
    } finally {
      await sim.close();
    }
  });
});

describe.skipIf(skipReason !== undefined)('Negotiate against a real MIT KDC', () => {
  let kdc: TestKdc;
  const saved: Record<string, string | undefined> = {};
  let sim: EwsSimulator | undefined;
  let run: SourceRun | undefined;

  function setEnv(values: Record<string, string | undefined>): void {
    for (const [name, value] of Object.entries(values)) {
      if (!(name in saved)) saved[name] = process.env[name];
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  /** Credentials from the client keytab, a fresh ticket cache per test. */
  let cacheNo = 0;
  function keytabCredentials(): void {
    setEnv({ KRB5_CLIENT_KTNAME: kdc.clientKeytab, KRB5CCNAME: `FILE:${join(kdc.dir, `cc-${++cacheNo}`)}` });
  }

  beforeAll(async () => {
    kdc = await startKdc();
    setEnv({ KRB5_CONFIG: kdc.krb5Conf, KRB5_KTNAME: kdc.serviceKeytab });
  }, 60_000);
  afterEach(async () => {
    await stopRun(run, sim);
    run = undefined;
    sim = undefined;
  });
  afterAll(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await kdc?.stop();
  });

  it('logs on in one round trip with a ticket got from the client keytab (KRB5_CLIENT_KTNAME), SPN HTTP/<host> by default', async () => {
    keytabCredentials();
    sim = await EwsSimulator.start({ acceptNegotiate: kerberosAcceptor({ spn: 'HTTP/127.0.0.1' }) });
    const envelope = await postSoap(SUBSCRIBE, { url: sim.url, auth: NEGOTIATE, mailbox: MAILBOX });
    expect(envelope.body.type).toBe('response');
    expect(sim.requests.map((r) => [r.status, r.headers['authorization'], r.authScheme, r.user])).toEqual([[200, 'Negotiate [redacted]', 'Negotiate', kdc.clientPrincipal]]);
  });

  it('an overridden SPN and the raw Kerberos mechanism', async () => {
    keytabCredentials();
    sim = await EwsSimulator.start({ acceptNegotiate: kerberosAcceptor({ spn: 'HTTP/localhost' }) });
    await postSoap(SUBSCRIBE, { url: sim.url, auth: { type: 'negotiate', spn: 'HTTP/localhost', mechanism: 'kerberos' } });
    expect(sim.requests.map((r) => [r.status, r.user])).toEqual([[200, kdc.clientPrincipal]]);
  });

  it('uses the process\'s ticket cache (KRB5CCNAME) filled by kinit, with no keytab', async () => {
    const cache = `FILE:${join(kdc.dir, 'kinit-cache')}`;
    execFileSync('kinit', ['-k', '-t', kdc.clientKeytab, kdc.clientPrincipal], { env: { ...process.env, KRB5CCNAME: cache } });
    setEnv({ KRB5_CLIENT_KTNAME: join(kdc.dir, 'no-such.keytab'), KRB5CCNAME: cache });
    sim = await EwsSimulator.start({ acceptNegotiate: kerberosAcceptor() });
    await postSoap(SUBSCRIBE, { url: sim.url, auth: { type: 'negotiate', principal: kdc.clientPrincipal } });
    expect(sim.requests.map((r) => r.user)).toEqual([kdc.clientPrincipal]);
  });

  it('no credentials at all: EwsCredentialsError (not retriable), nothing sent', async () => {
    setEnv({ KRB5_CLIENT_KTNAME: join(kdc.dir, 'no-such.keytab'), KRB5CCNAME: `FILE:${join(kdc.dir, 'empty-cache')}` });
    sim = await EwsSimulator.start({ acceptNegotiate: kerberosAcceptor() });
    const error = await postSoap(SUBSCRIBE, { url: sim.url, auth: NEGOTIATE }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsCredentialsError);
    expect(error).toMatchObject({ code: 'EWS_AUTH_FAILED', retriable: false });
    expect((error as Error).message).toMatch(/HTTP\/127\.0\.0\.1/);
    expect(sim.requests).toHaveLength(0);
  });

  it('an SPN the KDC does not know: EwsCredentialsError naming it, nothing sent', async () => {
    keytabCredentials();
    sim = await EwsSimulator.start({ acceptNegotiate: kerberosAcceptor() });
    const error = await postSoap(SUBSCRIBE, { url: sim.url, auth: { type: 'negotiate', spn: 'HTTP/unknown.ews.test' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsCredentialsError);
    expect((error as Error).message).toMatch(/HTTP\/unknown\.ews\.test/);
    expect(sim.requests).toHaveLength(0);
  });

  it('a KDC that cannot be reached: EwsCredentialsError, retriable', async () => {
    const deadConf = join(kdc.dir, 'dead-krb5.conf');
    writeFileSync(deadConf, `[libdefaults]\n default_realm = ${kdc.realm}\n dns_lookup_kdc = false\n udp_preference_limit = 1\n[realms]\n ${kdc.realm} = {\n  kdc = 127.0.0.1:9\n }\n`);
    keytabCredentials();
    setEnv({ KRB5_CONFIG: deadConf });
    try {
      const error = await postSoap(SUBSCRIBE, { url: 'http://127.0.0.1:9/EWS/Exchange.asmx', auth: NEGOTIATE }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EwsCredentialsError);
      expect(error).toMatchObject({ retriable: true });
    } finally {
      setEnv({ KRB5_CONFIG: kdc.krb5Conf });
    }
  });

  it('a ticket for a service whose keys the server does not have is refused: EwsAuthError after one request', async () => {
    keytabCredentials();
    // The server accepts only HTTP/localhost; the client asks for HTTP/127.0.0.1.
    sim = await EwsSimulator.start({ acceptNegotiate: kerberosAcceptor({ spn: 'HTTP/localhost' }) });
    const error = await postSoap(SUBSCRIBE, { url: sim.url, auth: NEGOTIATE }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EwsAuthError);
    expect((error as Error).message).toMatch(/refused the Kerberos ticket for HTTP\/127\.0\.0\.1/);
    expect(sim.requests.map((r) => r.status)).toEqual([401]);
  });

  it('a server that offers only NTLM: the error says so', async () => {
    keytabCredentials();
    sim = await EwsSimulator.start({ authSchemes: ['NTLM'] });
    const error = await postSoap(SUBSCRIBE, { url: sim.url, auth: NEGOTIATE }).catch((e: unknown) => e);
    expect((error as Error).message).toBe('The server does not offer Negotiate (it offers: NTLM)');
  });

  describe.skipIf(!opensslAvailable())('sources over TLS', () => {
    let cert: ReturnType<typeof makeSelfSignedCert>;
    beforeAll(() => {
      cert = makeSelfSignedCert();
    }, 30_000);

    it.each(SOURCE_KINDS)('%s source with Kerberos over https', async (kind) => {
      keytabCredentials();
      sim = await EwsSimulator.start({
        timeScale: 0.001,
        keepAliveIntervalMs: 200,
        tls: { key: cert.key, cert: cert.cert },
        authSchemes: ['Negotiate'],
        acceptNegotiate: kerberosAcceptor(),
      });
      run = runSource(kind, sim, { auth: NEGOTIATE, mailbox: MAILBOX, tls: { ca: cert.cert } });
      await ready(run);
      const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
      await run.until(() => run!.received.includes(seq), 'the event');
      const answered = sim.requests.filter((r) => r.status !== undefined);
      expect(answered.length).toBeGreaterThanOrEqual(2);
      expect(answered.every((r) => r.status !== 401 && r.authScheme === 'Negotiate' && r.user === kdc.clientPrincipal)).toBe(true);
    });

    it('a plain https agent of the caller carries the Negotiate header too', async () => {
      keytabCredentials();
      sim = await EwsSimulator.start({ tls: { key: cert.key, cert: cert.cert }, acceptNegotiate: kerberosAcceptor() });
      const agent = new https.Agent({ ca: cert.cert, keepAlive: true });
      try {
        for (let i = 0; i < 3; i++) await postSoap(SUBSCRIBE, { url: sim.url, auth: NEGOTIATE, agent });
      } finally {
        agent.destroy();
      }
      expect(sim.requests.map((r) => r.status)).toEqual([200, 200, 200]);
    });
  });
});
