#!/usr/bin/env python3
"""Ratios of two servers, round by round, from the files scripts/ab_rounds.sh writes.

    python3 scripts/round_ratios.py DIR SERVER REFERENCE SCENARIO

For each round r with both DIR/SERVER-SCENARIO-rR.json and DIR/REFERENCE-SCENARIO-rR.json it
prints the two medians of msgs/s (MB/s for d) and of server CPU per message (per MB for d) and
their ratios; then the median of the per-round ratios, and the ratios of the medians of all
runs pooled. Rounds run the servers back to back, so a per-round ratio compares runs that
shared the machine's noise. Standard library only.
"""
import glob
import json
import os
import re
import statistics
import sys


def row(path):
    with open(path) as f:
        return json.load(f)["rows"][0]


def ok_runs(r):
    return [run for run in r.get("runs", []) if run.get("ok")]


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    folder, server, reference, scenario = sys.argv[1:]
    rate = "mb_per_s" if scenario == "d" else "msgs_per_s"
    cpu = "server_cpu_us_per_msg"
    pattern = os.path.join(folder, f"{server}-{scenario}-r*.json")
    rounds = sorted(
        int(m.group(1))
        for p in glob.glob(pattern)
        if (m := re.search(r"-r(\d+)\.json$", p))
    )
    rate_ratios, cpu_ratios = [], []
    pooled = {server: ([], []), reference: ([], [])}
    unit = "µs/MB" if scenario == "d" else "µs/msg"
    print(f"round  {server} rate, CPU {unit}  |  {reference} rate, CPU  |  rate ratio, CPU ratio")
    for n in rounds:
        paths = [os.path.join(folder, f"{name}-{scenario}-r{n}.json") for name in (server, reference)]
        if not all(os.path.exists(p) for p in paths):
            continue
        a, b = (row(p) for p in paths)
        if not (a.get("ok") and b.get("ok")):
            print(f"{n:5d}  (a run failed)")
            continue
        ra, rb = a[f"median_{rate}"], b[f"median_{rate}"]
        ca, cb = a[cpu], b[cpu]
        rate_ratios.append(ra / rb)
        cpu_ratios.append(ca / cb)
        print(f"{n:5d}  {ra:9.1f} {ca:7.0f}  |  {rb:9.1f} {cb:7.0f}  |  {ra / rb:5.2f}x {ca / cb:5.2f}x")
        for name, r in ((server, a), (reference, b)):
            rates, cpus = pooled[name]
            for run in ok_runs(r):
                cpus.append(run[cpu])
                rates.append(run.get("msgs_per_s", 0.0))
    if not rate_ratios:
        sys.exit("no round has both servers")
    print(
        f"median of {len(rate_ratios)} rounds: rate {statistics.median(rate_ratios):.2f}x "
        f"(range {min(rate_ratios):.2f}-{max(rate_ratios):.2f}), "
        f"CPU {statistics.median(cpu_ratios):.2f}x "
        f"(range {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f})"
    )
    (ra, ca), (rb, cb) = pooled[server], pooled[reference]
    print(
        f"all runs pooled ({len(ra)} and {len(rb)}): msgs/s {statistics.median(ra):.0f} vs "
        f"{statistics.median(rb):.0f} ({statistics.median(ra) / statistics.median(rb):.2f}x), "
        f"CPU {statistics.median(ca):.0f} vs {statistics.median(cb):.0f} {unit} "
        f"({statistics.median(ca) / statistics.median(cb):.2f}x)"
    )


if __name__ == "__main__":
    main()
