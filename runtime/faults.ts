// Faults the gateway survives (a bug in one request's path, a failing log sink): the request
// concerned fails alone, and the fault is reported as a process warning, once per distinct
// message so a fault repeated on every request does not flood stderr.
const reported = new Set<string>();

export function reportFault(where: string, err: unknown): void {
  const message = `${where}: ${err instanceof Error ? err.message : String(err)}`;
  if (reported.has(message)) return;
  reported.add(message);
  process.emitWarning(message, 'MtlsgateGatewayFault');
}
