/**
 * Loading a `forward` configuration file: parse (JSON, or YAML for `.yaml`/`.yml`), validate with
 * the schema, then read the secrets it points at (environment variables, files) and resolve
 * relative paths against the file's own directory. Every problem is reported at once, one line per
 * field, as a {@link CliError} with exit code 2; no message ever contains a secret.
 *
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { parseDocument as parseYamlDocument } from 'yaml';
import type { EventType, EwsAuth, ExchangeVersion, FolderRef } from '../lib/index.js';
import { lineAndColumn, sourceExcerpt } from './config-hints.js';
import { bridgeConfigSchema, describeIssues, formatPath, redisUrlProblem, type BridgeConfigFile, type LogLevel, type Mode } from './config-schema.js';
import { CliError, EXIT } from './exit-codes.js';

/** One mailbox to watch, with its folders and event types. */
export interface WatchedMailbox {
  /** The SMTP address to impersonate; `undefined` watches the authenticated account's own mailbox. */
  readonly mailbox: string | undefined;
  readonly folders: readonly FolderRef[];
  readonly subscribeToAllFolders: boolean;
  /** `undefined`: every event type. */
  readonly eventTypes: readonly EventType[] | undefined;
}

/** A validated configuration with its secrets read: what `forward` runs on. */
export interface BridgeConfig {
  /** Absolute path of the file it came from. */
  readonly path: string;
  readonly ews: {
    readonly url: string;
    readonly auth: EwsAuth;
    readonly requestServerVersion: ExchangeVersion | undefined;
    /** Extra CA certificates (PEM) to trust for the EWS server. */
    readonly ca: Buffer | undefined;
    /** Check the EWS server's certificate (`false` only for a lab; the library warns). */
    readonly rejectUnauthorized: boolean;
    /** `X-AnchorMailbox` for every mailbox (the affinity group's first); `undefined`: each mailbox anchors itself. */
    readonly anchorMailbox: string | undefined;
    readonly startupTimeoutMs: number;
  };
  readonly mode: Mode;
  readonly mailboxes: readonly WatchedMailbox[];
  readonly pollIntervalMs: number | undefined;
  readonly listener: {
    readonly url: string;
    readonly statusFrequencyMinutes: number;
    readonly requestTimeoutMs: number | undefined;
    /** Notifications held for a listener that falls behind before the bridge gives up; `undefined`: the adapter's default. */
    readonly maxBacklogNotifications: number | undefined;
    readonly sharedSecret: { readonly headerName: string; readonly value: string } | undefined;
    readonly ca: Buffer | undefined;
  };
  /** Absolute path of the checkpoint file, when set. */
  readonly checkpointFile: string | undefined;
  readonly metrics: { readonly port: number; readonly host: string; readonly unhealthyAfterMs: number } | undefined;
  readonly log: { readonly level: LogLevel; readonly format: 'text' | 'json' };
  /**
   * Several `forward` processes on this configuration share its mailboxes through Redis leases
   * (see `forward-coordinated.ts`); `undefined`: this process forwards every mailbox.
   */
  readonly coordinator?: CoordinatorConfig | undefined;
}

/** `coordinator` (or `--coordinator`), validated, its URL read. */
export interface CoordinatorConfig {
  /** The Redis URL (may hold a password when it came from `urlEnv`: never log it, see `shownRedisUrl`). */
  readonly url: string;
  /** Where the URL came from, for messages: `coordinator.url`, `coordinator.urlEnv` or `--coordinator`. */
  readonly urlField: string;
  readonly prefix: string;
  readonly leaseTtlMs: number;
  readonly renewIntervalMs: number;
  /** `undefined`: `<hostname>:<pid>`. */
  readonly workerName: string | undefined;
}

/** Options of {@link resolveConfig} and {@link loadConfig} that come from the command line. */
export interface ConfigOverrides {
  /** `--coordinator redis://…`: replaces `coordinator.url`/`urlEnv` (and adds a `coordinator` section with its defaults when the file has none). */
  readonly coordinatorUrl?: string | undefined;
}

/** Where the process's environment comes from (injectable for tests). */
export type Environment = Readonly<Record<string, string | undefined>>;

