/**
 * A failing bearer token function: a broken credential source is a typed, non-retriable
 * `EwsTokenProviderError` (code `EWS_AUTH_FAILED`) that stops every source at once, with no
 * request sent and no retry loop; a function that signals a transient failure (`retriable: true`,
 * or a network error) is retried with the source's back-off and the source recovers. The token
 * never appears in the error or in the logs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EwsAuthError, EwsConnectionError, EwsTokenProviderError } from '../lib/errors.js';
import { tokenProviderError, type BearerAuth } from '../lib/ews/auth-header.js';
import type { Logger } from '../lib/logger.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { ready, runSource, sleep, SOURCE_KINDS, type SourceRun, stopRun } from './helpers/auth-sources.js';

const MAILBOX = 'alice@contoso.com';
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.PROVIDER-TOKEN-SENTINEL-51d0.sig';

let sim: EwsSimulator | undefined;
let run: SourceRun | undefined;
afterEach(async () => {
  await stopRun(run, sim);
  run = undefined;
  sim = undefined;
});

function startSim(): Promise<EwsSimulator> {
  return EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200, authSchemes: ['Bearer'], verifyToken: (t) => (t === TOKEN ? MAILBOX : false) });
}

/** A logger that keeps every line with its fields, serialised. */
function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields ?? {}, (_key, value: unknown) => (value instanceof Error ? { name: value.name, message: value.message } : value))}`);
  };
  return { logger: { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') }, lines };
}

describe('a bearer token function that keeps failing', () => {
  it.each(SOURCE_KINDS)('%s: fails at once with a non-retriable EwsTokenProviderError, sends nothing, retries nothing', async (kind) => {
    sim = await startSim();
    let calls = 0;
    const auth: BearerAuth = {
      type: 'bearer',
      token: () => {
        calls++;
        // A careless provider that puts the token it could not use into its message.
        return Promise.reject(new Error(`vault refused to renew ${TOKEN}`));
      },
    };
    const { logger, lines } = capturingLogger();
    run = runSource(kind, sim, { auth, logger });
    await run.until(() => run!.error !== undefined, 'the token error', undefined, true);

    expect(run.error).toBeInstanceOf(EwsTokenProviderError);
    expect(run.error).toMatchObject({ code: 'EWS_AUTH_FAILED', retriable: false });
    expect((run.error as Error).message).not.toContain(TOKEN);
    expect(run.lifecycle('retrying')).toEqual([]);
    expect(sim.requests).toHaveLength(0);
    // Hybrid asks for its pull subscription and its doorbell; nothing asks twice.
    const callsAtError = calls;
    expect(callsAtError).toBeLessThanOrEqual(kind === 'hybrid' ? 2 : 1);
    await sleep(300);
    expect(calls).toBe(callsAtError);
    expect(sim.requests).toHaveLength(0);
    for (const line of lines) expect(line).not.toContain(TOKEN);
  });

  it.each(SOURCE_KINDS)('%s: a token function resolving to a non-string is the same fatal error', async (kind) => {
    sim = await startSim();
    run = runSource(kind, sim, { auth: { type: 'bearer', token: () => Promise.resolve(undefined as unknown as string) } });
    await run.until(() => run!.error !== undefined, 'the token error', undefined, true);
    expect(run.error).toBeInstanceOf(EwsTokenProviderError);
    expect(run.error).toMatchObject({ code: 'EWS_AUTH_FAILED', retriable: false });
    expect(run.lifecycle('retrying')).toEqual([]);
  });
});

describe('a bearer token function that signals a transient failure', () => {
  it.each(SOURCE_KINDS)('%s: retriable: true is retried with back-off, then the source delivers', async (kind) => {
    sim = await startSim();
    let failures = 0;
    const auth: BearerAuth = {
      type: 'bearer',
      token: () => {
        if (failures < 2) {
          failures++;
          return Promise.reject(Object.assign(new Error('token endpoint answered 503'), { retriable: true }));
        }
        return Promise.resolve(TOKEN);
      },
    };
    run = runSource(kind, sim, { auth });
    await ready(run);
    const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(seq), 'the event');
    expect(run.error).toBeUndefined();
    const retrying = run.lifecycle('retrying');
    expect(retrying.length).toBeGreaterThanOrEqual(1);
    for (const signal of retrying) {
      expect(signal.type === 'retrying' && signal.error).toBeInstanceOf(EwsTokenProviderError);
      expect(signal.type === 'retrying' && signal.error.retriable).toBe(true);
      expect(signal).toMatchObject({ reason: 'connection-error' });
    }
  });

  it.each(SOURCE_KINDS)('%s: a network error (fetch failed → ECONNRESET) is retried', async (kind) => {
    sim = await startSim();
    let failed = false;
    const auth: BearerAuth = {
      type: 'bearer',
      token: () => {
        if (!failed) {
          failed = true;
          const socket = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
          return Promise.reject(new TypeError('fetch failed', { cause: socket }));
        }
        return Promise.resolve(TOKEN);
      },
    };
    run = runSource(kind, sim, { auth });
    await ready(run);
    const { seq } = sim.deliver(MAILBOX, { type: 'NewMail' });
    await run.until(() => run!.received.includes(seq), 'the event');
    expect(run.error).toBeUndefined();
    expect(run.lifecycle('retrying').length).toBeGreaterThanOrEqual(1);
  });
});

describe('tokenProviderError: what counts as transient', () => {
  const cases: readonly [string, boolean, unknown][] = [
    ['a plain Error', false, new Error('vault sealed')],
    ['a string', false, 'nope'],
    ['undefined', false, undefined],
    ['an error with retriable: true', true, Object.assign(new Error('later'), { retriable: true })],
    ['an error with retriable: false', false, Object.assign(new Error('never'), { retriable: false })],
    ['our EwsAuthError', false, new EwsAuthError(401)],
    ['our EwsConnectionError', true, new EwsConnectionError('cut')],
    ['ECONNREFUSED', true, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
    ['EAI_AGAIN', true, Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' })],
    ['ENOTFOUND (a wrong host name)', false, Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' })],
    ['ENOENT (a missing token file)', false, Object.assign(new Error('open ENOENT'), { code: 'ENOENT' })],
    ['fetch failed caused by a connect timeout', true, new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'UND_ERR_CONNECT_TIMEOUT' }) })],
    ['an AbortSignal.timeout() abort', true, new DOMException('The operation timed out', 'TimeoutError')],
    ['a non-retriable error around a network cause', false, Object.assign(new Error('bad'), { retriable: false, cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) })],
  ];

  it.each(cases)('%s → retriable %s', (_name, retriable, thrown) => {
    const error = tokenProviderError(thrown);
    expect(error).toBeInstanceOf(EwsTokenProviderError);
    expect(error).toMatchObject({ code: 'EWS_AUTH_FAILED', retriable });
    expect(error.cause).toBe(thrown);
  });

  it('quotes a system code, never the message', () => {
    const error = tokenProviderError(Object.assign(new Error(`open /run/secrets/${TOKEN}`), { code: 'ENOENT' }));
    expect(error.message).toContain('(ENOENT)');
    expect(error.message).not.toContain(TOKEN);
    expect(tokenProviderError(Object.assign(new Error('x'), { code: TOKEN })).message).not.toContain(TOKEN);
  });
});
