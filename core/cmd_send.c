/* SPDX-License-Identifier: MIT */
/*
 * aimx send: compose a message from options or take a raw one, check it,
 * spool it once in canonical form and sign it; then deliver it
 * (send_deliver.c) or, with --dry-run, show it.  A dry run needs no plugin
 * at all, so none is loaded.
 */
#include "address.h"
#include "cli.h"
#include "compose.h"
#include "dkim.h"
#include "exitcodes.h"
#include "json.h"
#include "log.h"
#include "message.h"
#include "send_deliver.h"
#include "spool.h"
#include "units.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IO_CHUNK 65536

enum send_opt {
    OPT_FROM = 256,
    OPT_TO,
    OPT_CC,
    OPT_BCC,
    OPT_REPLY_TO,
    OPT_SUBJECT,
    OPT_IN_REPLY_TO,
    OPT_REFERENCES,
    OPT_MESSAGE_ID,
    OPT_HEADER,
    OPT_ATTACH,
    OPT_BODY,
    OPT_BODY_FILE,
    OPT_RAW,
    OPT_DRY_RUN,
    OPT_DEADLINE,
    OPT_EXTRACT = 't'
};

const struct option aimx__send_options[] = {
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"cc", required_argument, NULL, OPT_CC},
    {"bcc", required_argument, NULL, OPT_BCC},
    {"reply-to", required_argument, NULL, OPT_REPLY_TO},
    {"subject", required_argument, NULL, OPT_SUBJECT},
    {"in-reply-to", required_argument, NULL, OPT_IN_REPLY_TO},
    {"references", required_argument, NULL, OPT_REFERENCES},
    {"message-id", required_argument, NULL, OPT_MESSAGE_ID},
    {"header", required_argument, NULL, OPT_HEADER},
    {"attach", required_argument, NULL, OPT_ATTACH},
    {"body", required_argument, NULL, OPT_BODY},
    {"body-file", required_argument, NULL, OPT_BODY_FILE},
    {"raw", required_argument, NULL, OPT_RAW},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"deadline", required_argument, NULL, OPT_DEADLINE},
    {NULL, 0, NULL, 0},
};

/* Header fields aimx writes itself, or that must never be sent. */
static const struct {
    const char *name;
    const char *instead;
} reserved_fields[] = {
    {"From", "--from"},
    {"To", "--to"},
    {"Cc", "--cc"},
    {"Bcc", "--bcc (Bcc recipients never appear in the message)"},
    {"Reply-To", "--reply-to"},
    {"Subject", "--subject"},
    {"Date", "nothing: aimx writes Date"},
    {"Message-ID", "--message-id"},
    {"In-Reply-To", "--in-reply-to"},
    {"References", "--references"},
    {"MIME-Version", "nothing: aimx writes the MIME structure"},
    {"Content-Type", "--attach, or nothing: aimx writes the MIME structure"},
    {"Content-Transfer-Encoding", "nothing: aimx chooses the encoding"},
    {"DKIM-Signature", "the dkim group of the configuration"},
    {"Return-Path", "--from (the receiving server writes Return-Path)"},
};

struct send {
    const aimx_cli *cli;
    /* options */
    const char *from_opt;
    const char *subject;
    const char *in_reply_to_opt;
    const char *message_id_opt;
    const char *body;
    const char *body_file;
    const char *raw;
    int extract;
    int dry_run;
    uint64_t deadline_us; /* --deadline, 0: none */
    uint64_t start_us;    /* CLOCK_MONOTONIC when the command began */
    char **headers;
    size_t header_count;
    const char **attach;
    size_t attach_count;
    const char **refs;
    size_t ref_count;
    /* checked values */
    aimx_mailbox_list from, to, cc, bcc, reply_to, env_to;
    char message_id[1024];
    aimx_buf in_reply_to, references;
    /* inputs */
    aimx_attachment *attachments;
    int body_fd;
    int body_owned; /* body_fd is ours to close */
    int raw_fd;
    /* results */
    aimx_config config;
    int have_config;
    aimx_spool spool;
    int have_spool;
    EVP_PKEY *key;
    char *sender; /* envelope, "" for the null sender */
    aimx_mailbox_list rcpts;
    int utf8_envelope;
    int signed_msg;
    int aligned; /* -1 unknown */
};

static int collect_options(struct send *s);
static int check_compose(struct send *s);
static int check_header(struct send *s, const char *h);
static int check_ids(struct send *s, const char *opt, const char *value,
                     aimx_buf *out);
static int add_addresses(struct send *s, const char *opt, const char *value,
                         aimx_mailbox_list *list);
static int check_text(struct send *s, const char *opt, const char *value);
static int open_input(struct send *s, const char *path, int *fd);
static int prepare_body(struct send *s, aimx_compose *c);
static int spool_raw(struct send *s);
static int envelope(struct send *s);
static int sign(struct send *s);
static int print_dry_run(struct send *s);
static int deliver(struct send *s);
static void json_message(FILE *out, aimx_msg *m, int utf8);
static void cleanup(struct send *s);

