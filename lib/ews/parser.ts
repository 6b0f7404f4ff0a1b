/**
 * The incremental EWS response parser: bytes in, typed {@link EwsEnvelope}s out, one per closed
 * SOAP `Envelope`, as soon as its closing tag is read.
 *
 * How it works: a streaming `TextDecoder` turns bytes into text so a UTF-8 character split across
 * chunks is reassembled (an all-ASCII chunk is copied as it is); a fast path reads what EWS streams
 * hold (tags, quoted attributes, character data without references) with `indexOf` from tag to tag
 * and calls the same handlers saxes would, in the same order; anything else goes to one streaming
 * `saxes` parser (without its namespace mode, in fragment mode so that any number of envelopes may
 * follow each other), which then reads the envelope again from its start and the rest of the
 * stream, so results and errors are saxes's in both cases (see `feedFast`).
 * {@link EnvelopeReader} turns the events of each envelope into typed objects and forgets them
 * once emitted. Work is linear in the input (the fast path reads an incomplete tag again with the
 * next chunk, and gives a tag longer than 4 Ki characters to saxes), and memory is bounded by the
 * largest envelope (enforced by `maxEnvelopeBytes`).
 *
 * saxes reads the stream as one XML fragment, where an XML declaration is legal only at the very
 * start; so the declarations that may precede each envelope are taken out (and checked) here
 * before saxes sees them, with one `indexOf` per chunk.
 *
 * Security: a `DOCTYPE` anywhere is refused ({@link EwsXmlForbiddenError}; an HTML page's
 * `<!DOCTYPE html>` before any envelope is reported as {@link EwsNotXmlError} instead), so neither
 * external entities (XXE) nor entity expansion ("billion laughs") can happen; saxes itself never
 * loads anything external and knows only the five predefined entities.
 *
 * @packageDocumentation
 */
import { isAscii } from 'node:buffer';
import { SaxesParser, type SaxesTagPlain } from 'saxes';
import {
  EwsEnvelopeTooLargeError,
  EwsNotXmlError,
  EwsParseError,
  EwsXmlForbiddenError,
} from '../errors.js';
import { EnvelopeReader, StartTag, internName } from './envelope-reader.js';
import { stringSlots } from './filled-array.js';
import type { EwsEnvelope } from './messages.js';
import { NamespaceScopes } from './namespaces.js';

/** Default for {@link EnvelopeParserOptions.maxEnvelopeBytes}: 8 MiB. */
export const DEFAULT_MAX_ENVELOPE_BYTES = 8 * 1024 * 1024;

/** Options of {@link EnvelopeParser} and {@link parseEnvelope}. */
export interface EnvelopeParserOptions {
  /**
   * Largest single envelope accepted, in bytes (UTF-8 length of the envelope, counted together
   * with any XML declaration, comments or whitespace between it and the previous envelope).
   * A larger one fails with {@link EwsEnvelopeTooLargeError}. A positive integer; default
   * {@link DEFAULT_MAX_ENVELOPE_BYTES} (8 MiB) — a GetStreamingEvents envelope of 200
   * notifications of 50 events is well under 1 MiB.
   */
  readonly maxEnvelopeBytes?: number;
  /** HTTP status of the response being parsed, quoted in {@link EwsNotXmlError}. Default: none. */
  readonly httpStatus?: number;
}

const SOAP_NS = 'http://schemas.xmlsoap.org/soap/envelope/';

/** How many characters of the body {@link EwsNotXmlError} quotes. */
const PREVIEW_CHARS = 200;
/** Characters needed to tell an HTML page from XML by its first bytes (`<!doctype`). */
const SNIFF_CHARS = 9;

// Stream phases.
const P_START = 0; // nothing but whitespace seen yet
const P_SNIFF = 1; // collecting the first characters to tell XML from HTML or plain text
const P_XML = 2; // feeding saxes
const P_NOT_XML = 3; // decided: not XML; collecting the preview, then failing

/** An XML declaration is short; a longer "declaration" is an attack or garbage. */
const MAX_DECLARATION_CHARS = 1024;
// Applied to one complete declaration of at most MAX_DECLARATION_CHARS characters.
const XML_DECLARATION =
  /^<\?xml\s+version\s*=\s*(?:"1\.[0-9]+"|'1\.[0-9]+')(?:\s+encoding\s*=\s*(?:"([A-Za-z][\w.-]*)"|'([A-Za-z][\w.-]*)'))?(?:\s+standalone\s*=\s*(?:"(?:yes|no)"|'(?:yes|no)'))?\s*\?>$/;

/**
 * Index of the first `<?xml` in `s` at or after `from`, or -1. V8 finds a short pattern by
 * scanning for its first character: `<` opens every tag, `?` is rare, so look for `?xml`.
 */
function declarationStart(s: string, from: number): number {
  let at = s.indexOf('?xml', from + 1);
  while (at >= 0 && s.charCodeAt(at - 1) !== 0x3c /* < */) at = s.indexOf('?xml', at + 1);
  return at < 0 ? -1 : at - 1;
}

/** Length of a proper prefix of `<?xml` (or all of it) ending `s` at or after `from`. */
function partialDeclarationStart(s: string, from: number): number {
  const end = s.length;
  // Compared in place: called once per chunk, and a chunk rarely ends in one.
  for (let keep = Math.min(5, end - from); keep > 0; keep--) {
    let i = 0;
    while (i < keep && s.charCodeAt(end - keep + i) === DECLARATION_OPEN.charCodeAt(i)) i++;
    if (i === keep) return keep;
  }
  return 0;
}

const DECLARATION_OPEN = '<?xml';

// saxes reports this through its error handler and can carry on after it; we decide.
const DOCTYPE_MISPLACED = 'inappropriately located doctype declaration.';

