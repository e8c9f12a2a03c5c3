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
#include <stdint.h>
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
    const char *connections;    /* overrides storage.connections */
    const char *retry_deadline; /* overrides storage.retry_deadline */
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
/* Loads --config, or the defaults when none was given, then applies the global options
 * that override config keys (--connections, --retry-deadline). */
int cli_load_config(const cli_globals *globals, struct nova_config **out);
/* --repo, then $NOVA_REPOSITORY, then the config's storage.local_path, then the config's
 * cloud target ("s3:", "azure:" or "gcs:", completed from the config); NULL if none. */
const char *cli_repo_location(const cli_globals *globals, const struct nova_config *config);
/* --password-file, then $NOVA_PASSWORD, then a prompt on a terminal (when allowed).
 * Returns 0 with the passphrase in out, 1 when none is available, -1 on error (printed). */
int cli_get_password(const cli_globals *globals, char *out, size_t size, int allow_prompt);

struct nova_repository;
/* Loads the config, resolves the location and passphrase and opens the repository.
 * On failure prints the error and returns the exit code; NOVA_EXIT_OK on success.
 * Release both with cli_close_repository. */
int cli_open_repository(const cli_globals *globals, struct nova_config **config,
                        struct nova_repository **repo);
void cli_close_repository(struct nova_config *config, struct nova_repository *repo);

/* Progress on a terminal: a one-line bar on stderr, redrawn at most 10 times a second;
 * silent when stderr is not a terminal, or with --quiet or --json. Use cli_progress_cb
 * as a nova_progress_cb with a cli_progress as payload; call cli_progress_done at the end. */
typedef struct cli_progress {
    bool enabled;
    double last_draw;
    int width; /* characters drawn last time, to clear the line */
} cli_progress;
void cli_progress_init(cli_progress *p, const cli_globals *globals);
struct nova_progress;
int cli_progress_cb(const struct nova_progress *progress, void *payload);
void cli_progress_done(cli_progress *p);
/* Formats a byte count as "12.3 MiB" into out. */
const char *cli_format_bytes(double bytes, char *out, size_t size);

/* Local time "2026-11-27 10:00:00" of ns since the epoch. */
void cli_format_time(int64_t ns, char *out, size_t size);
struct nova_backup_info;
struct json_t;
/* One backup as a JSON object: backup_id, strategy, parent_backup_id, status, started_at,
 * finished_at, duration_seconds, host, username, tags, paths, files_new, files_changed,
 * files_unchanged, bytes_read, original_size, compressed_size, bytes_added, errors. */
struct json_t *cli_backup_info_json(const struct nova_backup_info *info);

/* Reads a new passphrase from the terminal, twice (cmd_init.c). Without a terminal, says
 * "no <what> given" with the hint. Returns NOVA_EXIT_OK, or an exit code after printing. */
int cli_prompt_new_passphrase(const char *what, const char *hint, char *out, size_t size);

/* Backup filters from the command line (cmd_catalog.c): --tag KEY=VALUE and --path P (the
 * path made absolute and lexically clean, as backups record theirs). cli_filter_free frees
 * what the setters allocated. cli_absolute_path returns a malloc'd clean absolute path. */
struct nova_backup_filter;
int cli_filter_add_tag(struct nova_backup_filter *filter, const char *text);
int cli_filter_set_path(struct nova_backup_filter *filter, const char *path);
void cli_filter_free(struct nova_backup_filter *filter);
char *cli_absolute_path(const char *path);

/* Commands, one file each (cmd_*.c); usage is the full --help text. */
int cli_cmd_init(const cli_globals *globals, int argc, char **argv);
extern const char cli_init_usage[];
int cli_cmd_key(const cli_globals *globals, int argc, char **argv);
extern const char cli_key_usage[];
int cli_cmd_backup(const cli_globals *globals, int argc, char **argv);
extern const char cli_backup_usage[];
int cli_cmd_list(const cli_globals *globals, int argc, char **argv);
extern const char cli_list_usage[];
int cli_cmd_show(const cli_globals *globals, int argc, char **argv);
extern const char cli_show_usage[];
int cli_cmd_ls(const cli_globals *globals, int argc, char **argv);
extern const char cli_ls_usage[];
int cli_cmd_diff(const cli_globals *globals, int argc, char **argv);
extern const char cli_diff_usage[];
int cli_cmd_restore(const cli_globals *globals, int argc, char **argv);
extern const char cli_restore_usage[];
int cli_cmd_delete(const cli_globals *globals, int argc, char **argv);
extern const char cli_delete_usage[];
int cli_cmd_cleanup(const cli_globals *globals, int argc, char **argv);
extern const char cli_cleanup_usage[];
int cli_cmd_forget(const cli_globals *globals, int argc, char **argv);
extern const char cli_forget_usage[];
int cli_cmd_prune(const cli_globals *globals, int argc, char **argv);
extern const char cli_prune_usage[];
int cli_cmd_copy(const cli_globals *globals, int argc, char **argv);
extern const char cli_copy_usage[];
int cli_cmd_replicas(const cli_globals *globals, int argc, char **argv);
extern const char cli_replicas_usage[];
int cli_cmd_unlock(const cli_globals *globals, int argc, char **argv);
extern const char cli_unlock_usage[];
int cli_cmd_check(const cli_globals *globals, int argc, char **argv);
extern const char cli_check_usage[];
int cli_cmd_selftest(const cli_globals *globals, int argc, char **argv);
extern const char cli_selftest_usage[];

#endif
