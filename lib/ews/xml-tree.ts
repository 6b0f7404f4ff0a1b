/**
 * A small namespace-aware element tree for small, whole XML documents: Autodiscover answers, and
 * the simulator's inputs (EWS requests, push-listener answers); the tests read what the builders
 * write with it too. Notifications never go through it: the envelope parser reads streams
 * incrementally and never builds a tree. Internal: not exported.
 */
import { SaxesParser } from 'saxes';

/** One element: namespace URI, local name, unprefixed attributes by local name, children, text. */
export interface XmlElement {
  readonly ns: string;
  readonly local: string;
  /** Attributes without a namespace (namespaced ones such as `xsi:type` are in `nsAttributes`). */
  readonly attributes: ReadonlyMap<string, string>;
  /** Namespaced attributes, keyed `{uri}local`; `xmlns` declarations are not included. */
  readonly nsAttributes: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  /** Concatenated character data directly inside this element. */
  readonly text: string;
}

/** Thrown when the input is not a well-formed XML document (or declares a DTD). */
export class XmlReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlReadError';
  }
}

interface Building {
  ns: string;
  local: string;
  attributes: ReadonlyMap<string, string>;
  nsAttributes: ReadonlyMap<string, string>;
  children: XmlElement[];
  text: string;
}

const XMLNS_URI = 'http://www.w3.org/2000/xmlns/';

/** The attribute map of every element without such attributes (most of them): read-only, so one will do. */
const NO_ATTRIBUTES: ReadonlyMap<string, string> = new Map();

/** What the handlers of a {@link TreeReader}'s parser build into, for the document being read. */
interface ReadState {
  readonly stack: Building[];
  root: XmlElement | undefined;
  failure: Error | undefined;
}

/**
 * A SAX parser with the tree-building handlers attached, reused from one document to the next:
 * saxes resets itself when a document is closed, and a parser (with its handlers) made per
 * document was a good part of reading a small one (the simulator reads one per request).
 */
class TreeReader {
  private readonly parser = new SaxesParser({ xmlns: true, position: false });
  private state: ReadState = { stack: [], root: undefined, failure: undefined };

  constructor() {
    const parser = this.parser;
    parser.on('error', (err) => {
      this.state.failure ??= err;
    });
    parser.on('doctype', () => {
      this.state.failure ??= new Error('DOCTYPE is not allowed');
    });
    parser.on('opentag', (tag) => {
      let attributes: Map<string, string> | undefined;
      let nsAttributes: Map<string, string> | undefined;
      for (const name in tag.attributes) {
        const attr = tag.attributes[name]!;
        if (attr.uri === XMLNS_URI || attr.name === 'xmlns') continue;
        if (attr.uri === '') (attributes ??= new Map()).set(attr.local, attr.value);
        else (nsAttributes ??= new Map()).set(`{${attr.uri}}${attr.local}`, attr.value);
      }
      this.state.stack.push({ ns: tag.uri, local: tag.local, attributes: attributes ?? NO_ATTRIBUTES, nsAttributes: nsAttributes ?? NO_ATTRIBUTES, children: [], text: '' });
    });
    parser.on('text', (text) => {
      const stack = this.state.stack;
      const top = stack[stack.length - 1];
      if (top) top.text += text;
    });
    parser.on('cdata', (text) => {
      const stack = this.state.stack;
      const top = stack[stack.length - 1];
      if (top) top.text += text;
    });
    parser.on('closetag', () => {
      const stack = this.state.stack;
      const done = stack.pop();
      if (!done) return;
      const element: XmlElement = done;
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(element);
      else this.state.root = element;
    });
  }

  /** Reads one document; `false` when the parser threw and must not be used again. */
  read(xml: string): { state: ReadState; reusable: boolean } {
    const state: ReadState = { stack: [], root: undefined, failure: undefined };
    this.state = state;
    let reusable = true;
    try {
      this.parser.write(xml).close();
    } catch (err) {
      // Thrown out of the middle of a document: its state is not known to be reset.
      reusable = false;
      state.failure ??= err instanceof Error ? err : new Error(String(err));
    }
    return { state, reusable };
  }
}

let idleReader: TreeReader | undefined;

/**
 * Reads one XML document into a tree. DTDs are refused outright: the simulator never needs one and
 * refusing them means no entity expansion can happen.
 */
export function readXmlTree(xml: string): XmlElement {
  // Taken while in use, so a read inside a read (none today) would get a parser of its own.
  const reader = idleReader ?? new TreeReader();
  idleReader = undefined;
  const { state, reusable } = reader.read(xml);
  if (reusable) idleReader = reader;
  if (state.failure) throw new XmlReadError(state.failure.message);
  if (!state.root) throw new XmlReadError('No root element');
  return state.root;
}

/** Namespace URIs the simulator reads and writes. */
export const NS = {
  soap: 'http://schemas.xmlsoap.org/soap/envelope/',
  m: 'http://schemas.microsoft.com/exchange/services/2006/messages',
  t: 'http://schemas.microsoft.com/exchange/services/2006/types',
  e: 'http://schemas.microsoft.com/exchange/services/2006/errors',
} as const;
