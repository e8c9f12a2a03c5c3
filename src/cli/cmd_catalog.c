/*
 * cmd_catalog.c -- looking at backups: `nova list`, `nova show`, `nova ls`, `nova diff`.
 *
 * Text output is for people (a table, aligned fields, `ls -l` lines); --json output is
 * for scripts and uses the same names as `nova backup --json` (cli_backup_info_json).
 * Times are local in text and UTC (RFC 3339) in JSON.
 */
#include "cli/cli.h"

#include "nova/backup.h"
#include "nova/catalog.h"
#include "nova/error.h"

#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- shared helpers ------------------------------------------------------------------ */

int cli_filter_add_tag(nova_backup_filter *filter, const char *text)
{
    nova_backup_tag *tags = realloc((void *)(uintptr_t)filter->tags,
                                    (filter->tag_count + 1) * sizeof(*tags));
    char *key, *eq;

    if (!tags)
        return -1;
    filter->tags = tags;
    key = strdup(text);
    if (!key)
        return -1;
    eq = strchr(key, '=');
    if (eq)
        *eq = '\0';
    tags[filter->tag_count].key = key;
    tags[filter->tag_count].value = eq ? eq + 1 : NULL; /* no '=': any value */
    filter->tag_count++;
    return 0;
}

/* path made absolute against the working directory and cleaned lexically ("." and ".."
 * and repeated slashes go; symlinks are not resolved). malloc'd; NULL on failure. */
char *cli_absolute_path(const char *path)
{
    char cwd[4096] = "";
    size_t cap, len = 0;
    const char *parts[2];
    char *out;

    if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
        return NULL;
    parts[0] = cwd;
    parts[1] = path;
    cap = strlen(cwd) + strlen(path) + 2;
    out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '/';
    out[1] = '\0';
    len = 1;
    for (int i = 0; i < 2; i++) {
        const char *p = parts[i];
        while (*p) {
            size_t n;
            while (*p == '/')
                p++;
            n = strcspn(p, "/");
            if (n == 2 && p[0] == '.' && p[1] == '.') {
                while (len > 1 && out[len - 1] != '/')
                    len--;
                if (len > 1)
                    len--;
            } else if (n > 0 && !(n == 1 && p[0] == '.')) {
                if (len > 1)
                    out[len++] = '/';
                memcpy(out + len, p, n);
                len += n;
            }
            out[len] = '\0';
            p += n;
        }
    }
    return out;
}

int cli_filter_set_path(nova_backup_filter *filter, const char *path)
{
    char *clean = cli_absolute_path(path);
    if (!clean)
        return -1;
    free((void *)(uintptr_t)filter->path);
    filter->path = clean;
    return 0;
}

void cli_filter_free(nova_backup_filter *filter)
{
    free((void *)(uintptr_t)filter->path);
    filter->path = NULL;
    for (size_t i = 0; i < filter->tag_count; i++)
        free((void *)(uintptr_t)filter->tags[i].key);
    free((void *)(uintptr_t)filter->tags);
    filter->tags = NULL;
    filter->tag_count = 0;
}

static int unknown_option(const char *command, int c, char **argv)
{
    fprintf(stderr, c == ':' ? "nova %s: option '%s' needs a value\n"
                             : "nova %s: unknown option '%s'\nhint: run 'nova %s --help'\n",
            command, argv[optind - 1], command);
    return NOVA_EXIT_USAGE;
}

static void print_json(json_t *value)
{
    json_dumpf(value, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(value);
}

/* RFC 3339 in UTC with nanoseconds: "2026-11-27T09:00:00.123456789Z". */
static void format_utc(int64_t ns, char *out, size_t size)
{
    int64_t seconds = ns / 1000000000LL, frac = ns % 1000000000LL;
    char base[32];
    time_t t;
    struct tm tm;

    if (frac < 0) {
        frac += 1000000000LL;
        seconds--;
    }
    t = (time_t)seconds;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, size, "%lld", (long long)ns);
        return;
    }
    if (strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        base[0] = '\0';
    snprintf(out, size, "%.24s.%09lldZ", base, (long long)frac);
}

static void short_id(const char *id, char out[13])
{
    snprintf(out, 13, "%.12s", id);
}

/* ---- list ---------------------------------------------------------------------------- */

