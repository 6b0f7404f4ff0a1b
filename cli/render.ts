/**
 * The terminal view of the demo: a block of at most 80 columns redrawn in place on a TTY (with
 * ANSI cursor movement), and plain appended lines anywhere else (pipes, CI logs — no control
 * characters there). Pure functions turn state into lines; {@link LiveRegion} puts them on screen.
 *
 * @packageDocumentation
 */
import type { LatencySummary } from './demo-stats.js';

/** Widest line the CLI writes. */
export const MAX_WIDTH = 80;

/** `1,234`. */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

// A no-break space keeps a number with its unit when text is wrapped.
const NBSP = '\u00a0';

/** `0.8 ms`, `12 ms`, `1.4 s` (number and unit joined by a no-break space). */
export function duration(ms: number): string {
  if (ms < 10) return `${ms.toFixed(1)}${NBSP}ms`;
  if (ms < 1000) return `${Math.round(ms)}${NBSP}ms`;
  return `${(ms / 1000).toFixed(1)}${NBSP}s`;
}

/** `"1 event"`, `"2 events"`. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${count(n)} ${n === 1 ? word : many}`;
}

/** Wraps `text` into lines of at most `width` columns, every line after the first indented. */
export function wrap(text: string, width: number = MAX_WIDTH, indent = '  '): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/[ \t\n]+/).filter((w) => w !== '')) {
    const candidate = line === '' ? (lines.length === 0 ? word : `${indent}${word}`) : `${line} ${word}`;
    if (candidate.length > width && line !== '') {
      lines.push(line);
      line = `${indent}${word}`;
    } else {
      line = candidate;
    }
  }
  if (line !== '') lines.push(line);
  return lines.map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
}

/** State of one injected fault, for the view. */
export interface FaultView {
  readonly name: string;
  readonly state: 'pending' | 'injected' | 'recovered';
}

/** Everything the live view shows. */
export interface DemoView {
  readonly title: string;
  readonly target: number;
  readonly produced: number;
  readonly delivered: number;
  readonly duplicates: number;
  readonly latency: LatencySummary;
  readonly reconnects: number;
  readonly gaps: number;
  readonly gapsMayLose: number;
  readonly faults: readonly FaultView[];
  readonly phase: string;
  /** The newest log lines, oldest first. */
  readonly recent: readonly string[];
}

function bar(fraction: number, width: number): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `${'█'.repeat(full)}${'░'.repeat(width - full)}`;
}

const FAULT_MARK: Readonly<Record<FaultView['state'], string>> = { pending: '·', injected: '…', recovered: '✓' };

/** The live block, each line at most `width` columns. */
export function renderDemoView(view: DemoView, width: number = MAX_WIDTH): string[] {
  const rule = '─'.repeat(width);
  const label = (name: string): string => `  ${name.padEnd(11)}`;
  const pct = view.target === 0 ? 1 : view.produced / view.target;
  const head = `${label('produced')}${count(view.produced)} / ${count(view.target)}  `;
  const pctText = ` ${String(Math.round(pct * 100)).padStart(3)}%`;
  const barWidth = Math.max(5, width - head.length - pctText.length);
  const l = view.latency;
  const faults = view.faults.length === 0 ? 'off (--faults off)' : view.faults.map((f) => `${FAULT_MARK[f.state]} ${f.name}`).join('   ');
  const lines = [
    view.title,
    rule,
    `${head}${bar(pct, barWidth)}${pctText}`,
    `${label('delivered')}${count(view.delivered)}    waiting ${count(Math.max(0, view.produced - view.delivered))}    duplicates ${count(view.duplicates)}`,
    `${label('latency')}p50 ${duration(l.p50)}   p90 ${duration(l.p90)}   p99 ${duration(l.p99)}   max ${duration(l.max)}`,
    `${label('reconnects')}${count(view.reconnects)}    gaps ${count(view.gaps)}${view.gapsMayLose > 0 ? ` (${count(view.gapsMayLose)} may have lost events)` : ''}`,
    `${label('faults')}${faults}`,
    `  ${view.phase}`,
    rule,
    ...view.recent,
  ];
  return lines.map((line) => (line.length > width ? `${line.slice(0, width - 1)}…` : line));
}

/** A latency summary for text: `p50 1.2 ms, p99 6.1 ms`. */
export function latencyText(l: LatencySummary): string {
  return `p50 ${duration(l.p50)}, p90 ${duration(l.p90)}, p99 ${duration(l.p99)}, max ${duration(l.max)}`;
}

/** Where the view is written: a stream with an optional TTY width. */
export interface ViewStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/**
 * A block of lines at the bottom of a terminal, redrawn in place. Off a TTY it draws nothing:
 * callers print their log lines with {@link LiveRegion.log}, which appends them in both cases.
 */
export class LiveRegion {
  private drawn = 0;
  readonly interactive: boolean;

  constructor(private readonly stream: ViewStream) {
    this.interactive = stream.isTTY === true;
  }

  /** Usable width: the terminal's, at most {@link MAX_WIDTH}. */
  get width(): number {
    return Math.max(40, Math.min(MAX_WIDTH, this.stream.columns ?? MAX_WIDTH));
  }

  /** Replaces the block (TTY only). */
  update(lines: readonly string[]): void {
    if (!this.interactive) return;
    let out = this.drawn > 0 ? `\x1b[${this.drawn}F` : '';
    for (const line of lines) out += `\x1b[2K${line}\n`;
    // A shorter block than before leaves old lines below: clear them.
    if (lines.length < this.drawn) out += '\x1b[0J';
    this.stream.write(out);
    this.drawn = lines.length;
  }

  /** Appends a line: off a TTY immediately; on a TTY the caller shows it inside the block. */
  log(line: string): void {
    if (!this.interactive) this.stream.write(`${line}\n`);
  }

  /** Leaves the last block on screen; later writes go below it. */
  finish(): void {
    this.drawn = 0;
  }
}
