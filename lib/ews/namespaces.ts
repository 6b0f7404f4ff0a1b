/**
 * XML Namespaces 1.0 resolution for `parser.ts`, which runs saxes without its namespace mode.
 *
 * Why not saxes's own: in namespace mode saxes gives every element a fresh scope object, splits
 * every element and attribute name into prefix and local part (allocating both), resolves every
 * prefix by walking the scopes of all open elements, and builds a `Set` per element with
 * attributes to find duplicates. An EWS stream declares its namespaces a handful of times per
 * envelope and uses three prefixes, so here declarations are kept in one table with an undo log
 * (work only where a declaration is), the common attributes (`Id`, `ChangeKey`) cost one
 * `indexOf`, and element names are split once and remembered.
 *
 * The rules are the ones saxes enforces in namespace mode, with its error messages: undeclared
 * prefixes, `xmlns:p=""` (undeclaring is XML 1.1 only), the reserved `xml`/`xmlns` prefixes and
 * namespaces, `xmlns` as an element prefix, element and attribute names with an empty part or two
 * colons, and two attributes with the same namespace and local name. Not checked: a colon in a
 * processing-instruction target (such a PI is ignored like any other; a check would need one more
 * saxes handler, see parser.ts) — and an entity name with a colon is still refused, as an
 * undefined entity.
 *
 * @packageDocumentation
 */

import { stringSlots } from './filled-array.js';

const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NAMESPACE = 'http://www.w3.org/2000/xmlns/';

/**
 * The namespaces EWS responses use, as the string constants the parser compares against: a
 * declared URI is replaced by its constant once per declaration, so that every later comparison
 * of an element's namespace is a pointer comparison rather than one of ~60 characters.
 */
const KNOWN_URIS = new Map<string, string>(
  [
    'http://schemas.xmlsoap.org/soap/envelope/',
    'http://schemas.microsoft.com/exchange/services/2006/messages',
    'http://schemas.microsoft.com/exchange/services/2006/types',
    'http://schemas.microsoft.com/exchange/services/2006/errors',
    'http://www.w3.org/2001/XMLSchema-instance',
    'http://www.w3.org/2001/XMLSchema',
  ].map((uri) => [uri, uri]),
);

/** Reports a well-formedness error (saxes's `fail`, so the message carries the position). */
export type FailFn = (message: string) => void;

/** An element or attribute name split at its colon. */
interface QName {
  readonly prefix: string;
  readonly local: string;
}

/** An element name split at its colon, with its namespace as resolved under {@link NamespaceScopes.version}. */
interface ElementName extends QName {
  readonly name: string;
  uri: string;
  version: number;
}

/** Size of {@link NamespaceScopes}'s direct-mapped name table (a power of two). */
const SLOTS = 256;

/** Declarations in force at once that the undo log holds before it grows (an EWS envelope has ~10). */
const DECLARATION_SLOTS = 32;

/** Distinct element names remembered; an EWS stream uses a few dozen. */
const MAX_CACHED_NAMES = 512;

/**
 * The namespace scopes of the open elements. Feed it every attribute of a start tag
 * ({@link attribute}), then the tag itself ({@link open}), and every end tag ({@link close}).
 */
export class NamespaceScopes {
  /** Element depth: open elements. */
  private depth = 0;
  /** Bindings in force (`''` = the default namespace; absent = unbound). */
  private readonly bindings = new Map<string, string>([
    ['xml', XML_NAMESPACE],
    ['xmlns', XMLNS_NAMESPACE],
  ]);
  // Undo log of the declarations in force, innermost last: the depth of the declaring element, the
  // prefix and what it was bound to before. Entries from `undoCount` on are stale: counters
  // instead of truncating the arrays, which V8 does not do cheaply (every envelope of a stream
  // declares its namespaces again).
  // Made with room for the declarations of an EWS envelope, and with their elements kinds, so the
  // parser's optimized code never sees them change map or grow (see stringSlots).
  private undoDepth = new Int32Array(DECLARATION_SLOTS);
  private readonly undoPrefix: string[] = stringSlots(DECLARATION_SLOTS);
  private readonly undoUri: (string | undefined)[] = stringSlots(DECLARATION_SLOTS);
  private undoCount = 0;

  // The start tag being read: its declarations (the first `declCount`) and its prefixed
  // (non-`xmlns`) attributes.
  private readonly declPrefix: string[] = stringSlots(DECLARATION_SLOTS);
  private readonly declUri: string[] = stringSlots(DECLARATION_SLOTS);
  private declCount = 0;
  private readonly prefixedNames: string[] = [];

