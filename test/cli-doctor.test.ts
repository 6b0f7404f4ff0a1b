/**
 * `ews-push-bridge doctor` (issue 16) against EwsSimulator: a healthy hardened setup (NTLM over
 * TLS with Extended Protection required, impersonation, affinity) passes, and each failure mode —
 * DNS, TCP, an untrusted certificate, a URL that is not EWS, a scheme the server does not offer, a
 * wrong password, impersonation denied, throttling, no streaming event — fails its own check with a
 * fix and exit code 1. One run goes through the real command line (`--json`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../cli/config.js';
import { runDoctor, type DoctorCheck, type DoctorReport } from '../cli/doctor.js';
import { EwsSimulator, type EwsSimulatorOptions } from '../lib/testing/index.js';
import { opensslAvailable } from './helpers/capture-listener.js';
import { spawnCli } from './helpers/cli-process.js';
import { makeSelfSignedCert, type TestCert } from './helpers/test-certs.js';

const PASSWORD = 'doctor-Passw0rd';
const haveOpenssl = opensslAvailable();
if (!haveOpenssl) console.warn('cli-doctor: TLS cases skipped, the openssl command is not available');

let dir: string;
let cert: TestCert | undefined;
/** Valid for 2 days: the doctor warns that it expires soon. */
let expiring: TestCert | undefined;
const sims: EwsSimulator[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ews-doctor-'));
  if (haveOpenssl) {
    cert = makeSelfSignedCert({ days: 400 });
    expiring = makeSelfSignedCert({ name: 'expiring.local' });
    writeFileSync(join(dir, 'ca.pem'), `${cert.cert}\n${expiring.cert}`);
  }
}, 30_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const sim of sims.splice(0)) await sim.close();
});

async function start(options: EwsSimulatorOptions = {}): Promise<EwsSimulator> {
  const sim = await EwsSimulator.start({ users: { 'CONTOSO\\svc': PASSWORD }, ...options });
  sims.push(sim);
  return sim;
}

interface ConfigShape {
  url: string;
  auth?: Record<string, unknown>;
  caFile?: boolean;
  mailboxes?: string[];
  mode?: 'streaming' | 'pull' | 'hybrid';
}

function rawConfig(shape: ConfigShape): Record<string, unknown> {
  return {
    ews: {
      url: shape.url,
      auth: shape.auth ?? { type: 'ntlm', username: 'CONTOSO\\svc', passwordEnv: 'EWS_PASSWORD' },
      ...(shape.caFile ? { caFile: 'ca.pem' } : {}),
    },
    mode: shape.mode ?? 'streaming',
    mailboxes: shape.mailboxes ?? ['alice@contoso.com', 'bob@contoso.com'],
    listener: { url: 'http://127.0.0.1:9/listener' },
  };
}

async function doctor(shape: ConfigShape, extra: Partial<Parameters<typeof runDoctor>[0]> = {}): Promise<{ report: DoctorReport; exitCode: number; out: string }> {
  const config = resolveConfig(rawConfig(shape), join(dir, 'bridge.json'), { EWS_PASSWORD: PASSWORD });
  let out = '';
  const { report, exitCode } = await runDoctor({ config, stdout: { write: (s: string) => (out += s) }, stepTimeoutMs: 10_000, ...extra });
  return { report, exitCode, out };
}

const byId = (report: DoctorReport): Record<string, DoctorCheck> => Object.fromEntries(report.checks.map((c) => [c.id, c]));
const statuses = (report: DoctorReport): Record<string, string> => Object.fromEntries(report.checks.map((c) => [c.id, c.status]));

