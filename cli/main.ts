#!/usr/bin/env node
/**
 * The `ews-push-bridge` command: argument parsing (`node:util` parseArgs), dispatch to `demo`,
 * `forward` and `tail`, signal handling, and exit codes (0 ok, 1 failure, 2 bad usage or config,
 * 3 cannot authenticate, 4 cannot reach the server).
 *
 * @packageDocumentation
 */
import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EVENT_TYPES, type EventType, type EwsAuth } from '../lib/index.js';
import { loadConfig, shownRedisUrl, type Environment } from './config.js';
import { MODES, type Mode } from './config-schema.js';
import { MAX_DEMO_EVENTS, runDemo } from './demo.js';
import { EXAMPLE_CONFIG_YAML } from './example-config.js';
import { CliError, EXIT, type ExitCode } from './exit-codes.js';
import { runDoctor } from './doctor.js';
import { runForward } from './forward.js';
import { runCoordinatedForward } from './forward-coordinated.js';
import { runSimulatorCommand } from './simulator-command.js';
import { createCliLogger } from './logger.js';
import { runTail } from './tail.js';

const USAGE = `Usage: ews-push-bridge <command> [options]

Commands:
  demo      Bridge an embedded Exchange simulator to a legacy push listener and
            show it live (no setup, ends by itself)
  forward   Forward mailbox notifications to a legacy push listener, as
            configured in a file (runs until SIGINT/SIGTERM)
  tail      Print a mailbox's notifications as they happen
  doctor    Check a configuration against the server before go-live
  simulator Run an Exchange simulator and a push listener to try forward
            and tail against (prints a ready-to-use config)

Run "ews-push-bridge <command> --help" for a command's options.
Exit codes: 0 ok, 1 failure, 2 bad usage or config, 3 cannot authenticate,
4 cannot reach the server.
`;

const DEMO_USAGE = `Usage: ews-push-bridge demo [options]

  --events N        mailbox events to produce, 1–${MAX_DEMO_EVENTS.toLocaleString('en-US')} (default 2,000)
  --mode MODE       streaming (default), pull or hybrid
  --faults on|off   inject a forced Closed, a cut socket and a server-busy
                    (default on)
  --json            print only a machine-readable summary
  -h, --help        this help
`;

const FORWARD_USAGE = `Usage: ews-push-bridge forward --config FILE [--coordinator URL] [--check]
       ews-push-bridge forward --print-config > bridge.yaml

  --config FILE     the bridge configuration (JSON, or YAML for .yaml/.yml);
                    every field: docs/configuration.md
  --coordinator URL share the mailboxes with every other forward process on
                    this configuration through Redis (redis://host:port),
                    instead of coordinator.url; needs the ioredis package
  --check           validate the file and read its secrets, then exit
  --print-config    print an example configuration, every field explained
  -h, --help        this help

Stops cleanly on SIGINT/SIGTERM: posts in progress finish, checkpoints are
written, and every EWS subscription is removed (Unsubscribe).
`;

const TAIL_USAGE = `Usage: ews-push-bridge tail --url URL [options]

  --url URL             the EWS endpoint (or EWS_URL), e.g.
                        https://mail.contoso.com/EWS/Exchange.asmx
  --mailbox SMTP        impersonate this mailbox (default: the account's own)
  --mode MODE           streaming (default), pull or hybrid
  --folder NAME         folder to watch, repeatable (default inbox)
  --all-folders         watch every folder
  --event-type TYPE     event type, repeatable (default all): ${EVENT_TYPES.join(', ')}
  --auth TYPE           basic, ntlm, bearer or none (default: basic when a user
                        name is set, bearer when EWS_TOKEN is set, else none)
  --username NAME       user name (or EWS_USERNAME); NTLM domain: EWS_DOMAIN
  --password-file FILE  read the password from FILE (else EWS_PASSWORD)
  --ca-file FILE        PEM of a private CA that signed the server's certificate
  --poll-interval S     pull/hybrid: seconds between polls (default 10 / 60)
  --json                JSON lines even on a terminal (default off a terminal)
  --limit N             stop after N events
  --connect-timeout S   seconds to get the first connection (default 30)
  -h, --help            this help

Secrets only come from the environment (EWS_PASSWORD, EWS_TOKEN) or a file.
`;

