/*
 * cmd_backup.c -- `nova backup`: back up files and directories into the repository.
 *
 * A thin layer over nova_create_backup: parses the options, shows a progress bar on a
 * terminal, prints each file that could not be backed up on stderr, and ends with a
 * summary (or, with --json, the backup as one JSON object on stdout). Exit code 0 when the
 * backup completed, 3 (partial) when some files could not be read, else the error's code.
 */
#include "cli/cli.h"

#include "nova/backup.h"
#include "nova/error.h"

#include <getopt.h>
#include <jansson.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char cli_backup_usage[] =
    "usage: nova backup [--strategy full|incremental|differential] [--tag KEY=VALUE]...\n"
    "                   [--exclude PATTERN]... [--host NAME] PATH...\n"
    "\n"
    "Backs up each PATH (a file or a directory, with everything below it) as one snapshot.\n"
    "Every snapshot is complete: the strategy only decides which earlier snapshot is used\n"
    "to skip reading files that did not change (same size, mtime, ctime, inode and mode):\n"
    "  --strategy full          read every file (no parent)\n"
    "  --strategy incremental   the newest backup of the same paths and host (default)\n"
    "  --strategy differential  the newest FULL backup of the same paths and host\n"
    "  Without such a backup, an incremental or differential one runs as full.\n"
    "  --tag KEY=VALUE     record a tag (repeatable)\n"
    "  --exclude PATTERN   skip what matches the glob PATTERN, on the full path or on the\n"
    "                      name (repeatable; e.g. '*.tmp', '/home/*/.cache')\n"
    "  --host NAME         record NAME as the host (default: this machine's name)\n"
    "  --json              print the backup as a JSON object\n"
    "\n"
    "Exit codes: 0 completed, 3 partial (some files could not be read: listed on stderr),\n"
    "others as for every command (see nova --help).\n";

typedef struct backup_args {
    nova_backup_options options;
    nova_backup_tag *tags;
    const char **excludes;
    const char **paths;
} backup_args;

typedef struct backup_ui {
    cli_progress progress;
    uint64_t file_errors;
} backup_ui;

static void args_free(backup_args *a)
{
    free(a->tags);
    free(a->excludes);
    free(a->paths);
}

static int add_tag(backup_args *a, char *text)
{
    char *eq = strchr(text, '=');
    nova_backup_tag *tags;

    if (!eq || eq == text) {
        fprintf(stderr, "nova backup: --tag needs KEY=VALUE, not '%s'\n", text);
        return NOVA_EXIT_USAGE;
    }
    tags = realloc(a->tags, (a->options.tag_count + 1) * sizeof(*tags));
    if (!tags)
        return cli_report_error(NOVA_ENOMEM);
    *eq = '\0';
    tags[a->options.tag_count].key = text;
    tags[a->options.tag_count].value = eq + 1;
    a->tags = tags;
    a->options.tags = tags;
    a->options.tag_count++;
    return NOVA_EXIT_OK;
}

static int add_exclude(backup_args *a, const char *pattern)
{
    const char **grown = realloc(a->excludes, (a->options.exclude_count + 1) * sizeof(*grown));
    if (!grown)
        return cli_report_error(NOVA_ENOMEM);
    grown[a->options.exclude_count++] = pattern;
    a->excludes = grown;
    a->options.excludes = grown;
    return NOVA_EXIT_OK;
}

