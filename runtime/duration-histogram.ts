// A Prometheus histogram with one label whose observations are plain additions: a bucket
// index found by a loop over the bounds, a count and a sum per label value. prom-client's
// Histogram does the same arithmetic, but each observe() through a labelled child also builds
// a labels object, validates it and hashes it into a string key (~1.5-2 µs a request on the
// gateway's keep-alive path). This one hands prom-client's Registry the very values prom-client's
// Histogram would (same names, label order, cumulative buckets, +Inf, _sum, _count), so the
// exposition text and the JSON `serve --workers` aggregates are unchanged
// (test/metrics-duration-histogram.test.ts compares the two).
import type { Aggregator, Histogram, Registry } from 'prom-client';

interface Tally {
  readonly label: string;
  /** Observations per bucket (not cumulative); an observation above the last bound is in none. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

interface Value {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

export class DurationHistogram {
  /** The exposition's TYPE (prom-client's own typings call it an enum; at run time it is this string). */
  readonly type = 'histogram';
  readonly aggregator: Aggregator = 'sum';
  private readonly tallies = new Map<string, Tally>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    /** Upper bounds, ascending (seconds). */
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    // The Registry asks only for name, get(), reset() (and getForPromString when present).
    registry.registerMetric(this as unknown as Histogram);
  }

  /** The tally of one label value: look it up once, observe into it on every request. */
  tally(label: string): Tally {
    let t = this.tallies.get(label);
    if (t === undefined) {
      t = { label, counts: new Float64Array(this.bounds.length), sum: 0, count: 0 };
      this.tallies.set(label, t);
    }
    return t;
  }

  observe(t: Tally, value: number): void {
    if (!Number.isFinite(value)) return; // never from a clock difference; prom-client would throw
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]) {
        t.counts[i]++;
        break;
      }
    }
    t.sum += value;
    t.count++;
  }

  /**
   * Zeroes every tally in place: GatewayMetrics holds each API's tally from its first request
   * on, so dropping them would leave its later observations in tallies no scrape reads.
   */
  reset(): void {
    for (const t of this.tallies.values()) {
      t.counts.fill(0);
      t.sum = 0;
      t.count = 0;
    }
  }

  /** What prom-client's Histogram.get() returns for the same observations. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: Aggregator; values: Value[] }> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const t of this.tallies.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += t.counts[i];
        values.push({ value: acc, labels: { le: this.bounds[i], [this.labelName]: t.label }, metricName: bucket });
      }
      values.push({ value: t.count, labels: { le: '+Inf', [this.labelName]: t.label }, metricName: bucket });
      values.push({ value: t.sum, labels: { [this.labelName]: t.label }, metricName: `${this.name}_sum` });
      values.push({ value: t.count, labels: { [this.labelName]: t.label }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
