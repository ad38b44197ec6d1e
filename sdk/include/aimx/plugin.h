/*
 * <aimx/plugin.h> -- the aimx plugin SDK, ABI 1.0.
 *
 * SPDX-License-Identifier: MIT
 *
 * This header is the whole contract between the aimx core (the "host") and
 * its plugins.  It is header-only: a plugin links against nothing from aimx
 * and receives every service through the table passed to create().  The
 * reference manual is docs/sdk.md; this file is normative where they differ.
 *
 * VERSIONING RULE
 *   - A plugin loads when its ABI major equals the host's and its ABI minor
 *     is <= the host's.  Each major has its own entry symbol
 *     ("aimx_plugin_v1" for major 1), so a plugin of another major is
 *     recognised and refused with a clear message.
 *   - Minor versions only append: fields at the end of structs, values at
 *     the end of enums, services at the end of aimx_host_api, operations at
 *     the end of the ops tables.  Nothing is reordered, renumbered, resized
 *     or removed within a major.
 *   - Every struct that crosses the boundary starts with `uint32_t
 *     struct_size` (the size its writer was compiled with).  A reader uses
 *     only fields that lie below struct_size and treats the rest as zero.
 *     A writer of a struct that the other side allocated (the outputs a
 *     plugin fills in: aimx_policy_output, aimx_transport_result and its
 *     arrays, aimx_transport_info) writes only fields below the
 *     struct_size the allocator set.  A field added in a minor starts at
 *     or after the struct's previous sizeof (no 1.0 struct has tail
 *     padding to fall into).  The one exception is aimx_addr, a frozen
 *     value type like in6_addr.
 *   - Enums cross the boundary as uint32_t fields, and aimx_status as a
 *     return value: build plugins with the platform's default enum size
 *     (never -fshort-enums).
 *   - A NULL function slot means "not provided".
 *   - The first three fields of aimx_plugin_descriptor (struct_size,
 *     abi_major, abi_minor) keep their place in every future major, so a
 *     host can always say which ABI a plugin was built for.
 *
 * THREADING
 *   - create() and destroy() run on the host's main thread only, before any
 *     other operation of that instance and after the last one.
 *   - resolver lookup() and cancel() may be called from any host thread,
 *     concurrently.  The result arrives through the sink services, from any
 *     thread, possibly before lookup() returns.
 *   - policy select() and families() may be called from any host thread,
 *     concurrently; they must not modify the instance.
 *   - transport open(), send(), close() and probe() block.  The host calls
 *     them on its worker threads, concurrently for different sessions, never
 *     concurrently for the same session.  Each call carries an absolute
 *     deadline on the monotonic clock.  abort() is thread-safe and may be
 *     called from any thread (a signal handler excepted) at any time.
 *   - Every host service is thread-safe except where noted; the config
 *     services may be used during create() only.
 *
 * OWNERSHIP
 *   The caller owns what it passes.  Results go into caller-owned storage or
 *   through host sink services that copy what they need.  Nothing allocated
 *   on one side is freed on the other.  Strings returned by the config
 *   services are borrowed and valid until the instance is destroyed.
 *
 * PLUGINS MUST NOT
 *   - define ELF constructors or destructors (__attribute__((constructor)),
 *     .init_array entries, C++ static objects with side effects): the host
 *     checks the descriptor before any plugin code runs, and a constructor
 *     would defeat that;
 *   - call any aimx symbol (there is none to call: link with
 *     -Wl,--no-undefined -Wl,-z,now and hidden visibility);
 *   - unload themselves or install signal handlers.
 */
#ifndef AIMX_PLUGIN_H
#define AIMX_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AIMX_ABI_MAJOR           1
#define AIMX_ABI_MINOR           0
/* The entry symbol carries the major: a major bump renames it. */
#define AIMX_PLUGIN_ENTRY_SYMBOL "aimx_plugin_v1"

#if defined(__GNUC__) || defined(__clang__)
#define AIMX_EXPORT            __attribute__((visibility("default")))
#define AIMX_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define AIMX_EXPORT
#define AIMX_PRINTF(fmt, args)
#endif

