/**
 * The docs cannot rot silently: README.md stays short; every relative link in README.md and
 * docs/*.md points at a file that exists; every error `code` of lib/errors.ts has its cause and
 * fix in docs/errors.md; every configuration field is in docs/configuration.md; and every
 * TypeScript block that imports the package type-checks against the sources (names the snippet
 * leaves to the reader — `url`, `auth`, `crm` — are allowed to be undeclared, nothing else).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { fieldsAt } from '../cli/config-hints.js';
import { bridgeConfigSchema } from '../cli/config-schema.js';
import { ROOT } from './helpers/cli-process.js';

const DOCS = readdirSync(join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => join('docs', f));
const FILES = ['README.md', 'BENCHMARKS.md', ...DOCS];
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

// Pages other branches of this round write; the README and docs link to them already.
const PAGES_TO_COME = new Set(['docs/deployment-auth.md', 'docs/migrate-ews-javascript-api.md', 'docs/coordination.md']);

/** Fenced code blocks of a Markdown file, with their language and first line number. */
function codeBlocks(markdown: string): { lang: string; code: string; line: number }[] {
  const blocks: { lang: string; code: string; line: number }[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
    blocks.push({ lang: open[1]!, code: body.join('\n'), line: start + 1 });
  }
  return blocks;
}

/** The Markdown without its code blocks (links inside code are not links). */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '');
}

describe('docs', () => {
  it('README.md is at most 250 lines and starts with the install line', () => {
    const readme = read('README.md');
    expect(readme.split('\n').length).toBeLessThanOrEqual(250);
    expect(readme.indexOf('npm install ews-push-bridge')).toBeGreaterThan(0);
    expect(readme.indexOf('npm install ews-push-bridge')).toBeLessThan(readme.indexOf('## '));
    expect(readme).toContain('## Why each dependency is here');
    expect(readme).toContain('## Layout of this repository');
  });

  it('every relative link points at a file that exists', () => {
    const broken: string[] = [];
    for (const file of FILES) {
      for (const match of prose(read(file)).matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = match[1]!.split('#')[0]!;
        if (target === '' || /^[a-z]+:/i.test(target)) continue;
        const path = resolve(ROOT, dirname(file), target);
        const relative = path.slice(ROOT.length).replace(/^\//, '');
        if (!existsSync(path) && !PAGES_TO_COME.has(relative)) broken.push(`${file}: ${match[1]}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('docs/errors.md gives every error code of lib/errors.ts a cause and a fix', () => {
    const codes = [...read('lib/errors.ts').matchAll(/^ {2}\| '(EWS_[A-Z_]+)'/gm)].map((m) => m[1]!);
    expect(codes.length).toBeGreaterThan(10);
    const errors = read('docs/errors.md');
    for (const code of codes) {
      const section = errors.split(`### \`${code}\``)[1]?.split('\n### ')[0];
      expect(section, code).toBeDefined();
      expect(section, code).toMatch(/\*\*Cause\*\*/);
      expect(section, code).toMatch(/\*\*Fix\*\*/);
    }
  });

  it('docs/configuration.md names every field of the configuration file', () => {
    const doc = read('docs/configuration.md');
    const missing: string[] = [];
    const visit = (path: readonly PropertyKey[], raw: unknown): void => {
      for (const field of fieldsAt(bridgeConfigSchema, path, raw)) if (!doc.includes(field)) missing.push([...path, field].join('.'));
    };
    visit([], {});
    for (const section of ['ews', 'listener', 'checkpoint', 'coordinator', 'metrics', 'log']) visit([section], {});
    for (const type of ['basic', 'ntlm', 'bearer']) visit(['ews', 'auth'], { ews: { auth: { type } } });
    visit(['listener', 'sharedSecret'], {});
    visit(['mailboxes', 0], { mailboxes: [{}] });
    expect(missing).toEqual([]);
  });

  it('every TypeScript block that imports the package type-checks against the sources', () => {
    const dir = join(ROOT, 'node_modules', '.cache', 'doc-snippets');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const snippets = new Map<string, string>();
    for (const file of FILES) {
      for (const block of codeBlocks(read(file))) {
        if (block.lang !== 'ts' || !/^import .* from 'ews-push-bridge/m.test(block.code)) continue;
        const name = join(dir, `${file.replace(/[/.]/g, '_')}_${block.line}.mts`);
        // `export {}`: each snippet is a module of its own, top-level await allowed.
        writeFileSync(name, `${block.code}\nexport {};\n`);
        snippets.set(name, `${file}:${block.line}`);
      }
    }
    expect(snippets.size).toBeGreaterThanOrEqual(8);
    const program = ts.createProgram([...snippets.keys()], {
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      target: ts.ScriptTarget.ES2022,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules', '@types')],
      baseUrl: ROOT,
      paths: {
        'ews-push-bridge': ['lib/index.ts'],
        'ews-push-bridge/testing': ['lib/testing/index.ts'],
        'ews-push-bridge/adapters/*': ['adapters/*.ts'],
      },
    });
    // What a snippet may leave to the reader: names it does not declare (and shorthand properties
    // made of them), and implicitly-typed parameters of callbacks whose type those names would give.
    const LEFT_TO_THE_READER = new Set([2304, 2552, 18004, 7006, 7031]);
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file !== undefined && snippets.has(resolve(d.file.fileName)) && !LEFT_TO_THE_READER.has(d.code))
      .map((d) => {
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        return `${snippets.get(resolve(d.file!.fileName))} (+${line + 1}): TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
    expect(problems).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});
