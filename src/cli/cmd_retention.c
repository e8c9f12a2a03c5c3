/*
 * cmd_retention.c -- retiring backups: `nova delete`, `nova cleanup`, `nova forget`.
 *
 * All three remove snapshot objects only (under a shared lock, so backups may run at the
 * same time); the data goes at the next `nova prune`. cleanup and forget report every
 * backup they judged, grouped by host and set of paths, with the reasons for keeping
 * it; --dry-run shows the same report and deletes nothing.
 */
#include "cli/cli.h"

#include "nova/backup.h"
#include "nova/catalog.h"
#include "nova/config.h"
#include "nova/error.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>


static const char prune_hint[] = "run 'nova prune' to free the data only they referenced";

static int bad_option(const char *command, int c, char **argv)
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

/* ---- delete --------------------------------------------------------------------------- */

const char cli_delete_usage[] =
    "usage: nova delete ID...\n"
    "\n"
    "Deletes backups: each ID is a backup id, a unique prefix of at least 4 hex digits,\n"
    "or 'latest'. Every ID is checked before anything is deleted. Only the snapshot goes;\n"
    "the data it alone referenced is freed by the next 'nova prune'. Runs beside backups\n"
    "(shared lock), never during a prune.\n"
    "  --json   print {\"deleted\": [ids]}\n";

/* Resolves every id first, so a typo deletes nothing. */
static int resolve_all(nova_repository *repo, char **texts, int count, nova_backup_info **infos)
{
    for (int i = 0; i < count; i++) {
        int rc = nova_get_backup(repo, texts[i], &infos[i]);
        if (rc < 0)
            return cli_report_error(rc);
    }
    return NOVA_EXIT_OK;
}

static int delete_resolved(const cli_globals *g, nova_repository *repo,
                           nova_backup_info **infos, int count)
{
    json_t *deleted = json_array();
    int exit_code = NOVA_EXIT_OK;

    for (int i = 0; i < count && exit_code == NOVA_EXIT_OK; i++) {
        char when[32];
        int rc = nova_delete_backup(repo, infos[i]->backup_id);
        if (rc < 0) {
            exit_code = cli_report_error(rc);
            break;
        }
        json_array_append_new(deleted, json_string(infos[i]->backup_id));
        cli_format_time(infos[i]->started_ns, when, sizeof(when));
        if (!g->json && !g->quiet)
            printf("deleted backup %.12s (%s, %s)\n", infos[i]->backup_id, when,
                   nova_backup_strategy_name(infos[i]->strategy));
    }
    if (g->json)
        print_json(json_pack("{s:O}", "deleted", deleted));
    else if (!g->quiet && json_array_size(deleted) > 0)
        printf("%s\n", prune_hint);
    json_decref(deleted);
    return exit_code;
}

int cli_cmd_delete(const cli_globals *g, int argc, char **argv)
{
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    struct nova_config *config = NULL;
    nova_repository *repo = NULL;
    nova_backup_info **infos = NULL;
    int count, exit_code, c;

    opterr = 0;
    optind = 0;
    if ((c = getopt_long(argc, argv, ":", none, NULL)) != -1)
        return bad_option("delete", c, argv);
    count = argc - optind;
    if (count < 1) {
        fputs("nova delete: which backup? (see 'nova list')\n", stderr);
        return NOVA_EXIT_USAGE;
    }
    exit_code = cli_open_repository(g, &config, &repo);
    if (exit_code == NOVA_EXIT_OK) {
        infos = calloc((size_t)count, sizeof(*infos));
        exit_code = infos ? resolve_all(repo, argv + optind, count, infos)
                          : cli_report_error(NOVA_ENOMEM);
    }
    if (exit_code == NOVA_EXIT_OK)
        exit_code = delete_resolved(g, repo, infos, count);
    if (infos)
        nova_backup_info_list_free(infos, (size_t)count);
    cli_close_repository(config, repo);
    return exit_code;
}

/* ---- shared by cleanup and forget ------------------------------------------------------ */

typedef struct retention_args {
    nova_backup_filter filter;
    int dry_run;
    nova_forget_policy policy;
    long retention_days; /* cleanup; -1 = from the config */
} retention_args;

static void reasons_text(unsigned reasons, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (unsigned bit = 1; bit && bit <= NOVA_KEEP_NEWEST && used < size; bit <<= 1)
        if (reasons & bit)
            used += (size_t)snprintf(out + used, size - used, "%s%s", used ? ", " : "",
                                     nova_keep_reason_name(bit));
}

static json_t *reasons_json(unsigned reasons)
{
    json_t *list = json_array();
    for (unsigned bit = 1; bit && bit <= NOVA_KEEP_NEWEST; bit <<= 1)
        if (reasons & bit)
            json_array_append_new(list, json_string(nova_keep_reason_name(bit)));
    return list;
}