describe.skipIf(!haveOpenssl)('doctor over TLS', () => {
  it('a healthy hardened setup: every needed check passes, in order, exit 0', async () => {
    const sim = await start({ tls: { key: cert!.key, cert: cert!.cert }, extendedProtection: 'require', authSchemes: ['Negotiate', 'NTLM'], affinity: true });
    const { report, exitCode, out } = await doctor({ url: sim.url, caFile: true });
    expect(report.checks.map((c) => c.id)).toEqual([
      'dns', 'tcp', 'tls', 'ews', 'auth-schemes', 'auth', 'extended-protection', 'server-version',
      'mailbox:alice@contoso.com', 'mailbox:bob@contoso.com', 'streaming', 'affinity', 'throttling',
    ]);
    expect(statuses(report)).toMatchObject({ dns: 'pass', tcp: 'pass', tls: 'pass', ews: 'pass', 'auth-schemes': 'pass', auth: 'pass', 'extended-protection': 'pass', 'server-version': 'pass', affinity: 'pass', throttling: 'pass', streaming: 'skip' });
    expect(byId(report)['extended-protection']!.detail).toMatch(/^required/);
    expect(byId(report)['auth-schemes']!.detail).toBe('offered: Negotiate, NTLM; configured: ntlm');
    expect(byId(report)['tls']!.detail).toMatch(/trusted, .*IP Address:127\.0\.0\.1.*channel binding hash sha256/);
    expect(byId(report)['server-version']!.detail).toMatch(/^Exchange/);
    expect(exitCode).toBe(0);
    expect(report.ok).toBe(true);
    expect(out).toMatch(/All needed checks passed\./);
    expect(out).not.toContain(PASSWORD);
  });

  it("Extended Protection 'off': still passes, reported as not required; a certificate about to expire is a warning", async () => {
    const sim = await start({ tls: { key: expiring!.key, cert: expiring!.cert }, authSchemes: ['NTLM'] });
    const { report, exitCode } = await doctor({ url: sim.url, caFile: true, mailboxes: ['alice@contoso.com'] });
    expect(byId(report)['extended-protection']!.detail).toMatch(/^not required/);
    expect(byId(report)['tls']).toMatchObject({ status: 'warn', fix: 'renew the Exchange certificate' });
    expect(exitCode).toBe(0);
  });

  it('an untrusted certificate: TLS fails with the caFile fix, nothing further is tried', async () => {
    const sim = await start({ tls: { key: cert!.key, cert: cert!.cert } });
    const { report, exitCode, out } = await doctor({ url: sim.url });
    expect(byId(report)['tls']).toMatchObject({ status: 'fail' });
    expect(byId(report)['tls']!.fix).toMatch(/ews\.caFile/);
    expect(statuses(report)).toMatchObject({ ews: 'skip', auth: 'skip' });
    expect(sim.requests).toHaveLength(0);
    expect(exitCode).toBe(1);
    expect(out).toMatch(/FAIL {2}TLS/);
  });

  it('--send-test-mail: a streaming subscription delivers the event sent while the doctor waits', async () => {
    const sim = await start({ tls: { key: cert!.key, cert: cert!.cert }, authSchemes: ['NTLM'] });
    const { report } = await doctor(
      { url: sim.url, caFile: true, mailboxes: ['alice@contoso.com'] },
      { sendTestMail: true, onWaitingForMail: (mailbox) => void sim.deliver(mailbox, { type: 'NewMail' }) },
    );
    expect(byId(report)['streaming']).toMatchObject({ status: 'pass' });
  });
});

