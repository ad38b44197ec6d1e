/* SPDX-License-Identifier: MIT */
/* The aimx command line: global options, dispatch, help. */
#include "cli.h"
#include "exitcodes.h"
#include "json.h"
#include "log.h"

#include <aimx/plugin.h>

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AIMX_VERSION
#define AIMX_VERSION "0.0.0"
#endif

struct command {
    const char *name;
    const char *sub; /* second word, or NULL */
    int (*run)(const aimx_cli *cli);
    const char *usage;
    const char *summary;
    const char *help;
};

static const char *command_word(int argc, char **argv);
static void print_main_help(FILE *out);
static void print_command_help(const struct command *cmd, FILE *out);
static int usage_error(const aimx_cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const char common_options[] =
    "Options:\n"
    "  -c, --config FILE  read FILE instead of " AIMX_DEFAULT_CONFIG "\n"
    "                     (the AIMX_CONFIG environment variable does the "
    "same)\n"
    "  -v, --verbose      more detail on stderr; twice for debug output\n"
    "  -q, --quiet        errors only\n"
    "      --json         print exactly one JSON object on stdout\n"
    "  -h, --help         this help\n";

static const struct command commands[] = {
    {
        "plugins",
        NULL,
        aimx__cmd_plugins,
        "aimx plugins [--json]",
        "list the plugins aimx finds and whether each one loads",
        "Lists every *.so in the plugin directories (AIMX_PLUGIN_PATH first,\n"
        "then plugin_dirs, default " AIMX_DEFAULT_PLUGIN_DIR "),\n"
        "loads each one and checks its descriptor.  A plugin is 'ok',\n"
        "'refused' (with the reason) or 'shadowed' by a file of the same name\n"
        "in an earlier directory.  Listing is not a check of the config: use\n"
        "'aimx config check' for that.\n"
        "\n"
        "Exit: 0; 64 on a usage error; 78 when the configuration cannot be\n"
        "read.\n",
    },
    {
        "route",
        NULL,
        aimx__cmd_route,
        "aimx route DOMAIN|ADDRESS [--json]",
        "show where mail for a domain would go, and why",
        "Looks up the domain's MX records through the resolver plugin, then\n"
        "each MX host's A and AAAA records, asks the policy plugin which\n"
        "addresses to use, and prints the plan: the MX lookup's outcome, each\n"
        "MX host in order with its addresses and the policy's verdict, the\n"
        "connect targets, and the domain's outcome.  Nothing is sent.  An\n"
        "internationalised domain is converted to A-labels first.\n"
        "\n"
        "Exit: 0 deliverable; 75 temporary failure; 69 permanent failure;\n"
        "64 usage; 65 not a valid domain or address; 78 configuration.\n",
    },
    {
        "config",
        "check",
        aimx__cmd_config_check,
        "aimx config check [--json]",
        "check the configuration and the plugins it names",
        "Reads the configuration, loads the resolver, policy and transport\n"
        "plugins it names, and lets each check its own group; then checks,\n"
        "as the user running it, that spool_dir can hold the spool file and\n"
        "that the DKIM key_file (if any) is a usable key others cannot read.\n"
        "Every problem is reported as FILE:LINE: message.\n"
        "\n"
        "Exit: 0 when everything is valid; 78 otherwise.\n",
    },
    {
        "send",
        NULL,
        aimx__cmd_send,
        "aimx send --from ADDR --to ADDR... [options] [--dry-run] [--json]\n"
        "       aimx send --raw FILE|- [--from ADDR] [--to ADDR...] [-t] "
        "[--dry-run]",
        "compose or take a message, sign it and deliver it to each MX",
        "Composes a message from the options below, or takes an existing one\n"
        "with --raw, checks it, writes it once into an unnamed spool file in\n"
        "canonical form (CRLF), signs it with DKIM when the dkim group is\n"
        "configured, and delivers it directly to each recipient's MX through\n"
        "the resolver, policy and transport plugins, over IPv4 unless\n"
        "enable_ipv6 = true.  One line per recipient says what happened:\n"
        "delivered, deferred or bounced, and why (docs/delivery.md).\n"
        "\n"
        "Compose:\n"
        "  --from ADDR          the author and envelope sender (required)\n"
        "  --to ADDR            a recipient; repeat it, or give a\n"
        "                       comma-separated list (also --cc, --bcc)\n"
        "  --cc ADDR, --bcc ADDR  Bcc recipients never appear in the message\n"
        "  --reply-to ADDR      where replies should go\n"
        "  --subject TEXT       encoded (RFC 2047) when not ASCII\n"
        "  --in-reply-to ID     the message this one answers\n"
        "  --references ID      the thread; repeatable (default: the\n"
        "                       --in-reply-to ID)\n"
        "  --message-id ID      keep this Message-ID (so a retry can be\n"
        "                       de-duplicated); default: a new one on domain\n"
        "  --header 'Name: value'  another header field; repeatable\n"
        "  --attach FILE        attach a file (base64); repeatable\n"
        "  --body TEXT | --body-file FILE  the text; default: stdin\n"
        "Raw:\n"
        "  --raw FILE|-         send this RFC 5322 message as it is (plus\n"
        "                       the DKIM-Signature); Bcc fields are removed\n"
        "  --from ADDR          envelope sender (default: From's address)\n"
        "  --to ADDR            envelope recipients; repeatable\n"
        "  -t                   also send to the To, Cc and Bcc addresses\n"
        "Both:\n"
        "  --dry-run            do everything but deliver; print the message\n"
        "                       (the envelope goes to stderr; with --json\n"
        "                       both are one object)\n"
        "  --deadline DURATION  bound the whole send (\"30s\"); recipients\n"
        "                       not done by then are deferred\n"
        "\n"
        "SIGINT or SIGTERM ends the send at once: every recipient's state is\n"
        "printed and the exit is 75.\n"
        "\n"
        "Exit: 0 every recipient delivered (or the dry run done); 75 some\n"
        "deferred, none bounced; 69 any bounced; 64 usage; 65 bad address,\n"
        "header or message; 66 an input file cannot be read; 73/75 the spool\n"
        "cannot be written; 78 configuration, DKIM key or a missing plugin.\n",
    },
    {
        "setup",
        NULL,
        aimx__cmd_setup,
        "aimx setup DOMAIN [--ipv4 ADDR] [--ipv6 ADDR] [--outbound-only]\n"
        "       [--verify] [--json]",
        "the DNS records a mail domain needs, and checks of them",
        "Prints the DNS records DOMAIN needs: A, MX, SPF (merged into an\n"
        "existing SPF record), the DKIM key record and DMARC, plus AAAA and\n"
        "ip6: only when the policy plugin sends over IPv6.  The server's\n"
        "addresses come from --ipv4/--ipv6, else the transport's bind_ipv4/\n"
        "bind_ipv6, else this machine's global addresses.\n"
        "\n"
        "  --ipv4 ADDR, --ipv6 ADDR  the server's public address\n"
        "  --outbound-only      leave out A, AAAA and MX (another server\n"
        "                       takes the domain's mail)\n"
        "  --verify             look every record up through the resolver\n"
        "                       plugin: PASS, MISSING, WRONG, LOOKUP FAILED;\n"
        "                       SPF is evaluated as receivers do (RFC 7208)\n"
        "                       for each outbound address; reverse DNS and\n"
        "                       the EHLO name give warnings\n"
        "\n"
        "Exit: 0 (with --verify: every record in place); 1 a record is\n"
        "missing or wrong; 75 a lookup failed; 64 usage; 65 not a domain;\n"
        "78 configuration.\n",
    },
    {
        "verify",
        NULL,
        aimx__cmd_verify,
        "aimx verify [--target HOST[:PORT]] [--json]",
        "check that this host can open outbound SMTP sessions",
        "For each address family the policy uses, the transport's probe\n"
        "connects to the target, reads the greeting, says EHLO and QUIT,\n"
        "and reports reachable, refused, timeout or greeting_refused with\n"
        "timings.  It sends no mail and probes nothing else: DNS records\n"
        "are 'aimx setup DOMAIN --verify'.\n"
        "\n"
        "  --target HOST[:PORT]  the server to probe (also [IPv6]:PORT);\n"
        "                       default: verify_target in aimx.conf.  A\n"
        "                       host name is probed over every family the\n"
        "                       policy uses, an IP address over its own.\n"
        "                       The transport connects to its own port\n"
        "                       (transport-smtp: 'port', default 25): a PORT\n"
        "                       given here must be that port.\n"
        "\n"
        "Exit: 0 every probed family works; 75 otherwise; 64 usage (no\n"
        "target, a family the policy does not use, another port); 78\n"
        "configuration.\n",
    },
    {
        "dkim-keygen",
        NULL,
        aimx__cmd_keygen,
        "aimx dkim-keygen [--selector S] [--bits N] [--force] [--json]",
        "generate the DKIM key pair and print its DNS record",
        "Generates an RSA key pair at the dkim group's key_file (mode 0600,\n"
        "never readable by others, not even briefly) and public_key_file\n"
        "(0644), by default in the dkim directory beside the default\n"
        "configuration, each written whole or not at all, and prints the\n"
        "TXT record <selector>._domainkey.<domain> in strings of at most\n"
        "255 octets.\n"
        "\n"
        "  --selector S         the selector (default: dkim.selector, else\n"
        "                       aimx)\n"
        "  --bits N             key size, 1024 to 4096 (default 2048)\n"
        "  --force              replace existing key files\n"
        "\n"
        "Exit: 0; 73 a key file exists (without --force) or cannot be\n"
        "created; 77 permission denied; 64 usage; 78 configuration.\n",
    },
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

/* Commands with options of their own: main parses them together with the
 * global ones, anywhere on the line, and hands them over in cli.opts. */
static const struct {
    const char *name;
    const struct option *options;
    const char *shortopts;
} command_options[] = {
    {"send", aimx__send_options, AIMX_SEND_SHORTOPTS},
    {"setup", aimx__setup_options, ""},
    {"verify", aimx__verify_options, ""},
    {"dkim-keygen", aimx__keygen_options, ""},
};

/* A root for LeakSanitizer: the commands' options live until exit. */
static aimx_cli_opt *own_opts;

int
aimx__fail(const aimx_cli *cli, int code, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    aimx__err("%s", msg);
    if (cli != NULL && cli->json)
        aimx__json_error(stdout, code, msg);
    return code;
}

int
aimx__fail_diag(const aimx_cli *cli, int code, const aimx_diag *d)
{
    aimx__diag_print(d);
    if (cli != NULL && cli->json) {
        char *joined = aimx__diag_join(d);
        aimx__json_error(stdout, code, joined ? joined : "error");
        free(joined);
    }
    return code;
}

int
aimx__cli_load_config(const aimx_cli *cli, aimx_config *c)
{
    aimx_diag d = {0};
    int rc = aimx__config_load(c, cli->config_path, cli->config_explicit, &d);

    if (rc != 0) {
        aimx__fail_diag(cli, rc, &d);
        aimx__diag_free(&d);
        aimx__config_free(c);
        return rc;
    }
    aimx__diag_free(&d);
    if (c->syslog)
        aimx__log_open_syslog(c->syslog_facility);
    return 0;
}

static void
print_main_help(FILE *out)
{
    fprintf(out,
            "Usage: aimx [OPTIONS] COMMAND [ARGS]\n"
            "\n"
            "aimx delivers mail directly to each recipient's MX, over IPv4\n"
            "unless IPv6 is enabled, through run-time plugins.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        char word[64];
        snprintf(word, sizeof word, "%s%s%s", commands[i].name,
                 commands[i].sub ? " " : "",
                 commands[i].sub ? commands[i].sub : "");
        fprintf(out, "  %-14s %s\n", word, commands[i].summary);
    }
    fprintf(
        out,
        "\n%s"
        "  -V, --version      print the version and exit\n"
        "\n"
        "'aimx COMMAND --help' describes a command.  Exit codes: 0 success,\n"
        "64 usage, 65 bad data, 66 unreadable input, 69 permanent failure,\n"
        "70 internal error, 73 cannot create a file, 75 temporary failure,\n"
        "77 permission denied, 78 configuration (docs/cli.md).\n",
        common_options);
}

static void
print_command_help(const struct command *cmd, FILE *out)
{
    fprintf(out, "Usage: %s\n\n%s\n%s", cmd->usage, cmd->help, common_options);
}

/* The first operand, found before getopt runs so that a command's own
 * options can join the global ones. */
static const char *
command_word(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' || a[1] == '\0')
            return a;
        if (strcmp(a, "--config") == 0) {
            i++;
        } else if (a[1] != '-') {
            /* A cluster like -vc FILE: c takes the rest or the next. */
            const char *c = strchr(a + 1, 'c');
            if (c != NULL && c[1] == '\0')
                i++;
        }
    }
    return NULL;
}

static int
usage_error(const aimx_cli *cli, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return aimx__fail(cli, AIMX_EXIT_USAGE, "%s; see 'aimx --help'", msg);
}

int
main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    aimx_cli cli = {0};
    int verbose = 0, quiet = 0, version = 0, opt;
    const struct command *cmd = NULL;
    int first;
    const char *word = command_word(argc, argv);
    struct option merged[64];
    char shortopts[64] = ":c:vqhV";
    const struct option *own = NULL;
    size_t n_merged = 0;

    /* --json must be known before any error is printed. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            cli.json = 1;

    for (; options[n_merged].name != NULL; n_merged++)
        merged[n_merged] = options[n_merged];
    for (size_t i = 0;
         word != NULL && i < sizeof command_options / sizeof command_options[0];
         i++) {
        if (strcmp(word, command_options[i].name) != 0)
            continue;
        own = command_options[i].options;
        for (size_t k = 0; own[k].name != NULL && n_merged + 1 < 64; k++)
            merged[n_merged++] = own[k];
        strncat(shortopts, command_options[i].shortopts,
                sizeof shortopts - strlen(shortopts) - 1);
        own_opts = calloc((size_t)argc, sizeof *own_opts);
        if (own_opts == NULL)
            return aimx__fail(&cli, AIMX_EXIT_SOFTWARE, "out of memory");
        cli.opts = own_opts;
    }
    memset(&merged[n_merged], 0, sizeof merged[n_merged]);

    opterr = 0;
    while ((opt = getopt_long(argc, argv, shortopts, merged, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cli.config_path = optarg;
            cli.config_explicit = 1;
            break;
        case 'v':
            verbose++;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'J':
            cli.json = 1;
            break;
        case 'h':
            cli.help = 1;
            break;
        case 'V':
            version = 1;
            break;
        case ':':
            return usage_error(&cli, "option '%s' needs a value",
                               argv[optind - 1]);
        default:
            if (opt != '?' && own != NULL) {
                cli.opts[cli.opt_count].id = opt;
                cli.opts[cli.opt_count].arg = optarg;
                cli.opt_count++;
                break;
            }
            if (optopt != 0)
                return usage_error(&cli, "unknown option '-%c'", optopt);
            return usage_error(&cli, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (quiet && verbose)
        return usage_error(&cli, "--quiet and --verbose contradict each other");
    aimx__log_set_threshold(quiet ? 3 : verbose >= 2 ? 7 : verbose ? 6 : 5);

    if (version) {
        if (cli.json) {
            printf("{\"schema\":1,\"version\":\"%s\",\"abi\":\"%d.%d\"}\n",
                   AIMX_VERSION, AIMX_ABI_MAJOR, AIMX_ABI_MINOR);
        } else {
            printf("aimx %s (plugin ABI %d.%d)\n", AIMX_VERSION, AIMX_ABI_MAJOR,
                   AIMX_ABI_MINOR);
        }
        return AIMX_EXIT_OK;
    }
    if (!cli.config_explicit) {
        const char *env = secure_getenv("AIMX_CONFIG");
        if (env != NULL && *env != '\0') {
            cli.config_path = env;
            cli.config_explicit = 1;
        }
    }

    first = optind;
    if (first >= argc) {
        if (cli.help) {
            print_main_help(stdout);
            return AIMX_EXIT_OK;
        }
        print_main_help(stderr);
        return aimx__fail(&cli, AIMX_EXIT_USAGE, "no command given");
    }
    if (strcmp(argv[first], "help") == 0) {
        if (first + 1 >= argc) {
            print_main_help(stdout);
            return AIMX_EXIT_OK;
        }
        first++;
        cli.help = 1;
    }
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(commands[i].name, argv[first]) != 0)
            continue;
        if (commands[i].sub == NULL) {
            cmd = &commands[i];
            break;
        }
        if (first + 1 < argc && strcmp(commands[i].sub, argv[first + 1]) == 0) {
            cmd = &commands[i];
            first++;
            break;
        }
    }
    if (cmd == NULL) {
        int family = 0;
        for (size_t i = 0; i < COMMAND_COUNT; i++)
            family |= strcmp(commands[i].name, argv[first]) == 0;
        if (family && cli.help) {
            for (size_t i = 0; i < COMMAND_COUNT; i++)
                if (strcmp(commands[i].name, argv[first]) == 0)
                    print_command_help(&commands[i], stdout);
            return AIMX_EXIT_OK;
        }
        if (family)
            return usage_error(&cli, "'aimx %s' needs a subcommand%s%s",
                               argv[first], first + 1 < argc ? ", not " : "",
                               first + 1 < argc ? argv[first + 1] : "");
        return usage_error(&cli, "unknown command '%s'", argv[first]);
    }
    if (cli.help) {
        print_command_help(cmd, stdout);
        return AIMX_EXIT_OK;
    }
    cli.args = argv + first + 1;
    cli.arg_count = argc - first - 1;
    return cmd->run(&cli);
}