static int
add_addresses(struct send *s, const char *opt, const char *value,
              aimx_mailbox_list *list)
{
    char err[1024];

    if (aimx__addr_parse_list(value, 0, list, err, sizeof err) != 0)
        return aimx__fail(s->cli, AIMX_EXIT_DATAERR, "%s: %s", opt, err);
    return 0;
}

/* Text that becomes a header field: one line of UTF-8. */
static int
check_text(struct send *s, const char *opt, const char *value)
{
    char shown[300];

    if (aimx__has_line_break(value, strlen(value)))
        return aimx__fail(s->cli, AIMX_EXIT_DATAERR,
                          "%s '%s' contains a line break (CR or LF): "
                          "refused, it could inject header fields",
                          opt, aimx__printable(value, shown, sizeof shown));
    if (!aimx__utf8_valid(value, strlen(value)))
        return aimx__fail(s->cli, AIMX_EXIT_DATAERR,
                          "%s '%s' is not valid UTF-8", opt,
                          aimx__printable(value, shown, sizeof shown));
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return aimx__fail(s->cli, AIMX_EXIT_DATAERR,
                              "%s '%s' contains a control character", opt,
                              aimx__printable(value, shown, sizeof shown));
    return 0;
}

/* Message IDs, separated by white space or commas, into "<a> <b>". */
static int
check_ids(struct send *s, const char *opt, const char *value, aimx_buf *out)
{
    char *copy = strdup(value), *save = NULL, id[1024], err[1024];
    int rc = 0;

    if (copy == NULL)
        return aimx__fail(s->cli, AIMX_EXIT_SOFTWARE, "out of memory");
    if (aimx__has_line_break(value, strlen(value))) {
        rc = check_text(s, opt, value);
        free(copy);
        return rc;
    }
    for (char *t = strtok_r(copy, " \t,", &save); t != NULL;
         t = strtok_r(NULL, " \t,", &save)) {
        if (aimx__msgid_normalize(t, id, sizeof id, err, sizeof err) != 0) {
            rc = aimx__fail(s->cli, AIMX_EXIT_DATAERR, "%s: %s", opt, err);
            break;
        }
        if (out->len > 0)
            aimx__buf_str(out, " ");
        aimx__buf_str(out, id);
    }
    free(copy);
    if (rc == 0 && out->len == 0)
        rc = aimx__fail(s->cli, AIMX_EXIT_DATAERR,
                        "%s '%s' holds no message ID", opt, value);
    return rc;
}

static int
check_header(struct send *s, const char *h)
{
    const char *colon = strchr(h, ':');
    char shown[300];
    size_t name_len;

    aimx__printable(h, shown, sizeof shown);
    if (aimx__has_line_break(h, strlen(h)))
        return aimx__fail(s->cli, AIMX_EXIT_DATAERR,
                          "--header '%s' contains a line break (CR or LF): "
                          "refused, it could inject header fields",
                          shown);
    if (colon == NULL || colon == h)
        return aimx__fail(s->cli, AIMX_EXIT_USAGE,
                          "--header '%s' is not 'Name: value'", shown);
    name_len = (size_t)(colon - h);
    if (name_len > 76)
        return aimx__fail(s->cli, AIMX_EXIT_DATAERR,
                          "--header '%s': the field name is longer than 76 "
                          "octets",
                          shown);
    for (size_t i = 0; i < name_len; i++)
        if ((unsigned char)h[i] < 33 || (unsigned char)h[i] > 126)
            return aimx__fail(s->cli, AIMX_EXIT_DATAERR,
                              "--header '%s': a field name is printable "
                              "ASCII without spaces (RFC 5322 2.2)",
                              shown);
    for (size_t i = 0; i < sizeof reserved_fields / sizeof reserved_fields[0];
         i++)
        if (strlen(reserved_fields[i].name) == name_len &&
            strncasecmp(h, reserved_fields[i].name, name_len) == 0)
            return aimx__fail(s->cli, AIMX_EXIT_USAGE,
                              "--header '%s': use %s instead", shown,
                              reserved_fields[i].instead);
    if (check_text(s, "--header", h) != 0)
        return AIMX_EXIT_DATAERR;
    /* An ASCII value is written as given; a word that cannot fold would
     * break the 998-octet line limit. */
    size_t word = 0;
    for (const char *p = colon + 1; *p; p++) {
        word = *p == ' ' ? 0 : word + 1;
        if (word > 900)
            return aimx__fail(s->cli, AIMX_EXIT_DATAERR,
                              "--header '%s' has a word longer than 900 "
                              "octets: header lines may not pass 998",
                              shown);
    }
    return 0;
}

