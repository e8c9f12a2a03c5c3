/*
 * cmd_prune.c -- `nova prune [--dry-run] [--max-repack-ratio R] [--force-unindexed]`:
 * removes the data no backup references and repacks mostly unused packs.
 *
 * Prune needs the repository to itself: while a backup or check holds a lock it refuses
 * with REPO_002 (exit 5). The library orders its writes so that an interruption at any
 * point leaves every backup restorable.
 */
#include "cli/cli.h"

#include "nova/config.h"
#include "nova/error.h"
#include "nova/maintenance.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char cli_prune_usage[] =
    "usage: nova prune [--dry-run] [--max-repack-ratio R] [--force-unindexed]\n"
    "\n"
    "Removes the data that no backup references any more (after 'nova delete', 'nova\n"
    "forget' or 'nova cleanup'): packs without a used blob are deleted, and packs whose\n"
    "used bytes are below R of their size are repacked (their used blobs copied into new\n"
    "packs, the old ones deleted). Packs that no index names (left by an interrupted\n"
    "backup) are deleted too.\n"
    "\n"
    "  --dry-run             print what would be done; change nothing\n"
    "  --max-repack-ratio R  repack packs less than R used, 0..1 or a percentage\n"
    "                        (default 0.5; 0 never repacks, 1 repacks any pack with\n"
    "                        unused bytes)\n"
    "  --force-unindexed     delete packs no index names even when stale locks were found\n"
    "                        (by default they are kept for one more prune, in case the\n"
    "                        stalled backup that wrote them still indexes them)\n"
    "\n"
    "Prune takes the exclusive lock: while a backup or a check runs it refuses with\n"
    "REPO_002 (exit 5). It never deletes anything when a snapshot, an index file or a\n"
    "tree cannot be read; run 'nova check' then. An interrupted prune leaves every backup\n"
    "restorable; run it again to finish.\n"
    "--json prints the result as one JSON object.\n";

static int parse_ratio(const char *text, double *out)
{
    char *end = NULL;
    double v = strtod(text, &end);
    if (end == text)
        return -1;
    if (*end == '%' && end[1] == '\0') {
        v /= 100.0;
        end++;
    }
    if (*end || !(v >= 0.0 && v <= 1.0))
        return -1;
    *out = v;
    return 0;
}

static int parse_args(nova_prune_options *o, int argc, char **argv)
{
    static const struct option options[] = {
        {"dry-run", no_argument, NULL, 'n'},
        {"max-repack-ratio", required_argument, NULL, 'r'},
        {"force-unindexed", no_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->dry_run = 1;
            break;
        case 'f':
            o->force_unindexed = 1;
            break;
        case 'r':
            if (parse_ratio(optarg, &o->max_repack_ratio) < 0) {
                fprintf(stderr, "nova prune: --max-repack-ratio '%s': use a number from 0 to "
                                "1, or a percentage\n", optarg);
                return NOVA_EXIT_USAGE;
            }
            break;
        default:
            fprintf(stderr, c == ':' ? "nova prune: option '%s' needs a value\n"
                                     : "nova prune: unknown option '%s'\n",
                    argv[optind - 1]);
            fputs("hint: run 'nova prune --help'\n", stderr);
            return NOVA_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nova prune: unexpected argument '%s'\nhint: run 'nova prune --help'\n",
                argv[optind]);
        return NOVA_EXIT_USAGE;
    }
    return NOVA_EXIT_OK;
}

static void print_json(const nova_prune_result *r)
{
    json_t *root = json_object();
    const struct {
        const char *name;
        uint64_t value;
    } fields[] = {
        {"snapshots", r->snapshots},
        {"packs", r->packs},
        {"blobs_used", r->blobs_used},
        {"blobs_unused", r->blobs_unused},
        {"bytes_unused", r->bytes_unused},
        {"packs_deleted", r->packs_deleted},
        {"packs_repacked", r->packs_repacked},
        {"packs_written", r->packs_written},
        {"blobs_repacked", r->blobs_repacked},
        {"bytes_repacked", r->bytes_repacked},
        {"unindexed_deleted", r->unindexed_deleted},
        {"unindexed_kept", r->unindexed_kept},
        {"indexes_deleted", r->indexes_deleted},
        {"indexes_written", r->indexes_written},
        {"stale_locks_removed", r->stale_locks_removed},
        {"bytes_deleted", r->bytes_deleted},
        {"bytes_written", r->bytes_written},
        {"bytes_freed", r->bytes_freed},
        {"repository_bytes_before", r->repository_bytes_before},
        {"repository_bytes_after", r->repository_bytes_after},
    };
    char *text;

    json_object_set_new(root, "dry_run", json_boolean(r->dry_run));
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        json_object_set_new(root, fields[i].name, json_integer((json_int_t)fields[i].value));
    text = json_dumps(root, JSON_INDENT(2));
    if (text)
        puts(text);
    free(text);
    json_decref(root);
}

