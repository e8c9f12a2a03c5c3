/*
 * cmd_restore.c -- `nova restore`: a backup by id, "latest", or the latest completed one
 * at or before a point in time, into a target directory.
 *
 * Exit codes: 0 everything restored; 3 some entries could not be restored (each one was
 * printed); 6 a chunk or tree failed verification (nothing wrong was written); 1 no such
 * backup (RECOVERY_001) or another failure; 2 usage. Ctrl-C stops the restore cleanly:
 * files it left incomplete are removed.
 */
#include "cli/cli.h"

#include "nova/backup.h"
#include "nova/config.h"
#include "nova/error.h"


#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char cli_restore_usage[] =
    "usage: nova restore (ID | latest | --at TIME) --target DIR [--include PATH]...\n"
    "\n"
    "Restores a backup under DIR: a backed-up path /a/b appears as DIR/a/b. Every chunk is\n"
    "verified before it is written; nothing is written outside DIR (symlinks in DIR are never\n"
    "followed). Files already in DIR with the same content are left alone; files that differ\n"
    "are replaced atomically. Entries in DIR that the backup does not hold are kept.\n"
    "\n"
    "  ID | latest       the backup: a full id, a unique prefix (4+ hex digits), or the latest\n"
    "  --at TIME         the latest completed backup started at or before TIME:\n"
    "                    \"2026-11-27 10:00\" (local time), \"2026-11-27\", \"2026-11-27T10:00:00Z\",\n"
    "                    or a time ago: 30m, 1h, 2d, 1w, 1h30m\n"
    "  -t, --target DIR  where to restore (created when missing)\n"
    "  --include PATH    restore only PATH (as backed up) and what is below it; repeatable\n"
    "  --sync            flush the target's file system to disk before exiting (syncfs)\n"
    "\n"
    "With --json a result object is printed: backup_id, target, files_restored,\n"
    "files_unchanged, bytes_written, errors, seconds.\n"
    "Without --sync, restored data reaches the disk when the kernel writes it back (large\n"
    "files are written directly).\n"
    "Exit codes: 0 ok, 1 backup not found (RECOVERY_001) or error, 2 usage, 3 some files\n"
    "not restored, 6 damaged data found (INTEGRITY_001/002; nothing wrong was written).\n"
    "\n"
    "Examples:\n"
    "  nova restore latest --target /tmp/restore\n"
    "  nova restore 3f2a9c01 --target /tmp/restore --include /home/me/layers/core.json\n"
    "  nova restore --at \"2026-11-27 10:00\" --target /tmp/restore\n"
    "  nova restore --at 2h --target /tmp/restore\n";

typedef struct restore_args {
    const char *id;
    const char *at;
    const char *target;
    const char **includes;
    size_t include_count;
    bool sync;
} restore_args;

/* The progress bar is drawn from the main thread, failures come from worker threads:
 * one lock keeps their lines apart. */
typedef struct restore_view {
    const cli_globals *globals;
    cli_progress bar;
    pthread_mutex_t lock;
} restore_view;

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int usage_error(const char *message, const char *arg)
{
    fprintf(stderr, "nova restore: %s%s%s\nhint: run 'nova restore --help'\n", message,
            arg ? " " : "", arg ? arg : "");
    return NOVA_EXIT_USAGE;
}

