/**
 * `ews-push-bridge simulator`: runs the embedded Exchange simulator (`EwsSimulator`) and the
 * example 2015 push listener in the foreground, prints the URL, the credentials and a
 * configuration that `forward` and `tail` can use as they are, optionally makes mail arrive at a
 * steady rate, and stops cleanly on SIGINT/SIGTERM. Everything a person needs to try the CLI
 * without an Exchange server, by copy and paste.
 *
 * @packageDocumentation
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { MailEvent } from '../examples/legacy-listener/crm.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { sequenceOfFiled, startDemoListener, WatchedCrm, type DemoListener } from './demo-listener.js';
import { CliError, EXIT, type ExitCode } from './exit-codes.js';

/** The simulator's one account: it may impersonate every mailbox. */
export const SIMULATOR_USERNAME = 'svc-bridge@contoso.com';
/** Its password: a simulator on loopback guards nothing, so it is fixed and printed. */
export const SIMULATOR_PASSWORD = 'simulator';
/** Default ports: fixed, so the README's commands work by copy and paste. */
export const SIMULATOR_DEFAULT_PORT = 8765;
const DEFAULT_LISTENER_PORT = 8766;
const DEFAULT_MAILBOXES = ['alice@contoso.com', 'bob@contoso.com'];
const MAX_RATE = 10_000;
// A produced-mail tick: fine enough to look steady, coarse enough to cost nothing.
const TICK_MS = 50;
const PROGRESS_EVERY_MS = 10_000;

/** `simulator --help`. */
export const SIMULATOR_USAGE = `Usage: ews-push-bridge simulator [options]

Runs an Exchange simulator and a legacy push listener in the foreground and
prints a configuration that "forward" and "tail" can use as they are.

  --port N              EWS port (default ${SIMULATOR_DEFAULT_PORT}; 0 picks a free one)
  --host ADDRESS        address to listen on (default 127.0.0.1)
  --mailboxes A,B       mailboxes that exist (default ${DEFAULT_MAILBOXES.join(',')})
  --rate N              new mails per second, spread over the mailboxes
                        (default 0: none; 1–${MAX_RATE.toLocaleString('en-US')})
  --listener-port N     port of the legacy push listener (default ${DEFAULT_LISTENER_PORT}; 0: free)
  --write-config FILE   also write the forward configuration to FILE
  --json                print one JSON object (url, credentials, config), then
                        one JSON line per notification the listener files
  -h, --help            this help

The account is ${SIMULATOR_USERNAME}, password "${SIMULATOR_PASSWORD}" (Basic or NTLM);
it may impersonate every mailbox. Stops on SIGINT/SIGTERM.
`;

/** What the command writes to. */
export interface SimulatorCommandIo {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
  /** Aborted on the first SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
}

/** What the command prints first (as JSON with `--json`). */
export interface SimulatorBanner {
  /** The EWS endpoint. */
  readonly url: string;
  readonly username: string;
  readonly password: string;
  readonly mailboxes: readonly string[];
  /** The legacy push listener that `forward` posts to. */
  readonly listenerUrl: string;
  /** A `forward` configuration for this simulator (the password comes from `EWS_PASSWORD`). */
  readonly config: Record<string, unknown>;
  /** A `tail` command line for the first mailbox. */
  readonly tail: string;
}

function usageError(message: string): CliError {
  return new CliError(EXIT.usage, `${message}\n\n${SIMULATOR_USAGE}`);
}

function wholeNumber(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.replace(/[,_]/g, ''));
  if (!Number.isInteger(n) || n < min || n > max) throw usageError(`${name} must be a whole number ${min}–${max.toLocaleString('en-US')} (got ${JSON.stringify(value)})`);
  return n;
}

const SMTP = /^[^\s@,]+@[^\s@,]+$/;

