#!/usr/bin/env python3
"""Checks the events a PostHog-compatible server recorded from one firmware run.

Reads the JSON Lines file written by `posthog-embedded serve --events-out FILE` (one object per
event: {"received_at", "timestamp", "path", "problems", "event", ...}; "timestamp" is the event
time the server derived, received_at - offset for a device without a wall clock) and checks:

- the event names and counts (--expect NAME=COUNT; any other name fails);
- every uuid is a UUID and no two are equal;
- $lib is "posthog-embedded" and $lib_version is present; distinct_id is the device's;
- the $identify event's $set holds the device properties (--set KEY=VALUE);
- the $feature_flag_called events' values (--flag KEY=JSON);
- no event has a "timestamp" (the device has no wall clock) and each has an integer "offset";
  the first event waited at least --min-first-offset-ms before it was sent; with --wall-clock
  (the device learned the wall clock before a reset, and its events were restored from flash
  afterwards) instead: every event carries a "timestamp" (its own, or the one its boot's clock
  anchor gives it), none an "offset", none is marked "$time_approximate";
- each event's server-derived time is its true capture time within --tolerance-s: the true time
  is --start (the wall clock when QEMU started) + the event's uptime_ms property; an event
  without uptime_ms must lie between --start and the true time of the next event that has one;
- the server found no problem in any event;
- with --outage-end T (the wall clock when a network outage ended): every event was captured
  before T and received after it, i.e. it was held through the outage; the time check above
  then shows that events held for the whole outage still land at their capture time.

Prints one PASS or FAIL line per check; exits 1 if any check failed, 2 on bad input.
"""

import argparse
import collections
import datetime
import json
import re
import sys

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def pairs(items, what):
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"bad {what} `{item}`: expected KEY=VALUE")
        out[key] = value
    return out


