/* SPDX-License-Identifier: MIT */
/*
 * transport-smtp without an SMTP server: the descriptor and the built
 * module, every setting and its errors, the EHLO keyword reader, connect
 * refused / timed out / past the call's deadline / aborted, argument
 * checks, and the connection layer's deadlines and abort on a socketpair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "smtp_config.h"
#include "smtp_conn.h"
#include "smtp_session.h"
#include "smtp_test_util.h"
#include "smtp_tls.h"

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const timeout_paths[] = {
    "timeouts.connect",  "timeouts.greeting", "timeouts.ehlo",
    "timeouts.starttls", "timeouts.mail",     "timeouts.rcpt",
    "timeouts.data",     "timeouts.block",    "timeouts.dot",
    "timeouts.quit"};

/* A temporary directory for files the tests write; removed at the end. */
static char dir[64];

static int
remove_dir(void **state)
{
    (void)state;
    t_remove_tree(dir);
    return 0;
}

/* A file holding text, in that directory; the path into buf. */
static const char *
temp_file(char *buf, size_t size, const char *name, const char *text)
{
    FILE *f;

    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/aimx-smtp-plugin-XXXXXX");
        assert_non_null(mkdtemp(dir));
    }
    snprintf(buf, size, "%s/%s", dir, name);
    f = fopen(buf, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return buf;
}

/* Not a certificate (create() does not parse it): the marker is what
 * it looks for. */
static const char FAKE_PEM[] = "# a CA bundle\n"
                               "-----BEGIN CERTIFICATE-----\n"
                               "MIIBfake\n"
                               "-----END CERTIFICATE-----\n";

/* Issue 6's keys. */
static const char *const part2_paths[] = {
    "tls", "ca_file", "connection_attempt_delay", "bind_ipv4", "bind_ipv6"};

/* A listener whose accept queue is full: SYNs to it go unanswered, so a
 * connect to it times out (no network needed). */
struct blackhole {
    int listener;
    int fillers[4];
    int port;
};

static void
blackhole_open(struct blackhole *b)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    struct timespec pause = {0, 50 * 1000000L};
    size_t i;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    b->listener = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(b->listener >= 0);
    assert_int_equal(bind(b->listener, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(b->listener, 0), 0);
    assert_int_equal(getsockname(b->listener, (struct sockaddr *)&sin, &len),
                     0);
    b->port = ntohs(sin.sin_port);
    for (i = 0; i < COUNT(b->fillers); i++) {
        b->fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(b->fillers[i] >= 0);
        (void)connect(b->fillers[i], (struct sockaddr *)&sin, sizeof sin);
        nanosleep(&pause, NULL);
    }
}

static void
blackhole_close(struct blackhole *b)
{
    size_t i;

    for (i = 0; i < COUNT(b->fillers); i++)
        close(b->fillers[i]);
    close(b->listener);
}

/* A loopback port nobody listens on. */
static int
closed_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

static void
test_descriptor(void **state)
{
    const aimx_plugin_descriptor *d = transport_smtp_LTX_aimx_plugin_v1();

    (void)state;
    assert_int_equal(d->struct_size, sizeof *d);
    assert_int_equal(d->abi_major, AIMX_ABI_MAJOR);
    assert_int_equal(d->kind, AIMX_KIND_TRANSPORT);
    assert_string_equal(d->name, "transport-smtp");
    assert_null(d->resolver);
    assert_null(d->policy);
    assert_non_null(d->transport);
    assert_int_equal(d->transport->struct_size, sizeof(aimx_transport_ops));
    assert_non_null(d->transport->open);
    assert_non_null(d->transport->send);
    assert_non_null(d->transport->close);
    assert_non_null(d->transport->probe);
    assert_non_null(d->transport->abort);
    assert_non_null(d->transport->describe);
}

/* The module the loader opens: every symbol resolves now, and the entry
 * is exported under both names. */
static void
test_module(void **state)
{
    void *h = dlopen(SMTP_MODULE, RTLD_NOW | RTLD_LOCAL);
    aimx_plugin_entry_fn *entry, *prefixed;
    const aimx_plugin_descriptor *d;
    void *sym;

    (void)state;
    if (!h)
        fail_msg("dlopen %s: %s", SMTP_MODULE, dlerror());
    sym = dlsym(h, AIMX_PLUGIN_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof sym);
    sym = dlsym(h, "transport_smtp_LTX_aimx_plugin_v1");
    memcpy(&prefixed, &sym, sizeof sym);
    assert_non_null(entry);
    assert_non_null(prefixed);
    d = entry();
    assert_string_equal(d->name, "transport-smtp");
    assert_ptr_equal(d, prefixed());
    /* Internal names stay hidden. */
    assert_null(dlsym(h, "smtp_reply_feed"));
    assert_null(dlsym(h, "smtp_layer_plain"));
    dlclose(h);
}

