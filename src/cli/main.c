/*
 * main.c -- the nova command: global options, command dispatch, help and exit codes.
 * Commands live one per file (cmd_*.c) and use only the library's API.
 */
#include "cli/cli.h"

#include "nova/config.h"
#include "nova/error.h"
#include "nova/log.h"

#include <stdlib.h>
#include <string.h>

#ifndef NOVA_VERSION
#define NOVA_VERSION "0.0.0"
#endif

static const cli_command commands[] = {
    {"init", "create a repository", cli_init_usage, cli_cmd_init},
    {"key", "manage key slots: add, remove, passwd, list", cli_key_usage, cli_cmd_key},
    {"backup", "back up files and directories (full, incremental, differential)", cli_backup_usage, cli_cmd_backup},
    {"list", "list backups", cli_list_usage, cli_cmd_list},
    {"show", "show one backup", cli_show_usage, cli_cmd_show},
    {"ls", "list the files of a backup", cli_ls_usage, cli_cmd_ls},
    {"diff", "compare two backups", cli_diff_usage, cli_cmd_diff},
    {"restore", "restore a backup, or the state at a point in time", cli_restore_usage, cli_cmd_restore},
    {"delete", "delete backups by id", cli_delete_usage, cli_cmd_delete},
    {"cleanup", "delete backups older than the retention period", cli_cleanup_usage, cli_cmd_cleanup},
    {"forget", "delete backups by a keep-policy", cli_forget_usage, cli_cmd_forget},
    {"prune", "remove data no backup references", cli_prune_usage, cli_cmd_prune},
    {"copy", "copy backups and their data to another repository (replica)", cli_copy_usage,
     cli_cmd_copy},
    {"replicas", "show which replicas hold each backup; repair one from another",
     cli_replicas_usage, cli_cmd_replicas},
    {"unlock", "remove stale locks left by killed processes", cli_unlock_usage, cli_cmd_unlock},
    {"check", "verify the repository's structure and, optionally, its data", cli_check_usage, cli_cmd_check},
    {"selftest", "check the primitives and a local repository end to end", cli_selftest_usage, cli_cmd_selftest},
};

static const char global_usage[] =
    "usage: nova [GLOBAL OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Global options:\n"
    "  --config FILE         the JSON configuration (see README.md)\n"
    "  --repo LOCATION       repository location (default: $NOVA_REPOSITORY, then the\n"
    "                        config's storage.local_path)\n"
    "  --password-file FILE  read the passphrase from FILE (default: $NOVA_PASSWORD, then a prompt)\n"
    "  --connections N       requests in flight to the storage (pack uploads of a backup,\n"
    "                        pack downloads of a restore), 1-64 (default: the config's\n"
    "                        storage.connections, else 2 local, 8 cloud)\n"
    "  --retry-deadline D    how long cloud requests are retried after transient failures,\n"
    "                        e.g. 30s, 5m; 0 = no retries (default: storage.retry_deadline, 60s)\n"
    "  --json                print results as JSON for scripts\n"
    "  -q, --quiet           print only errors\n"
    "  -v, --verbose         more log output (repeat for debug)\n"
    "  -h, --help            this help; 'nova COMMAND --help' for a command\n"
    "  --version             print the version\n"
    "\n"
    "Exit codes: 0 ok, 1 error, 2 usage, 3 partial, 4 wrong passphrase,\n"
    "            5 repository missing or locked, 6 damage found, 7 invalid configuration\n";