/* ------------------------------------------------------------------------
 * Opaque handles.  Never defined in the SDK; only the side that creates one
 * knows what is inside.
 */
typedef struct aimx_host aimx_host; /* host side, one per plugin instance */
typedef struct aimx_dns_sink aimx_dns_sink; /* host side, one per DNS lookup */
typedef struct aimx_msg aimx_msg; /* host side, the message being sent */
typedef struct aimx_session aimx_session; /* transport side, one SMTP session */

/* ------------------------------------------------------------------------
 * Status of a call across the boundary.  Values are ABI: append only.
 */
typedef enum aimx_status {
    AIMX_OK = 0,
    AIMX_ERR_NOMEM = 1,       /* out of memory */
    AIMX_ERR_INVALID = 2,     /* bad argument or bad configuration value */
    AIMX_ERR_UNSUPPORTED = 3, /* the operation or key is not available */
    AIMX_ERR_NOT_FOUND = 4,   /* the config key is absent */
    AIMX_ERR_WRONG_TYPE = 5,  /* the config key has another type (reported) */
    AIMX_ERR_RANGE = 6,       /* the config value is out of range (reported) */
    AIMX_ERR_INTERNAL = 7,    /* a bug or an unexpected system failure */
    AIMX_ERR_IO = 8           /* reading the message failed */
} aimx_status;

/* Log levels use syslog(3)'s numbers. */
enum aimx_log_level {
    AIMX_LOG_ERR = 3,
    AIMX_LOG_WARNING = 4,
    AIMX_LOG_NOTICE = 5,
    AIMX_LOG_INFO = 6,
    AIMX_LOG_DEBUG = 7
};

/* ------------------------------------------------------------------------
 * Addresses.  Our own family numbers: AF_INET6 differs between systems.
 */
enum aimx_family { AIMX_AF_INET = 4, AIMX_AF_INET6 = 6 };

/* Bit set of families, as policies report what outbound mail uses. */
#define AIMX_FAMILY_IPV4 0x1u
#define AIMX_FAMILY_IPV6 0x2u

/* A frozen value type (no struct_size, never extended). */
typedef struct aimx_addr {
    uint8_t family;      /* enum aimx_family; 0 = no address */
    uint8_t reserved[3]; /* zero */
    uint8_t bytes[16];   /* network byte order; IPv4 uses bytes[0..3] */
} aimx_addr;

/* ------------------------------------------------------------------------
 * DNS (resolver plugins produce these; the core consumes them).
 */

/* RR types are plain RFC numbers: any type may be asked for. */
#define AIMX_DNS_A     1
#define AIMX_DNS_CNAME 5
#define AIMX_DNS_PTR   12
#define AIMX_DNS_MX    15
#define AIMX_DNS_TXT   16
#define AIMX_DNS_AAAA  28
#define AIMX_DNS_TLSA  52

/* Outcome of one lookup.  Values are ABI: append only. */
enum aimx_dns_outcome {
    AIMX_DNS_OK = 0,          /* at least one record of the requested type */
    AIMX_DNS_NODATA = 1,      /* the name exists, no record of that type
                                 (a NOERROR answer holding only a CNAME too) */
    AIMX_DNS_NXDOMAIN = 2,    /* the name does not exist: permanent */
    AIMX_DNS_SERVFAIL = 3,    /* servers failed (SERVFAIL, FORMERR, a CNAME
                                 loop...): temporary */
    AIMX_DNS_REFUSED = 4,     /* every server that answered said REFUSED */
    AIMX_DNS_TIMEOUT = 5,     /* no server answered before the deadline */
    AIMX_DNS_UNREACHABLE = 6, /* no server could be reached at all: temporary */
    AIMX_DNS_BADNAME = 7,     /* the name cannot be queried: permanent */
    AIMX_DNS_LOCALERR = 8, /* local failure (memory, bad reply...): temporary */
    AIMX_DNS_CANCELLED = 9 /* cancel() was called */
};