static void print_group_header(const nova_backup_info *info)
{
    printf("host \"%s\", paths:", info->host);
    for (size_t i = 0; i < info->path_count; i++)
        printf(" %s", info->paths[i]);
    printf("\n");
}

static void report_text(const nova_retention_result *r, int dry_run)
{
    for (size_t k = 0; k < r->count; k++) {
        const nova_retention_entry *e = &r->entries[k];
        char id[13], when[32], why[160];
        if (k == 0 || e->group != r->entries[k - 1].group)
            print_group_header(e->info);
        snprintf(id, sizeof(id), "%.12s", e->info->backup_id);
        cli_format_time(e->info->started_ns, when, sizeof(when));
        reasons_text(e->reasons, why, sizeof(why));
        printf("  %-7s %s  %s  %-12s  %s\n",
               e->keep ? "keep" : (e->deleted ? "removed" : (dry_run ? "remove" : "skipped")),
               id, when, nova_backup_strategy_name(e->info->strategy), why);
    }
    if (dry_run)
        printf("%zu backup%s kept, %zu would be removed (dry run: nothing deleted)\n", r->kept,
               r->kept == 1 ? "" : "s", r->removed);
    else
        printf("%zu backup%s kept, %zu removed%s%s\n", r->kept, r->kept == 1 ? "" : "s",
               r->deleted, r->deleted ? "; " : "", r->deleted ? prune_hint : "");
}

static void report_json(const nova_retention_result *r, int dry_run, json_t *extra)
{
    json_t *groups = json_array(), *group = NULL, *backups = NULL, *out;

    for (size_t k = 0; k < r->count; k++) {
        const nova_retention_entry *e = &r->entries[k];
        json_t *item = cli_backup_info_json(e->info);
        if (k == 0 || e->group != r->entries[k - 1].group) {
            json_t *paths = json_array();
            for (size_t i = 0; i < e->info->path_count; i++)
                json_array_append_new(paths, json_string(e->info->paths[i]));
            backups = json_array();
            group = json_pack("{s:s, s:o, s:o}", "host", e->info->host, "paths", paths,
                              "backups", backups);
            json_array_append_new(groups, group);
        }
        json_object_set_new(item, "keep", json_boolean(e->keep));
        json_object_set_new(item, "reasons", reasons_json(e->reasons));
        json_object_set_new(item, "deleted", json_boolean(e->deleted));
        json_array_append_new(backups, item);
    }
    out = json_pack("{s:b, s:I, s:I, s:I, s:o}", "dry_run", dry_run, "kept",
                    (json_int_t)r->kept, "removed", (json_int_t)r->removed, "deleted",
                    (json_int_t)r->deleted, "groups", groups);
    if (extra)
        json_object_update(out, extra);
    print_json(out);
}

/* Prints the result (even a partial one after a failed deletion), then the error. */
static int finish(const cli_globals *g, int rc, const nova_retention_result *result,
                  int dry_run, json_t *extra)
{
    nova_error_detail saved = *nova_error_last();
    if (result && g->json)
        report_json(result, dry_run, extra);
    else if (result && !g->quiet)
        report_text(result, dry_run);
    if (rc < 0) {
        char line[1024];
        const char *hint = nova_error_hint(rc);
        snprintf(line, sizeof(line), "%s: %s (%s)", nova_error_user_code(rc), saved.message,
                 nova_error_message(rc));
        fprintf(stderr, "nova: %s\n", saved.message[0] ? line : nova_error_message(rc));
        if (hint)
            fprintf(stderr, "hint: %s\n", hint);
        return cli_exit_code(rc);
    }
    return NOVA_EXIT_OK;
}

/* ---- cleanup -------------------------------------------------------------------------- */

const char cli_cleanup_usage[] =
    "usage: nova cleanup [--retention-days N] [--dry-run] [--host H] [--tag KEY=VALUE]...\n"
    "                    [--path P]\n"
    "\n"
    "Deletes every backup that finished N days ago or earlier (default: the config's\n"
    "retention_days, 30 without one), but never the newest backup of a host and set of\n"
    "paths that did not fail. --host, --tag and --path limit which backups are considered.\n"
    "Only snapshots are deleted; 'nova prune' frees the data.\n"
    "  --dry-run   show what would be deleted, delete nothing\n"
    "  --json      the report as JSON\n";

/* Options shared by cleanup and forget; returns 1 when the option was one of them. */
static int take_filter_option(retention_args *a, int c, const char *value, int *exit_code)
{
    switch (c) {
    case 'H':
        a->filter.host = value;
        return 1;
    case 'P':
        if (cli_filter_set_path(&a->filter, value) < 0)
            *exit_code = cli_report_error(NOVA_ENOMEM);
        return 1;
    case 'T':
        if (cli_filter_add_tag(&a->filter, value) < 0)
            *exit_code = cli_report_error(NOVA_ENOMEM);
        return 1;
    case 'n':
        a->dry_run = 1;
        return 1;
    default:
        return 0;
    }
}