  /**
   * Element names already split, so the stream's few dozen names are split once; each keeps its
   * namespace until a declaration comes into or goes out of scope (which bumps `version`).
   */
  private readonly names = new Map<string, ElementName>();
  /**
   * In front of {@link names}: a table indexed by a cheap mix of the name's length and two of its
   * characters, checked by comparing the names. saxes makes a new string for every name it reads,
   * so a Map lookup would hash all its characters each time; the stream's few dozen names rarely
   * share a slot, and a name whose slot holds another one falls back to the Map.
   */
  private readonly slots: (ElementName | undefined)[] = new Array<ElementName | undefined>(SLOTS).fill(undefined);
  private version = 0;

  /** Namespace URI of the element last passed to {@link open} (`''` = none). */
  uri = '';
  /** Local name of the element last passed to {@link open}. */
  local = '';

  /**
   * @param fail reports a well-formedness error.
   * @param intern maps an element's local name to an equal string the caller compares against
   *   (called once per distinct element name; see {@link KNOWN_URIS} for why). Default: as is.
   */
  constructor(
    private readonly fail: FailFn,
    private readonly intern: (local: string) => string = (local) => local,
  ) {}

  /** One attribute of the start tag being read, as saxes reads it. */
  attribute(name: string, value: string): void {
    const colon = name.indexOf(':');
    if (colon < 0) {
      if (name === 'xmlns') {
        const uri = internUri(trimLikeSaxes(value));
        this.checkPair('', uri);
        this.declPrefix[this.declCount] = '';
        this.declUri[this.declCount++] = uri;
      }
      return;
    }
    const { prefix, local } = this.split(name, colon);
    if (prefix === 'xmlns') {
      const uri = internUri(trimLikeSaxes(value));
      if (uri === '') this.fail('invalid attempt to undefine prefix in XML 1.0');
      this.checkPair(local, uri);
      this.declPrefix[this.declCount] = local;
      this.declUri[this.declCount++] = uri;
    } else {
      this.prefixedNames.push(name);
    }
  }

  /**
   * The element name `s.slice(start, end)` as the string {@link open} was first given for it, when
   * it is in the name table (saves making a string per tag; `open` then compares pointers).
   */
  knownName(s: string, start: number, end: number): string | undefined {
    const length = end - start;
    const slot = (length * 31 + s.charCodeAt(end - 1) * 7 + s.charCodeAt(start + (length >> 1))) & (SLOTS - 1);
    const q = this.slots[slot];
    return q !== undefined && q.name.length === length && s.startsWith(q.name, start) ? q.name : undefined;
  }

  /** A start tag whose attributes were all passed in; sets {@link uri} and {@link local}. */
  open(name: string): void {
    const depth = ++this.depth;
    if (this.declCount > 0) this.declare(depth);
    const length = name.length;
    const slot = (length * 31 + name.charCodeAt(length - 1) * 7 + name.charCodeAt(length >> 1)) & (SLOTS - 1);
    let q = this.slots[slot];
    if (q === undefined || q.name !== name) q = this.lookUp(name, slot);
    this.local = q.local;
    if (q.version === this.version) {
      this.uri = q.uri;
    } else {
      this.uri = this.resolveElement(q.prefix);
      // (An unbound prefix never gets here: the parser's error handler throws from `fail`.)
      q.uri = this.uri;
      q.version = this.version;
    }
    if (this.prefixedNames.length > 0) this.checkPrefixedAttributes();
  }

  private lookUp(name: string, slot: number): ElementName {
    let q = this.names.get(name);
    if (q === undefined) {
      const colon = name.indexOf(':');
      const { prefix, local } = colon < 0 ? { prefix: '', local: name } : this.split(name, colon);
      q = { name, prefix, local: this.intern(local), uri: '', version: -1 };
      if (this.names.size >= MAX_CACHED_NAMES) return q;
      this.names.set(name, q);
    }
    if (this.slots[slot] === undefined) this.slots[slot] = q;
    return q;
  }

  private resolveElement(prefix: string): string {
    if (prefix === '') return this.bindings.get('') ?? '';
    if (prefix === 'xmlns') this.fail('tags may not have "xmlns" as prefix.');
    const uri = this.bindings.get(prefix);
    if (uri === undefined || uri === '') {
      this.fail(`unbound namespace prefix: ${JSON.stringify(prefix)}.`);
      return prefix;
    }
    return uri;
  }

  /**
   * Back to no open element, as before the first start tag: every declaration in force is undone
   * and nothing half-read is kept. (The parser replays an envelope through saxes after its fast
   * path gave up on it; see parser.ts.)
   */
  reset(): void {
    let n = this.undoCount;
    while (n > 0) {
      n--;
      const prefix = this.undoPrefix[n] as string;
      const before = this.undoUri[n];
      if (before === undefined) this.bindings.delete(prefix);
      else this.bindings.set(prefix, before);
    }
    this.undoCount = 0;
    this.depth = 0;
    this.declCount = 0;
    this.prefixedNames.length = 0;
    this.version++;
  }