/* aimx_dns_completion.flags */
#define AIMX_DNS_F_AD_KNOWN 0x1u /* the AD bit below is meaningful */
#define AIMX_DNS_F_AD       0x2u /* every answer (of a CNAME chain too) had AD */

typedef struct aimx_dns_query {
    uint32_t struct_size;
    uint16_t type;        /* RR type, e.g. AIMX_DNS_MX */
    uint16_t reserved;    /* zero */
    const char *name;     /* absolute, A-labels, trailing dot; no search list */
    uint64_t deadline_us; /* absolute monotonic time; 0 = resolver's own */
} aimx_dns_query;

/* One answer record, handed to the host's dns_add(), which copies it. */
typedef struct aimx_dns_record {
    uint32_t struct_size;
    uint16_t type;       /* this record's type (a CNAME in a chain too) */
    uint16_t preference; /* MX preference */
    uint32_t ttl;        /* seconds */
    uint32_t reserved;   /* zero */
    const char *owner;   /* owner name, no trailing dot */
    const char *target;  /* MX exchange, PTR or CNAME target, no trailing dot;
                              "." for the root (a null MX) */
    aimx_addr address;   /* A and AAAA */
    const uint8_t *text; /* TXT: the strings of one record, joined */
    size_t text_len;
    /* RDATA standing alone (names uncompressed), or NULL */
    const uint8_t *rdata;
    size_t rdata_len;
} aimx_dns_record;

/* The end of a lookup, handed to the host's dns_complete(). */
typedef struct aimx_dns_completion {
    uint32_t struct_size;
    uint32_t outcome;    /* enum aimx_dns_outcome */
    uint32_t flags;      /* AIMX_DNS_F_* */
    int32_t native_code; /* the resolver library's own code, for logs */
    const char *diag;    /* diagnostic text or NULL; borrowed for the call */
    const char *server;  /* the server that gave the answer, or NULL */
} aimx_dns_completion;

typedef struct aimx_resolver_ops {
    uint32_t struct_size;
    /* Required.  Starts a lookup.  On AIMX_OK the plugin reports every answer
     * record of the requested type (and the CNAMEs it followed) with
     * api->dns_add() and then calls api->dns_complete() exactly once, from
     * any thread, possibly before lookup() returns.  On any other status no
     * sink service is called for this sink.  The query and its name are
     * valid only during the call: copy what is needed later.  The sink stays
     * valid until dns_complete() returns. */
    aimx_status (*lookup)(void *instance, const aimx_dns_query *query,
                          aimx_dns_sink *sink);
    /* Optional.  Asks for an early end; the completion still arrives
     * (normally as AIMX_DNS_CANCELLED).  The host calls it only for a sink
     * whose completion has not yet returned.  A resolver's destroy()
     * completes every lookup still in flight (as AIMX_DNS_CANCELLED)
     * before it returns, so no completion arrives afterwards. */
    void (*cancel)(void *instance, aimx_dns_sink *sink);
} aimx_resolver_ops;

/* ------------------------------------------------------------------------
 * Address-family policy.
 */
enum aimx_policy_verdict {
    AIMX_POLICY_USE = 0,  /* connect to targets[0..target_count) in order */
    AIMX_POLICY_SKIP = 1, /* do not use this MX host; reason says why */
    AIMX_POLICY_DEFER = 2 /* cannot decide now (a DNS failure): temporary */
};

/* aimx_policy_input.flags */
#define AIMX_MX_IMPLICIT                                                       \
    0x1u /* no MX record: the domain itself (RFC 5321 5.1) */

/*
 * SKIP or DEFER?  Both leave the host unused for this attempt.  SKIP says
 * what is true of the host ("it has no IPv4 address"); with
 * AIMX_POLICY_F_TEMPORARY it says the reason may go away (it rests on a
 * failed lookup).  DEFER says the policy cannot decide yet.  A domain none
 * of whose hosts is usable is deferred if any host was deferred or skipped
 * with AIMX_POLICY_F_TEMPORARY, and bounced otherwise.  The core always
 * looks up both A and AAAA, so both outcomes are real.
 */
/* aimx_policy_output.flags */
#define AIMX_POLICY_F_TEMPORARY                                                \
    0x1u /* the skip comes from a temporary DNS failure */

