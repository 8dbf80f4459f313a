#!/usr/bin/env python3
"""Merge smtpbench --json files of several rounds (NAME-SCENARIO-rN.json) into one file per
server, one row per scenario: the runs of every round together, medians recomputed.

    python3 scripts/merge_rounds.py OUTDIR INDIR OLDNAME=NEWNAME ...
"""
import glob
import json
import os
import statistics
import sys


def merge(indir, old, new):
    rows = {}
    meta = None
    for path in sorted(glob.glob(os.path.join(indir, f"{old}-?-r*.json"))):
        data = json.load(open(path))
        meta = meta or data["meta"]
        for row in data["rows"]:
            row.setdefault("pin", data["meta"].get("pin", "none"))
            kept = rows.get(row["scenario"])
            if kept is None or "runs" not in row:
                rows[row["scenario"]] = row
            else:
                kept["runs"] += row["runs"]
    for row in rows.values():
        runs = [r for r in row.get("runs", []) if r.get("ok")]
        if runs:
            rates = [r["msgs_per_s"] for r in runs]
            row["median_msgs_per_s"] = statistics.median(rates)
            row["min_msgs_per_s"], row["max_msgs_per_s"] = min(rates), max(rates)
            row["server_cpu_us_per_msg"] = statistics.median(
                r["server_cpu_us_per_msg"] for r in runs)
    meta["name"] = new
    order = "abcdef"
    return {"meta": meta, "rows": sorted(rows.values(), key=lambda r: order.index(r["scenario"]))}


def main():
    out, indir, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    for pair in pairs:
        old, new = pair.split("=")
        with open(os.path.join(out, f"{new}.json"), "w") as f:
            json.dump(merge(indir, old, new), f, indent=1)


if __name__ == "__main__":
    main()
