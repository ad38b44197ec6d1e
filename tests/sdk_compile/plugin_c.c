/* SPDX-License-Identifier: MIT */
/*
 * A complete small transport plugin, written the way the SDK documents it,
 * so that compiling it under strict ISO modes and -Werror proves the header
 * (including AIMX_PLUGIN_DEFINE and the AIMX_*_AT macros) is clean C99/C11
 * for plugin authors.  Compiled with and without -DAIMX_PLUGIN_STATIC; the
 * symbol tests then look at which entry symbols the object defines.
 *
 * Nothing here runs: it only has to compile without a single warning.
 */
#include <aimx/plugin.h>

#include <string.h>

struct demo {
    const aimx_host_api *api;
    aimx_host *host;
    uint64_t connect_timeout_us;
};

struct demo_session {
    int unused;
};

static aimx_status
demo_create(const aimx_host_api *api, aimx_host *host, void **instance)
{
    struct demo *d;
    uint64_t timeout = 30000000u;
    aimx_status st;

    st = api->cfg_duration(host, "timeouts.connect", 1000u, 600000000u,
                           &timeout);
    if (st != AIMX_OK && st != AIMX_ERR_NOT_FOUND)
        return st;
    d = (struct demo *)api->alloc(host, sizeof *d);
    if (d == NULL)
        return AIMX_ERR_NOMEM;
    d->api = api;
    d->host = host;
    d->connect_timeout_us = timeout;
    api->log(host, AIMX_LOG_DEBUG, "connect timeout %llu us",
             (unsigned long long)timeout);
    *instance = d;
    return AIMX_OK;
}

static void
demo_destroy(void *instance)
{
    struct demo *d = (struct demo *)instance;

    d->api->free(d->host, d);
}

static void
copy_text(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);

    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static aimx_status
demo_open(void *instance, const aimx_open_request *req, aimx_session **session,
          aimx_transport_result *res)
{
    struct demo *d = (struct demo *)instance;
    aimx_connect_attempt *a;

    (void)session;
    if (req->addr_count > 0 && res->attempt_count < res->attempt_cap) {
        /* The host set the element's struct_size; keep it. */
        a = AIMX_ATTEMPT_AT(res, res->attempt_count);
        a->outcome = AIMX_CONNECT_REFUSED;
        a->remote = req->addrs[0];
        a->start_us = d->api->monotonic_us(d->host);
        a->end_us = a->start_us;
        res->attempt_count++;
    }
    res->result_class = AIMX_CLASS_TEMPORARY;
    res->scope = AIMX_SCOPE_ADDRESS;
    res->phase = AIMX_PHASE_CONNECT;
    res->kind = AIMX_FAIL_REFUSED;
    copy_text(res->reply, sizeof res->reply, "connection refused");
    return AIMX_OK;
}

static aimx_status
demo_send(void *instance, aimx_session *session, const aimx_envelope *env,
          aimx_msg *msg, aimx_transport_result *res)
{
    struct demo *d = (struct demo *)instance;
    char buf[512];
    int64_t n;
    size_t i;

    (void)session;
    while ((n = d->api->msg_read(msg, buf, sizeof buf)) > 0)
        continue;
    if (n < 0)
        return (aimx_status)-n;
    for (i = 0; i < env->rcpt_count && i < res->rcpt_count; i++) {
        aimx_rcpt_result *r = AIMX_RCPT_AT(res, i);

        r->result_class = AIMX_CLASS_OK;
        r->phase = AIMX_PHASE_DOT;
        r->code = 250;
        copy_text(r->enhanced, sizeof r->enhanced, "2.0.0");
    }
    res->result_class = AIMX_CLASS_OK;
    res->scope = AIMX_SCOPE_RECIPIENT;
    return AIMX_OK;
}

static void
demo_close(void *instance, aimx_session *session, uint64_t deadline_us)
{
    (void)instance;
    (void)session;
    (void)deadline_us;
}

static const aimx_transport_ops demo_ops = {
    .struct_size = sizeof(aimx_transport_ops),
    .open = demo_open,
    .send = demo_send,
    .close = demo_close,
};

static const aimx_plugin_descriptor demo_descriptor = {
    .struct_size = sizeof(aimx_plugin_descriptor),
    .abi_major = AIMX_ABI_MAJOR,
    .abi_minor = AIMX_ABI_MINOR,
    .kind = AIMX_KIND_TRANSPORT,
    .name = "sdk-compile-demo",
    .version = "0",
    .description = "compile check of <aimx/plugin.h>",
    .create = demo_create,
    .destroy = demo_destroy,
    .transport = &demo_ops,
};

AIMX_PLUGIN_DEFINE(sdk_compile_demo, demo_descriptor);
