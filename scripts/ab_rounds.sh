#!/bin/bash
# Runs smtpbench in rounds: in each round, every server of $SERVERS once per scenario of $SCEN,
# so that all servers share the machine's noise. Results: $OUT/NAME-SCENARIO-rROUND.json (pool
# them with scripts/merge_rounds.py). Loopback only; every run is bounded by smtpbench.
#
#   BINS="smtpd-a smtpd-b" SERVERS="smtp-sink smtpd-a smtpd-b-maildir mailin-maildir" \
#   SCEN="b c d" ROUNDS=2 RUNS=5 OUT=/tmp/ab SCRATCH=/mnt/jext4 scripts/ab_rounds.sh
#
# NAME in BINS is a binary in $BIN_DIR (an examples/smtpd build); it is run as NAME (--discard)
# and NAME-maildir (--maildir). smtp-sink, mailin and mailin-maildir are the references of
# ../shared/bench/README.md (mailin-sink built into /tmp/mailin as that README says).
set -u
OUT=${OUT:-/tmp/ab}; mkdir -p "$OUT"
BENCH=${BENCH:-$(dirname "$0")/../../shared/bench/smtpbench}
BIN_DIR=${BIN_DIR:-/tmp/bin}
SCRATCH=${SCRATCH:-/tmp/bench-scratch}
declare -A CMD
CMD[smtp-sink]='/usr/sbin/smtp-sink -u nobody -m 2000 127.0.0.1:{port} 1000'
CMD[mailin]='/tmp/mailin/release/mailin-sink 127.0.0.1:{port} --threads 1100'
CMD[mailin-maildir]='/tmp/mailin/release/mailin-sink 127.0.0.1:{port} --threads 1100 --maildir {dir}'
for b in ${BINS:-}; do
  CMD[$b]="RUST_LOG=warn $BIN_DIR/$b --listen 127.0.0.1:{port} --discard"
  CMD[$b-maildir]="RUST_LOG=warn $BIN_DIR/$b --listen 127.0.0.1:{port} --maildir {dir}"
done
for r in $(seq 1 "${ROUNDS:-2}"); do
  for s in ${SCEN:-b c d}; do
    for n in $SERVERS; do
      extra=""
      [ "$s" = a ] && extra="--pin same"
      case $n in *maildir*) extra="$extra --expect-files --scratch $SCRATCH" ;; esac
      # shellcheck disable=SC2086
      "$BENCH" --name "$n" --runs "${RUNS:-5}" --scenarios "$s" $extra \
        --json "$OUT/$n-$s-r$r.json" --server "${CMD[$n]}" > "$OUT/$n-$s-r$r.log" 2>&1
      echo "$(date +%T) r$r $n $s rc=$?"
    done
  done
done
