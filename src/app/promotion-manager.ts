import type { SupernodeConfig, SupernodePolicy } from '../config/schema.js';
import type { NodeRole } from '../control/status.js';
import { PartylineError, errorMessage } from '../errors.js';
import { assess } from '../overlay/promotion/assessment.js';
import type { Assessment, BandwidthMeasurement, PromotionFacts, ReachbackResult } from '../overlay/promotion/assessment.js';
import type { CapabilitySource } from '../overlay/promotion/capabilities.js';
import { PromotionDecider } from '../overlay/promotion/hysteresis.js';
import type { PromotionDecisionStatus } from '../overlay/promotion/hysteresis.js';
import type { Logger } from '../system/logging.js';

/**
 * Supernode promotion on a running node (issue 8, DESIGN.md "Supernode
 * promotion"): every `checkIntervalS` it reads the machine's capabilities,
 * has a supernode reach it back and measure its bandwidth when those facts
 * are missing or stale, assesses, and lets the hysteresis decide; then it
 * promotes or demotes through the node's callbacks. One check at a time;
 * a failed promotion leaves the node ordinary and is retried at a later
 * check.
 *
 * The probe runs only when the cheap local checks pass (a public address,
 * uptime, memory, load), so a node behind NAT never asks a supernode for
 * anything. While promoted, the node's supernode side is itself the proof of
 * reachability (its peers link to it); it is not probed again, and the last
 * measurements count as current.
 */

export interface PromotionManagerOptions {
  settings: () => SupernodeConfig;
  log: Logger;
  capabilities: CapabilitySource;
  nat: () => PromotionFacts['nat'];
  uptimeS: () => number;
  /** The node was configured a supernode (`always` at start): its role cannot change at run time. */
  fixedSupernode: boolean;
  /** Reach-back and bandwidth probe through the current supernode (given up when `signal` aborts: stop); undefined when not attached. */
  probe: (signal: AbortSignal) => Promise<{ reachback: ReachbackResult; bandwidth: BandwidthMeasurement | null }> | undefined;
  promote: () => Promise<void>;
  demote: (reason: string) => Promise<void>;
  now?: () => number;
}

export interface PromotionManagerStatus extends PromotionDecisionStatus {
  reachback: ReachbackResult | null;
  bandwidth: BandwidthMeasurement | null;
}

const FIRST_CHECK_MS = 10_000;
/** After a failed or refused probe, the next one no sooner than this. */
const PROBE_RETRY_MS = 10 * 60_000;

export class PromotionManager {
  readonly #options: PromotionManagerOptions;
  readonly #decider: PromotionDecider;
  readonly #now: () => number;
  #policy: SupernodePolicy;
  #reachback: ReachbackResult | null = null;
  #bandwidth: BandwidthMeasurement | null = null;
  #probeFailedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #stopped = false;
  readonly #abort = new AbortController();

