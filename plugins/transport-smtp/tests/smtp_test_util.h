/* SPDX-License-Identifier: MIT */
/*
 * What the transport-smtp tests share: the plugin under the SDK's fake
 * host, host-shaped result storage (elements larger than the plugin's
 * structs, with guards), and real SMTP servers on loopback started and
 * stopped by PID: Debian's aiosmtpd (tests/peers/aiosmtpd_sink.py) and the
 * fault-injecting peer (tests/peers/smtp_fault_peer.py).
 */
#ifndef SMTP_TEST_UTIL_H
#define SMTP_TEST_UTIL_H

#include <aimx/fake_host.h>
#include <aimx/plugin.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define T_MAX_ATTEMPTS 8
#define T_MAX_RCPTS    128
#define T_GUARD        0xa5u

const aimx_plugin_descriptor *transport_smtp_LTX_aimx_plugin_v1(void);

/* The plugin instance and its fake host. */
struct t_plugin {
    struct aimx_fake_host fh;
    struct aimx_fake_cfg cfg[24];
    size_t ncfg;
    const aimx_plugin_descriptor *d;
    const aimx_transport_ops *ops;
    void *inst;
};

/* Host-side elements larger than the plugin's (a newer minor's host). */
struct t_attempt {
    aimx_connect_attempt a;
    uint8_t tail[24];
};
struct t_rcpt {
    aimx_rcpt_result r;
    uint8_t tail[24];
};

/* One call's result storage, laid out as a host does. */
struct t_result {
    aimx_transport_result res;
    struct t_attempt attempts[T_MAX_ATTEMPTS];
    struct t_rcpt rcpts[T_MAX_RCPTS];
};

/* Adds a config entry (strings borrowed) before t_plugin_create(). */
void t_cfg_int(struct t_plugin *p, const char *path, int64_t v);
void t_cfg_str(struct t_plugin *p, const char *path, const char *v);
/* Creates the instance with port (0: not configured); asserts success. */
void t_plugin_create(struct t_plugin *p, int port);
/* Destroys it and checks the fake host saw no misuse and no leak. */
void t_plugin_destroy(struct t_plugin *p);

void t_result_init(struct t_result *r, size_t rcpt_count);
/* Asserts that no write went past the plugin's part of an element. */
void t_result_check_guards(const struct t_result *r);

aimx_addr t_addr(const char *text); /* "127.0.0.1", "::1" */
uint64_t t_now_us(void);

/* open() to addrs on the plugin's port, deadline in ms from now (0 =
 * none); asserts AIMX_OK.  *session is NULL unless the result is OK. */
aimx_session *t_open(struct t_plugin *p, const aimx_addr *addrs, size_t n,
                     unsigned deadline_ms, struct t_result *r);
aimx_session *t_open1(struct t_plugin *p, const char *addr, struct t_result *r);
/* t_open() as a client of the MX host mx (SNI, certificate name). */
aimx_session *t_open_mx(struct t_plugin *p, const char *mx,
                        const aimx_addr *addrs, size_t n, unsigned deadline_ms,
                        struct t_result *r);
/* send() of msg (len octets, read max_chunk at a time; 0 = any) to rcpts
 * (NULL-terminated); asserts AIMX_OK. */
void t_send(struct t_plugin *p, aimx_session *s, const char *sender,
            const char *const *rcpts, uint32_t flags, const void *msg,
            size_t len, size_t max_chunk, unsigned deadline_ms,
            struct t_result *r);

/* A server on loopback, in its own temporary directory. */
struct t_peer {
    pid_t pid;
    int port;
    char dir[256];    /* the temporary directory */
    char record[300]; /* dir/record: what the server recorded */
};

/* aiosmtpd_sink.py on listen ("127.0.0.1", "::1" or both joined by ','),
 * with extra arguments (NULL-terminated list, may be NULL). */
void t_peer_sink(struct t_peer *peer, const char *listen,
                 const char *const *extra);
/* smtp_fault_peer.py running the JSON script. */
void t_peer_fault(struct t_peer *peer, const char *listen,
                  const char *script_json);
/* SIGTERM, reaped (SIGKILL after 10 s), directory removed. */
void t_peer_stop(struct t_peer *peer);
/* cmocka group teardown: stops the peers a failed test left running. */
int t_peers_cleanup(void **state);

/* A file of the record directory, NUL-terminated (free it); NULL if it
 * does not exist. */
char *t_peer_file(const struct t_peer *peer, const char *name, size_t *len);
/* Waits up to timeout_ms for the record file to exist. */
int t_peer_wait_file(const struct t_peer *peer, const char *name,
                     unsigned timeout_ms);
/* Waits until stats.json shows no open session (and at least one). */
void t_peer_wait_idle(const struct t_peer *peer);

char *t_read_file(const char *path, size_t *len);
/* Removes a directory tree (best effort). */
void t_remove_tree(const char *dir);
/* Runs argv (argv[0] a path, or a name looked up in PATH) and waits; its
 * exit status, or -1 if it did not exit.  Output goes to /dev/null unless
 * SMTP_TEST_LOGS is set. */
int t_run(const char *const *argv);
/* How many .json records name.json-prefixed files exist: "session-" for
 * the fault peer, "msg-" for aiosmtpd. */
size_t t_peer_count(const struct t_peer *peer, const char *prefix);
/* Occurrences of needle in text. */
size_t t_count(const char *text, const char *needle);
/* The string value of the n-th (0-based) "key": "..." in JSON text, into
 * out (no unescaping: tests use plain values); 0 if absent. */
int t_json_string(const char *json, const char *key, size_t n, char *out,
                  size_t size);

/* The canonical message dot-stuffed and without its last CRLF, as the
 * fault peer stores it (data_file). */
char *t_stuffed_for_peer(const void *msg, size_t len, size_t *out_len);

#endif /* SMTP_TEST_UTIL_H */