static void
test_config_defaults(void **state)
{
    struct t_plugin *p = calloc(1, sizeof *p);
    aimx_transport_info info;
    size_t i;

    (void)state;
    assert_non_null(p);
    t_plugin_create(p, 0);
    /* Every key asked for, absent ones included (the host then knows
     * them all). */
    assert_true(aimx_fake_host_asked(&p->fh, "port"));
    assert_true(aimx_fake_host_asked(&p->fh, "helo_name"));
    assert_true(aimx_fake_host_asked(&p->fh, "/domain"));
    assert_true(aimx_fake_host_asked(&p->fh, "max_recipients"));
    for (i = 0; i < COUNT(timeout_paths); i++)
        assert_true(aimx_fake_host_asked(&p->fh, timeout_paths[i]));
    for (i = 0; i < COUNT(part2_paths); i++)
        assert_true(aimx_fake_host_asked(&p->fh, part2_paths[i]));
    /* No TLS context yet: they come with the first STARTTLS. */
    assert_int_equal(smtp_tls_contexts(), 0);
    memset(&info, 0xee, sizeof info);
    info.struct_size = (uint32_t)sizeof info;
    assert_int_equal(p->ops->describe(p->inst, &info), AIMX_OK);
    assert_int_equal(info.port, 25);
    assert_string_equal(info.ehlo_name, "example.org");
    assert_int_equal(info.flags, 0);
    assert_int_equal(info.bind_ipv4.family, 0);
    assert_int_equal(info.bind_ipv6.family, 0);
    assert_int_equal(info.reserved, 0);
    info.struct_size = 8;
    assert_int_equal(p->ops->describe(p->inst, &info), AIMX_ERR_INVALID);
    t_plugin_destroy(p);
    free(p);
}

static void
test_config_values(void **state)
{
    struct t_plugin *p = calloc(1, sizeof *p);
    aimx_transport_info info;
    size_t i;

    (void)state;
    assert_non_null(p);
    t_cfg_str(p, "helo_name", "Out-1.Example.COM");
    t_cfg_int(p, "max_recipients", 1000);
    for (i = 0; i < COUNT(timeout_paths); i++)
        t_cfg_str(p, timeout_paths[i], i % 2 ? "1ms" : "1h");
    t_plugin_create(p, 65535);
    memset(&info, 0, sizeof info);
    info.struct_size = (uint32_t)sizeof info;
    assert_int_equal(p->ops->describe(p->inst, &info), AIMX_OK);
    assert_int_equal(info.port, 65535);
    assert_string_equal(info.ehlo_name, "Out-1.Example.COM");
    t_plugin_destroy(p);
    free(p);

    /* An address literal, and the domain ignored when helo_name is set. */
    p = calloc(1, sizeof *p);
    assert_non_null(p);
    t_cfg_str(p, "helo_name", "[192.0.2.7]");
    t_plugin_create(p, 0);
    info.struct_size = (uint32_t)sizeof info;
    assert_int_equal(p->ops->describe(p->inst, &info), AIMX_OK);
    assert_string_equal(info.ehlo_name, "[192.0.2.7]");
    t_plugin_destroy(p);
    free(p);
}

/* Issue 6's keys, good values: every tls level, a readable ca_file, the
 * delay's range, and source addresses this machine has (loopback). */
static void
test_config_tls_and_sources(void **state)
{
    static const char *const levels[] = {"none", "may", "encrypt", "verify"};
    struct t_plugin *p;
    aimx_transport_info info;
    aimx_addr v4 = t_addr("127.0.0.1"), v6 = t_addr("::1");
    char needle[32], ca[128];
    size_t i;

    (void)state;
    temp_file(ca, sizeof ca, "ca.pem", FAKE_PEM);
    for (i = 0; i < COUNT(levels); i++) {
        p = calloc(1, sizeof *p);
        assert_non_null(p);
        t_cfg_str(p, "tls", levels[i]);
        t_cfg_str(p, "connection_attempt_delay", i % 2 ? "100ms" : "2s");
        if (i == 3)
            t_cfg_str(p, "ca_file", ca);
        t_plugin_create(p, 0);
        snprintf(needle, sizeof needle, "tls %s", levels[i]);
        assert_true(aimx_fake_host_has_log(&p->fh, needle));
        t_plugin_destroy(p);
        free(p);
    }
    /* ca_file with another level: accepted, with a warning. */
    p = calloc(1, sizeof *p);
    assert_non_null(p);
    t_cfg_str(p, "ca_file", ca);
    t_plugin_create(p, 0);
    assert_true(aimx_fake_host_has_log(&p->fh, "only with tls = verify"));
    t_plugin_destroy(p);
    free(p);

    p = calloc(1, sizeof *p);
    assert_non_null(p);
    t_cfg_str(p, "bind_ipv4", "127.0.0.1");
    t_cfg_str(p, "bind_ipv6", "::1");
    t_plugin_create(p, 2525);
    memset(&info, 0xee, sizeof info);
    info.struct_size = (uint32_t)sizeof info;
    assert_int_equal(p->ops->describe(p->inst, &info), AIMX_OK);
    assert_int_equal(info.flags,
                     AIMX_TRANSPORT_BIND_IPV4 | AIMX_TRANSPORT_BIND_IPV6);
    assert_memory_equal(&info.bind_ipv4, &v4, sizeof v4);
    assert_memory_equal(&info.bind_ipv6, &v6, sizeof v6);
    assert_int_equal(info.port, 2525);
    t_plugin_destroy(p);
    free(p);

    p = calloc(1, sizeof *p);
    assert_non_null(p);
    t_cfg_str(p, "bind_ipv6", "::1");
    t_plugin_create(p, 0);
    info.struct_size = (uint32_t)sizeof info;
    assert_int_equal(p->ops->describe(p->inst, &info), AIMX_OK);
    assert_int_equal(info.flags, AIMX_TRANSPORT_BIND_IPV6);
    assert_int_equal(info.bind_ipv4.family, 0);
    t_plugin_destroy(p);
    free(p);
}

