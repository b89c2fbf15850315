// What the key lookup of one "My keys" view costs with N portal key files in DIR/keys/portal
// (portal/routes-keys.ts), and what reading them all at start costs. Not part of `npm test`.
//
//   node --import tsx bench/portal-list.ts [--files 10000] [--owners 1000] [--views 20] [--root DIR]
//
// --root: the checkout measured (default: this one). First, what a page asks of a fresh index
// while it reads every file (right after a start), each on its own fresh index: one "My keys"
// view; four views of four developers at once (since session 17 they share one read of the
// files; before, each read every file not read yet); the admin page's lists; the count of a
// key request (the cap). The timing covers the index only, not the page's rendering. "start": the index reads every file once;
// "longest hold" is the longest the event loop was held meanwhile (a 1 ms timer's worst lateness):
// the portal answers no one for that long. Session 11's index read them before the portal
// listened, in one go; this one reads them in the background, in slices. Then each view looks
// for changes and returns the owner's keys; between views one file of another owner is
// rewritten in place (as a hand edit or another portal process would), so each view parses one
// file. Session 11's index stats every file per view; this one reads what the directory watch
// named. A checkout without an index (before session 11) reads and parses every file at every
// view (`listPortalKeys`). Timed: the key lookup only; the page's rendering is the same either way.
import type { PortalKey } from '../portal/key-file.ts';
import { portalKeyDir, portalKeyFlags } from './lib/portal-keys.ts';

const { files, owners, values, portalModule } = portalKeyFlags({ views: '20' });
const views = Number(values.views);
const keyDir = await portalKeyDir('mtlsgate-portal-list-', files, owners);

/** Session 11's index (sync, `refresh`) or this one (`load`, async queries). */
interface AnyIndex {
  load?(): Promise<void>;
  refresh?(): void;
  ownedBy(owner: string): PortalKey[] | Promise<PortalKey[]>;
  forAdmin?(asked: number, pageSize: number, recent: number): Promise<unknown>;
  count?(owner: string): Promise<number>;
  close?(): void;
  work?: { stats: number; parses: number };
}

try {
  const viewer = 'dev-7';
  let ownedBy: (owner: string) => PortalKey[] | Promise<PortalKey[]>;
  let start = '';
  let index: AnyIndex | undefined;
  let kind: string;
  const indexModule = (await import(portalModule('key-index.ts')).catch(() => null)) as { PortalKeyIndex: new (dir: string) => AnyIndex } | null;
  // "My keys" asked right after a start, while a fresh index still reads every file: since
  // session 16 the viewer's files are found without parsing the others (scanFor); before, the
  // page answered 503 "loading" until the whole read was done, which this times instead.
  let duringRead = '';
  /** `ask` of a fresh index as its read starts: how long it took, and when the whole read was done. */
  const askDuringRead = async (ask: (early: AnyIndex) => Promise<unknown>) => {
    const early = new indexModule!.PortalKeyIndex(keyDir.dir);
    const reading = early.load?.();
    const t0 = performance.now();
    await ask(early);
    const answered = performance.now() - t0;
    const work = early.work === undefined ? '' : `, ${early.work.stats} files stat'ed and ${early.work.parses} parsed by then`;
    await reading;
    early.close?.();
    return `${answered.toFixed(0)} ms (read done after ${(performance.now() - t0).toFixed(0)} ms${work})`;
  };
  if (indexModule?.PortalKeyIndex.prototype.load !== undefined) {
    duringRead =
      `during the start's read: first "My keys" view ${await askDuringRead((early) => Promise.resolve(early.ownedBy(viewer)))}, ` +
      `four views at once ${await askDuringRead((early) => Promise.all(['dev-7', 'dev-8', 'dev-9', 'dev-10'].map((o) => early.ownedBy(o))))}, ` +
      `the admin page's lists ${await askDuringRead((early) => early.forAdmin!(0, 200, 50))}, ` +
      `a key request's count ${await askDuringRead((early) => early.count!('new-dev'))}; `;
  }
  if (indexModule !== null) {
    index = new indexModule.PortalKeyIndex(keyDir.dir);
    let longestHold = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      longestHold = Math.max(longestHold, now - last - 1);
      last = now;
    }, 1);
    const t0 = performance.now();
    if (index.load) await index.load();
    else index.refresh!();
    const startMs = performance.now() - t0;
    longestHold = Math.max(longestHold, performance.now() - last - 1);
    clearInterval(ticker);
    start = `start ${startMs.toFixed(0)} ms once (longest hold of the event loop ${longestHold.toFixed(0)} ms); `;
    ownedBy = (owner) => index!.ownedBy(owner);
    kind = index.load ? 'PortalKeyIndex (reads what the directory watch names)' : 'PortalKeyIndex (listing + a stat per file, parses changed files)';
  } else {
    const { listPortalKeys } = (await import(portalModule('key-file.ts'))) as typeof import('../portal/key-file.ts');
    ownedBy = (owner) => listPortalKeys(keyDir.dir).filter((k) => k.owner === owner);
    kind = 'listPortalKeys (reads and parses every file per view)';
  }
  const statsBefore = index?.work?.stats ?? 0;
  const perView: number[] = [];
  for (let v = 0; v < views; v++) {
    // Another owner's file changes between views (the index parses it again).
    keyDir.writeKey(v, `dev-${v % owners}`, new Date(Date.UTC(2026, 0, 1) + v * 1000 + 1));
    const t0 = process.hrtime.bigint();
    const keys = await ownedBy(viewer);
    perView.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const expected = Math.floor((files - 1 - 7) / owners) + 1;
    if (keys.length !== expected) throw new Error(`${viewer} has ${keys.length} keys, expected ${expected}`);
  }
  perView.sort((a, b) => a - b);
  const stats = index?.work === undefined ? '' : `, ${((index.work.stats - statsBefore) / views).toFixed(1)} files stat'ed per view`;
  console.log(
    `${kind}: ${files} key files, ${owners} owners: ${duringRead}${start}` +
      `per "My keys" view median ${perView[perView.length >> 1]!.toFixed(1)} ms, max ${perView[perView.length - 1]!.toFixed(1)} ms (${views} views${stats})`,
  );
} finally {
  keyDir.cleanup();
}
