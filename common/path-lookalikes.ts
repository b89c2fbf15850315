// What an escaped code point in a path is to a reader that folds Unicode compatibility forms
// (NFKC) or converts the path to a Windows code page with "best fit" (sections 37 and 40 of
// docs/security.md): runtime/route.ts refuses a look-alike of punctuation wherever it stands,
// and a letter when the path as such a reader sees it names a more specific API.

/** Hex digit value, or -1. */
export function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/**
 * What an escaped code point is to a reader that folds Unicode compatibility forms (NFKC:
 * Python's and .NET's normalisers, IDNA, some frameworks' path matching) or converts the path
 * to a Windows code page with "best fit" (IIS and Win32 file APIs without the W suffix):
 * unchanged, letters or digits ("ａ", "Ⅻ", "ﬁ": only routing can differ), or a look-alike of
 * punctuation, space or a control ("／", "．", "＼", "％", U+00A0) that makes another path.
 */
const KEEP = 0;
const FOLDS = 1;
const LOOKALIKE = 2;
/**
 * Best-fit mappings to a character that changes a path ("/", "\\", ".", "%", "?", "#", ";", ":",
 * space, tab, CR, LF) that NFKC does not make: U+00A5 (yen) is "\\" in code page 932, U+20A9
 * (won) in 949; U+2215, U+2044 are "/", U+2216, U+29F5 "\\" (Orange Tsai, "WorstFit", 2025).
 * Section 45 checked every WCTABLE entry of Microsoft's best-fit tables for the 15 ANSI code
 * pages (unicode.org MAPPINGS/VENDORS/MICSFT/WindowsBestFit): U+00BF "¿" is "?" in 932 and 950,
 * U+0589 and U+2236 ":" (an NTFS stream: "web.config::$DATA") and U+066A "%" in 1250, 1252 and
 * 1254, and code page 874 maps the glyphs of code page 437's controls back to them: U+25CB is a
 * tab, U+25D9 LF, U+266A CR. Every other such mapping is NFKC's too.
 */
const BEST_FIT_LOOKALIKES = new Set([0x00a5, 0x20a9, 0x2215, 0x2044, 0x2216, 0x29f5, 0x00bf, 0x0589, 0x2236, 0x066a, 0x25cb, 0x25d9, 0x266a]);
/**
 * Best fit to letters (section 40). Windows' best-fit tables map a letter with a diacritic that
 * the code page lacks to its base letter ("ā" U+0101 is "a" in code page 1252, "é" is "e" in
 * 1251), which NFKC does not: those are found by decomposing (NFD) and dropping the marks. These
 * letters have no decomposition and are mapped all the same: dotless i, and the letters with a
 * stroke or bar.
 */
const BEST_FIT_LETTERS = new Map<number, string>([
  [0x0131, 'i'],
  [0x0110, 'D'],
  [0x0111, 'd'],
  [0x0126, 'H'],
  [0x0127, 'h'],
  [0x0141, 'L'],
  [0x0142, 'l'],
  [0x0166, 'T'],
  [0x0167, 't'],
  [0x0180, 'b'],
  [0x0197, 'I'],
  [0x019a, 'l'],
  [0x01b6, 'z'],
  [0x01e4, 'G'],
  [0x01e5, 'g'],
]);
/** compatClass by code point: NFKC of one character costs ~0.3 µs; a path's code points repeat. Cleared when full. */
const compatMemo = new Map<number, number>();
/** For a code point whose class is FOLDS: the ASCII a folding reader reads for it. Cleared with compatMemo. */
const foldedText = new Map<number, string>();

function compatClass(cp: number): number {
  let k = compatMemo.get(cp);
  if (k !== undefined) return k;
  k = KEEP;
  let text = '';
  // C1 controls (U+0085 ends a line to some readers, .NET trims it) and the line and paragraph separators.
  if (cp <= 0x9f || cp === 0x2028 || cp === 0x2029 || BEST_FIT_LOOKALIKES.has(cp)) k = LOOKALIKE;
  else {
    const ch = String.fromCodePoint(cp);
    text = ch.normalize('NFKC');
    for (let i = 0; i < text.length && k !== LOOKALIKE; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x80) k = isLetterOrDigit(c) || c === 45 || c === 95 || c === 126 ? FOLDS : LOOKALIKE;
    }
    if (k === KEEP) {
      // Not folded to ASCII by NFKC: a best-fit letter, or a letter and its marks.
      text = BEST_FIT_LETTERS.get(cp) ?? ch.normalize('NFD').replace(/\p{M}+/gu, '');
      if (text.length === 1 && isLetterOrDigit(text.charCodeAt(0))) k = FOLDS;
    }
  }
  if (compatMemo.size >= 4096) {
    compatMemo.clear();
    foldedText.clear();
  }
  compatMemo.set(cp, k);
  if (k === FOLDS) foldedText.set(cp, text);
  return k;
}

/** A look-alike of punctuation, space or a control: refused wherever it stands. */
export function isLookalike(cp: number): boolean {
  return compatClass(cp) === LOOKALIKE;
}

function isLetterOrDigit(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 122);
}

/** The byte of the escape "%XX" at `at`. */
function escapedByte(path: string, at: number): number {
  return hexValue(path.charCodeAt(at + 1)) * 16 + hexValue(path.charCodeAt(at + 2));
}

/**
 * The normalised path as a compatibility-folding reader sees it, lower-cased: null when no
 * escaped code point folds. The escapes are well-formed UTF-8 with upper-case hex and no
 * look-alike (normalisePath checked them).
 */
export function compatibilityFolded(path: string): string | null {
  let out: string | null = null;
  let copied = 0;
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i)) {
    const lead = escapedByte(path, i);
    if (lead < 0xc0) {
      i += 3;
      continue;
    }
    const n = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    let cp = lead & (0x7f >> n);
    for (let j = 1; j < n; j++) cp = (cp << 6) | (escapedByte(path, i + 3 * j) & 0x3f);
    if (compatClass(cp) === FOLDS) {
      out = (out ?? '') + path.slice(copied, i) + encodeURIComponent(foldedText.get(cp)!);
      copied = i + 3 * n;
    }
    i += 3 * n;
  }
  return out === null ? null : (out + path.slice(copied)).toLowerCase();
}
