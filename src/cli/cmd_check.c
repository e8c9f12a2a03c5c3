/*
 * cmd_check.c -- `nova check [--read-data] [--subset n/m|x%] [--no-lock]`: verifies the
 * repository and reports damage with the user's codes and the backups it affects.
 *
 * Exit codes: 0 nothing damaged (warnings allowed), 6 damage found, others as usual.
 */
#include "cli/cli.h"

#include "nova/config.h"
#include "nova/error.h"
#include "nova/maintenance.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char cli_check_usage[] =
    "usage: nova check [--read-data] [--subset n/m | --subset x%] [--no-lock]\n"
    "\n"
    "Verifies the repository's structure: the config and key slots, every index file,\n"
    "every pack named by the index (it exists, and its header authenticates and agrees\n"
    "with the index), every snapshot, every tree of every snapshot, and that each blob a\n"
    "tree references is in the index.\n"
    "\n"
    "  --read-data       also read every pack whole: its SHA-256 must match its name, and\n"
    "                    every blob is decrypted, decompressed and re-hashed to its id\n"
    "  --subset n/m      read only the packs whose id's first byte modulo m is n-1\n"
    "                    (n = 1..m together cover every pack once); implies --read-data\n"
    "  --subset x%       read a random x% of the packs; implies --read-data\n"
    "  --no-lock         do not take the shared lock (read-only repository)\n"
    "\n"
    "Damage is reported as INTEGRITY_001 (checksum mismatch) or INTEGRITY_002 (corruption\n"
    "detected) with the object and the backups it affects; the exit code is then 6.\n"
    "Packs that no index names are warnings: 'nova prune' removes them.\n"
    "--json prints {\"status\": \"ok\"|\"damaged\", \"packs_checked\", \"blobs_checked\",\n"
    "\"errors\": [{\"code\", \"object\", \"message\", \"snapshots\"}], \"warnings\", ...}.\n";

static int parse_subset(nova_check_options *o, const char *text)
{
    size_t len = strlen(text);
    char *end = NULL;

    if (len > 1 && text[len - 1] == '%') {
        double pct = strtod(text, &end);
        if (end != text + len - 1 || !(pct > 0.0 && pct <= 100.0))
            return -1;
        o->subset_percent = pct;
        return 0;
    }
    unsigned long n = strtoul(text, &end, 10), m;
    if (end == text || *end != '/')
        return -1;
    text = end + 1;
    m = strtoul(text, &end, 10);
    if (end == text || *end || n < 1 || m < 1 || n > m || m > 256)
        return -1;
    o->subset_part = (unsigned)n;
    o->subset_parts = (unsigned)m;
    return 0;
}

