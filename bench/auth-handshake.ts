/**
 * Handshake cost per authentication mode (issue 16): sequential Subscribe calls against
 * EwsSimulator on 127.0.0.1, each on the connection the mode needs (NTLM: a fresh connection and a
 * two-round handshake per call; over https also a TLS handshake), in ms per call, median and p90
 * over `calls` calls after a warm-up. The simulator's own work is in every figure; compare modes
 * with each other, against "none" as the floor. Also the CPU cost of building one NTLM
 * AUTHENTICATE message (MIC and binding included).
 *
 * Kerberos runs when the optional peer `kerberos` loads and Debian's MIT KDC tools are present
 * (a throwaway realm on 127.0.0.1, as in the tests).
 *
 * Run: `npx tsx bench/auth-handshake.ts [calls=200]`. Prints a Markdown table.
 */
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import http from 'node:http';
import { authenticateMessage, channelBindingsHash, fileTimeNow, negotiateMessage, parseChallengeMessage, tlsServerEndPoint } from '../lib/ews/ntlm-messages.js';
import { importKerberos } from '../lib/ews/negotiate.js';
import { SOAP_ACTIONS, buildPullSubscribeRequest } from '../lib/ews/requests.js';
import { postSoap } from '../lib/ews/transport.js';
import type { EwsAuth } from '../lib/ews/auth-header.js';
import { EwsSimulator, kerberosAcceptor, type EwsSimulatorOptions } from '../lib/testing/index.js';
import { ntlmChallengeMessage } from '../lib/testing/auth.js';
import { kdcUnavailableReason, startKdc } from '../test/helpers/kdc.js';
import { makeSelfSignedCert } from '../test/helpers/test-certs.js';
import { fixed, median, table } from './stats.js';

const calls = Number(process.argv[2] ?? 200) || 200;
const PASSWORD = 'bench-Passw0rd';
const SUBSCRIBE = {
  soapAction: SOAP_ACTIONS.Subscribe,
  envelope: buildPullSubscribeRequest({ folders: ['inbox'], eventTypes: ['NewMail'], timeoutMinutes: 10, requestServerVersion: 'Exchange2013' }),
};
const cert = makeSelfSignedCert({ days: 30 });

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

interface Mode {
  readonly name: string;
  readonly tls: boolean;
  readonly sim: EwsSimulatorOptions;
  readonly auth: EwsAuth;
}

async function measure(mode: Mode): Promise<{ name: string; median: number; p90: number }> {
  const sim = await EwsSimulator.start({ ...mode.sim, ...(mode.tls ? { tls: { key: cert.key, cert: cert.cert } } : {}) });
  // A keep-alive pool, as the sources use: one-shot schemes reuse connections, NTLM cannot.
  const agent = mode.tls ? new https.Agent({ keepAlive: true, ca: cert.cert }) : new http.Agent({ keepAlive: true });
  try {
    for (let i = 0; i < 20; i++) await postSoap(SUBSCRIBE, { url: sim.url, auth: mode.auth, agent });
    const times: number[] = [];
    for (let i = 0; i < calls; i++) {
      const started = performance.now();
      await postSoap(SUBSCRIBE, { url: sim.url, auth: mode.auth, agent });
      times.push(performance.now() - started);
    }
    return { name: mode.name, median: median(times), p90: percentile(times, 0.9) };
  } finally {
    agent.destroy();
    await sim.close();
  }
}

const ntlm: EwsAuth = { type: 'ntlm', username: 'CONTOSO\\svc', password: PASSWORD };
const basic: EwsAuth = { type: 'basic', username: 'svc', password: PASSWORD };
const users = { 'CONTOSO\\svc': PASSWORD, svc: PASSWORD };
const modes: Mode[] = [
  { name: 'none (floor), http', tls: false, sim: { authSchemes: ['Basic'] }, auth: basic },
  { name: 'Basic, https', tls: true, sim: { users }, auth: basic },
  { name: 'NTLM, http', tls: false, sim: { users, authSchemes: ['NTLM'] }, auth: ntlm },
  { name: 'NTLM, https, Extended Protection off', tls: true, sim: { users, authSchemes: ['NTLM'] }, auth: ntlm },
  { name: 'NTLM, https, Extended Protection require', tls: true, sim: { users, authSchemes: ['NTLM'], extendedProtection: 'require' }, auth: ntlm },
];

const rows: { name: string; median: number; p90: number }[] = [];
for (const mode of modes) {
  process.stderr.write(`${mode.name}…\n`);
  rows.push(await measure(mode));
}

const kerberosLoads = await importKerberos().then(
  () => true,
  () => false,
);
const kdcMissing = kdcUnavailableReason();
if (kerberosLoads && kdcMissing === undefined) {
  const kdc = await startKdc();
  process.env['KRB5_CONFIG'] = kdc.krb5Conf;
  process.env['KRB5_KTNAME'] = kdc.serviceKeytab;
  process.env['KRB5_CLIENT_KTNAME'] = kdc.clientKeytab;
  process.env['KRB5CCNAME'] = `FILE:${kdc.dir}/bench-cache`;
  try {
    for (const tls of [false, true]) {
      process.stderr.write(`Negotiate (Kerberos), ${tls ? 'https' : 'http'}…\n`);
      rows.push(await measure({ name: `Negotiate (Kerberos, MIT KDC), ${tls ? 'https' : 'http'}`, tls, sim: { authSchemes: ['Negotiate'], acceptNegotiate: kerberosAcceptor() }, auth: { type: 'negotiate' } }));
    }
  } finally {
    await kdc.stop();
  }
} else {
  process.stderr.write(`Kerberos skipped: ${kerberosLoads ? kdcMissing : 'the kerberos package does not load'}\n`);
}

// CPU cost of one AUTHENTICATE message (NTOWFv2 with pure-JS MD4, HMACs, MIC, binding).
const negotiate = negotiateMessage();
const challenge = parseChallengeMessage(ntlmChallengeMessage(randomBytes(8), 'CONTOSO'));
const binding = channelBindingsHash(tlsServerEndPoint(cert.der));
const iterations = 2000;
const started = performance.now();
for (let i = 0; i < iterations; i++) {
  authenticateMessage({ negotiate, challenge, user: 'svc', domain: 'CONTOSO', workstation: 'W', password: PASSWORD, channelBindings: binding, clientChallenge: randomBytes(8), timestamp: fileTimeNow() });
}
const microseconds = ((performance.now() - started) / iterations) * 1000;

process.stdout.write(
  `${table(
    ['mode', 'ms per call (median)', 'p90'],
    rows.map((r) => [r.name, fixed(r.median, 2), fixed(r.p90, 2)]),
  )}\n\nBuilding one NTLM AUTHENTICATE message (MIC + channel binding): ${fixed(microseconds, 1)} µs of CPU. ${calls} calls per mode, Node ${process.version}.\n`,
);