typedef struct aimx_policy_input {
    uint32_t struct_size;
    uint16_t preference;      /* MX preference */
    uint16_t flags;           /* AIMX_MX_* */
    const char *mx_host;      /* MX host name, no trailing dot */
    uint32_t a_outcome;       /* enum aimx_dns_outcome of the A lookup */
    uint32_t aaaa_outcome;    /* enum aimx_dns_outcome of the AAAA lookup */
    const aimx_addr *a_addrs; /* the A addresses, resolver order */
    size_t a_count;
    const aimx_addr *aaaa_addrs; /* the AAAA addresses, resolver order */
    size_t aaaa_count;
} aimx_policy_input;

/* Filled in by select().  Targets are indices: i < a_count names a_addrs[i],
 * otherwise aaaa_addrs[i - a_count].  A policy may filter and reorder, never
 * invent: the host refuses an index out of range or given twice. */
typedef struct aimx_policy_output {
    uint32_t struct_size;
    uint32_t verdict;      /* enum aimx_policy_verdict */
    uint32_t flags;        /* AIMX_POLICY_F_* */
    uint32_t target_cap;   /* set by the host: a_count + aaaa_count */
    uint32_t *targets;     /* host-owned array of target_cap entries */
    uint32_t target_count; /* set by the policy */
    char reason[32];       /* SKIP/DEFER: a code, [a-z0-9_]+, e.g. "no_ipv4" */
    char detail[256];      /* SKIP/DEFER: a sentence for a person */
    uint32_t reserved;     /* zero; fills the tail padding */
} aimx_policy_output;

typedef struct aimx_policy_ops {
    uint32_t struct_size;
    /* Required.  Decides how one MX host is used.  Pure and synchronous. */
    aimx_status (*select)(void *instance, const aimx_policy_input *in,
                          aimx_policy_output *out);
    /* Required.  The families outbound mail uses (AIMX_FAMILY_* bits); for
     * `aimx setup`, which publishes records only for these. */
    aimx_status (*families)(void *instance, uint32_t *families);
} aimx_policy_ops;

/* ------------------------------------------------------------------------
 * Transport.  Values of these enums are ABI: append only.
 */
enum aimx_class {
    AIMX_CLASS_OK = 0,
    AIMX_CLASS_TEMPORARY = 1,
    AIMX_CLASS_PERMANENT = 2
};

enum aimx_scope {
    AIMX_SCOPE_NONE = 0,     /* success */
    AIMX_SCOPE_ADDRESS = 1,  /* this address failed: try the host's next one */
    AIMX_SCOPE_HOST = 2,     /* this MX host cannot do it: try the next MX */
    AIMX_SCOPE_MESSAGE = 3,  /* applies to every recipient of the message */
    AIMX_SCOPE_RECIPIENT = 4 /* see the per-recipient results */
};

enum aimx_phase {
    AIMX_PHASE_NONE = 0,
    AIMX_PHASE_CONNECT = 1,
    AIMX_PHASE_GREETING = 2,
    AIMX_PHASE_EHLO = 3,
    AIMX_PHASE_STARTTLS = 4,
    AIMX_PHASE_MAIL = 5,
    AIMX_PHASE_RCPT = 6,
    AIMX_PHASE_DATA = 7,
    AIMX_PHASE_BODY = 8, /* sending the message content */
    AIMX_PHASE_DOT = 9,  /* waiting for the reply to the final dot */
    AIMX_PHASE_QUIT = 10,
    AIMX_PHASE_RSET = 11
};

enum aimx_failure_kind {
    AIMX_FAIL_NONE = 0,
    AIMX_FAIL_REFUSED = 1,     /* connection refused or unreachable */
    AIMX_FAIL_TIMEOUT = 2,     /* a phase timeout or the call's deadline */
    AIMX_FAIL_TLS = 3,         /* handshake or certificate failure */
    AIMX_FAIL_REPLY = 4,       /* the server's reply; see code */
    AIMX_FAIL_LOST = 5,        /* the connection closed or broke */
    AIMX_FAIL_ABORTED = 6,     /* abort() was called */
    AIMX_FAIL_UNSUPPORTED = 7, /* the server lacks a needed extension */
    AIMX_FAIL_TOO_LARGE = 8,   /* the message exceeds the advertised SIZE */
    AIMX_FAIL_PROTOCOL = 9,    /* a malformed reply */
    AIMX_FAIL_LOCAL = 10 /* a local failure (memory, reading the message) */
};

