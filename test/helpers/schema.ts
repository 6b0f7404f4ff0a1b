/**
 * Validates SOAP envelopes against Microsoft's EWS schema (`../shared/ews-schema/`) with
 * `xmllint-wasm`, the same check `../shared/tools/ews-validate` does with native xmllint.
 *
 * For each envelope (one, or a stream of several back to back as GetStreamingEvents sends them)
 * every child of `Body` is cut out as a standalone document — with the namespace declarations it
 * inherits from the envelope copied onto it — and validated against `messages.xsd` (which imports
 * `types.xsd`, which imports `xml.xsd`). Children of `Header` in the EWS types namespace
 * (`RequestServerVersion`, `ExchangeImpersonation`, `ServerVersionInfo`, …) are global elements of
 * `types.xsd`, so they are validated the same way unless `{ header: false }`.
 *
 * Usage:
 * ```ts
 * describe.skipIf(!schemaAvailable)('…', () => {
 *   it('is valid', async () => expectSchemaValid(await validateSoapBody(xml)));
 * });
 * ```
 *
 * Cost: every `xmllint-wasm` call starts a worker thread, instantiates the wasm module and compiles
 * the ~13,000-line schema — about 0.4 s on the 2-core dev machine — and the library offers no way
 * to keep a compiled schema between calls. So calls are **batched**: every document requested in
 * the same turn of the event loop (e.g. `await Promise.all(xs.map((x) => validateSoapBody(x)))`) is
 * validated by one xmllint run, which compiles the schema once. Measured: 1 envelope ≈ 0.42 s;
 * 300 envelopes (600 parts) in one `Promise.all` ≈ 0.62 s. Sequential `await`s pay 0.4 s each.
 *
 * The schema lives outside the repository and is not shipped to users: tests that use this helper
 * must `describe.skipIf(!schemaAvailable)` and name {@link schemaSkipReason} in the title.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SaxesParser } from 'saxes';
import { validateXML } from 'xmllint-wasm';

const SOAP_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
const TYPES_NS = 'http://schemas.microsoft.com/exchange/services/2006/types';
const MESSAGES_NS = 'http://schemas.microsoft.com/exchange/services/2006/messages';

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** `../shared` next to the repository: engineering material, absent for users. */
export const SHARED_DIR = resolve(REPO_ROOT, '../shared');
/** Microsoft's EWS schema files. */
export const SCHEMA_DIR = join(SHARED_DIR, 'ews-schema');

const SCHEMA_FILES = ['messages.xsd', 'types.xsd', 'xml.xsd'] as const;

/** Whether the EWS schema is present (it is not in a user's clone). */
export const schemaAvailable: boolean = SCHEMA_FILES.every((f) => existsSync(join(SCHEMA_DIR, f)));

/** Use in a skipped suite's title so the skip explains itself. */
export const schemaSkipReason = `EWS schema not found at ${SCHEMA_DIR} (../shared is engineering-only); schema validation skipped`;

/** One element cut out of an envelope as a standalone XML document. */
export interface SoapPart {
  readonly kind: 'header' | 'body';
  /** 0-based index of the envelope in the input. */
  readonly envelope: number;
  /** `{namespace}localName` of the element. */
  readonly name: string;
  /** The element as a complete document, inherited namespace declarations included. */
  readonly xml: string;
}

/** The outcome of validating one input (all of its parts). */
export interface SchemaValidation {
  readonly valid: boolean;
  /** xmllint's messages, each prefixed with the part it concerns, e.g. `body 0 {…}Subscribe: …`. */
  readonly errors: readonly string[];
  /** How many elements were validated. */
  readonly parts: number;
}

