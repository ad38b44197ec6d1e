/* SPDX-License-Identifier: MIT */
/*
 * aimx dkim-keygen: a new RSA key pair for DKIM, written where the dkim
 * group says, and the TXT record that publishes it.  The private key is
 * never readable by anyone else, not even for an instant: its file is
 * created with mode 0600 under a temporary name and renamed into place.
 * No plugin is loaded.
 */
#include "cli.h"
#include "exitcodes.h"
#include "json.h"
#include "log.h"
#include "setup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIN_BITS     1024 /* RFC 8301: verifiers ignore smaller keys */
#define MAX_BITS     4096
#define DEFAULT_BITS 2048

enum keygen_opt { OPT_SELECTOR = 300, OPT_BITS, OPT_FORCE };

const struct option aimx__keygen_options[] = {
    {"selector", required_argument, NULL, OPT_SELECTOR},
    {"bits", required_argument, NULL, OPT_BITS},
    {"force", no_argument, NULL, OPT_FORCE},
    {NULL, 0, NULL, 0},
};

/* A file being written: its temporary name until it is renamed. */
struct pending {
    char path[PATH_MAX];
    char tmp[PATH_MAX + 32];
    int have_tmp;
};

static int fail_errno(const aimx_cli *cli, int err, const char *what,
                      const char *path);
static void dir_of(const char *path, char *dir, size_t len);
static int make_dirs(const char *dir, int *err_out, char *failed,
                     size_t failed_len);
static int write_tmp(struct pending *p, const void *data, size_t len,
                     mode_t mode, int *err_out);
static int install(struct pending *p, int force, int *err_out);
static void sync_dir(const char *path);
static char *pem_of(EVP_PKEY *key, int private_part, size_t *len);
static void print_human(const char *priv, const char *pub, int bits,
                        const char *name, const char *quoted,
                        const aimx_config *c, const char *selector);
static void print_json(const char *priv, const char *pub, int bits,
                       const char *selector, const char *domain,
                       const char *name, const char *quoted);

/* Permission problems (77) and every other failure to create (73) get
 * their own exit code and what to do. */
static int
fail_errno(const aimx_cli *cli, int err, const char *what, const char *path)
{
    if (err == EACCES || err == EPERM)
        return aimx__fail(cli, AIMX_EXIT_NOPERM,
                          "cannot %s %s: %s: run aimx dkim-keygen as a user "
                          "who may write there (root, or the directory's "
                          "owner), or set key_file and public_key_file in "
                          "the dkim group to a directory you can write",
                          what, path, strerror(err));
    return aimx__fail(cli, AIMX_EXIT_CANTCREAT,
                      "cannot %s %s: %s: check that the directory exists "
                      "(or can be made), is on a writable file system with "
                      "free space, and that no other file is in the way",
                      what, path, strerror(err));
}

static void
dir_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        snprintf(dir, len, ".");
    else if (slash == path)
        snprintf(dir, len, "/");
    else
        snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* mkdir -p, 0755: the public key in it is for anyone to read. */
static int
make_dirs(const char *dir, int *err_out, char *failed, size_t failed_len)
{
    char buf[PATH_MAX];
    size_t l = strlen(dir);

    if (l >= sizeof buf) {
        *err_out = ENAMETOOLONG;
        snprintf(failed, failed_len, "%s", dir);
        return -1;
    }
    memcpy(buf, dir, l + 1);
    for (size_t i = 1; i <= l; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            *err_out = errno;
            snprintf(failed, failed_len, "%s", buf);
            return -1;
        }
        buf[i] = saved;
    }
    return 0;
}

/* Creates "<dir>/.<name>.XXXXXX" with O_EXCL and mode 0600 from the first
 * byte, writes data, sets mode and syncs. */
