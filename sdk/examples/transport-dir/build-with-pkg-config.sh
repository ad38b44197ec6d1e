#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Builds transport-dir.so and its unit test with pkg-config and a C compiler,
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
    -o transport-dir.so transport_dir.c

# The unit test: the plugin's source compiled in, <aimx/fake_host.h> as
# the host, cmocka to run it.
$CC -std=c11 -Wall -Wextra $CFLAGS -D_POSIX_C_SOURCE=200809L \
    -DAIMX_PLUGIN_STATIC $(pkg-config --cflags aimx-plugin cmocka) \
    -o test_transport_dir test_transport_dir.c transport_dir.c \
    $(pkg-config --libs cmocka)
./test_transport_dir
