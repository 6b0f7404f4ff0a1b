/**
 * The shape of a `forward` configuration file (JSON or YAML), as a zod schema, and the translation
 * of its validation issues into one line per wrong field (`mode: must be one of "streaming",
 * "pull", "hybrid" (got "push")`). Secrets never sit in the file: only where to find them
 * (`passwordEnv`, `passwordFile`, …); see `config.ts` for how they are read.
 *
 * @packageDocumentation
 */
import { z } from 'zod';
import { EVENT_TYPES } from '../lib/index.js';
import { EXCHANGE_VERSIONS } from '../lib/wire.js';
import { closest, fieldsAt } from './config-hints.js';

/** How the bridge watches a mailbox. */
export const MODES = ['streaming', 'pull', 'hybrid'] as const;
/** One of {@link MODES}. */
export type Mode = (typeof MODES)[number];

/** Log levels of the CLI's stderr logger, most verbose first. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

// An environment variable name as shells and service managers write them.
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SMTP = /^[^\s@]+@[^\s@]+$/;

const envName = z.string().regex(ENV_NAME, { error: 'must be an environment variable name (letters, digits and _)' });
const filePath = z.string().min(1, { error: 'must be a file path' });

const httpUrl = z.string().refine(
  (value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === '';
    } catch {
      return false;
    }
  },
  { error: 'must be an absolute http or https URL without user:password' },
);

/** Exactly one of the two ways to give a secret. */
function oneSecret(fields: readonly [string, string]) {
  return (value: Record<string, unknown>, ctx: z.core.$RefinementCtx<Record<string, unknown>>): void => {
    const given = fields.filter((f) => value[f] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: given.length === 0 ? [fields[0]] : [fields[1]],
        message: given.length === 0 ? `is required (or ${fields[1]})` : `give either ${fields[0]} or ${fields[1]}, not both`,
      });
    }
  };
}

const basicAuth = z
  .strictObject({
    type: z.literal('basic'),
    username: z.string().min(1, { error: 'must not be empty' }),
    passwordEnv: envName.optional(),
    passwordFile: filePath.optional(),
  })
  .superRefine(oneSecret(['passwordEnv', 'passwordFile']));

const ntlmAuth = z
  .strictObject({
    type: z.literal('ntlm'),
    username: z.string().min(1, { error: 'must not be empty' }),
    domain: z.string().optional(),
    workstation: z.string().optional(),
    spn: z.string().regex(/^[^/@\s]+\/[^/@\s]+$/, { error: 'must be service/host, e.g. HTTP/mail.contoso.com' }).optional(),
    passwordEnv: envName.optional(),
    passwordFile: filePath.optional(),
  })
  .superRefine(oneSecret(['passwordEnv', 'passwordFile']));

const bearerAuth = z
  .strictObject({
    type: z.literal('bearer'),
    tokenEnv: envName.optional(),
    tokenFile: filePath.optional(),
  })
  .superRefine(oneSecret(['tokenEnv', 'tokenFile']));

const noAuth = z.strictObject({ type: z.literal('none') });

// Kerberos credentials come from the environment (KRB5CCNAME / KRB5_CLIENT_KTNAME), never the file.
const negotiateAuth = z.strictObject({
  type: z.literal('negotiate'),
  spn: z.string().regex(/^[^/@\s]+\/[^/@\s]+$/, { error: 'must be service/host, e.g. HTTP/mail.contoso.com' }).optional(),
  principal: z.string().min(1).optional(),
  mechanism: z.enum(['spnego', 'kerberos']).optional(),
});

const authSchema = z.discriminatedUnion('type', [basicAuth, ntlmAuth, bearerAuth, negotiateAuth, noAuth]);

const folderSchema = z.union([z.string().min(1), z.strictObject({ id: z.string().min(1), changeKey: z.string().optional() })], {
  error: 'must be a folder name like "inbox" or { "id": "…" }',
});
const eventTypesSchema = z.array(z.enum(EVENT_TYPES)).min(1, { error: 'must name at least one event type' });
const smtpAddress = z.string().regex(SMTP, { error: 'must be an SMTP address like alice@contoso.com' });

