/**
 * Issue 7 acceptance, the matrix: with each auth mode enforced by the simulator (only that scheme
 * offered, strict credentials), the streaming, pull and hybrid sources all deliver; with wrong
 * credentials each fails fast with a typed, non-retriable error and no retry storm.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EwsAuthError } from '../lib/errors.js';
import type { EwsAuth } from '../lib/ews/auth-header.js';
import { EwsSimulator, type EwsSimulatorOptions } from '../lib/testing/index.js';
import { ready, runSource, sleep, SOURCE_KINDS, type SourceRun, stopRun } from './helpers/auth-sources.js';

const MAILBOX = 'alice@contoso.com';
const PASSWORD = 'Tr0ub4dor&3-matrix';
const TOKEN = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.matrix-token';

interface Mode {
  readonly name: string;
  readonly sim: EwsSimulatorOptions;
  readonly good: () => EwsAuth;
  readonly bad: () => EwsAuth;
  /** HTTP requests one refused call makes: the rounds of the scheme. */
  readonly roundsPerRefusedCall: number;
}

const MODES: readonly Mode[] = [
  {
    name: 'basic',
    sim: { authSchemes: ['Basic'], users: { [MAILBOX]: PASSWORD } },
    good: () => ({ type: 'basic', username: MAILBOX, password: PASSWORD }),
    bad: () => ({ type: 'basic', username: MAILBOX, password: 'wrong' }),
    roundsPerRefusedCall: 1,
  },
  {
    // A user principal name: NTLMv2 with an empty domain, as Windows does for UPN logons.
    name: 'ntlm',
    sim: { authSchemes: ['NTLM'], users: { [MAILBOX]: PASSWORD } },
    good: () => ({ type: 'ntlm', username: MAILBOX, password: PASSWORD }),
    bad: () => ({ type: 'ntlm', username: MAILBOX, password: 'wrong' }),
    roundsPerRefusedCall: 2,
  },
  {
    name: 'bearer',
    sim: { authSchemes: ['Bearer'], verifyToken: (token) => (token === TOKEN ? MAILBOX : false) },
    good: () => ({ type: 'bearer', token: () => Promise.resolve(TOKEN) }),
    // Initial token, then the one refresh after the 401.
    bad: () => ({ type: 'bearer', token: () => Promise.resolve('expired-or-forged') }),
    roundsPerRefusedCall: 2,
  },
];

let sim: EwsSimulator | undefined;
let run: SourceRun | undefined;
afterEach(async () => {
  await stopRun(run, sim);
  run = undefined;
  sim = undefined;
});

describe.each(MODES)('$name enforced', (mode) => {
  it.each(SOURCE_KINDS)('%s delivers', async (kind) => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, ...mode.sim });
    run = runSource(kind, sim, { auth: mode.good() });
    await ready(run);
    const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(seq), `event ${seq}`);
    const users = new Set(sim.requests.map((r) => r.user).filter((u) => u !== undefined));
    expect([...users]).toEqual([MAILBOX]);
    // Every request the server accepted was authenticated with the enforced scheme.
    const accepted = sim.requests.filter((r) => r.status !== 401);
    expect(accepted.length).toBeGreaterThan(0);
    for (const r of accepted) expect(r.user).toBe(MAILBOX);
  });

  it.each(SOURCE_KINDS)('%s: wrong credentials fail fast with EwsAuthError, no retry storm', async (kind) => {
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, ...mode.sim });
    run = runSource(kind, sim, { auth: mode.bad() });
    await run.until(() => run!.error !== undefined, 'the auth error', undefined, true);
    expect(run.error).toBeInstanceOf(EwsAuthError);
    expect(run.error).toMatchObject({ code: 'EWS_AUTH_FAILED', retriable: false, status: 401 });
    // No back-off round was waited: counted in requests (below), not in time.
    const afterError = sim.requests.length;
    // The hybrid source runs two subscriptions (pull + doorbell), each refused once.
    const calls = kind === 'hybrid' ? 2 : 1;
    expect(afterError).toBeLessThanOrEqual(calls * mode.roundsPerRefusedCall);
    expect(sim.requests.every((r) => r.status === 401)).toBe(true);
    await sleep(300);
    expect(sim.requests.length).toBe(afterError);
  });
});
