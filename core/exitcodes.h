/* SPDX-License-Identifier: MIT */
/* Exit codes of every aimx command (docs/cli.md); sysexits(3) where one fits. */
#ifndef AIMX_EXITCODES_H
#define AIMX_EXITCODES_H

#include <sysexits.h>

enum aimx_exit {
    AIMX_EXIT_OK = 0,
    AIMX_EXIT_CHECK_FAILED = 1,     /* a check found problems */
    AIMX_EXIT_USAGE = EX_USAGE,     /* 64 */
    AIMX_EXIT_DATAERR = EX_DATAERR, /* 65: bad message, address, domain */
    AIMX_EXIT_NOINPUT = EX_NOINPUT, /* 66: input file unreadable */
    AIMX_EXIT_UNAVAILABLE = EX_UNAVAILABLE, /* 69: permanent delivery failure */
    AIMX_EXIT_SOFTWARE = EX_SOFTWARE,       /* 70: internal error */
    AIMX_EXIT_CANTCREAT = EX_CANTCREAT, /* 73: cannot create an output file */
    AIMX_EXIT_TEMPFAIL = EX_TEMPFAIL,   /* 75: temporary failure */
    AIMX_EXIT_NOPERM = EX_NOPERM,       /* 77: permission denied */
    AIMX_EXIT_CONFIG = EX_CONFIG        /* 78: configuration or plugin error */
};

#endif