const char cli_list_usage[] =
    "usage: nova list [--strategy S] [--status S] [--tag KEY=VALUE]... [--host H]\n"
    "                 [--path P] [--limit N]\n"
    "\n"
    "Lists backups, newest first: id (first 12 hex digits), start time, strategy, status,\n"
    "host, files, size of the files, bytes added to the repository, tags.\n"
    "  --strategy S      full, incremental or differential\n"
    "  --status S        completed, partial or failed\n"
    "  --tag KEY=VALUE   only backups with this tag (repeat: all must match; KEY alone\n"
    "                    matches any value)\n"
    "  --host H          only backups of this host\n"
    "  --path P          only backups that include the path P (a relative P is taken\n"
    "                    from the current directory, as backup does)\n"
    "  --limit N         only the newest N\n"
    "  --json            an array of backups with every field\n";

typedef struct list_args {
    nova_backup_filter filter;
} list_args;

static int parse_limit(const char *text, size_t *out)
{
    char *end;
    unsigned long long n = strtoull(text, &end, 10);
    if (*text == '\0' || *text == '-' || *end != '\0' || n == 0) {
        fprintf(stderr, "nova list: --limit needs a positive number, not '%s'\n", text);
        return NOVA_EXIT_USAGE;
    }
    *out = (size_t)n;
    return NOVA_EXIT_OK;
}

static int parse_list_args(list_args *a, int argc, char **argv)
{
    static const struct option options[] = {
        {"strategy", required_argument, NULL, 's'}, {"status", required_argument, NULL, 'S'},
        {"tag", required_argument, NULL, 't'},      {"host", required_argument, NULL, 'h'},
        {"path", required_argument, NULL, 'p'},     {"limit", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    const nova_backup_filter any = NOVA_BACKUP_FILTER_INIT;
    nova_backup_strategy strategy;
    nova_backup_status status;
    int c;

    a->filter = any;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        switch (c) {
        case 's':
            if (nova_backup_strategy_parse(optarg, &strategy) < 0)
                return cli_report_error(NOVA_EINVALID);
            a->filter.strategy = (int)strategy;
            break;
        case 'S':
            if (nova_backup_status_parse(optarg, &status) < 0)
                return cli_report_error(NOVA_EINVALID);
            a->filter.status = (int)status;
            break;
        case 't':
            if (cli_filter_add_tag(&a->filter, optarg) < 0)
                return cli_report_error(NOVA_ENOMEM);
            break;
        case 'h':
            a->filter.host = optarg;
            break;
        case 'p':
            if (cli_filter_set_path(&a->filter, optarg) < 0)
                return cli_report_error(NOVA_ENOMEM);
            break;
        case 'l':
            if (parse_limit(optarg, &a->filter.limit) != NOVA_EXIT_OK)
                return NOVA_EXIT_USAGE;
            break;
        default:
            return unknown_option("list", c, argv);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nova list: unexpected argument '%s'\n", argv[optind]);
        return NOVA_EXIT_USAGE;
    }
    return NOVA_EXIT_OK;
}

static void format_tags(const nova_backup_info *info, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < info->tag_count && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s=%s", i ? "," : "",
                                 info->tags[i].key, info->tags[i].value);
}

static uint64_t file_count(const nova_backup_info *info)
{
    return info->files_new + info->files_changed + info->files_unchanged;
}

typedef struct column_widths {
    int host, files, size, added;
} column_widths;

static int max_int(int a, int b) { return a > b ? a : b; }

static column_widths measure(nova_backup_info *const *infos, size_t count)
{
    column_widths w = {4, 5, 4, 5}; /* the headers' widths */
    char text[64];
    for (size_t i = 0; i < count; i++) {
        w.host = max_int(w.host, (int)strlen(infos[i]->host));
        w.files = max_int(w.files, snprintf(text, sizeof(text), "%llu",
                                            (unsigned long long)file_count(infos[i])));
        w.size = max_int(w.size, (int)strlen(cli_format_bytes((double)infos[i]->original_size,
                                                              text, sizeof(text))));
        w.added = max_int(w.added, (int)strlen(cli_format_bytes((double)infos[i]->bytes_added,
                                                                text, sizeof(text))));
    }
    return w;
}

static void print_table(nova_backup_info *const *infos, size_t count)
{
    column_widths w = measure(infos, count);
    char id[13], when[32], size[32], added[32], tags[1024];

    printf("%-12s  %-19s  %-12s  %-9s  %-*s  %*s  %*s  %*s  %s\n", "ID", "Time", "Strategy",
           "Status", w.host, "Host", w.files, "Files", w.size, "Size", w.added, "Added", "Tags");
    for (size_t i = 0; i < count; i++) {
        const nova_backup_info *info = infos[i];
        short_id(info->backup_id, id);
        cli_format_time(info->started_ns, when, sizeof(when));
        cli_format_bytes((double)info->original_size, size, sizeof(size));
        cli_format_bytes((double)info->bytes_added, added, sizeof(added));
        format_tags(info, tags, sizeof(tags));
        printf("%-12s  %-19s  %-12s  %-9s  %-*s  %*llu  %*s  %*s  %s\n", id, when,
               nova_backup_strategy_name(info->strategy), nova_backup_status_name(info->status),
               w.host, info->host, w.files, (unsigned long long)file_count(info), w.size, size,
               w.added, added, tags);
    }
    printf("%zu backup%s\n", count, count == 1 ? "" : "s");
}

int cli_cmd_list(const cli_globals *g, int argc, char **argv)
{
    struct nova_config *config = NULL;
    nova_repository *repo = NULL;
    nova_backup_info **infos = NULL;
    size_t count = 0;
    list_args args;
    int exit_code = parse_list_args(&args, argc, argv), rc;

    if (exit_code == NOVA_EXIT_OK)
        exit_code = cli_open_repository(g, &config, &repo);
    if (exit_code == NOVA_EXIT_OK) {
        rc = nova_list_backups(repo, &args.filter, &infos, &count);
        if (rc < 0) {
            exit_code = cli_report_error(rc);
        } else if (g->json) {
            json_t *out = json_array();
            for (size_t i = 0; i < count; i++)
                json_array_append_new(out, cli_backup_info_json(infos[i]));
            print_json(out);
        } else {
            print_table(infos, count);
        }
    }
    nova_backup_info_list_free(infos, count);
    cli_close_repository(config, repo);
    cli_filter_free(&args.filter);
    return exit_code;
}

/* ---- show ---------------------------------------------------------------------------- */

const char cli_show_usage[] =
    "usage: nova show ID\n"
    "\n"
    "Shows every field of one backup. ID is a backup id, a unique prefix of at least 4\n"
    "hex digits, or 'latest' (the newest backup that did not fail).\n"
    "  --json   one object with the fields of 'nova backup --json'\n";

/* Takes exactly `want` positional arguments after the options (none known). */
static int positional_args(const char *command, int argc, char **argv, int want,
                           const struct option *options)
{
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1)
        return unknown_option(command, c, argv);
    if (argc - optind != want) {
        fprintf(stderr, "nova %s: expected %d argument%s, got %d\nhint: run 'nova %s --help'\n",
                command, want, want == 1 ? "" : "s", argc - optind, command);
        return NOVA_EXIT_USAGE;
    }
    return NOVA_EXIT_OK;
}