function configError(path: string, problems: readonly string[]): CliError {
  const head = problems.length === 1 ? `${path}: 1 problem` : `${path}: ${problems.length} problems`;
  return new CliError(EXIT.usage, `${head}\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}

// What to do about the YAML mistakes people make most; the parser's own words say what is wrong.
const YAML_ADVICE: Readonly<Record<string, string>> = {
  TAB_AS_INDENT: 'indent with spaces, not tabs',
  BAD_INDENT: 'fields of one object must start in the same column',
  DUPLICATE_KEY: 'a field may appear only once in an object',
  BLOCK_AS_IMPLICIT_KEY: 'put a space after each colon, and quote values that contain ": "',
};

/** A YAML file's syntax errors, each with its line and a caret; the document when there are none. */
function parseYamlFile(path: string, text: string): unknown {
  const doc = parseYamlDocument(text);
  if (doc.errors.length === 0) return doc.toJS() as unknown;
  const problems = doc.errors.slice(0, 3).map((error) => {
    const pos = error.linePos?.[0];
    const advice = YAML_ADVICE[error.code];
    const head = `${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}${error.message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '')}${advice ? ` (${advice})` : ''}`;
    return pos ? `${head}\n${sourceExcerpt(text, pos.line, pos.col)}` : head;
  });
  const more = doc.errors.length > 3 ? `\n  (and ${doc.errors.length - 3} more)` : '';
  throw new CliError(EXIT.usage, `${path} is not valid YAML:\n${problems.map((p) => `  ${p}`).join('\n')}${more}`);
}

/** A JSON file's syntax error with its line and a caret (V8 says only the offset, or nothing at the end). */
function parseJsonFile(path: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const offset = /at position (\d+)/.exec(message);
    const { line, column } = lineAndColumn(text, offset ? Number(offset[1]) : text.trimEnd().length);
    const what = message.replace(/ in JSON at position \d+.*$/, '').replace(/^Unexpected end of JSON input$/, 'the file ends too early (a missing } or ])');
    throw new CliError(EXIT.usage, `${path} is not valid JSON:\n  line ${line}, column ${column}: ${what}\n${sourceExcerpt(text, line, column)}`);
  }
}

/** Parses the file (JSON, or YAML for .yaml/.yml); syntax errors become exit-2 errors naming the line. */
function parseFile(path: string, text: string): unknown {
  return ['.yaml', '.yml'].includes(extname(path).toLowerCase()) ? parseYamlFile(path, text) : parseJsonFile(path, text);
}

/** Collects secret-reading problems instead of stopping at the first. */
class SecretReader {
  readonly problems: string[] = [];

  constructor(
    private readonly baseDir: string,
    private readonly env: Environment,
  ) {}

  /** A path from the file, absolute. */
  path(value: string): string {
    return resolve(this.baseDir, value);
  }

  fromEnv(name: string, field: readonly PropertyKey[]): string | undefined {
    const value = this.env[name];
    if (value === undefined || value === '') {
      // Echo the name only when it looks like a variable name and not like a misplaced secret.
      const named = /^[A-Z_][A-Z0-9_]*$/.test(name) ? `the environment variable ${name}` : 'the environment variable it names';
      this.problems.push(`${formatPath(field)}: ${named} is not set (or is empty)`);
      return undefined;
    }
    return value;
  }

  fromFile(file: string, field: readonly PropertyKey[]): string | undefined {
    const absolute = this.path(file);
    try {
      // A trailing newline is how editors and `echo` end files; it is never part of the secret.
      const value = readFileSync(absolute, 'utf8').replace(/\r?\n$/, '');
      if (value === '') {
        this.problems.push(`${formatPath(field)}: ${absolute} is empty`);
        return undefined;
      }
      return value;
    } catch (error) {
      const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'unreadable';
      this.problems.push(`${formatPath(field)}: cannot read ${absolute} (${code})`);
      return undefined;
    }
  }

  secret(ref: { env?: string | undefined; file?: string | undefined }, field: readonly PropertyKey[]): string | undefined {
    if (ref.env !== undefined) return this.fromEnv(ref.env, [...field.slice(0, -1), `${String(field.at(-1))}Env`]);
    if (ref.file !== undefined) return this.fromFile(ref.file, [...field.slice(0, -1), `${String(field.at(-1))}File`]);
    return undefined;
  }

  buffer(file: string | undefined, field: readonly PropertyKey[]): Buffer | undefined {
    if (file === undefined) return undefined;
    const absolute = this.path(file);
    try {
      return readFileSync(absolute);
    } catch (error) {
      const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'unreadable';
      this.problems.push(`${formatPath(field)}: cannot read ${absolute} (${code})`);
      return undefined;
    }
  }
}

function resolveAuth(auth: BridgeConfigFile['ews']['auth'], secrets: SecretReader): EwsAuth {
  const field = ['ews', 'auth'];
  switch (auth.type) {
    case 'none':
      return { type: 'none' };
    case 'basic':
      return { type: 'basic', username: auth.username, password: secrets.secret({ env: auth.passwordEnv, file: auth.passwordFile }, [...field, 'password']) ?? '' };
    case 'ntlm':
      return {
        type: 'ntlm',
        username: auth.username,
        password: secrets.secret({ env: auth.passwordEnv, file: auth.passwordFile }, [...field, 'password']) ?? '',
        ...(auth.domain === undefined ? {} : { domain: auth.domain }),
        ...(auth.workstation === undefined ? {} : { workstation: auth.workstation }),
        ...(auth.spn === undefined ? {} : { spn: auth.spn }),
      };
    case 'negotiate':
      return {
        type: 'negotiate',
        ...(auth.spn === undefined ? {} : { spn: auth.spn }),
        ...(auth.principal === undefined ? {} : { principal: auth.principal }),
        ...(auth.mechanism === undefined ? {} : { mechanism: auth.mechanism }),
      };
    case 'bearer': {
      if (auth.tokenEnv !== undefined) return { type: 'bearer', token: secrets.fromEnv(auth.tokenEnv, [...field, 'tokenEnv']) ?? '' };
      const file = secrets.path(auth.tokenFile ?? '');
      // Checked now so a wrong path fails at start; read again on every fetch (after a 401 too), so
      // a token refresher that rewrites the file is picked up without a restart.
      secrets.fromFile(file, [...field, 'tokenFile']);
      return {
        type: 'bearer',
        token: async () => (await readFile(file, 'utf8')).trim(),
      };
    }
  }
}

/**
 * Validates an already-parsed configuration object and reads its secrets.
 *
 * @param path - The file it came from: named in messages; relative paths inside resolve against its directory.
 * @throws CliError (exit 2) listing every problem, one line per field.
 */
export function resolveConfig(raw: unknown, path: string, env: Environment = process.env, overrides: ConfigOverrides = {}): BridgeConfig {
  const absolute = resolve(path);
  const flagUrl = overrides.coordinatorUrl;
  if (flagUrl !== undefined) {
    const problem = redisUrlProblem(flagUrl);
    if (problem !== undefined) throw configError(absolute, [`--coordinator: ${problem} (got ${JSON.stringify(shownRedisUrl(flagUrl))})`]);
    if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
      const section: unknown = (raw as Record<string, unknown>)['coordinator'];
      const { url: _url, urlEnv: _urlEnv, ...rest } = typeof section === 'object' && section !== null && !Array.isArray(section) ? (section as Record<string, unknown>) : {};
      raw = { ...raw, coordinator: { ...rest, url: flagUrl } };
    }
  }
  const parsed = bridgeConfigSchema.safeParse(raw);
  if (!parsed.success) throw configError(absolute, describeIssues(parsed.error.issues, raw));
  const file = parsed.data;
  const secrets = new SecretReader(dirname(absolute), env);

  const auth = resolveAuth(file.ews.auth, secrets);
  const sharedSecret = file.listener.sharedSecret;
  const secretValue = sharedSecret ? secrets.secret({ env: sharedSecret.valueEnv, file: sharedSecret.valueFile }, ['listener', 'sharedSecret', 'value']) : undefined;
  const ewsCa = secrets.buffer(file.ews.caFile, ['ews', 'caFile']);
  const listenerCa = secrets.buffer(file.listener.caFile, ['listener', 'caFile']);
  if (file.listener.caFile !== undefined && !file.listener.url.startsWith('https:')) secrets.problems.push('listener.caFile: needs an https listener.url');
  if (file.ews.caFile !== undefined && !file.ews.url.startsWith('https:')) secrets.problems.push('ews.caFile: needs an https ews.url');
  if (!file.ews.rejectUnauthorized && !file.ews.url.startsWith('https:')) secrets.problems.push('ews.rejectUnauthorized: needs an https ews.url');
  const coordinator = resolveCoordinator(file, secrets, flagUrl !== undefined);
  if (secrets.problems.length > 0) throw configError(absolute, secrets.problems);

  const mailboxes: WatchedMailbox[] = (file.mailboxes ?? [undefined]).map((entry) => {
    const mailbox = typeof entry === 'object' ? entry : undefined;
    return {
      mailbox: typeof entry === 'string' ? entry : entry?.address,
      folders: (mailbox?.folders ?? file.folders) as readonly FolderRef[],
      subscribeToAllFolders: mailbox?.subscribeToAllFolders ?? file.subscribeToAllFolders,
      eventTypes: (mailbox?.eventTypes ?? file.eventTypes) as readonly EventType[] | undefined,
    };
  });
  const seen = new Set<string>();
  for (const [i, m] of mailboxes.entries()) {
    const key = (m.mailbox ?? '').toLowerCase();
    if (seen.has(key)) throw configError(absolute, [`mailboxes[${i}]: ${m.mailbox ?? 'the account’s own mailbox'} is listed twice`]);
    seen.add(key);
  }

  return {
    path: absolute,
    ews: {
      url: file.ews.url,
      auth,
      requestServerVersion: file.ews.requestServerVersion as ExchangeVersion | undefined,
      ca: ewsCa,
      rejectUnauthorized: file.ews.rejectUnauthorized,
      anchorMailbox: file.ews.anchorMailbox,
      startupTimeoutMs: file.ews.startupTimeoutSeconds * 1000,
    },
    mode: file.mode,
    mailboxes,
    pollIntervalMs: file.pollIntervalSeconds === undefined ? undefined : file.pollIntervalSeconds * 1000,
    listener: {
      url: file.listener.url,
      statusFrequencyMinutes: file.listener.statusFrequencyMinutes,
      requestTimeoutMs: file.listener.requestTimeoutSeconds === undefined ? undefined : file.listener.requestTimeoutSeconds * 1000,
      maxBacklogNotifications: file.listener.maxBacklogNotifications,
      sharedSecret: sharedSecret && secretValue !== undefined ? { headerName: sharedSecret.headerName, value: secretValue } : undefined,
      ca: listenerCa,
    },
    checkpointFile: file.checkpoint === undefined ? undefined : secrets.path(file.checkpoint.file),
    metrics: file.metrics === undefined ? undefined : { port: file.metrics.port, host: file.metrics.host, unhealthyAfterMs: file.metrics.unhealthyAfterSeconds * 1000 },
    log: file.log,
    coordinator,
  };
}

/** A Redis URL as it may be shown: no user name or password, no query. */
export function shownRedisUrl(value: string): string {
  try {
    const url = new URL(value);
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

/** The `coordinator` section: its URL read, its cross-field rules checked (problems go to `secrets.problems`). */
function resolveCoordinator(file: BridgeConfigFile, secrets: SecretReader, fromFlag: boolean): CoordinatorConfig | undefined {
  const section = file.coordinator;
  if (section === undefined) return undefined;
  const problems = secrets.problems;
  let url = section.url;
  let urlField = fromFlag ? '--coordinator' : 'coordinator.url';
  if (section.urlEnv !== undefined) {
    urlField = 'coordinator.urlEnv';
    url = secrets.fromEnv(section.urlEnv, ['coordinator', 'urlEnv']);
    const problem = url === undefined ? undefined : redisUrlProblem(url);
    // The variable may hold a password, which is why it is a variable: its value is never echoed.
    if (problem !== undefined && !problem.startsWith('must not hold a password')) {
      problems.push(`coordinator.urlEnv: the environment variable ${section.urlEnv} ${problem.replace(/^must be/, 'must hold')}`);
    }
  }
  const withWhat = fromFlag ? '--coordinator' : 'coordinator';
  if (file.checkpoint !== undefined) {
    problems.push(
      `checkpoint.file: cannot be used with ${withWhat} (got ${JSON.stringify(file.checkpoint.file)}): the workers keep their checkpoints in Redis, fenced by their leases; remove checkpoint.file (or ${withWhat})`,
    );
  }
  if (file.mailboxes === undefined) {
    problems.push(`mailboxes: is required with ${withWhat}: the workers share the listed mailboxes (the account’s own cannot be leased)`);
  }
  const leaseTtlMs = Math.round(section.leaseTtlSeconds * 1000);
  const renewIntervalMs = section.renewIntervalSeconds === undefined ? Math.floor(leaseTtlMs / 3) : Math.round(section.renewIntervalSeconds * 1000);
  if (renewIntervalMs * 2 > leaseTtlMs) {
    problems.push(
      `coordinator.renewIntervalSeconds: must be at most half of coordinator.leaseTtlSeconds (got ${section.renewIntervalSeconds} with a lease of ${section.leaseTtlSeconds} s)`,
    );
  }
  return {
    url: url ?? '',
    urlField,
    prefix: section.prefix,
    leaseTtlMs,
    renewIntervalMs,
    workerName: section.workerName,
  };
}

/**
 * Reads, parses, validates a configuration file and reads its secrets.
 *
 * @throws CliError (exit 2) naming the file and every wrong field.
 */
export async function loadConfig(path: string, env: Environment = process.env, overrides: ConfigOverrides = {}): Promise<BridgeConfig> {
  const absolute = resolve(path);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (error) {
    const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'unreadable';
    throw new CliError(EXIT.usage, `Cannot read the config file ${absolute} (${code})`);
  }
  return resolveConfig(parseFile(absolute, text), absolute, env, overrides);
}
