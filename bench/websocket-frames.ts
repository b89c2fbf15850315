// The cost of following WebSocket frame headers in a tunnel (runtime/websocket-frames.ts,
// docs/security.md section 57): passes over 64 KiB of frames in 16 KiB chunks, best of 5.
//   node --import tsx bench/websocket-frames.ts
import { FrameBoundaries } from '../runtime/websocket-frames.ts';
function frames(payload: number, count: number, masked: boolean): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const len7 = payload < 126 ? payload : payload < 65536 ? 126 : 127;
    const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const h = Buffer.alloc(2 + ext + (masked ? 4 : 0));
    h[0] = 0x82;
    h[1] = (masked ? 0x80 : 0) | len7;
    if (len7 === 126) h.writeUInt16BE(payload, 2);
    else if (len7 === 127) h.writeUInt32BE(payload, 6);
    parts.push(h, Buffer.alloc(payload));
  }
  return Buffer.concat(parts);
}
for (const [what, buf] of [
  ['one 64 KiB frame', frames(65536, 1, false)],
  ['1,000 frames of 50 B (masked)', frames(50, 1000, true)],
  ['64 KiB of 16 KiB frames', frames(16384, 4, false)],
] as const) {
  const f = new FrameBoundaries();
  // chunks of 16 KiB as a socket delivers them
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += 16384) chunks.push(buf.subarray(i, i + 16384));
  let best = Infinity;
  for (let run = 0; run < 5; run++) {
    const n = 20000;
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) for (const c of chunks) f.follow(c);
    const ns = Number(process.hrtime.bigint() - t) / n;
    best = Math.min(best, ns);
  }
  console.log(
    `${what}: ${buf.length} bytes in ${chunks.length} chunks: ${best.toFixed(0)} ns per pass, ${(buf.length / best).toFixed(2)} GB/s; boundary ${f.atBoundary}`,
  );
}
