/* SPDX-License-Identifier: MIT */
/* The DNS lookup cache behind aimx setup and verify: independent lookups
 * are in flight together (proved by a resolver that holds every answer
 * back until enough are outstanding, not by timing), a name asked by two
 * threads at once reaches the resolver once, and answers stay put. */
#include "dns_sink.h"
#include "host.h"
#include "lookup.h"
#include "netaddr.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* The held-back resolver: lookup() queues; a thread completes the queue
 * once `hold` lookups are outstanding, or after a second. */
struct held {
    aimx_dns_sink *sink;
    char name[260];
    uint16_t type;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct held queue[64];
static size_t queued, hold, calls, max_outstanding;
static int stop;
static pthread_t completer;

static void
answer(const struct held *h)
{
    aimx_dns_completion c;
    aimx_dns_record r;

    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    if (strncmp(h->name, "nx.", 3) == 0) {
        c.outcome = AIMX_DNS_NXDOMAIN;
    } else if (strncmp(h->name, "fail.", 5) == 0) {
        c.outcome = AIMX_DNS_SERVFAIL;
        c.diag = "scripted failure";
    } else {
        memset(&r, 0, sizeof r);
        r.struct_size = sizeof r;
        r.type = h->type;
        r.owner = h->name;
        if (h->type == AIMX_DNS_TXT) {
            r.text = (const uint8_t *)h->name;
            r.text_len = strlen(h->name);
        } else {
            assert_int_equal(
                aimx__addr_parse(h->type == AIMX_DNS_A ? "127.0.0.1" : "::1",
                                 &r.address),
                0);
        }
        aimx__dns_sink_add(h->sink, &r);
        c.outcome = AIMX_DNS_OK;
    }
    aimx__dns_sink_complete(h->sink, &c);
}

static void *
completer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        while (!stop && queued < hold)
            if (pthread_cond_timedwait(&cond, &lock, &ts) != 0)
                break;
        if (queued == 0)
            continue;
        struct held batch[64];
        size_t n = queued;
        memcpy(batch, queue, n * sizeof batch[0]);
        queued = 0;
        pthread_mutex_unlock(&lock);
        for (size_t i = 0; i < n; i++)
            answer(&batch[i]);
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static aimx_status
held_lookup(void *instance, const aimx_dns_query *q, aimx_dns_sink *sink)
{
    (void)instance;
    pthread_mutex_lock(&lock);
    calls++;
    assert_true(queued < 64);
    queue[queued].sink = sink;
    snprintf(queue[queued].name, sizeof queue[queued].name, "%s", q->name);
    queue[queued].type = q->type;
    queued++;
    if (queued > max_outstanding)
        max_outstanding = queued;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    return AIMX_OK;
}

static aimx_instance resolver;

static int
setup(void **state)
{
    (void)state;
    memset(&resolver, 0, sizeof resolver);
    snprintf(resolver.plugin.name, sizeof resolver.plugin.name, "held");
    resolver.plugin.resolver.lookup = held_lookup;
    queued = calls = max_outstanding = 0;
    hold = 1;
    stop = 0;
    assert_int_equal(pthread_create(&completer, NULL, completer_main, NULL), 0);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    pthread_mutex_lock(&lock);
    stop = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    pthread_join(completer, NULL);
    return 0;
}

static void
independent_lookups_fly_together(void **state)
{
    aimx_dns_cache *c = aimx__dns_cache_new(&resolver, 0);
    const aimx_dns_ask asks[] = {
        {"example.test", AIMX_DNS_TXT},
        {"example.test", AIMX_DNS_A},
        {"example.test.", AIMX_DNS_AAAA},
        {"_dmarc.example.test", AIMX_DNS_TXT},
        {"nx.example.test", AIMX_DNS_TXT},
    };
    const aimx_dns_answer *a;

    (void)state;
    /* Nothing completes until all five are outstanding. */
    hold = 5;
    assert_int_equal(aimx__dns_cache_fetch(c, asks, 5), 0);
    assert_int_equal(max_outstanding, 5);
    assert_int_equal(aimx__dns_cache_lookups(c), 5);

    /* Answers come from the cache now: no new lookup, any spelling. */
    a = aimx__dns_cache_get(c, "EXAMPLE.test.", AIMX_DNS_A);
    assert_non_null(a);
    assert_int_equal(a->outcome, AIMX_DNS_OK);
    assert_int_equal(a->count, 1);
    assert_string_equal(a->name, "example.test");
    a = aimx__dns_cache_get(c, "nx.example.test", AIMX_DNS_TXT);
    assert_int_equal(a->outcome, AIMX_DNS_NXDOMAIN);
    assert_int_equal(aimx__dns_cache_lookups(c), 5);
    assert_int_equal(calls, 5);

    /* A new one is asked; the resolver saw exactly one more. */
    hold = 1;
    a = aimx__dns_cache_get(c, "fail.example.test", AIMX_DNS_TXT);
    assert_int_equal(a->outcome, AIMX_DNS_SERVFAIL);
    assert_string_equal(a->diag, "scripted failure");
    assert_true(aimx__dns_outcome_temporary(a->outcome));
    assert_false(aimx__dns_outcome_temporary(AIMX_DNS_NXDOMAIN));
    assert_int_equal(calls, 6);
    aimx__dns_cache_free(c);
}

struct getter {
    aimx_dns_cache *c;
    const aimx_dns_answer *a;
};

static void *
getter_main(void *arg)
{
    struct getter *g = arg;

    g->a = aimx__dns_cache_get(g->c, "shared.test", AIMX_DNS_TXT);
    return NULL;
}

static void
one_lookup_for_many_askers(void **state)
{
    aimx_dns_cache *c = aimx__dns_cache_new(&resolver, 0);
    struct getter g[4];
    pthread_t t[4];

    (void)state;
    /* Held until a second passes: every thread asks meanwhile. */
    hold = 64;
    for (int i = 0; i < 4; i++) {
        g[i].c = c;
        g[i].a = NULL;
        assert_int_equal(pthread_create(&t[i], NULL, getter_main, &g[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(calls, 1);
    for (int i = 0; i < 4; i++) {
        assert_non_null(g[i].a);
        assert_ptr_equal(g[i].a, g[0].a);
        assert_int_equal(g[i].a->outcome, AIMX_DNS_OK);
    }
    aimx__dns_cache_free(c);
}

static aimx_status
refusing_lookup(void *instance, const aimx_dns_query *q, aimx_dns_sink *sink)
{
    (void)instance;
    (void)q;
    (void)sink;
    return AIMX_ERR_INVALID;
}

static void
refused_and_bad_names(void **state)
{
    aimx_instance r;
    aimx_dns_cache *c;
    const aimx_dns_answer *a;
    char longname[300];

    (void)state;
    memset(&r, 0, sizeof r);
    r.plugin.resolver.lookup = refusing_lookup;
    c = aimx__dns_cache_new(&r, 0);
    a = aimx__dns_cache_get(c, "x.test", AIMX_DNS_A);
    assert_int_equal(a->outcome, AIMX_DNS_LOCALERR);
    assert_non_null(strstr(a->diag, "refused the lookup"));
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    a = aimx__dns_cache_get(c, longname, AIMX_DNS_A);
    assert_int_equal(a->outcome, AIMX_DNS_BADNAME);
    a = aimx__dns_cache_get(c, "", AIMX_DNS_A);
    assert_int_equal(a->outcome, AIMX_DNS_BADNAME);
    aimx__dns_cache_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(independent_lookups_fly_together, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(one_lookup_for_many_askers, setup,
                                        teardown),
        cmocka_unit_test(refused_and_bad_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