static const char *s_of(uint64_t n) { return n == 1 ? "" : "s"; }

static void print_text(const nova_prune_result *r)
{
    const int dry = r->dry_run;
    char a[32], b[32], c[32];

    printf("%llu backup%s %llu blob%s; %llu blob%s (%s) %s unused\n",
           (unsigned long long)r->snapshots, r->snapshots == 1 ? " uses" : "s use",
           (unsigned long long)r->blobs_used, s_of(r->blobs_used),
           (unsigned long long)r->blobs_unused, s_of(r->blobs_unused),
           cli_format_bytes((double)r->bytes_unused, a, sizeof(a)),
           r->blobs_unused == 1 ? "is" : "are");
    if (r->stale_locks_removed)
        printf("removed %llu stale lock%s\n", (unsigned long long)r->stale_locks_removed,
               s_of(r->stale_locks_removed));
    if (r->packs_deleted)
        printf("%s %llu pack%s without used data\n", dry ? "would delete" : "deleted",
               (unsigned long long)r->packs_deleted, s_of(r->packs_deleted));
    if (r->packs_repacked)
        printf("%s %llu pack%s: %llu used blob%s (%s) copied into %s%llu new pack%s\n",
               dry ? "would repack" : "repacked", (unsigned long long)r->packs_repacked,
               s_of(r->packs_repacked), (unsigned long long)r->blobs_repacked,
               s_of(r->blobs_repacked),
               cli_format_bytes((double)r->bytes_repacked, a, sizeof(a)), dry ? "about " : "",
               (unsigned long long)r->packs_written, s_of(r->packs_written));
    if (r->unindexed_deleted)
        printf("%s %llu pack%s no index named\n", dry ? "would delete" : "deleted",
               (unsigned long long)r->unindexed_deleted, s_of(r->unindexed_deleted));
    if (r->unindexed_kept)
        printf("%s %llu pack%s no index names: stale locks were found, so a stalled backup "
               "may still index them; the next prune deletes them (or use --force-unindexed)\n",
               dry ? "would keep" : "kept", (unsigned long long)r->unindexed_kept,
               s_of(r->unindexed_kept));
    if (r->indexes_deleted)
        printf("%s %llu index file%s by %llu\n", dry ? "would replace" : "replaced",
               (unsigned long long)r->indexes_deleted, s_of(r->indexes_deleted),
               (unsigned long long)r->indexes_written);
    if (!r->packs_deleted && !r->packs_repacked && !r->unindexed_deleted && !r->indexes_deleted)
        puts("nothing to remove");
    printf("%s %s: repository %s -> %s\n", dry ? "would free" : "freed",
           cli_format_bytes((double)r->bytes_freed, a, sizeof(a)),
           cli_format_bytes((double)r->repository_bytes_before, b, sizeof(b)),
           cli_format_bytes((double)r->repository_bytes_after, c, sizeof(c)));
    if (dry)
        puts("dry run: nothing was changed");
}

int cli_cmd_prune(const cli_globals *globals, int argc, char **argv)
{
    nova_prune_options options = NOVA_PRUNE_OPTIONS_INIT;
    nova_prune_result result;
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
    rc = nova_prune(repo, &options, &result);
    cli_progress_done(&progress);
    if (rc < 0) {
        exit_code = cli_report_error(rc);
    } else if (globals->json) {
        print_json(&result);
    } else if (!globals->quiet) {
        print_text(&result);
    }
    cli_close_repository(config, repo);
    return exit_code;
}