  constructor(options: PromotionManagerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const settings = options.settings();
    this.#policy = settings.policy;
    this.#decider = new PromotionDecider({
      policy: settings.policy,
      promoteAfterS: settings.promoteAfterS,
      demoteAfterS: settings.demoteAfterS,
      now: this.#now,
      role: options.fixedSupernode ? 'supernode' : 'ordinary',
    });
  }

  get role(): NodeRole {
    return this.#decider.role;
  }

  get policy(): SupernodePolicy {
    return this.#policy;
  }

  start(): void {
    const intervalMs = this.#options.settings().checkIntervalS * 1000;
    this.#schedule(Math.min(FIRST_CHECK_MS, intervalMs));
  }

  /** Stop checking; waits for a check under way. Does not demote (the node's stop() hands over). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    while (this.#checking) await this.#checking;
  }

  status(): PromotionManagerStatus {
    return { ...this.#decider.status(), policy: this.#policy, reachback: this.#reachback, bandwidth: this.#bandwidth };
  }

  /** The owner's choice at run time (`ctl promotion POLICY`); checks at once. Not written to the configuration file. */
  async setPolicy(policy: SupernodePolicy): Promise<PromotionManagerStatus> {
    if (this.#options.fixedSupernode && policy !== 'always') {
      throw new PartylineError('ERR_POLICY_FIXED', 'this node is a supernode by its configuration (supernode.policy: always); change the file and restart it to make it an ordinary node');
    }
    this.#policy = policy;
    this.#options.log.info({ policy }, 'promotion policy set');
    await this.checkNow();
    return this.status();
  }

  /** Run a check now (after one under way). */
  async checkNow(): Promise<void> {
    while (this.#checking) await this.#checking;
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    const run: Promise<void> = this.#check().finally(() => {
      if (this.#checking === run) this.#checking = undefined;
      if (!this.#stopped) this.#schedule(this.#options.settings().checkIntervalS * 1000);
    });
    this.#checking = run;
    await run;
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.checkNow(), ms);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    const log = this.#options.log;
    try {
      const settings = this.#options.settings();
      const capabilities = await this.#options.capabilities.read();
      const facts = (): PromotionFacts => ({
        policy: this.#policy,
        nat: this.#options.nat(),
        reachback: this.#reachback,
        bandwidth: this.#bandwidth,
        uptimeS: this.#options.uptimeS(),
        capabilities,
      });
      let assessment = assess(facts(), settings, this.#now());
      if (this.#policy === 'auto' && this.#decider.role === 'ordinary' && this.#needsProbe(assessment, settings)) {
        await this.#runProbe();
        assessment = assess(facts(), settings, this.#now());
      }
      if (this.#policy === 'auto' && this.#decider.role === 'supernode' && !this.#options.fixedSupernode) assessment = this.#asServing(facts(), settings);
      const action = this.#decider.update(assessment);
      if (action === 'promote') await this.#promote();
      if (action === 'demote') await this.#demote(assessment);
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'promotion check failed');
    }
  }

  /**
   * Probe when the local checks pass and a reach-back or bandwidth result
   * is missing or stale — not when it was measured and fell short (that
   * stands until it is stale: probes are rare by design). A failed or
   * refused probe waits PROBE_RETRY_MS.
   */
  #needsProbe(assessment: Assessment, settings: SupernodeConfig): boolean {
    const local = assessment.checks.filter((c) => c.name !== 'reachback' && c.name !== 'bandwidth');
    if (!local.every((c) => c.ok)) return false;
    const now = this.#now();
    const stale = (at: number | undefined, maxAgeS: number): boolean => at === undefined || now - at > maxAgeS * 1000;
    const wanted = stale(this.#reachback?.at, settings.reachbackMaxAgeS) || stale(this.#bandwidth?.at, settings.bandwidthMaxAgeS);
    return wanted && now - this.#probeFailedAt >= PROBE_RETRY_MS;
  }

  async #runProbe(): Promise<void> {
    const running = this.#options.probe(this.#abort.signal);
    if (!running) return;
    try {
      const { reachback, bandwidth } = await running;
      this.#reachback = reachback;
      if (bandwidth) this.#bandwidth = bandwidth;
      if (!reachback.tcp || !reachback.udp || !bandwidth) this.#probeFailedAt = this.#now();
    } catch (err) {
      this.#probeFailedAt = this.#now();
      this.#options.log.warn({ err: errorMessage(err) }, 'reach-back probe failed');
    }
  }

  /** A serving supernode is not probed: its last probe results count as fresh. */
  #asServing(facts: PromotionFacts, settings: SupernodeConfig): Assessment {
    const now = this.#now();
    const fresh: PromotionFacts = {
      ...facts,
      reachback: facts.reachback && { ...facts.reachback, at: now },
      bandwidth: facts.bandwidth && { ...facts.bandwidth, at: now },
    };
    return assess(fresh, settings, now);
  }

  async #promote(): Promise<void> {
    const log = this.#options.log;
    const started = this.#now();
    log.info({ reasons: this.#decider.status().reasons }, 'promoting this node to supernode');
    try {
      await this.#options.promote();
      log.info({ ms: this.#now() - started }, 'promoted: serving as a supernode');
    } catch (err) {
      this.#decider.setRole('ordinary');
      log.error({ err: errorMessage(err) }, 'promotion failed: staying an ordinary node');
    }
  }

  async #demote(assessment: Assessment): Promise<void> {
    const reason = assessment.reasons.join('; ');
    this.#options.log.info({ reasons: assessment.reasons }, 'demoting: handing over and stepping down');
    try {
      await this.#options.demote(reason);
    } catch (err) {
      this.#options.log.error({ err: errorMessage(err) }, 'demotion did not finish cleanly');
    }
  }
}
