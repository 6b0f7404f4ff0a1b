/**
 * Secrets never leak, issue 7: for each auth mode (Basic, NTLM, Bearer) and each source (streaming,
 * pull, hybrid), a run through the soap-forwarder adapter with faults (server busy, a forgotten
 * subscription, a cut stream) and a run with wrong credentials. Everything observable is captured —
 * every logger line with its fields, every error and lifecycle signal serialised with its causes
 * and enumerable fields, the simulator's recorded requests minus the Authorization header, and
 * every post the legacy listener received — and searched for the password, the token and their
 * encodings.
 */
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { soapForwarder } from '../adapters/soap-forwarder.js';
import type { EwsAuth } from '../lib/ews/auth-header.js';
import type { Logger } from '../lib/logger.js';
import { hybridSignals } from '../lib/sources/hybrid.js';
import { pullSignals } from '../lib/sources/pull.js';
import { streamingSignals } from '../lib/sources/streaming.js';
import { EwsSimulator, type EwsSimulatorOptions } from '../lib/testing/index.js';
import { ntHash } from '../lib/testing/auth.js';
import { FAST, runSource, sleep, SOURCE_KINDS, type AnySourceOptions, type SourceKind } from './helpers/auth-sources.js';
import { startCaptureListener, type CaptureListener } from './helpers/capture-listener.js';
import { until } from './helpers/until.js';

const MAILBOX = 'alice@contoso.com';
const USER = 'CONTOSO\\svc-bridge';
const PASSWORD = 'Zq7!password-SENTINEL-4f1c';
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.TOKEN-SENTINEL-9b2e.sig';

/** Everything that must never appear in what we capture. */
const FORBIDDEN: readonly [string, string][] = [
  ['password', PASSWORD],
  ['token', TOKEN],
  ['password (base64 Basic)', Buffer.from(`${USER}:${PASSWORD}`).toString('base64')],
  ['password (base64 Basic, mailbox)', Buffer.from(`${MAILBOX}:${PASSWORD}`).toString('base64')],
  ['password (UTF-16)', Buffer.from(PASSWORD, 'utf16le').toString('latin1')],
  ['NT hash', ntHash(PASSWORD).toString('hex')],
  ['token (base64)', Buffer.from(TOKEN).toString('base64')],
  // An NTLM message (base64 "NTLMSSP"): handshake material has no business in logs or errors.
  ['NTLM message', 'TlRMTVNTUA'],
];

interface Mode {
  readonly name: string;
  readonly sim: EwsSimulatorOptions;
  readonly good: EwsAuth;
  readonly bad: EwsAuth;
}

const MODES: readonly Mode[] = [
  { name: 'basic', sim: { authSchemes: ['Basic'], users: { [USER]: PASSWORD } }, good: { type: 'basic', username: USER, password: PASSWORD }, bad: { type: 'basic', username: USER, password: `${PASSWORD}x` } },
  { name: 'ntlm', sim: { authSchemes: ['NTLM'], users: { [USER]: PASSWORD } }, good: { type: 'ntlm', username: USER, password: PASSWORD }, bad: { type: 'ntlm', username: USER, password: `${PASSWORD}x` } },
  {
    name: 'bearer',
    sim: { authSchemes: ['Bearer'], verifyToken: (t) => t === TOKEN },
    good: { type: 'bearer', token: () => Promise.resolve(TOKEN) },
    bad: { type: 'bearer', token: () => Promise.resolve(`${TOKEN}-revoked`) },
  },
];

/** Serialises anything, Errors with name, message, stack, every own property and their causes. */
function dump(value: unknown, seen = new Set<unknown>()): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'function' ? `[function ${value.name}]` : value;
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  if (value instanceof Error) {
    const own: Record<string, unknown> = { name: value.name, message: value.message, stack: value.stack };
    for (const key of Object.getOwnPropertyNames(value)) own[key] = dump((value as unknown as Record<string, unknown>)[key], seen);
    if (value.cause !== undefined) own['cause'] = dump(value.cause, seen);
    return own;
  }
  if (Array.isArray(value)) return value.map((v) => dump(v, seen));
  if (value instanceof Map) return [...value.entries()].map(([k, v]) => [dump(k, seen), dump(v, seen)]);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = dump(v, seen);
  return out;
}

function text(value: unknown): string {
  return `${JSON.stringify(dump(value))}\n${inspect(value, { depth: null, showHidden: true })}`;
}

class Capture {
  readonly chunks: string[] = [];
  readonly logger: Logger = {
    debug: (message, fields) => this.add('debug', message, fields),
    info: (message, fields) => this.add('info', message, fields),
    warn: (message, fields) => this.add('warn', message, fields),
    error: (message, fields) => this.add('error', message, fields),
  };
  lines = 0;
  private add(level: string, message: string, fields: unknown): void {
    this.lines++;
    this.chunks.push(`${level} ${message} ${text(fields)}`);
  }
  add2(what: string, value: unknown): void {
    this.chunks.push(`${what}: ${text(value)}`);
  }
}

