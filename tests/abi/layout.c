/* SPDX-License-Identifier: MIT */
/*
 * Prints the binary layout of <aimx/plugin.h> in a line-oriented text form
 * that check_abi.py compares with the committed baselines
 * (tests/abi/<major>.<minor>/layout.txt).  Plugins built against an older
 * minor keep working only if nothing printed here moves, shrinks or is
 * renumbered, so this list must cover the whole header.
 *
 * Completeness is enforced twice, because a forgotten field would make the
 * baseline silently blind to it:
 *   - at compile time, END() asserts that the named last field, padded to
 *     the struct's alignment, ends exactly at sizeof;
 *   - at run time, the listed fields must start at offset 0, follow each
 *     other with no more than alignment padding, and the last one listed
 *     must be the one END() names.
 * A field appended to the header without being added here therefore fails
 * to compile (or, if it fits in tail padding, is caught by check_abi.py
 * --header, which reads the field names from the header text).
 */
#include <aimx/plugin.h>

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUND_UP(n, a) (((n) + (a)-1) / (a) * (a))

#define MEMBER_SIZE(T, f) sizeof(((T *)0)->f)
/* Field alignment is only needed for the "no unlisted field in between"
 * check; ISO C has no alignof for an expression, so other compilers get a
 * weaker check (offsets still have to increase without overlap). */
#if defined(__GNUC__) || defined(__clang__)
#define MEMBER_ALIGN(T, f) ((size_t) __alignof__(((T *)0)->f))
#else
#define MEMBER_ALIGN(T, f) ((size_t)1)
#endif

struct layout_state {
    const char *name;
    size_t size;
    size_t align;
    size_t end; /* offset + size of the last field listed */
    const char *last;
    int fields;
};

static struct layout_state st;
static int errors;

static void
fail(const char *what, const char *detail)
{
    fprintf(stderr, "layout: struct %s: %s\n", what, detail);
    errors++;
}

static void
begin_struct(const char *name, size_t size, size_t align)
{
    st.name = name;
    st.size = size;
    st.align = align;
    st.end = 0;
    st.last = NULL;
    st.fields = 0;
    printf("struct %s size %zu align %zu\n", name, size, align);
}

static void
field(const char *name, size_t offset, size_t size, size_t align)
{
    char msg[256];

    printf("field %s.%s offset %zu size %zu\n", st.name, name, offset, size);
    /* A gap wider than the padding the compiler needs means a field between
     * the previous one and this one is missing from the list (or the list
     * is out of declaration order). */
    if (offset != ROUND_UP(st.end, align)) {
        snprintf(msg, sizeof msg,
                 "field %s is at offset %zu, but the previous listed field "
                 "ends at %zu (expected %zu): a field is missing from "
                 "layout.c or the list is not in declaration order",
                 name, offset, st.end, ROUND_UP(st.end, align));
        fail(st.name, msg);
    }
    if (offset + size > st.end)
        st.end = offset + size;
    st.last = name;
    st.fields++;
}

static void
end_struct(const char *last)
{
    char msg[256];

    if (st.fields == 0 || strcmp(st.last, last) != 0) {
        snprintf(msg, sizeof msg,
                 "END() names %s but the last field listed is %s", last,
                 st.last ? st.last : "(none)");
        fail(st.name, msg);
    }
    if (ROUND_UP(st.end, st.align) != st.size) {
        snprintf(msg, sizeof msg,
                 "the listed fields end at %zu (%zu with tail padding) but "
                 "sizeof is %zu: a field is missing from layout.c",
                 st.end, (size_t)ROUND_UP(st.end, st.align), st.size);
        fail(st.name, msg);
    }
}

static void
value(const char *name, intmax_t v)
{
    printf("value %s %" PRIdMAX "\n", name, v);
}

