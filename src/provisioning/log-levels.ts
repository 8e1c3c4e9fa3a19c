/**
 * The `log-level` command: change the level of every component's logger,
 * or of one component's, while the node runs.
 *
 * Components take child loggers at start (componentLogger), each with its
 * own level, so changing the root's level alone would not reach them. This
 * keeps a weak list of the children the root hands out (pino's `onChild`
 * hook, inherited by grandchildren) and sets the level on them; children
 * made later (a node restarted by provisioning) get the chosen level too.
 */
import type { Logger } from '../system/logging.js';
import { LOG_LEVELS } from '../config/schema.js';
import type { LogLevel } from '../config/schema.js';

export class LogLevels {
  readonly #root: Logger;
  readonly #children = new Set<WeakRef<Logger>>();
  /** Levels set by command: '' = every component. */
  readonly #overrides = new Map<string, LogLevel>();

  constructor(root: Logger) {
    this.#root = root;
    root.onChild = (child: Logger) => {
      this.#children.add(new WeakRef(child));
      // componentLogger sets the configured level right after creating the child: apply the override after it.
      if (this.#overrides.size > 0) queueMicrotask(() => this.#apply(child));
    };
  }

  /** Set the level of `component` (or of everything). Returns what is in force now. */
  set(level: LogLevel, component?: string): { level: LogLevel; component: string | null; loggers: number } {
    if (component === undefined) {
      this.#overrides.clear();
      this.#root.level = level;
    }
    this.#overrides.set(component ?? '', level);
    let loggers = 0;
    for (const ref of this.#children) {
      const child = ref.deref();
      if (!child) {
        this.#children.delete(ref);
        continue;
      }
      if (this.#apply(child)) loggers++;
    }
    return { level, component: component ?? null, loggers };
  }

  static isLevel(value: unknown): value is LogLevel {
    return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
  }

  #apply(child: Logger): boolean {
    const component = child.bindings().component;
    const level = (typeof component === 'string' ? this.#overrides.get(component) : undefined) ?? this.#overrides.get('');
    if (level === undefined) return false;
    child.level = level;
    return true;
  }
}
