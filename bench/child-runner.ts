/**
 * Forks one bench child (a TypeScript file run with tsx), hands it its task over IPC and collects
 * what it reports. The child's stdout/stderr are kept (the last few KiB) and shown only when it
 * fails: ews-javascript-api prints parser warnings for every envelope it cannot read.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildPass } from './stream-child.js';

/** Options of {@link runChild}. */
export interface RunChildOptions<Report> {
  /** The child script, relative to this directory (`'stream-child.ts'`). Required. */
  readonly script: string;
  /** Sent to the child as its first message. Required. */
  readonly task: unknown;
  /**
   * Called with every report the child sends, as it arrives; `reply` sends the child a message
   * (a child that waits for the parent between steps). Default: none.
   */
  readonly onReport?: (report: Report, reply: (message: object) => void) => void;
  /** Kill the child after this long. Default `300_000`. */
  readonly timeoutMs?: number;
  /** Extra node flags (e.g. `--cpu-prof`). Default: none. */
  readonly nodeArgs?: readonly string[];
}

/** What a child said and how it ended. */
export interface ChildOutcome<Report> {
  readonly reports: Report[];
  /** Set when the child failed, crashed or was killed. */
  readonly failure: string | undefined;
  /** Lines of output that contain `warning` (ews-javascript-api's xmldom warnings). */
  readonly warnings: number;
}

const TAIL_BYTES = 4096;

/** Runs one child to its end. Never rejects: a crash is reported in `failure`. */
export function runChild<Report extends { type: string }>(options: RunChildOptions<Report>): Promise<ChildOutcome<Report>> {
  const script = fileURLToPath(new URL(options.script, import.meta.url));
  const child = fork(script, [], {
    execArgv: ['--import', 'tsx', '--expose-gc', ...(options.nodeArgs ?? [])],
    serialization: 'advanced',
    silent: true,
  });
  const reports: Report[] = [];
  let failure: string | undefined;
  let tail = '';
  let warnings = 0;
  const keep = (data: Buffer): void => {
    const text = data.toString('utf8');
    warnings += text.split('warning').length - 1;
    tail = (tail + text).slice(-TAIL_BYTES);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('message', (message: Report & { error?: string }) => {
    if (message.type === 'failed') failure = message.error ?? 'the child failed';
    else if (message.type !== 'done') {
      reports.push(message);
      options.onReport?.(message, (reply) => {
        if (child.connected) child.send(reply);
      });
    }
  });
  child.send(options.task as object);
  const timer = setTimeout(() => {
    failure = `killed after ${options.timeoutMs ?? 300_000} ms`;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 300_000);
  return new Promise((resolve) => {
    child.on('error', (error) => {
      failure ??= `could not run the child: ${error.message}`;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (failure === undefined && code !== 0) failure = `exited with ${signal ?? code}`;
      resolve({ reports, failure: failure === undefined ? undefined : `${failure}\n--- child output (tail) ---\n${tail}`, warnings });
    });
  });
}

/**
 * The passes of a measured child: `warmups` warm-up streams, the timed stream, then a GC and the
 * same stream again for the heap numbers (see stream-child.ts for why time and memory are not
 * taken from one pass). The parent serves `warmups` warm-up streams and then two measured ones.
 */
export function warmThenMeasure(warmups: number, warmupEvents: number, events: number): ChildPass[] {
  return [
    ...Array.from({ length: warmups }, (): ChildPass => ({ kind: 'warmup', expected: warmupEvents })),
    { kind: 'timed', expected: events },
    { kind: 'gc', expected: 0 },
    { kind: 'memory', expected: events },
  ];
}
