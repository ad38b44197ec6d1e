/* SPDX-License-Identifier: MIT */
/* What every command gets from the command line, and how it reports. */
#ifndef AIMX_CLI_H
#define AIMX_CLI_H

#include "config.h"
#include "diag.h"

#include <getopt.h>

/* One option of the command's own, as getopt_long() returned it. */
typedef struct aimx_cli_opt {
    int id;          /* the option's val */
    const char *arg; /* its value, or NULL */
} aimx_cli_opt;

typedef struct aimx_cli {
    const char *config_path; /* --config, else AIMX_CONFIG, else NULL */
    int config_explicit;
    int json;
    int help;
    char **args; /* operands after the command word(s) */
    int arg_count;
    aimx_cli_opt *opts; /* the command's own options, in order */
    int opt_count;
} aimx_cli;

/* Prints the error on stderr (and as the JSON error object with --json);
 * returns code. */
int aimx__fail(const aimx_cli *cli, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int aimx__fail_diag(const aimx_cli *cli, int code, const aimx_diag *d);

/* Loads the configuration named on the command line and applies its
 * logging settings.  Returns 0 or the exit code (after reporting). */
int aimx__cli_load_config(const aimx_cli *cli, aimx_config *c);

int aimx__cmd_plugins(const aimx_cli *cli);
int aimx__cmd_config_check(const aimx_cli *cli);
int aimx__cmd_route(const aimx_cli *cli);
int aimx__cmd_send(const aimx_cli *cli);
int aimx__cmd_setup(const aimx_cli *cli);
int aimx__cmd_verify(const aimx_cli *cli);
int aimx__cmd_keygen(const aimx_cli *cli);

/* The options of 'aimx send' (parsed by main with the global ones). */
extern const struct option aimx__send_options[];
#define AIMX_SEND_SHORTOPTS "t"

/* The options of 'aimx setup', 'aimx verify' and 'aimx dkim-keygen'
 * (long options only). */
extern const struct option aimx__setup_options[];
extern const struct option aimx__verify_options[];
extern const struct option aimx__keygen_options[];

#endif