static int parse_args(restore_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof(*a));
    a->includes = calloc((size_t)argc, sizeof(*a->includes));
    if (!a->includes)
        return usage_error("out of memory", NULL);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char **value = NULL;
        if (strcmp(arg, "--target") == 0 || strcmp(arg, "-t") == 0)
            value = &a->target;
        else if (strcmp(arg, "--at") == 0)
            value = &a->at;
        else if (strcmp(arg, "--include") == 0 || strcmp(arg, "-i") == 0)
            value = &a->includes[a->include_count];
        else if (strcmp(arg, "--sync") == 0)
            a->sync = true;
        else if (strcmp(arg, "--") == 0 && i + 1 < argc && !a->id)
            a->id = argv[++i];
        else if (arg[0] == '-' && arg[1] != '\0')
            return usage_error("unknown option", arg);
        else if (a->id)
            return usage_error("more than one backup given:", arg);
        else
            a->id = arg;
        if (value) {
            if (i + 1 >= argc)
                return usage_error("option needs a value:", arg);
            *value = argv[++i];
            if (value == &a->includes[a->include_count])
                a->include_count++;
        }
    }
    if (!a->target)
        return usage_error("--target DIR is required", NULL);
    if (!a->id && !a->at)
        return usage_error("give a backup id, 'latest', or --at TIME", NULL);
    if (a->id && a->at)
        return usage_error("give either a backup id or --at TIME, not both", NULL);
    return NOVA_EXIT_OK;
}

static int on_progress(const nova_progress *progress, void *payload)
{
    restore_view *view = payload;
    pthread_mutex_lock(&view->lock);
    cli_progress_cb(progress, &view->bar);
    pthread_mutex_unlock(&view->lock);
    return interrupted ? 1 : 0;
}

static void on_file_error(const char *path, int code, const char *message, void *payload)
{
    restore_view *view = payload;
    const char *user_code = nova_error_user_code(code);
    (void)path; /* the message names it */
    pthread_mutex_lock(&view->lock);
    cli_progress_done(&view->bar);
    fprintf(stderr, "nova: %s: %s\n", user_code ? user_code : nova_error_name(code), message);
    pthread_mutex_unlock(&view->lock);
}

static void print_not_found_at(const char *at, int64_t when_ns)
{
    char when[64];
    cli_format_time(when_ns, when, sizeof(when));
    fprintf(stderr, "nova: %s: no completed backup at or before %s ('%s') (%s)\nhint: %s\n",
            nova_error_user_code(NOVA_EBACKUP_NOT_FOUND), when, at,
            nova_error_message(NOVA_EBACKUP_NOT_FOUND), nova_error_hint(NOVA_EBACKUP_NOT_FOUND));
}