enum aimx_connect_outcome {
    AIMX_CONNECT_OK = 0,          /* connected */
    AIMX_CONNECT_REFUSED = 1,     /* RST */
    AIMX_CONNECT_TIMEOUT = 2,     /* no answer before the connect timeout */
    AIMX_CONNECT_UNREACHABLE = 3, /* network or host unreachable */
    AIMX_CONNECT_ABANDONED = 4,   /* another attempt won the race */
    AIMX_CONNECT_ABORTED = 5,     /* abort() or the call's deadline */
    AIMX_CONNECT_ERROR = 6,       /* another local error; see sys_errno */
    AIMX_CONNECT_NOT_STARTED = 7  /* the race ended before its turn */
};

/* aimx_envelope.flags */
#define AIMX_ENV_8BIT     0x1u /* the message has 8-bit data (BODY=8BITMIME) */
#define AIMX_ENV_SMTPUTF8 0x2u /* the envelope needs SMTPUTF8 */

/* aimx_transport_result.flags */
#define AIMX_RESULT_MAYBE_DELIVERED 0x1u /* lost after the final dot */
#define AIMX_RESULT_TLS             0x2u /* the session was encrypted */
#define AIMX_RESULT_TLS_VERIFIED    0x4u /* and the certificate was verified */

/* aimx_transport_info.flags */
#define AIMX_TRANSPORT_BIND_IPV4 0x1u /* bind_ipv4 is set */
#define AIMX_TRANSPORT_BIND_IPV6 0x2u /* bind_ipv6 is set */

typedef struct aimx_open_request {
    uint32_t struct_size;
    uint32_t flags;         /* zero in 1.0 */
    const char *mx_host;    /* MX host name: EHLO peer, SNI, certificate name */
    const aimx_addr *addrs; /* the policy's targets, in its order */
    size_t addr_count;
    uint64_t deadline_us; /* absolute monotonic deadline of the call */
} aimx_open_request;

typedef struct aimx_envelope {
    uint32_t struct_size;
    uint32_t flags;           /* AIMX_ENV_* */
    const char *sender;       /* reverse-path without <>; "" = null sender */
    const char *const *rcpts; /* forward-paths without <> */
    size_t rcpt_count;
    uint64_t message_size; /* canonical octets, for SIZE= */
    uint64_t deadline_us;  /* absolute monotonic deadline of the call */
} aimx_envelope;

typedef struct aimx_connect_attempt {
    uint32_t struct_size;
    uint32_t outcome;  /* enum aimx_connect_outcome */
    int32_t sys_errno; /* errno of a failure, or 0 */
    uint16_t remote_port;
    uint16_t local_port;
    aimx_addr remote;
    aimx_addr local;   /* family 0 when never bound */
    uint64_t start_us; /* monotonic */
    uint64_t end_us;   /* monotonic; 0 while pending */
} aimx_connect_attempt;

typedef struct aimx_rcpt_result {
    uint32_t struct_size;
    uint32_t result_class; /* enum aimx_class */
    uint32_t phase;        /* where its fate was decided (RCPT, DATA, DOT...) */
    uint16_t code;         /* SMTP reply code, 0 when none */
    char enhanced[16];     /* "5.1.1" or "" */
    char reply[256];       /* the reply text, bounded */
    uint16_t flags;        /* AIMX_RESULT_MAYBE_DELIVERED: this recipient's
                              transaction was lost after the final dot */
} aimx_rcpt_result;

/*
 * The outcome of one transport call, in storage the host owns and zeroes.
 * The arrays are host-owned too; their element stride is given beside them
 * (an element may be larger than the plugin's sizeof): use
 * AIMX_ATTEMPT_AT() and AIMX_RCPT_AT() to index them.
 */
