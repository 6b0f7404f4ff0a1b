import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// `npm test` builds before running vitest; these tests load the built package the way a user's
// app would, through the `exports` map, from both module systems.
const root = fileURLToPath(new URL('..', import.meta.url));
const built = existsSync(`${root}/dist/index.js`) && existsSync(`${root}/dist/index.cjs`);

function run(code: string, type: 'module' | 'commonjs'): string {
  const flag = type === 'module' ? '--input-type=module' : '--input-type=commonjs';
  return execFileSync(process.execPath, [flag, '-e', code], { cwd: root, encoding: 'utf8' }).trim();
}

describe.skipIf(!built)('package exports (built output)', () => {
  it('imports from an ES module consumer', () => {
    const out = run(
      `import * as m from 'ews-push-bridge'; import * as t from 'ews-push-bridge/testing';
       console.log(typeof m.EwsBridgeError, typeof m.responseCodeInfo, typeof m.StreamingGroup, typeof t)`,
      'module',
    );
    // The response-code table is the wire layer's: not on the main entry.
    expect(out).toBe('function undefined function object');
  });

  it('imports the wire entry from both module systems, sharing the main entry’s error classes', () => {
    const throwing = `let wireError; try { w.parseEnvelope('<!DOCTYPE x><x/>'); } catch (e) { wireError = e; }`;
    const shown = `[typeof w.responseCodeInfo, w.responseCodeInfo('ErrorServerBusy').action, typeof w.EnvelopeParser,
       wireError instanceof m.EwsBridgeError, wireError instanceof e.EwsXmlForbiddenError, wireError.code].join(' ')`;
    const expected = 'function backoff function true true EWS_XML_FORBIDDEN';
    expect(
      run(
        `import * as m from 'ews-push-bridge'; import * as w from 'ews-push-bridge/wire'; import * as e from 'ews-push-bridge/errors'; ${throwing} console.log(${shown})`,
        'module',
      ),
    ).toBe(expected);
    expect(
      run(
        `const m = require('ews-push-bridge'); const w = require('ews-push-bridge/wire'); const e = require('ews-push-bridge/errors'); ${throwing} console.log(${shown})`,
        'commonjs',
      ),
    ).toBe(expected);
  });

  it('keeps the two entries’ names apart: nothing of the wire layer on the main entry, no name on both', () => {
    const out = run(
      `const m = Object.keys(require('ews-push-bridge')); const w = Object.keys(require('ews-push-bridge/wire'));
       console.log(JSON.stringify({ both: m.filter((name) => w.includes(name)), wireOnMain: ['parseEnvelope', 'postSoap', 'RESPONSE_CODES', 'SOAP_ACTIONS'].filter((name) => m.includes(name)) }))`,
      'commonjs',
    );
    expect(JSON.parse(out)).toEqual({ both: [], wireOnMain: [] });
  });

  it('keeps the main entry to at most 50 names, the rest in subpaths that share its classes', () => {
    const code = (load: (entry: string) => string): string => `
       const m = ${load('ews-push-bridge')}; const e = ${load('ews-push-bridge/errors')};
       const r = ${load('ews-push-bridge/redis')}; const a = ${load('ews-push-bridge/autodiscover')};
       const t = ${load('ews-push-bridge/types')};
       const auth = new e.EwsAuthError(401, 'Basic');
       console.log(JSON.stringify({
         mainValues: Object.keys(m).length,
         errors: Object.keys(e).length, sameBase: e.EwsBridgeError === m.EwsBridgeError, authIsBridgeError: auth instanceof m.EwsBridgeError,
         redis: typeof r.RedisCheckpointStore + ' ' + typeof r.RedisLeaseCoordinator, autodiscover: typeof a.autodiscover,
         types: Object.keys(t).length }))`;
    const expected = {
      mainValues: expect.any(Number),
      errors: 24,
      sameBase: true,
      authIsBridgeError: true,
      redis: 'function function',
      autodiscover: 'function',
      types: 0,
    };
    const esm = JSON.parse(run(code((entry) => `await import('${entry}')`), 'module'));
    const cjs = JSON.parse(run(code((entry) => `require('${entry}')`), 'commonjs'));
    expect(esm).toEqual(expected);
    expect(cjs).toEqual(expected);
    // Values and types: the API report lists every exported name of the main entry.
    const report = readFileSync(`${root}/api/ews-push-bridge.api.md`, 'utf8');
    const exported = report.match(/^export (?:declare )?(?:abstract )?(?:class|function|const|interface|type|enum) \w+/gm) ?? [];
    expect(exported.length).toBeGreaterThan(20);
    expect(exported.length).toBeLessThanOrEqual(50);
  });

  it('requires from a CommonJS consumer', () => {
    const out = run(
      `const m = require('ews-push-bridge'); const t = require('ews-push-bridge/testing');
       const e = new (require('ews-push-bridge/errors').EwsHttpError)(503); const g = new m.StreamingGroup({ url: 'http://127.0.0.1:1/EWS/Exchange.asmx' });
       console.log(e instanceof m.EwsBridgeError, e.code, e.retriable, typeof t, g.stats().connections); g.destroy()`,
      'commonjs',
    );
    expect(out).toBe('true EWS_HTTP_ERROR true object 0');
  });

  it('resolves its types for ESM and CommonJS TypeScript consumers (module Node16)', () => {
    const tsc = `${root}/node_modules/typescript/bin/tsc`;
    // Throws (failing the test) with tsc's diagnostics if either consumer does not type-check.
    execFileSync(process.execPath, [tsc, '-p', `${root}/test/consumers/tsconfig.json`], { cwd: root, encoding: 'utf8' });
  });

  it('lets an app typed against ews-javascript-api’s declarations use the ews-javascript-api adapter’s ExchangeService and StreamingSubscriptionConnection', () => {
    const tsc = `${root}/node_modules/typescript/bin/tsc`;
    execFileSync(process.execPath, [tsc, '-p', `${root}/test/consumers/tsconfig.ejs.json`], { cwd: root, encoding: 'utf8' });
  }, 120_000);
});
