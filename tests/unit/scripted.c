/* SPDX-License-Identifier: MIT */
#include "scripted.h"

#include "dns_sink.h"
#include "netaddr.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_PENDING 64

static const struct answer *script;
static size_t script_len;
static size_t hold;
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fake_cond = PTHREAD_COND_INITIALIZER;
static struct pending {
    aimx_dns_sink *sink;
    char name[260];
    uint16_t type;
} pending[MAX_PENDING];
static size_t pending_count, max_outstanding, queries;
static char asked[128][64];

static void
answer_one(const struct pending *p)
{
    aimx_dns_completion done = {sizeof done, AIMX_DNS_NXDOMAIN, 0,
                                0,           "scripted",        NULL};
    for (size_t i = 0; i < script_len; i++) {
        const struct answer *a = &script[i];
        if (strcasecmp(a->name, p->name) != 0 || a->type != p->type)
            continue;
        done.outcome = a->outcome;
        for (size_t k = 0; k < 4 && a->data[k]; k++) {
            aimx_dns_record rec;
            char target[256];
            memset(&rec, 0, sizeof rec);
            rec.struct_size = sizeof rec;
            rec.type = p->type;
            if (p->type == AIMX_DNS_MX) {
                unsigned pref;
                sscanf(a->data[k], "%u %255s", &pref, target);
                rec.preference = (uint16_t)pref;
                rec.target = target;
            } else {
                aimx__addr_parse(a->data[k], &rec.address);
            }
            aimx__dns_sink_add(p->sink, &rec);
        }
        break;
    }
    aimx__dns_sink_complete(p->sink, &done);
}

static void *
completer(void *arg)
{
    struct timespec until;

    (void)arg;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    pthread_mutex_lock(&fake_lock);
    while (pending_count < hold &&
           pthread_cond_timedwait(&fake_cond, &fake_lock, &until) == 0)
        ;
    size_t n = pending_count;
    struct pending batch[MAX_PENDING];
    memcpy(batch, pending, n * sizeof *batch);
    pending_count = 0;
    pthread_mutex_unlock(&fake_lock);
    for (size_t i = 0; i < n; i++)
        answer_one(&batch[i]);
    return NULL;
}

aimx_status
scripted_dns_lookup(void *instance, const aimx_dns_query *q,
                    aimx_dns_sink *sink)
{
    pthread_t t;

    (void)instance;
    pthread_mutex_lock(&fake_lock);
    if (queries < 128)
        snprintf(asked[queries], sizeof asked[0], "%u %s", q->type, q->name);
    queries++;
    if (pending_count >= MAX_PENDING)
        abort();
    pending[pending_count].sink = sink;
    snprintf(pending[pending_count].name, sizeof pending[0].name, "%s",
             q->name);
    pending[pending_count].type = q->type;
    pending_count++;
    if (pending_count > max_outstanding)
        max_outstanding = pending_count;
    int first = pending_count == 1;
    pthread_cond_broadcast(&fake_cond);
    pthread_mutex_unlock(&fake_lock);
    if (first) {
        pthread_create(&t, NULL, completer, NULL);
        pthread_detach(t);
    }
    return AIMX_OK;
}

void
scripted_dns_set(const struct answer *s, size_t len, size_t hold_for)
{
    pthread_mutex_lock(&fake_lock);
    script = s;
    script_len = len;
    hold = hold_for;
    pending_count = max_outstanding = queries = 0;
    pthread_mutex_unlock(&fake_lock);
}

size_t
scripted_dns_queries(void)
{
    return queries;
}

size_t
scripted_dns_max_outstanding(void)
{
    return max_outstanding;
}

int
scripted_dns_was_asked(uint16_t type, const char *name)
{
    char want[64];

    snprintf(want, sizeof want, "%u %s", type, name);
    for (size_t i = 0; i < queries && i < 128; i++)
        if (strcmp(asked[i], want) == 0)
            return 1;
    return 0;
}

/* ---- a small IPv4-only policy, with a switch to misbehave ------------ */

int scripted_policy_bad_index;

aimx_status
scripted_policy_select(void *instance, const aimx_policy_input *in,
                       aimx_policy_output *out)
{
    (void)instance;
    if (in->a_count > 0) {
        out->verdict = AIMX_POLICY_USE;
        for (size_t i = 0; i < in->a_count; i++)
            out->targets[out->target_count++] = (uint32_t)i;
        if (scripted_policy_bad_index)
            out->targets[0] = (uint32_t)(in->a_count + in->aaaa_count + 3);
        return AIMX_OK;
    }
    if (in->a_outcome != AIMX_DNS_NODATA &&
        in->a_outcome != AIMX_DNS_NXDOMAIN && in->a_outcome != AIMX_DNS_OK) {
        out->verdict = AIMX_POLICY_DEFER;
        snprintf(out->reason, sizeof out->reason, "dns_a_failed");
        snprintf(out->detail, sizeof out->detail, "A lookup failed.");
        return AIMX_OK;
    }
    out->verdict = AIMX_POLICY_SKIP;
    snprintf(out->reason, sizeof out->reason, "no_ipv4");
    snprintf(out->detail, sizeof out->detail, "%s has no IPv4 address.",
             in->mx_host);
    return AIMX_OK;
}
