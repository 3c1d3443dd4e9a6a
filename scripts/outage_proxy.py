#!/usr/bin/env python3
"""A loopback TCP proxy that simulates a network outage, then forwards.

Listens on 127.0.0.1 (--port, 0 = pick a free port) and prints `listening on 127.0.0.1:PORT`
as its first line on standard output. For the first --outage seconds after the first client
connection arrives, it accepts every connection and closes it at once, discarding whatever
the client sent (QEMU's `-chardev socket,...,reconnect=1` then reconnects about a second
later). After that it forwards each connection to 127.0.0.1:--target-port, bytes both ways,
until either side closes (a half-close is passed on as a half-close).

Logs one line per connection (dropped or forwarded) and per outage event to --log (default:
standard error), each starting with the Unix time, e.g.

    1718000000.123 dropped #3 from 127.0.0.1:41234 (outage, 87.9 s left)
    1718000000.123 outage ends at 1718000090.001

and a final `summary: dropped N, forwarded M` line. Stops by itself after --max-seconds
(and on SIGTERM/SIGINT). Memory is bounded: at most --max-connections forwarded connections
at once (more are dropped and logged), two threads and one 64 KiB buffer each. Loopback only.

Python 3 standard library only.
"""

import argparse
import signal
import socket
import sys
import threading
import time

CHUNK = 64 * 1024
HOST = "127.0.0.1"


class Log:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.out = open(path, "a", encoding="utf-8", buffering=1) if path else sys.stderr

    def __call__(self, msg):
        with self.lock:
            self.out.write(f"{time.time():.3f} {msg}\n")
            self.out.flush()


def pump(src, dst, stop, sent, i):
    """Copies src to dst until EOF or an error, counting bytes in sent[i]; passes EOF on as a
    half-close. On an error (a reset, or a socket the other direction closed), sets stop."""
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            dst.sendall(data)
            sent[i] += len(data)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    except OSError:
        stop.set()


def forward(client, peer, target_port, n, log, slots, counts):
    """Forwards one client connection to the target, then closes both sockets."""
    upstream = None
    sent = [0, 0]
    threads = []
    try:
        try:
            upstream = socket.create_connection((HOST, target_port), timeout=5)
        except OSError as e:
            log(f"forward #{n} from {peer}: cannot reach {HOST}:{target_port}: {e}")
            return
        upstream.settimeout(None)
        client.settimeout(None)
        stop = threading.Event()
        threads = [
            threading.Thread(target=pump, args=(client, upstream, stop, sent, 0), daemon=True),
            threading.Thread(target=pump, args=(upstream, client, stop, sent, 1), daemon=True),
        ]
        for t in threads:
            t.start()
        # Until both directions ended (EOF each way) or one failed.
        while any(t.is_alive() for t in threads):
            if stop.wait(0.2):
                break
    finally:
        # shutdown() wakes a thread blocked in recv() on the socket; close() alone may not.
        for s in (client, upstream):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in threads:
            t.join(timeout=1)
        for s in (client, upstream):
            if s is not None:
                s.close()
        with counts["lock"]:
            counts["open"] -= 1
        slots.release()
        log(f"closed #{n} from {peer}: {sent[0]} bytes up, {sent[1]} bytes down")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    ap.add_argument("--target-port", type=int, required=True,
                    help="the server's port on 127.0.0.1")
    ap.add_argument("--outage", type=float, default=0.0, metavar="SECONDS",
                    help="drop every connection for this long after the first one arrives")
    ap.add_argument("--max-seconds", type=float, default=600.0,
                    help="stop by itself after this long (default 600)")
    ap.add_argument("--max-connections", type=int, default=16,
                    help="forwarded connections open at once; more are dropped (default 16)")
    ap.add_argument("--log", help="append the log here instead of standard error")
    args = ap.parse_args()
    if args.outage < 0 or args.max_seconds <= 0 or args.max_connections < 1:
        sys.exit("bad arguments: --outage >= 0, --max-seconds > 0, --max-connections >= 1")

    log = Log(args.log)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, args.port))
    listener.listen(16)
    listener.settimeout(0.25)
    port = listener.getsockname()[1]
    print(f"listening on {HOST}:{port}", flush=True)
    log(f"listening on {HOST}:{port}, forwarding to {HOST}:{args.target_port} after an "
        f"outage of {args.outage:g} s from the first connection; stops after "
        f"{args.max_seconds:g} s")

    stopping = threading.Event()

    def on_signal(signum, _frame):
        log(f"signal {signum}: stopping")
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    deadline = time.monotonic() + args.max_seconds
    outage_end = None  # monotonic
    slots = threading.BoundedSemaphore(args.max_connections)
    counts = {"lock": threading.Lock(), "open": 0}
    dropped = forwarded = 0
    n = 0
    while not stopping.is_set():
        if time.monotonic() >= deadline:
            log(f"max-seconds ({args.max_seconds:g} s) reached: stopping")
            break
        try:
            conn, addr = listener.accept()
        except socket.timeout:
            continue
        except OSError as e:
            if stopping.is_set():
                break
            log(f"accept failed: {e}")
            time.sleep(0.1)
            continue
        n += 1
        peer = f"{addr[0]}:{addr[1]}"
        now = time.monotonic()
        if outage_end is None:
            outage_end = now + args.outage
            log(f"first connection: outage ends at {time.time() + args.outage:.3f}")
        if now < outage_end:
            dropped += 1
            log(f"dropped #{n} from {peer} (outage, {outage_end - now:.1f} s left)")
            conn.close()
            continue
        if not slots.acquire(blocking=False):
            dropped += 1
            log(f"dropped #{n} from {peer} ({args.max_connections} connections already open)")
            conn.close()
            continue
        forwarded += 1
        with counts["lock"]:
            counts["open"] += 1
        log(f"forwarding #{n} from {peer} to {HOST}:{args.target_port}")
        threading.Thread(target=forward,
                         args=(conn, peer, args.target_port, n, log, slots, counts),
                         daemon=True).start()
    listener.close()
    log(f"summary: dropped {dropped}, forwarded {forwarded}, still open {counts['open']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