  /** An end tag: the declarations of the element it closes go out of scope. */
  close(): void {
    const depth = this.depth--;
    const undoDepth = this.undoDepth;
    let n = this.undoCount;
    // Most elements declare nothing.
    if (n === 0 || (undoDepth[n - 1] as number) < depth) return;
    while (n > 0 && (undoDepth[n - 1] as number) >= depth) {
      n--;
      const prefix = this.undoPrefix[n] as string;
      const before = this.undoUri[n];
      if (before === undefined) this.bindings.delete(prefix);
      else this.bindings.set(prefix, before);
    }
    this.undoCount = n;
    this.version++;
  }

  private declare(depth: number): void {
    const count = this.declCount;
    for (let i = 0; i < count; i++) {
      const prefix = this.declPrefix[i] as string;
      const n = this.undoCount++;
      if (n === this.undoDepth.length) this.growUndoLog();
      this.undoDepth[n] = depth;
      this.undoPrefix[n] = prefix;
      this.undoUri[n] = this.bindings.get(prefix);
      this.bindings.set(prefix, this.declUri[i] as string);
    }
    this.declCount = 0;
    this.version++;
  }

  /** Twice the room for depths (the string arrays grow by themselves). */
  private growUndoLog(): void {
    const depths = new Int32Array(this.undoDepth.length * 2);
    depths.set(this.undoDepth);
    this.undoDepth = depths;
  }

  /** Unprefixed attributes are in no namespace (never the default one), so only these can clash. */
  private checkPrefixedAttributes(): void {
    const names = this.prefixedNames;
    const seen = names.length > 1 ? new Set<string>() : undefined;
    for (const name of names) {
      const { prefix, local } = this.split(name, name.indexOf(':'));
      let uri = this.bindings.get(prefix);
      if (uri === undefined || uri === '') {
        this.fail(`unbound namespace prefix: ${JSON.stringify(prefix)}.`);
        uri = prefix;
      }
      if (seen !== undefined) {
        const expanded = `{${uri}}${local}`;
        if (seen.has(expanded)) this.fail(`duplicate attribute: ${expanded}.`);
        seen.add(expanded);
      }
    }
    names.length = 0;
  }

  private split(name: string, colon: number): QName {
    const prefix = name.slice(0, colon);
    const local = name.slice(colon + 1);
    if (prefix === '' || local === '' || local.includes(':')) this.fail(`malformed name: ${name}.`);
    return { prefix, local };
  }

  /** The reserved prefixes and namespaces (Namespaces in XML 1.0, section 3). */
  private checkPair(prefix: string, uri: string): void {
    if (prefix === 'xml' && uri !== XML_NAMESPACE) this.fail(`xml prefix must be bound to ${XML_NAMESPACE}.`);
    if (prefix === 'xmlns' && uri !== XMLNS_NAMESPACE) this.fail(`xmlns prefix must be bound to ${XMLNS_NAMESPACE}.`);
    if (uri === XMLNS_NAMESPACE) {
      this.fail(
        prefix === ''
          ? `the default namespace may not be set to ${uri}.`
          : `may not assign a prefix (even "xmlns") to the URI ${XMLNS_NAMESPACE}.`,
      );
    } else if (uri === XML_NAMESPACE && prefix !== 'xml') {
      this.fail(prefix === '' ? `the default namespace may not be set to ${uri}.` : 'may not assign the xml namespace to another prefix.');
    }
  }
}

/**
 * What saxes's namespace mode applies to a declaration's value (`String#trim`, which also removes
 * non-XML spaces such as U+00A0: kept identical so that the same documents resolve the same).
 */
function trimLikeSaxes(value: string): string {
  return value.trim();
}

const SOAP_URI = 'http://schemas.xmlsoap.org/soap/envelope/';
const MESSAGES_URI = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const TYPES_URI = 'http://schemas.microsoft.com/exchange/services/2006/types';

function internUri(uri: string): string {
  // Every envelope declares these again: compared directly (the lengths differ), not hashed.
  if (uri.length === TYPES_URI.length && uri === TYPES_URI) return TYPES_URI;
  if (uri.length === MESSAGES_URI.length && uri === MESSAGES_URI) return MESSAGES_URI;
  if (uri.length === SOAP_URI.length && uri === SOAP_URI) return SOAP_URI;
  return KNOWN_URIS.get(uri) ?? uri;
}