/** Thrown inside saxes handlers to stop it when the body turns out to be an HTML page. */
const NOT_XML_SIGNAL: unique symbol = Symbol('not-xml');

/** Thrown inside the fast path when the text holds something it leaves to saxes (see `feedFast`). */
const FAST_BAIL: unique symbol = Symbol('fast-bail');

/**
 * Characters the fast path does not read itself: control characters but LF and CR (tab included:
 * saxes normalizes it in attribute values), entity and character references, UTF-16 surrogates
 * and the two non-characters saxes refuses. A text holding any of them goes to saxes. Line breaks
 * are read (Exchange writes CRLF between envelopes): a CR must be followed by an LF, and CRLF
 * becomes LF in character data as saxes makes it; an attribute value holding either, where saxes
 * makes a space of it, goes to saxes.
 */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const FAST_UNSUPPORTED = /[\x00-\x09\x0b\x0c\x0e-\x1f&\ud800-\udfff\ufffe\uffff]/;
const CRLF = /\r\n/g;

/** ASCII `NameStartChar`s (1) and `NameChar`s (1 in NAME_CHAR); any other name goes to saxes. */
const NAME_START = new Uint8Array(128);
const NAME_CHAR = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f /* _ */ || c === 0x3a; /* : */
  NAME_START[c] = letter ? 1 : 0;
  NAME_CHAR[c] = letter || (c >= 0x30 && c <= 0x39) || c === 0x2d /* - */ || c === 0x2e /* . */ ? 1 : 0;
}

/** More attributes than EWS writes on one element (ServerVersionInfo has up to nine). */
const MAX_FAST_ATTRIBUTES = 16;

/**
 * The attributes EWS puts on nearly every element, by first character: read without a string made
 * for their names. (Any other name is read character by character.)
 */
const KNOWN_ATTRIBUTES: (string | undefined)[] = new Array<string | undefined>(128).fill(undefined);
for (const name of ['Id', 'ChangeKey', 'ResponseClass', 'Name', 'Version', 'xmlns']) KNOWN_ATTRIBUTES[name.charCodeAt(0)] = name;

/**
 * A tag cut by a chunk edge that is longer than this goes to saxes: the fast path reads an
 * incomplete tag again with each new text, which would make a huge one (or a long one fed in tiny
 * chunks) quadratic. EWS's longest tags (an Envelope or ServerVersionInfo with its namespace
 * declarations) have a few hundred characters.
 */
const MAX_PENDING_CHARS = 4096;

/** `>`s tried to finish a pending tag (more are in its attribute values) before joining it to the whole text. */
const MAX_PENDING_ROUNDS = 8;

let fastPathDefault = true;

/**
 * Turns the fast path off (or on again) for parsers created afterwards; for tests and benchmarks
 * that compare it with saxes alone.
 *
 * @internal
 */
export function setParserFastPath(enabled: boolean): void {
  fastPathDefault = enabled;
}

function isXmlSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function checkOptions(options: EnvelopeParserOptions): { maxBytes: number; httpStatus: number | undefined } {
  const maxBytes = options.maxEnvelopeBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new RangeError(`maxEnvelopeBytes must be a positive integer (got ${String(maxBytes)})`);
  }
  const httpStatus = options.httpStatus;
  if (httpStatus !== undefined && (!Number.isInteger(httpStatus) || httpStatus < 100 || httpStatus > 599)) {
    throw new RangeError(`httpStatus must be an integer 100–599 (got ${String(httpStatus)})`);
  }
  return { maxBytes, httpStatus };
}

/**
 * Incremental parser for a byte stream carrying one or many SOAP envelopes back to back (a
 * GetStreamingEvents response), or a single envelope delivered in pieces.
 *
 * - Chunks may split the stream anywhere, including inside a tag, an attribute or a multi-byte
 *   UTF-8 character; any number of envelopes may share a chunk. The result never depends on how
 *   the stream was chunked.
 * - An XML declaration (`<?xml …?>`), comments and whitespace are allowed before each envelope;
 *   any other text between envelopes is an {@link EwsParseError}.
 * - Errors are typed: {@link EwsParseError} (malformed XML with the saxes error as `cause`, wrong
 *   SOAP namespace, an envelope we cannot read, input ending inside an envelope),
 *   {@link EwsXmlForbiddenError} (any DOCTYPE), {@link EwsEnvelopeTooLargeError},
 *   {@link EwsNotXmlError} (an HTML page or plain text where XML was expected; thrown once its
 *   first 200 characters or the end of input are seen, so the preview does not depend on chunking).
 * - **After an error the parser is unusable**: every later `write()`/`end()` throws the same error
 *   object. When a chunk completes envelopes and then hits an error, `write()` still returns those
 *   envelopes (nothing that was parsed is lost) and the error is thrown by the next call; check
 *   {@link EnvelopeParser.error} to learn about it at once.
 */
export class EnvelopeParser {
  private readonly maxBytes: number;
  private readonly httpStatus: number | undefined;
  private readonly decoder = new TextDecoder('utf-8');
  /**
   * The decoder holds no partial character and has passed the stream's start (where it drops a
   * byte-order mark): an all-ASCII chunk then decodes to its bytes as they are (see `decode`).
   */
  private decoderClean = false;
  /** Every character of the text being scanned is ASCII (one byte each): `feed` need not count bytes. */
  private textIsAscii = false;
  private readonly sax: SaxesParser<{ xmlns: false; fragment: true }>;
  private readonly reader = new EnvelopeReader();
  private readonly scopes: NamespaceScopes;

