// ioredis, loaded when a Redis limiter is first opened (`serve --redis`), not when the gateway
// starts. Loading it costs every request of a gateway that never talks to Redis: its RESP3
// decoder declares `class VerbatimString extends String`, and once String.prototype has a
// subclass V8's optimising compiler no longer folds a method load on a string (`s.charCodeAt`)
// into a constant: each becomes a generic property lookup (LoadIC), ~5,000 instructions per
// keep-alive request in the gateway's host, path and log-line loops (bench/keepalive-callgrind.sh).
//
// Plain CommonJS on purpose (types: redis-driver.d.cts). An ES module loads a package
// synchronously only through createRequire, which the bundler leaves to run time, while a
// CommonJS require() it bundles and defers to the first call (dist/mtlsgate.mjs stays
// self-contained, createLimiter stays synchronous). Not TypeScript: tsx would run a .cts file
// through the ES loader, whose require() cannot load ioredis's JSON command table.
'use strict';

exports.redisDriver = () => require('ioredis');
