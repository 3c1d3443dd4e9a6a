#!/usr/bin/env python3
"""A tiny DNS server for tests: answers `A` queries for one name with one IPv4 address.

    dns_responder.py --bind 192.168.69.1 --name ingest.test --address 192.168.69.1 \
        [--fail-first N --fail-mode nxdomain|silent] [--log FILE]

Any other name gets NXDOMAIN; any other query type for the name gets an empty NOERROR answer.
The first N queries for the name fail: `nxdomain` answers NXDOMAIN, `silent` sends nothing
(the client's resolve timeout must then fire). Every query is logged as one line
`<n> <name> <type> <answer>` to --log (flushed at once), so a test can check what was asked.
Prints `listening on <ip>:53` when ready; runs until killed.
"""

import argparse
import socket
import struct
import sys

QTYPE_A = 1
NOERROR, NXDOMAIN = 0, 3


def parse_question(msg):
    """(id, flags, name, qtype, end of question) of a query, or None if malformed."""
    if len(msg) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", msg[:6])
    if qdcount != 1:
        return None
    labels, i = [], 12
    while True:
        if i >= len(msg):
            return None
        n = msg[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0 or i + n > len(msg):
            return None
        labels.append(msg[i : i + n].decode("ascii", "replace"))
        i += n
    if i + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack("!HH", msg[i : i + 4])
    return ident, flags, ".".join(labels).lower(), qtype, i + 4


def reply(msg, ident, flags, end, rcode, address=None):
    """A response echoing the question, with one A record when `address` is given."""
    rd = flags & 0x0100
    out_flags = 0x8000 | 0x0400 | rd | 0x0080 | rcode  # QR, AA, RD (echoed), RA
    ancount = 1 if address else 0
    head = struct.pack("!HHHHHH", ident, out_flags, 1, ancount, 0, 0)
    body = msg[12:end]
    if address:
        body += struct.pack("!HHHIH", 0xC00C, QTYPE_A, 1, 60, 4) + socket.inet_aton(address)
    return head + body


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--name", required=True)
    ap.add_argument("--address", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-mode", choices=["nxdomain", "silent"], default="nxdomain")
    ap.add_argument("--log")
    args = ap.parse_args()
    log = open(args.log, "a", buffering=1) if args.log else None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.bind, args.port))
    print(f"listening on {args.bind}:{args.port}", flush=True)
    name = args.name.lower().rstrip(".")
    seen = 0
    while True:
        msg, peer = sock.recvfrom(512)
        q = parse_question(msg)
        if q is None:
            continue
        ident, flags, qname, qtype, end = q
        if qname != name:
            answer, out = "nxdomain", reply(msg, ident, flags, end, NXDOMAIN)
        else:
            seen += 1
            if seen <= args.fail_first and args.fail_mode == "silent":
                answer, out = "silent", None
            elif seen <= args.fail_first:
                answer, out = "nxdomain", reply(msg, ident, flags, end, NXDOMAIN)
            elif qtype == QTYPE_A:
                answer, out = args.address, reply(msg, ident, flags, end, NOERROR, args.address)
            else:
                answer, out = "empty", reply(msg, ident, flags, end, NOERROR)
        if log:
            log.write(f"{seen} {qname} {qtype} {answer}\n")
        if out is not None:
            sock.sendto(out, peer)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