static int
collect_options(struct send *s)
{
    const aimx_cli *cli = s->cli;
    int n = cli->opt_count;

    s->headers = calloc((size_t)n + 1, sizeof *s->headers);
    s->attach = calloc((size_t)n + 1, sizeof *s->attach);
    s->refs = calloc((size_t)n + 1, sizeof *s->refs);
    if (s->headers == NULL || s->attach == NULL || s->refs == NULL)
        return aimx__fail(cli, AIMX_EXIT_SOFTWARE, "out of memory");
    for (int i = 0; i < n; i++) {
        const char *arg = cli->opts[i].arg;
        const char **single = NULL;
        const char *name = NULL;
        int rc = 0;

        switch (cli->opts[i].id) {
        case OPT_FROM:
            single = &s->from_opt;
            name = "--from";
            break;
        case OPT_SUBJECT:
            single = &s->subject;
            name = "--subject";
            break;
        case OPT_IN_REPLY_TO:
            single = &s->in_reply_to_opt;
            name = "--in-reply-to";
            break;
        case OPT_MESSAGE_ID:
            single = &s->message_id_opt;
            name = "--message-id";
            break;
        case OPT_BODY:
            single = &s->body;
            name = "--body";
            break;
        case OPT_BODY_FILE:
            single = &s->body_file;
            name = "--body-file";
            break;
        case OPT_RAW:
            single = &s->raw;
            name = "--raw";
            break;
        case OPT_TO:
            rc = add_addresses(s, "--to", arg, &s->to);
            break;
        case OPT_CC:
            rc = add_addresses(s, "--cc", arg, &s->cc);
            break;
        case OPT_BCC:
            rc = add_addresses(s, "--bcc", arg, &s->bcc);
            break;
        case OPT_REPLY_TO:
            rc = add_addresses(s, "--reply-to", arg, &s->reply_to);
            break;
        case OPT_REFERENCES:
            s->refs[s->ref_count++] = arg;
            break;
        case OPT_HEADER:
            s->headers[s->header_count++] = (char *)arg;
            break;
        case OPT_ATTACH:
            s->attach[s->attach_count++] = arg;
            break;
        case OPT_DRY_RUN:
            s->dry_run = 1;
            break;
        case OPT_DEADLINE:
            if (aimx__parse_duration(arg, &s->deadline_us) != 0 ||
                s->deadline_us == 0)
                return aimx__fail(cli, AIMX_EXIT_USAGE,
                                  "--deadline '%s' is not a duration (a whole "
                                  "number and a unit: ms, s, m or h, as in "
                                  "\"30s\")",
                                  arg);
            break;
        case OPT_EXTRACT:
            s->extract = 1;
            break;
        }
        if (rc != 0)
            return rc;
        if (single != NULL) {
            if (*single != NULL)
                return aimx__fail(cli, AIMX_EXIT_USAGE,
                                  "%s is given twice; see 'aimx send --help'",
                                  name);
            *single = arg;
        }
    }
    return 0;
}

static int
check_compose(struct send *s)
{
    const aimx_cli *cli = s->cli;
    char err[1024];
    int rc;

    if (s->from_opt == NULL)
        return aimx__fail(cli, AIMX_EXIT_USAGE,
                          "'aimx send' needs --from ADDR (or --raw FILE)");
    if (aimx__addr_parse_list(s->from_opt, 0, &s->from, err, sizeof err) != 0)
        return aimx__fail(cli, AIMX_EXIT_DATAERR, "--from: %s", err);
    if (s->from.n != 1)
        return aimx__fail(cli, AIMX_EXIT_USAGE,
                          "--from takes one address, not %zu", s->from.n);
    if (s->to.n + s->cc.n + s->bcc.n == 0)
        return aimx__fail(cli, AIMX_EXIT_USAGE,
                          "'aimx send' needs a recipient: --to ADDR (or --cc, "
                          "--bcc)");
    if (s->body != NULL && s->body_file != NULL)
        return aimx__fail(cli, AIMX_EXIT_USAGE,
                          "--body and --body-file exclude each other");
    if (s->extract)
        return aimx__fail(cli, AIMX_EXIT_USAGE,
                          "-t reads recipients from a raw message: use it "
                          "with --raw");
    /* Display names become header text too. */
    aimx_mailbox_list *lists[] = {&s->from, &s->to, &s->cc, &s->reply_to};
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++)
        for (size_t i = 0; i < lists[l]->n; i++)
            if (lists[l]->v[i].display != NULL &&
                check_text(s, "display name", lists[l]->v[i].display) != 0)
                return AIMX_EXIT_DATAERR;
    if (s->subject != NULL && check_text(s, "--subject", s->subject) != 0)
        return AIMX_EXIT_DATAERR;
    for (size_t i = 0; i < s->header_count; i++)
        if ((rc = check_header(s, s->headers[i])) != 0)
            return rc;
    if (s->message_id_opt != NULL) {
        if (aimx__msgid_normalize(s->message_id_opt, s->message_id,
                                  sizeof s->message_id, err, sizeof err) != 0)
            return aimx__fail(cli, AIMX_EXIT_DATAERR, "--message-id: %s", err);
    }
    if (s->in_reply_to_opt != NULL &&
        (rc = check_ids(s, "--in-reply-to", s->in_reply_to_opt,
                        &s->in_reply_to)) != 0)
        return rc;
    for (size_t i = 0; i < s->ref_count; i++)
        if ((rc = check_ids(s, "--references", s->refs[i], &s->references)) !=
            0)
            return rc;
    /* A reply with no known thread starts one from its parent (RFC 5322
     * 3.6.4). */
    if (s->ref_count == 0 && s->in_reply_to.len > 0)
        aimx__buf_str(&s->references, s->in_reply_to.p);
    return 0;
}

