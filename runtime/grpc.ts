// gRPC-native refusals, as Envoy and Kong answer them: a gRPC client reads the outcome of a
// call from the grpc-status trailer, not from the HTTP status, so a refusal of a request whose
// content-type is application/grpc is an HTTP 200 "trailers-only" response carrying
// grpc-status and grpc-message (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md).
import type { Http2ServerResponse } from 'node:http2';
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
/**
 * Refusals whose gRPC status is not their HTTP status's: a quota refusal is HTTP 403, but for
 * gRPC it is RESOURCE_EXHAUSTED, gRPC's own example ("perhaps a per-user quota"), as a rate limit is.
 */
const GRPC_STATUS_OF_CODE: Partial<Record<ErrorCode, number>> = { 'limit.quota': 8 };

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

/** The fields that end a call refused with `code`: grpc-status, grpc-message, x-mtlsgate-code. */
function grpcErrorFields(code: ErrorCode, message?: string): Record<string, string> {
  return {
    'grpc-status': String(GRPC_STATUS_OF_CODE[code] ?? grpcStatusFor(errorStatus(code))),
    'grpc-message': grpcMessage(message ?? errorMessage(code)),
    'x-mtlsgate-code': code,
  };
}

/** Ends `res` as a trailers-only gRPC response for the refusal `code`. */
export function sendGrpcError(res: ErrorResponse, code: ErrorCode, message?: string, headers?: Record<string, string>): void {
  if (res.headersSent || (res as { destroyed?: boolean }).destroyed === true) return;
  if (headers !== undefined) for (const name in headers) res.setHeader(name, headers[name]);
  res.statusCode = 200;
  res.setHeader('content-type', 'application/grpc');
  const fields = grpcErrorFields(code, message);
  for (const name in fields) res.setHeader(name, fields[name]);
  res.end();
}

/**
 * Ends a call whose answer already started (status and headers sent, messages perhaps) with the
 * refusal `code` in its trailers: the client reads the call's outcome from them.
 */
export function endGrpcWithError(res: Http2ServerResponse, code: ErrorCode, message?: string): void {
  res.addTrailers(grpcErrorFields(code, message));
  res.end();
}