static void retention_args_init(retention_args *a)
{
    const nova_backup_filter any = NOVA_BACKUP_FILTER_INIT;
    const nova_forget_policy none = NOVA_FORGET_POLICY_INIT;
    memset(a, 0, sizeof(*a));
    a->filter = any;
    a->policy = none;
    a->retention_days = -1;
}

#define FILTER_OPTIONS                                                                         \
    {"host", required_argument, NULL, 'H'}, {"path", required_argument, NULL, 'P'},            \
        {"tag", required_argument, NULL, 'T'}, {"dry-run", no_argument, NULL, 'n'}

static int parse_cleanup_args(retention_args *a, int argc, char **argv)
{
    static const struct option options[] = {
        {"retention-days", required_argument, NULL, 'd'},
        FILTER_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    int c, exit_code = NOVA_EXIT_OK;

    opterr = 0;
    optind = 0;
    while (exit_code == NOVA_EXIT_OK && (c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        char *end;
        if (take_filter_option(a, c, optarg, &exit_code))
            continue;
        if (c != 'd')
            return bad_option("cleanup", c, argv);
        a->retention_days = strtol(optarg, &end, 10);
        if (*optarg == '\0' || *end != '\0' || a->retention_days < 0 ||
            a->retention_days > 1000000) {
            fprintf(stderr, "nova cleanup: --retention-days needs a number of days (0 or "
                            "more), not '%s'\n", optarg);
            return NOVA_EXIT_USAGE;
        }
    }
    if (exit_code == NOVA_EXIT_OK && optind < argc) {
        fprintf(stderr, "nova cleanup: unexpected argument '%s'\n", argv[optind]);
        return NOVA_EXIT_USAGE;
    }
    return exit_code;
}

int cli_cmd_cleanup(const cli_globals *g, int argc, char **argv)
{
    nova_retention_options options = NOVA_RETENTION_OPTIONS_INIT;
    struct nova_config *config = NULL;
    nova_repository *repo = NULL;
    nova_retention_result *result = NULL;
    retention_args args;
    int exit_code, rc;

    retention_args_init(&args);
    exit_code = parse_cleanup_args(&args, argc, argv);
    if (exit_code == NOVA_EXIT_OK)
        exit_code = cli_open_repository(g, &config, &repo);
    if (exit_code == NOVA_EXIT_OK) {
        int64_t wanted = args.retention_days >= 0 ? args.retention_days : config->retention_days;
        unsigned days = wanted > 1000000 ? 1000000u : (unsigned)wanted;
        json_t *extra = json_pack("{s:I}", "retention_days", (json_int_t)days);
        options.filter = &args.filter;
        options.dry_run = args.dry_run;
        rc = nova_cleanup(repo, days, &options, &result);
        if (!g->json && !g->quiet && (result || rc == 0))
            printf("retention: %u day%s\n", days, days == 1 ? "" : "s");
        exit_code = finish(g, rc, result, args.dry_run, extra);
        json_decref(extra);
    }
    nova_retention_result_free(result);
    cli_close_repository(config, repo);
    cli_filter_free(&args.filter);
    return exit_code;
}

/* ---- forget --------------------------------------------------------------------------- */

const char cli_forget_usage[] =
    "usage: nova forget [--keep-last N] [--keep-hourly N] [--keep-daily N]\n"
    "                   [--keep-weekly N] [--keep-monthly N] [--keep-yearly N]\n"
    "                   [--keep-within DURATION] [--dry-run]\n"
    "                   [--host H] [--tag KEY=VALUE]... [--path P]\n"
    "\n"
    "Deletes the backups a keep-policy does not keep (restic's semantics). Backups are\n"
    "grouped by host and set of paths; in each group, newest first, a backup is kept when\n"
    "any rule keeps it:\n"
    "  --keep-last N       the N newest\n"
    "  --keep-hourly N     the newest of each of the last N hours that have backups\n"
    "  --keep-daily N      ... days (local time)\n"
    "  --keep-weekly N     ... ISO weeks (Monday to Sunday)\n"
    "  --keep-monthly N    ... months\n"
    "  --keep-yearly N     ... years\n"
    "  --keep-within D     everything started less than D before the group's newest\n"
    "                      backup (D like 90s, 15m, 36h, 7d, 2w)\n"
    "N may be 'unlimited'. When a rule still has count left at a group's oldest backup,\n"
    "that backup is kept too. At least one rule is required.\n"
    "  --host, --tag, --path   consider only matching backups\n"
    "  --dry-run               show what would be deleted, delete nothing\n"
    "  --json                  the report as JSON\n"
    "Only snapshots are deleted; 'nova prune' frees the data.\n";

static int parse_keep_count(const char *option, const char *text, int *out)
{
    char *end;
    long n;
    if (strcmp(text, "unlimited") == 0 || strcmp(text, "all") == 0) {
        *out = NOVA_KEEP_UNLIMITED;
        return NOVA_EXIT_OK;
    }
    n = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || n < 0 || n > INT_MAX) {
        fprintf(stderr, "nova forget: --%s needs a count (0 or more, or 'unlimited'), not '%s'\n",
                option, text);
        return NOVA_EXIT_USAGE;
    }
    *out = (int)n;
    return NOVA_EXIT_OK;
}

static int take_policy_option(nova_forget_policy *p, int c, const char *name, const char *value)
{
    int *targets[] = {&p->keep_last,   &p->keep_hourly,  &p->keep_daily,
                      &p->keep_weekly, &p->keep_monthly, &p->keep_yearly};
    if (c >= '0' && c <= '5')
        return parse_keep_count(name, value, targets[c - '0']);
    if (nova_duration_parse(&p->keep_within_seconds, value) < 0 || p->keep_within_seconds == 0) {
        fprintf(stderr, "nova forget: --keep-within needs a duration like 36h or 7d, not '%s'\n",
                value);
        return NOVA_EXIT_USAGE;
    }
    return NOVA_EXIT_OK;
}

static int policy_has_rule(const nova_forget_policy *p)
{
    return p->keep_last || p->keep_hourly || p->keep_daily || p->keep_weekly ||
           p->keep_monthly || p->keep_yearly || p->keep_within_seconds;
}

static int parse_forget_args(retention_args *a, int argc, char **argv)
{
    static const struct option options[] = {
        {"keep-last", required_argument, NULL, '0'},
        {"keep-hourly", required_argument, NULL, '1'},
        {"keep-daily", required_argument, NULL, '2'},
        {"keep-weekly", required_argument, NULL, '3'},
        {"keep-monthly", required_argument, NULL, '4'},
        {"keep-yearly", required_argument, NULL, '5'},
        {"keep-within", required_argument, NULL, 'w'},
        FILTER_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    int c, index = 0, exit_code = NOVA_EXIT_OK;

    opterr = 0;
    optind = 0;
    while (exit_code == NOVA_EXIT_OK &&
           (c = getopt_long(argc, argv, ":", options, &index)) != -1) {
        if (take_filter_option(a, c, optarg, &exit_code))
            continue;
        if ((c >= '0' && c <= '5') || c == 'w')
            exit_code = take_policy_option(&a->policy, c, options[index].name, optarg);
        else
            return bad_option("forget", c, argv);
    }
    if (exit_code != NOVA_EXIT_OK)
        return exit_code;
    if (optind < argc) {
        fprintf(stderr, "nova forget: unexpected argument '%s'\n", argv[optind]);
        return NOVA_EXIT_USAGE;
    }
    if (!policy_has_rule(&a->policy)) {
        fputs("nova forget: no rule given; nothing would be kept, so nothing is done\n"
              "hint: give at least one of --keep-last, --keep-hourly, --keep-daily, "
              "--keep-weekly, --keep-monthly, --keep-yearly, --keep-within\n", stderr);
        return NOVA_EXIT_USAGE;
    }
    return NOVA_EXIT_OK;
}

static json_t *policy_json(const nova_forget_policy *p)
{
    return json_pack("{s:{s:i, s:i, s:i, s:i, s:i, s:i, s:I}}", "policy", "keep_last",
                     p->keep_last, "keep_hourly", p->keep_hourly, "keep_daily", p->keep_daily,
                     "keep_weekly", p->keep_weekly, "keep_monthly", p->keep_monthly,
                     "keep_yearly", p->keep_yearly, "keep_within_seconds",
                     (json_int_t)p->keep_within_seconds);
}

int cli_cmd_forget(const cli_globals *g, int argc, char **argv)
{
    nova_retention_options options = NOVA_RETENTION_OPTIONS_INIT;
    struct nova_config *config = NULL;
    nova_repository *repo = NULL;
    nova_retention_result *result = NULL;
    retention_args args;
    int exit_code, rc;

    retention_args_init(&args);
    exit_code = parse_forget_args(&args, argc, argv);
    if (exit_code == NOVA_EXIT_OK)
        exit_code = cli_open_repository(g, &config, &repo);
    if (exit_code == NOVA_EXIT_OK) {
        json_t *extra = policy_json(&args.policy);
        options.filter = &args.filter;
        options.dry_run = args.dry_run;
        rc = nova_forget(repo, &args.policy, &options, &result);
        exit_code = finish(g, rc, result, args.dry_run, extra);
        json_decref(extra);
    }
    nova_retention_result_free(result);
    cli_close_repository(config, repo);
    cli_filter_free(&args.filter);
    return exit_code;
}