static void show_text(const nova_backup_info *info)
{
    char started[32], finished[32], a[32], b[32];

    cli_format_time(info->started_ns, started, sizeof(started));
    cli_format_time(info->finished_ns, finished, sizeof(finished));
    printf("backup      %s\n", info->backup_id);
    printf("strategy    %s\n", nova_backup_strategy_name(info->strategy));
    printf("parent      %s\n", info->parent_backup_id[0] ? info->parent_backup_id : "none");
    printf("status      %s\n", nova_backup_status_name(info->status));
    printf("started     %s\n", started);
    printf("finished    %s (%.1f s)\n", finished,
           (double)(info->finished_ns - info->started_ns) / 1e9);
    printf("host        %s\n", info->host[0] ? info->host : "(unknown)");
    printf("user        %s\n", info->username[0] ? info->username : "(unknown)");
    printf("tags       ");
    for (size_t i = 0; i < info->tag_count; i++)
        printf(" %s=%s", info->tags[i].key, info->tags[i].value);
    printf("%s\n", info->tag_count ? "" : " none");
    for (size_t i = 0; i < info->path_count; i++)
        printf("%-12s%s\n", i == 0 ? "paths" : "", info->paths[i]);
    printf("files       %llu new, %llu changed, %llu unchanged\n",
           (unsigned long long)info->files_new, (unsigned long long)info->files_changed,
           (unsigned long long)info->files_unchanged);
    printf("read        %s\n", cli_format_bytes((double)info->bytes_read, a, sizeof(a)));
    printf("size        %s original, %s compressed\n",
           cli_format_bytes((double)info->original_size, a, sizeof(a)),
           cli_format_bytes((double)info->compressed_size, b, sizeof(b)));
    printf("added       %s\n", cli_format_bytes((double)info->bytes_added, a, sizeof(a)));
    printf("errors      %llu\n", (unsigned long long)info->errors);
}

