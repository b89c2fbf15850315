// The cap on keys per developer (`portal --developer-key-limit N|off`). The submission limiter
// bounds how fast a developer adds keys (30 an hour); this bounds how many they hold, so one
// account cannot grow the config directory and the bundle every gateway loads without end.
// Every portal key file counts, whatever its state: awaiting approval, active, switched off or
// expired, because each stays in the directory and the bundle until the platform team removes
// it; not counting them would let a developer switch off (or let expire, with a short-lived
// certificate of their own) and ask again, without end. A state change therefore never moves
// a count; only a file written or removed does.
//
// The count is kept in memory, in the portal's index of its key files (PortalKeyIndex,
// portal/key-index.ts, which the "My keys" and admin pages read too): every portal key file is
// read once, in the background after the portal starts (a new key meanwhile waits for every
// file's text, then counts exactly from the texts that may be the developer's); after
// that a new key reads again only the files a watch on DIR/keys/portal named since the last
// look (written by another portal process, or by hand). A file removed (a denied key, a file an
// admin deleted) frees its place at once. The issuer asks and writes
// under the directory lock, so two requests (this portal's, or another portal process's)
// cannot both take the last place.
export const DEFAULT_DEVELOPER_KEY_LIMIT = 20;

/** The refusal's text, naming the count and the cap; null while the developer is under it. */
export function keyLimitProblem(held: number, limit: number | null): string | null {
  if (limit === null || held < limit) return null;
  return (
    `You have ${held} ${held === 1 ? 'key' : 'keys'} in this portal, and it issues at most ${limit} to one developer. ` +
    'Keys that are switched off, expired or awaiting approval count too, until the platform team removes them: ask them to remove one you no longer use.'
  );
}