  private phase = P_START;
  private sniffed = '';
  private head = '';
  private sawEnvelope = false;
  /**
   * The envelopes completed since the last `write()`/`end()` returned; none yet: `undefined`. Made
   * as `[envelope]` by the first one, never as `[]` and pushed to: an empty literal starts with
   * small-integer elements and changes its map at the first push, and the optimized code that
   * pushes then meets either map, which made V8 throw that code away mid-stream (cold passes).
   */
  private out: EwsEnvelope[] | undefined;
  private failure: Error | undefined;
  private ended = false;

  // XML declarations between envelopes are taken out before saxes sees them (see `scan`).
  private carry = ''; // a possible start of `<?xml` (or end of `?>`) held for the next chunk
  private declaration: string | undefined; // the declaration being read, if any

  // Size accounting. saxes positions index the text fed to saxes; bytes are UTF-8 lengths in
  // the whole stream (including the XML declarations, which saxes does not see).
  private saxChars = 0; // characters fed to saxes before `current`
  private streamBytes = 0; // bytes of the stream before `current` (after it, once fed)
  private current = ''; // the string saxes is reading now
  private currentIsAscii = false; // one byte per character in `current`: offsets need no counting
  private cutIndex = 0; // index into `current` whose stream byte offset is `cutBytes`
  private cutBytes = 0;
  private unitStartBytes = 0; // byte offset where the envelope being read began (previous one's end)
  private lastEmitPosition = -1; // saxes position of the last envelope's closing `>`

  // The fast path (see `feedFast`): reads the stream itself while it holds only what the fast path
  // reads exactly as saxes would; the first time it meets anything else, the envelope being read
  // is replayed through saxes, which then reads the rest of the stream.
  private fast = fastPathDefault;
  private pending = ''; // an incomplete tag ending the last text, read again with the next one
  private pendingAscii = true; // `pending` is all ASCII
  private pendingText = ''; // character data read but not yet ended by a `<`
  private pendingLength = 0; // length of `pending` at the start of `current`
  // Names of the open elements: the first `openCount`. Made holding strings, with room for an EWS
  // envelope's depth, so the scanner never meets it in another map (see stringSlots).
  private readonly openNames: string[] = stringSlots(32);
  private openCount = 0;
  /** The start tag being handed to the reader (one object for all: the reader does not keep it). */
  private readonly tag = new StartTag();
  private fastIndex = 0; // index in `current` just after the `>` being handled
  private nextSpace = -1; // index in `current` of the next space at or after the tag being read
  private fastChars = 0; // characters given to the fast path before `current`'s new text
  private tail = ''; // the last two characters given to the fast path (a `]]>` across texts)
  private hasNewline = false; // `current` holds a line feed
  private hasReturn = false; // `current` or `pendingText` holds a carriage return
  private returnAtEnd = false; // the last text given to the fast path ended in a CR
  // Line feeds given to the fast path before `current`'s new text, and the character count at
  // the last one's end (for saxes's line and column after a replay).
  private lines = 0;
  private lineStart = 0;
  private replayLines = 0; // the same before the text in which the replay starts
  private replayLineStart = 0;
  // The texts given to the fast path since the end of the last envelope, from `replayFrom` in the
  // first one: what saxes must read again if the fast path gives up.
  // (Never an empty array literal: see `out`. `['']` from `replayFrom` 0 replays nothing.)
  private replayPieces: string[] = [''];
  private replayFrom = 0;
  private replayChars = 0; // characters given to the fast path before the replay
  private replaySkippedBytes = 0; // bytes of XML declarations taken out since the replay start

  constructor(options: EnvelopeParserOptions = {}) {
    const { maxBytes, httpStatus } = checkOptions(options);
    this.maxBytes = maxBytes;
    this.httpStatus = httpStatus;
    // Namespaces are resolved by NamespaceScopes (namespaces.ts), which is cheaper than saxes's
    // namespace mode for the same rules.
    //
    // Keep to these seven handlers: saxes stores each one as a new property of the parser (a
    // keyed store), and with an eighth V8 turns the parser object into a dictionary, which makes
    // every character saxes reads ~4× slower (measured with one more handler).
    const sax = new SaxesParser<{ xmlns: false; fragment: true }>({ xmlns: false, fragment: true });
    this.sax = sax;
    const scopes = new NamespaceScopes((message) => {
      // On the fast path saxes has not read the text: it reads it again and reports the error.
      if (this.fast) throw FAST_BAIL;
      sax.fail(message);
    }, internName);
    this.scopes = scopes;
    sax.on('attribute', (attribute) => scopes.attribute(attribute.name, attribute.value));
    sax.on('opentag', (tag) => this.onSaxOpenTag(tag));
    sax.on('closetag', () => this.onCloseTag());

    sax.on('text', (text) => this.reader.onText(text));
    sax.on('cdata', (text) => this.reader.onText(text));
    sax.on('doctype', (doctype) => this.onDoctype(doctype));
    sax.on('error', (err) => this.onSaxError(err));
  }

  /** The error that made this parser unusable, if any (see the class notes). */
  get error(): Error | undefined {
    return this.failure;
  }

  /**
   * Feeds the next chunk of the body.
   *
   * @returns the envelopes this chunk completed, in wire order (often none).
   * @throws the typed errors listed on the class; the same error again on every later call.
   */
  write(chunk: Uint8Array): EwsEnvelope[] {
    this.assertUsable();
    if (this.ended) throw new Error('EnvelopeParser.write() called after end()');
    // (Not through `run`: a closure per chunk is measurable at one TCP segment per chunk.)
    try {
      this.accept(this.decode(chunk));
    } catch (err) {
      this.recordFailure(err, true);
    }
    return this.takeOut();
  }

