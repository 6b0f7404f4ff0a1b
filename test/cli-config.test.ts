/**
 * The `forward` configuration: every wrong field is named in one line each, secrets come only
 * from the environment or files and never show up in a message, and the command exits 2 on a bad
 * file (checked in a child process for the exit code and the message a person sees).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../cli/config.js';
import { closest, editDistance } from '../cli/config-hints.js';
import { CliError } from '../cli/exit-codes.js';
import { ROOT, killAll, runCli } from './helpers/cli-process.js';

afterEach(killAll);
const dir = mkdtempSync(join(tmpdir(), 'ews-cli-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'Winter2026!not-for-logs';

function valid(): Record<string, unknown> {
  return {
    ews: { url: 'https://mail.contoso.com/EWS/Exchange.asmx', auth: { type: 'basic', username: 'svc@contoso.com', passwordEnv: 'EWS_PASSWORD' } },
    mailboxes: ['alice@contoso.com'],
    listener: { url: 'http://crm.local/Listener.asmx' },
  };
}

/** The problems resolveConfig reports for `raw` (or [] when it is accepted). */
function problems(raw: unknown, env: Record<string, string> = { EWS_PASSWORD: SECRET }): string[] {
  try {
    resolveConfig(raw, join(dir, 'bridge.json'), env);
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(2);
    expect((error as CliError).message).not.toContain(SECRET);
    return (error as CliError).message.split('\n').slice(1).map((l) => l.replace(/^ {2}- /, ''));
  }
}

function withField(path: string, value: unknown): Record<string, unknown> {
  const raw = valid();
  const keys = path.split('.');
  let target: Record<string, unknown> = raw;
  for (const key of keys.slice(0, -1)) target = (target[key] ??= {}) as Record<string, unknown>;
  const last = keys.at(-1)!;
  if (value === undefined) delete target[last];
  else target[last] = value;
  return raw;
}