const mailboxSchema = z.union(
  [
    smtpAddress,
    z.strictObject({
      address: smtpAddress,
      folders: z.array(folderSchema).min(1).optional(),
      subscribeToAllFolders: z.boolean().optional(),
      eventTypes: eventTypesSchema.optional(),
    }),
  ],
  { error: 'must be an SMTP address or { "address": "…", "folders": […], "eventTypes": […] }' },
);

/** A Redis URL as `coordinator.url` may hold it: no password (that belongs in `coordinator.urlEnv`). */
export function redisUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be a redis:// or rediss:// URL, e.g. redis://redis.contoso.local:6379';
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return 'must be a redis:// or rediss:// URL, e.g. redis://redis.contoso.local:6379';
  if (url.hostname === '') return 'must name a host, e.g. redis://redis.contoso.local:6379';
  if (url.password !== '') return 'must not hold a password: put the whole URL in an environment variable and name it in coordinator.urlEnv';
  return undefined;
}

const redisUrl = z.string().superRefine((value, ctx) => {
  const problem = redisUrlProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

const seconds = (min: number, max: number) =>
  z
    .number()
    .min(min, { error: `must be ${min}–${max} seconds` })
    .max(max, { error: `must be ${min}–${max} seconds` });

/** The configuration file, as written. */
export const bridgeConfigSchema = z.strictObject({
  /** Editors' schema hint; ignored. */
  $schema: z.string().optional(),
  ews: z.strictObject({
    url: httpUrl,
    auth: authSchema,
    requestServerVersion: z.enum(EXCHANGE_VERSIONS as readonly [string, ...string[]]).optional(),
    caFile: filePath.optional(),
    rejectUnauthorized: z.boolean().default(true),
    anchorMailbox: smtpAddress.optional(),
    startupTimeoutSeconds: seconds(1, 3600).default(30),
  }),
  mode: z.enum(MODES).default('streaming'),
  mailboxes: z.array(mailboxSchema).min(1, { error: 'must list at least one mailbox (or leave it out to watch the account’s own)' }).optional(),
  folders: z.array(folderSchema).min(1, { error: 'must list at least one folder' }).default(['inbox']),
  subscribeToAllFolders: z.boolean().default(false),
  eventTypes: eventTypesSchema.optional(),
  pollIntervalSeconds: seconds(1, 3600).optional(),
  listener: z.strictObject({
    url: httpUrl,
    statusFrequencyMinutes: z
      .number()
      .int({ error: 'must be a whole number of minutes, 1–1440' })
      .min(1, { error: 'must be 1–1440' })
      .max(1440, { error: 'must be 1–1440' })
      .default(30),
    requestTimeoutSeconds: seconds(1, 600).optional(),
    maxBacklogNotifications: z
      .number()
      .int({ error: 'must be a whole number, 1–10000000' })
      .min(1, { error: 'must be 1–10000000' })
      .max(10_000_000, { error: 'must be 1–10000000' })
      .optional(),
    sharedSecret: z
      .strictObject({
        headerName: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'must be an HTTP header name' }),
        valueEnv: envName.optional(),
        valueFile: filePath.optional(),
      })
      .superRefine(oneSecret(['valueEnv', 'valueFile']))
      .optional(),
    caFile: filePath.optional(),
  }),
  checkpoint: z.strictObject({ file: filePath }).optional(),
  coordinator: z
    .strictObject({
      url: redisUrl.optional(),
      urlEnv: envName.optional(),
      prefix: z.string().min(1, { error: 'must not be empty' }).default('ews-bridge'),
      leaseTtlSeconds: seconds(1, 3600).default(15),
      renewIntervalSeconds: seconds(0.1, 1800).optional(),
      workerName: z.string().min(1, { error: 'must not be empty' }).optional(),
    })
    .superRefine(oneSecret(['url', 'urlEnv']))
    .optional(),
  metrics: z
    .strictObject({
      port: z.number().int().min(0, { error: 'must be 0–65535' }).max(65535, { error: 'must be 0–65535' }),
      host: z.string().min(1).default('127.0.0.1'),
      unhealthyAfterSeconds: seconds(1, 86_400).default(120),
    })
    .optional(),
  log: z
    .strictObject({
      level: z.enum(LOG_LEVELS).default('info'),
      format: z.enum(['text', 'json']).default('text'),
    })
    .default({ level: 'info', format: 'text' }),
});