static int parse_args(backup_args *a, int argc, char **argv)
{
    static const struct option options[] = {
        {"strategy", required_argument, NULL, 's'},
        {"tag", required_argument, NULL, 't'},
        {"exclude", required_argument, NULL, 'e'},
        {"host", required_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    const nova_backup_options defaults = NOVA_BACKUP_OPTIONS_INIT;
    int c, rc;

    a->options = defaults;
    a->options.strategy = NOVA_STRATEGY_INCREMENTAL;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:", options, NULL)) != -1) {
        switch (c) {
        case 's':
            if (nova_backup_strategy_parse(optarg, &a->options.strategy) < 0)
                return cli_report_error(NOVA_EINVALID);
            break;
        case 't':
            if ((rc = add_tag(a, optarg)) != NOVA_EXIT_OK)
                return rc;
            break;
        case 'e':
            if ((rc = add_exclude(a, optarg)) != NOVA_EXIT_OK)
                return rc;
            break;
        case 'H':
            a->options.host = optarg;
            break;
        case ':':
            fprintf(stderr, "nova backup: option '%s' needs a value\n", argv[optind - 1]);
            return NOVA_EXIT_USAGE;
        default:
            fprintf(stderr, "nova backup: unknown option '%s'\nhint: run 'nova backup --help'\n",
                    argv[optind - 1]);
            return NOVA_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "nova backup: no PATH given\nhint: run 'nova backup --help'\n");
        return NOVA_EXIT_USAGE;
    }
    a->paths = calloc((size_t)(argc - optind), sizeof(*a->paths));
    if (!a->paths)
        return cli_report_error(NOVA_ENOMEM);
    for (int i = optind; i < argc; i++)
        a->paths[a->options.path_count++] = argv[i];
    a->options.paths = a->paths;
    return NOVA_EXIT_OK;
}

static void on_file_error(const char *path, int code, const char *message, void *payload)
{
    backup_ui *ui = payload;
    const char *user_code = nova_error_user_code(code);
    (void)path;
    cli_progress_done(&ui->progress); /* clear the bar's line first */
    fprintf(stderr, "nova backup: warning: %s%s%s\n", user_code ? user_code : "",
            user_code ? ": " : "", message);
    ui->file_errors++;
}

static int on_progress(const nova_progress *progress, void *payload)
{
    backup_ui *ui = payload;
    return cli_progress_cb(progress, &ui->progress);
}

static void print_summary(const nova_backup_info *info)
{
    char read[32], added[32], original[32], compressed[32];
    double seconds = (double)(info->finished_ns - info->started_ns) / 1e9;

    printf("backup %s (%s, %s)\n", info->backup_id, nova_backup_strategy_name(info->strategy),
           nova_backup_status_name(info->status));
    if (info->parent_backup_id[0])
        printf("  parent     %s\n", info->parent_backup_id);
    printf("  files      %llu new, %llu changed, %llu unchanged",
           (unsigned long long)info->files_new, (unsigned long long)info->files_changed,
           (unsigned long long)info->files_unchanged);
    if (info->errors)
        printf(", %llu could not be read", (unsigned long long)info->errors);
    printf("\n  data       %s read, %s in the snapshot (%s compressed)\n",
           cli_format_bytes((double)info->bytes_read, read, sizeof(read)),
           cli_format_bytes((double)info->original_size, original, sizeof(original)),
           cli_format_bytes((double)info->compressed_size, compressed, sizeof(compressed)));
    printf("  added      %s to the repository in %.2f s\n",
           cli_format_bytes((double)info->bytes_added, added, sizeof(added)), seconds);
}

static void print_json(const nova_backup_info *info)
{
    json_t *value = cli_backup_info_json(info);
    json_dumpf(value, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(value);
}

int cli_cmd_backup(const cli_globals *globals, int argc, char **argv)
{
    struct nova_config *config = NULL;
    nova_repository *repo = NULL;
    nova_backup_info *info = NULL;
    backup_args args;
    backup_ui ui;
    int rc, exit_code;

    memset(&args, 0, sizeof(args));
    memset(&ui, 0, sizeof(ui));
#ifdef M_MMAP_THRESHOLD
    /* glibc raises its mmap threshold after big blocks are freed, after which freed
     * buffers stay in the heap; a fixed threshold gives them back (lower peak memory). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    exit_code = parse_args(&args, argc, argv);
    if (exit_code != NOVA_EXIT_OK) {
        args_free(&args);
        return exit_code;
    }
    exit_code = cli_open_repository(globals, &config, &repo);
    if (exit_code != NOVA_EXIT_OK) {
        args_free(&args);
        return exit_code;
    }
    cli_progress_init(&ui.progress, globals);
    args.options.progress = on_progress;
    args.options.file_error = on_file_error;
    args.options.payload = &ui;
    rc = nova_create_backup(repo, &args.options, &info);
    cli_progress_done(&ui.progress);
    if (rc < 0) {
        exit_code = cli_report_error(rc);
    } else {
        if (args.options.strategy != NOVA_STRATEGY_FULL && info->strategy == NOVA_STRATEGY_FULL &&
            !globals->quiet)
            fprintf(globals->json ? stderr : stdout,
                    "note: no parent backup: running a full backup\n");
        if (globals->json)
            print_json(info);
        else if (!globals->quiet)
            print_summary(info);
        exit_code = info->status == NOVA_BACKUP_COMPLETED ? NOVA_EXIT_OK : NOVA_EXIT_PARTIAL;
    }
    nova_backup_info_free(info);
    cli_close_repository(config, repo);
    args_free(&args);
    return exit_code;
}