typedef struct aimx_transport_result {
    uint32_t struct_size;
    uint32_t result_class; /* enum aimx_class */
    uint32_t scope;        /* enum aimx_scope */
    uint32_t phase;        /* enum aimx_phase where it ended */
    uint32_t kind;         /* enum aimx_failure_kind */
    uint32_t flags;        /* AIMX_RESULT_* */
    uint16_t code;         /* SMTP reply code, 0 when none */
    char enhanced[16];     /* enhanced status code, "" when none */
    char reply[512];       /* reply text or local diagnostic, bounded */
    char tls_version[16];  /* "TLSv1.3" or "" */
    char tls_cipher[64];   /* negotiated cipher or "" */
    aimx_addr local;       /* the session's local address */
    aimx_addr remote;      /* the address that won */
    uint16_t local_port;
    uint16_t remote_port;
    uint64_t start_us;     /* monotonic: call started */
    uint64_t connected_us; /* monotonic: connection established, or 0 */
    uint64_t end_us;       /* monotonic: call ended */
    /* Connect attempts (open and probe).  The host sets attempts,
     * attempt_stride, attempt_cap and every element's struct_size; the
     * plugin fills elements in order and sets attempt_count (at most
     * attempt_cap; later attempts are dropped). */
    aimx_connect_attempt *attempts;
    size_t attempt_stride;
    size_t attempt_cap;
    size_t attempt_count;
    /* Per-recipient results (send): the host sets rcpts, rcpt_stride,
     * rcpt_count (= aimx_envelope.rcpt_count) and every element's
     * struct_size; the plugin fills element i for aimx_envelope.rcpts[i]. */
    aimx_rcpt_result *rcpts;
    size_t rcpt_stride;
    size_t rcpt_count;
} aimx_transport_result;

#define AIMX_ATTEMPT_AT(res, i)                                                \
    ((aimx_connect_attempt *)(void *)((char *)(res)->attempts +                \
                                      (size_t)(i) * (res)->attempt_stride))
#define AIMX_RCPT_AT(res, i)                                                   \
    ((aimx_rcpt_result *)(void *)((char *)(res)->rcpts +                       \
                                  (size_t)(i) * (res)->rcpt_stride))

typedef struct aimx_transport_info {
    uint32_t struct_size;
    uint32_t flags;      /* AIMX_TRANSPORT_BIND_* */
    uint16_t port;       /* the port it connects to */
    uint16_t reserved;   /* zero */
    aimx_addr bind_ipv4; /* configured IPv4 source address */
    aimx_addr bind_ipv6; /* configured IPv6 source address */
    char ehlo_name[256]; /* the name it sends in EHLO/HELO */
} aimx_transport_info;

typedef struct aimx_transport_ops {
    uint32_t struct_size;
    /* Required.  Opens a session to one MX host: connects to req->addrs (in
     * order, or racing them), reads the greeting, says EHLO (and STARTTLS).
     * Returns AIMX_OK when *res is filled in, whatever the outcome; on
     * AIMX_CLASS_OK *session is set.  Any other status is a plugin failure,
     * which the host treats as temporary for this address. */
    aimx_status (*open)(void *instance, const aimx_open_request *req,
                        aimx_session **session, aimx_transport_result *res);
    /* Required.  Runs one or more transactions for env on the session,
     * reading the message with api->msg_read() (canonical: CRLF, not
     * dot-stuffed); the transport dot-stuffs and splits the recipients over
     * transactions by its own limit.  Same return rule as open(). */
    aimx_status (*send)(void *instance, aimx_session *session,
                        const aimx_envelope *env, aimx_msg *msg,
                        aimx_transport_result *res);
    /* Required.  Says QUIT (best effort, bounded by deadline_us) and frees
     * the session, always. */
    void (*close)(void *instance, aimx_session *session, uint64_t deadline_us);
    /* Optional.  Connect, greeting, EHLO, QUIT; no transaction.  Same
     * return rule as open(). */
    aimx_status (*probe)(void *instance, const aimx_open_request *req,
                         aimx_transport_result *res);
    /* Optional, thread-safe.  Ends every blocking call of this instance
     * promptly (AIMX_FAIL_ABORTED), now and until destroy(). */
    void (*abort)(void *instance);
    /* Optional.  EHLO name, port and source addresses, for `aimx setup`. */
    aimx_status (*describe)(void *instance, aimx_transport_info *info);
} aimx_transport_ops;

