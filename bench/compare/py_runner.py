#!/usr/bin/env python3
"""posthog-python runner of the side-by-side flag benchmark (see README.md).

    py_runner.py --definitions FILE --context FILE [--ids N] [--repeat R]

Same CLI and the same last lines as our `bench_eval` (devtools/examples/bench_eval.rs):
`load_us=`, `ns_per_eval=`, `evals=`, `results=`.

- Definitions reach the client through its public `flag_definition_cache_provider` hook
  (a provider that never asks to fetch): `load_feature_flags()` then reads them from the
  provider instead of the API. No poller (`enable_local_evaluation=False`), no event queue
  (`send=False`), host pointed at a closed local port.
- Load: bytes -> ready to evaluate, i.e. `load_feature_flags()` on a fresh client, which
  calls the provider (`json.loads` of the document) and publishes the definitions. Median of R.
- Evaluation: `get_feature_flag(key, distinct_id, person_properties=..., groups=...,
  group_properties=..., only_evaluate_locally=True, send_feature_flag_events=False)` for
  every flag and every id. The SDK adds `distinct_id` to the person properties and
  `$group_key` to each group's properties itself. Median of R passes.
"""

import argparse
import json
import logging
import sys
import time
import warnings

from posthog import Posthog
from posthog.version import VERSION

NO_NETWORK_HOST = "http://127.0.0.1:9"


class StaticDefinitions:
    """A `FlagDefinitionCacheProvider` serving one definitions document from bytes."""

    def __init__(self, raw: bytes):
        self.raw = raw

    def should_fetch_flag_definitions(self) -> bool:
        return False

    def get_flag_definitions(self):
        doc = json.loads(self.raw)
        data = {
            "flags": doc["flags"],
            "group_type_mapping": doc.get("group_type_mapping") or {},
            "cohorts": doc.get("cohorts") or {},
        }
        for optional in ("property_matching_version", "minimal_flag_called_events"):
            if optional in doc:
                data[optional] = doc[optional]
        return data

    def on_flag_definitions_received(self, data) -> None:
        pass

    def shutdown(self) -> None:
        pass


def new_client(provider: StaticDefinitions) -> Posthog:
    return Posthog(
        "phc_bench_local_only",
        host=NO_NETWORK_HOST,
        secret_key="phs_bench_unused",
        flag_definition_cache_provider=provider,
        enable_local_evaluation=False,
        send=False,
        disable_geoip=True,
    )


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def label(value) -> str:
    if value is None:
        return "inconclusive"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return f"variant:{value}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--definitions", required=True)
    ap.add_argument("--context", required=True)
    ap.add_argument("--ids", type=int)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    if a.repeat < 1:
        ap.error("--repeat: a number above 0")

    # `get_feature_flag` is deprecated in 7.x (it warns on every call); it is still the
    # SDK's single-flag API. Keep stderr quiet and the filter cheap.
    warnings.simplefilter("ignore", DeprecationWarning)
    logging.getLogger("posthog").setLevel(logging.ERROR)

    with open(a.definitions, "rb") as f:
        raw = f.read()
    with open(a.context, "rb") as f:
        ctx = json.load(f)
    ids_spec = ctx.get("distinct_ids") or {}
    count = a.ids if a.ids is not None else ids_spec.get("count")
    if count is None:
        print("py_runner: distinct_ids.count (or --ids) is required", file=sys.stderr)
        return 2
    pattern = ids_spec.get("pattern") or "bench-user-{i}"
    person = ctx.get("person_properties") or {}
    groups = ctx.get("groups") or {}
    group_props = ctx.get("group_properties") or {}

    provider = StaticDefinitions(raw)
    loads = []
    client = None
    for _ in range(a.repeat):
        client = new_client(provider)
        t = time.perf_counter_ns()
        client.load_feature_flags()
        loads.append((time.perf_counter_ns() - t) / 1e3)
    keys = [f["key"] for f in client.feature_flags]
    if not keys:
        print("py_runner: no flags loaded", file=sys.stderr)
        return 2

    ids = [pattern.replace("{i}", str(i)) for i in range(count)]
    results = {k: {} for k in keys}
    passes = []
    get = client.get_feature_flag
    for pass_no in range(a.repeat):
        nanos = 0
        for distinct_id in ids:
            values = []
            t = time.perf_counter_ns()
            for k in keys:
                values.append(
                    get(
                        k,
                        distinct_id,
                        person_properties=person,
                        groups=groups,
                        group_properties=group_props,
                        only_evaluate_locally=True,
                        send_feature_flag_events=False,
                    )
                )
            nanos += time.perf_counter_ns() - t
            if pass_no == 0:
                for k, v in zip(keys, values):
                    counts = results[k]
                    lab = label(v)
                    counts[lab] = counts.get(lab, 0) + 1
        passes.append(nanos / max(len(ids) * len(keys), 1))

    print(f"posthog-python {VERSION}: {len(keys)} flags, {len(ids)} ids, {a.repeat} passes")
    print(f"load_us={median(loads):.1f}")
    print(f"ns_per_eval={median(passes):.1f}")
    print(f"evals={len(ids) * len(keys)}")
    print("results=" + json.dumps(results, sort_keys=True, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
