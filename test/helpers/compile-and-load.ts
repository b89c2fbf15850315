// compileDir as the tests call it: every bundle a test compiles is also loaded the way `serve`
// loads one (verifier, then the runtime's snapshot builder), so a config that compiles but
// that the gateway would refuse fails the test that compiled it. (The promise: nothing
// `mtlsgate compile` accepts is refused by `mtlsgate serve`; bundle/checks.ts holds the rules.)
import { compileDir as compile, type CompileOptions, type CompileResult } from '../../compiler/index.ts';
import { loadBundle } from '../../bundle/read.ts';
import { buildSnapshot } from '../../runtime/snapshot.ts';

export async function compileDir(dir: string, opts?: CompileOptions): Promise<CompileResult> {
  const result = await compile(dir, opts);
  if (result.bundle !== null) {
    try {
      buildSnapshot(loadBundle(result.bundle));
    } catch (err) {
      throw new Error(`${dir} compiles, but serve would refuse the bundle: ${(err as Error).message}`);
    }
  }
  return result;
}
