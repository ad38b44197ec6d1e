/* SPDX-License-Identifier: MIT */
/*
 * resolver-cares: the bundled DNS resolver plugin, on c-ares 1.18 as
 * Debian 12 ships it.  This file is the plugin around the I/O thread
 * (rcares_io.c): the descriptor, the settings and the operations.
 *
 * Settings, in the plugin's group:
 *   servers  list of "IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6 address
 *            (port 53); absent: the servers of /etc/resolv.conf
 *   timeout  one query to one server, "100ms".."60s", default "2s"
 *   tries    how often each silent server is asked, 1..10, default 2
 */
#include "rcares_io.h"
#include "rcares_server.h"

#include <aimx/plugin.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#ifndef RCARES_VERSION
#define RCARES_VERSION "0.1.0"
#endif

#define TIMEOUT_MIN_US     100000u   /* 100ms */
#define TIMEOUT_MAX_US     60000000u /* 60s */
#define TIMEOUT_DEFAULT_US 2000000u  /* 2s */
#define TRIES_MIN          1
#define TRIES_MAX          10
#define TRIES_DEFAULT      2

static aimx_status rcares_create(const aimx_host_api *api, aimx_host *host,
                                 void **instance);
static void rcares_destroy(void *instance);
static aimx_status rcares_lookup(void *instance, const aimx_dns_query *query,
                                 aimx_dns_sink *sink);
static void rcares_cancel(void *instance, aimx_dns_sink *sink);
static aimx_status read_servers(const aimx_host_api *api, aimx_host *host,
                                struct rcares_server *servers, size_t *count);
static int api_usable(const aimx_host_api *api);

static const aimx_resolver_ops rcares_ops = {
    .struct_size = sizeof(aimx_resolver_ops), /* this plugin's ABI 1.0 size */
    .lookup = rcares_lookup, /* queues the lookup for the I/O thread */
    .cancel = rcares_cancel, /* completes it as CANCELLED, promptly */
};

static const aimx_plugin_descriptor rcares_descriptor = {
    .struct_size = sizeof(aimx_plugin_descriptor), /* checked by the host */
    .abi_major = AIMX_ABI_MAJOR, /* the SDK this was built against */
    .abi_minor = AIMX_ABI_MINOR, /* likewise */
    .kind = AIMX_KIND_RESOLVER,  /* only .resolver is set below */
    .flags = 0,                  /* none defined in 1.0 */
    .name = "resolver-cares",    /* must equal the file name */
    .version = RCARES_VERSION,   /* the project's version when built in */
    .description = "DNS lookups with c-ares", /* shown by `aimx plugins` */
    .create = rcares_create,   /* reads the settings, starts the I/O thread */
    .destroy = rcares_destroy, /* cancels what is pending, stops the thread */
    .resolver = &rcares_ops,   /* the operations of this kind */
};

AIMX_PLUGIN_DEFINE(resolver_cares, rcares_descriptor);

static aimx_status
rcares_create(const aimx_host_api *api, aimx_host *host, void **instance)
{
    struct rcares_server servers[RCARES_MAX_SERVERS];
    struct rcares *rc;
    size_t nservers = 0, i;
    uint64_t timeout_us = TIMEOUT_DEFAULT_US;
    int64_t tries = TRIES_DEFAULT;
    aimx_status st_servers, st_timeout, st_tries;

    if (!instance || !api_usable(api))
        return AIMX_ERR_UNSUPPORTED;

    /* Every key is read before any is judged: the host flags keys nobody
     * asked for as unknown, and an early return would make a valid key
     * look like a typo next to the real error. */
    st_servers = read_servers(api, host, servers, &nservers);
    st_timeout = api->cfg_duration(host, "timeout", TIMEOUT_MIN_US,
                                   TIMEOUT_MAX_US, &timeout_us);
    st_tries = api->cfg_int(host, "tries", TRIES_MIN, TRIES_MAX, &tries);
    if (st_timeout == AIMX_ERR_NOT_FOUND) {
        timeout_us = TIMEOUT_DEFAULT_US;
        st_timeout = AIMX_OK;
    }
    if (st_tries == AIMX_ERR_NOT_FOUND) {
        tries = TRIES_DEFAULT;
        st_tries = AIMX_OK;
    }
    if (st_servers != AIMX_OK)
        return st_servers;
    if (st_timeout != AIMX_OK)
        return st_timeout;
    if (st_tries != AIMX_OK)
        return st_tries;

    if (!(rc = api->alloc(host, sizeof *rc))) {
        api->log(host, AIMX_LOG_ERR, "out of memory");
        return AIMX_ERR_NOMEM;
    }
    rc->api = api;
    rc->host = host;
    memcpy(rc->servers, servers, nservers * sizeof servers[0]);
    rc->nservers = nservers;
    rc->servers_from_system = nservers == 0;
    rc->timeout_ms = (unsigned)(timeout_us / 1000u);
    rc->tries = (unsigned)tries;
    rc->wake_fd = -1;
    pthread_mutex_init(&rc->lock, NULL);
    pthread_cond_init(&rc->started, NULL);
    if (rcares_io_start(rc) != 0) {
        api->log(host, AIMX_LOG_ERR, "%s", rc->init_error);
        pthread_cond_destroy(&rc->started);
        pthread_mutex_destroy(&rc->lock);
        api->free(host, rc);
        return AIMX_ERR_INTERNAL;
    }
    for (i = 0; i < rc->nservers; i++)
        api->log(host, AIMX_LOG_DEBUG, "server %zu: %s%s", i + 1,
                 rc->servers[i].label,
                 rc->servers_from_system ? " (from the system)" : "");
    api->log(host, AIMX_LOG_DEBUG, "timeout %ums, tries %u", rc->timeout_ms,
             rc->tries);
    *instance = rc;
    return AIMX_OK;
}

