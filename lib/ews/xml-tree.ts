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
  attributes: Map<string, string>;
  nsAttributes: Map<string, string>;
  children: XmlElement[];
  text: string;
}

const XMLNS_URI = 'http://www.w3.org/2000/xmlns/';

/**
 * Reads one XML document into a tree. DTDs are refused outright: the simulator never needs one and
 * refusing them means no entity expansion can happen.
 */
export function readXmlTree(xml: string): XmlElement {
  const parser = new SaxesParser({ xmlns: true, position: false });
  const stack: Building[] = [];
  let root: XmlElement | undefined;
  let failure: Error | undefined;

  parser.on('error', (err) => {
    failure ??= err;
  });
  parser.on('doctype', () => {
    failure ??= new Error('DOCTYPE is not allowed');
  });
  parser.on('opentag', (tag) => {
    const attributes = new Map<string, string>();
    const nsAttributes = new Map<string, string>();
    for (const attr of Object.values(tag.attributes)) {
      if (attr.uri === XMLNS_URI || attr.name === 'xmlns') continue;
      if (attr.uri === '') attributes.set(attr.local, attr.value);
      else nsAttributes.set(`{${attr.uri}}${attr.local}`, attr.value);
    }
    stack.push({ ns: tag.uri, local: tag.local, attributes, nsAttributes, children: [], text: '' });
  });
  parser.on('text', (text) => {
    const top = stack[stack.length - 1];
    if (top) top.text += text;
  });
  parser.on('cdata', (text) => {
    const top = stack[stack.length - 1];
    if (top) top.text += text;
  });
  parser.on('closetag', () => {
    const done = stack.pop();
    if (!done) return;
    const element: XmlElement = done;
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(element);
    else root = element;
  });

  try {
    parser.write(xml).close();
  } catch (err) {
    failure ??= err instanceof Error ? err : new Error(String(err));
  }
  if (failure) throw new XmlReadError(failure.message);
  if (!root) throw new XmlReadError('No root element');
  return root;
}

/** Namespace URIs the simulator reads and writes. */
export const NS = {
  soap: 'http://schemas.xmlsoap.org/soap/envelope/',
  m: 'http://schemas.microsoft.com/exchange/services/2006/messages',
  t: 'http://schemas.microsoft.com/exchange/services/2006/types',
  e: 'http://schemas.microsoft.com/exchange/services/2006/errors',
} as const;
