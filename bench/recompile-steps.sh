#!/bin/bash
# The `compile --cache` steps at scale, each timed and compared by SHA-256 with an uncached compile:
# cold (primes the cache), warm, a key added (keys-003.yaml), a certificate swapped (keys-005.yaml's
# first key pointed at a new file), a certificate rewritten under an unchanged key file (the witness
# check finds it). Every edited file is restored at the end.
#
#   bash bench/recompile-steps.sh WORKDIR [DIST]
#
# WORKDIR/config must be a COPY of a generated config (`cp -al
# bench/.work/compile/config-1000-1000000 WORKDIR/config`): edits are written beside a file and
# renamed over it, so the hard-linked original is never changed. DIST defaults to ./dist.
# NOCOLD=1 keeps an already primed cache; NOREF=1 skips the uncached reference compiles.
# SHARDS=N|auto writes every step as a sharded bundle into WORKDIR/out-shards (the reference into
# WORKDIR/ref-shards-STEP) and compares the manifest and every shard file it names.
set -u
W=$(realpath "$1"); D=$(realpath "${2:-dist}")
T=$W/orig; C=$W/cache
cd "$W" || exit 1
mkdir -p "$T"
run() { # LABEL ARGS...: one compile under GNU time (peak = the process's max RSS, worker threads included)
  local label=$1; shift
  uptime | sed "s/^/[$label] /"
  /usr/bin/time -f "[$label] wall %e s cpu %U+%S s peak %M KiB" node "$D/mtlsgate.mjs" compile "$W/config" "$@" --timings 2>&1 | grep -v '^$' | sed "s/^/[$label] /"
}
replace() { cat > "$1.tmp-$$" && mv "$1.tmp-$$" "$1"; }
newcert() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj "/CN=$1" -days 365 -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=clientAuth 2>/dev/null; }
# out STEP / ref STEP: the -o arguments of a step's cached compile and of its uncached reference.
out() { if [ -n "${SHARDS:-}" ]; then echo "-o $W/out-shards --shards $SHARDS"; else echo "-o $W/out-$1.json"; fi; }
ref() { if [ -n "${SHARDS:-}" ]; then rm -rf "$W/ref-shards-$1"; echo "-o $W/ref-shards-$1 --shards $SHARDS"; else echo "-o $W/ref-$1.json"; fi; }
same() { # STEP: the step's output compared with its reference
  if [ -z "${SHARDS:-}" ]; then
    sha256sum "out-$1.json" "ref-$1.json"; cmp -s "out-$1.json" "ref-$1.json" && echo "[$1] same bytes as uncached" || echo "[$1] DIFFERENT BYTES"; return
  fi
  local bad=0 n=0
  sha256sum out-shards/manifest.json "ref-shards-$1/manifest.json"
  cmp -s out-shards/manifest.json "ref-shards-$1/manifest.json" || bad=1
  for f in "ref-shards-$1"/shards/*.json; do n=$((n + 1)); cmp -s "$f" "out-shards/shards/$(basename "$f")" || bad=1; done
  [ $bad = 0 ] && echo "[$1] same manifest and $n shard files as uncached" || echo "[$1] DIFFERENT BYTES"
}
K3=config/keys/keys-003.yaml; K5=config/keys/keys-005.yaml; P7=config/certs/007/key-007001.pem
FIRST5=$(grep -m1 -o 'certificate: [^ ]*' "$K5" | cut -d' ' -f2)
for f in "$K3" "$K5" "$P7"; do [ -f "$T/$(basename "$f")" ] || cp "$f" "$T/$(basename "$f")"; done
[ -n "${NOCOLD:-}" ] || { rm -rf "$C"; run cold $(out cold) --cache "$C"; }
run warm $(out warm) --cache "$C"
newcert steps-added | replace config/certs/steps-added.pem
{ cat "$T/keys-003.yaml"; printf -- '---\nkind: key\nid: key-steps-added\ncertificate: ../certs/steps-added.pem\napply_policies: [policy-001]\n'; } | replace "$K3"
run added $(out added) --cache "$C"
[ -n "${NOREF:-}" ] || { run added-uncached $(ref added); same added; }
replace "$K3" < "$T/keys-003.yaml"
newcert steps-swap | replace config/certs/steps-swap.pem
sed "s#certificate: $FIRST5#certificate: ../certs/steps-swap.pem#" "$T/keys-005.yaml" | replace "$K5"
run swap $(out swap) --cache "$C"
[ -n "${NOREF:-}" ] || { run swap-uncached $(ref swap); same swap; }
replace "$K5" < "$T/keys-005.yaml"
newcert steps-rotated | replace "$P7"
run rotated $(out rotated) --cache "$C"
[ -n "${NOREF:-}" ] || { run rotated-uncached $(ref rotated); same rotated; }
replace "$P7" < "$T/key-007001.pem"
rm -f config/certs/steps-added.pem config/certs/steps-swap.pem
cmp -s "$K3" "$T/keys-003.yaml" && cmp -s "$K5" "$T/keys-005.yaml" && cmp -s "$P7" "$T/key-007001.pem" && echo "edited files restored"
