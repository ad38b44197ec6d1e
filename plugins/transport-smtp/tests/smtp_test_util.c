/* SPDX-License-Identifier: MIT */
/*
 * Test helpers for transport-smtp; see smtp_test_util.h.  Servers are
 * started with fork/exec and told to stop by PID (SIGTERM); they also stop
 * on their own when this process goes away.
 */
#include "smtp_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Peers running: a failing assertion leaves its test without stopping
 * them, the group teardown does. */
static struct t_peer *live_peers[16];

static void sleep_ms(unsigned ms);
static void start_peer(struct t_peer *peer, const char *script,
                       const char *listen, const char *const *extra);
static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw);
static void write_file(const char *path, const char *text);

void
t_cfg_int(struct t_plugin *p, const char *path, int64_t v)
{
    struct aimx_fake_cfg c = AIMX_FAKE_CFG_INT(path, v);

    assert_true(p->ncfg < sizeof p->cfg / sizeof p->cfg[0]);
    p->cfg[p->ncfg++] = c;
}

void
t_cfg_str(struct t_plugin *p, const char *path, const char *v)
{
    struct aimx_fake_cfg c = AIMX_FAKE_CFG_STRING(path, v);

    assert_true(p->ncfg < sizeof p->cfg / sizeof p->cfg[0]);
    p->cfg[p->ncfg++] = c;
}

void
t_plugin_create(struct t_plugin *p, int port)
{
    aimx_status st;

    if (port)
        t_cfg_int(p, "port", port);
    aimx_fake_host_init(&p->fh, p->cfg, p->ncfg);
    p->fh.echo_logs = getenv("SMTP_TEST_LOGS") != NULL;
    p->d = transport_smtp_LTX_aimx_plugin_v1();
    p->ops = p->d->transport;
    st = p->d->create(aimx_fake_host_api(&p->fh), aimx_fake_host_handle(&p->fh),
                      &p->inst);
    p->fh.cfg_closed = 1;
    if (st != AIMX_OK)
        fail_msg("create: status %d, first error: %s", (int)st,
                 p->fh.error_count ? p->fh.errors[0] : "(none)");
    assert_int_equal(p->fh.error_count, 0);
}

void
t_plugin_destroy(struct t_plugin *p)
{
    p->d->destroy(p->inst);
    p->inst = NULL;
    if (p->fh.misuse)
        fail_msg("fake host misuse: %s", p->fh.misuse_text);
    assert_int_equal(p->fh.alloc_live, 0);
}

void
t_result_init(struct t_result *r, size_t rcpt_count)
{
    size_t i;

    assert_true(rcpt_count <= T_MAX_RCPTS);
    memset(r, 0, sizeof *r);
    r->res.struct_size = (uint32_t)sizeof r->res;
    r->res.attempts = &r->attempts[0].a;
    r->res.attempt_stride = sizeof r->attempts[0];
    r->res.attempt_cap = T_MAX_ATTEMPTS;
    r->res.rcpts = &r->rcpts[0].r;
    r->res.rcpt_stride = sizeof r->rcpts[0];
    r->res.rcpt_count = rcpt_count;
    for (i = 0; i < T_MAX_ATTEMPTS; i++) {
        r->attempts[i].a.struct_size = (uint32_t)sizeof r->attempts[i].a;
        memset(r->attempts[i].tail, T_GUARD, sizeof r->attempts[i].tail);
    }
    for (i = 0; i < T_MAX_RCPTS; i++) {
        r->rcpts[i].r.struct_size = (uint32_t)sizeof r->rcpts[i].r;
        memset(r->rcpts[i].tail, T_GUARD, sizeof r->rcpts[i].tail);
    }
}

void
t_result_check_guards(const struct t_result *r)
{
    size_t i, j;

    for (i = 0; i < T_MAX_ATTEMPTS; i++)
        for (j = 0; j < sizeof r->attempts[i].tail; j++)
            assert_int_equal(r->attempts[i].tail[j], T_GUARD);
    for (i = 0; i < T_MAX_RCPTS; i++)
        for (j = 0; j < sizeof r->rcpts[i].tail; j++)
            assert_int_equal(r->rcpts[i].tail[j], T_GUARD);
    for (i = r->res.attempt_count; i < T_MAX_ATTEMPTS; i++)
        assert_int_equal(r->attempts[i].a.start_us, 0);
}

aimx_addr
t_addr(const char *text)
{
    aimx_addr a;

    memset(&a, 0, sizeof a);
    if (strchr(text, ':')) {
        a.family = AIMX_AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, a.bytes), 1);
    } else {
        a.family = AIMX_AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, a.bytes), 1);
    }
    return a;
}

uint64_t
t_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

aimx_session *
t_open(struct t_plugin *p, const aimx_addr *addrs, size_t n,
       unsigned deadline_ms, struct t_result *r)
{
    return t_open_mx(p, "mx.test", addrs, n, deadline_ms, r);
}

