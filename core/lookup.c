/* SPDX-License-Identifier: MIT */
#include "lookup.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct entry {
    aimx_dns_answer ans; /* public once done */
    aimx_dns_sink sink;
    struct aimx_dns_cache *cache;
    int started; /* lookup() accepted it: a completion will come */
    int done;    /* under the cache's lock */
};

struct aimx_dns_cache {
    aimx_instance *resolver;
    uint64_t deadline_us;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct entry **entries; /* pointers: answers never move */
    size_t count;
    size_t cap;
    size_t lookups;
};

static void normalise(const char *name, char *out, size_t len, int *bad);
static struct entry *find(aimx_dns_cache *c, const char *name, uint16_t type);
static struct entry *add_entry(aimx_dns_cache *c, const char *name,
                               uint16_t type);
static void on_done(aimx_dns_sink *sink, void *arg);
static void start(aimx_dns_cache *c, struct entry *e);
static void finish_locked(struct entry *e);
static int all_done(struct entry *const *list, size_t n);
static void wait_for(aimx_dns_cache *c, struct entry *const *list, size_t n);
static uint64_t now_us(void);

int
aimx__dns_outcome_temporary(uint32_t outcome)
{
    switch (outcome) {
    case AIMX_DNS_OK:
    case AIMX_DNS_NODATA:
    case AIMX_DNS_NXDOMAIN:
    case AIMX_DNS_BADNAME:
        return 0;
    default:
        return 1;
    }
}

aimx_dns_cache *
aimx__dns_cache_new(aimx_instance *resolver, uint64_t deadline_us)
{
    aimx_dns_cache *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->resolver = resolver;
    c->deadline_us = deadline_us;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    return c;
}

void
aimx__dns_cache_free(aimx_dns_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->count; i++) {
        aimx__dns_sink_free(&c->entries[i]->sink);
        free(c->entries[i]);
    }
    free(c->entries);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