  /**
   * The chunk as text. EWS streams are ASCII in practice (ids, watermarks and timestamps are), and
   * for an all-ASCII chunk, when the decoder holds nothing back, Latin-1 is the same text as
   * UTF-8 and several times cheaper to make (one SIMD check, one copy, no transcoding).
   */
  private decode(chunk: Uint8Array): string {
    const ascii = isAscii(chunk);
    if (ascii && this.decoderClean) {
      this.textIsAscii = true;
      return (Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)).toString('latin1');
    }
    const text = this.decoder.decode(chunk, { stream: true });
    // An ASCII chunk decodes to itself unless the decoder held a partial character, which then
    // comes out as U+FFFD (one character more). Known here, every parser's first chunk (which
    // the decoder reads, for a byte-order mark) needs no UTF-8 count, whose code would otherwise
    // run only then, before V8 collects type feedback, and later throw away the optimized code.
    this.textIsAscii = ascii && text.length === chunk.byteLength;
    // An ASCII byte ends any partial sequence (completed or replaced by U+FFFD), and the first
    // byte decoded ends the decoder's byte-order-mark handling.
    if (chunk.byteLength > 0) this.decoderClean = (chunk[chunk.byteLength - 1] as number) < 0x80;
    return text;
  }

  /**
   * Signals the end of the input.
   *
   * @returns envelopes still pending (normally none: each is returned by the `write()` that closed it).
   * @throws {@link EwsParseError} if the input ends inside an envelope; {@link EwsNotXmlError} if
   *   the body was not XML; the stored error if the parser had failed before.
   */
  end(): EwsEnvelope[] {
    this.assertUsable();
    if (this.ended) return [];
    this.ended = true;
    return this.run(() => {
      this.textIsAscii = false;
      this.accept(this.decoder.decode());
      this.finish();
    }, false);
  }

  private assertUsable(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Runs one step and records a failure. From write(), envelopes completed before the failure are
   * still returned and the error waits for the next call; end() has no next call, so it throws.
   */
  private run(step: () => void, deferError = true): EwsEnvelope[] {
    try {
      step();
    } catch (err) {
      this.recordFailure(err, deferError);
    }
    return this.takeOut();
  }

  /** The envelopes completed since the last call, as a new array the caller owns. */
  private takeOut(): EwsEnvelope[] {
    const out = this.out;
    this.out = undefined;
    return out ?? [];
  }

  /** Stores a failure; throws it unless envelopes completed before it are to be returned first. */
  private recordFailure(err: unknown, deferError: boolean): void {
    this.failure = err instanceof Error ? err : new EwsParseError('Parsing failed', { cause: err });
    if (!deferError || this.out === undefined || this.out.length === 0) throw this.failure;
  }

  private accept(text: string): void {
    if (text.length === 0) return;
    // The preview is only ever shown before the first envelope (see enterNotXml's callers).
    if (!this.sawEnvelope && this.head.length < PREVIEW_CHARS) this.head += text.slice(0, PREVIEW_CHARS - this.head.length);
    switch (this.phase) {
      case P_XML:
        this.scan(text);
        return;
      case P_NOT_XML:
        this.failIfPreviewComplete();
        return;
      case P_START: {
        // (A leading byte-order mark never gets here: TextDecoder drops it.)
        let i = 0;
        while (i < text.length && isXmlSpace(text.charCodeAt(i))) i++;
        if (i > 0) this.feed(text.slice(0, i));
        if (i === text.length) return;
        this.phase = P_SNIFF;
        this.sniffed = text.slice(i);
        break;
      }
      default:
        this.sniffed += text;
    }
    if (this.sniffed.length >= SNIFF_CHARS) this.decideSniff();
  }

  /** Tells XML from an HTML page or plain text by the first non-blank characters. */
  private decideSniff(): void {
    const s = this.sniffed;
    this.sniffed = '';
    const lower = s.slice(0, SNIFF_CHARS).toLowerCase();
    const looksHtml =
      // HTML5 writes `<!doctype html>` in any case; XML only knows `<!DOCTYPE` (refused later).
      (lower.startsWith('<!doctype') && !s.startsWith('<!DOCTYPE')) ||
      (lower.startsWith('<html') && (lower.length === 5 || '> \t\r\n/'.includes(lower.charAt(5))));
    if (s.charCodeAt(0) !== 0x3c /* < */ || looksHtml) {
      this.enterNotXml();
      return;
    }
    this.phase = P_XML;
    this.scan(s);
  }

  private enterNotXml(): void {
    this.phase = P_NOT_XML;
    this.failIfPreviewComplete();
  }

  private failIfPreviewComplete(): void {
    if (this.head.length >= PREVIEW_CHARS || this.ended) throw new EwsNotXmlError(this.httpStatus, this.head);
  }

  /**
   * Feeds text to saxes, taking out the XML declarations that stand between envelopes: saxes
   * reads the stream as one fragment, where a declaration is only legal at the very start, so we
   * check and drop them ourselves. `indexOf` on each chunk once, plus a carry of at most five
   * characters (a `<?xml` split across chunks), keeps this linear.
   */
  private scan(text: string): void {
    // Joined whether or not there is a carry (`'' + text` is `text`), for the reason in scanFast.
    const s = this.carry + text;
    this.carry = '';
    let from = 0;
    while (from < s.length) {
      if (this.declaration !== undefined) {
        from = this.scanDeclaration(s, from);
        continue;
      }
      const at = declarationStart(s, from);
      if (at < 0) {
        const keep = partialDeclarationStart(s, from);
        this.feed(s.slice(from, s.length - keep));
        this.carry = s.slice(s.length - keep);
        return;
      }
      if (at + 5 === s.length) {
        // Whether it is `<?xml ` or `<?xml-stylesheet` shows in the next chunk.
        this.feed(s.slice(from, at));
        this.carry = s.slice(at);
        return;
      }
      const next = s.charCodeAt(at + 5);
      this.feed(s.slice(from, at));
      if (this.phase !== P_XML) return;
      if ((next === 0x3f /* ? */ || isXmlSpace(next)) && this.reader.depth === 0) {
        this.declaration = '';
        from = at;
      } else {
        // Another PI target such as `xml-stylesheet`, or a declaration inside an envelope, which
        // saxes rejects as it should.
        this.feed(s.slice(at, at + 5));
        from = at + 5;
      }
      if (this.phase !== P_XML) return;
    }
  }

  /** Consumes an XML declaration between envelopes; returns where scanning resumes. */
  private scanDeclaration(s: string, from: number): number {
    const end = s.indexOf('?>', from);
    if (end < 0) {
      // Keep a trailing `?` for the next chunk: it may be the start of `?>`.
      const keep = s.charCodeAt(s.length - 1) === 0x3f ? 1 : 0;
      const partial = (this.declaration ?? '') + s.slice(from, s.length - keep);
      this.declaration = partial;
      this.carry = s.slice(s.length - keep);
      if (partial.length > MAX_DECLARATION_CHARS) throw new EwsParseError('Malformed XML declaration (too long)');
      return s.length;
    }
    const declaration = (this.declaration ?? '') + s.slice(from, end + 2);
    this.declaration = undefined;
    const match = declaration.length > MAX_DECLARATION_CHARS ? null : XML_DECLARATION.exec(declaration);
    if (match === null) {
      throw new EwsParseError(`Malformed XML declaration: ${JSON.stringify(declaration.slice(0, 80))}`);
    }
    const declared = match[1] ?? match[2];
    const encoding = declared?.toLowerCase();
    if (encoding !== undefined && encoding !== 'utf-8' && encoding !== 'utf8' && encoding !== 'us-ascii') {
      throw new EwsParseError(`Unsupported XML encoding ${JSON.stringify(declared)} (only UTF-8 is read)`);
    }
    this.skip(declaration);
    return end + 2;
  }

  /** Accounts for text that is not given to saxes (XML declarations). */
  private skip(text: string): void {
    const bytes = Buffer.byteLength(text, 'utf8');
    this.streamBytes += bytes;
    if (this.fast) this.replaySkippedBytes += bytes;
  }

  private feed(text: string): void {
    if (text.length === 0) return;
    if (this.fast) {
      this.feedFast(text);
      return;
    }
    const bytes = this.textIsAscii ? text.length : Buffer.byteLength(text, 'utf8');
    this.current = text;
    this.currentIsAscii = bytes === text.length;
    this.cutIndex = 0;
    this.cutBytes = this.streamBytes;
    try {
      this.sax.write(text);
    } catch (err) {
      if (err !== NOT_XML_SIGNAL) throw err;
      this.enterNotXml();
      return;
    } finally {
      // Not kept between chunks: the text is a slice of the whole decoded chunk and would pin it.
      this.current = '';
    }
    this.saxChars += text.length;
    this.streamBytes += bytes;
    if (this.streamBytes - this.unitStartBytes > this.maxBytes) throw new EwsEnvelopeTooLargeError(this.maxBytes);
  }

  /**
   * The fast path: reads the text as saxes would, with `indexOf` from `<` to `<` rather than saxes's
   * character-by-character state machine, and calls the same handlers with the same arguments in
   * the same order. It reads only start tags with ASCII names and quoted attribute values
   * separated by spaces, end tags, and character data without references — what EWS streams hold.
   * Anything else (comments, CDATA, processing instructions, DOCTYPE, references, tabs or line
   * breaks, non-ASCII names, surrogates, and every well-formedness or namespace error) makes it
   * give up (`bail`): the envelope being read is forgotten and replayed through saxes from its
   * start, and saxes reads the rest of the stream, so results and errors are saxes's own.
   * A tag cut by the end of the text is kept (`pending`) and read again with the next text.
   */
  private feedFast(text: string): void {
    this.replayPieces.push(text);
    const tail = this.tail;
    this.tail = text.length >= 2 ? text.slice(-2) : (tail + text).slice(-2);
    if (
      FAST_UNSUPPORTED.test(text) ||
      text.includes(']]>') ||
      (tail + text.slice(0, 2)).includes(']]>') ||
      !this.returnsAreCrlf(text)
    ) {
      this.bail();
      return;
    }
    const ascii = this.textIsAscii || Buffer.byteLength(text, 'utf8') === text.length;
    // A tag cut by the end of the last text is finished with the head of this one, up to the `>`
    // that ends it, rather than by reading the pending tag and the whole text joined: a joined
    // string is a copy of the text, and the attribute values sliced from it would keep that copy
    // alive as well as the text (a cost at every chunk of a large envelope in small chunks).
    let offset = 0;
    for (let round = 0; this.pending.length > 0; round++) {
      const gt = round < MAX_PENDING_ROUNDS ? text.indexOf('>', offset) : -1;
      const end = gt < 0 ? text.length : gt + 1;
      const pendingLength = this.pending.length;
      const piece = this.pending + (offset === 0 && end === text.length ? text : text.slice(offset, end));
      if (!this.scanPiece(piece, pendingLength - offset, ascii && this.pendingAscii)) return;
      offset = end;
      if (offset === text.length) break;
    }
    if (offset < text.length && !this.scanPiece(offset === 0 ? text : text.slice(offset), -offset, ascii)) return;
    if (text.includes('\n')) {
      for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) {
        this.lines++;
        this.lineStart = this.fastChars + at + 1;
      }
    }
    this.fastChars += text.length;
  }

  /**
   * Reads `s` (a pending tag and the start of a text, or a text from `-textOffset`) on the fast
   * path; keeps an incomplete tag at its end as `pending`. `s[i]` is the newest text's character
   * `i - textOffset`. Returns `false` when the fast path is over (it gave up, or not XML).
   */
  private scanPiece(s: string, textOffset: number, ascii: boolean): boolean {
    this.hasNewline = s.includes('\n');
    this.hasReturn = (this.hasNewline && s.includes('\r')) || (this.pendingText.length > 0 && this.pendingText.includes('\r'));
    this.pending = '';
    this.pendingLength = textOffset;
    this.current = s;
    this.currentIsAscii = ascii;
    this.cutIndex = 0;
    this.cutBytes = this.streamBytes;
    this.nextSpace = -1;
    let consumed: number;
    try {
      consumed = this.scanFast(s);
    } catch (err) {
      this.current = '';
      if (err === FAST_BAIL) {
        this.bail();
        return false;
      }
      if (err !== NOT_XML_SIGNAL) throw err;
      this.enterNotXml();
      return false;
    }
    const consumedBytes = this.byteOffsetAtIndex(consumed);
    const endBytes = consumed === s.length ? consumedBytes : this.byteOffsetAtIndex(s.length);
    this.streamBytes = consumedBytes;
    this.current = '';
    if (consumed < s.length) {
      if (s.length - consumed > MAX_PENDING_CHARS) {
        this.bail();
        return false;
      }
      const pending = s.slice(consumed);
      this.pending = pending;
      this.pendingAscii = ascii || Buffer.byteLength(pending, 'utf8') === pending.length;
    } else {
      this.pendingAscii = true;
    }
    if (endBytes - this.unitStartBytes > this.maxBytes) throw new EwsEnvelopeTooLargeError(this.maxBytes);
    return true;
  }

  /** Every CR in `text` (and one ending the text before) is followed by an LF. */
  private returnsAreCrlf(text: string): boolean {
    if (this.returnAtEnd) {
      this.returnAtEnd = false;
      if (text.charCodeAt(0) !== 0x0a) return false;
    }
    for (let at = text.indexOf('\r'); at >= 0; at = text.indexOf('\r', at + 1)) {
      if (at + 1 === text.length) this.returnAtEnd = true;
      else if (text.charCodeAt(at + 1) !== 0x0a) return false;
    }
    return true;
  }

  /** Character data as saxes hands it out (CRLF as LF: `returnsAreCrlf` refused any other CR). */
  private onFastText(text: string): void {
    this.reader.onText(this.hasReturn && text.includes('\r') ? text.replace(CRLF, '\n') : text);
  }

  /** Reads `s` up to its end or to an incomplete tag; returns the index where that tag starts. */
  private scanFast(s: string): number {
    const n = s.length;
    let i = 0;
    while (i < n) {
      const lt = s.indexOf('<', i);
      // Text cut by a chunk edge is joined by the same code as text that is not (`'' + slice` is
      // `slice`, no copy): a branch taken only at the odd chunk edge has no type feedback when
      // the scanner is optimized, and taking it later threw that code away mid-stream.
      if (lt < 0) {
        this.pendingText += s.slice(i);
        return n;
      }
      if (lt > i) {
        const text = this.pendingText + s.slice(i, lt);
        this.pendingText = '';
        this.onFastText(text);
      } else if (this.pendingText.length !== 0) {
        const text = this.pendingText;
        this.pendingText = '';
        this.onFastText(text);
      }
      if (lt + 1 === n) return lt;
      const c = s.charCodeAt(lt + 1);
      if (c === 0x2f /* / */) {
        const gt = s.indexOf('>', lt + 2);
        if (gt < 0) return lt;
        const depth = this.openCount;
        const name = depth === 0 ? undefined : this.openNames[depth - 1];
        let end = gt;
        while (end > lt + 2 && s.charCodeAt(end - 1) === 0x20) end--;
        if (name === undefined || end - lt - 2 !== name.length || !s.startsWith(name, lt + 2)) throw FAST_BAIL;
        // (Cleared: a name sliced from a chunk would keep the chunk alive.)
        this.openNames[depth - 1] = '';
        this.openCount = depth - 1;
        i = gt + 1;
        this.fastIndex = i;
        this.onCloseTag();
        continue;
      }
      if (c === 0x21 /* ! */ || c === 0x3f /* ? */) throw FAST_BAIL;
      const next = this.startTagFast(s, lt);
      if (next < 0) return lt;
      i = next;
    }
    return n;
  }

  /** Reads the start tag at `lt`; returns the index after it, or -1 when `s` ends inside it. */
  private startTagFast(s: string, lt: number): number {
    const n = s.length;
    const start = lt + 1;
    // The name ends at the first space, `/` or `>`. Found with `indexOf` and looked up in the name
    // table; only a name not seen before is read character by character (which also finds where
    // it really ends when the guess was wrong).
    const gt = s.indexOf('>', start);
    if (gt < 0) return -1;
    if (this.nextSpace < start) {
      const space = s.indexOf(' ', start);
      this.nextSpace = space < 0 ? n : space;
    }
    let nameEnd = this.nextSpace < gt ? this.nextSpace : gt;
    if (nameEnd === gt && s.charCodeAt(gt - 1) === 0x2f /* / */) nameEnd--;
    const scopes = this.scopes;
    let name = nameEnd > start ? scopes.knownName(s, start, nameEnd) : undefined;
    if (name === undefined) {
      if (NAME_START[s.charCodeAt(start)] !== 1) throw FAST_BAIL;
      nameEnd = start + 1;
      while (nameEnd < n && NAME_CHAR[s.charCodeAt(nameEnd)] === 1) nameEnd++;
      name = s.slice(start, nameEnd);
    }
    let j = nameEnd;
    const tag = this.tag;
    const names = tag.names;
    const values = tag.values;
    let count = 0;
    let nextLt = -1; // the next `<` at or after the attribute value being read (n: none)
    let selfClosing = false;
    for (;;) {
      if (j >= n) return -1;
      let c = s.charCodeAt(j);
      if (c === 0x3e /* > */) {
        j++;
        break;
      }
      if (c === 0x2f /* / */) {
        if (j + 1 === n) return -1;
        if (s.charCodeAt(j + 1) !== 0x3e) throw FAST_BAIL;
        selfClosing = true;
        j += 2;
        break;
      }
      if (c !== 0x20) throw FAST_BAIL;
      do j++;
      while (j < n && s.charCodeAt(j) === 0x20);
      if (j === n) return -1;
      c = s.charCodeAt(j);
      if (c === 0x3e || c === 0x2f) continue;
      let attributeName = KNOWN_ATTRIBUTES[c];
      if (attributeName !== undefined && s.startsWith(attributeName, j) && s.charCodeAt(j + attributeName.length) === 0x3d) {
        j += attributeName.length;
      } else {
        if (NAME_START[c] !== 1) throw FAST_BAIL;
        const nameStart = j;
        j++;
        while (j < n && NAME_CHAR[s.charCodeAt(j)] === 1) j++;
        attributeName = s.slice(nameStart, j);
      }
      if (j + 1 >= n) return -1;
      if (s.charCodeAt(j) !== 0x3d /* = */) throw FAST_BAIL;
      const q = s.charCodeAt(j + 1);
      if (q !== 0x22 /* " */ && q !== 0x27 /* ' */) throw FAST_BAIL;
      const close = s.indexOf(q === 0x22 ? '"' : "'", j + 2);
      if (close < 0) return -1;
      if (nextLt < j + 2) {
        nextLt = s.indexOf('<', j + 2);
        if (nextLt < 0) nextLt = n;
      }
      if (nextLt < close) throw FAST_BAIL;
      // Duplicates are looked for pairwise: a tag with more attributes than EWS writes goes to saxes.
      if (count === MAX_FAST_ATTRIBUTES) throw FAST_BAIL;
      names[count] = attributeName;
      values[count++] = s.slice(j + 2, close);
      j = close + 1;
    }
    const newline = this.hasNewline;
    const ret = this.hasReturn;
    for (let k = 0; k < count; k++) {
      const name = names[k] as string;
      const value = values[k] as string;
      for (let m = 0; m < k; m++) if (names[m] === name) throw FAST_BAIL;
      if ((newline && value.includes('\n')) || (ret && value.includes('\r'))) throw FAST_BAIL;
      scopes.attribute(name, value);
    }
    tag.name = name;
    tag.count = count;
    this.onOpenTag(tag);
    if (selfClosing) {
      this.fastIndex = j;
      this.onCloseTag();
    } else {
      this.openNames[this.openCount++] = name;
    }
    return j;
  }

  /**
   * The fast path gives up for the rest of the stream: the envelope being read (everything given
   * to it since the last envelope ended) is forgotten and saxes reads it again.
   */
  private bail(): void {
    this.fast = false;
    const pieces = this.replayPieces;
    let replay = pieces.length === 0 ? '' : (pieces[0] as string).slice(this.replayFrom);
    for (let k = 1; k < pieces.length; k++) replay += pieces[k] as string;
    this.replayPieces = [''];
    this.pending = '';
    this.pendingText = '';
    this.openNames.fill('');
    this.openCount = 0;
    this.current = '';
    this.reader.reset();
    this.scopes.reset();
    // saxes puts line and column in its messages: start it where it would be had it read the
    // whole stream (one column per character: the fast path reads no surrogates).
    let lines = this.replayLines;
    let lineStart = this.replayLineStart;
    const first = pieces[0];
    if (first !== undefined) {
      const base = this.replayChars - this.replayFrom;
      for (let at = first.indexOf('\n'); at >= 0 && at < this.replayFrom; at = first.indexOf('\n', at + 1)) {
        lines++;
        lineStart = base + at + 1;
      }
    }
    this.sax.line = 1 + lines;
    this.sax.column = this.replayChars - lineStart;
    this.saxChars = 0;
    this.streamBytes = this.unitStartBytes + this.replaySkippedBytes;
    this.lastEmitPosition = -1;
    this.textIsAscii = false;
    this.feed(replay);
  }

  private finish(): void {
    if (this.phase === P_SNIFF) this.decideSniff();
    if (this.phase === P_NOT_XML) {
      this.failIfPreviewComplete();
      return;
    }
    if (this.declaration !== undefined) throw new EwsParseError('The input ended inside an XML declaration');
    const carry = this.carry;
    this.carry = '';
    this.feed(carry);
    // saxes reads whatever follows the last envelope and decides whether the input ends well.
    if (this.fast && this.phase === P_XML) this.bail();
    if (this.phase === P_NOT_XML) {
      this.failIfPreviewComplete();
      return;
    }
    const insideEnvelope = this.reader.depth > 0;
    try {
      this.sax.close();
    } catch (err) {
      const cause = err instanceof EwsParseError && err.cause !== undefined ? err.cause : err;
      throw new EwsParseError(
        insideEnvelope ? 'The input ended inside an envelope' : 'The input ended in the middle of XML markup',
        { cause },
      );
    }
    // saxes only sees open tags here when the envelope was cut inside one, so be explicit.
    if (insideEnvelope) throw new EwsParseError('The input ended inside an envelope');
  }

  /** Byte offset in the stream of saxes position `pos`, which lies within `current`. */
  private byteOffsetAt(pos: number): number {
    return this.byteOffsetAtIndex(pos - this.saxChars);
  }

  /** Byte offset in the stream of index `index` in `current`. */
  private byteOffsetAtIndex(index: number): number {
    // (Any character from U+0080 up takes two bytes or more, so equal lengths mean all ASCII.)
    if (this.currentIsAscii) return this.streamBytes + index;
    if (index > this.cutIndex) {
      this.cutBytes += Buffer.byteLength(this.current.slice(this.cutIndex, index), 'utf8');
      this.cutIndex = index;
    }
    return this.cutBytes;
  }

  // --- saxes handlers -------------------------------------------------------------------------

  private onSaxOpenTag(saxTag: SaxesTagPlain): void {
    const tag = this.tag;
    const attributes = saxTag.attributes;
    let count = 0;
    for (const name in attributes) {
      tag.names[count] = name;
      tag.values[count++] = attributes[name] as string;
    }
    tag.name = saxTag.name;
    tag.count = count;
    this.onOpenTag(tag);
  }

  private onOpenTag(tag: StartTag): void {
    const scopes = this.scopes;
    scopes.open(tag.name);
    const { uri, local } = scopes;
    if (this.reader.depth === 0) {
      // (Only a 4-character name lowercases to `html`.) The length first: V8 collects no type
      // feedback for a parser's first envelope (its code has not run enough yet), so code run
      // only then would, in the next parser, throw away the optimized code of the whole scanner.
      if (local.length === 4 && !this.sawEnvelope && local.toLowerCase() === 'html') throw NOT_XML_SIGNAL;
      if (local !== 'Envelope' || uri !== SOAP_NS) {
        throw new EwsParseError(
          `Expected a SOAP 1.1 Envelope (${SOAP_NS}) but found <${tag.name}>` +
            (uri === '' ? ' without a namespace' : ` in namespace ${uri}`),
        );
      }
      // At every envelope rather than the first only, for the same reason. (`head` is a slice of
      // the first chunk, which it would keep alive as long as the connection lasts.)
      this.sawEnvelope = true;
      this.head = '';
    }
    this.reader.openTag(uri, local, tag);
  }

  private onCloseTag(): void {
    this.scopes.close();
    const envelope = this.reader.closeTag();
    if (envelope === undefined) return;
    let end: number;
    if (this.fast) {
      end = this.byteOffsetAtIndex(this.fastIndex);
      // A replay would start after this envelope (the `>` is in the newest text, not in `pending`).
      const at = this.fastIndex - this.pendingLength;
      this.replayPieces = [this.replayPieces[this.replayPieces.length - 1] as string];
      this.replayFrom = at;
      this.replayChars = this.fastChars + at;
      this.replayLines = this.lines;
      this.replayLineStart = this.lineStart;
      this.replaySkippedBytes = 0;
    } else {
      end = this.byteOffsetAt(this.sax.position);
      this.lastEmitPosition = this.sax.position;
    }
    if (end - this.unitStartBytes > this.maxBytes) throw new EwsEnvelopeTooLargeError(this.maxBytes);
    this.unitStartBytes = end;
    if (this.out === undefined) this.out = [envelope];
    else this.out.push(envelope);
  }

  private onDoctype(doctype: string): void {
    // Reached only for a DOCTYPE before the first envelope (later ones fail at `<!DOCTYPE`). An
    // HTML error page's `<!DOCTYPE html …>` is "not XML"; any other DOCTYPE is refused. Either way
    // nothing in it was processed.
    if (!this.sawEnvelope && /^\s*html(\s|$)/i.test(doctype) && !doctype.includes('[')) throw NOT_XML_SIGNAL;
    throw new EwsXmlForbiddenError('DOCTYPE declarations are not allowed in EWS responses (DTDs and entities are refused)');
  }

  private onSaxError(err: Error): void {
    const message = err.message;
    // saxes calls the close-tag handler before it notices that the end tag's name does not
    // match, so an envelope "closed" by a wrong end tag must not be handed out.
    if (this.lastEmitPosition === this.sax.position) {
      this.out?.pop();
      this.lastEmitPosition = -1;
    }
    if (message.endsWith(DOCTYPE_MISPLACED)) {
      if (this.sawEnvelope) {
        throw new EwsXmlForbiddenError('DOCTYPE declarations are not allowed in EWS responses (DTDs and entities are refused)');
      }
      // Before the first envelope: let saxes read the DOCTYPE (it only captures its text) so
      // `onDoctype` can tell an HTML page from a DTD.
      return;
    }
    throw new EwsParseError(`Malformed XML: ${message}`, { cause: err });
  }
}