class Report:
    def __init__(self, label):
        self.label = label
        self.failed = 0

    def check(self, ok, what, detail=""):
        status = "PASS" if ok else "FAIL"
        line = f"{status} [{self.label}] {what}"
        if detail:
            line += f": {detail}"
        print(line)
        if not ok:
            self.failed += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("events", help="the server's --events-out file")
    ap.add_argument("--start", type=float, required=True,
                    help="wall clock (Unix seconds) when QEMU was started")
    ap.add_argument("--label", default="events", help="prefix of the report lines")
    ap.add_argument("--distinct-id", required=True)
    ap.add_argument("--expect", action="append", default=[], metavar="NAME=COUNT")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a device property expected in $identify's $set")
    ap.add_argument("--flag", action="append", default=[], metavar="KEY=JSON",
                    help="a $feature_flag_called value expected for flag KEY")
    ap.add_argument("--tolerance-s", type=float, default=1.0)
    ap.add_argument("--wall-clock", action="store_true",
                    help="events carry timestamps (restored after a reset, see above)")
    ap.add_argument("--min-first-offset-ms", type=int, default=1500)
    ap.add_argument("--outage-end", type=float, metavar="UNIX_SECONDS",
                    help="wall clock when an outage ended: every event must have been captured "
                         "before it and received after it")
    ap.add_argument("--secret", action="append", default=[],
                    help="a string that must appear nowhere in the recorded events but api_key")
    args = ap.parse_args()

    expect = {k: int(v) for k, v in pairs(args.expect, "--expect").items()}
    want_set = pairs(args.set, "--set")
    want_flags = {k: json.loads(v) for k, v in pairs(args.flag, "--flag").items()}

    try:
        with open(args.events, encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        print(f"FAIL [{args.label}] cannot read {args.events}: {e}")
        return 2

    r = Report(args.label)
    events = [rec.get("event", {}) for rec in records]
    props = [e.get("properties", {}) for e in events]

    # Names and counts.
    counts = collections.Counter(e.get("event") for e in events)
    for name, n in sorted(expect.items()):
        r.check(counts.get(name, 0) == n, f"{n} x {name!r}", f"got {counts.get(name, 0)}")
    unexpected = {k: v for k, v in counts.items() if k not in expect}
    r.check(not unexpected, "no unexpected events", f"got {unexpected}" if unexpected else "")

    # Server-side validation.
    problems = [(e.get("event"), rec.get("problems")) for e, rec in zip(events, records)
                if rec.get("problems")]
    r.check(not problems, "server found no problems", str(problems[:3]) if problems else "")

    # uuids.
    uuids = [e.get("uuid") for e in events]
    bad = [u for u in uuids if not isinstance(u, str) or not UUID.match(u)]
    r.check(not bad, "every uuid is a UUID", str(bad[:3]) if bad else "")
    dupes = [u for u, n in collections.Counter(uuids).items() if n > 1]
    r.check(not dupes, "uuids are unique", str(dupes[:3]) if dupes else "")

    # Library and identity.
    libs = {p.get("$lib") for p in props}
    r.check(libs == {"posthog-embedded"}, "$lib is posthog-embedded", str(libs))
    versions = {p.get("$lib_version") for p in props}
    r.check(all(isinstance(v, str) and v for v in versions), "$lib_version present",
            str(versions))
    ids = {e.get("distinct_id") for e in events}
    r.check(ids == {args.distinct_id}, f"distinct_id is {args.distinct_id}", str(ids))

    # Device properties.
    sets = [p.get("$set", {}) for e, p in zip(events, props) if e.get("event") == "$identify"]
    for key, value in sorted(want_set.items()):
        got = [s.get(key) for s in sets]
        r.check(bool(got) and all(g == value for g in got), f"$identify $set {key}={value}",
                f"got {got}")

    # Flag values.
    called = {}
    for e, p in zip(events, props):
        if e.get("event") == "$feature_flag_called":
            called.setdefault(p.get("$feature_flag"), []).append(p.get("$feature_flag_response"))
    for key, value in sorted(want_flags.items()):
        got = called.get(key, [])
        r.check(got == [value], f"flag {key} = {json.dumps(value)}", f"got {got}")

    if args.wall_clock:
        # Restored after a reset from a boot that knew the wall clock: exact timestamps.
        without = [e.get("event") for e in events if "timestamp" not in e or "offset" in e]
        r.check(not without, "every event carries a timestamp and no offset",
                str(without[:3]) if without else "")
        approx = [e.get("event") for e, p in zip(events, props) if "$time_approximate" in p]
        r.check(not approx, "no event is marked $time_approximate",
                str(approx[:3]) if approx else "")
    else:
        # No wall clock: offset, never timestamp.
        with_ts = [e.get("event") for e in events if "timestamp" in e]
        r.check(not with_ts, "no event carries a timestamp",
                str(with_ts[:3]) if with_ts else "")
        offsets = [e.get("offset") for e in events]
        bad = [o for o in offsets if not isinstance(o, int) or isinstance(o, bool) or o < 0]
        r.check(not bad and bool(offsets), "every event has an integer offset",
                str(bad[:3]) if bad else "")
        if offsets and not bad:
            r.check(offsets[0] >= args.min_first_offset_ms,
                    f"first event sent at least {args.min_first_offset_ms} ms after capture",
                    f"offset {offsets[0]} ms")

    # Server-derived time against the true capture time.
    derived = []
    for rec in records:
        try:
            derived.append(parse_time(rec["timestamp"]))
        except (KeyError, TypeError, ValueError):
            derived.append(None)
    r.check(None not in derived, "every record has a server-derived timestamp")
    true_times = [args.start + p["uptime_ms"] / 1000 if isinstance(p.get("uptime_ms"), int)
                  else None for p in props]
    worst = 0.0
    late = []
    for i, (e, t, truth) in enumerate(zip(events, derived, true_times)):
        if t is None:
            continue
        if truth is not None:
            err = t - truth
        else:
            # Captured before the next event that knows its uptime, and after QEMU started.
            bound = next((x for x in true_times[i:] if x is not None), None)
            lo, hi = args.start, bound if bound is not None else t
            if t < lo:
                err = t - lo
            elif t > hi:
                err = t - hi
            else:
                err = 0.0
        worst = max(worst, abs(err))
        if abs(err) > args.tolerance_s:
            late.append(f"{e.get('event')} off by {err:+.3f} s")
    r.check(not late, f"server-derived times within {args.tolerance_s} s of capture",
            "; ".join(late[:3]) if late else f"worst {worst:.3f} s")

    # Held through an outage: captured before it ended, received after.
    if args.outage_end is not None:
        held = []
        early = []
        for i, (e, rec, truth) in enumerate(zip(events, records, true_times)):
            try:
                received = parse_time(rec["received_at"])
            except (KeyError, TypeError, ValueError):
                early.append(f"{e.get('event')} without received_at")
                continue
            # Events without uptime_ms were captured before the next one that has it.
            captured = truth if truth is not None else next(
                (x for x in true_times[i:] if x is not None), None)
            if captured is None or captured >= args.outage_end:
                early.append(f"{e.get('event')} captured after the outage ended")
            elif received < args.outage_end:
                early.append(f"{e.get('event')} received {args.outage_end - received:.3f} s "
                             "before the outage ended")
            else:
                held.append(received - captured)
        r.check(not early and bool(held),
                "every event captured during the outage and received after it ended",
                "; ".join(early[:3]) if early else
                f"held {min(held):.1f} to {max(held):.1f} s" if held else "no events")

    # Secrets appear only as the batch's api_key, never inside an event.
    for secret in args.secret:
        leaked = [e.get("event") for e in events if secret in json.dumps(e)]
        r.check(not leaked, "no secret inside events", str(leaked[:3]) if leaked else "")

    print(f"{'PASS' if not r.failed else 'FAIL'} [{args.label}] {len(events)} events, "
          f"{r.failed} failed checks")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
