#!/bin/bash
# Usage: scripts/loadgen_pairs.sh BIN_A BIN_B [ROUNDS]  (binaries in $BIN_DIR, default /tmp/bin, Maildir under $SCRATCH, default /mnt/jext4; loopback only, each run bounded by timeout 120)
# Interleaved loadgen pairs: 10 sessions x 2000 x 1 KB, discard then maildir (journaled ext4).
set -u
A=$1; B=$2; ROUNDS=${3:-4}; port=27700
run() { # bin mode round
  local bin=$1 mode=$2 r=$3 dir=${SCRATCH:-/mnt/jext4}/loadgen-pairs
  rm -rf $dir; mkdir -p $dir
  local arg="--discard"; [ $mode = maildir ] && arg="--maildir $dir/md"
  port=$((port+1))
  RUST_LOG=warn ${BIN_DIR:-/tmp/bin}/$bin --listen 127.0.0.1:$port $arg & local pid=$!
  sleep 0.5
  local t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  local out=$(timeout 120 ${BIN_DIR:-/tmp/bin}/loadgen --server 127.0.0.1:$port --sessions 10 --messages 2000 --size 1024 2>&1 | grep "messages accepted")
  local t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill $pid; wait $pid 2>/dev/null
  local cpu=$(( (t1-t0)*10000*1000/20000/1000 ))
  echo "r$r $bin $mode cpu_us_per_msg=$cpu $out"
}
for r in $(seq 1 $ROUNDS); do
  if [ $((r%2)) = 1 ]; then order="$A $B"; else order="$B $A"; fi
  for b in $order; do run $b discard $r; run $b maildir $r; done
done