struct bad_config {
    const char *path;
    int type; /* AIMX_FAKE_T_STRING or _INT */
    const char *str;
    int64_t num;
    const char *domain; /* "/domain"; "-" = absent */
    const char *needle; /* expected in an error */
};

static void
test_config_errors(void **state)
{
    static const struct bad_config cases[] = {
        {"port", AIMX_FAKE_T_INT, NULL, 0, NULL, "port:"},
        {"port", AIMX_FAKE_T_INT, NULL, 65536, NULL, "port:"},
        {"port", AIMX_FAKE_T_STRING, "25", 0, NULL, "port:"},
        {"max_recipients", AIMX_FAKE_T_INT, NULL, 0, NULL, "max_recipients:"},
        {"max_recipients", AIMX_FAKE_T_INT, NULL, 1001, NULL,
         "max_recipients:"},
        {"timeouts.connect", AIMX_FAKE_T_STRING, "0ms", 0, NULL,
         "timeouts.connect:"},
        {"timeouts.connect", AIMX_FAKE_T_STRING, "2h", 0, NULL,
         "timeouts.connect:"},
        {"timeouts.dot", AIMX_FAKE_T_STRING, "61m", 0, NULL, "timeouts.dot:"},
        {"timeouts.greeting", AIMX_FAKE_T_STRING, "30", 0, NULL,
         "timeouts.greeting:"},
        {"timeouts.quit", AIMX_FAKE_T_STRING, "1.5s", 0, NULL,
         "timeouts.quit:"},
        {"timeouts.block", AIMX_FAKE_T_INT, NULL, 30, NULL, "timeouts.block:"},
        {"helo_name", AIMX_FAKE_T_STRING, "bad name", 0, NULL, "helo_name:"},
        {"helo_name", AIMX_FAKE_T_STRING, "-x.example", 0, NULL, "helo_name:"},
        {"helo_name", AIMX_FAKE_T_STRING, "a..example", 0, NULL, "helo_name:"},
        {"helo_name", AIMX_FAKE_T_STRING, "x.example.", 0, NULL, "helo_name:"},
        {"helo_name", AIMX_FAKE_T_STRING, "[300.1.1.1]", 0, NULL, "helo_name:"},
        {"helo_name", AIMX_FAKE_T_INT, NULL, 1, NULL, "helo_name:"},
        {NULL, 0, NULL, 0, "-", "helo_name:"},
        {NULL, 0, NULL, 0, "not a host!", "helo_name:"},
        {"tls", AIMX_FAKE_T_STRING, "maybe", 0, NULL, "tls:"},
        {"tls", AIMX_FAKE_T_STRING, "VERIFY", 0, NULL, "tls:"},
        {"tls", AIMX_FAKE_T_INT, NULL, 1, NULL, "tls:"},
        {"ca_file", AIMX_FAKE_T_STRING, "/nonexistent/ca.pem", 0, NULL,
         "ca_file:"},
        {"ca_file", AIMX_FAKE_T_STRING, "", 0, NULL, "ca_file:"},
        {"connection_attempt_delay", AIMX_FAKE_T_STRING, "99ms", 0, NULL,
         "connection_attempt_delay:"},
        {"connection_attempt_delay", AIMX_FAKE_T_STRING, "2001ms", 0, NULL,
         "connection_attempt_delay:"},
        {"connection_attempt_delay", AIMX_FAKE_T_STRING, "fast", 0, NULL,
         "connection_attempt_delay:"},
        {"bind_ipv4", AIMX_FAKE_T_STRING, "::1", 0, NULL, "bind_ipv4:"},
        {"bind_ipv4", AIMX_FAKE_T_STRING, "127.1", 0, NULL, "bind_ipv4:"},
        {"bind_ipv4", AIMX_FAKE_T_STRING, "mx.example", 0, NULL, "bind_ipv4:"},
        /* TEST-NET-1 and the IPv6 documentation prefix: on no machine. */
        {"bind_ipv4", AIMX_FAKE_T_STRING, "192.0.2.1", 0, NULL,
         "bind_ipv4: 192.0.2.1 is not an address of this machine"},
        {"bind_ipv6", AIMX_FAKE_T_STRING, "127.0.0.1", 0, NULL, "bind_ipv6:"},
        {"bind_ipv6", AIMX_FAKE_T_STRING, "2001:db8::25", 0, NULL,
         "bind_ipv6: 2001:db8::25 is not an address of this machine"},
        {"bind_ipv6", AIMX_FAKE_T_INT, NULL, 6, NULL, "bind_ipv6:"},
    };
    struct aimx_fake_cfg cfg[1];
    struct aimx_fake_host *fh = calloc(1, sizeof *fh);
    const aimx_plugin_descriptor *d = transport_smtp_LTX_aimx_plugin_v1();
    void *inst;
    size_t i, j;
    char notpem[128];

    (void)state;
    assert_non_null(fh);
    /* A readable file without a certificate: reported at create(). */
    temp_file(notpem, sizeof notpem, "notpem.txt", "hello\n");
    cfg[0].path = "ca_file";
    cfg[0].type = AIMX_FAKE_T_STRING;
    cfg[0].str = notpem;
    cfg[0].num = 0;
    aimx_fake_host_init(fh, cfg, 1);
    assert_int_not_equal(
        d->create(aimx_fake_host_api(fh), aimx_fake_host_handle(fh), &inst),
        AIMX_OK);
    assert_true(aimx_fake_host_has_error(fh, "holds no PEM certificate"));
    for (i = 0; i < COUNT(cases); i++) {
        cfg[0].path = cases[i].path;
        cfg[0].type = cases[i].type;
        cfg[0].str = cases[i].str;
        cfg[0].num = cases[i].num;
        aimx_fake_host_init(fh, cfg, cases[i].path ? 1 : 0);
        if (cases[i].domain)
            fh->domain = strcmp(cases[i].domain, "-") ? cases[i].domain : NULL;
        inst = (void *)fh;
        assert_int_not_equal(
            d->create(aimx_fake_host_api(fh), aimx_fake_host_handle(fh), &inst),
            AIMX_OK);
        if (!aimx_fake_host_has_error(fh, cases[i].needle))
            fail_msg("case %zu: no error with \"%s\" (%zu errors: %s)", i,
                     cases[i].needle, fh->error_count,
                     fh->error_count ? fh->errors[0] : "");
        /* All keys were still asked for, and nothing leaked. */
        for (j = 0; j < COUNT(timeout_paths); j++)
            assert_true(aimx_fake_host_asked(fh, timeout_paths[j]));
        for (j = 0; j < COUNT(part2_paths); j++)
            assert_true(aimx_fake_host_asked(fh, part2_paths[j]));
        assert_true(aimx_fake_host_asked(fh, "max_recipients"));
        assert_int_equal(fh->alloc_live, 0);
        assert_int_equal(smtp_tls_contexts(), 0);
    }
    free(fh);
}

