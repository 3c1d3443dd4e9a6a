#!/usr/bin/env python3
"""Runs one benchmark command and records its peak RSS, the same way for every runner.

    measure.py OUT -- COMMAND [ARG...]

The command's stdout goes to OUT, its stderr to OUT.err. Then `peak_rss_kib=N` is appended
to OUT: the peak resident set size of the command's process (Linux `ru_maxrss` of the only
child this process waits for, in KiB). Exits with the command's exit code.
"""

import resource
import subprocess
import sys


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    out, cmd = sys.argv[1], sys.argv[3:]
    with open(out, "wb") as stdout, open(out + ".err", "wb") as stderr:
        rc = subprocess.call(cmd, stdout=stdout, stderr=stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(out, "a") as f:
        f.write(f"peak_rss_kib={peak}\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
