// The YAML files: one document per file, under apis/, policies/ and keys/, each headed by where
// it came from. A key that cannot be activated is written commented out, with the reason, so the
// file keeps its rights and policies for whoever issues the new token.
import { stringify } from 'yaml';
import type { Imported } from './context.ts';

export interface OutFile {
  /** Relative to the output directory, with "/". */
  path: string;
  text: string;
}

function render(dir: string, item: Imported<{ id: string }>): OutFile {
  const header = [`# Imported from Tyk by \`mtlsgate import tyk\`: ${item.origin}`, `# Source: ${item.file}#${item.pointer}`];
  let body = stringify(item.spec, { lineWidth: 0 });
  if (item.disabledBecause !== undefined) {
    header.push(`# NOT ACTIVE: ${item.disabledBecause}.`, '# Uncomment the document once it has a token_sha256 (or a certificate).');
    body = body
      .trimEnd()
      .split('\n')
      .map((l) => `# ${l}`)
      .join('\n')
      .concat('\n');
  }
  return { path: `${dir}/${item.spec.id}.yaml`, text: `${header.join('\n')}\n${body}` };
}

export function renderAll(apis: Imported<{ id: string }>[], policies: Imported<{ id: string }>[], keys: Imported<{ id: string }>[]): OutFile[] {
  return [...apis.map((a) => render('apis', a)), ...policies.map((p) => render('policies', p)), ...keys.map((k) => render('keys', k))];
}