/* Several bad keys: each one reported, in one go. */
static void
test_config_all_errors(void **state)
{
    static const struct aimx_fake_cfg cfg[] = {
        AIMX_FAKE_CFG_INT("port", 0),
        AIMX_FAKE_CFG_STRING("helo_name", "no way"),
        AIMX_FAKE_CFG_INT("max_recipients", 5000),
        AIMX_FAKE_CFG_STRING("timeouts.rcpt", "forever"),
        AIMX_FAKE_CFG_STRING("tls", "always"),
        AIMX_FAKE_CFG_STRING("bind_ipv4", "192.0.2.1"),
    };
    struct aimx_fake_host *fh = calloc(1, sizeof *fh);
    const aimx_plugin_descriptor *d = transport_smtp_LTX_aimx_plugin_v1();
    void *inst = NULL;

    (void)state;
    assert_non_null(fh);
    aimx_fake_host_init(fh, cfg, COUNT(cfg));
    assert_int_not_equal(
        d->create(aimx_fake_host_api(fh), aimx_fake_host_handle(fh), &inst),
        AIMX_OK);
    assert_int_equal(fh->error_count, 6);
    assert_true(aimx_fake_host_has_error(fh, "tls:"));
    assert_true(aimx_fake_host_has_error(fh, "bind_ipv4:"));
    assert_true(aimx_fake_host_has_error(fh, "port:"));
    assert_true(aimx_fake_host_has_error(fh, "helo_name:"));
    assert_true(aimx_fake_host_has_error(fh, "max_recipients:"));
    assert_true(aimx_fake_host_has_error(fh, "timeouts.rcpt:"));
    assert_int_equal(fh->alloc_live, 0);
    free(fh);
}