int cli_cmd_show(const cli_globals *g, int argc, char **argv)
{
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    struct nova_config *config = NULL;
    nova_repository *repo = NULL;
    nova_backup_info *info = NULL;
    int exit_code = positional_args("show", argc, argv, 1, none), rc;

    if (exit_code == NOVA_EXIT_OK)
        exit_code = cli_open_repository(g, &config, &repo);
    if (exit_code == NOVA_EXIT_OK) {
        rc = nova_get_backup(repo, argv[optind], &info);
        if (rc < 0)
            exit_code = cli_report_error(rc);
        else if (g->json)
            print_json(cli_backup_info_json(info));
        else
            show_text(info);
    }
    nova_backup_info_free(info);
    cli_close_repository(config, repo);
    return exit_code;
}

/* ---- ls ------------------------------------------------------------------------------ */

const char cli_ls_usage[] =
    "usage: nova ls ID [PATH]\n"
    "\n"
    "Lists the files of a backup, one line per entry like 'ls -l': type and mode, owner,\n"
    "size, modification time, path. PATH (as backed up, e.g. /home/ann/notes; a relative\n"
    "one is taken from the current directory) limits the listing to that entry and\n"
    "everything below it. ID is an id, a unique prefix or 'latest'.\n"
    "  --json   one JSON object per line (path, type, mode, uid, gid, user, group, size,\n"
    "           mtime, nlink, and symlink_target for symlinks)\n";

static char type_letter(nova_node_type type)
{
    static const char letters[] = "?-dlpcbs";
    return (unsigned)type < sizeof(letters) - 1 ? letters[type] : '?';
}

/* "drwxr-sr-t" from a type and permission bits. */
static void mode_string(const nova_node *node, char out[11])
{
    static const char rwx[] = "rwx";
    uint32_t mode = node->mode;
    out[0] = type_letter(node->type);
    for (int i = 0; i < 9; i++)
        out[1 + i] = (mode & (0400u >> i)) ? rwx[i % 3] : '-';
    if (mode & 04000)
        out[3] = out[3] == 'x' ? 's' : 'S';
    if (mode & 02000)
        out[6] = out[6] == 'x' ? 's' : 'S';
    if (mode & 01000)
        out[9] = out[9] == 'x' ? 't' : 'T';
    out[10] = '\0';
}

static void owner_string(const nova_node *node, char *out, size_t size)
{
    char user[32], group[32];
    snprintf(user, sizeof(user), "%u", node->uid);
    snprintf(group, sizeof(group), "%u", node->gid);
    snprintf(out, size, "%s/%s", node->user_name ? node->user_name : user,
             node->group_name ? node->group_name : group);
}

static json_t *node_json(const nova_node *node)
{
    char mode[8], mtime[48];
    json_t *out;

    snprintf(mode, sizeof(mode), "%04o", node->mode);
    format_utc(node->mtime_ns, mtime, sizeof(mtime));
    out = json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:I, s:s, s:I}", "path", node->path,
                    "type", nova_node_type_name(node->type), "mode", mode, "uid",
                    (json_int_t)node->uid, "gid", (json_int_t)node->gid, "user",
                    node->user_name ? json_string(node->user_name) : json_null(), "group",
                    node->group_name ? json_string(node->group_name) : json_null(), "size",
                    (json_int_t)node->size, "mtime", mtime, "nlink", (json_int_t)node->nlink);
    if (out && node->symlink_target)
        json_object_set_new(out, "symlink_target", json_string(node->symlink_target));
    return out;
}

