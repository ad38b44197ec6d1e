#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Builds resolver-static.so and its unit test with pkg-config and a C compiler,
# then runs the test.  Run it in this directory.  CC and CFLAGS work as
# usual; the SDK's aimx-plugin.pc must be on pkg-config's path
# (PKG_CONFIG_PATH=<prefix>/lib/pkgconfig for an SDK in <prefix>).
set -eu
CC=${CC:-cc}
CFLAGS=${CFLAGS:-}

# The plugin: a module named after the plugin that exports its entry
# only, with every symbol bound when it is linked and when it is loaded.
$CC -std=c11 -Wall -Wextra $CFLAGS -shared -fPIC -fvisibility=hidden \
    $(pkg-config --cflags aimx-plugin) -Wl,--no-undefined -Wl,-z,now \
    -o resolver-static.so resolver_static.c

# The unit test: the plugin's source compiled in, <aimx/fake_host.h> as
# the host, cmocka to run it.
$CC -std=c11 -Wall -Wextra $CFLAGS -D_POSIX_C_SOURCE=200809L \
    -DAIMX_PLUGIN_STATIC $(pkg-config --cflags aimx-plugin cmocka) \
    -o test_resolver_static test_resolver_static.c resolver_static.c \
    $(pkg-config --libs cmocka)
./test_resolver_static