static void
test_helo_valid(void **state)
{
    static const char *const good[] = {"example.org",
                                       "mx-1.example.org",
                                       "localhost",
                                       "a.b.c",
                                       "A1.b2",
                                       "xn--bcher-kva.example",
                                       "[127.0.0.1]",
                                       "[IPv6:::1]",
                                       "[IPv6:2001:db8::25]"};
    static const char *const bad[] = {
        "",     ".",       "a..b",       "-a.b",
        "a-.b", "a_b.c",   "a.b.",       ".a",
        "a b",  "[1.2.3]", "[IPv6:zz]",  "[::1]",
        "[]",   "a@b",     "[127.0.0.1", "\xc3\xa9.example"};
    char longname[300], label[70];
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(good); i++)
        if (!smtp_helo_valid(good[i]))
            fail_msg("\"%s\" refused", good[i]);
    for (i = 0; i < COUNT(bad); i++)
        if (smtp_helo_valid(bad[i]))
            fail_msg("\"%s\" accepted", bad[i]);
    memset(label, 'a', 64);
    label[64] = '\0';
    assert_false(smtp_helo_valid(label));
    label[63] = '\0';
    assert_true(smtp_helo_valid(label));
    /* 253 octets is the most a name may have. */
    memset(longname, 'a', sizeof longname);
    for (i = 63; i < sizeof longname; i += 64)
        longname[i] = '.';
    longname[253] = '\0';
    assert_true(smtp_helo_valid(longname));
    longname[253] = 'a';
    longname[254] = '\0';
    assert_false(smtp_helo_valid(longname));
    assert_false(smtp_helo_valid(NULL));
}

static void
test_ehlo_keywords(void **state)
{
    static const struct {
        const char *line;
        unsigned ext;
        uint64_t size;
    } cases[] = {
        {"PIPELINING", SMTP_EXT_PIPELINING, 0},
        {"pipelining", SMTP_EXT_PIPELINING, 0},
        {"8BITMIME", SMTP_EXT_8BITMIME, 0},
        {"SMTPUTF8", SMTP_EXT_SMTPUTF8, 0},
        {"EnhancedStatusCodes", SMTP_EXT_ENHANCEDSTATUSCODES, 0},
        {"STARTTLS", SMTP_EXT_STARTTLS, 0},
        {"SIZE 10485760", SMTP_EXT_SIZE, 10485760},
        {"SIZE", SMTP_EXT_SIZE, 0},
        {"SIZE 0", SMTP_EXT_SIZE, 0},
        {"SIZE 99999999999999999999999", SMTP_EXT_SIZE, 0},
        {"SIZE 12abc", SMTP_EXT_SIZE, 0},
        {"SIZEX 5", 0, 0},
        {"PIPELININGX", 0, 0},
        {"AUTH PLAIN LOGIN", 0, 0},
        {"", 0, 0},
    };
    unsigned ext;
    uint64_t size;
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(cases); i++) {
        ext = 0;
        size = 77;
        smtp_ehlo_keyword(cases[i].line, strlen(cases[i].line), &ext, &size);
        assert_int_equal(ext, cases[i].ext);
        if (cases[i].ext == SMTP_EXT_SIZE)
            assert_int_equal(size, cases[i].size);
        else
            assert_int_equal(size, 77);
    }
}

static void
test_connect_refused(void **state)
{
    struct t_plugin *p = calloc(1, sizeof *p);
    struct t_result *r = malloc(sizeof *r);
    aimx_addr a = t_addr("127.0.0.1");
    const aimx_connect_attempt *at;
    int port = closed_port();

    (void)state;
    assert_non_null(p);
    assert_non_null(r);
    t_plugin_create(p, port);
    assert_null(t_open(p, &a, 1, 0, r));
    assert_int_equal(r->res.result_class, AIMX_CLASS_TEMPORARY);
    assert_int_equal(r->res.scope, AIMX_SCOPE_ADDRESS);
    assert_int_equal(r->res.phase, AIMX_PHASE_CONNECT);
    assert_int_equal(r->res.kind, AIMX_FAIL_REFUSED);
    assert_int_equal(r->res.code, 0);
    assert_non_null(strstr(r->res.reply, "refused"));
    assert_int_equal(r->res.connected_us, 0);
    assert_memory_equal(&r->res.remote, &a, sizeof a);
    assert_int_equal(r->res.remote_port, port);
    assert_int_equal(r->res.attempt_count, 1);
    at = AIMX_ATTEMPT_AT(&r->res, 0);
    assert_int_equal(at->struct_size, sizeof *at);
    assert_int_equal(at->outcome, AIMX_CONNECT_REFUSED);
    assert_int_equal(at->sys_errno, ECONNREFUSED);
    assert_memory_equal(&at->remote, &a, sizeof a);
    assert_int_equal(at->remote_port, port);
    assert_true(at->start_us >= r->res.start_us);
    assert_true(at->end_us >= at->start_us);
    assert_true(r->res.end_us >= at->end_us);
    t_plugin_destroy(p);
    free(r);
    free(p);
}