describe('doctor failure modes', () => {
  it('DNS: a host that does not resolve', async () => {
    const { report, exitCode } = await doctor({ url: 'https://no-such-host.invalid/EWS/Exchange.asmx' });
    expect(byId(report)['dns']).toMatchObject({ status: 'fail' });
    expect(statuses(report)).toMatchObject({ tcp: 'skip', tls: 'skip', auth: 'skip' });
    expect(exitCode).toBe(1);
  });

  it('TCP: nothing listens on the port', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = server.address() as { port: number };
        server.close(() => resolve(p));
      });
    });
    const { report } = await doctor({ url: `http://127.0.0.1:${port}/EWS/Exchange.asmx` });
    expect(byId(report)['tcp']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/ECONNREFUSED/) });
  });

  it('a URL that is not EWS (a 404 HTML page)', async () => {
    const sim = await start();
    const { report } = await doctor({ url: sim.url.replace('/EWS/Exchange.asmx', '/owa/') });
    expect(byId(report)['ews']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/HTTP 404/) });
    expect(byId(report)['ews']!.fix).toMatch(/EWS\/Exchange\.asmx/);
    // Plain http is a warning, not a failure.
    expect(byId(report)['tls']).toMatchObject({ status: 'warn' });
  });

  it('a scheme the server does not offer: named, with what it offers', async () => {
    const sim = await start({ authSchemes: ['NTLM'] });
    const { report } = await doctor({ url: sim.url, auth: { type: 'basic', username: 'svc', passwordEnv: 'EWS_PASSWORD' } });
    expect(byId(report)['auth-schemes']).toMatchObject({ status: 'fail', detail: 'offered: NTLM; configured: basic' });
    expect(byId(report)['auth']).toMatchObject({ status: 'fail' });
  });

  it('a wrong password: auth fails with the scheme\'s fix, and no secret is printed', async () => {
    const sim = await start({ users: { 'CONTOSO\\svc': 'another-password' }, authSchemes: ['NTLM'] });
    const { report, out } = await doctor({ url: sim.url });
    expect(byId(report)['auth']).toMatchObject({ status: 'fail' });
    expect(byId(report)['auth']!.fix).toMatch(/user name, domain and password/);
    expect(statuses(report)).toMatchObject({ 'server-version': 'skip' });
    expect(out).not.toContain(PASSWORD);
  });

  it('impersonation denied for one mailbox: that mailbox fails with the ApplicationImpersonation fix', async () => {
    const sim = await start({ impersonation: { 'CONTOSO\\svc': ['alice@contoso.com'] } });
    const { report, exitCode } = await doctor({ url: sim.url });
    expect(byId(report)['mailbox:alice@contoso.com']).toMatchObject({ status: 'pass' });
    expect(byId(report)['mailbox:bob@contoso.com']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/ErrorImpersonateUserDenied/) });
    expect(byId(report)['mailbox:bob@contoso.com']!.fix).toMatch(/ApplicationImpersonation/);
    expect(exitCode).toBe(1);
  });

  it('a mailbox that does not exist, and no affinity cookie where a group needs one (a warning)', async () => {
    const sim = await start({ autoCreateMailboxes: false, mailboxes: ['alice@contoso.com'] });
    const { report } = await doctor({ url: sim.url });
    expect(byId(report)['mailbox:bob@contoso.com']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/ErrorNonExistentMailbox/) });
    expect(byId(report)['affinity']).toMatchObject({ status: 'warn' });
  });

  it('throttling: ErrorServerBusy on Subscribe is reported with the throttling-policy fix', async () => {
    const sim = await start();
    sim.inject({ type: 'server-busy', backOffMs: 10, operation: 'Subscribe', mailbox: 'bob@contoso.com' });
    const { report } = await doctor({ url: sim.url });
    expect(byId(report)['throttling']).toMatchObject({ status: 'fail', detail: 'ErrorServerBusy' });
    expect(byId(report)['throttling']!.fix).toMatch(/throttling policy/);
  });

  it('--send-test-mail with no event: fails after the timeout with a fix', async () => {
    const sim = await start();
    const { report } = await doctor({ url: sim.url, mailboxes: ['alice@contoso.com'] }, { sendTestMail: true, testMailTimeoutMs: 300 });
    expect(byId(report)['streaming']).toMatchObject({ status: 'fail', detail: 'no event within 0.3 s' });
  });

  it('through the command line: --json, exit code 1 for a failing setup', async () => {
    const sim = await start({ users: { 'CONTOSO\\svc': 'another-password' } });
    const file = join(dir, 'cli.json');
    writeFileSync(file, JSON.stringify(rawConfig({ url: sim.url })));
    const child = spawnCli(['doctor', '--config', file, '--json'], { EWS_PASSWORD: PASSWORD });
    const code = await child.exited(60_000);
    const report = JSON.parse(child.stdout()) as DoctorReport;
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    expect(byId(report)['auth']).toMatchObject({ status: 'fail' });
    expect(child.stdout()).not.toContain(PASSWORD);
  }, 90_000);
});
