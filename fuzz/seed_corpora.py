#!/usr/bin/env python3
"""Writes the fuzz seed corpora (fuzz/corpus/<target>/) from PostHog's conformance vectors.

Usage: python3 fuzz/seed_corpora.py [VECTORS_DIR]   (default: tests/vectors)
The corpora are generated, not checked in; cargo-fuzz grows them further in place.
"""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VECTORS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "vectors")
OPS = ["exact", "is_not", "is_set", "is_not_set", "icontains", "not_icontains", "regex", "not_regex",
       "starts_with", "not_starts_with", "ends_with", "not_ends_with", "gt", "gte", "lt", "lte",
       "is_date_before", "is_date_after", "semver_eq", "semver_neq", "semver_gt", "semver_gte",
       "semver_lt", "semver_lte", "semver_tilde", "semver_caret", "semver_wildcard", "bogus"]


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def load(name):
    path = os.path.join(VECTORS, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def main():
    if not os.path.isdir(VECTORS):
        print(f"SKIPPED: no vectors at {VECTORS}; corpora get only the built-in seeds")
    counts = {}

    def add(target, data):
        write(target, data)
        counts[target] = counts.get(target, 0) + 1

    sample = open(os.path.join(ROOT, "examples", "data", "sample_definitions.json"), "rb").read()
    add("definitions_loader", sample)
    add("json_reader", sample)
    add("evaluator", compact(json.loads(sample)) + "\nbattery-saver\x01device-1\x01\x01now\x01board\x01\"STM32\"\x01battery_mv\x013500")

    defs = load("definitions_payload_examples.json")
    for case in (defs or {}).get("cases", []):
        doc = compact(case["payload"])
        add("definitions_loader", doc)
        add("json_reader", json.dumps(case["payload"], indent=1))
        keys = [f.get("key", "") for f in case["payload"].get("flags", [])]
        add("evaluator", doc + "\n" + "\x01".join([keys[0] if keys else "", "user-1", "", "x", "email", "\"a@b.c\""]))

    local = load("local_evaluation_cases.json")
    for case in (local or {}).get("cases", [])[:120]:
        doc = {"flags": case.get("all_flags", [case["flag"]]), "group_type_mapping": case.get("group_type_mapping", {}),
               "cohorts": case.get("cohorts", {})}
        props = []
        for k, v in list(case.get("person_properties", {}).items())[:6]:
            props += [k, compact(v)]
        add("evaluator", compact(doc) + "\n" + "\x01".join([case["flag"]["key"], case["distinct_id"], case.get("device_id") or "", "now"] + props))
        add("definitions_loader", compact(doc))

    pm = load("property_match_cases.json")
    for case in (pm or {}).get("cases", []):
        prop = case["property"]
        op = prop.get("operator") or "exact"
        value = case["property_values"].get(prop.get("key"))
        idx = OPS.index(op) if op in OPS else len(OPS) - 1
        filt = compact(prop.get("value"))
        add("property_operators", bytes([idx]) + (filt + "\x00" + compact(value)).encode())
        if op in ("regex", "not_regex") and isinstance(prop.get("value"), str) and isinstance(value, str):
            add("regex", prop["value"] + "\x00" + value)

    for name in ("regex_fallback", ):
        pass
    fb = load("local_evaluation_regex_fallback_cases.json")
    for case in (fb or {}).get("cases", []):
        f = case["flag"]["filters"]["groups"][0]["properties"][0]
        v = case["person_properties"].get(f["key"])
        if isinstance(f.get("value"), str) and isinstance(v, str):
            add("regex", f["value"] + "\x00" + v)

    remote = load("remote_flags_response_examples.json")
    for case in (remote or {}).get("cases", []):
        add("flags_response", compact(case["response"]))
        add("json_reader", compact(case["response"]))

    for name in sorted(os.listdir(VECTORS)) if os.path.isdir(VECTORS) else []:
        if name.endswith(".json") and os.path.getsize(os.path.join(VECTORS, name)) < 200_000:
            add("json_reader", open(os.path.join(VECTORS, name), "rb").read())

    responses = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nT: v\r\n\r\n",
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nuntil close",
    ]
    for i, r in enumerate(responses):
        add("http_response", bytes([i * 5 + 1]) + r)

    for s in [b"\x00eventname\x01distinct\x01type\x01key\x01k\x01v", b"\x07\x01\x01\x01\x01\xff\xfe", "\u00e9v\u00e9nement\x01\U0001F600\x01\x01".encode()]:
        add("event_encoder", s)
    for s in [bytes(range(64)), bytes([1, 0, 2, 5, 9, 200, 3, 3, 4, 0, 0, 7] * 8)]:
        add("queue_model", s)
        add("client_state_machine", s)

    for target, n in sorted(counts.items()):
        print(f"{target}: {n} seeds")


if __name__ == "__main__":
    main()
