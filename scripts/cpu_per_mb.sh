#!/bin/bash
# Server CPU per MB received, measured with `perf stat -e task-clock` on the server process
# while smtp-source sends N messages of 1 MB over 10 sessions (smtpbench's scenario d), for
# each server in turn, REPS times round-robin, so that every pair of neighbouring runs shares
# the machine's noise. Prints one line per run: NAME rREP US/MB.
#
#   REPS=8 N=150 MODE=maildir SCRATCH=/mnt/jext4 scripts/cpu_per_mb.sh /tmp/bin/smtpd-a mailin
#
# A server is an examples/smtpd binary, or `mailin` for ../shared/bench's mailin-sink built
# into /tmp/mailin (its README). MODE is `discard` (default) or `maildir` (a fresh Maildir in
# $SCRATCH for every run). Loopback only (127.0.0.1:$PORT); each run is bounded by smtp-source
# finishing its N messages, and the server is stopped after it.
set -u
N=${N:-200}; MODE=${MODE:-discard}; PORT=${PORT:-2597}
SCRATCH=${SCRATCH:-/tmp/bench-scratch}; DIR=$SCRATCH/cpu-per-mb
MAILIN=${MAILIN:-/tmp/mailin/release/mailin-sink}
send() {
  smtp-source -d -c -l 1048576 -m "$1" -s 10 -r 1 -M bench.example -f s@bench.example \
    -t r@bench.example "127.0.0.1:$PORT" >/dev/null
}
for rep in $(seq 1 "${REPS:-5}"); do
  for bin in "$@"; do
    rm -rf "$DIR"; sync
    store=(--discard); [ "$MODE" = maildir ] && store=(--maildir "$DIR")
    if [ "$bin" = mailin ]; then
      store=(); [ "$MODE" = maildir ] && store=(--maildir "$DIR")
      "$MAILIN" "127.0.0.1:$PORT" --threads 1100 "${store[@]}" >/dev/null 2>&1 &
    else
      RUST_LOG=warn "$bin" --listen "127.0.0.1:$PORT" "${store[@]}" >/dev/null 2>&1 &
    fi
    server=$!
    sleep 0.3
    send 10  # warm-up: threads, buffers, the listener's first connections
    out=$(mktemp)
    perf stat -x, -e task-clock -p "$server" -o "$out" & perf=$!
    sleep 0.1
    send "$N"
    kill -INT "$perf"; wait "$perf" 2>/dev/null
    kill "$server"; wait "$server" 2>/dev/null
    ms=$(grep task-clock "$out" | cut -d, -f1); rm -f "$out"
    echo "$(basename "$bin") r$rep $(python3 -c "print(round($ms * 1000 / $N))") us/MB"
  done
done
rm -rf "$DIR"
