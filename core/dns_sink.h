/* SPDX-License-Identifier: MIT */
/* The host's DNS result sink: resolvers hand records and one completion to
 * it from any thread; the core waits for it or is called back. */
#ifndef AIMX_DNS_SINK_H
#define AIMX_DNS_SINK_H

#include <aimx/plugin.h>

#include <pthread.h>

typedef struct aimx_dns_rr {
    uint16_t type;
    uint16_t preference;
    uint32_t ttl;
    char *owner;
    char *target;
    aimx_addr address;
    uint8_t *text;
    size_t text_len;
    uint8_t *rdata;
    size_t rdata_len;
} aimx_dns_rr;

typedef void aimx_dns_sink_done_fn(aimx_dns_sink *sink, void *arg);

struct aimx_dns_sink {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    aimx_dns_rr *records;
    size_t count;
    size_t capacity;
    int done;
    int oom;          /* a record could not be stored */
    uint32_t outcome; /* enum aimx_dns_outcome */
    uint32_t flags;   /* AIMX_DNS_F_* */
    int32_t native_code;
    char diag[256];
    char server[128];
    aimx_dns_sink_done_fn *on_done; /* called once, on the resolver's thread */
    void *on_done_arg;
};

void aimx__dns_sink_init(aimx_dns_sink *s, aimx_dns_sink_done_fn *on_done,
                         void *arg);
/* Blocks until the completion arrived. */
void aimx__dns_sink_wait(aimx_dns_sink *s);
void aimx__dns_sink_free(aimx_dns_sink *s);

/* The services in the host table. */
aimx_status aimx__dns_sink_add(aimx_dns_sink *s, const aimx_dns_record *rec);
void aimx__dns_sink_complete(aimx_dns_sink *s, const aimx_dns_completion *c);

#endif
