#!/usr/bin/env python3
"""chart.py: an SVG chart of messages/s against sessions from smtpbench --json results.

Usage:
  python3 scripts/chart.py -o BENCHMARKS-sessions.svg RESULT.json [RESULT.json ...]
  python3 scripts/chart.py --table RESULT.json [...]   # markdown: server CPU per message

Each server (the "name" in a result file's meta; files with the same name are merged, so
scenario a run with --pin same in its own file joins the b/c file of the same server) is
one line through the 1 KB persistent-session scenarios: a (1 session), b (10) and c (100).
The left panel is the median msgs/s with the min-max range as a bar; the right panel is
the server CPU microseconds per message (lower is better). Python standard library only.
"""
import argparse
import json
import math
import sys
from xml.sax.saxutils import escape

SCENARIOS = ["a", "b", "c"]  # 1 KB messages over persistent sessions: 1, 10, 100 sessions
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def load(paths, scenarios=SCENARIOS):
    """{server name: {scenario: row}}, in the order the names first appear."""
    servers = {}
    pins = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        name = data["meta"]["name"]
        rows = servers.setdefault(name, {})
        for row in data["rows"]:
            if row["scenario"] in scenarios and ("median_msgs_per_s" in row or "rss_held_kb" in row):
                rows[row["scenario"]] = row
                pins[(name, row["scenario"])] = row.get("pin", data["meta"].get("pin", "none"))
    return servers, pins


def table(paths):
    """Markdown: server CPU per message (per MB for d) and idle memory, one row per server."""
    servers, _ = load(paths, "abcdef")
    keys = [k for k in "abcdef" if any(k in rows for rows in servers.values())]
    heads = {"a": "a: 1 sess", "b": "b: 10 sess", "c": "c: 100 sess", "d": "d: per MB",
             "e": "e: KB/idle conn", "f": "f: conn/msg"}
    out = ["| server | " + " | ".join(heads[k] for k in keys) + " |",
           "|---|" + "---:|" * len(keys)]
    for name, rows in servers.items():
        cells = []
        for k in keys:
            r = rows.get(k)
            if r is None:
                cells.append("-")
            elif k == "e":
                cells.append(f"{r.get('per_conn_kb', 0):.1f}" + ("" if r.get("ok") else " FAIL"))
            elif "server_cpu_us_per_msg" not in r:
                cells.append("FAIL")
            else:
                us = r["server_cpu_us_per_msg"] * (1048576 / r["size"] if k == "d" else 1)
                cells.append(f"{us:.0f}" + ("" if r.get("ok") else " FAIL"))
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def nice_max(v):
    """A round axis maximum at or above v."""
    if v <= 0:
        return 1
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * exp >= v:
            return m * exp
    return 10 * exp


def panel(out, x0, y0, w, h, title, ylabel, servers, key, lo_key=None, hi_key=None):
    """One chart: x = sessions (log scale, 1/10/100), y = linear from 0."""
    vals = [r[k] for rows in servers.values() for r in rows.values()
            for k in filter(None, (key, hi_key)) if k in r]
    ymax = nice_max(max(vals) * 1.08 if vals else 1)
    sessions = [1, 10, 100]

    def px(s):
        return x0 + w * (0.08 + 0.84 * math.log10(s) / 2)

    def py(v):
        return y0 + h - h * v / ymax

    out.append(f'<text x="{x0 + w / 2}" y="{y0 - 14}" text-anchor="middle" '
               f'font-size="15" font-weight="bold">{escape(title)}</text>')
    out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#444"/>')
    for i in range(6):
        v = ymax * i / 5
        y = py(v)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#ddd"/>')
        label = f"{v / 1000:g}k" if ymax >= 10000 else f"{v:g}"
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12">{label}</text>')
    for s in sessions:
        x = px(s)
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + h}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + h + 18}" text-anchor="middle" font-size="12">{s}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 38}" text-anchor="middle" font-size="13">'
               f'concurrent sessions (1 KB messages)</text>')
    out.append(f'<text x="{x0 - 48}" y="{y0 + h / 2}" text-anchor="middle" font-size="13" '
               f'transform="rotate(-90 {x0 - 48} {y0 + h / 2})">{escape(ylabel)}</text>')
    for i, (name, rows) in enumerate(servers.items()):
        colour = COLOURS[i % len(COLOURS)]
        pts = [(px(SCENARIO_SESSIONS[k]), py(rows[k][key]), rows[k]) for k in SCENARIOS
               if k in rows and key in rows[k]]
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        for x, y, row in pts:
            if lo_key and hi_key and lo_key in row and hi_key in row:
                out.append(f'<line x1="{x:.1f}" y1="{py(row[lo_key]):.1f}" x2="{x:.1f}" '
                           f'y2="{py(row[hi_key]):.1f}" stroke="{colour}" stroke-width="6" '
                           f'stroke-opacity="0.35"/>')
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{colour}"/>')


SCENARIO_SESSIONS = {"a": 1, "b": 10, "c": 100}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default="BENCHMARKS-sessions.svg")
    ap.add_argument("--title", default="SMTP receive rate on loopback (smtpbench / smtp-source)")
    ap.add_argument("--table", action="store_true",
                    help="print a markdown table of server CPU us/msg instead of drawing")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    if args.table:
        print(table(args.files))
        return
    servers, pins = load(args.files)
    if not servers:
        sys.exit("chart.py: no scenario a/b/c rows in the given files")
    W, H = 1100, 520
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="DejaVu Sans, Arial, sans-serif">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="28" text-anchor="middle" font-size="18" font-weight="bold">'
           f'{escape(args.title)}</text>']
    panel(out, 90, 80, 420, 330, "messages per second (higher is better)", "msgs/s (median, bar = min-max)",
          servers, "median_msgs_per_s", "min_msgs_per_s", "max_msgs_per_s")
    panel(out, 640, 80, 420, 330, "server CPU per message (lower is better)", "server CPU µs / message",
          servers, "server_cpu_us_per_msg")
    # Legend, one entry per server.
    x = 90
    for i, name in enumerate(servers):
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<rect x="{x}" y="{H - 42}" width="18" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 24}" y="{H - 33}" font-size="13">{escape(name)}</text>')
        x += 40 + 8 * len(name)
    pinned = sorted({n for (n, k), p in pins.items() if k == "a" and p != "none"})
    note = "1 session: server and client pinned to one CPU (--pin same)" if pinned else ""
    out.append(f'<text x="{W - 20}" y="{H - 12}" text-anchor="end" font-size="11" fill="#555">'
               f'{escape(note)}</text>')
    out.append("</svg>")
    with open(args.output, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"chart.py: wrote {args.output} ({len(servers)} servers)")


if __name__ == "__main__":
    main()