static int
open_input(struct send *s, const char *path, int *fd)
{
    struct stat st;

    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (*fd < 0)
        return aimx__fail(s->cli, AIMX_EXIT_NOINPUT, "cannot read %s: %s", path,
                          strerror(errno));
    if (fstat(*fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return aimx__fail(s->cli, AIMX_EXIT_NOINPUT,
                          "cannot read %s: it is a directory", path);
    }
    return 0;
}

/*
 * The transfer encoding depends on the whole body, so it is scanned before
 * any header is written.  A body from a file or standard input is copied
 * into an unnamed file in spool_dir while it is scanned: the input is read
 * once, and what is encoded is exactly what was scanned even if the file
 * changes meanwhile.
 */
static int
prepare_body(struct send *s, aimx_compose *c)
{
    aimx_body_scan scan;
    char *buf = NULL, err[512];
    int code = 0, rc = 0, stage;
    const char *name = s->body_file ? s->body_file : "standard input";

    aimx__body_scan_init(&scan);
    c->body_fd = -1;
    c->body_name = name;
    if (s->body != NULL) {
        c->body_text = s->body;
        c->body_len = strlen(s->body);
        c->body_name = "--body";
        aimx__body_scan_feed(&scan, s->body, c->body_len);
        goto scanned;
    }
    int in = STDIN_FILENO;
    if (s->body_file != NULL && (rc = open_input(s, s->body_file, &in)) != 0)
        return rc;
    stage = aimx__spool_tmpfile(s->config.spool_dir, &code, err, sizeof err);
    buf = malloc(IO_CHUNK);
    if (stage < 0 || buf == NULL) {
        rc = stage < 0
                 ? aimx__fail(s->cli, code, "%s", err)
                 : aimx__fail(s->cli, AIMX_EXIT_SOFTWARE, "out of memory");
        goto staged;
    }
    for (;;) {
        ssize_t n = read(in, buf, IO_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = aimx__fail(s->cli, AIMX_EXIT_NOINPUT,
                            "cannot read the body from %s: %s", name,
                            strerror(errno));
            break;
        }
        if (n == 0)
            break;
        aimx__body_scan_feed(&scan, buf, (size_t)n);
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(stage, buf + w, (size_t)(n - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                rc = aimx__fail(
                    s->cli,
                    errno == ENOSPC || errno == EDQUOT ? AIMX_EXIT_TEMPFAIL
                                                       : AIMX_EXIT_CANTCREAT,
                    "cannot write the spool file: %s", strerror(errno));
                break;
            }
            w += k;
        }
        if (rc != 0)
            break;
    }
staged:
    free(buf);
    if (in != STDIN_FILENO)
        close(in);
    if (stage >= 0) {
        s->body_fd = stage;
        s->body_owned = 1;
    }
    if (rc != 0)
        return rc;
    if (lseek(s->body_fd, 0, SEEK_SET) < 0)
        return aimx__fail(s->cli, AIMX_EXIT_SOFTWARE,
                          "cannot read the staged body: %s", strerror(errno));
    c->body_fd = s->body_fd;
scanned:
    aimx__body_scan_end(&scan);
    if (scan.bad_line != 0)
        return aimx__fail(s->cli, AIMX_EXIT_DATAERR,
                          "the body (%s) is not UTF-8 text: line %llu holds "
                          "an invalid sequence or a NUL; send binary data "
                          "with --attach",
                          c->body_name, (unsigned long long)scan.bad_line);
    c->body_seven_bit = scan.seven_bit;
    return 0;
}

static int
spool_raw(struct send *s)
{
    char *buf = malloc(IO_CHUNK);
    const char *name = strcmp(s->raw, "-") == 0 ? "standard input" : s->raw;
    int rc = 0;

    if (buf == NULL)
        return aimx__fail(s->cli, AIMX_EXIT_SOFTWARE, "out of memory");
    for (;;) {
        ssize_t n = read(s->raw_fd, buf, IO_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = aimx__fail(s->cli, AIMX_EXIT_NOINPUT, "cannot read %s: %s",
                            name, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if (aimx__spool_write(&s->spool, buf, (size_t)n) != 0)
            break;
    }
    free(buf);
    return rc;
}

/* The envelope: for a composed message its From and recipients; for a raw
 * one what sendmail would do (-f, the operands, and -t). */
static int
envelope(struct send *s)
{
    const aimx_cli *cli = s->cli;
    char err[1024];

    if (s->raw == NULL) {
        s->sender = strdup(s->from.v[0].addr);
        aimx_mailbox_list *lists[] = {&s->to, &s->cc, &s->bcc};
        for (size_t l = 0; l < 3; l++)
            for (size_t i = 0; i < lists[l]->n; i++)
                if (aimx__mailbox_list_add_unique(&s->rcpts, &lists[l]->v[i]) !=
                    0)
                    return aimx__fail(cli, AIMX_EXIT_SOFTWARE, "out of memory");
        s->utf8_envelope = s->from.v[0].utf8;
    } else {
        if (s->from_opt != NULL &&
            (strcmp(s->from_opt, "") == 0 || strcmp(s->from_opt, "<>") == 0)) {
            s->sender = strdup(""); /* the null reverse-path */
        } else if (s->from_opt != NULL) {
            if (aimx__addr_normalize(s->from_opt, &s->sender, &s->utf8_envelope,
                                     err, sizeof err) != 0)
                return aimx__fail(cli, AIMX_EXIT_DATAERR, "--from: %s", err);
        } else {
            const char *v = aimx__spool_value(&s->spool, AIMX_F_FROM);
            aimx_mailbox_list from = {0};
            if (v == NULL)
                return aimx__fail(cli, AIMX_EXIT_DATAERR,
                                  "the message has no From: field, so the "
                                  "envelope sender is unknown; give --from "
                                  "ADDR");
            if (aimx__addr_parse_list(v, 1, &from, err, sizeof err) != 0 ||
                from.n == 0) {
                aimx__mailbox_list_free(&from);
                return aimx__fail(cli, AIMX_EXIT_DATAERR,
                                  "the From: field gives no usable envelope "
                                  "sender (%s); give --from ADDR",
                                  from.n == 0 ? "no address" : err);
            }
            s->sender = strdup(from.v[0].addr);
            s->utf8_envelope = from.v[0].utf8;
            aimx__mailbox_list_free(&from);
        }
        for (size_t i = 0; i < s->env_to.n; i++)
            if (aimx__mailbox_list_add_unique(&s->rcpts, &s->env_to.v[i]) != 0)
                return aimx__fail(cli, AIMX_EXIT_SOFTWARE, "out of memory");
        if (s->extract) {
            static const int fields[] = {AIMX_F_TO, AIMX_F_CC, AIMX_F_BCC};
            static const char *const names[] = {"To", "Cc", "Bcc"};
            for (size_t f = 0; f < 3; f++) {
                const char *v = aimx__spool_value(&s->spool, fields[f]);
                aimx_mailbox_list l = {0};
                if (v == NULL)
                    continue;
                if (aimx__addr_parse_list(v, 1, &l, err, sizeof err) != 0) {
                    aimx__mailbox_list_free(&l);
                    return aimx__fail(cli, AIMX_EXIT_DATAERR,
                                      "-t: the %s: field: %s", names[f], err);
                }
                int oom = 0;
                for (size_t i = 0; i < l.n; i++)
                    oom |= aimx__mailbox_list_add_unique(&s->rcpts, &l.v[i]);
                aimx__mailbox_list_free(&l);
                if (oom)
                    return aimx__fail(cli, AIMX_EXIT_SOFTWARE, "out of memory");
            }
        }
        if (s->rcpts.n == 0)
            return aimx__fail(cli,
                              s->extract ? AIMX_EXIT_DATAERR : AIMX_EXIT_USAGE,
                              s->extract ? "-t: the message's To, Cc and Bcc "
                                           "fields hold no address"
                                         : "'aimx send --raw' needs a "
                                           "recipient: --to ADDR, or -t to "
                                           "take them from the message");
    }
    if (s->sender == NULL)
        return aimx__fail(cli, AIMX_EXIT_SOFTWARE, "out of memory");
    for (size_t i = 0; i < s->rcpts.n; i++)
        s->utf8_envelope |= s->rcpts.v[i].utf8;
    return 0;
}

static int
sign(struct send *s)
{
    const aimx_config *c = &s->config;
    aimx_dkim_field fields[AIMX_F_SIGNED * AIMX_SPOOL_KEEP];
    size_t n = aimx__spool_signed_fields(&s->spool, fields);
    const char *from = aimx__spool_value(&s->spool, AIMX_F_FROM);
    aimx_mailbox_list fl = {0};
    char err[1024];
    char *header = NULL;
    int rc;

    if (!c->dkim) {
        aimx__info("no dkim group in the configuration: the message is not "
                   "signed");
        return 0;
    }
    /* Relaxed DMARC alignment of the author's domain with d=. */
    s->aligned = -1;
    if (from != NULL &&
        aimx__addr_parse_list(from, 1, &fl, err, sizeof err) == 0 && fl.n > 0) {
        const char *fd = aimx__addr_domain(fl.v[0].addr);
        s->aligned = aimx__domains_align(fd, c->domain);
        if (!s->aligned)
            aimx__warn("the From: domain %s does not align with the DKIM "
                       "signing domain d=%s: receivers applying DMARC may "
                       "reject or quarantine the message; send from an "
                       "address at %s, or set 'domain' to %s with a key "
                       "published there",
                       fd, c->domain, c->domain, fd);
    } else {
        aimx__warn("the message has no usable From: address, so its DKIM "
                   "alignment with d=%s cannot be checked",
                   c->domain);
    }
    aimx__mailbox_list_free(&fl);
    if (aimx__dkim_sign(s->spool.fd, fields, n, s->spool.bh.hash, s->key,
                        c->domain, c->dkim_selector, time(NULL), &header, err,
                        sizeof err) != 0)
        return aimx__fail(s->cli, AIMX_EXIT_SOFTWARE, "%s", err);
    rc = aimx__spool_prepend(&s->spool, c->spool_dir, header, strlen(header));
    free(header);
    if (rc != 0)
        return aimx__fail(s->cli, rc, "%s", s->spool.message);
    s->signed_msg = 1;
    aimx__info("signed with DKIM: d=%s, s=%s, %zu header fields", c->domain,
               c->dkim_selector, n);
    return 0;
}

/* The message as one JSON string: text when it is UTF-8, base64 when it
 * holds other octets (a raw message may), so any message fits. */
static void
json_message(FILE *out, aimx_msg *m, int utf8)
{
    static const char hex[] = "0123456789abcdef";
    /* A multiple of 3, so base64 pieces join without padding. */
    unsigned char in[49152];
    char *esc = malloc(sizeof in * 6 + 8);
    size_t have = 0;

    if (esc == NULL)
        return;
    for (;;) {
        int64_t n = aimx__msg_read(m, in + have, sizeof in - have);
        if (n <= 0 && have == 0)
            break;
        if (n > 0)
            have += (size_t)n;
        if (!utf8) {
            size_t whole = n <= 0 ? have : have - have % 3;
            int o = EVP_EncodeBlock((unsigned char *)esc, in, (int)whole);
            fwrite(esc, 1, (size_t)o, out);
            memmove(in, in + whole, have - whole);
            have -= whole;
            if (n <= 0)
                break;
            continue;
        }
        size_t o = 0;
        for (size_t i = 0; i < have; i++) {
            unsigned char c = in[i];
            if (c == '"' || c == '\\') {
                esc[o++] = '\\';
                esc[o++] = (char)c;
            } else if (c == '\r') {
                esc[o++] = '\\';
                esc[o++] = 'r';
            } else if (c == '\n') {
                esc[o++] = '\\';
                esc[o++] = 'n';
            } else if (c == '\t') {
                esc[o++] = '\\';
                esc[o++] = 't';
            } else if (c < 0x20 || c == 0x7f) {
                memcpy(esc + o, "\\u00", 4);
                esc[o + 4] = hex[c >> 4];
                esc[o + 5] = hex[c & 15];
                o += 6;
            } else {
                esc[o++] = (char)c;
            }
        }
        fwrite(esc, 1, o, out);
        have = 0;
        if (n <= 0)
            break;
    }
    free(esc);
}

static int
print_dry_run(struct send *s)
{
    aimx_msg m;
    uint64_t size = s->spool.size;
    int eightbit = s->spool.eightbit;
    int smtputf8 = s->utf8_envelope || s->spool.header_8bit;

    aimx__msg_init(&m, s->spool.fd, size);
    if (s->cli->json) {
        aimx_json j;
        aimx__json_init(&j, stdout);
        aimx__json_object_begin(&j, NULL);
        aimx__json_int(&j, "schema", AIMX_JSON_SCHEMA);
        aimx__json_string(&j, "status", "dry_run");
        aimx__json_object_begin(&j, "envelope");
        aimx__json_string(&j, "from", s->sender);
        aimx__json_array_begin(&j, "recipients");
        for (size_t i = 0; i < s->rcpts.n; i++)
            aimx__json_string(&j, NULL, s->rcpts.v[i].addr);
        aimx__json_array_end(&j);
        aimx__json_int(&j, "size", (int64_t)size);
        aimx__json_bool(&j, "8bit", eightbit);
        aimx__json_bool(&j, "smtputf8", smtputf8);
        aimx__json_bool(&j, "utf8_addresses", s->utf8_envelope);
        aimx__json_object_end(&j);
        aimx__json_object_begin(&j, "dkim");
        aimx__json_bool(&j, "signed", s->signed_msg);
        aimx__json_string(&j, "domain",
                          s->signed_msg ? s->config.domain : NULL);
        aimx__json_string(&j, "selector",
                          s->signed_msg ? s->config.dkim_selector : NULL);
        if (s->signed_msg && s->aligned >= 0)
            aimx__json_bool(&j, "aligned", s->aligned);
        else
            aimx__json_null(&j, "aligned");
        aimx__json_object_end(&j);
        aimx__json_string(&j, "message_encoding",
                          s->spool.utf8 ? "utf-8" : "base64");
        /* The message streams straight from the spool into the string. */
        fputs(",\"message\":\"", stdout);
        json_message(stdout, &m, s->spool.utf8);
        fputc('"', stdout);
        aimx__json_object_end(&j);
        aimx__json_finish(&j);
    } else {
        char *buf = malloc(IO_CHUNK);
        int64_t n;
        if (buf == NULL)
            return aimx__fail(s->cli, AIMX_EXIT_SOFTWARE, "out of memory");
        while ((n = aimx__msg_read(&m, buf, IO_CHUNK)) > 0)
            fwrite(buf, 1, (size_t)n, stdout);
        free(buf);
        fflush(stdout);
        if (n < 0)
            return aimx__fail(s->cli, AIMX_EXIT_SOFTWARE,
                              "cannot read the spool file back");
        aimx__notice("dry run, nothing was sent: MAIL FROM:<%s> SIZE=%llu%s%s",
                     s->sender, (unsigned long long)size,
                     eightbit ? " BODY=8BITMIME" : "",
                     smtputf8 ? " SMTPUTF8" : "");
        for (size_t i = 0; i < s->rcpts.n; i++)
            aimx__notice("dry run: RCPT TO:<%s>", s->rcpts.v[i].addr);
    }
    if (ferror(stdout))
        return aimx__fail(s->cli, AIMX_EXIT_SOFTWARE,
                          "cannot write the message to standard output");
    return 0;
}

static void
cleanup(struct send *s)
{
    aimx_mailbox_list *lists[] = {&s->from,     &s->to,     &s->cc,   &s->bcc,
                                  &s->reply_to, &s->env_to, &s->rcpts};
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++)
        aimx__mailbox_list_free(lists[l]);
    for (size_t i = 0; s->attachments != NULL && i < s->attach_count; i++)
        if (s->attachments[i].fd >= 0)
            close(s->attachments[i].fd);
    free(s->attachments);
    if (s->body_owned && s->body_fd >= 0)
        close(s->body_fd);
    if (s->raw_fd > STDIN_FILENO)
        close(s->raw_fd);
    free(s->headers);
    free(s->attach);
    free(s->refs);
    aimx__buf_free(&s->in_reply_to);
    aimx__buf_free(&s->references);
    free(s->sender);
    EVP_PKEY_free(s->key);
    if (s->have_spool)
        aimx__spool_close(&s->spool);
    if (s->have_config)
        aimx__config_free(&s->config);
}

/* The signed message, out to every recipient's MX. */
static int
deliver(struct send *s)
{
    aimx_send_job job;
    const char **rcpts = calloc(s->rcpts.n ? s->rcpts.n : 1, sizeof *rcpts);
    const char *msgid = s->message_id[0]
                            ? s->message_id
                            : aimx__spool_value(&s->spool, AIMX_F_MESSAGE_ID);
    int rc;

    if (rcpts == NULL)
        return aimx__fail(s->cli, AIMX_EXIT_SOFTWARE, "out of memory");
    for (size_t i = 0; i < s->rcpts.n; i++)
        rcpts[i] = s->rcpts.v[i].addr;
    while (msgid != NULL && (*msgid == ' ' || *msgid == '\t'))
        msgid++;
    memset(&job, 0, sizeof job);
    job.cli = s->cli;
    job.config = &s->config;
    job.sender = s->sender;
    job.rcpts = rcpts;
    job.rcpt_count = s->rcpts.n;
    job.spool_fd = s->spool.fd;
    job.size = s->spool.size;
    job.env_flags =
        (s->spool.eightbit ? AIMX_ENV_8BIT : 0) |
        (s->utf8_envelope || s->spool.header_8bit ? AIMX_ENV_SMTPUTF8 : 0);
    job.message_id = msgid;
    /* --deadline bounds the whole send, from when the command began. */
    job.deadline_us = s->deadline_us ? s->start_us + s->deadline_us : 0;
    rc = aimx__send_deliver(&job);
    free(rcpts);
    return rc;
}

int
aimx__cmd_send(const aimx_cli *cli)
{
    struct send s;
    aimx_compose c;
    char err[1024];
    unsigned flags = AIMX_SPOOL_DROP_BCC;
    int rc;

    memset(&s, 0, sizeof s);
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s.start_us =
            (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    }
    memset(&c, 0, sizeof c);
    s.cli = cli;
    s.body_fd = -1;
    s.raw_fd = -1;
    s.aligned = -1;
    if (cli->arg_count > 0) {
        rc = aimx__fail(cli, AIMX_EXIT_USAGE,
                        "'aimx send' takes no operands (got '%s'): the "
                        "message comes from --body, --body-file, --raw or "
                        "standard input",
                        cli->args[0]);
        goto out;
    }
    if ((rc = collect_options(&s)) != 0)
        goto out;
    if (s.raw != NULL) {
        const char *compose_only = s.subject           ? "--subject"
                                   : s.cc.n            ? "--cc"
                                   : s.bcc.n           ? "--bcc"
                                   : s.reply_to.n      ? "--reply-to"
                                   : s.in_reply_to_opt ? "--in-reply-to"
                                   : s.ref_count       ? "--references"
                                   : s.message_id_opt  ? "--message-id"
                                   : s.header_count    ? "--header"
                                   : s.attach_count    ? "--attach"
                                   : s.body            ? "--body"
                                   : s.body_file       ? "--body-file"
                                                       : NULL;
        if (compose_only != NULL) {
            rc = aimx__fail(cli, AIMX_EXIT_USAGE,
                            "%s composes a message; it cannot be used with "
                            "--raw, which sends one as it is",
                            compose_only);
            goto out;
        }
        /* --to holds envelope recipients only. */
        s.env_to = s.to;
        memset(&s.to, 0, sizeof s.to);
        if (s.env_to.n == 0 && !s.extract) {
            rc = aimx__fail(cli, AIMX_EXIT_USAGE,
                            "'aimx send --raw' needs a recipient: --to ADDR, "
                            "or -t to take them from the message");
            goto out;
        }
    } else if ((rc = check_compose(&s)) != 0) {
        goto out;
    }
    if ((rc = aimx__cli_load_config(cli, &s.config)) != 0)
        goto out;
    s.have_config = 1;

    /* Every input is opened before anything is read, so a typo in the
     * last --attach does not cost reading a large body first. */
    if (s.raw != NULL) {
        if (strcmp(s.raw, "-") == 0)
            s.raw_fd = STDIN_FILENO;
        else if ((rc = open_input(&s, s.raw, &s.raw_fd)) != 0)
            goto out;
    }
    s.attachments = calloc(s.attach_count + 1, sizeof *s.attachments);
    if (s.attachments == NULL) {
        rc = aimx__fail(cli, AIMX_EXIT_SOFTWARE, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < s.attach_count; i++)
        s.attachments[i].fd = -1;
    for (size_t i = 0; i < s.attach_count; i++) {
        const char *slash = strrchr(s.attach[i], '/');
        s.attachments[i].path = s.attach[i];
        s.attachments[i].name = slash ? slash + 1 : s.attach[i];
        if ((rc = open_input(&s, s.attach[i], &s.attachments[i].fd)) != 0)
            goto out;
        if (s.attachments[i].name[0] == '\0') {
            rc = aimx__fail(cli, AIMX_EXIT_USAGE, "--attach '%s' names no file",
                            s.attach[i]);
            goto out;
        }
    }
    if (s.config.dkim && aimx__dkim_load_key(s.config.dkim_key_file, &s.key,
                                             err, sizeof err) != 0) {
        rc = aimx__fail(cli, AIMX_EXIT_CONFIG, "%s", err);
        goto out;
    }

    if (s.config.dkim)
        flags |= AIMX_SPOOL_BODY_HASH;
    if (s.extract)
        flags |= AIMX_SPOOL_COLLECT_RCPT;
    if (s.raw == NULL) {
        char msgid[1024];
        if ((rc = prepare_body(&s, &c)) != 0)
            goto out;
        if (s.message_id_opt == NULL) {
            aimx__msgid_generate(s.config.domain, msgid, sizeof msgid);
            snprintf(s.message_id, sizeof s.message_id, "%s", msgid);
        }
        c.from = &s.from.v[0];
        c.to = &s.to;
        c.cc = &s.cc;
        c.reply_to = &s.reply_to;
        c.subject = s.subject;
        c.message_id = s.message_id;
        c.in_reply_to = s.in_reply_to.len ? s.in_reply_to.p : NULL;
        c.references = s.references.len ? s.references.p : NULL;
        c.headers = s.headers;
        c.header_count = s.header_count;
        c.date = time(NULL);
        c.attachments = s.attachments;
        c.attachment_count = s.attach_count;
    }
    rc = aimx__spool_open(&s.spool, s.config.spool_dir, flags);
    s.have_spool = 1;
    if (rc != 0) {
        rc = aimx__fail(cli, rc, "%s", s.spool.message);
        goto out;
    }
    if (s.raw == NULL) {
        rc = aimx__compose_write(&c, aimx__spool_sink, &s.spool, err,
                                 sizeof err);
        if (rc != 0 && s.spool.error == 0) {
            rc = aimx__fail(cli, rc, "%s", err);
            goto out;
        }
    } else if ((rc = spool_raw(&s)) != 0) {
        goto out;
    }
    if ((rc = aimx__spool_finish(&s.spool)) != 0) {
        const char *what = s.raw == NULL             ? "the composed message"
                           : strcmp(s.raw, "-") == 0 ? "standard input"
                                                     : s.raw;
        rc = aimx__fail(cli, rc, "%s: %s", what, s.spool.message);
        goto out;
    }
    if ((rc = envelope(&s)) != 0 || (rc = sign(&s)) != 0)
        goto out;
    rc = s.dry_run ? print_dry_run(&s) : deliver(&s);
out:
    cleanup(&s);
    return rc;
}