/* ------------------------------------------------------------------------
 * Services the host gives every plugin instance.
 *
 * Config paths are relative to the plugin's own group ("servers",
 * "timeouts.connect", "servers[1]").  A path starting with '/' names one of
 * the documented top-level keys plugins may read, with the host's defaults
 * applied: "/domain" (string) and "/enable_ipv6" (bool).  Every path a
 * plugin asks for during create() -- found or not -- becomes a known key of
 * its group; any other key in the group is then an error that names its
 * file and line.  The getters report wrong types, bad units and
 * out-of-range values themselves (FILE:LINE) and return the status; the
 * plugin just fails create().  AIMX_ERR_NOT_FOUND is silent: use a default.
 *
 * Durations and sizes are strings.  A duration is one or more decimal
 * digits followed by exactly one unit: "ms", "s", "m" or "h".  A size is
 * decimal digits optionally followed by "KB", "MB" or "GB" (powers of
 * 1024).  No sign, space, fraction, exponent or other unit; a number that
 * does not fit in 64 bits is not a duration or size (AIMX_ERR_WRONG_TYPE);
 * one outside [min, max] is AIMX_ERR_RANGE.
 */
typedef struct aimx_host_api {
    uint32_t struct_size;
    uint32_t abi_major; /* the host's */
    uint32_t abi_minor; /* the host's */
    uint32_t reserved;  /* zero */

    /* Logging; the host prefixes the plugin's name. */
    void (*log)(aimx_host *host, int level, const char *fmt, ...)
        AIMX_PRINTF(3, 4);
    void (*vlog)(aimx_host *host, int level, const char *fmt, va_list ap);

    /* Configuration (during create() only). */
    aimx_status (*cfg_string)(aimx_host *host, const char *path,
                              const char **out);
    aimx_status (*cfg_bool)(aimx_host *host, const char *path, int *out);
    aimx_status (*cfg_int)(aimx_host *host, const char *path, int64_t min,
                           int64_t max, int64_t *out);
    /* A duration string: "250ms", "30s", "10m", "1h". */
    aimx_status (*cfg_duration)(aimx_host *host, const char *path,
                                uint64_t min_us, uint64_t max_us,
                                uint64_t *out_us);
    /* A size string: "512", "64KB", "25MB", "1GB" (powers of 1024). */
    aimx_status (*cfg_size)(aimx_host *host, const char *path, uint64_t min,
                            uint64_t max, uint64_t *out);
    /* Number of elements of a list or array. */
    aimx_status (*cfg_count)(aimx_host *host, const char *path, size_t *out);
    /* Reports a bad value as "FILE:LINE: 'path' in group 'G': message";
     * returns AIMX_ERR_INVALID so that `return api->cfg_error(...)` reads
     * well. */
    aimx_status (*cfg_error)(aimx_host *host, const char *path, const char *fmt,
                             ...) AIMX_PRINTF(3, 4);

    /* Memory (optional to use: no ownership crosses the boundary). */
    void *(*alloc)(aimx_host *host, size_t size); /* zeroed */
    void *(*realloc)(aimx_host *host, void *ptr, size_t size);
    void (*free)(aimx_host *host, void *ptr);

    /* CLOCK_MONOTONIC in microseconds: the clock of every deadline. */
    uint64_t (*monotonic_us)(aimx_host *host);

    /* DNS sink (resolvers).  dns_add() copies the record; dns_complete()
     * ends the lookup; after it the sink must not be touched again. */
    aimx_status (*dns_add)(aimx_dns_sink *sink, const aimx_dns_record *record);
    void (*dns_complete)(aimx_dns_sink *sink,
                         const aimx_dns_completion *completion);

    /* The message (transports): > 0 octets read, 0 at the end, < 0 on
     * error (an aimx_status, negated).  Canonical form: CRLF line endings,
     * not dot-stuffed, headers included.  msg_rewind() starts it again. */
    int64_t (*msg_read)(aimx_msg *msg, void *buf, size_t len);
    aimx_status (*msg_rewind)(aimx_msg *msg);

    /* ABI 1.1 and later: append new services below this line only. */
} aimx_host_api;