describe('forward configuration', () => {
  it('passes listener.maxBacklogNotifications through', () => {
    const raw = valid();
    raw['listener'] = { url: 'http://crm.local/Listener.asmx', maxBacklogNotifications: 5_000 };
    expect(resolveConfig(raw, join(dir, 'bridge.json'), { EWS_PASSWORD: SECRET }).listener.maxBacklogNotifications).toBe(5_000);
  });

  it('accepts a minimal file, applies the defaults and reads the secret from the environment', () => {
    const config = resolveConfig(valid(), join(dir, 'bridge.json'), { EWS_PASSWORD: SECRET });
    expect(config.mode).toBe('streaming');
    expect(config.ews.auth).toEqual({ type: 'basic', username: 'svc@contoso.com', password: SECRET });
    expect(config.mailboxes).toEqual([{ mailbox: 'alice@contoso.com', folders: ['inbox'], subscribeToAllFolders: false, eventTypes: undefined }]);
    expect(config.listener.statusFrequencyMinutes).toBe(30);
    expect(config.listener.maxBacklogNotifications).toBeUndefined();
    expect(config.ews.startupTimeoutMs).toBe(30_000);
    expect(config.metrics).toBeUndefined();
    expect(config.log).toEqual({ level: 'info', format: 'text' });
  });

  it('names each wrong field, all at once', () => {
    const raw = {
      ews: { auth: { type: 'basic', username: 'svc' } },
      mode: 'push',
      mailboxes: ['alice@contoso.com', 'bob'],
      eventTypes: ['NewMail', 'Received'],
      listner: { url: 'http://crm.local/' },
    };
    expect(problems(raw)).toEqual([
      'ews.url: is required',
      'ews.auth.passwordEnv: is required (or passwordFile)',
      'mode: must be one of "streaming", "pull", "hybrid" (got "push")',
      'mailboxes[1]: must be an SMTP address like alice@contoso.com',
      'eventTypes[1]: must be one of "Copied", "Created", "Deleted", "Modified", "Moved", "NewMail", "FreeBusyChanged" (got "Received")',
      'listener: is required',
      'listner: unknown field — did you mean "listener"? (every field: docs/configuration.md)',
    ]);
  });

  it.each([
    ['ews.url', 'mail.contoso.com', 'ews.url: must be an absolute http or https URL without user:password'],
    ['ews.url', 'https://svc:pw@mail.contoso.com/EWS/Exchange.asmx', 'ews.url: must be an absolute http or https URL without user:password'],
    ['ews.auth', { type: 'kerberos' }, 'ews.auth.type: must be one of "basic", "ntlm", "bearer", "negotiate", "none" (got "kerberos")'],
    ['ews.auth', { type: 'bearer' }, 'ews.auth.tokenEnv: is required (or tokenFile)'],
    ['ews.auth', { type: 'basic', username: 'svc', passwordEnv: 'A', passwordFile: 'b' }, 'ews.auth.passwordFile: give either passwordEnv or passwordFile, not both'],
    ['ews.auth', { type: 'basic', username: 'svc', passwordEnv: 'not a name' }, 'ews.auth.passwordEnv: must be an environment variable name (letters, digits and _)'],
    ['ews.startupTimeoutSeconds', 0, 'ews.startupTimeoutSeconds: must be 1–3600 seconds'],
    ['ews.anchorMailbox', 'group-1', 'ews.anchorMailbox: must be an SMTP address like alice@contoso.com'],
    ['ews.caFile', 'missing-ca.pem', `ews.caFile: cannot read ${join(dir, 'missing-ca.pem')} (ENOENT)`],
    ['listener.statusFrequencyMinutes', 0, 'listener.statusFrequencyMinutes: must be 1–1440'],
    ['listener.statusFrequencyMinutes', 2.5, 'listener.statusFrequencyMinutes: must be a whole number of minutes, 1–1440'],
    ['listener.maxBacklogNotifications', 0, 'listener.maxBacklogNotifications: must be 1–10000000'],
    ['listener.maxBacklogNotifications', 1.5, 'listener.maxBacklogNotifications: must be a whole number, 1–10000000'],
    ['listener.sharedSecret', { headerName: 'X Secret', valueEnv: 'S' }, 'listener.sharedSecret.headerName: must be an HTTP header name'],
    ['metrics', { port: 70000 }, 'metrics.port: must be 0–65535'],
    ['metrics', { port: '9464' }, 'metrics.port: must be a number (got a string)'],
    ['folders', [], 'folders: must list at least one folder'],
    ['mailboxes', [], 'mailboxes: must list at least one mailbox (or leave it out to watch the account’s own)'],
    ['log.level', 'verbose', 'log.level: must be one of "debug", "info", "warn", "error" (got "verbose")'],
  ])('%s = %j → %s', (path, value, message) => {
    expect(problems(withField(path, value))).toEqual([message]);
  });

  it('suggests the closest known name for a typo, among the fields that fit there', () => {
    const raw = valid();
    (raw['listener'] as Record<string, unknown>)['statusFrequencyMinute'] = 5;
    (raw['ews'] as Record<string, unknown>)['auth'] = { type: 'basic', username: 'svc', passwordEnv: 'EWS_PASSWORD', Domain: 'CONTOSO' };
    raw['Mode'] = 'pull';
    raw['server'] = 'mail';
    expect(problems(raw)).toEqual([
      // basic has no domain: NTLM's field is not offered for a basic account.
      'ews.auth.Domain: unknown field (known here: type, username, passwordEnv, passwordFile; every field: docs/configuration.md)',
      'listener.statusFrequencyMinute: unknown field — did you mean "statusFrequencyMinutes"? (every field: docs/configuration.md)',
      'Mode: unknown field — did you mean "mode"? (every field: docs/configuration.md)',
      'server: unknown field (known here: ews, mode, mailboxes, folders, subscribeToAllFolders, eventTypes, pollIntervalSeconds, listener, checkpoint, coordinator, metrics, log; every field: docs/configuration.md)',
    ]);
    const ntlm = withField('ews.auth', { type: 'ntlm', username: 'svc', passwordEnv: 'EWS_PASSWORD', domian: 'CONTOSO' });
    expect(problems(ntlm)).toEqual(['ews.auth.domian: unknown field — did you mean "domain"? (every field: docs/configuration.md)']);
    const mailbox = withField('mailboxes', [{ address: 'rooms@contoso.com', folder: ['calendar'] }]);
    expect(problems(mailbox)[0]).toBe('mailboxes[0].folder: unknown field — did you mean "folders"? (every field: docs/configuration.md)');
    expect(problems(withField('mode', 'hybird'))).toEqual(['mode: must be one of "streaming", "pull", "hybrid" (got "hybird") — did you mean "hybrid"?']);
    expect(problems(withField('eventTypes', ['newmail']))).toEqual([
      'eventTypes[0]: must be one of "Copied", "Created", "Deleted", "Modified", "Moved", "NewMail", "FreeBusyChanged" (got "newmail") — did you mean "NewMail"?',
    ]);
    expect(problems(withField('ews.auth', { type: 'bsic' }))).toEqual(['ews.auth.type: must be one of "basic", "ntlm", "bearer", "negotiate", "none" (got "bsic") — did you mean "basic"?']);
  });

  it('edit distance counts a swapped, dropped, doubled or wrongly-cased letter as one; far words get no guess', () => {
    expect([editDistance('listner', 'listener'), editDistance('mdoe', 'mode'), editDistance('Mode', 'mode'), editDistance('', 'abc')]).toEqual([1, 1, 0, 3]);
    expect(closest('pull', ['push'])).toBeUndefined();
    expect(closest('hybird', ['streaming', 'pull', 'hybrid'])).toBe('hybrid');
    expect(closest('x', [])).toBeUndefined();
  });

  it('takes TLS and affinity settings for an https endpoint only', () => {
    writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
    const raw = withField('ews.caFile', 'ca.pem');
    (raw['ews'] as Record<string, unknown>)['anchorMailbox'] = 'alice@contoso.com';
    const config = resolveConfig(raw, join(dir, 'bridge.json'), { EWS_PASSWORD: SECRET });
    expect(config.ews.ca?.toString()).toBe('-----BEGIN CERTIFICATE-----\n');
    expect([config.ews.rejectUnauthorized, config.ews.anchorMailbox]).toEqual([true, 'alice@contoso.com']);
    const plain = withField('ews.url', 'http://mail.contoso.com/EWS/Exchange.asmx');
    (plain['ews'] as Record<string, unknown>)['rejectUnauthorized'] = false;
    (plain['ews'] as Record<string, unknown>)['caFile'] = 'ca.pem';
    expect(problems(plain)).toEqual(['ews.caFile: needs an https ews.url', 'ews.rejectUnauthorized: needs an https ews.url']);
  });

  it('refuses inline secrets with advice, without echoing them', () => {
    const raw = withField('ews.auth', { type: 'basic', username: 'svc', password: SECRET });
    expect(problems(raw)).toEqual([
      'ews.auth.password: put the password in an environment variable (passwordEnv) or a file (passwordFile), not in the config file',
      'ews.auth.passwordEnv: is required (or passwordFile)',
    ]);
    const secret = withField('listener.sharedSecret', { headerName: 'X-Bridge-Secret', value: SECRET });
    expect(problems(secret)).toContain(
      'listener.sharedSecret.value: put the secret in an environment variable (valueEnv) or a file (valueFile), not in the config file',
    );
  });

  it('reports a missing environment variable or unreadable file, without echoing what looks like a secret', () => {
    expect(problems(valid(), {})).toEqual(['ews.auth.passwordEnv: the environment variable EWS_PASSWORD is not set (or is empty)']);
    // A password pasted where the variable's name belongs is not repeated back.
    const pasted = withField('ews.auth', { type: 'basic', username: 'svc', passwordEnv: 'Winter2026' });
    expect(problems(pasted, {})).toEqual(['ews.auth.passwordEnv: the environment variable it names is not set (or is empty)']);
    const file = withField('ews.auth', { type: 'ntlm', username: 'CONTOSO\\svc', passwordFile: 'no-such-file' });
    expect(problems(file)).toEqual([`ews.auth.passwordFile: cannot read ${join(dir, 'no-such-file')} (ENOENT)`]);
  });

  it('reads secrets from files relative to the config file; a token file is read again on each use', async () => {
    writeFileSync(join(dir, 'password.txt'), `${SECRET}\n`);
    writeFileSync(join(dir, 'token.txt'), 'token-1\n');
    writeFileSync(join(dir, 'listener-secret'), 's3cret');
    const raw = withField('ews.auth', { type: 'ntlm', username: 'CONTOSO\\svc', domain: 'CONTOSO', passwordFile: 'password.txt' });
    (raw['listener'] as Record<string, unknown>)['sharedSecret'] = { headerName: 'X-Bridge-Secret', valueFile: 'listener-secret' };
    (raw as Record<string, unknown>)['checkpoint'] = { file: 'state/checkpoints.json' };
    const config = resolveConfig(raw, join(dir, 'bridge.json'), {});
    expect(config.ews.auth).toEqual({ type: 'ntlm', username: 'CONTOSO\\svc', domain: 'CONTOSO', password: SECRET });
    expect(config.listener.sharedSecret).toEqual({ headerName: 'X-Bridge-Secret', value: 's3cret' });
    expect(config.checkpointFile).toBe(join(dir, 'state', 'checkpoints.json'));

    const bearer = resolveConfig(withField('ews.auth', { type: 'bearer', tokenFile: 'token.txt' }), join(dir, 'bridge.json'), {});
    const auth = bearer.ews.auth;
    if (auth.type !== 'bearer' || typeof auth.token !== 'function') throw new Error('expected a token function');
    expect(await auth.token()).toBe('token-1');
    writeFileSync(join(dir, 'token.txt'), 'token-2\n');
    expect(await auth.token()).toBe('token-2');
  });

  it('takes per-mailbox folders and event types, and refuses a mailbox listed twice', () => {
    const raw = withField('mailboxes', ['alice@contoso.com', { address: 'rooms@contoso.com', folders: ['calendar'], eventTypes: ['Created'] }]);
    const config = resolveConfig(raw, join(dir, 'bridge.json'), { EWS_PASSWORD: SECRET });
    expect(config.mailboxes[1]).toEqual({ mailbox: 'rooms@contoso.com', folders: ['calendar'], subscribeToAllFolders: false, eventTypes: ['Created'] });
    expect(problems(withField('mailboxes', ['alice@contoso.com', 'Alice@Contoso.com']))).toEqual(['mailboxes[1]: Alice@Contoso.com is listed twice']);
  });
});