static int print_node_json(const nova_node *node, void *payload)
{
    json_t *line = node_json(node);
    (void)payload;
    json_dumpf(line, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(line);
    return 0;
}

static int print_node_text(const nova_node *node, void *payload)
{
    char mode[11], owner[600], when[32];
    (void)payload;
    mode_string(node, mode);
    owner_string(node, owner, sizeof(owner));
    cli_format_time(node->mtime_ns, when, sizeof(when));
    printf("%s  %-17s %12llu  %s  %s%s%s\n", mode, owner, (unsigned long long)node->size, when,
           node->path, node->symlink_target ? " -> " : "",
           node->symlink_target ? node->symlink_target : "");
    return 0;
}

int cli_cmd_ls(const cli_globals *g, int argc, char **argv)
{
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    struct nova_config *config = NULL;
    nova_repository *repo = NULL;
    char *path = NULL;
    int exit_code, rc, c;

    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", none, NULL)) != -1)
        return unknown_option("ls", c, argv);
    if (argc - optind < 1 || argc - optind > 2) {
        fputs("nova ls: give a backup id and at most one path\nhint: run 'nova ls --help'\n",
              stderr);
        return NOVA_EXIT_USAGE;
    }
    if (argc - optind == 2 && !(path = cli_absolute_path(argv[optind + 1])))
        return cli_report_error(NOVA_ENOMEM);
    exit_code = cli_open_repository(g, &config, &repo);
    if (exit_code == NOVA_EXIT_OK) {
        rc = nova_backup_ls(repo, argv[optind], path,
                            g->json ? print_node_json : print_node_text, NULL);
        if (rc < 0)
            exit_code = cli_report_error(rc);
    }
    free(path);
    cli_close_repository(config, repo);
    return exit_code;
}

/* ---- diff ---------------------------------------------------------------------------- */

const char cli_diff_usage[] =
    "usage: nova diff ID1 ID2\n"
    "\n"
    "Shows what changed from backup ID1 to backup ID2, one line per entry:\n"
    "  +  added            -  removed\n"
    "  M  content or size changed (or a symlink's target)\n"
    "  m  only metadata changed (mode, owner, modification time, extended attributes)\n"
    "Directories end in '/'. An entry whose type changed shows as removed and added.\n"
    "A summary line follows. --json prints {\"changes\": [...], \"summary\": {...}}.\n";

typedef struct diff_output {
    int json;
    json_t *changes;
} diff_output;

static int print_change(nova_change change, const nova_node *before, const nova_node *after,
                        void *payload)
{
    diff_output *out = payload;
    const nova_node *node = after ? after : before;

    if (out->json) {
        char letter[2] = {(char)change, '\0'};
        json_t *item = json_pack("{s:s, s:s, s:s}", "change", letter, "path", node->path, "type",
                                 nova_node_type_name(node->type));
        if (before)
            json_object_set_new(item, "size_before", json_integer((json_int_t)before->size));
        if (after)
            json_object_set_new(item, "size_after", json_integer((json_int_t)after->size));
        json_array_append_new(out->changes, item);
    } else {
        printf("%c  %s%s\n", (char)change, node->path, node->type == NOVA_NODE_DIR ? "/" : "");
    }
    return 0;
}

static void print_diff_summary(const diff_output *out, const nova_diff_stats *s)
{
    char added[32], removed[32];
    if (out->json) {
        json_t *summary = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I}", "added", (json_int_t)s->added, "removed",
            (json_int_t)s->removed, "modified", (json_int_t)s->modified, "metadata",
            (json_int_t)s->metadata, "bytes_added", (json_int_t)s->bytes_added, "bytes_removed",
            (json_int_t)s->bytes_removed);
        print_json(json_pack("{s:O, s:o}", "changes", out->changes, "summary", summary));
        return;
    }
    printf("%llu added, %llu removed, %llu modified, %llu metadata only; +%s -%s\n",
           (unsigned long long)s->added, (unsigned long long)s->removed,
           (unsigned long long)s->modified, (unsigned long long)s->metadata,
           cli_format_bytes((double)s->bytes_added, added, sizeof(added)),
           cli_format_bytes((double)s->bytes_removed, removed, sizeof(removed)));
}

int cli_cmd_diff(const cli_globals *g, int argc, char **argv)
{
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    struct nova_config *config = NULL;
    nova_repository *repo = NULL;
    diff_output out = {g->json, g->json ? json_array() : NULL};
    nova_diff_stats stats;
    int exit_code = positional_args("diff", argc, argv, 2, none), rc;

    if (exit_code == NOVA_EXIT_OK)
        exit_code = cli_open_repository(g, &config, &repo);
    if (exit_code == NOVA_EXIT_OK) {
        rc = nova_backup_diff(repo, argv[optind], argv[optind + 1], print_change, &out, &stats);
        if (rc < 0)
            exit_code = cli_report_error(rc);
        else
            print_diff_summary(&out, &stats);
    }
    json_decref(out.changes);
    cli_close_repository(config, repo);
    return exit_code;
}