/* ------------------------------------------------------------------------
 * The descriptor: the one thing a plugin exports.
 */
enum aimx_plugin_kind {
    AIMX_KIND_RESOLVER = 1,
    AIMX_KIND_POLICY = 2,
    AIMX_KIND_TRANSPORT = 3
};

typedef struct aimx_plugin_descriptor {
    uint32_t struct_size; /* sizeof(aimx_plugin_descriptor) */
    uint32_t abi_major;   /* AIMX_ABI_MAJOR when built */
    uint32_t abi_minor;   /* AIMX_ABI_MINOR when built */
    uint32_t kind;        /* enum aimx_plugin_kind */
    uint32_t flags;       /* zero in 1.0 */
    const char *name;     /* [a-z0-9-]+, equal to the file name without .so */
    const char *version;  /* the plugin's own version, free text */
    const char *description; /* one line */
    /* Required.  Reads its config, checks it, sets *instance.  On failure it
     * has reported why (cfg_error, log) and returns another status. */
    aimx_status (*create)(const aimx_host_api *api, aimx_host *host,
                          void **instance);
    /* Required. */
    void (*destroy)(void *instance);
    /* Exactly the one that matches kind is set. */
    const aimx_resolver_ops *resolver;
    const aimx_policy_ops *policy;
    const aimx_transport_ops *transport;
} aimx_plugin_descriptor;

typedef const aimx_plugin_descriptor *aimx_plugin_entry_fn(void);

/*
 * AIMX_PLUGIN_DEFINE(ident, descriptor); exports the entry function.
 * ident is the plugin's name with '-' written as '_' (libltdl's canonical
 * module name): "resolver-cares" -> resolver_cares.  It always emits
 * ident_LTX_aimx_plugin_v1, unique and safe to link into the aimx binary
 * (AIMX_PLUGIN_STATIC), and in a shared module also aimx_plugin_v1.
 * The entry returns static data and does nothing else.  Use it once, at
 * file scope, followed by a semicolon.
 */
#ifdef __cplusplus
#define AIMX_EXTERN_C extern "C"
#else
#define AIMX_EXTERN_C
#endif
#define AIMX_PLUGIN_PREFIXED_(ident) ident##_LTX_aimx_plugin_v1
#define AIMX_PLUGIN_DEF_(ident, descriptor)                                    \
    AIMX_EXTERN_C AIMX_EXPORT aimx_plugin_entry_fn AIMX_PLUGIN_PREFIXED_(      \
        ident);                                                                \
    AIMX_EXTERN_C const aimx_plugin_descriptor *AIMX_PLUGIN_PREFIXED_(ident)(  \
        void)                                                                  \
    {                                                                          \
        return &(descriptor);                                                  \
    }
#ifdef AIMX_PLUGIN_STATIC
#define AIMX_PLUGIN_DEFINE(ident, descriptor)                                  \
    AIMX_PLUGIN_DEF_(ident, descriptor)                                        \
    struct aimx_plugin_define_end_
#else
#define AIMX_PLUGIN_DEFINE(ident, descriptor)                                  \
    AIMX_PLUGIN_DEF_(ident, descriptor)                                        \
    AIMX_EXTERN_C AIMX_EXPORT aimx_plugin_entry_fn aimx_plugin_v1;             \
    AIMX_EXTERN_C const aimx_plugin_descriptor *aimx_plugin_v1(void)           \
    {                                                                          \
        return &(descriptor);                                                  \
    }                                                                          \
    struct aimx_plugin_define_end_
#endif

#ifdef __cplusplus
}
#endif
#endif /* AIMX_PLUGIN_H */
