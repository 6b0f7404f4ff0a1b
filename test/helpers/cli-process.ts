/**
 * Runs the `ews-push-bridge` command in a child process, from the sources (through tsx, as
 * `npm run demo` does), so the CLI tests need no build. Children that a test leaves running are
 * killed by {@link killAll}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HANG_GUARD_MS } from './until.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = 'cli/main.ts';

const children = new Set<ChildProcess>();

/** A running CLI. */
export interface CliChild {
  readonly process: ChildProcess;
  stdout(): string;
  stderr(): string;
  /**
   * Resolves when stderr (or stdout) matches `pattern`; rejects when the child exits first, or at
   * the hang guard `timeoutMs` (default HANG_GUARD_MS of ./until.ts: not a speed bound).
   */
  waitFor(pattern: RegExp, timeoutMs?: number, stream?: 'stdout' | 'stderr'): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or rejects at the hang guard `timeoutMs`, default HANG_GUARD_MS). */
  exited(timeoutMs?: number): Promise<number | null>;
}

/** Environment for children: this process's, minus anything that could make output interactive. */
function childEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, NO_COLOR: '1' };
  delete env['FORCE_COLOR'];
  return env;
}

export function spawnCli(args: readonly string[], env: Readonly<Record<string, string>> = {}): CliChild {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const l of listeners) l();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    for (const l of listeners) l();
  });
  const exit = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    });
  });
  return {
    process: child,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern, timeoutMs = HANG_GUARD_MS, stream = 'stderr') {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const match = (stream === 'stderr' ? err : out).match(pattern);
          if (match) {
            done();
            resolve(match);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${pattern} on ${stream}\n--- stdout\n${out}\n--- stderr\n${err}`));
        }, timeoutMs);
        const onExit = (): void => {
          check();
          done();
          reject(new Error(`the CLI exited before ${pattern} appeared on ${stream}\n--- stdout\n${out}\n--- stderr\n${err}`));
        };
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    exited(timeoutMs = HANG_GUARD_MS) {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        exit,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the CLI did not exit within ${timeoutMs} ms\n--- stdout\n${out}\n--- stderr\n${err}`)), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
    },
  };
}

/** Runs the CLI to its end. */
export async function runCli(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  timeoutMs = HANG_GUARD_MS,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnCli(args, env);
  const code = await child.exited(timeoutMs);
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

/** Kills every child still running (for afterEach). */
export function killAll(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
}
