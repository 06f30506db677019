#!/usr/bin/env python3
"""Pools the rounds of several ack_bench runs, cell by cell.

One round's ratio ran from 0.48 to 1.68 for one build on this machine (the
floor's own rate moves by up to 1.5x between rounds), and a run's median of 5
rounds by about +-0.05, so a target read off one run is read off noise. This reads the
per-round rows of every log given and prints, per cell, the number of rounds,
their median ratio, the share of rounds at or above the target, the ratio of
the median throughputs, the median of waops' server p99, and (for logs that
have it) the median ratio of HTTP-thread CPU per ack, floor over waops: the
part of the throughput ratio that is waops' own cost rather than the machine.

    python3 bench/pool.py [--target 0.7] LOG [LOG ...]
"""
import argparse
import re
import statistics
from collections import defaultdict

ROW = re.compile(
    r"^\| (?P<platform>Slack|Discord) \| (?P<conc>\d+) \| (?P<server>floor|waops) \| "
    r"(?P<rate>\d+) req/s \| (?P<ratio>[\d.]+) \| [^|]+\| [\d.]+ / (?P<p99>[\d.]+) ms \|"
)
# The last column of rows from ack_bench builds that measure it.
HTTP_CPU = re.compile(r"\| (?P<http>[\d.]+) µs \|\s*$")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.7)
    parser.add_argument("logs", nargs="+")
    args = parser.parse_args()
    ratios = defaultdict(list)
    rates = defaultdict(lambda: {"floor": [], "waops": []})
    p99s = defaultdict(list)
    cpu_ratios = defaultdict(list)
    floor_cpu = {}
    for path in args.logs:
        with open(path, encoding="utf-8") as log:
            for line in log:
                m = ROW.match(line)
                if not m:
                    continue
                cell = f"{m['platform']} {m['conc']}"
                rates[cell][m["server"]].append(int(m["rate"]))
                cpu = HTTP_CPU.search(line)
                if m["server"] == "floor":
                    # The waops row that follows pairs with this floor row.
                    floor_cpu[cell] = float(cpu["http"]) if cpu else None
                else:
                    ratios[cell].append(float(m["ratio"]))
                    p99s[cell].append(float(m["p99"]))
                    if cpu and floor_cpu.get(cell) and float(cpu["http"]) > 0:
                        cpu_ratios[cell].append(floor_cpu[cell] / float(cpu["http"]))
    if not ratios:
        raise SystemExit("no ack_bench rows in the logs given")
    print(
        f"| cell | rounds | median ratio | rounds >= {args.target} | median waops / median floor "
        "| median server p99 (ms) | median HTTP CPU ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for cell, values in ratios.items():
        met = sum(v >= args.target for v in values)
        floor, waops = (statistics.median(rates[cell][s]) for s in ("floor", "waops"))
        cpu = cpu_ratios[cell]
        cpu_text = f"{statistics.median(cpu):.2f} ({len(cpu)} rounds)" if cpu else "–"
        print(
            f"| {cell} | {len(values)} | {statistics.median(values):.2f} | {met} of {len(values)} "
            f"| {waops / floor:.2f} | {statistics.median(p99s[cell]):.3f} | {cpu_text} |"
        )


if __name__ == "__main__":
    main()
