#!/bin/bash
# Rounds of smtpbench with the Maildir store, the order of the servers rotated each round (which
# server runs first moves a result by about 5 % here). Each round runs every server once per
# scenario, five runs each, on the journaled ext4 scratch; JSON and logs go to
# OUT/NAME-SCENARIO-rROUND.{json,log} for scripts/round_ratios.py. Loopback only.
#
#   BINS="smtpd-s11a smtpd-s11b" scripts/rotated_rounds.sh OUT ROUNDS "b c d"
#
# NAME in BINS is an examples/smtpd build in $BIN_DIR, run as NAME-maildir; mailin-maildir is
# the reference of ../shared/bench/README.md (mailin-sink built into /tmp/mailin).
set -u
OUT=$1; ROUNDS=$2; SCEN=${3:-b}
mkdir -p "$OUT"
BENCH=${BENCH:-$(dirname "$0")/../../shared/bench/smtpbench}
BIN_DIR=${BIN_DIR:-/tmp/bin}
SCRATCH=${SCRATCH:-/mnt/jext4}
declare -A CMD
CMD[mailin-maildir]='/tmp/mailin/release/mailin-sink 127.0.0.1:{port} --threads 1100 --maildir {dir}'
servers=(mailin-maildir)
for b in ${BINS:?set BINS}; do
  CMD[$b-maildir]="RUST_LOG=warn $BIN_DIR/$b --listen 127.0.0.1:{port} --maildir {dir}"
  servers+=("$b-maildir")
done
for r in $(seq 1 "$ROUNDS"); do
  k=$(( (r - 1) % ${#servers[@]} ))
  order=("${servers[@]:$k}" "${servers[@]:0:$k}")
  for s in $SCEN; do
    for n in "${order[@]}"; do
      "$BENCH" --name "$n" --runs 5 --scenarios "$s" --expect-files --scratch "$SCRATCH" \
        --json "$OUT/$n-$s-r$r.json" --server "${CMD[$n]}" > "$OUT/$n-$s-r$r.log" 2>&1
      echo "$(date +%T) r$r $n $s rc=$?"
    done
  done
done
