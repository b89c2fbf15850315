// What `mtlsgate who` answers (access/who.ts): one row per identity that gets through, and notes
// for the grants the stages refused or could not check.

export interface WhoRow {
  kind: 'anyone' | 'certificate' | 'ca' | 'match' | 'key';
  /** Key id, CA subject, or "" */
  id: string;
  fingerprints: string[];
  subject: string | null;
  expires: string | null;
  /** How it gets through: "its certificate", "token", "token + its certificate", ... */
  how: string;
  policies: string[];
  /**
   * false: listed from the bundle alone, its certificate not given (--certs DIR), so the checks
   * that need the certificate itself did not run (access/who-unchecked.ts says what did).
   */
  checked: boolean;
}

export interface WhoAnswer {
  api: string;
  method: string;
  path: string;
  rows: WhoRow[];
  /** Grants not put to the stages (certificate not given) and certificates the stages refused. */
  notes: string[];
}

/** A fingerprint as rows and notes show it: its first 16 hex digits. */
export const shortFingerprint = (fp: string): string => `sha256:${fp.slice(0, 16)}…`;