#define BEGIN(T) begin_struct(#T, sizeof(T), _Alignof(T))
#define FIELD(T, f)                                                            \
    field(#f, offsetof(T, f), MEMBER_SIZE(T, f), MEMBER_ALIGN(T, f))
#define END(T, last)                                                           \
    do {                                                                       \
        _Static_assert(ROUND_UP(offsetof(T, last) + MEMBER_SIZE(T, last),      \
                                _Alignof(T)) == sizeof(T),                     \
                       #T ": a field after " #last                             \
                          " is missing from layout.c");                        \
        end_struct(#last);                                                     \
    } while (0)
#define VALUE(name) value(#name, (intmax_t)(name))

static void
print_values(void)
{
    /* In header order, so that a diff reads like the header's. */
    VALUE(AIMX_OK);
    VALUE(AIMX_ERR_NOMEM);
    VALUE(AIMX_ERR_INVALID);
    VALUE(AIMX_ERR_UNSUPPORTED);
    VALUE(AIMX_ERR_NOT_FOUND);
    VALUE(AIMX_ERR_WRONG_TYPE);
    VALUE(AIMX_ERR_RANGE);
    VALUE(AIMX_ERR_INTERNAL);
    VALUE(AIMX_ERR_IO);

    VALUE(AIMX_LOG_ERR);
    VALUE(AIMX_LOG_WARNING);
    VALUE(AIMX_LOG_NOTICE);
    VALUE(AIMX_LOG_INFO);
    VALUE(AIMX_LOG_DEBUG);

    VALUE(AIMX_AF_INET);
    VALUE(AIMX_AF_INET6);

    VALUE(AIMX_FAMILY_IPV4);
    VALUE(AIMX_FAMILY_IPV6);

    VALUE(AIMX_DNS_A);
    VALUE(AIMX_DNS_CNAME);
    VALUE(AIMX_DNS_PTR);
    VALUE(AIMX_DNS_MX);
    VALUE(AIMX_DNS_TXT);
    VALUE(AIMX_DNS_AAAA);
    VALUE(AIMX_DNS_TLSA);

    VALUE(AIMX_DNS_OK);
    VALUE(AIMX_DNS_NODATA);
    VALUE(AIMX_DNS_NXDOMAIN);
    VALUE(AIMX_DNS_SERVFAIL);
    VALUE(AIMX_DNS_REFUSED);
    VALUE(AIMX_DNS_TIMEOUT);
    VALUE(AIMX_DNS_UNREACHABLE);
    VALUE(AIMX_DNS_BADNAME);
    VALUE(AIMX_DNS_LOCALERR);
    VALUE(AIMX_DNS_CANCELLED);

    VALUE(AIMX_DNS_F_AD_KNOWN);
    VALUE(AIMX_DNS_F_AD);

    VALUE(AIMX_POLICY_USE);
    VALUE(AIMX_POLICY_SKIP);
    VALUE(AIMX_POLICY_DEFER);

    VALUE(AIMX_MX_IMPLICIT);
    VALUE(AIMX_POLICY_F_TEMPORARY);

    VALUE(AIMX_CLASS_OK);
    VALUE(AIMX_CLASS_TEMPORARY);
    VALUE(AIMX_CLASS_PERMANENT);

    VALUE(AIMX_SCOPE_NONE);
    VALUE(AIMX_SCOPE_ADDRESS);
    VALUE(AIMX_SCOPE_HOST);
    VALUE(AIMX_SCOPE_MESSAGE);
    VALUE(AIMX_SCOPE_RECIPIENT);

    VALUE(AIMX_PHASE_NONE);
    VALUE(AIMX_PHASE_CONNECT);
    VALUE(AIMX_PHASE_GREETING);
    VALUE(AIMX_PHASE_EHLO);
    VALUE(AIMX_PHASE_STARTTLS);
    VALUE(AIMX_PHASE_MAIL);
    VALUE(AIMX_PHASE_RCPT);
    VALUE(AIMX_PHASE_DATA);
    VALUE(AIMX_PHASE_BODY);
    VALUE(AIMX_PHASE_DOT);
    VALUE(AIMX_PHASE_QUIT);
    VALUE(AIMX_PHASE_RSET);

    VALUE(AIMX_FAIL_NONE);
    VALUE(AIMX_FAIL_REFUSED);
    VALUE(AIMX_FAIL_TIMEOUT);
    VALUE(AIMX_FAIL_TLS);
    VALUE(AIMX_FAIL_REPLY);
    VALUE(AIMX_FAIL_LOST);
    VALUE(AIMX_FAIL_ABORTED);
    VALUE(AIMX_FAIL_UNSUPPORTED);
    VALUE(AIMX_FAIL_TOO_LARGE);
    VALUE(AIMX_FAIL_PROTOCOL);
    VALUE(AIMX_FAIL_LOCAL);

    VALUE(AIMX_CONNECT_OK);
    VALUE(AIMX_CONNECT_REFUSED);
    VALUE(AIMX_CONNECT_TIMEOUT);
    VALUE(AIMX_CONNECT_UNREACHABLE);
    VALUE(AIMX_CONNECT_ABANDONED);
    VALUE(AIMX_CONNECT_ABORTED);
    VALUE(AIMX_CONNECT_ERROR);
    VALUE(AIMX_CONNECT_NOT_STARTED);

    VALUE(AIMX_ENV_8BIT);
    VALUE(AIMX_ENV_SMTPUTF8);

    VALUE(AIMX_RESULT_MAYBE_DELIVERED);
    VALUE(AIMX_RESULT_TLS);
    VALUE(AIMX_RESULT_TLS_VERIFIED);

    VALUE(AIMX_TRANSPORT_BIND_IPV4);
    VALUE(AIMX_TRANSPORT_BIND_IPV6);

    VALUE(AIMX_KIND_RESOLVER);
    VALUE(AIMX_KIND_POLICY);
    VALUE(AIMX_KIND_TRANSPORT);
}

static void
print_structs(void)
{
    BEGIN(aimx_addr);
    FIELD(aimx_addr, family);
    FIELD(aimx_addr, reserved);
    FIELD(aimx_addr, bytes);
    END(aimx_addr, bytes);

    BEGIN(aimx_dns_query);
    FIELD(aimx_dns_query, struct_size);
    FIELD(aimx_dns_query, type);
    FIELD(aimx_dns_query, reserved);
    FIELD(aimx_dns_query, name);
    FIELD(aimx_dns_query, deadline_us);
    END(aimx_dns_query, deadline_us);

    BEGIN(aimx_dns_record);
    FIELD(aimx_dns_record, struct_size);
    FIELD(aimx_dns_record, type);
    FIELD(aimx_dns_record, preference);
    FIELD(aimx_dns_record, ttl);
    FIELD(aimx_dns_record, reserved);
    FIELD(aimx_dns_record, owner);
    FIELD(aimx_dns_record, target);
    FIELD(aimx_dns_record, address);
    FIELD(aimx_dns_record, text);
    FIELD(aimx_dns_record, text_len);
    FIELD(aimx_dns_record, rdata);
    FIELD(aimx_dns_record, rdata_len);
    END(aimx_dns_record, rdata_len);

    BEGIN(aimx_dns_completion);
    FIELD(aimx_dns_completion, struct_size);
    FIELD(aimx_dns_completion, outcome);
    FIELD(aimx_dns_completion, flags);
    FIELD(aimx_dns_completion, native_code);
    FIELD(aimx_dns_completion, diag);
    FIELD(aimx_dns_completion, server);
    END(aimx_dns_completion, server);

    BEGIN(aimx_resolver_ops);
    FIELD(aimx_resolver_ops, struct_size);
    FIELD(aimx_resolver_ops, lookup);
    FIELD(aimx_resolver_ops, cancel);
    END(aimx_resolver_ops, cancel);

    BEGIN(aimx_policy_input);
    FIELD(aimx_policy_input, struct_size);
    FIELD(aimx_policy_input, preference);
    FIELD(aimx_policy_input, flags);
    FIELD(aimx_policy_input, mx_host);
    FIELD(aimx_policy_input, a_outcome);
    FIELD(aimx_policy_input, aaaa_outcome);
    FIELD(aimx_policy_input, a_addrs);
    FIELD(aimx_policy_input, a_count);
    FIELD(aimx_policy_input, aaaa_addrs);
    FIELD(aimx_policy_input, aaaa_count);
    END(aimx_policy_input, aaaa_count);

    BEGIN(aimx_policy_output);
    FIELD(aimx_policy_output, struct_size);
    FIELD(aimx_policy_output, verdict);
    FIELD(aimx_policy_output, flags);
    FIELD(aimx_policy_output, target_cap);
    FIELD(aimx_policy_output, targets);
    FIELD(aimx_policy_output, target_count);
    FIELD(aimx_policy_output, reason);
    FIELD(aimx_policy_output, detail);
    FIELD(aimx_policy_output, reserved);
    END(aimx_policy_output, reserved);

    BEGIN(aimx_policy_ops);
    FIELD(aimx_policy_ops, struct_size);
    FIELD(aimx_policy_ops, select);
    FIELD(aimx_policy_ops, families);
    END(aimx_policy_ops, families);

    BEGIN(aimx_open_request);
    FIELD(aimx_open_request, struct_size);
    FIELD(aimx_open_request, flags);
    FIELD(aimx_open_request, mx_host);
    FIELD(aimx_open_request, addrs);
    FIELD(aimx_open_request, addr_count);
    FIELD(aimx_open_request, deadline_us);
    END(aimx_open_request, deadline_us);

    BEGIN(aimx_envelope);
    FIELD(aimx_envelope, struct_size);
    FIELD(aimx_envelope, flags);
    FIELD(aimx_envelope, sender);
    FIELD(aimx_envelope, rcpts);
    FIELD(aimx_envelope, rcpt_count);
    FIELD(aimx_envelope, message_size);
    FIELD(aimx_envelope, deadline_us);
    END(aimx_envelope, deadline_us);

    BEGIN(aimx_connect_attempt);
    FIELD(aimx_connect_attempt, struct_size);
    FIELD(aimx_connect_attempt, outcome);
    FIELD(aimx_connect_attempt, sys_errno);
    FIELD(aimx_connect_attempt, remote_port);
    FIELD(aimx_connect_attempt, local_port);
    FIELD(aimx_connect_attempt, remote);
    FIELD(aimx_connect_attempt, local);
    FIELD(aimx_connect_attempt, start_us);
    FIELD(aimx_connect_attempt, end_us);
    END(aimx_connect_attempt, end_us);

    BEGIN(aimx_rcpt_result);
    FIELD(aimx_rcpt_result, struct_size);
    FIELD(aimx_rcpt_result, result_class);
    FIELD(aimx_rcpt_result, phase);
    FIELD(aimx_rcpt_result, code);
    FIELD(aimx_rcpt_result, enhanced);
    FIELD(aimx_rcpt_result, reply);
    FIELD(aimx_rcpt_result, flags);
    END(aimx_rcpt_result, flags);

    BEGIN(aimx_transport_result);
    FIELD(aimx_transport_result, struct_size);
    FIELD(aimx_transport_result, result_class);
    FIELD(aimx_transport_result, scope);
    FIELD(aimx_transport_result, phase);
    FIELD(aimx_transport_result, kind);
    FIELD(aimx_transport_result, flags);
    FIELD(aimx_transport_result, code);
    FIELD(aimx_transport_result, enhanced);
    FIELD(aimx_transport_result, reply);
    FIELD(aimx_transport_result, tls_version);
    FIELD(aimx_transport_result, tls_cipher);
    FIELD(aimx_transport_result, local);
    FIELD(aimx_transport_result, remote);
    FIELD(aimx_transport_result, local_port);
    FIELD(aimx_transport_result, remote_port);
    FIELD(aimx_transport_result, start_us);
    FIELD(aimx_transport_result, connected_us);
    FIELD(aimx_transport_result, end_us);
    FIELD(aimx_transport_result, attempts);
    FIELD(aimx_transport_result, attempt_stride);
    FIELD(aimx_transport_result, attempt_cap);
    FIELD(aimx_transport_result, attempt_count);
    FIELD(aimx_transport_result, rcpts);
    FIELD(aimx_transport_result, rcpt_stride);
    FIELD(aimx_transport_result, rcpt_count);
    END(aimx_transport_result, rcpt_count);

    BEGIN(aimx_transport_info);
    FIELD(aimx_transport_info, struct_size);
    FIELD(aimx_transport_info, flags);
    FIELD(aimx_transport_info, port);
    FIELD(aimx_transport_info, reserved);
    FIELD(aimx_transport_info, bind_ipv4);
    FIELD(aimx_transport_info, bind_ipv6);
    FIELD(aimx_transport_info, ehlo_name);
    END(aimx_transport_info, ehlo_name);

    BEGIN(aimx_transport_ops);
    FIELD(aimx_transport_ops, struct_size);
    FIELD(aimx_transport_ops, open);
    FIELD(aimx_transport_ops, send);
    FIELD(aimx_transport_ops, close);
    FIELD(aimx_transport_ops, probe);
    FIELD(aimx_transport_ops, abort);
    FIELD(aimx_transport_ops, describe);
    END(aimx_transport_ops, describe);

    BEGIN(aimx_host_api);
    FIELD(aimx_host_api, struct_size);
    FIELD(aimx_host_api, abi_major);
    FIELD(aimx_host_api, abi_minor);
    FIELD(aimx_host_api, reserved);
    FIELD(aimx_host_api, log);
    FIELD(aimx_host_api, vlog);
    FIELD(aimx_host_api, cfg_string);
    FIELD(aimx_host_api, cfg_bool);
    FIELD(aimx_host_api, cfg_int);
    FIELD(aimx_host_api, cfg_duration);
    FIELD(aimx_host_api, cfg_size);
    FIELD(aimx_host_api, cfg_count);
    FIELD(aimx_host_api, cfg_error);
    FIELD(aimx_host_api, alloc);
    FIELD(aimx_host_api, realloc);
    FIELD(aimx_host_api, free);
    FIELD(aimx_host_api, monotonic_us);
    FIELD(aimx_host_api, dns_add);
    FIELD(aimx_host_api, dns_complete);
    FIELD(aimx_host_api, msg_read);
    FIELD(aimx_host_api, msg_rewind);
    END(aimx_host_api, msg_rewind);

    BEGIN(aimx_plugin_descriptor);
    FIELD(aimx_plugin_descriptor, struct_size);
    FIELD(aimx_plugin_descriptor, abi_major);
    FIELD(aimx_plugin_descriptor, abi_minor);
    FIELD(aimx_plugin_descriptor, kind);
    FIELD(aimx_plugin_descriptor, flags);
    FIELD(aimx_plugin_descriptor, name);
    FIELD(aimx_plugin_descriptor, version);
    FIELD(aimx_plugin_descriptor, description);
    FIELD(aimx_plugin_descriptor, create);
    FIELD(aimx_plugin_descriptor, destroy);
    FIELD(aimx_plugin_descriptor, resolver);
    FIELD(aimx_plugin_descriptor, policy);
    FIELD(aimx_plugin_descriptor, transport);
    END(aimx_plugin_descriptor, transport);
}

int
main(void)
{
    printf("abi %d.%d\n", AIMX_ABI_MAJOR, AIMX_ABI_MINOR);
    printf("symbol AIMX_PLUGIN_ENTRY_SYMBOL %s\n", AIMX_PLUGIN_ENTRY_SYMBOL);
    print_values();
    print_structs();
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "layout: cannot write the layout\n");
        return EXIT_FAILURE;
    }
    if (errors) {
        fprintf(stderr,
                "layout: %d error(s): layout.c no longer describes "
                "<aimx/plugin.h> completely; list every field in "
                "declaration order\n",
                errors);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
