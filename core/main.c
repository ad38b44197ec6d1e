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
        "plugins it names, and lets each check its own group.  Every problem\n"
        "is reported as FILE:LINE: message.\n"
        "\n"
        "Exit: 0 when everything is valid; 78 otherwise.\n",
    },
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

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

    /* --json must be known before any error is printed. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            cli.json = 1;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":c:vqhV", options, NULL)) != -1) {
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
