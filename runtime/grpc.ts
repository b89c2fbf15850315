// gRPC-native refusals, as Envoy and Kong answer them: a gRPC client reads the outcome of a
// call from the grpc-status trailer, not from the HTTP status, so a refusal of a request whose
// content-type is application/grpc is an HTTP 200 "trailers-only" response carrying
// grpc-status and grpc-message (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md).
import type { ErrorCode, ErrorResponse } from './errors.ts';
import { errorMessage, errorStatus } from './errors.ts';

/** gRPC status codes for the HTTP statuses the gateway refuses with. */
const GRPC_STATUS: Record<number, number> = {
  400: 3, // INVALID_ARGUMENT
  401: 16, // UNAUTHENTICATED
  403: 7, // PERMISSION_DENIED
  404: 12, // UNIMPLEMENTED
  429: 8, // RESOURCE_EXHAUSTED
  502: 14, // UNAVAILABLE
  503: 14, // UNAVAILABLE
  504: 14, // UNAVAILABLE
};
const GRPC_UNKNOWN = 2;

/** Is this request a gRPC call (content-type application/grpc, with or without +proto etc.)? */
export function isGrpc(contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && contentType.startsWith('application/grpc');
}

export function grpcStatusFor(httpStatus: number): number {
  return GRPC_STATUS[httpStatus] ?? GRPC_UNKNOWN;
}

/** grpc-message is percent-encoded UTF-8 (the spec's "Percent-Encoded" rule). */
export function grpcMessage(text: string): string {
  return encodeURIComponent(text).replace(/%20/g, ' ');
}

/** Ends `res` as a trailers-only gRPC response for the refusal `code`. */
export function sendGrpcError(res: ErrorResponse, code: ErrorCode, message?: string, headers?: Record<string, string>): void {
  if (res.headersSent || (res as { destroyed?: boolean }).destroyed === true) return;
  if (headers !== undefined) for (const name in headers) res.setHeader(name, headers[name]);
  res.statusCode = 200;
  res.setHeader('content-type', 'application/grpc');
  res.setHeader('grpc-status', String(grpcStatusFor(errorStatus(code))));
  res.setHeader('grpc-message', grpcMessage(message ?? errorMessage(code)));
  res.setHeader('x-mtlsgate-code', code);
  res.end();
}