static void
test_connect_timeout_and_order(void **state)
{
    struct t_plugin *p = calloc(1, sizeof *p);
    struct t_result *r = malloc(sizeof *r);
    struct blackhole b;
    aimx_addr addrs[2];
    const aimx_connect_attempt *a0, *a1;
    uint64_t t0;

    (void)state;
    assert_non_null(p);
    assert_non_null(r);
    blackhole_open(&b);
    t_cfg_str(p, "timeouts.connect", "300ms");
    t_cfg_str(p, "connection_attempt_delay", "2s");
    t_plugin_create(p, b.port);
    /* 127.0.0.2 has no listener on that port (refused); 127.0.0.1 has a
     * full queue (no answer).  Tried in that order; the refusal starts
     * the second at once, not after the 2s delay (RFC 8305 5). */
    addrs[0] = t_addr("127.0.0.2");
    addrs[1] = t_addr("127.0.0.1");
    t0 = t_now_us();
    assert_null(t_open(p, addrs, 2, 0, r));
    assert_true(t_now_us() - t0 >= 250000);
    assert_true(t_now_us() - t0 < 5000000);
    assert_int_equal(r->res.result_class, AIMX_CLASS_TEMPORARY);
    assert_int_equal(r->res.scope, AIMX_SCOPE_ADDRESS);
    assert_int_equal(r->res.phase, AIMX_PHASE_CONNECT);
    assert_int_equal(r->res.kind, AIMX_FAIL_TIMEOUT);
    assert_non_null(strstr(r->res.reply, "300ms"));
    assert_int_equal(r->res.attempt_count, 2);
    a0 = AIMX_ATTEMPT_AT(&r->res, 0);
    a1 = AIMX_ATTEMPT_AT(&r->res, 1);
    assert_int_equal(a0->outcome, AIMX_CONNECT_REFUSED);
    assert_memory_equal(&a0->remote, &addrs[0], sizeof addrs[0]);
    assert_int_equal(a1->outcome, AIMX_CONNECT_TIMEOUT);
    assert_memory_equal(&a1->remote, &addrs[1], sizeof addrs[1]);
    assert_true(a1->start_us >= a0->end_us);
    assert_true(a1->start_us < a0->start_us + 1000000);
    assert_true(a1->end_us - a1->start_us >= 250000);
    /* It was bound: the local side is known. */
    assert_int_equal(a1->local.family, AIMX_AF_INET);
    assert_int_not_equal(a1->local_port, 0);
    t_plugin_destroy(p);
    blackhole_close(&b);
    free(r);
    free(p);
}

static void
test_connect_call_deadline(void **state)
{
    struct t_plugin *p = calloc(1, sizeof *p);
    struct t_result *r = malloc(sizeof *r);
    struct blackhole b;
    aimx_addr addrs[2];
    uint64_t t0;

    (void)state;
    assert_non_null(p);
    assert_non_null(r);
    blackhole_open(&b);
    /* connect timeout: the default 30s; the next attempt would start
     * after 2s, the deadline comes first. */
    t_cfg_str(p, "connection_attempt_delay", "2s");
    t_plugin_create(p, b.port);
    addrs[0] = t_addr("127.0.0.1");
    addrs[1] = t_addr("127.0.0.1");
    t0 = t_now_us();
    assert_null(t_open(p, addrs, 2, 300, r));
    assert_true(t_now_us() - t0 < 5000000);
    assert_int_equal(r->res.kind, AIMX_FAIL_TIMEOUT);
    assert_int_equal(r->res.result_class, AIMX_CLASS_TEMPORARY);
    assert_non_null(strstr(r->res.reply, "deadline"));
    /* The deadline ends the race: the first attempt is cut, the second
     * never started (both recorded). */
    assert_int_equal(r->res.attempt_count, 2);
    assert_int_equal(AIMX_ATTEMPT_AT(&r->res, 0)->outcome,
                     AIMX_CONNECT_ABORTED);
    assert_int_equal(AIMX_ATTEMPT_AT(&r->res, 1)->outcome,
                     AIMX_CONNECT_NOT_STARTED);
    assert_int_equal(AIMX_ATTEMPT_AT(&r->res, 1)->start_us, 0);
    t_plugin_destroy(p);
    free(p);

    /* With the default delay (250ms) the second starts well before the
     * deadline (1s): both are cut by it. */
    p = calloc(1, sizeof *p);
    assert_non_null(p);
    t_plugin_create(p, b.port);
    assert_null(t_open(p, addrs, 2, 1000, r));
    assert_int_equal(r->res.kind, AIMX_FAIL_TIMEOUT);
    assert_int_equal(r->res.attempt_count, 2);
    assert_int_equal(AIMX_ATTEMPT_AT(&r->res, 0)->outcome,
                     AIMX_CONNECT_ABORTED);
    assert_int_equal(AIMX_ATTEMPT_AT(&r->res, 1)->outcome,
                     AIMX_CONNECT_ABORTED);
    assert_true(AIMX_ATTEMPT_AT(&r->res, 1)->start_us >=
                AIMX_ATTEMPT_AT(&r->res, 0)->start_us + 250000);
    t_plugin_destroy(p);
    blackhole_close(&b);
    free(r);
    free(p);
}