const DOCTOR_USAGE = `Usage: ews-push-bridge doctor --config FILE [options]

  --config FILE          the bridge configuration (as for forward)
  --send-test-mail       also open a streaming subscription on the first mailbox
                         and wait for an event: send it a mail while the doctor
                         waits (the doctor itself never sends mail)
  --test-mail-timeout S  seconds to wait for that event (default 120)
  --coordinator URL      check this Redis (as for forward) instead of coordinator.url
  --json                 print the report as JSON
  -h, --help             this help

Checks DNS, TCP, TLS, that the URL answers as EWS, the auth schemes and whether
the configured one works, Extended Protection, the server version, each mailbox
(impersonation, folders), the affinity cookie and throttling; with a coordinator,
its Redis (reachable, credentials, version, scripts) and the lease group (live
workers, whether their mailbox lists match this one). Exit 0 only when every
check the configuration needs passed.
`;

async function doctorCommand(args: string[], io: CliIo): Promise<ExitCode> {
  const { values } = parse(
    args,
    { config: { type: 'string', short: 'c' }, 'send-test-mail': { type: 'boolean' }, 'test-mail-timeout': { type: 'string' }, coordinator: { type: 'string' }, json: { type: 'boolean' } },
    DOCTOR_USAGE,
  );
  if (values.help) {
    io.stdout.write(DOCTOR_USAGE);
    return EXIT.ok;
  }
  if (values.config === undefined) throw usageError('--config is required', DOCTOR_USAGE);
  const waitSeconds = integer(values['test-mail-timeout'], '--test-mail-timeout', 1, 3600, DOCTOR_USAGE);
  const config = await loadConfig(values.config, io.env, { coordinatorUrl: values.coordinator });
  const { exitCode } = await runDoctor({
    config,
    sendTestMail: values['send-test-mail'] === true,
    ...(waitSeconds === undefined ? {} : { testMailTimeoutMs: waitSeconds * 1000 }),
    json: values.json === true,
    stdout: io.stdout,
    signal: io.signal,
  });
  return exitCode;
}

/** What the commands write to and read from. */
export interface CliIo {
  readonly stdout: NodeJS.WriteStream | { write(chunk: string): unknown; isTTY?: boolean; columns?: number };
  readonly stderr: { write(chunk: string): unknown };
  readonly env: Environment;
  /** Aborted on the first SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
}

function usageError(message: string, usage: string): CliError {
  return new CliError(EXIT.usage, `${message}\n\n${usage}`);
}

/** parseArgs, with its errors (unknown option, missing value) turned into exit-2 errors. */
function parse<T extends ParseArgsConfig['options']>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true });
  } catch (error) {
    throw usageError(error instanceof Error ? error.message : String(error), usage);
  }
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], name: string, usage: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw usageError(`${name} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`, usage);
  return value as T;
}

function integer(value: string | undefined, name: string, min: number, max: number, usage: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.replace(/[,_]/g, ''));
  if (!Number.isInteger(n) || n < min || n > max) throw usageError(`${name} must be a whole number ${min}–${max.toLocaleString('en-US')} (got ${JSON.stringify(value)})`, usage);
  return n;
}

async function demoCommand(args: string[], io: CliIo): Promise<ExitCode> {
  const { values } = parse(args, { events: { type: 'string' }, mode: { type: 'string' }, faults: { type: 'string' }, json: { type: 'boolean' } }, DEMO_USAGE);
  if (values.help) {
    io.stdout.write(DEMO_USAGE);
    return EXIT.ok;
  }
  const events = integer(values.events, '--events', 1, MAX_DEMO_EVENTS, DEMO_USAGE);
  const mode = oneOf<Mode>(values.mode, MODES, '--mode', DEMO_USAGE);
  const faults = oneOf(values.faults, ['on', 'off'] as const, '--faults', DEMO_USAGE);
  const summary = await runDemo({
    ...(events === undefined ? {} : { events }),
    ...(mode === undefined ? {} : { mode }),
    faults: faults !== 'off',
    json: values.json ?? false,
    stdout: io.stdout,
    stderr: io.stderr,
    signal: io.signal,
  });
  return summary.ok ? EXIT.ok : EXIT.failure;
}

