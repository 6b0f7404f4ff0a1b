/**
 * Assertion helpers over the library's XML tree (lib/ews/xml-tree.ts, the one saxes-based reader
 * of whole documents): enough to check element order, attribute values and that escaped text reads
 * back as the original string.
 */
import { readXmlTree, type XmlElement } from '../../lib/ews/xml-tree.js';

/** One element, as the assertions compare it. `text` is the concatenation of its direct text content. */
export interface XmlNode {
  readonly uri: string;
  readonly local: string;
  /** Attributes without a namespace, by local name (namespace declarations left out). */
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlNode[];
  readonly text: string;
}

function view(element: XmlElement): XmlNode {
  return {
    uri: element.ns,
    local: element.local,
    attrs: Object.fromEntries(element.attributes),
    children: element.children.map(view),
    text: element.text,
  };
}

/** Parses one XML document into a tree; throws on anything not well-formed. */
export function parseXmlTree(xml: string): XmlNode {
  return view(readXmlTree(xml));
}

/** The first descendant (depth-first) with this local name, or a thrown error naming it. */
export function find(node: XmlNode, local: string): XmlNode {
  const hit = findAll(node, local)[0];
  if (!hit) throw new Error(`no <${local}> under <${node.local}>`);
  return hit;
}

/** Every descendant with this local name, in document order. */
export function findAll(node: XmlNode, local: string): XmlNode[] {
  const out: XmlNode[] = [];
  const walk = (n: XmlNode): void => {
    for (const c of n.children) {
      if (c.local === local) out.push(c);
      walk(c);
    }
  };
  walk(node);
  return out;
}

/** Local names of the element's children, in order. */
export const childNames = (node: XmlNode): string[] => node.children.map((c) => c.local);