/* The backup to restore, by id or by time. On failure prints and returns the exit code. */
static int pick_backup(nova_repository *repo, const restore_args *a, nova_backup_info **out)
{
    int rc;

    *out = NULL;
    if (a->at) {
        nova_backup_filter filter = NOVA_BACKUP_FILTER_INIT;
        nova_backup_info **found = NULL;
        struct timespec now;
        size_t count = 0;
        int64_t when;

        clock_gettime(CLOCK_REALTIME, &now);
        rc = nova_point_in_time_parse(&when, a->at, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
        if (rc < 0)
            return cli_report_error(rc);
        filter.status = NOVA_BACKUP_COMPLETED;
        filter.before_ns = when > 0 ? when : 1;
        filter.limit = 1;
        rc = nova_list_backups(repo, &filter, &found, &count);
        if (rc < 0)
            return cli_report_error(rc);
        if (count == 0) {
            nova_backup_info_list_free(found, count);
            print_not_found_at(a->at, when);
            return cli_exit_code(NOVA_EBACKUP_NOT_FOUND);
        }
        *out = found[0];
        free(found);
        return NOVA_EXIT_OK;
    }
    rc = nova_get_backup(repo, a->id, out);
    return rc < 0 ? cli_report_error(rc) : NOVA_EXIT_OK;
}

static void print_result(const cli_globals *g, const nova_backup_info *info, const char *target,
                         const nova_restore_result *r, double seconds)
{
    if (g->json) {
        json_t *o = json_object();
        json_object_set_new(o, "backup_id", json_string(info->backup_id));
        json_object_set_new(o, "target", json_string(target));
        json_object_set_new(o, "files_restored", json_integer((json_int_t)r->files_restored));
        json_object_set_new(o, "files_unchanged", json_integer((json_int_t)r->files_unchanged));
        json_object_set_new(o, "bytes_written", json_integer((json_int_t)r->bytes_written));
        json_object_set_new(o, "errors", json_integer((json_int_t)r->errors));
        json_object_set_new(o, "seconds", json_real(seconds));
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(o);
    } else if (!g->quiet) {
        char when[64], written[32];
        cli_format_time(info->started_ns, when, sizeof(when));
        cli_format_bytes((double)r->bytes_written, written, sizeof(written));
        printf("restored backup %.12s (%s, %s) into %s\n", info->backup_id, when,
               nova_backup_strategy_name(info->strategy), target);
        printf("  %llu files restored, %llu unchanged, %s written, %llu errors, %.2f s\n",
               (unsigned long long)r->files_restored, (unsigned long long)r->files_unchanged,
               written, (unsigned long long)r->errors, seconds);
    }
}

/* --sync: what was restored is on disk when the command ends. */
static int sync_target(const char *target)
{
    int fd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ok = fd >= 0 && syncfs(fd) == 0;
    int err = errno;
    if (fd >= 0)
        close(fd);
    if (!ok) {
        fprintf(stderr, "nova: IO_001: unable to flush '%s' to disk: %s\n", target, strerror(err));
        return NOVA_EXIT_ERROR;
    }
    return NOVA_EXIT_OK;
}

static int exit_for(int rc, const nova_restore_result *r)
{
    const char *user_code;
    if (rc == 0)
        return NOVA_EXIT_OK;
    if (r->errors == 0 || rc == NOVA_ECANCELLED)
        return cli_report_error(rc);
    /* Each failure was printed as it happened; sum up. Entries were restored around the
     * failures: partial, unless data was damaged. */
    user_code = nova_error_user_code(rc);
    fprintf(stderr, "nova: %s: %llu %s could not be restored (%s)\nhint: %s\n",
            user_code ? user_code : nova_error_name(rc), (unsigned long long)r->errors,
            r->errors == 1 ? "entry" : "entries", nova_error_message(rc), nova_error_hint(rc));
    if (cli_exit_code(rc) == NOVA_EXIT_DAMAGE)
        return NOVA_EXIT_DAMAGE;
    return rc == NOVA_ENOSPACE ? NOVA_EXIT_ERROR : NOVA_EXIT_PARTIAL; /* out of space: stopped */
}

int cli_cmd_restore(const cli_globals *globals, int argc, char **argv)
{
    nova_restore_options options = NOVA_RESTORE_OPTIONS_INIT;
    nova_restore_result result;
    nova_backup_info *info = NULL;
    nova_repository *repo = NULL;
    struct nova_config *config = NULL;
    struct sigaction sa, old_sa;
    struct timespec t0, t1;
    restore_view view;
    restore_args args;
    int code, rc, synced = NOVA_EXIT_OK;

    code = parse_args(&args, argc, argv);
    if (code != NOVA_EXIT_OK)
        goto out;
    code = cli_open_repository(globals, &config, &repo);
    if (code != NOVA_EXIT_OK)
        goto out;
    code = pick_backup(repo, &args, &info);
    if (code != NOVA_EXIT_OK)
        goto out;

    memset(&view, 0, sizeof(view));
    view.globals = globals;
    pthread_mutex_init(&view.lock, NULL);
    cli_progress_init(&view.bar, globals);
    options.target = args.target;
    options.includes = args.includes;
    options.include_count = args.include_count;
    options.progress = on_progress;
    options.file_error = on_file_error;
    options.payload = &view;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sa);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = nova_restore(repo, info->backup_id, &options, &result);
    if (args.sync && rc != NOVA_ECANCELLED && (rc == 0 || result.files_restored > 0))
        synced = sync_target(args.target);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sigaction(SIGINT, &old_sa, NULL);
    cli_progress_done(&view.bar);
    pthread_mutex_destroy(&view.lock);

    print_result(globals, info, args.target, &result,
                 (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    code = exit_for(rc, &result);
    if (code == NOVA_EXIT_OK)
        code = synced;
out:
    nova_backup_info_free(info);
    cli_close_repository(config, repo);
    free(args.includes);
    return code;
}