static int parse_args(nova_check_options *o, int argc, char **argv)
{
    static const struct option options[] = {
        {"read-data", no_argument, NULL, 'r'},
        {"subset", required_argument, NULL, 's'},
        {"read-data-subset", required_argument, NULL, 's'},
        {"no-lock", no_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        switch (c) {
        case 'r':
            o->read_data = 1;
            break;
        case 'n':
            o->no_lock = 1;
            break;
        case 's':
            if (o->subset_parts || o->subset_percent > 0.0 || parse_subset(o, optarg) < 0) {
                fprintf(stderr, "nova check: --subset '%s': use n/m (1 <= n <= m <= 256) or "
                                "x%% (0 < x <= 100), once\n", optarg);
                return NOVA_EXIT_USAGE;
            }
            o->read_data = 1;
            break;
        default:
            fprintf(stderr, c == ':' ? "nova check: option '%s' needs a value\n"
                                     : "nova check: unknown option '%s'\n",
                    argv[optind - 1]);
            fputs("hint: run 'nova check --help'\n", stderr);
            return NOVA_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nova check: unexpected argument '%s'\nhint: run 'nova check --help'\n",
                argv[optind]);
        return NOVA_EXIT_USAGE;
    }
    return NOVA_EXIT_OK;
}

static json_t *problems_json(const nova_check_problem *items, size_t count, int with_code)
{
    json_t *array = json_array();
    for (size_t i = 0; i < count; i++) {
        const nova_check_problem *p = &items[i];
        json_t *snapshots = json_array();
        json_t *item;
        const char *code = nova_error_user_code(p->code);
        for (size_t s = 0; s < p->snapshot_count; s++)
            json_array_append_new(snapshots, json_string(p->snapshots[s]));
        item = json_pack("{s:s, s:s, s:o}", "object", p->object, "message", p->message,
                         "snapshots", snapshots);
        if (with_code)
            json_object_set_new(item, "code", json_string(code ? code : "GENERAL_001"));
        json_array_append_new(array, item);
    }
    return array;
}

static void print_json(const nova_check_report *r, const nova_check_options *o)
{
    json_t *root = json_pack(
        "{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "status",
        r->damaged ? "damaged" : "ok", "read_data", o->read_data, "keys_checked",
        (json_int_t)r->keys_checked, "indexes_checked", (json_int_t)r->indexes_checked,
        "packs_checked", (json_int_t)r->packs_checked, "packs_read", (json_int_t)r->packs_read,
        "blobs_checked", (json_int_t)r->blobs_checked, "bytes_read", (json_int_t)r->bytes_read,
        "snapshots_checked", (json_int_t)r->snapshots_checked, "trees_checked",
        (json_int_t)r->trees_checked, "blobs_unused", (json_int_t)r->blobs_unused,
        "bytes_unused", (json_int_t)r->bytes_unused, "errors",
        problems_json(r->errors, r->error_count, 1), "warnings",
        problems_json(r->warnings, r->warning_count, 0));
    char *text = json_dumps(root, JSON_INDENT(2));
    if (text)
        puts(text);
    free(text);
    json_decref(root);
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static void print_problem(const nova_check_problem *p, int is_error)
{
    const char *code = nova_error_user_code(p->code);
    if (is_error)
        printf("error: %s %s: %s\n", code ? code : "GENERAL_001", p->object, p->message);
    else
        printf("warning: %s\n", p->message);
    if (p->snapshot_count == 0)
        return;
    printf("       affects %zu backup%s:", p->snapshot_count, p->snapshot_count == 1 ? "" : "s");
    for (size_t i = 0; i < p->snapshot_count; i++)
        printf(" %.16s", p->snapshots[i]);
    putchar('\n');
}

static void print_text(const nova_check_report *r, const nova_check_options *o, bool quiet)
{
    char bytes[32];
    if (!quiet) {
        printf("checked the config, %llu key slot%s, %llu index file%s, %llu pack%s, "
               "%llu snapshot%s and %llu tree%s\n",
               (unsigned long long)r->keys_checked, plural(r->keys_checked, "", "s"),
               (unsigned long long)r->indexes_checked, plural(r->indexes_checked, "", "s"),
               (unsigned long long)r->packs_checked, plural(r->packs_checked, "", "s"),
               (unsigned long long)r->snapshots_checked, plural(r->snapshots_checked, "", "s"),
               (unsigned long long)r->trees_checked, plural(r->trees_checked, "", "s"));
        if (o->read_data)
            printf("read %llu pack%s (%s) and verified %llu blob%s\n",
                   (unsigned long long)r->packs_read, plural(r->packs_read, "", "s"),
                   cli_format_bytes((double)r->bytes_read, bytes, sizeof(bytes)),
                   (unsigned long long)r->blobs_checked, plural(r->blobs_checked, "", "s"));
        if (r->blobs_unused)
            printf("%llu blob%s (%s) no backup uses; 'nova prune' frees them\n",
                   (unsigned long long)r->blobs_unused, plural(r->blobs_unused, "", "s"),
                   cli_format_bytes((double)r->bytes_unused, bytes, sizeof(bytes)));
    }
    for (size_t i = 0; !quiet && i < r->warning_count; i++)
        print_problem(&r->warnings[i], 0);
    for (size_t i = 0; i < r->error_count; i++)
        print_problem(&r->errors[i], 1);
    if (r->damaged)
        printf("%zu error%s found: the repository is damaged\n", r->error_count,
               r->error_count == 1 ? "" : "s");
    else if (!quiet)
        puts("no errors found");
}

int cli_cmd_check(const cli_globals *globals, int argc, char **argv)
{
    nova_check_options options = NOVA_CHECK_OPTIONS_INIT;
    nova_check_report *report = NULL;
    struct nova_config *config = NULL;
    nova_repository *repo = NULL;
    cli_progress progress;
    int rc, exit_code = parse_args(&options, argc, argv);

    if (exit_code != NOVA_EXIT_OK)
        return exit_code;
    exit_code = cli_open_repository(globals, &config, &repo);
    if (exit_code != NOVA_EXIT_OK)
        return exit_code;
    cli_progress_init(&progress, globals);
    options.progress = cli_progress_cb;
    options.payload = &progress;
    rc = nova_check(repo, &options, &report);
    cli_progress_done(&progress);
    if (rc < 0) {
        exit_code = cli_report_error(rc);
    } else {
        if (globals->json)
            print_json(report, &options);
        else
            print_text(report, &options, globals->quiet);
        exit_code = report->damaged ? NOVA_EXIT_DAMAGE : NOVA_EXIT_OK;
    }
    nova_check_report_free(report);
    cli_close_repository(config, repo);
    return exit_code;
}
