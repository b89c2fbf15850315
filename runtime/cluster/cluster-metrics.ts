// /metrics of `serve --workers N`: every ready worker's registries, asked over IPC, summed as
// prom-client's AggregatorRegistry sums them (counters and histograms added, each gauge by its
// aggregator), with the primary's own counters. Before session 13 the primary used prom-client's
// clusterMetrics(), which asked every connected worker: a replacement still starting answered
// nothing, so every scrape failed after 5 s until it was ready; and the counters of a worker that
// died left the sums, so a counter went down, which Prometheus reads as a reset (rate() then
// counts the whole remaining total again). Here a starting worker is not asked, a worker that does
// not answer in time counts with its last answer, and a worker that died keeps its counters and
// histograms, as last scraped, in the sums (its gauges go).
import { AggregatorRegistry, Counter, Registry } from 'prom-client';

export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export class ClusterMetrics {
  readonly registry = new Registry();
  /** Workers started again after one stopped (`exited`) or after one could not start (`start_failed`). */
  readonly restarts = new Counter({
    name: 'mtlsgate_worker_restarts_total',
    help: 'Workers the primary started to replace one that exited (cause="exited") or could not start (cause="start_failed")',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });
  /** Messages from a worker the primary dropped: malformed (runtime/cluster/ipc-check.ts), or a floor whose evidence does not verify (verify-taken.ts). */
  readonly refusedMessages = new Counter({
    name: 'mtlsgate_worker_messages_refused_total',
    help: 'Messages from a worker the primary dropped: malformed, or a bundle or CRL floor whose signature does not verify',
    registers: [this.registry],
  });
  private readonly lastAnswer = new Map<number, MetricsJson>();
  private departed: MetricsJson = [];
  private folding: Promise<void> = Promise.resolve();

  /** A worker exited: its counters and histograms as it last answered stay in the sums. */
  gone(worker: number): void {
    const last = this.lastAnswer.get(worker);
    this.lastAnswer.delete(worker);
    if (last === undefined) return;
    const kept = last.filter((m) => ['counter', 'histogram'].includes(String(m.type)));
    this.folding = this.folding.then(async () => {
      this.departed = await AggregatorRegistry.aggregate([this.departed, kept]).getMetricsAsJSON();
    });
  }

  /** The Prometheus text: `answers` per ready worker (undefined: it did not answer in time). */
  async text(answers: Array<{ worker: number; metrics: MetricsJson | undefined }>): Promise<string> {
    const parts: MetricsJson[] = [];
    for (const { worker, metrics } of answers) {
      if (metrics !== undefined) this.lastAnswer.set(worker, metrics);
      const last = this.lastAnswer.get(worker);
      if (last !== undefined) parts.push(last);
    }
    await this.folding;
    parts.push(this.departed, await this.registry.getMetricsAsJSON());
    return AggregatorRegistry.aggregate(parts).metrics();
  }
}