aimx_session *
t_open_mx(struct t_plugin *p, const char *mx, const aimx_addr *addrs, size_t n,
          unsigned deadline_ms, struct t_result *r)
{
    aimx_open_request req;
    aimx_session *s = (aimx_session *)(uintptr_t)1; /* must be reset */

    memset(&req, 0, sizeof req);
    req.struct_size = (uint32_t)sizeof req;
    req.mx_host = mx;
    req.addrs = addrs;
    req.addr_count = n;
    req.deadline_us = deadline_ms ? t_now_us() + deadline_ms * 1000u : 0;
    t_result_init(r, 0);
    assert_int_equal(p->ops->open(p->inst, &req, &s, &r->res), AIMX_OK);
    if (r->res.result_class == AIMX_CLASS_OK)
        assert_non_null(s);
    else
        assert_null(s);
    assert_true(r->res.end_us >= r->res.start_us);
    t_result_check_guards(r);
    return s;
}

aimx_session *
t_open1(struct t_plugin *p, const char *addr, struct t_result *r)
{
    aimx_addr a = t_addr(addr);

    return t_open(p, &a, 1, 0, r);
}

void
t_send(struct t_plugin *p, aimx_session *s, const char *sender,
       const char *const *rcpts, uint32_t flags, const void *msg, size_t len,
       size_t max_chunk, unsigned deadline_ms, struct t_result *r)
{
    struct aimx_fake_msg m;
    aimx_envelope env;
    size_t n = 0;

    while (rcpts[n])
        n++;
    aimx_fake_msg_init(&m, msg, len, max_chunk);
    memset(&env, 0, sizeof env);
    env.struct_size = (uint32_t)sizeof env;
    env.flags = flags;
    env.sender = sender;
    env.rcpts = rcpts;
    env.rcpt_count = n;
    env.message_size = len;
    env.deadline_us = deadline_ms ? t_now_us() + deadline_ms * 1000u : 0;
    t_result_init(r, n);
    assert_int_equal(
        p->ops->send(p->inst, s, &env, aimx_fake_msg_handle(&m), &r->res),
        AIMX_OK);
    assert_true(r->res.end_us >= r->res.start_us);
    t_result_check_guards(r);
}

/* Peers ------------------------------------------------------------------ */

void
t_peer_sink(struct t_peer *peer, const char *listen, const char *const *extra)
{
    memset(peer, 0, sizeof *peer);
    start_peer(peer, "aiosmtpd_sink.py", listen, extra);
}

void
t_peer_fault(struct t_peer *peer, const char *listen, const char *script_json)
{
    char path[400];
    const char *extra[3];

    memset(peer, 0, sizeof *peer);
    snprintf(peer->dir, sizeof peer->dir, "/tmp/aimx-smtp-test-XXXXXX");
    assert_non_null(mkdtemp(peer->dir));
    snprintf(path, sizeof path, "%s/script.json", peer->dir);
    write_file(path, script_json);
    extra[0] = "--script";
    extra[1] = path;
    extra[2] = NULL;
    start_peer(peer, "smtp_fault_peer.py", listen, extra);
}

void
t_peer_stop(struct t_peer *peer)
{
    int status, i;

    for (i = 0; i < (int)(sizeof live_peers / sizeof live_peers[0]); i++)
        if (live_peers[i] == peer)
            live_peers[i] = NULL;
    if (peer->pid > 0) {
        kill(peer->pid, SIGTERM);
        for (i = 0; i < 1000 && waitpid(peer->pid, &status, WNOHANG) == 0; i++)
            sleep_ms(10);
        if (i == 1000) {
            kill(peer->pid, SIGKILL);
            waitpid(peer->pid, &status, 0);
        }
        peer->pid = 0;
    }
    if (peer->dir[0] && !getenv("SMTP_TEST_KEEP"))
        nftw(peer->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    else if (peer->dir[0])
        fprintf(stderr, "kept %s\n", peer->dir);
    peer->dir[0] = '\0';
}

int
t_peers_cleanup(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof live_peers / sizeof live_peers[0]; i++)
        if (live_peers[i])
            t_peer_stop(live_peers[i]);
    return 0;
}

char *
t_peer_file(const struct t_peer *peer, const char *name, size_t *len)
{
    char path[600];

    snprintf(path, sizeof path, "%s/%s", peer->record, name);
    return t_read_file(path, len);
}

int
t_peer_wait_file(const struct t_peer *peer, const char *name,
                 unsigned timeout_ms)
{
    char path[600];
    unsigned waited;

    snprintf(path, sizeof path, "%s/%s", peer->record, name);
    for (waited = 0; access(path, F_OK) != 0; waited += 5) {
        if (waited >= timeout_ms)
            return 0;
        sleep_ms(5);
    }
    return 1;
}