function mailboxList(value: string | undefined): string[] {
  if (value === undefined) return DEFAULT_MAILBOXES;
  const list = value.split(',').map((m) => m.trim().toLowerCase()).filter((m) => m !== '');
  if (list.length === 0) throw usageError('--mailboxes must name at least one SMTP address');
  for (const m of list) if (!SMTP.test(m)) throw usageError(`--mailboxes: ${JSON.stringify(m)} is not an SMTP address like alice@contoso.com`);
  return [...new Set(list)];
}

/** A listen failure (port taken, address not here) as a message that says what to do. */
function listenError(error: unknown, what: string, host: string, port: number, flag: string): CliError {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
  if (code === 'EADDRINUSE') return new CliError(EXIT.failure, `${what}: port ${port} on ${host} is in use (EADDRINUSE); pass ${flag} 0 for a free port, or another number`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new CliError(EXIT.usage, `${what}: cannot listen on ${host} (${code}); --host must be an address of this machine`);
  if (code === 'EACCES') return new CliError(EXIT.failure, `${what}: not allowed to listen on port ${port} (EACCES); pick a port above 1023`);
  return new CliError(EXIT.failure, `${what}: cannot listen on ${host}:${port} (${code ?? (error instanceof Error ? error.message : String(error))})`);
}

/** The `forward` configuration for a running simulator and listener. */
export function simulatorConfig(url: string, mailboxes: readonly string[], listenerUrl: string): Record<string, unknown> {
  return {
    ews: { url, auth: { type: 'basic', username: SIMULATOR_USERNAME, passwordEnv: 'EWS_PASSWORD' } },
    mode: 'hybrid',
    mailboxes: [...mailboxes],
    pollIntervalSeconds: 30,
    listener: { url: listenerUrl, statusFrequencyMinutes: 1 },
    metrics: { port: 9464, host: '127.0.0.1' },
    log: { level: 'info', format: 'text' },
  };
}

function fileLine(event: MailEvent, json: boolean): string {
  const seq = sequenceOfFiled(event);
  if (json) return `${JSON.stringify({ filed: { type: event.type, kind: event.kind, id: event.id, seq: seq ?? null, subscriptionId: event.subscriptionId } })}\n`;
  const id = event.id.length > 24 ? `…${event.id.slice(-23)}` : event.id;
  return `${new Date().toISOString().slice(11, 23)}  listener filed ${event.type.padEnd(8)} ${event.kind} ${id}${seq === undefined ? '' : ` (seq ${seq})`}\n`;
}

function banner(b: SimulatorBanner, rate: number, configFile: string | undefined): string {
  const config = JSON.stringify(b.config, null, 2);
  return [
    `Exchange simulator: ${b.url}`,
    `  account  ${b.username}, password "${b.password}" (Basic or NTLM; may impersonate every mailbox)`,
    `  mailboxes ${b.mailboxes.join(', ')}${rate > 0 ? ` — ${rate} new mail${rate === 1 ? '' : 's'} per second` : ' — no mail yet (--rate N makes some)'}`,
    `Legacy push listener: ${b.listenerUrl} (answers OK, prints what it files)`,
    '',
    'Watch a mailbox, in another terminal:',
    `  export EWS_USERNAME=${b.username} EWS_PASSWORD=${b.password}`,
    `  ${b.tail}`,
    '',
    configFile === undefined ? 'Forward to the listener: save this as bridge.json, then' : `Forward to the listener (written to ${configFile}):`,
    `  EWS_PASSWORD=${b.password} npx ews-push-bridge forward --config ${configFile ?? 'bridge.json'}`,
    ...(configFile === undefined ? [config] : []),
    '',
    'Ctrl+C stops the simulator.',
    '',
  ].join('\n');
}

/** Runs `ews-push-bridge simulator` until `io.signal` aborts; returns the exit code. */
export async function runSimulatorCommand(args: string[], io: SimulatorCommandIo): Promise<ExitCode> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        mailboxes: { type: 'string' },
        rate: { type: 'string' },
        'listener-port': { type: 'string' },
        'write-config': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (error) {
    throw usageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) {
    io.stdout.write(SIMULATOR_USAGE);
    return EXIT.ok;
  }
  const port = wholeNumber(values.port, '--port', 0, 65535, SIMULATOR_DEFAULT_PORT);
  const listenerPort = wholeNumber(values['listener-port'], '--listener-port', 0, 65535, DEFAULT_LISTENER_PORT);
  const rate = wholeNumber(values.rate, '--rate', 0, MAX_RATE, 0);
  const host = values.host ?? '127.0.0.1';
  if (host === '') throw usageError('--host must not be empty');
  const mailboxes = mailboxList(values.mailboxes);
  const json = values.json ?? false;
  const configFile = values['write-config'] === undefined ? undefined : resolve(values['write-config']);
  if (io.signal.aborted) return EXIT.ok;

  let sim: EwsSimulator;
  try {
    // Strict credentials: a wrong password in a copied config fails as it would on Exchange.
    // A foreground process that may run for days: it keeps only its latest requests.
    sim = await EwsSimulator.start({ port, host, mailboxes, users: { [SIMULATOR_USERNAME]: SIMULATOR_PASSWORD }, maxRecordedRequests: 1_000 });
  } catch (error) {
    if (error instanceof RangeError || error instanceof TypeError) throw usageError(error.message);
    throw listenError(error, 'simulator', host, port, '--port');
  }
  let filed = 0;
  const crm = new WatchedCrm((event) => {
    filed++;
    io.stdout.write(fileLine(event, json));
  });
  let listener: DemoListener;
  try {
    listener = await startDemoListener(crm, listenerPort, host);
  } catch (error) {
    await sim.close();
    throw listenError(error, 'listener', host, listenerPort, '--listener-port');
  }

  const first = mailboxes[0] ?? '';
  const info: SimulatorBanner = {
    url: sim.url,
    username: SIMULATOR_USERNAME,
    password: SIMULATOR_PASSWORD,
    mailboxes,
    listenerUrl: listener.url,
    config: simulatorConfig(sim.url, mailboxes, listener.url),
    tail: `npx ews-push-bridge tail --url ${sim.url} --mailbox ${first}`,
  };
  try {
    if (configFile !== undefined) writeFileSync(configFile, `${JSON.stringify(info.config, null, 2)}\n`);
  } catch (error) {
    await Promise.all([listener.close(), sim.close()]);
    const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'unwritable';
    throw new CliError(EXIT.usage, `--write-config: cannot write ${configFile} (${code})`);
  }
  io.stdout.write(json ? `${JSON.stringify(info)}\n` : banner(info, rate, configFile));

  // Mail at `rate` per second: each tick makes what the elapsed time owes, round-robin over the
  // mailboxes, so a late timer catches up instead of drifting.
  let produced = 0;
  const startedAt = Date.now();
  const producer =
    rate === 0
      ? undefined
      : setInterval(() => {
          const owed = Math.floor(((Date.now() - startedAt) * rate) / 1000) - produced;
          for (let i = 0; i < owed; i++) {
            sim.deliver(mailboxes[produced % mailboxes.length] ?? first, { type: 'NewMail' });
            produced++;
          }
        }, Math.max(TICK_MS, Math.floor(1000 / rate)));
  const progress = json
    ? undefined
    : setInterval(() => {
        io.stderr.write(`simulator: ${produced} mails produced, ${filed} filed by the listener, ${sim.subscriptions.length} subscriptions, ${sim.openStreamingConnections} streaming connections\n`);
      }, PROGRESS_EVERY_MS);

  await new Promise<void>((done) => {
    if (io.signal.aborted) done();
    else io.signal.addEventListener('abort', () => done(), { once: true });
  });
  clearInterval(producer);
  clearInterval(progress);
  await Promise.all([listener.close(), sim.close()]);
  if (!json) io.stderr.write(`simulator: stopped (${produced} mails produced, ${filed} filed by the listener)\n`);
  return EXIT.ok;
}