/** The configuration file after validation (defaults applied, secrets still references). */
export type BridgeConfigFile = z.output<typeof bridgeConfigSchema>;

// Keys that would hold a secret inline: refused with a pointer to the right field.
const INLINE_SECRETS: Readonly<Record<string, string>> = {
  password: 'put the password in an environment variable (passwordEnv) or a file (passwordFile), not in the config file',
  token: 'put the token in an environment variable (tokenEnv) or a file (tokenFile), not in the config file',
  value: 'put the secret in an environment variable (valueEnv) or a file (valueFile), not in the config file',
};

/** `ews.auth.passwordEnv`, `mailboxes[1].address`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? String(part) : `.${String(part)}`;
  return out === '' ? '(top level)' : out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const part of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/** A short rendering of a value that is safe to show (never called for secret fields). */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeName(value);
}

/**
 * One message per problem, each starting with the field's path. Values are echoed only where they
 * cannot be secrets (enum choices, types); unknown keys that look like inline secrets get advice
 * instead of an echo.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], raw: unknown): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const path = issue.path;
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          const advice = INLINE_SECRETS[key];
          if (advice !== undefined) {
            lines.push(`${formatPath([...path, key])}: ${advice}`);
            continue;
          }
          const known = fieldsAt(bridgeConfigSchema, path, raw).filter((name) => !issue.keys.includes(name));
          const guess = closest(key, known);
          const where = 'every field: docs/configuration.md';
          lines.push(
            `${formatPath([...path, key])}: unknown field ${
              guess !== undefined ? `— did you mean ${JSON.stringify(guess)}? (${where})` : `(${known.length > 0 ? `known here: ${known.join(', ')}` : 'check the spelling'}; ${where})`
            }`,
          );
        }
        break;
      case 'invalid_type': {
        const value = valueAt(raw, path);
        if (value === undefined) lines.push(`${formatPath(path)}: is required`);
        // A message the schema wrote itself says more than the generic one.
        else if (!issue.message.startsWith('Invalid input')) lines.push(`${formatPath(path)}: ${issue.message}`);
        else if (issue.expected === 'int') lines.push(`${formatPath(path)}: must be a whole number (got ${shown(value)})`);
        else lines.push(`${formatPath(path)}: must be ${issue.expected === 'array' ? 'a list' : `a ${issue.expected}`} (got ${typeName(value)})`);
        break;
      }
      case 'invalid_value': {
        const value = valueAt(raw, path);
        const guess = typeof value === 'string' ? closest(value, issue.values.filter((v): v is string => typeof v === 'string')) : undefined;
        lines.push(
          `${formatPath(path)}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')} (got ${shown(value)})${guess === undefined ? '' : ` — did you mean ${JSON.stringify(guess)}?`}`,
        );
        break;
      }
      case 'invalid_union': {
        // A discriminated union names the allowed tags (not in zod's issue type, but on the issue).
        const options: unknown = (issue as { options?: unknown }).options;
        if (Array.isArray(options)) {
          const value = valueAt(raw, path);
          const guess = typeof value === 'string' ? closest(value, options.filter((v): v is string => typeof v === 'string')) : undefined;
          lines.push(`${formatPath(path)}: must be one of ${options.map((v) => JSON.stringify(v)).join(', ')} (got ${shown(value)})${guess === undefined ? '' : ` — did you mean ${JSON.stringify(guess)}?`}`);
        } else {
          lines.push(`${formatPath(path)}: ${issue.message}`);
        }
        break;
      }
      default:
        lines.push(`${formatPath(path)}: ${issue.message}`);
    }
  }
  return lines;
}
