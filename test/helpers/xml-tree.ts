/**
 * A tiny namespace-aware XML tree for assertions in tests (built on saxes): enough to check
 * element order, attribute values and that escaped text reads back as the original string.
 * Test-only; the library itself never builds trees.
 */
import { SaxesParser } from 'saxes';

/** One element. `text` is the concatenation of its direct text content. */
export interface XmlNode {
  readonly uri: string;
  readonly local: string;
  /** Qualified name as written, e.g. `t:FolderId`. */
  readonly name: string;
  /** Non-namespace-declaration attributes by qualified name. */
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlNode[];
  text: string;
}

/** Parses one XML document into a tree; throws on anything not well-formed. */
export function parseXmlTree(xml: string): XmlNode {
  const parser = new SaxesParser({ xmlns: true });
  const stack: XmlNode[] = [];
  let root: XmlNode | undefined;
  let error: Error | undefined;
  parser.on('error', (e) => {
    error ??= e;
  });
  parser.on('opentag', (tag) => {
    const attrs: Record<string, string> = {};
    for (const a of Object.values(tag.attributes)) {
      if (a.prefix !== 'xmlns' && a.name !== 'xmlns') attrs[a.name] = a.value;
    }
    const node: XmlNode = { uri: tag.uri ?? '', local: tag.local ?? tag.name, name: tag.name, attrs, children: [], text: '' };
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(node);
    else root = node;
    stack.push(node);
  });
  parser.on('text', (t) => {
    const top = stack[stack.length - 1];
    if (top) top.text += t;
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  parser.write(xml).close();
  if (error) throw error;
  if (!root) throw new Error('no root element');
  return root;
}

/** The first descendant (depth-first) with this local name, or a thrown error naming it. */
export function find(node: XmlNode, local: string): XmlNode {
  const hit = findAll(node, local)[0];
  if (!hit) throw new Error(`no <${local}> under <${node.name}>`);
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
