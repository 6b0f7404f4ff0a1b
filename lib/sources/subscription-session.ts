/**
 * The skeleton of a pull subscriber's session (the streaming source runs on the group's engine
 * instead, see `soloStreamingSignals`): one subscriber's EWS subscription on its own connection pool, run as streaks of attempts under the retry discipline (`withRetry`), stopped
 * once, and torn down in order — the loop settles, any Subscribe in flight settles (so no Subscribe
 * lands after our Unsubscribe), then Unsubscribe and the pool closes. Each subclass says what one
 * attempt is and what a failure means.
 *
 * @internal
 */
import type { Agent } from 'node:http';
import type { SubscriptionAffinity } from '../ews/affinity.js';
import type { EwsEndpointOptions } from '../ews/transport.js';
import { retryingSignal, withRetry, type FailurePlan, type RetryNotice } from './backoff.js';
import { sourceEndpoint, unsubscribeAndClose } from './endpoint.js';
import type { SourceSignal } from './lifecycle.js';
import type { ResolvedSourceOptions } from './options.js';
import type { SourceSession } from './session-observable.js';

/** The abort reason used when the consumer stops the source. */
class SessionStopped extends Error {
  constructor(kind: string) {
    super(`The ${kind} source was stopped`);
    this.name = 'SessionStopped';
  }
}

/** One subscriber's subscription, its connection pool, its loop and its teardown. */
export abstract class SubscriptionSession implements SourceSession {
  readonly #stopController = new AbortController();
  protected readonly agent: Agent;
  protected readonly endpoint: EwsEndpointOptions;
  protected readonly affinity: SubscriptionAffinity | undefined;
  /** The live subscription, once Subscribe answered. */
  protected subscriptionId: string | undefined;
  /** The subscription the server lost, reported as `previousSubscriptionId` by the next `subscribed`. */
  protected lostSubscriptionId: string | undefined;
  #running: Promise<void> | undefined;
  /** The last Subscribe sent, so teardown can wait for it and remove what it created. */
  #pendingSubscribe: Promise<string> | undefined;
  /** The teardown started by {@link stop}. */
  #cleaning: Promise<void> | undefined;

  constructor(
    protected readonly options: ResolvedSourceOptions,
    private readonly emit: (signal: SourceSignal) => void,
    /** `'streaming'` or `'pull'`: names the source in logs and retry signals. */
    private readonly kind: 'streaming' | 'pull',
  ) {
    ({ agent: this.agent, endpoint: this.endpoint, affinity: this.affinity } = sourceEndpoint(options));
  }

  protected get stopSignal(): AbortSignal {
    return this.#stopController.signal;
  }

  /** Starts the loop; exactly one of the callbacks is called, unless {@link stop} comes first. */
  start(onError: (error: unknown) => void, onComplete: () => void): void {
    this.#running = this.run().then(
      () => {
        if (!this.stopSignal.aborted) onComplete();
      },
      (error: unknown) => {
        if (!this.stopSignal.aborted) onError(this.finalError(error));
      },
    );
  }

  /** Idempotent teardown: aborts everything now, then (in the background) unsubscribes and closes the pool. */
  stop(): void {
    if (this.stopSignal.aborted) return;
    this.#stopController.abort(new SessionStopped(this.kind));
    this.onStop();
    this.#cleaning = this.#cleanUp().catch((error: unknown) => this.options.logger.error(`EWS ${this.kind} teardown failed`, { error }));
  }

  /** Settles once the teardown {@link stop} started is over (Unsubscribe answered or timed out); at once before that. */
  closed(): Promise<void> {
    return this.#cleaning ?? Promise.resolve();
  }

  async #cleanUp(): Promise<void> {
    await this.#running;
    await this.#pendingSubscribe?.catch(() => undefined);
    await unsubscribeAndClose(this.subscriptionId, { agent: this.agent, endpoint: this.endpoint, affinity: this.affinity }, this.options);
  }

  /** Emits a signal unless the session was stopped. */
  protected report(signal: SourceSignal): void {
    if (!this.stopSignal.aborted) this.emit(signal);
  }

  /**
   * Sends a Subscribe through `create` and remembers it until it settles. Not aborted by stop():
   * once the request is out the server may have created the subscription, and only its id lets the
   * teardown remove it (`requestTimeoutMs` bounds it instead).
   */
  protected subscribe(create: () => Promise<string>): Promise<string> {
    const pending = create();
    this.#pendingSubscribe = pending;
    return pending;
  }

  /** One streak of attempts of `attempt`, until it succeeds or a failure is fatal. */
  protected streak<T>(attempt: () => Promise<T>): Promise<T> {
    return withRetry(attempt, {
      retry: this.options.retry,
      signal: this.stopSignal,
      plan: (error) => this.plan(error),
      onRetry: (notice) => this.#onRetry(notice),
      logger: this.options.logger,
    });
  }

  #onRetry(notice: RetryNotice): void {
    const signal = retryingSignal(notice, this.options.logger, this.kind);
    if (signal) this.report(signal);
  }

  /** The loop: streaks of attempts until stopped. */
  protected abstract run(): Promise<void>;

  /** What a failure means for this source (side effects such as forgetting a lost subscription included). */
  protected abstract plan(error: unknown): FailurePlan;

  /** Called once by {@link stop}, right after the abort. */
  protected onStop(): void {}

  /** The error the subscriber sees for a fatal failure. */
  protected finalError(error: unknown): unknown {
    return error;
  }
}