size_t
aimx__dns_cache_lookups(aimx_dns_cache *c)
{
    size_t n;

    pthread_mutex_lock(&c->lock);
    n = c->lookups;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* Names compare without case and without the trailing dot. */
static void
normalise(const char *name, char *out, size_t len, int *bad)
{
    size_t l = strlen(name);

    *bad = 0;
    if (l > 1 && name[l - 1] == '.')
        l--;
    if (l == 0 || l >= len || l > 253) {
        *bad = 1;
        l = l >= len ? len - 1 : l;
    }
    for (size_t i = 0; i < l; i++)
        out[i] = (char)tolower((unsigned char)name[i]);
    out[l] = '\0';
}

static struct entry *
find(aimx_dns_cache *c, const char *name, uint16_t type)
{
    for (size_t i = 0; i < c->count; i++)
        if (c->entries[i]->ans.type == type &&
            strcmp(c->entries[i]->ans.name, name) == 0)
            return c->entries[i];
    return NULL;
}

/* Under the lock. */
static struct entry *
add_entry(aimx_dns_cache *c, const char *name, uint16_t type)
{
    struct entry *e;

    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct entry **grown = realloc(c->entries, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        c->entries = grown;
        c->cap = cap;
    }
    e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    snprintf(e->ans.name, sizeof e->ans.name, "%s", name);
    e->ans.type = type;
    e->cache = c;
    aimx__dns_sink_init(&e->sink, on_done, e);
    c->entries[c->count++] = e;
    return e;
}

/* Under the lock: the sink is complete, publish its answer. */
static void
finish_locked(struct entry *e)
{
    e->ans.outcome = e->sink.outcome;
    snprintf(e->ans.diag, sizeof e->ans.diag, "%.159s", e->sink.diag);
    e->ans.records = e->sink.records;
    e->ans.count = e->sink.count;
    e->done = 1;
}

/* Runs on the resolver's thread, possibly inside lookup(). */
static void
on_done(aimx_dns_sink *sink, void *arg)
{
    struct entry *e = arg;
    aimx_dns_cache *c = e->cache;

    (void)sink;
    pthread_mutex_lock(&c->lock);
    finish_locked(e);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void
start(aimx_dns_cache *c, struct entry *e)
{
    char absolute[260];
    aimx_dns_query q;
    aimx_status st;

    snprintf(absolute, sizeof absolute, "%s.", e->ans.name);
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    q.type = e->ans.type;
    q.name = absolute;
    q.deadline_us = c->deadline_us;
    pthread_mutex_lock(&c->lock);
    c->lookups++;
    /* Set before the call: the completion may come before it returns. */
    e->started = 1;
    pthread_mutex_unlock(&c->lock);
    st = c->resolver->plugin.resolver.lookup(c->resolver->instance, &q,
                                             &e->sink);
    if (st == AIMX_OK)
        return;
    /* Refused up front: no completion will come, so make one. */
    pthread_mutex_lock(&c->lock);
    e->started = 0;
    e->sink.done = 1;
    e->sink.outcome = AIMX_DNS_LOCALERR;
    snprintf(e->sink.diag, sizeof e->sink.diag,
             "the resolver refused the lookup (status %d)", (int)st);
    finish_locked(e);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int
all_done(struct entry *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!list[i]->done)
            return 0;
    return 1;
}

/* Under the lock.  Also waits for lookups another thread started: each
 * name is asked once. */
static void
wait_for(aimx_dns_cache *c, struct entry *const *list, size_t n)
{
    int cancelled = 0;

    while (!all_done(list, n)) {
        if (c->deadline_us == 0 || cancelled) {
            pthread_cond_wait(&c->cond, &c->lock);
            continue;
        }
        /* A monotonic deadline against a CLOCK_REALTIME wait: short steps,
         * compared on the monotonic clock. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
        if (!all_done(list, n) && now_us() >= c->deadline_us) {
            /* Ask the resolver to stop; its completions still come. */
            cancelled = 1;
            if (c->resolver->plugin.resolver.cancel == NULL)
                continue;
            for (size_t i = 0; i < n; i++) {
                struct entry *e = list[i];
                if (e->done || !e->started)
                    continue;
                /* The sink stays valid until completed: drop the lock
                 * only around the call, re-checking afterwards. */
                pthread_mutex_unlock(&c->lock);
                c->resolver->plugin.resolver.cancel(c->resolver->instance,
                                                    &e->sink);
                pthread_mutex_lock(&c->lock);
            }
        }
    }
}

int
aimx__dns_cache_fetch(aimx_dns_cache *c, const aimx_dns_ask *asks, size_t n)
{
    struct entry **mine = calloc(n ? n : 1, sizeof *mine);
    struct entry **fresh = calloc(n ? n : 1, sizeof *fresh);
    size_t nfresh = 0;
    int rc = 0;

    if (mine == NULL || fresh == NULL) {
        free(mine);
        free(fresh);
        return -1;
    }
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        char name[256];
        int bad;
        struct entry *e;

        normalise(asks[i].name, name, sizeof name, &bad);
        e = find(c, name, asks[i].type);
        if (e == NULL) {
            e = add_entry(c, name, asks[i].type);
            if (e == NULL) {
                rc = -1;
                break;
            }
            if (bad) {
                /* Never reaches the resolver: answered here. */
                e->sink.done = 1;
                e->sink.outcome = AIMX_DNS_BADNAME;
                snprintf(e->sink.diag, sizeof e->sink.diag,
                         "not a name that can be looked up");
                finish_locked(e);
            } else {
                fresh[nfresh++] = e;
            }
        }
        mine[i] = e;
    }
    pthread_mutex_unlock(&c->lock);
    /* Every new lookup is started before any is waited for. */
    for (size_t i = 0; i < nfresh; i++)
        start(c, fresh[i]);
    pthread_mutex_lock(&c->lock);
    if (rc == 0)
        wait_for(c, mine, n);
    else
        wait_for(c, fresh, nfresh);
    pthread_mutex_unlock(&c->lock);
    free(mine);
    free(fresh);
    return rc;
}

const aimx_dns_answer *
aimx__dns_cache_get(aimx_dns_cache *c, const char *name, uint16_t type)
{
    aimx_dns_ask ask = {name, type};
    char norm[256];
    struct entry *e;
    int bad;

    if (aimx__dns_cache_fetch(c, &ask, 1) != 0)
        return NULL;
    normalise(name, norm, sizeof norm, &bad);
    pthread_mutex_lock(&c->lock);
    e = find(c, norm, type);
    pthread_mutex_unlock(&c->lock);
    return e ? &e->ans : NULL;
}