static void
rcares_destroy(void *instance)
{
    struct rcares *rc = instance;

    if (!rc)
        return;
    rcares_io_stop(rc);
    pthread_cond_destroy(&rc->started);
    pthread_mutex_destroy(&rc->lock);
    rc->api->free(rc->host, rc);
}

static aimx_status
rcares_lookup(void *instance, const aimx_dns_query *query, aimx_dns_sink *sink)
{
    if (!instance)
        return AIMX_ERR_INVALID;
    return rcares_io_lookup(instance, query, sink);
}

static void
rcares_cancel(void *instance, aimx_dns_sink *sink)
{
    if (instance && sink)
        rcares_io_cancel(instance, sink);
}

/* `servers`: absent is fine (the system's); present, every entry must
 * parse, and each bad one is reported under its own path. */
static aimx_status
read_servers(const aimx_host_api *api, aimx_host *host,
             struct rcares_server *servers, size_t *count)
{
    char path[32], why[160];
    const char *text;
    size_t n = 0, i;
    aimx_status st, ret = AIMX_OK;
    int ambiguous;

    *count = 0;
    st = api->cfg_count(host, "servers", &n);
    if (st == AIMX_ERR_NOT_FOUND)
        return AIMX_OK;
    if (st != AIMX_OK)
        return st;
    if (n == 0)
        return api->cfg_error(host, "servers",
                              "is empty: name at least one server, or leave "
                              "it out to use /etc/resolv.conf");
    if (n > RCARES_MAX_SERVERS)
        return api->cfg_error(host, "servers",
                              "names %zu servers; at most %d are allowed", n,
                              RCARES_MAX_SERVERS);
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof path, "servers[%zu]", i);
        text = NULL;
        st = api->cfg_string(host, path, &text);
        if (st == AIMX_ERR_NOT_FOUND)
            st = api->cfg_error(host, path, "is missing");
        if (st != AIMX_OK) {
            ret = st;
            continue;
        }
        if (rcares_server_parse(text, &servers[i], &ambiguous, why,
                                sizeof why) != 0) {
            ret = api->cfg_error(host, path, "\"%s\" %s", text, why);
            continue;
        }
        if (ambiguous)
            api->log(host, AIMX_LOG_WARNING,
                     "%s: \"%s\" is read as the IPv6 address %s on port 53; "
                     "to give a port, write \"[ADDRESS]:PORT\"",
                     path, text, text);
    }
    if (ret == AIMX_OK)
        *count = n;
    return ret;
}

/* A reader may use only what lies below the writer's struct_size, and a
 * NULL slot means "not provided": check every service this plugin uses. */
static int
api_usable(const aimx_host_api *api)
{
    if (!api || api->struct_size < offsetof(aimx_host_api, msg_read))
        return 0;
    return api->log && api->cfg_string && api->cfg_int && api->cfg_duration &&
           api->cfg_count && api->cfg_error && api->alloc && api->free &&
           api->monotonic_us && api->dns_add && api->dns_complete;
}
