#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""make_test_certs DIR [MX_NAME]: the STARTTLS tests' certificates, made
at run time (nothing secret is committed): tests/lib/aimxtest.py's
make_test_certs() writes ca.pem, good, wrongname, expired, untrusted and ipaddr
(.pem/.key) into DIR.  Exit 0, or 77 with a message when Debian's
python3-cryptography is missing (the caller skips: scripts/test.sh
installs it)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "lib"))

import aimxtest  # noqa: E402


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import cryptography  # noqa: F401
    except ImportError:
        print("make_test_certs: python3-cryptography is not installed",
              file=sys.stderr)
        return 77
    aimxtest.make_test_certs(argv[1], *argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