async function forwardCommand(args: string[], io: CliIo): Promise<ExitCode> {
  const { values } = parse(
    args,
    { config: { type: 'string', short: 'c' }, coordinator: { type: 'string' }, check: { type: 'boolean' }, 'print-config': { type: 'boolean' } },
    FORWARD_USAGE,
  );
  if (values.help) {
    io.stdout.write(FORWARD_USAGE);
    return EXIT.ok;
  }
  if (values['print-config']) {
    io.stdout.write(EXAMPLE_CONFIG_YAML);
    return EXIT.ok;
  }
  if (values.config === undefined) throw usageError('--config is required', FORWARD_USAGE);
  const config = await loadConfig(values.config, io.env, { coordinatorUrl: values.coordinator });
  if (values.check) {
    const shared = config.coordinator === undefined ? '' : `, shared through ${shownRedisUrl(config.coordinator.url)}`;
    io.stdout.write(`${config.path}: OK (${config.mode}, ${config.mailboxes.length} mailbox${config.mailboxes.length === 1 ? '' : 'es'}${shared})\n`);
    return EXIT.ok;
  }
  const logger = createCliLogger({ level: config.log.level, format: config.log.format, stream: io.stderr });
  // Several processes sharing the mailboxes through Redis leases: forward-coordinated.ts.
  if (config.coordinator !== undefined) return runCoordinatedForward(config, config.coordinator, { signal: io.signal, logger });
  return runForward(config, { signal: io.signal, logger });
}