struct aborter {
    const aimx_transport_ops *ops;
    void *inst;
    unsigned after_ms;
};

static void *
abort_later(void *arg)
{
    struct aborter *a = arg;
    struct timespec ts = {a->after_ms / 1000,
                          (long)(a->after_ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
    a->ops->abort(a->inst);
    return NULL;
}

static void
test_abort_connect_and_sticky(void **state)
{
    struct t_plugin *p = calloc(1, sizeof *p);
    struct t_result *r = malloc(sizeof *r);
    struct blackhole b;
    struct aborter ab;
    aimx_addr a;
    aimx_open_request req;
    pthread_t th;
    uint64_t t0;

    (void)state;
    assert_non_null(p);
    assert_non_null(r);
    blackhole_open(&b);
    t_plugin_create(p, b.port);
    a = t_addr("127.0.0.1");
    ab.ops = p->ops;
    ab.inst = p->inst;
    ab.after_ms = 200;
    assert_int_equal(pthread_create(&th, NULL, abort_later, &ab), 0);
    t0 = t_now_us();
    assert_null(t_open(p, &a, 1, 0, r));
    assert_true(t_now_us() - t0 < 3000000);
    pthread_join(th, NULL);
    assert_int_equal(r->res.kind, AIMX_FAIL_ABORTED);
    assert_int_equal(r->res.result_class, AIMX_CLASS_TEMPORARY);
    assert_int_equal(r->res.scope, AIMX_SCOPE_ADDRESS);
    assert_int_equal(r->res.attempt_count, 1);
    assert_int_equal(AIMX_ATTEMPT_AT(&r->res, 0)->outcome,
                     AIMX_CONNECT_ABORTED);
    /* Until destroy(): every later call ends at once, nothing tried. */
    assert_null(t_open(p, &a, 1, 0, r));
    assert_int_equal(r->res.kind, AIMX_FAIL_ABORTED);
    assert_int_equal(r->res.attempt_count, 0);
    memset(&req, 0, sizeof req);
    req.struct_size = (uint32_t)sizeof req;
    req.addrs = &a;
    req.addr_count = 1;
    t_result_init(r, 0);
    assert_int_equal(p->ops->probe(p->inst, &req, &r->res), AIMX_OK);
    assert_int_equal(r->res.kind, AIMX_FAIL_ABORTED);
    p->ops->abort(p->inst); /* twice is fine */
    t_plugin_destroy(p);
    blackhole_close(&b);
    free(r);
    free(p);
}

static void
test_invalid_arguments(void **state)
{
    struct t_plugin *p = calloc(1, sizeof *p);
    struct t_result *r = malloc(sizeof *r);
    aimx_addr a = t_addr("127.0.0.1");
    aimx_open_request req;
    aimx_envelope env;
    aimx_session *s = NULL;
    const char *rcpts[] = {"a@b.test"};
    struct aimx_fake_msg m;

    (void)state;
    assert_non_null(p);
    assert_non_null(r);
    t_plugin_create(p, closed_port());
    memset(&req, 0, sizeof req);
    req.struct_size = (uint32_t)sizeof req;
    req.addrs = &a;
    t_result_init(r, 0);
    /* No address. */
    assert_int_equal(p->ops->open(p->inst, &req, &s, &r->res),
                     AIMX_ERR_INVALID);
    assert_null(s);
    /* A result smaller than the plugin's: not written. */
    req.addr_count = 1;
    r->res.struct_size = 16;
    assert_int_equal(p->ops->open(p->inst, &req, &s, &r->res),
                     AIMX_ERR_INVALID);
    assert_int_equal(r->res.result_class, 0);
    assert_int_equal(r->res.attempt_count, 0);
    /* send() without recipients. */
    memset(&env, 0, sizeof env);
    env.struct_size = (uint32_t)sizeof env;
    env.sender = "";
    env.rcpts = rcpts;
    env.rcpt_count = 0;
    aimx_fake_msg_init(&m, "", 0, 0);
    t_result_init(r, 0);
    assert_int_equal(p->ops->send(p->inst, (aimx_session *)(void *)r, &env,
                                  aimx_fake_msg_handle(&m), &r->res),
                     AIMX_ERR_INVALID);
    /* close() of NULL is harmless. */
    p->ops->close(p->inst, NULL, 0);
    t_plugin_destroy(p);
    free(r);
    free(p);
}

/* The connection layer alone, on a socketpair whose other end never
 * reads: the data-block timeout, the call's deadline and abort. */
static uint64_t
now_us(aimx_host *host)
{
    (void)host;
    return t_now_us();
}

struct eventfd_poke {
    int fd;
    unsigned after_ms;
};

static void *
poke_later(void *arg)
{
    struct eventfd_poke *e = arg;
    struct timespec ts = {0, (long)e->after_ms * 1000000L};
    uint64_t one = 1;

    nanosleep(&ts, NULL);
    assert_int_equal(write(e->fd, &one, sizeof one), sizeof one);
    return NULL;
}

static void
test_conn_deadlines_and_abort(void **state)
{
    struct smtp_conn *c = malloc(sizeof *c);
    atomic_int aborted;
    struct eventfd_poke poke;
    pthread_t th;
    size_t big = 16u << 20;
    uint8_t *buf;
    int sv[2], efd;
    uint64_t t0;

    (void)state;
    assert_non_null(c);
    atomic_init(&aborted, 0);
    efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(efd >= 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    smtp_conn_init(c, efd, &aborted, now_us, NULL);
    c->fd = sv[0];

    /* A write nobody reads: ends at the deadline, not before. */
    buf = smtp_conn_reserve(c, big);
    assert_non_null(buf);
    memset(buf, 'x', big);
    smtp_conn_commit(c, big);
    /* Replies the server sends meanwhile are kept (RFC 2920 3.1). */
    assert_int_equal(write(sv[1], "250 ok\r\n", 8), 8);
    t0 = t_now_us();
    assert_int_equal(smtp_conn_flush(c, t0 + 200000), SMTP_IO_TIMEOUT);
    assert_true(t_now_us() - t0 >= 200000);
    assert_true(t_now_us() - t0 < 3000000);
    assert_int_equal(c->wlen, 0);
    assert_int_equal(smtp_conn_pending(c), 8);
    assert_memory_equal(c->rbuf + c->rpos, "250 ok\r\n", 8);
    c->rpos += 8;

    /* Nothing to read: the deadline again. */
    t0 = t_now_us();
    assert_int_equal(smtp_conn_fill(c, t0 + 100000), SMTP_IO_TIMEOUT);
    assert_true(t_now_us() - t0 >= 100000);

    /* abort() from another thread ends a wait with no deadline. */
    poke.fd = efd;
    poke.after_ms = 150;
    assert_int_equal(pthread_create(&th, NULL, poke_later, &poke), 0);
    t0 = t_now_us();
    assert_int_equal(smtp_conn_fill(c, 0), SMTP_IO_ABORTED);
    assert_true(t_now_us() - t0 < 3000000);
    pthread_join(th, NULL);
    /* The descriptor stays readable: sticky. */
    assert_int_equal(smtp_conn_fill(c, 0), SMTP_IO_ABORTED);

    /* The flag alone is enough too. */
    c->abort_fd = -1;
    atomic_store(&aborted, 1);
    assert_int_equal(smtp_conn_append(c, "x", 1), SMTP_IO_OK);
    assert_int_equal(smtp_conn_flush(c, 0), SMTP_IO_ABORTED);
    atomic_store(&aborted, 0);

    /* The other end gone: EOF once what it sent is read.  (A fresh pair:
     * a peer that closes with unread data resets instead.) */
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    c->fd = sv[0];
    c->rpos = c->rlen = 0;
    assert_int_equal(write(sv[1], "221 bye\r\n", 9), 9);
    close(sv[1]);
    assert_int_equal(smtp_conn_fill(c, t_now_us() + 1000000), SMTP_IO_OK);
    assert_int_equal(smtp_conn_pending(c), 9);
    c->rpos = c->rlen;
    assert_int_equal(smtp_conn_fill(c, t_now_us() + 1000000), SMTP_IO_EOF);
    /* Writing to it fails without SIGPIPE. */
    assert_int_equal(smtp_conn_append(c, "QUIT\r\n", 6), SMTP_IO_OK);
    assert_int_equal(smtp_conn_flush(c, t_now_us() + 1000000), SMTP_IO_ERROR);
    assert_true(c->sys_errno == EPIPE || c->sys_errno == ECONNRESET);
    smtp_conn_close(c);
    assert_int_equal(c->fd, -1);
    close(efd);
    free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_module),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_values),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_all_errors),
        cmocka_unit_test(test_config_tls_and_sources),
        cmocka_unit_test(test_helo_valid),
        cmocka_unit_test(test_ehlo_keywords),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_timeout_and_order),
        cmocka_unit_test(test_connect_call_deadline),
        cmocka_unit_test(test_abort_connect_and_sticky),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_conn_deadlines_and_abort),
    };
    return cmocka_run_group_tests(tests, NULL, remove_dir);
}
