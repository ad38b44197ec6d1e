/* SPDX-License-Identifier: MIT */
/* aimx config check: the config file, the plugins it names, and the
 * spool directory and DKIM key that aimx send will need. */
#include "cli.h"
#include "dkim.h"
#include "exitcodes.h"
#include "host.h"
#include "json.h"
#include "log.h"
#include "spool.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void check_spool_dir(aimx_config *c, aimx_diag *d);
static int check_dkim_key(aimx_config *c, aimx_diag *d);

/* What aimx send does first with spool_dir: make an unnamed file in it. */
static void
check_spool_dir(aimx_config *c, aimx_diag *d)
{
    char err[1024], where[512];
    int code = 0,
        fd = aimx__spool_tmpfile(c->spool_dir, &code, err, sizeof err);

    if (fd >= 0) {
        close(fd);
        return;
    }
    aimx__config_where(c, config_lookup(&c->lc, "spool_dir"), where,
                       sizeof where);
    aimx__diag_add(d, "%s: %s", where, err);
}

/* The key aimx send would sign with, checked by the same code; its size
 * in bits, or 0 when it is unusable (reported in d). */
static int
check_dkim_key(aimx_config *c, aimx_diag *d)
{
    char err[1024], where[512];
    EVP_PKEY *key = NULL;
    int bits = 0;

    if (aimx__dkim_load_key(c->dkim_key_file, &key, err, sizeof err) != 0) {
        aimx__config_where(c, config_lookup(&c->lc, "dkim.key_file"), where,
                           sizeof where);
        aimx__diag_add(d, "%s: %s", where, err);
        return 0;
    }
    bits = EVP_PKEY_get_bits(key);
    EVP_PKEY_free(key);
    return bits;
}

int
aimx__cmd_config_check(const aimx_cli *cli)
{
    aimx_config c;
    aimx_instance inst[AIMX_SLOT_COUNT];
    aimx_diag d = {0};
    int rc, key_bits = 0;

    if (cli->arg_count > 0)
        return aimx__fail(cli, AIMX_EXIT_USAGE,
                          "'aimx config check' takes no arguments (got '%s')",
                          cli->args[0]);
    rc = aimx__cli_load_config(cli, &c);
    if (rc != 0)
        return rc;

    /* Each plugin checks its own group; collect every problem, not just the
     * first, so one run shows the whole list. */
    memset(inst, 0, sizeof inst);
    for (int slot = 0; slot < AIMX_SLOT_COUNT; slot++)
        aimx__instance_create(&inst[slot], &c, slot, &d);
    for (int slot = AIMX_SLOT_COUNT - 1; slot >= 0; slot--)
        aimx__instance_destroy(&inst[slot]);
    check_spool_dir(&c, &d);
    if (c.dkim)
        key_bits = check_dkim_key(&c, &d);

    if (d.count > 0) {
        rc = aimx__fail_diag(cli, AIMX_EXIT_CONFIG, &d);
        aimx__diag_free(&d);
        aimx__config_free(&c);
        return rc;
    }
    if (c.domain_is_default && strchr(c.domain, '.') == NULL)
        aimx__warn("domain is '%s', this host's name, which has no dot: set "
                   "'domain' in the configuration to the mail domain",
                   c.domain);

    if (cli->json) {
        aimx_json j;
        aimx__json_init(&j, stdout);
        aimx__json_object_begin(&j, NULL);
        aimx__json_int(&j, "schema", AIMX_JSON_SCHEMA);
        aimx__json_string(&j, "status", "ok");
        aimx__json_string(&j, "file", c.path);
        aimx__json_string(&j, "domain", c.domain);
        aimx__json_bool(&j, "domain_from_hostname", c.domain_is_default);
        aimx__json_bool(&j, "enable_ipv6", c.enable_ipv6);
        aimx__json_string(&j, "spool_dir", c.spool_dir);
        if (c.dkim) {
            aimx__json_object_begin(&j, "dkim");
            aimx__json_string(&j, "selector", c.dkim_selector);
            aimx__json_string(&j, "key_file", c.dkim_key_file);
            aimx__json_int(&j, "key_bits", key_bits);
            aimx__json_object_end(&j);
        } else {
            aimx__json_null(&j, "dkim");
        }
        aimx__json_array_begin(&j, "plugin_dirs");
        for (size_t i = 0; i < c.plugin_dir_count; i++)
            aimx__json_string(&j, NULL, c.plugin_dirs[i]);
        aimx__json_array_end(&j);
        aimx__json_array_begin(&j, "plugins");
        for (int slot = 0; slot < AIMX_SLOT_COUNT; slot++) {
            aimx__json_object_begin(&j, NULL);
            aimx__json_string(&j, "slot", aimx__slot_name(slot));
            aimx__json_string(&j, "name", inst[slot].plugin.name);
            aimx__json_string(&j, "version", inst[slot].plugin.desc.version);
            aimx__json_string(
                &j, "file",
                inst[slot].plugin.builtin ? NULL : inst[slot].plugin.path);
            aimx__json_bool(&j, "builtin", inst[slot].plugin.builtin);
            aimx__json_object_end(&j);
        }
        aimx__json_array_end(&j);
        aimx__json_object_end(&j);
        aimx__json_finish(&j);
    } else {
        printf("%s: OK\n",
               c.path ? c.path : "built-in defaults (no configuration file)");
        printf("  %-12s %s%s\n", "domain", c.domain,
               c.domain_is_default ? " (this host's name)" : "");
        printf("  %-12s %s\n", "enable_ipv6", c.enable_ipv6 ? "true" : "false");
        printf("  %-12s %s\n", "spool_dir", c.spool_dir);
        if (c.dkim)
            printf("  %-12s selector %s, %d-bit RSA key %s\n", "dkim",
                   c.dkim_selector, key_bits, c.dkim_key_file);
        else
            printf("  %-12s off (no dkim group: messages are not signed)\n",
                   "dkim");
        for (int slot = 0; slot < AIMX_SLOT_COUNT; slot++)
            printf("  %-12s %s %s (%s)\n", aimx__slot_name(slot),
                   inst[slot].plugin.name, inst[slot].plugin.desc.version,
                   inst[slot].plugin.builtin ? "built in"
                                             : inst[slot].plugin.path);
    }
    aimx__config_free(&c);
    return AIMX_EXIT_OK;
}
