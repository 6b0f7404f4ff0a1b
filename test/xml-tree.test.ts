/**
 * readXmlTree reuses one SAX parser from one document to the next: a document that failed (not
 * well-formed, a DOCTYPE, no root) must leave nothing behind for the next one, and attributes are
 * read as before.
 */
import { describe, expect, it } from 'vitest';
import { NS, readXmlTree, XmlReadError } from '../lib/ews/xml-tree.js';

const GOOD = `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${NS.soap}" xmlns:t="${NS.t}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:Body><t:A Id="1" xsi:type="t:X">one<![CDATA[ two]]></t:A><t:B/></s:Body></s:Envelope>`;

function expectGood(): void {
  const root = readXmlTree(GOOD);
  expect(root.ns).toBe(NS.soap);
  expect(root.local).toBe('Envelope');
  expect(root.attributes.size).toBe(0);
  expect(root.nsAttributes.size).toBe(0);
  const body = root.children[0]!;
  expect(body.children.map((c) => c.local)).toEqual(['A', 'B']);
  const a = body.children[0]!;
  expect([...a.attributes]).toEqual([['Id', '1']]);
  expect([...a.nsAttributes]).toEqual([['{http://www.w3.org/2001/XMLSchema-instance}type', 't:X']]);
  expect(a.text).toBe('one two');
  expect(body.children[1]!.attributes.size).toBe(0);
}

describe('readXmlTree', () => {
  it('reads documents one after another', () => {
    expectGood();
    expectGood();
  });

  it('reads a document correctly after one that failed, whatever the failure', () => {
    const failures = [
      '<a><b></a>',
      '<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>',
      '',
      'not xml at all',
      '<a>unclosed',
      `<s:Envelope xmlns:s="${NS.soap}"><s:Body>`,
      '<a/><b/>',
    ];
    for (const xml of failures) {
      expect(() => readXmlTree(xml), xml).toThrow(XmlReadError);
      expectGood();
    }
  });

  it('reads the same text the same way every time (nothing carried over)', () => {
    const first = readXmlTree(GOOD);
    readXmlTree('<x y="z">w</x>');
    expect(readXmlTree(GOOD)).toEqual(first);
  });
});