static void print_usage(FILE *out)
{
    fputs(global_usage, out);
    fputs("\nCommands:\n", out);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int cli_exit_code(int code)
{
    switch (code) {
    case NOVA_OK:
        return NOVA_EXIT_OK;
    case NOVA_EPASSWORD:
        return NOVA_EXIT_PASSWORD;
    case NOVA_ENO_REPO:
    case NOVA_ELOCKED:
    case NOVA_EBACKEND:
    case NOVA_EREFUSED:
        return NOVA_EXIT_REPOSITORY;
    case NOVA_ECHECKSUM:
    case NOVA_ECORRUPT:
        return NOVA_EXIT_DAMAGE;
    case NOVA_ECONFIG:
        return NOVA_EXIT_CONFIG;
    case NOVA_EINVALID:
        return NOVA_EXIT_USAGE;
    default:
        return NOVA_EXIT_ERROR;
    }
}

int cli_report_error(int code)
{
    char line[1024];
    const char *hint = nova_error_hint(code);
    fprintf(stderr, "nova: %s\n", nova_error_format(code, line, sizeof(line)));
    if (hint)
        fprintf(stderr, "hint: %s\n", hint);
    return cli_exit_code(code);
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    return false;
}

/* Checks the values of the global options that override config keys; prints what is
 * wrong. Returns 0 or -1. */
static int check_overrides(const cli_globals *g)
{
    uint64_t seconds = 0;
    if (g->connections) {
        char *end = NULL;
        long n = strtol(g->connections, &end, 10);
        if (end == g->connections || *end || n < 1 || n > NOVA_CONFIG_MAX_CONNECTIONS) {
            fprintf(stderr, "nova: --connections '%s': use a number from 1 to %d\n",
                    g->connections, NOVA_CONFIG_MAX_CONNECTIONS);
            return -1;
        }
    }
    if (g->retry_deadline && (nova_duration_parse(&seconds, g->retry_deadline) < 0 ||
                              seconds > NOVA_CONFIG_MAX_RETRY_DEADLINE)) {
        fprintf(stderr, "nova: --retry-deadline '%s': use a duration up to a day, like 30s, "
                "5m or 0\n", g->retry_deadline);
        return -1;
    }
    return 0;
}

/* Applies one global option at argv[*i] (advancing *i past its value). Returns 1 when
 * it was a global option, 0 when not, -1 on a usage error (printed). */
static int take_global(cli_globals *g, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    const char **value_out = NULL;

    if (strcmp(arg, "--config") == 0)
        value_out = &g->config_path;
    else if (strcmp(arg, "--repo") == 0 || strcmp(arg, "-r") == 0)
        value_out = &g->repo;
    else if (strcmp(arg, "--password-file") == 0)
        value_out = &g->password_file;
    else if (strcmp(arg, "--connections") == 0)
        value_out = &g->connections;
    else if (strcmp(arg, "--retry-deadline") == 0)
        value_out = &g->retry_deadline;
    else if (strcmp(arg, "--json") == 0)
        g->json = true;
    else if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0)
        g->quiet = true;
    else if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0)
        g->verbose++;
    else
        return 0;
    if (value_out) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "nova: option '%s' needs a value\n", arg);
            return -1;
        }
        *value_out = argv[++*i];
    }
    if (value_out == &g->connections || value_out == &g->retry_deadline)
        return check_overrides(g) < 0 ? -1 : 1;
    return 1;
}

/* Consumes the global options before the command; returns the command's index, or -1
 * when nothing more is to be done (exit_code says how it ended). */
static int parse_leading_globals(cli_globals *g, int argc, char **argv, int *exit_code)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        int taken = take_global(g, argc, argv, &i);
        if (taken < 0) {
            *exit_code = NOVA_EXIT_USAGE;
            return -1;
        }
        if (taken)
            continue;
        if (strcmp(argv[i], "--version") == 0) {
            printf("nova %s\n", NOVA_VERSION);
            *exit_code = NOVA_EXIT_OK;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_usage(stdout);
            *exit_code = NOVA_EXIT_OK;
        } else {
            fprintf(stderr, "nova: unknown option '%s'\nhint: run 'nova --help'\n", argv[i]);
            *exit_code = NOVA_EXIT_USAGE;
        }
        return -1;
    }
    return i;
}

/* Global options may also follow the command: take them out of the command's argv
 * (in place), up to a "--" that ends option parsing. Returns the new argc or -1. */
static int take_trailing_globals(cli_globals *g, int argc, char **argv)
{
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc)
                argv[kept++] = argv[i++];
            break;
        }
        int taken = take_global(g, argc, argv, &i);
        if (taken < 0)
            return -1;
        if (!taken)
            argv[kept++] = argv[i];
    }
    argv[kept] = NULL;
    return kept;
}

int main(int argc, char **argv)
{
    cli_globals globals = {0};
    int exit_code = NOVA_EXIT_OK;
    int first = parse_leading_globals(&globals, argc, argv, &exit_code);
    int command_argc;

    if (first < 0)
        return exit_code;
    if (first >= argc) {
        print_usage(stderr);
        return NOVA_EXIT_USAGE;
    }
    command_argc = take_trailing_globals(&globals, argc - first, argv + first);
    if (command_argc < 0)
        return NOVA_EXIT_USAGE;
    nova_log_set_stderr(globals.quiet     ? NOVA_LOG_ERROR
                        : globals.verbose ? (globals.verbose > 1 ? NOVA_LOG_DEBUG : NOVA_LOG_INFO)
                                          : NOVA_LOG_WARN);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[first], commands[i].name) != 0)
            continue;
        if (cli_wants_help(command_argc, argv + first)) {
            fputs(commands[i].usage, stdout);
            return NOVA_EXIT_OK;
        }
        exit_code = commands[i].run(&globals, command_argc, argv + first);
        nova_log_shutdown();
        return exit_code;
    }
    fprintf(stderr, "nova: unknown command '%s'\nhint: run 'nova --help' for the list\n",
            argv[first]);
    return NOVA_EXIT_USAGE;
}
