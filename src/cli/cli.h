/*
 * cli.h -- shared pieces of the nova command (the only code that prints or parses argv).
 *
 * Exit codes (documented in README.md):
 *   0 success                          4 wrong passphrase (KEY_001)
 *   1 error (any other code)           5 repository missing or locked (REPO_*, BACKUP_001)
 *   2 usage error                      6 damage found (INTEGRITY_001, INTEGRITY_002)
 *   3 partial success                  7 invalid configuration (CONFIG_001)
 */
#ifndef NOVA_CLI_CLI_H
#define NOVA_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum nova_exit {
    NOVA_EXIT_OK = 0,
    NOVA_EXIT_ERROR = 1,
    NOVA_EXIT_USAGE = 2,
    NOVA_EXIT_PARTIAL = 3,
    NOVA_EXIT_PASSWORD = 4,
    NOVA_EXIT_REPOSITORY = 5,
    NOVA_EXIT_DAMAGE = 6,
    NOVA_EXIT_CONFIG = 7,
};

typedef struct cli_globals {
    const char *config_path;
    const char *repo;
    const char *password_file;
    bool json;
    bool quiet;
    int verbose;
} cli_globals;

typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *usage; /* full --help text */
    int (*run)(const cli_globals *globals, int argc, char **argv);
} cli_command;

/* Maps a NOVA_E code to the documented exit code. */
int cli_exit_code(int code);
/* Prints "nova: USER_CODE: detail (category)\nhint: ..." for the last error to stderr
 * and returns the exit code for it. */
int cli_report_error(int code);
/* True when argv[i] is -h or --help. */
bool cli_wants_help(int argc, char **argv);

struct nova_config;
/* Loads --config, or the defaults when none was given. */
int cli_load_config(const cli_globals *globals, struct nova_config **out);
/* --repo, then $NOVA_REPOSITORY, then the config's storage.local_path; NULL if none. */
const char *cli_repo_location(const cli_globals *globals, const struct nova_config *config);
/* --password-file, then $NOVA_PASSWORD, then a prompt on a terminal (when allowed).
 * Returns 0 with the passphrase in out, 1 when none is available, -1 on error (printed). */
int cli_get_password(const cli_globals *globals, char *out, size_t size, int allow_prompt);

/* Commands, one file each (cmd_*.c); usage is the full --help text. */
int cli_cmd_selftest(const cli_globals *globals, int argc, char **argv);
extern const char cli_selftest_usage[];

#endif