describe('ews-push-bridge forward with a bad or checked config (child process)', () => {
  it('exits 2 naming the field, and never prints the secret', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify(withField('listener.statusFrequencyMinutes', 0)));
    const { code, stderr, stdout } = await runCli(['forward', '--config', file], { EWS_PASSWORD: SECRET });
    expect(code).toBe(2);
    expect(stderr).toContain(`ews-push-bridge: ${file}: 1 problem`);
    expect(stderr).toContain('listener.statusFrequencyMinutes: must be 1–1440');
    expect(stderr + stdout).not.toContain(SECRET);
  });

  it('exits 2 for a file that is not JSON, or not there', async () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ "ews": { "url": ');
    const broken = await runCli(['forward', '--config', file]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain(`${file} is not valid JSON:\n  line 1, column 18: the file ends too early (a missing } or ])\n    1 | { "ews": { "url": \n      |                  ^`);
    writeFileSync(file, '{\n  "ews": {\n    "url": "x"\n    "auth": {}\n  }\n}\n');
    const comma = await runCli(['forward', '--config', file]);
    expect(comma.code).toBe(2);
    expect(comma.stderr).toMatch(/line 4, column 5: .*\n {4}3 \| {5}"url": "x"\n {4}4 \| {5}"auth": \{\}\n {6}\| {5}\^/);
    const missing = await runCli(['forward', '--config', join(dir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`Cannot read the config file ${join(dir, 'nope.json')} (ENOENT)`);
    const none = await runCli(['forward']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--config is required');
  }, 90_000);

  it('--check accepts examples/bridge.json and a YAML file', async () => {
    const example = await runCli(['forward', '--config', join(ROOT, 'examples/bridge.json'), '--check'], { EWS_PASSWORD: SECRET, BRIDGE_SHARED_SECRET: 'x' });
    expect(example.stderr).toBe('');
    expect(example.code).toBe(0);
    expect(example.stdout).toContain('examples/bridge.json: OK (hybrid, 3 mailboxes)');
    const yaml = join(dir, 'bridge.yaml');
    writeFileSync(
      yaml,
      [
        'ews:',
        '  url: https://mail.contoso.com/EWS/Exchange.asmx',
        '  auth: { type: basic, username: svc@contoso.com, passwordEnv: EWS_PASSWORD }',
        'mode: pull',
        'mailboxes: [alice@contoso.com]',
        'listener:',
        '  url: http://crm.local/Listener.asmx',
        '  statusFrequencyMinutes: zero',
        '',
      ].join('\n'),
    );
    const bad = await runCli(['forward', '--config', yaml, '--check'], { EWS_PASSWORD: SECRET });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('listener.statusFrequencyMinutes: must be a number (got a string)');
  });

  it('a YAML syntax error names the line and column, shows the lines with a caret, says what to do, and masks secrets', async () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, ['ews:', '  url: https://mail.contoso.com/EWS/Exchange.asmx', ' auth: { type: basic }', ''].join('\n'));
    const indent = await runCli(['forward', '--config', file, '--check']);
    expect(indent.code).toBe(2);
    expect(indent.stderr).toBe(
      [
        `ews-push-bridge: ${file} is not valid YAML:`,
        '  line 3, column 1: All mapping items must start at the same column (fields of one object must start in the same column)',
        '    2 |   url: https://mail.contoso.com/EWS/Exchange.asmx',
        '    3 |  auth: { type: basic }',
        '      | ^',
        '',
      ].join('\n'),
    );
    writeFileSync(file, ['ews:', '  auth:', '    type: basic', `    password: ${SECRET}: x`, 'mode:\tpull', 'mode: pull', ''].join('\n'));
    const secret = await runCli(['forward', '--config', file, '--check']);
    expect(secret.code).toBe(2);
    expect(secret.stderr).toContain('line 4, column');
    expect(secret.stderr).toContain('    4 |     password: ****');
    expect(secret.stderr).not.toContain(SECRET);
    expect(secret.stderr).toContain('(a field may appear only once in an object)');
  }, 60_000);

  it('unknown commands and options exit 2 with the usage', async () => {
    const unknown = await runCli(['fowrard']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown command "fowrard"');
    expect(unknown.stderr).toContain('Usage: ews-push-bridge <command>');
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes: 0 ok, 1 failure, 2 bad usage or config, 3 cannot authenticate');
  });
});
