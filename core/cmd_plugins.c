/* SPDX-License-Identifier: MIT */
/* aimx plugins: the plugins built into this binary and what is in the
 * plugin directories, and whether each loads. */
#include "cli.h"
#include "exitcodes.h"
#include "json.h"
#include "loader.h"

#include <stdio.h>
#include <stdlib.h>

static const char *status_word(int status);

static const char *
status_word(int status)
{
    switch (status) {
    case AIMX_LISTING_OK:
        return "ok";
    case AIMX_LISTING_SHADOWED:
        return "shadowed";
    default:
        return "refused";
    }
}

int
aimx__cmd_plugins(const aimx_cli *cli)
{
    aimx_config c;
    aimx_plugin_listing *list = NULL;
    size_t n = 0;
    int rc;

    if (cli->arg_count > 0)
        return aimx__fail(cli, AIMX_EXIT_USAGE,
                          "'aimx plugins' takes no arguments (got '%s')",
                          cli->args[0]);
    rc = aimx__cli_load_config(cli, &c);
    if (rc != 0)
        return rc;
    aimx__plugin_scan(c.plugin_dirs, c.plugin_dir_count, &list, &n);

    if (cli->json) {
        aimx_json j;
        char abi[32];

        aimx__json_init(&j, stdout);
        aimx__json_object_begin(&j, NULL);
        aimx__json_int(&j, "schema", AIMX_JSON_SCHEMA);
        aimx__json_array_begin(&j, "plugin_dirs");
        for (size_t i = 0; i < c.plugin_dir_count; i++)
            aimx__json_string(&j, NULL, c.plugin_dirs[i]);
        aimx__json_array_end(&j);
        aimx__json_array_begin(&j, "plugins");
        for (size_t i = 0; i < n; i++) {
            const aimx_plugin_listing *e = &list[i];
            int ok = e->status == AIMX_LISTING_OK;
            aimx__json_object_begin(&j, NULL);
            aimx__json_string(&j, "name", e->name);
            aimx__json_string(&j, "kind", ok ? aimx__kind_name(e->kind) : NULL);
            aimx__json_string(&j, "version", ok ? e->version : NULL);
            snprintf(abi, sizeof abi, "%u.%u", (unsigned)e->abi_major,
                     (unsigned)e->abi_minor);
            aimx__json_string(&j, "abi", ok ? abi : NULL);
            aimx__json_string(&j, "description", ok ? e->description : NULL);
            /* A built-in plugin has no file. */
            aimx__json_string(&j, "file", e->builtin ? NULL : e->path);
            aimx__json_bool(&j, "builtin", e->builtin);
            aimx__json_string(&j, "status", status_word(e->status));
            aimx__json_string(&j, "reason", ok ? NULL : e->reason);
            aimx__json_object_end(&j);
        }
        aimx__json_array_end(&j);
        aimx__json_object_end(&j);
        aimx__json_finish(&j);
    } else if (n == 0) {
        printf("No plugins found in:\n");
        for (size_t i = 0; i < c.plugin_dir_count; i++)
            printf("  %s\n", c.plugin_dirs[i]);
    } else {
        printf("%-20s %-10s %-10s %-4s %-9s %s\n", "NAME", "KIND", "VERSION",
               "ABI", "STATUS", "FILE");
        for (size_t i = 0; i < n; i++) {
            const aimx_plugin_listing *e = &list[i];
            char abi[32] = "-";
            if (e->status == AIMX_LISTING_OK)
                snprintf(abi, sizeof abi, "%u.%u", (unsigned)e->abi_major,
                         (unsigned)e->abi_minor);
            printf("%-20s %-10s %-10s %-4s %-9s %s\n", e->name,
                   e->status == AIMX_LISTING_OK ? aimx__kind_name(e->kind)
                                                : "-",
                   e->status == AIMX_LISTING_OK ? e->version : "-", abi,
                   status_word(e->status), e->builtin ? "(built in)" : e->path);
            if (e->status != AIMX_LISTING_OK)
                printf("%20s %s\n", "", e->reason);
        }
    }
    free(list);
    aimx__config_free(&c);
    return AIMX_EXIT_OK;
}
