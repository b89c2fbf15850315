// The Markdown the bench report is written in: a table, and the number formats every section uses.
export const pct = (x: number | null | undefined) => (x === null || x === undefined ? '?' : `${Math.round(x * 100)}%`);
export const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
export const r2 = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(2));

export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A report section: its heading, paragraphs and tables, one a line, then a blank line. */
export function section(...parts: string[]): string {
  return [...parts, ''].join('\n');
}