void
t_peer_wait_idle(const struct t_peer *peer)
{
    char *stats;
    unsigned waited;
    int idle = 0;

    for (waited = 0; !idle && waited < 10000; waited += 5) {
        stats = t_peer_file(peer, "stats.json", NULL);
        idle = stats && strstr(stats, "\"open\": 0") &&
               !strstr(stats, "\"sessions\": 0");
        free(stats);
        if (!idle)
            sleep_ms(5);
    }
    assert_true(idle);
}

char *
t_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (!f)
        return NULL;
    do {
        if (n + 65536 + 1 > cap) {
            cap = (n + 65536 + 1) * 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

void
t_remove_tree(const char *dir)
{
    if (dir && dir[0])
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
t_run(const char *const *argv)
{
    pid_t pid;
    int status, fd;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!getenv("SMTP_TEST_LOGS")) {
            fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        execvp(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

size_t
t_peer_count(const struct t_peer *peer, const char *prefix)
{
    char name[600];
    size_t n = 0;

    for (;;) {
        snprintf(name, sizeof name, "%s/%s%zu.json", peer->record, prefix,
                 n + 1);
        if (access(name, F_OK) != 0)
            return n;
        n++;
    }
}

size_t
t_count(const char *text, const char *needle)
{
    size_t n = 0, l = strlen(needle);

    while (text && (text = strstr(text, needle)) != NULL) {
        n++;
        text += l;
    }
    return n;
}

int
t_json_string(const char *json, const char *key, size_t n, char *out,
              size_t size)
{
    char pat[128];
    const char *p = json;
    size_t i = 0;

    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    for (;;) {
        p = strstr(p, pat);
        if (!p)
            return 0;
        p += strlen(pat);
        if (i++ == n)
            break;
    }
    for (i = 0; p[i] && p[i] != '"' && i + 1 < size; i++)
        out[i] = p[i];
    out[i] = '\0';
    return 1;
}

char *
t_stuffed_for_peer(const void *msg, size_t len, size_t *out_len)
{
    const char *m = msg;
    char *out = malloc(2 * len + 3);
    size_t i, o = 0;
    int bol = 1;

    assert_non_null(out);
    /* A reference written apart from dotstuff.c: double a '.' that starts
     * a line; the terminator's CRLF then comes off. */
    for (i = 0; i < len; i++) {
        if (bol && m[i] == '.')
            out[o++] = '.';
        out[o++] = m[i];
        bol = i > 0 && m[i] == '\n' && m[i - 1] == '\r';
    }
    if (o >= 2 && out[o - 2] == '\r' && out[o - 1] == '\n')
        o -= 2;
    *out_len = o;
    return out;
}

static void
start_peer(struct t_peer *peer, const char *script, const char *listen,
           const char *const *extra)
{
    char prog[512], port_file[400], log[400], listens[2][64];
    const char *argv[24];
    size_t argc = 0, i;
    unsigned waited;
    char *text;
    int status, fd;

    if (!peer->dir[0]) {
        memset(peer, 0, sizeof *peer);
        snprintf(peer->dir, sizeof peer->dir, "/tmp/aimx-smtp-test-XXXXXX");
        assert_non_null(mkdtemp(peer->dir));
    }
    snprintf(prog, sizeof prog, "%s/%s", SMTP_PEERS_DIR, script);
    if (access(prog, R_OK) != 0)
        fail_msg("%s is missing (tests/peers is written alongside)", prog);
    snprintf(peer->record, sizeof peer->record, "%s/record", peer->dir);
    snprintf(port_file, sizeof port_file, "%s/port", peer->dir);
    snprintf(log, sizeof log, "%s/peer.log", peer->dir);
    argv[argc++] = SMTP_PYTHON3;
    argv[argc++] = prog;
    argv[argc++] = "--port-file";
    argv[argc++] = port_file;
    argv[argc++] = "--record";
    argv[argc++] = peer->record;
    /* "127.0.0.1,::1": one --listen each. */
    memset(listens, 0, sizeof listens);
    sscanf(listen, "%63[^,],%63s", listens[0], listens[1]);
    for (i = 0; i < 2 && listens[i][0]; i++) {
        argv[argc++] = "--listen";
        argv[argc++] = listens[i];
    }
    for (i = 0; extra && extra[i]; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    peer->pid = fork();
    assert_true(peer->pid >= 0);
    if (peer->pid == 0) {
        fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    for (waited = 0; access(port_file, F_OK) != 0; waited += 5) {
        if (waitpid(peer->pid, &status, WNOHANG) == peer->pid ||
            waited > 30000) {
            text = t_read_file(log, NULL);
            peer->pid = 0;
            fail_msg("%s did not start: %s", script, text ? text : "");
        }
        sleep_ms(5);
    }
    for (i = 0; i < sizeof live_peers / sizeof live_peers[0]; i++)
        if (!live_peers[i]) {
            live_peers[i] = peer;
            break;
        }
    text = t_read_file(port_file, NULL);
    assert_non_null(text);
    peer->port = atoi(text);
    free(text);
    assert_true(peer->port > 0);
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
