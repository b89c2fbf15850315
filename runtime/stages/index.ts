// The request path, in order. Each entry is one file of this folder; adding a check is one
// file and one line here (docs/request-path.md). What follows the last stage is the transport's
// proxy step (runtime/http1.ts -> runtime/proxy.ts).
import { accessStage } from './access.ts';
import { authenticateStage } from './authenticate.ts';
import { keyStateStage } from './key-state.ts';
import { limitsStage } from './limits.ts';
import { revocationStage } from './revocation.ts';
import { routeStage } from './route.ts';
import type { Stage } from './stage.ts';
import { staticMtlsStage } from './static-mtls.ts';

export const STAGES: readonly Stage[] = [routeStage, revocationStage, staticMtlsStage, authenticateStage, keyStateStage, accessStage, limitsStage];
