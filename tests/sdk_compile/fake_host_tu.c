/* SPDX-License-Identifier: MIT */
/*
 * <aimx/fake_host.h> is meant for plugin authors' own tests, so it must be
 * as portable as <aimx/plugin.h>: this translation unit is compiled as C99,
 * C11 and C++17 with -Werror.  It is compiled as C++ with -x c++, hence the
 * .c name and no C-only constructs.
 */
/* The header documents that it needs POSIX clocks and leaves the feature
 * macro to its user, as a test file would. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <aimx/fake_host.h>

/* Keeps the translation unit non-empty (ISO C requires a declaration) even
 * if everything in the header were to be guarded out. */
extern int aimx_sdk_compile_fake_host_anchor;
