/**
 * The part every scratch environment shares: its state file, a cleanup registered for
 * SIGINT/SIGTERM from the first moment, and a dispose that runs once (a normal end and an
 * interrupt may both ask) and releases everything newest first.
 */
import { registerCleanup } from '../platform/cleanup.js';
import { releaseAll, type ReleaseContext } from './releaseResource.js';
import type { ScratchTracker } from './scratchState.js';
import type { ScratchEnvironment, ScratchKind, ScratchResource } from './types.js';

export abstract class TrackedScratch implements ScratchEnvironment {
  abstract readonly kind: ScratchKind;
  description = '';
  disposeProblems: string[] = [];
  /** True when SIGINT/SIGTERM (the cleanup registry) tore the environment down. */
  interrupted = false;
  private disposing: Promise<void> | undefined;
  private readonly unregister: () => void;

  protected constructor(
    protected readonly tracker: ScratchTracker,
    onInterrupt?: () => void,
  ) {
    this.unregister = registerCleanup(`scratch environment ${tracker.id}`, () => {
      this.interrupted = true;
      onInterrupt?.();
      return this.dispose();
    });
  }

  get id(): string {
    return this.tracker.id;
  }

  /** Write a resource down before creating it. */
  protected track(resource: ScratchResource): Promise<void> {
    return this.tracker.add(resource);
  }

  /** How resources of type `database` are dropped (scratch databases on a configured server). */
  protected releaseContext(): ReleaseContext {
    return {};
  }

  /** Run provisioning; on any failure release what was made so far and rethrow. */
  protected async provision(steps: () => Promise<void>): Promise<void> {
    try {
      await steps();
      await this.tracker.annotate({ description: this.description });
    } catch (err) {
      await this.dispose();
      throw err;
    }
  }

  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      this.disposeProblems = await releaseAll(this.tracker.record.resources, this.releaseContext());
      // With problems the state file stays, so `lifeboat drill cleanup` can try again.
      if (this.disposeProblems.length === 0) await this.tracker.close();
      this.unregister();
    })();
    return this.disposing;
  }

  async keep(): Promise<void> {
    this.unregister();
    await this.tracker.annotate({ kept: true, description: this.description });
  }
}
