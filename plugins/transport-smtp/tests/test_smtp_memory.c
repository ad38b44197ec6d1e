/* SPDX-License-Identifier: MIT */
/*
 * A 50 MB message to aiosmtpd, read from a file through msg_read(): the
 * peak resident memory of the sending process grows by no more than a few
 * MB, and aiosmtpd receives the message exactly.  The memory bound is
 * asserted in the plain build only: AddressSanitizer's quarantine and
 * shadow memory make peak RSS meaningless.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "smtp_test_util.h"

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define MESSAGE_SIZE (50u << 20)
#define ALLOWED_KB   (4u * 1024) /* "a few MB" */

/* The message a host would hand over: a file, read with pread(). */
struct file_msg {
    int fd;
    uint64_t pos;
};

static int64_t
file_read(aimx_msg *msg, void *buf, size_t len)
{
    struct file_msg *m = (struct file_msg *)(void *)msg;
    ssize_t n = pread(m->fd, buf, len, (off_t)m->pos);

    if (n < 0)
        return -(int64_t)AIMX_ERR_IO;
    m->pos += (uint64_t)n;
    return n;
}

static aimx_status
file_rewind(aimx_msg *msg)
{
    ((struct file_msg *)(void *)msg)->pos = 0;
    return AIMX_OK;
}

/* kB from a "Name:   N kB" line of /proc/self/status. */
static long
status_kb(const char *name)
{
    char *text = t_read_file("/proc/self/status", NULL), *p;
    long kb = -1;

    assert_non_null(text);
    p = strstr(text, name);
    if (p)
        kb = strtol(p + strlen(name) + 1, NULL, 10);
    free(text);
    return kb;
}

/* Lines of 1..990 octets (aiosmtpd takes up to 1001 with CRLF), many
 * starting with '.', 8-bit octets among them. */
static void
write_message(const char *path)
{
    FILE *f = fopen(path, "wb");
    char line[1000];
    uint64_t total = 0;
    size_t len, i;
    unsigned seed = 7;

    assert_non_null(f);
    while (total < MESSAGE_SIZE) {
        seed = seed * 1103515245u + 12345u;
        len = 1 + (seed >> 8) % 990;
        if (total + len + 2 > MESSAGE_SIZE)
            len = MESSAGE_SIZE - total > 2 ? (size_t)(MESSAGE_SIZE - total - 2)
                                           : 0;
        for (i = 0; i < len; i++)
            line[i] = (char)("..abcdefgh \xc3\xa9"[(seed >> (i % 24)) % 13]);
        line[len] = '\r';
        line[len + 1] = '\n';
        assert_int_equal(fwrite(line, 1, len + 2, f), len + 2);
        total += len + 2;
    }
    assert_int_equal(fclose(f), 0);
}

static int
files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    static char ba[1 << 16], bb[1 << 16];
    size_t na, nb;
    int equal = fa && fb;

    while (equal) {
        na = fread(ba, 1, sizeof ba, fa);
        nb = fread(bb, 1, sizeof bb, fb);
        equal = na == nb && memcmp(ba, bb, na) == 0;
        if (na == 0)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return equal;
}

static void
test_50mb_bounded_memory(void **state)
{
    static const char *const rcpts[] = {"big@y.test", NULL};
    static const char *const extra[] = {"--data-size-limit", "none", NULL};
    struct t_plugin *p = calloc(1, sizeof *p);
    struct t_result *r = malloc(sizeof *r);
    static struct t_peer peer; /* outlives a failed test: see cleanup */
    struct file_msg m;
    aimx_envelope env;
    aimx_session *s;
    char path[400], eml[600];
    long before, after, clear;
    uint64_t t0;
    int fd;

    (void)state;
    assert_non_null(p);
    assert_non_null(r);
    t_peer_sink(&peer, "127.0.0.1", extra);
    snprintf(path, sizeof path, "%s/message", peer.dir);
    write_message(path);
    t_plugin_create(p, peer.port);
    s = t_open1(p, "127.0.0.1", r);
    assert_non_null(s);

    m.fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(m.fd >= 0);
    m.pos = 0;
    p->fh.api.msg_read = file_read;
    p->fh.api.msg_rewind = file_rewind;
    memset(&env, 0, sizeof env);
    env.struct_size = (uint32_t)sizeof env;
    env.flags = AIMX_ENV_8BIT;
    env.sender = "a@x.test";
    env.rcpts = rcpts;
    env.rcpt_count = 1;
    env.message_size = MESSAGE_SIZE;
    t_result_init(r, 1);

    /* Start the peak from here (Linux >= 4.0: "5" resets VmHWM). */
    fd = open("/proc/self/clear_refs", O_WRONLY);
    clear = fd >= 0 ? (long)write(fd, "5", 1) : -1;
    if (fd >= 0)
        close(fd);
    before = clear == 1 ? status_kb("VmHWM:") : status_kb("VmRSS:");
    t0 = t_now_us();
    assert_int_equal(
        p->ops->send(p->inst, s, &env, (aimx_msg *)(void *)&m, &r->res),
        AIMX_OK);
    after = status_kb("VmHWM:");
    if (r->res.result_class != AIMX_CLASS_OK)
        fail_msg("send: %s", r->res.reply);
    print_message("50 MB sent in %llu ms; peak RSS %ld kB -> %ld kB%s\n",
                  (unsigned long long)(t_now_us() - t0) / 1000, before, after,
                  UNDER_ASAN ? " (ASan: not checked)" : "");
    if (!UNDER_ASAN && after - before > (long)ALLOWED_KB)
        fail_msg("peak RSS grew by %ld kB (allowed %u kB)", after - before,
                 ALLOWED_KB);
    p->ops->close(p->inst, s, t_now_us() + 5000000);
    close(m.fd);

    assert_true(t_peer_wait_file(&peer, "msg-1.json", 60000));
    snprintf(eml, sizeof eml, "%s/msg-1.eml", peer.record);
    assert_true(files_equal(path, eml));
    t_plugin_destroy(p);
    t_peer_stop(&peer);
    free(r);
    free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_50mb_bounded_memory),
    };
    return cmocka_run_group_tests(tests, NULL, t_peers_cleanup);
}