function tailAuth(values: { auth?: string | undefined; username?: string | undefined; 'password-file'?: string | undefined }, env: Environment): EwsAuth {
  const username = values.username ?? env['EWS_USERNAME'];
  const type =
    oneOf(values.auth, ['basic', 'ntlm', 'bearer', 'none'] as const, '--auth', TAIL_USAGE) ??
    (username !== undefined && username !== '' ? 'basic' : env['EWS_TOKEN'] ? 'bearer' : 'none');
  if (type === 'none') return { type: 'none' };
  if (type === 'bearer') {
    const token = env['EWS_TOKEN'];
    if (!token) throw usageError('--auth bearer needs the token in the EWS_TOKEN environment variable', TAIL_USAGE);
    return { type: 'bearer', token };
  }
  if (!username) throw usageError(`--auth ${type} needs --username or the EWS_USERNAME environment variable`, TAIL_USAGE);
  let password: string | undefined;
  const file = values['password-file'];
  if (file !== undefined) {
    try {
      password = readFileSync(resolve(file), 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'unreadable';
      throw new CliError(EXIT.usage, `--password-file: cannot read ${resolve(file)} (${code})`);
    }
  } else {
    password = env['EWS_PASSWORD'];
  }
  if (!password) throw usageError(`--auth ${type} needs the password in EWS_PASSWORD or --password-file`, TAIL_USAGE);
  if (type === 'ntlm') {
    const domain = env['EWS_DOMAIN'];
    return { type: 'ntlm', username, password, ...(domain ? { domain } : {}) };
  }
  return { type: 'basic', username, password };
}

async function tailCommand(args: string[], io: CliIo): Promise<ExitCode> {
  const { values } = parse(
    args,
    {
      url: { type: 'string' },
      mailbox: { type: 'string' },
      mode: { type: 'string' },
      folder: { type: 'string', multiple: true },
      'all-folders': { type: 'boolean' },
      'event-type': { type: 'string', multiple: true },
      auth: { type: 'string' },
      username: { type: 'string' },
      'password-file': { type: 'string' },
      'ca-file': { type: 'string' },
      json: { type: 'boolean' },
      limit: { type: 'string' },
      'connect-timeout': { type: 'string' },
      'poll-interval': { type: 'string' },
    },
    TAIL_USAGE,
  );
  if (values.help) {
    io.stdout.write(TAIL_USAGE);
    return EXIT.ok;
  }
  const url = values.url ?? io.env['EWS_URL'];
  if (url === undefined || url === '') throw usageError('--url is required (or set EWS_URL)', TAIL_USAGE);
  const eventTypes = values['event-type']?.flatMap((v) => v.split(',')).map((v) => oneOf<EventType>(v.trim(), EVENT_TYPES, '--event-type', TAIL_USAGE) as EventType);
  const folders = values.folder?.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  const limit = integer(values.limit, '--limit', 1, Number.MAX_SAFE_INTEGER, TAIL_USAGE);
  const connectTimeout = integer(values['connect-timeout'], '--connect-timeout', 1, 3600, TAIL_USAGE) ?? 30;
  const pollInterval = integer(values['poll-interval'], '--poll-interval', 1, 3600, TAIL_USAGE);
  const stdoutIsTty = 'isTTY' in io.stdout && io.stdout.isTTY === true;
  const caFile = values['ca-file'];
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(resolve(caFile));
    } catch (error) {
      const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'unreadable';
      throw new CliError(EXIT.usage, `--ca-file: cannot read ${resolve(caFile)} (${code})`);
    }
  }
  return runTail({
    url,
    auth: tailAuth(values, io.env),
    mailbox: values.mailbox,
    mode: oneOf<Mode>(values.mode, MODES, '--mode', TAIL_USAGE) ?? 'streaming',
    folders: folders ?? ['inbox'],
    subscribeToAllFolders: values['all-folders'] ?? false,
    eventTypes,
    ...(ca === undefined ? {} : { ca }),
    json: values.json === true || !stdoutIsTty,
    ...(limit === undefined ? {} : { limit }),
    ...(pollInterval === undefined ? {} : { pollIntervalMs: pollInterval * 1000 }),
    connectTimeoutMs: connectTimeout * 1000,
    stdout: io.stdout,
    logger: createCliLogger({ stream: io.stderr }),
    signal: io.signal,
  });
}

function version(): string {
  try {
    // The package's own package.json, by self-reference: works from the build and from the sources.
    const require = createRequire(realpathSync(process.argv[1] ?? '.'));
    return (require('ews-push-bridge/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Runs the command line `args` (without `node` and the script) and returns the exit code. */
async function main(args: string[], io: CliIo): Promise<ExitCode> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case 'demo':
        return await demoCommand(rest, io);
      case 'forward':
        return await forwardCommand(rest, io);
      case 'tail':
        return await tailCommand(rest, io);
      case 'doctor':
        return await doctorCommand(rest, io);
      case 'simulator':
        return await runSimulatorCommand(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(USAGE);
        return command === undefined ? EXIT.usage : EXIT.ok;
      case '--version':
      case '-v':
        io.stdout.write(`${version()}\n`);
        return EXIT.ok;
      default:
        throw usageError(`Unknown command ${JSON.stringify(command)}`, USAGE);
    }
  } catch (error) {
    const cliError = error instanceof CliError ? error : undefined;
    const message = cliError?.message ?? (error instanceof Error ? `${error.name}: ${error.message}` : String(error));
    io.stderr.write(`ews-push-bridge: ${message}\n`);
    return cliError?.exitCode ?? EXIT.failure;
  }
}

/** Wires `main` to the process: signals, exit code, and a bounded exit. */
function runProcess(): void {
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      // A second Ctrl+C: the user does not want to wait for the clean shutdown.
      process.stderr.write(`ews-push-bridge: ${signal} again, exiting without waiting\n`);
      process.exit(130);
    }
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  void main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: stop.signal }).then((code) => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.exitCode = code;
    // Everything is closed by now; if some handle still holds the loop, do not hang on it.
    setTimeout(() => process.exit(code), 2_000).unref();
  });
}

runProcess();
