#!/usr/bin/env python3
"""Checks and tabulates one run of the side-by-side flag benchmark (called by run.sh).

    report.py DIR RUNS KEY:LABEL:VERSION [KEY:LABEL:VERSION ...]

Reads DIR/KEY.K.out (K = 1..RUNS), the last lines of each runner (`load_us=`, `ns_per_eval=`,
`evals=`, `results=`) plus `peak_rss_kib=` from measure.py. The first runner is the
reference ("us"). Exits 1, naming the runner, run and flag, when any `results=` line differs from the
reference's or any run's `evals=` differs; otherwise prints a markdown table of medians and
each runner's ratio to the reference.
"""

import json
import sys


def parse(path):
    fields = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep and key in ("load_us", "ns_per_eval", "evals", "results", "peak_rss_kib"):
                fields[key] = value
    missing = {"load_us", "ns_per_eval", "evals", "results", "peak_rss_kib"} - fields.keys()
    if missing:
        raise SystemExit(f"{path}: missing {', '.join(sorted(missing))}")
    return fields


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def describe_mismatch(ref_name, ref, name, run, got):
    """One line per flag whose counts differ; both sides' counts."""
    lines = []
    try:
        a, b = json.loads(ref), json.loads(got)
    except json.JSONDecodeError:
        return [f"  {name} run {run}: results= is not JSON"]
    for flag in sorted(set(a) | set(b)):
        if a.get(flag) != b.get(flag):
            lines.append(
                f"  flag {flag!r}: {ref_name} {json.dumps(a.get(flag), sort_keys=True)}"
                f" vs {name} (run {run}) {json.dumps(b.get(flag), sort_keys=True)}"
            )
    if not lines:
        lines.append(f"  {name} run {run}: same counts, different text (key order or spacing)")
    return lines


def fmt(x, digits=1):
    return f"{x:,.{digits}f}"


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir, runs = sys.argv[1], int(sys.argv[2])
    runners = [arg.split(":", 2) for arg in sys.argv[3:]]
    data = {
        name: [parse(f"{out_dir}/{name}.{k}.out") for k in range(1, runs + 1)]
        for name, _, _ in runners
    }

    ref_name = runners[0][0]
    ref = data[ref_name][0]
    problems = []
    labels = {name: label for name, label, _ in runners}
    for name, _, _ in runners:
        for k, d in enumerate(data[name], start=1):
            if d["evals"] != ref["evals"]:
                problems.append(
                    f"  {labels[name]} run {k}: evals={d['evals']}, "
                    f"{labels[ref_name]} evals={ref['evals']}"
                )
            if d["results"] != ref["results"]:
                problems += describe_mismatch(
                    labels[ref_name], ref["results"], labels[name], k, d["results"]
                )
    if problems:
        print("RESULTS DIFFER: the runners do not agree, so the timings are not comparable.")
        print("\n".join(problems))
        return 1

    flags = json.loads(ref["results"])
    print(f"All {len(runners)} runners agree on every flag: {len(flags)} flags, "
          f"evals={ref['evals']} per pass, identical results= in all {runs} run(s) of each.")
    print()

    stats = {}
    for name, _, _ in runners:
        ns = [float(d["ns_per_eval"]) for d in data[name]]
        load = [float(d["load_us"]) for d in data[name]]
        rss = [int(d["peak_rss_kib"]) for d in data[name]]
        stats[name] = (median(ns), min(ns), max(ns), median(load), median(rss))

    us_ns, _, _, us_load, us_rss = stats[ref_name]
    print("| runner | version | ns/eval (median) | ns/eval (min–max) | load µs (median) "
          "| peak RSS KiB (median) | ns/eval ÷ us | load ÷ us | RSS ÷ us |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, label, version in runners:
        ns, lo, hi, load, rss = stats[name]
        ratios = (
            ("1", "1", "1")
            if name == ref_name
            else (f"{ns / us_ns:,.1f}×", f"{load / us_load:,.1f}×", f"{rss / us_rss:,.1f}×")
        )
        print(f"| {label} | {version} | {fmt(ns)} | {fmt(lo)}–{fmt(hi)} | {fmt(load)} "
              f"| {rss:,.0f} | {ratios[0]} | {ratios[1]} | {ratios[2]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