function expectNoSecrets(where: string, haystack: string): void {
  for (const [what, secret] of FORBIDDEN) {
    if (haystack.includes(secret)) throw new Error(`${where} contains the ${what}`);
  }
}

function signalsOf(kind: SourceKind, options: AnySourceOptions) {
  return kind === 'streaming' ? streamingSignals(options) : kind === 'pull' ? pullSignals(options) : hybridSignals(options);
}

let sim: EwsSimulator | undefined;
let listener: CaptureListener | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
  await listener?.close();
  listener = undefined;
});

describe.each(MODES)('$name: no secret in anything observable', (mode) => {
  it.each(SOURCE_KINDS)('%s through the soap-forwarder, with faults, and with wrong credentials', async (kind) => {
    const capture = new Capture();
    sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, ...mode.sim });
    listener = await startCaptureListener();

    // 1. A working run, forwarded to the legacy listener, with faults on the way.
    sim.inject({ type: 'server-busy', backOffMs: 30, operation: 'Subscribe' });
    const source = signalsOf(kind, { url: sim.url, ...FAST, auth: mode.good, mailbox: MAILBOX, logger: capture.logger, onLifecycle: (s) => capture.add2('lifecycle', s) });
    const handle = soapForwarder(source, {
      url: listener.url,
      statusFrequencyMinutes: 1,
      logger: capture.logger,
      onError: (error, context) => capture.add2('forwarder error', { error, context }),
      onLifecycle: (event) => capture.add2('forwarder lifecycle', event),
    });
    const newMails = (): number => listener!.posts.filter((p) => p.body.includes('NewMailEvent')).length;
    const waitFor = (predicate: () => boolean, what: string): Promise<void> => until(predicate, `${what} (${kind})`, { intervalMs: 20 });
    await waitFor(() => sim!.requests.some((r) => r.status === 200 && r.operation !== 'Subscribe'), 'a working subscription');
    sim.deliver(MAILBOX, { type: 'NewMail' });
    await waitFor(() => newMails() >= 1, 'the first forwarded post');
    sim.inject({ type: 'forget-subscriptions' });
    if (kind !== 'pull') sim.inject({ type: 'cut-mid-envelope', operation: 'GetStreamingEvents' });
    // Streaming has no watermark: mail that arrives before the resubscription is gone, so mail
    // keeps arriving until some reaches the listener again.
    await waitFor(() => {
      if (newMails() >= 2) return true;
      sim!.deliver(MAILBOX, { type: 'NewMail' });
      return false;
    }, 'the second forwarded post');
    await handle.close();
    capture.add2('forwarder end', await handle.done.catch((e: unknown) => e));

    // 2. Wrong credentials: the typed error, serialised with everything it carries.
    const failing = runSource(kind, sim, { auth: mode.bad, mailbox: MAILBOX, logger: capture.logger });
    await failing.until(() => failing.error !== undefined, 'the auth error', undefined, true);
    capture.add2('auth error', failing.error);
    capture.add2('failing signals', failing.signals);
    failing.stop();
    await sleep(50);

    // The captures are real (an empty capture would pass trivially).
    expect(capture.lines).toBeGreaterThan(5);
    expect(listener.posts.length).toBeGreaterThanOrEqual(2);
    expect(capture.chunks.some((c) => c.startsWith('auth error') && c.includes('EWS_AUTH_FAILED'))).toBe(true);
    expect(capture.chunks.some((c) => c.includes('retrying'))).toBe(true);

    expectNoSecrets('logger output, errors and lifecycle signals', capture.chunks.join('\n'));
    expectNoSecrets('forwarded posts', listener.rawText());
    const recorded = sim.requests.map(({ headers, ...rest }) => {
      const { authorization: _authorization, ...others } = headers;
      return { ...rest, headers: others };
    });
    expect(recorded.length).toBeGreaterThan(3);
    expectNoSecrets('simulator-recorded requests (minus Authorization)', text(recorded));
    // Nothing of ours travels to the listener: no Authorization, no cookies.
    for (const post of listener.posts) {
      expect(post.headers.authorization).toBeUndefined();
      expect(post.headers.cookie).toBeUndefined();
    }
  });
});

describe('the guard itself', () => {
  it('finds a planted secret (so the searches above can fail)', () => {
    expect(() => expectNoSecrets('x', `... ${Buffer.from(TOKEN).toString('base64')} ...`)).toThrow('contains the token (base64)');
    expect(() => expectNoSecrets('x', text(new Error('outer', { cause: Object.assign(new Error('inner'), { detail: PASSWORD }) })))).toThrow('contains the password');
  });
});