static int
write_tmp(struct pending *p, const void *data, size_t len, mode_t mode,
          int *err_out)
{
    const char *slash = strrchr(p->path, '/');
    int dl = slash ? (int)(slash - p->path) : 0;
    const char *base = slash ? slash + 1 : p->path;
    int fd = -1;

    for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = (uint32_t)getpid() * 2654435761u + (uint32_t)attempt;
        int n = snprintf(p->tmp, sizeof p->tmp, "%.*s%s.%s.%08x", dl, p->path,
                         slash ? "/" : "", base, (unsigned)r);
        if (n < 0 || (size_t)n >= sizeof p->tmp) {
            *err_out = ENAMETOOLONG;
            return -1;
        }
        fd = open(p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  0600);
        if (fd < 0 && errno != EEXIST) {
            *err_out = errno;
            return -1;
        }
    }
    if (fd < 0) {
        *err_out = EEXIST;
        return -1;
    }
    p->have_tmp = 1;
    /* fchmod, not the umask, decides: exactly 0600 or 0644. */
    if (fchmod(fd, mode) != 0)
        goto fail;
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, (const char *)data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        off += (size_t)n;
    }
    if (fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    return 0;
fail:
    *err_out = errno ? errno : EIO;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* The rename that makes the file appear whole.  Without --force an
 * existing file stays: RENAME_NOREPLACE, or link() where the file system
 * lacks it. */
static int
install(struct pending *p, int force, int *err_out)
{
    if (force) {
        if (rename(p->tmp, p->path) != 0) {
            *err_out = errno;
            return -1;
        }
        p->have_tmp = 0;
        return 0;
    }
    if (renameat2(AT_FDCWD, p->tmp, AT_FDCWD, p->path, RENAME_NOREPLACE) == 0) {
        p->have_tmp = 0;
        return 0;
    }
    if (errno != EINVAL && errno != ENOSYS) {
        *err_out = errno;
        return -1;
    }
    if (link(p->tmp, p->path) != 0) {
        *err_out = errno;
        return -1;
    }
    unlink(p->tmp);
    p->have_tmp = 0;
    return 0;
}

/* The rename survives a crash once the directory is on disk too. */
static void
sync_dir(const char *path)
{
    char dir[PATH_MAX];
    int fd;

    dir_of(path, dir, sizeof dir);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static char *
pem_of(EVP_PKEY *key, int private_part, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;
    int ok;

    if (b == NULL)
        return NULL;
    /* PKCS#8 "BEGIN PRIVATE KEY" and SPKI "BEGIN PUBLIC KEY": what
     * OpenSSL 3 writes, and what aimx send and dkimpy read. */
    ok = private_part
             ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
             : PEM_write_bio_PUBKEY(b, key);
    n = BIO_get_mem_data(b, &data);
    if (ok && n > 0 && (out = malloc((size_t)n + 1)) != NULL) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
        *len = (size_t)n;
    }
    BIO_free(b);
    return out;
}

static void
print_human(const char *priv, const char *pub, int bits, const char *name,
            const char *quoted, const aimx_config *c, const char *selector)
{
    printf("Generated a %d-bit RSA key pair for DKIM:\n"
           "  private key  %s (mode 0600: keep it secret)\n"
           "  public key   %s (mode 0644)\n"
           "\n"
           "Publish this TXT record (the strings are joined; none is longer "
           "than 255 octets):\n"
           "  name   %s.\n"
           "  value  %s\n"
           "\n",
           bits, priv, pub, name, quoted);
    if (!c->dkim) {
        printf("The configuration has no dkim group, so aimx does not sign "
               "yet.  Add:\n"
               "  dkim: { selector = \"%s\"; key_file = \"%s\";\n"
               "          public_key_file = \"%s\"; };\n"
               "\n",
               selector, priv, pub);
    } else if (c->dkim_selector != NULL &&
               strcmp(c->dkim_selector, selector) != 0) {
        printf("aimx signs with the configured selector \"%s\": set "
               "selector = \"%s\" in the dkim group once the record is "
               "published.\n\n",
               c->dkim_selector, selector);
    }
    printf("Until the record is published, receivers cannot verify mail "
           "signed with this key.\nThen check it: aimx setup %s --verify\n",
           c->domain);
}

static void
print_json(const char *priv, const char *pub, int bits, const char *selector,
           const char *domain, const char *name, const char *quoted)
{
    aimx_json j;

    aimx__json_init(&j, stdout);
    aimx__json_object_begin(&j, NULL);
    aimx__json_int(&j, "schema", AIMX_JSON_SCHEMA);
    aimx__json_string(&j, "private_key", priv);
    aimx__json_string(&j, "public_key", pub);
    aimx__json_int(&j, "bits", bits);
    aimx__json_string(&j, "selector", selector);
    aimx__json_string(&j, "domain", domain);
    aimx__json_object_begin(&j, "record");
    aimx__json_string(&j, "type", "TXT");
    aimx__json_string(&j, "name", name);
    aimx__json_string(&j, "value", quoted);
    aimx__json_object_end(&j);
    aimx__json_object_end(&j);
    aimx__json_finish(&j);
}

int
aimx__cmd_keygen(const aimx_cli *cli)
{
    const char *selector = NULL;
    long bits = DEFAULT_BITS;
    int force = 0, rc, err = 0;
    aimx_config c;
    char def_priv[PATH_MAX], def_pub[PATH_MAX], dir[PATH_MAX];
    char failed[PATH_MAX], name[512], why[256];
    struct pending files[2];
    EVP_PKEY *key = NULL;
    char *pem[2] = {NULL, NULL}, *txt = NULL, *quoted = NULL;
    size_t pem_len[2] = {0, 0};
    struct stat st;

    for (int i = 0; i < cli->opt_count; i++) {
        const char *arg = cli->opts[i].arg;
        char *end;
        switch (cli->opts[i].id) {
        case OPT_SELECTOR:
            if (!aimx__valid_hostname(arg) || strlen(arg) > 63)
                return aimx__fail(cli, AIMX_EXIT_USAGE,
                                  "--selector '%s' is not a valid selector "
                                  "(letters, digits and '-' in "
                                  "dot-separated labels)",
                                  arg);
            selector = arg;
            break;
        case OPT_BITS:
            errno = 0;
            bits = strtol(arg, &end, 10);
            if (errno != 0 || end == arg || *end != '\0' || bits < MIN_BITS ||
                bits > MAX_BITS)
                return aimx__fail(cli, AIMX_EXIT_USAGE,
                                  "--bits '%s' must be a number from %d to "
                                  "%d (2048 is the usual choice; receivers "
                                  "ignore keys under 1024 bits)",
                                  arg, MIN_BITS, MAX_BITS);
            break;
        case OPT_FORCE:
            force = 1;
            break;
        default:
            break;
        }
    }
    if (cli->arg_count != 0)
        return aimx__fail(cli, AIMX_EXIT_USAGE,
                          "'aimx dkim-keygen' takes no operand, not '%s' "
                          "(the selector goes with --selector)",
                          cli->args[0]);
    rc = aimx__cli_load_config(cli, &c);
    if (rc != 0)
        return rc;

    if (selector == NULL)
        selector =
            c.dkim_selector ? c.dkim_selector : AIMX_DEFAULT_DKIM_SELECTOR;
    aimx__dkim_default_paths(def_priv, sizeof def_priv, def_pub,
                             sizeof def_pub);
    memset(files, 0, sizeof files);
    snprintf(files[0].path, sizeof files[0].path, "%s",
             c.dkim_key_file ? c.dkim_key_file : def_priv);
    snprintf(files[1].path, sizeof files[1].path, "%s",
             c.dkim_public_key_file ? c.dkim_public_key_file : def_pub);
    if (strcmp(files[0].path, files[1].path) == 0) {
        rc = aimx__fail(cli, AIMX_EXIT_CONFIG,
                        "key_file and public_key_file in the dkim group both "
                        "name %s: give the public key its own file",
                        files[0].path);
        goto out;
    }
    /* Refuse before spending time on a key that would not be written. */
    for (int i = 0; i < 2 && !force; i++) {
        if (lstat(files[i].path, &st) == 0) {
            rc = aimx__fail(cli, AIMX_EXIT_CANTCREAT,
                            "%s already exists: aimx dkim-keygen does not "
                            "replace a key unless --force is given (mail "
                            "signed with the new key fails DKIM until its "
                            "record is published, so publish the new record "
                            "first under another selector: --selector)",
                            files[i].path);
            goto out;
        }
    }
    for (int i = 0; i < 2; i++) {
        dir_of(files[i].path, dir, sizeof dir);
        if (make_dirs(dir, &err, failed, sizeof failed) != 0) {
            rc = fail_errno(cli, err, "create the directory", failed);
            goto out;
        }
    }

    key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    if (key == NULL) {
        unsigned long e = ERR_get_error();
        ERR_clear_error();
        rc = aimx__fail(cli, AIMX_EXIT_SOFTWARE,
                        "OpenSSL could not generate an RSA key: %s",
                        e ? ERR_reason_error_string(e) : "unknown error");
        goto out;
    }
    pem[0] = pem_of(key, 1, &pem_len[0]);
    pem[1] = pem_of(key, 0, &pem_len[1]);
    txt = aimx__dkim_txt_value(key, why, sizeof why);
    quoted = txt ? aimx__txt_quote(txt, strlen(txt)) : NULL;
    if (pem[0] == NULL || pem[1] == NULL || quoted == NULL) {
        rc = aimx__fail(cli, AIMX_EXIT_SOFTWARE, "cannot encode the key: %s",
                        txt ? "out of memory" : why);
        goto out;
    }

    /* Both files written whole before either appears. */
    for (int i = 0; i < 2; i++) {
        if (write_tmp(&files[i], pem[i], pem_len[i], i == 0 ? 0600 : 0644,
                      &err) != 0) {
            rc = fail_errno(cli, err, "write", files[i].path);
            goto out;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (install(&files[i], force, &err) != 0) {
            if (err == EEXIST)
                rc = aimx__fail(cli, AIMX_EXIT_CANTCREAT,
                                "%s appeared while the key was generated; "
                                "nothing was replaced (use --force to "
                                "replace it)",
                                files[i].path);
            else
                rc = fail_errno(cli, err, "create", files[i].path);
            /* Never half a pair: a private key that was not there before
             * goes again. */
            if (i == 1 && !force)
                unlink(files[0].path);
            goto out;
        }
        sync_dir(files[i].path);
    }

    snprintf(name, sizeof name, "%s._domainkey.%s", selector, c.domain);
    if (cli->json)
        print_json(files[0].path, files[1].path, (int)bits, selector, c.domain,
                   name, quoted);
    else
        print_human(files[0].path, files[1].path, (int)bits, name, quoted, &c,
                    selector);
    rc = AIMX_EXIT_OK;
out:
    for (int i = 0; i < 2; i++) {
        if (files[i].have_tmp)
            unlink(files[i].tmp);
        if (pem[i] != NULL) {
            OPENSSL_cleanse(pem[i], pem_len[i]);
            free(pem[i]);
        }
    }
    free(txt);
    free(quoted);
    EVP_PKEY_free(key);
    aimx__config_free(&c);
    return rc;
}
