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

function grpcStatusFor(httpStatus: number): number {
  return GRPC_STATUS[httpStatus] ?? GRPC_UNKNOWN;
}

/** grpc-message is percent-encoded UTF-8 (the spec's "Percent-Encoded" rule). */
function grpcMessage(text: string): string {
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

/**
 * Where a gRPC answer stands in its length-prefixed messages (each a 5-byte header, a flag byte
 * and a 4-byte big-endian length, then that many bytes), counted on the chunks written to the
 * client as they pass: an answer cut at a message boundary can end with trailers carrying a
 * status; one cut inside a message cannot (runtime/exchange.ts's revoked() resets it instead).
 * Per chunk a few integer operations per message header it holds, and nothing copied or kept:
 * a message body is skipped by its length.
 */
export class GrpcFraming {
  /** Bytes of the current message's header read so far (0: none, at a boundary or in its body). */
  private headerRead = 0;
  /** The length field as read so far. */
  private length = 0;
  /** Bytes of the current message's body still to come. */
  private bodyLeft = 0;

  add(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      const left = this.bodyLeft;
      if (left > 0) {
        if (left >= n - i) {
          this.bodyLeft = left - (n - i);
          return;
        }
        this.bodyLeft = 0;
        i += left;
      } else if (this.headerRead === 0 && n - i >= 5) {
        // The whole header in this chunk (the usual case): the length, big-endian, unsigned.
        this.bodyLeft = chunk[i + 1] * 0x1000000 + ((chunk[i + 2] << 16) | (chunk[i + 3] << 8) | chunk[i + 4]);
        i += 5;
      } else {
        // A header split across chunks, a byte at a time: the flag byte, then the length's four.
        this.length = this.headerRead === 0 ? 0 : this.length * 256 + chunk[i];
        i++;
        if (++this.headerRead === 5) {
          this.headerRead = 0;
          this.bodyLeft = this.length;
        }
      }
    }
  }

  /** The client was given whole messages only. */
  get atMessageBoundary(): boolean {
    return this.headerRead === 0 && this.bodyLeft === 0;
  }
}
