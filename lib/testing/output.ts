/**
 * Writes a response body in pieces, with the byte-level faults applied: trickle (a few bytes per
 * write), silence (hold everything for a while), cut (half a piece, then the socket dies) and
 * malformed (a piece that is not well-formed XML).
 */
import type { ServerResponse } from 'node:http';
import type { TimerHandle, TimerSet } from './timers.js';

/** What to do to one piece of output. */
export type PieceEffect = 'cut' | 'malformed' | undefined;

/** Trickle settings. */
export interface TrickleSettings {
  readonly bytesPerWrite: number;
  readonly intervalMs: number;
}

/** Mangles the closing Envelope tag, so the piece is no longer well-formed XML. */
export function malform(xml: string): string {
  const at = xml.lastIndexOf('Envelope>');
  return at < 0 ? `${xml}</unclosed` : `${xml.slice(0, at)}Envelopx>${xml.slice(at + 'Envelope>'.length)}`;
}

/** A queue of bytes in front of one `ServerResponse`. */
export class Output {
  private readonly queue: Buffer[] = [];
  private pumpTimer: TimerHandle | undefined;
  private pausedUntil = 0;
  private ending = false;
  private cutAfter: Buffer | undefined;
  private done = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly timers: TimerSet,
    private readonly trickle: TrickleSettings | undefined,
    private readonly onDone: () => void = () => {},
  ) {}

  /** Whether the output was ended, cut or destroyed. */
  get closed(): boolean {
    return this.done || this.res.destroyed || this.res.writableEnded;
  }

  /** Queues a piece (one envelope, or a whole body). */
  write(text: string, effect?: PieceEffect): void {
    if (this.closed || this.ending) return;
    if (effect === 'malformed') text = malform(text);
    const bytes = Buffer.from(text, 'utf8');
    if (effect === 'cut') {
      // Cut inside the piece, never at its edge: the client must see a truncated envelope.
      const half = bytes.subarray(0, Math.max(1, Math.floor(bytes.length / 2)));
      this.queue.push(half);
      this.cutAfter = half;
      this.ending = true;
    } else {
      this.queue.push(bytes);
    }
    this.pump();
  }

  /** Holds every byte until `ms` from now. */
  silence(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
    this.timers.clear(this.pumpTimer);
    this.pumpTimer = undefined;
    this.pump();
  }

  /** Ends the response once the queue is written. */
  end(): void {
    if (this.closed) return;
    this.ending = true;
    this.pump();
  }

  /** Destroys the socket now, dropping anything queued. */
  destroy(): void {
    this.timers.clear(this.pumpTimer);
    this.pumpTimer = undefined;
    this.queue.length = 0;
    this.finish();
    this.res.destroy();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.onDone();
  }

  private pump(): void {
    if (this.pumpTimer !== undefined || this.done) return;
    const wait = this.pausedUntil - Date.now();
    if (wait > 0) {
      this.pumpTimer = this.timers.set(() => {
        this.pumpTimer = undefined;
        this.pump();
      }, wait);
      return;
    }
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (this.res.destroyed) {
        this.finish();
        return;
      }
      let piece = head;
      if (this.trickle) {
        piece = head.subarray(0, this.trickle.bytesPerWrite);
        if (piece.length === head.length) this.queue.shift();
        else this.queue[0] = head.subarray(piece.length);
      } else {
        this.queue.shift();
      }
      const isCut = this.cutAfter !== undefined && this.queue.length === 0;
      if (isCut) {
        this.res.write(piece, () => this.destroy());
        this.finish();
        return;
      }
      this.res.write(piece);
      if (this.trickle && this.queue.length > 0) {
        this.pumpTimer = this.timers.set(() => {
          this.pumpTimer = undefined;
          this.pump();
        }, this.trickle.intervalMs);
        return;
      }
    }
    if (this.ending && !this.done) {
      this.finish();
      this.res.end();
    }
  }
}
