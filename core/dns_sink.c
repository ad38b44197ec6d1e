/* SPDX-License-Identifier: MIT */
#include "dns_sink.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *dup_bytes(const void *p, size_t n);

void
aimx__dns_sink_init(aimx_dns_sink *s, aimx_dns_sink_done_fn *on_done, void *arg)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->on_done = on_done;
    s->on_done_arg = arg;
}

static void *
dup_bytes(const void *p, size_t n)
{
    void *q;

    if (p == NULL)
        return NULL;
    q = malloc(n + 1); /* +1: text stays NUL-terminated for logs */
    if (q != NULL) {
        memcpy(q, p, n);
        ((char *)q)[n] = '\0';
    }
    return q;
}

aimx_status
aimx__dns_sink_add(aimx_dns_sink *s, const aimx_dns_record *rec)
{
    aimx_dns_record r;
    aimx_dns_rr *rr;

    if (s == NULL || rec == NULL)
        return AIMX_ERR_INVALID;
    /* Fields past the plugin's struct_size read as zero. */
    memset(&r, 0, sizeof r);
    memcpy(&r, rec, rec->struct_size < sizeof r ? rec->struct_size : sizeof r);

    pthread_mutex_lock(&s->lock);
    if (s->done) {
        pthread_mutex_unlock(&s->lock);
        aimx__err("a resolver added a DNS record after completing the lookup");
        return AIMX_ERR_INVALID;
    }
    if (s->count == s->capacity) {
        size_t cap = s->capacity ? s->capacity * 2 : 8;
        aimx_dns_rr *grown = realloc(s->records, cap * sizeof *grown);
        if (grown == NULL) {
            s->oom = 1;
            pthread_mutex_unlock(&s->lock);
            return AIMX_ERR_NOMEM;
        }
        s->records = grown;
        s->capacity = cap;
    }
    rr = &s->records[s->count];
    memset(rr, 0, sizeof *rr);
    rr->type = r.type;
    rr->preference = r.preference;
    rr->ttl = r.ttl;
    rr->address = r.address;
    rr->owner = r.owner ? strdup(r.owner) : NULL;
    rr->target = r.target ? strdup(r.target) : NULL;
    rr->text = dup_bytes(r.text, r.text_len);
    rr->text_len = r.text ? r.text_len : 0;
    rr->rdata = dup_bytes(r.rdata, r.rdata_len);
    rr->rdata_len = r.rdata ? r.rdata_len : 0;
    if ((r.owner && !rr->owner) || (r.target && !rr->target) ||
        (r.text && !rr->text) || (r.rdata && !rr->rdata)) {
        free(rr->owner);
        free(rr->target);
        free(rr->text);
        free(rr->rdata);
        s->oom = 1;
        pthread_mutex_unlock(&s->lock);
        return AIMX_ERR_NOMEM;
    }
    s->count++;
    pthread_mutex_unlock(&s->lock);
    return AIMX_OK;
}

void
aimx__dns_sink_complete(aimx_dns_sink *s, const aimx_dns_completion *c)
{
    aimx_dns_completion cc;
    aimx_dns_sink_done_fn *cb;
    void *arg;

    if (s == NULL)
        return;
    memset(&cc, 0, sizeof cc);
    if (c != NULL)
        memcpy(&cc, c, c->struct_size < sizeof cc ? c->struct_size : sizeof cc);
    else
        cc.outcome = AIMX_DNS_LOCALERR;

    pthread_mutex_lock(&s->lock);
    if (s->done) {
        pthread_mutex_unlock(&s->lock);
        aimx__err("a resolver completed the same DNS lookup twice");
        return;
    }
    s->outcome = s->oom ? AIMX_DNS_LOCALERR : cc.outcome;
    s->flags = cc.flags;
    s->native_code = cc.native_code;
    snprintf(s->diag, sizeof s->diag, "%s",
             s->oom ? "out of memory storing the answer"
                    : (cc.diag ? cc.diag : ""));
    snprintf(s->server, sizeof s->server, "%s", cc.server ? cc.server : "");
    s->done = 1;
    cb = s->on_done;
    arg = s->on_done_arg;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    /* After the unlock: the callback may free the sink. */
    if (cb != NULL)
        cb(s, arg);
}

void
aimx__dns_sink_wait(aimx_dns_sink *s)
{
    pthread_mutex_lock(&s->lock);
    while (!s->done)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

void
aimx__dns_sink_free(aimx_dns_sink *s)
{
    for (size_t i = 0; i < s->count; i++) {
        free(s->records[i].owner);
        free(s->records[i].target);
        free(s->records[i].text);
        free(s->records[i].rdata);
    }
    free(s->records);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    memset(s, 0, sizeof *s);
}