/**
 * Parses a whole single-envelope body: a Subscribe, GetEvents, Unsubscribe or SyncFolderItems
 * response, a SOAP fault, an incoming push `SendNotification` POST, or a `SendNotificationResult`.
 *
 * @throws the errors of {@link EnvelopeParser}; {@link EwsParseError} when the body holds no
 *   envelope or more than one; {@link EwsNotXmlError} when it is empty.
 */
export function parseEnvelope(body: string | Uint8Array, options: EnvelopeParserOptions = {}): EwsEnvelope {
  const parser = new EnvelopeParser(options);
  // Strings go through the same byte path, so the size cap counts the same bytes either way.
  const envelopes = parser.write(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  if (parser.error !== undefined) throw parser.error;
  envelopes.push(...parser.end());
  const [first, ...rest] = envelopes;
  if (first === undefined) {
    throw isBlank(body) ? new EwsNotXmlError(options.httpStatus, '') : new EwsParseError('The body holds no SOAP envelope');
  }
  if (rest.length > 0) throw new EwsParseError(`Expected one SOAP envelope, found ${envelopes.length}`);
  return first;
}

function isBlank(body: string | Uint8Array): boolean {
  for (let i = 0; i < body.length; i++) {
    const c = typeof body === 'string' ? body.charCodeAt(i) : (body[i] as number);
    if (!isXmlSpace(c)) return false;
  }
  return true;
}