const escapeText = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');
const escapeAttr = (s: string): string =>
  escapeText(s).replace(/"/g, '&quot;').replace(/\t/g, '&#x9;').replace(/\n/g, '&#xA;');

interface Frame {
  readonly qname: string;
  readonly uri: string;
  readonly local: string;
  /** Namespace declarations in scope here, prefix ('' = default) → URI. */
  readonly scope: ReadonlyMap<string, string>;
}

/** Options of {@link extractSoapParts}. */
export interface ExtractOptions {
  /**
   * Rewrite `m:Notification` inside `Notifications` to the types namespace the schema declares,
   * i.e. accept the one known deviation of real servers (and of our simulator, which copies them;
   * see `../shared/ews-schema/README.md`). Everything else is still checked. Default `false`.
   */
  readonly allowMessagesNotification?: boolean;
}

/**
 * Cuts every Header child (EWS types namespace only) and Body child out of one envelope or a
 * stream of envelopes. Throws when the input is not well-formed, when an envelope is not a SOAP 1.1
 * `Envelope`, or when a `Body` has no element child.
 */
export function extractSoapParts(xml: string, options: ExtractOptions = {}): SoapPart[] {
  // A stream repeats the XML declaration before each envelope; fragment mode accepts several
  // top-level elements but no declaration after the start. Test input, so a regex is fine here.
  const input = xml.replace(/<\?xml[^?]*\?>/g, '');
  const parser = new SaxesParser({ xmlns: true, fragment: true, position: false });
  const parts: SoapPart[] = [];
  const stack: Frame[] = [];
  let envelopes = -1;
  let bodyChildren = 0;
  // While copying a part: its buffer, kind and the stack depth of its root.
  let out: string[] | undefined;
  let outKind: 'header' | 'body' = 'body';
  let outDepth = 0;
  let outName = '';
  // Names written for the open elements of the part being copied (a rewrite changes the close tag too).
  const written: string[] = [];
  let error: Error | undefined;

  parser.on('error', (e) => {
    error ??= e;
  });
  parser.on('opentag', (tag) => {
    const parent = stack[stack.length - 1];
    const scope = new Map(parent?.scope ?? []);
    for (const [prefix, uri] of Object.entries(tag.ns ?? {})) scope.set(prefix, uri);
    const frame: Frame = { qname: tag.name, uri: tag.uri ?? '', local: tag.local ?? tag.name, scope };
    const depth = stack.length;
    stack.push(frame);

    if (depth === 0) {
      if (frame.local !== 'Envelope' || frame.uri !== SOAP_NS) {
        throw new Error(`top-level element ${frame.qname} is not a SOAP 1.1 Envelope (namespace ${JSON.stringify(frame.uri)})`);
      }
      envelopes += 1;
      bodyChildren = 0;
      return;
    }
    if (out === undefined && depth === 2 && parent !== undefined && parent.uri === SOAP_NS) {
      const kind = parent.local === 'Body' ? 'body' : parent.local === 'Header' ? 'header' : undefined;
      if (kind === 'body') bodyChildren += 1;
      if (kind === 'body' || (kind === 'header' && frame.uri === TYPES_NS)) {
        out = [];
        outKind = kind;
        outDepth = depth;
        outName = `{${frame.uri}}${frame.local}`;
      }
    }
    if (out !== undefined) {
      let name = tag.name;
      let extra = '';
      if (options.allowMessagesNotification && frame.uri === MESSAGES_NS && frame.local === 'Notification' && parent?.local === 'Notifications') {
        name = 'schemaHelperT:Notification';
        extra = ` xmlns:schemaHelperT="${TYPES_NS}"`;
      }
      written.push(name);
      let start = `<${name}${extra}`;
      const own = tag.ns ?? {};
      if (depth === outDepth) {
        // Re-declare what the root inherits, so the part stands alone.
        for (const [prefix, uri] of scope) {
          if (!(prefix in own)) start += prefix === '' ? ` xmlns="${escapeAttr(uri)}"` : ` xmlns:${prefix}="${escapeAttr(uri)}"`;
        }
      }
      for (const attr of Object.values(tag.attributes)) start += ` ${attr.name}="${escapeAttr(attr.value)}"`;
      out.push(`${start}>`);
    }
  });
  parser.on('text', (text) => {
    if (out !== undefined) out.push(escapeText(text));
  });
  parser.on('cdata', (text) => {
    if (out !== undefined) out.push(escapeText(text));
  });
  parser.on('closetag', (tag) => {
    const depth = stack.length - 1;
    stack.pop();
    if (out !== undefined) {
      out.push(`</${written.pop() ?? tag.name}>`);
      if (depth === outDepth) {
        parts.push({ kind: outKind, envelope: envelopes, name: outName, xml: out.join('') });
        out = undefined;
      }
    }
    if (depth === 1 && tag.local === 'Body' && bodyChildren === 0) {
      throw new Error(`envelope ${envelopes}: Body has no child element`);
    }
  });

  parser.write(input).close();
  if (error) throw error;
  if (envelopes < 0) throw new Error('no SOAP Envelope found');
  if (!parts.some((p) => p.kind === 'body')) throw new Error('no SOAP Body found');
  return parts;
}

// ---------------------------------------------------------------------------------------------
// Batched xmllint runs

interface Pending {
  readonly xml: string;
  readonly resolve: (r: { valid: boolean; errors: string[] }) => void;
  readonly reject: (e: unknown) => void;
}

let schemaFiles: { fileName: string; contents: string }[] | undefined;
let queue: Pending[] = [];
let flushScheduled = false;
const MAX_BATCH = 500;

function loadSchema(): { fileName: string; contents: string }[] {
  if (!schemaAvailable) throw new Error(schemaSkipReason);
  schemaFiles ??= SCHEMA_FILES.map((f) => ({ fileName: f, contents: readFileSync(join(SCHEMA_DIR, f), 'utf8') }));
  return schemaFiles;
}

async function runBatch(batch: readonly Pending[]): Promise<void> {
  const [messages, ...imports] = loadSchema();
  const names = batch.map((_, i) => `part${i}.xml`);
  const result = await validateXML({
    xml: batch.map((p, i) => ({ fileName: names[i] ?? '', contents: p.xml })),
    schema: [messages!],
    preload: imports,
    // The compiled schema alone needs more than the 32 MiB default.
    maxMemoryPages: 1024,
  });
  const lines = result.rawOutput.split('\n');
  batch.forEach((p, i) => {
    const name = names[i] ?? '';
    const mine = lines.filter((l) => l.startsWith(`${name}:`) || l.startsWith(`${name} `));
    const valid = mine.includes(`${name} validates`);
    const errors = mine
      .filter((l) => l !== `${name} validates` && l !== `${name} fails to validate`)
      .map((l) => l.replace(/^part\d+\.xml:\d+: /, ''));
    p.resolve({ valid, errors: valid ? [] : errors.length > 0 ? errors : ['xmllint did not report this document as valid'] });
  });
}

function flush(): void {
  flushScheduled = false;
  while (queue.length > 0) {
    const batch = queue.slice(0, MAX_BATCH);
    queue = queue.slice(MAX_BATCH);
    runBatch(batch).catch((err: unknown) => {
      // xmllint failed outright (not a validation error): report it to every caller in the batch.
      for (const p of batch) p.reject(err);
    });
  }
}

/**
 * Validates standalone XML documents against `messages.xsd`; calls made in the same event-loop
 * turn share one xmllint run. Resolves per document; rejects only if xmllint itself fails.
 */
export function validateXmlDocument(xml: string): Promise<{ valid: boolean; errors: string[] }> {
  return new Promise((resolvePromise, reject) => {
    queue.push({ xml, resolve: resolvePromise, reject });
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  });
}

/** Options of {@link validateSoapBody}. */
export interface ValidateOptions extends ExtractOptions {
  /** Validate the EWS-namespace Header children too. Default `true`. */
  readonly header?: boolean;
}

/**
 * Validates every Body child (and EWS Header child unless `header: false`) of the envelope or
 * envelope stream in `xml`. A malformed input resolves as invalid with the parse error.
 */
export async function validateSoapBody(xml: string, options: ValidateOptions = {}): Promise<SchemaValidation> {
  let parts: SoapPart[];
  try {
    parts = extractSoapParts(xml, options);
  } catch (err) {
    return { valid: false, errors: [`not a well-formed SOAP envelope: ${(err as Error).message}`], parts: 0 };
  }
  if (options.header === false) parts = parts.filter((p) => p.kind === 'body');
  const results = await Promise.all(parts.map((p) => validateXmlDocument(p.xml)));
  const errors: string[] = [];
  results.forEach((r, i) => {
    const part = parts[i];
    if (part) for (const e of r.errors) errors.push(`${part.kind} ${part.envelope} ${part.name}: ${e}`);
  });
  return { valid: results.every((r) => r.valid), errors, parts: parts.length };
}

/** Namespaces, for tests that look for specific elements. */
export const EWS_NS = { soap: SOAP_NS, m: MESSAGES_NS, t: TYPES_NS } as const;
