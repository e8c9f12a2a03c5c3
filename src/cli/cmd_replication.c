/*
 * cmd_replication.c -- `nova copy` (copy backups to another repository, creating it as a
 * replica) and `nova replicas status|repair` (which copies hold each backup completely;
 * repair a damaged copy from a healthy one).
 *
 * Exit codes: copy 0 done; status 0 every copy sound (backups may be absent from some),
 * 6 damage found, 5 a copy could not be read; repair 0 repaired (or nothing to do),
 * 6 something could not be repaired. Errors map as everywhere (cli_report_error).
 */
#include "cli/cli.h"

#include "nova/backup.h"
#include "nova/config.h"
#include "nova/error.h"
#include "nova/replicas.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_COPIES 16

static void usage_hint(const char *command)
{
    fprintf(stderr, "hint: run 'nova %s --help'\n", command);
}

static int bad_option(const char *command, int c, const char *arg)
{
    fprintf(stderr, c == ':' ? "nova %s: option '%s' needs a value\n"
                             : "nova %s: unknown option '%s'\n",
            command, arg);
    usage_hint(command);
    return NOVA_EXIT_USAGE;
}

static int parse_threads(const char *command, const char *text, unsigned *out)
{
    char *end = NULL;
    unsigned long n = strtoul(text, &end, 10);
    if (end == text || *end || n < 1 || n > 64) {
        fprintf(stderr, "nova %s: --threads '%s': use a number from 1 to 64\n", command, text);
        return NOVA_EXIT_USAGE;
    }
    *out = (unsigned)n;
    return NOVA_EXIT_OK;
}

static json_t *iso_time(int64_t ns)
{
    char text[32];
    time_t t = (time_t)(ns / 1000000000LL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(text);
}

static void print_json(json_t *root)
{
    char *text = json_dumps(root, JSON_INDENT(2));
    if (text)
        puts(text);
    free(text);
    json_decref(root);
}

static const char *user_code(int code)
{
    const char *text = nova_error_user_code(code);
    return text ? text : "GENERAL_001";
}

/* ---- nova copy -------------------------------------------------------------------------- */

const char cli_copy_usage[] =
    "usage: nova copy --to LOCATION [--threads N] [ID...]\n"
    "\n"
    "Copies backups (all of them when no ID is given; an ID may be a unique prefix or\n"
    "'latest') and every pack and index file they need to the repository at LOCATION: a\n"
    "directory, s3:..., azure:..., gcs:... (s3:, azure: and gcs: alone mean the bucket or\n"
    "container of the config). An empty LOCATION becomes a replica of this repository:\n"
    "same repository id, same keys, same passphrases; 'nova restore --repo LOCATION'\n"
    "works on it as here.\n"
    "\n"
    "Objects are copied byte for byte (data is never decrypted) and checked against their\n"
    "SHA-256 names before they are written: damage is never copied. Packs go first, then\n"
    "index files, then each backup's snapshot, so an interrupted copy leaves the target\n"
    "consistent and running it again finishes the work; objects already there are skipped.\n"
    "\n"
    "  --to LOCATION   the repository to copy to (required)\n"
    "  --threads N     objects moved at once (default 4)\n"
    "\n"
    "--json prints {\"target\", \"created\", \"snapshots_copied\", \"snapshots_present\",\n"
    "\"packs_copied\", \"packs_present\", \"index_files_copied\", \"keys_copied\",\n"
    "\"bytes_copied\", \"seconds\", ...}.\n";

static void print_copy_json(const char *target, const nova_copy_result *r)
{
    json_t *root = json_pack(
        "{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "target", target,
        "created", r->target_created, "snapshots_selected", (json_int_t)r->snapshots_selected,
        "snapshots_copied", (json_int_t)r->snapshots_copied, "snapshots_present",
        (json_int_t)r->snapshots_present, "packs_copied", (json_int_t)r->packs_copied,
        "packs_present", (json_int_t)r->packs_present, "index_files_copied",
        (json_int_t)r->indexes_copied, "index_files_present", (json_int_t)r->indexes_present,
        "keys_copied", (json_int_t)r->keys_copied, "bytes_copied", (json_int_t)r->bytes_copied,
        "seconds", r->seconds);
    print_json(root);
}

static void print_copy_text(const char *target, const nova_copy_result *r)
{
    char bytes[32], rate[32];
    double speed = r->seconds > 0 ? (double)r->bytes_copied / r->seconds : 0.0;
    if (r->target_created)
        printf("created the replica '%s' (%llu key slot%s)\n", target,
               (unsigned long long)r->keys_copied, r->keys_copied == 1 ? "" : "s");
    printf("copied %llu backup%s to '%s' (%llu already there): %llu pack%s, %llu index "
           "file%s, %s in %.1f s (%s/s)\n",
           (unsigned long long)r->snapshots_copied, r->snapshots_copied == 1 ? "" : "s", target,
           (unsigned long long)r->snapshots_present, (unsigned long long)r->packs_copied,
           r->packs_copied == 1 ? "" : "s", (unsigned long long)r->indexes_copied,
           r->indexes_copied == 1 ? "" : "s",
           cli_format_bytes((double)r->bytes_copied, bytes, sizeof(bytes)), r->seconds,
           cli_format_bytes(speed, rate, sizeof(rate)));
}

int cli_cmd_copy(const cli_globals *globals, int argc, char **argv)
{
    static const struct option options[] = {
        {"to", required_argument, NULL, 't'},
        {"threads", required_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    nova_copy_options copy = NOVA_COPY_OPTIONS_INIT;
    nova_copy_result result;
    struct nova_config *config = NULL;
    nova_repository *repo = NULL;
    const char *target = NULL;
    cli_progress progress;
    int c, rc, exit_code;

    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        if (c == 't')
            target = optarg;
        else if (c == 'j') {
            if (parse_threads("copy", optarg, &copy.threads) != NOVA_EXIT_OK)
                return NOVA_EXIT_USAGE;
        } else
            return bad_option("copy", c, argv[optind - 1]);
    }
    if (!target || !target[0]) {
        fputs("nova copy: --to LOCATION is required\n", stderr);
        usage_hint("copy");
        return NOVA_EXIT_USAGE;
    }
    copy.backup_ids = (const char *const *)(argv + optind);
    copy.backup_id_count = (size_t)(argc - optind);
    exit_code = cli_open_repository(globals, &config, &repo);
    if (exit_code != NOVA_EXIT_OK)
        return exit_code;
    cli_progress_init(&progress, globals);
    copy.config = config;
    copy.progress = cli_progress_cb;
    copy.payload = &progress;
    rc = nova_copy(repo, target, &copy, &result);
    cli_progress_done(&progress);
    if (rc < 0)
        exit_code = cli_report_error(rc);
    else if (globals->json)
        print_copy_json(target, &result);
    else if (!globals->quiet)
        print_copy_text(target, &result);
    cli_close_repository(config, repo);
    return exit_code;
}

/* ---- nova replicas ---------------------------------------------------------------------- */

const char cli_replicas_usage[] =
    "usage: nova replicas status [--read-data] [--threads N] [LOCATION...]\n"
    "       nova replicas repair --to LOCATION [--from LOCATION]... [--threads N]\n"
    "\n"
    "status compares copies of this repository: --repo (when given) and each LOCATION, or\n"
    "else every storage target of the config (storage.local_path, storage.s3, storage.azure,\n"
    "storage.gcs). For each backup it shows which copies hold it completely: the snapshot\n"
    "is sound, every tree reads and every pack it needs is there with the size its index\n"
    "gives. Index files, snapshots and key slots are always hashed against their names;\n"
    "  --read-data       also read every pack and check its SHA-256\n"
    "A damaged object is reported as INTEGRITY_001 (bytes do not match the name) or\n"
    "INTEGRITY_002 (missing, wrong size, unreadable) with the copy named; exit code 6.\n"
    "A copy that cannot be read is reported with its error; exit code 5.\n"
    "\n"
    "repair reads every object of the copy at --to, replaces each damaged one with verified\n"
    "bytes from a source (each --from, else --repo, else the other targets of the config),\n"
    "then copies the packs and index files its backups lack. Exit code 6 when something\n"
    "could not be repaired.\n"
    "\n"
    "  --threads N       objects read at once (default 4)\n"
    "\n"
    "--json prints status as {\"status\": \"ok\"|\"damaged\"|\"unavailable\", \"copies\": [...],\n"
    "\"backups\": [{\"backup_id\", \"started_at\", \"complete_copies\", \"copies\": {LOCATION:\n"
    "STATE}}], \"problems\": [{\"code\", \"copy\", \"object\", \"message\"}]} with STATE one of\n"
    "complete, absent, incomplete, damaged, unavailable; repair as {\"target\",\n"
    "\"objects_checked\", \"damaged_found\", \"replaced\", \"missing_copied\", \"unrepairable\",\n"
    "\"problems\"}.\n";

typedef struct location_list {
    const char *items[MAX_COPIES];
    size_t count;
} location_list;

static int location_add(location_list *l, const char *location)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i], location) == 0)
            return NOVA_EXIT_OK;
    if (l->count == MAX_COPIES) {
        fprintf(stderr, "nova replicas: at most %d copies at once\n", MAX_COPIES);
        return NOVA_EXIT_USAGE;
    }
    l->items[l->count++] = location;
    return NOVA_EXIT_OK;
}

/* The config's storage targets, except `except` (may be NULL). */
static int add_config_targets(location_list *l, const struct nova_config *config,
                              const char *except)
{
    size_t n = nova_config_target_count(config);
    for (size_t i = 0; i < n; i++) {
        const char *location = nova_config_target_location(config, i);
        if (except && strcmp(location, except) == 0)
            continue;
        if (location_add(l, location) != NOVA_EXIT_OK)
            return NOVA_EXIT_USAGE;
    }
    return NOVA_EXIT_OK;
}

static int get_passphrase(const cli_globals *globals, char *out, size_t size)
{
    int rc = cli_get_password(globals, out, size, 1);
    if (rc < 0)
        return NOVA_EXIT_USAGE;
    if (rc == 1) {
        fprintf(stderr, "nova: KEY_001: no passphrase given\n"
                        "hint: set NOVA_PASSWORD, use --password-file FILE, or run on a terminal\n");
        return NOVA_EXIT_PASSWORD;
    }
    return NOVA_EXIT_OK;
}

static json_t *problems_json(const nova_replica_problem *items, size_t count,
                             const char *const *copy_names, size_t copy_count)
{
    json_t *array = json_array();
    for (size_t i = 0; i < count; i++) {
        const nova_replica_problem *p = &items[i];
        json_array_append_new(
            array, json_pack("{s:s, s:s, s:s, s:s}", "code", user_code(p->code), "copy",
                             p->copy < copy_count ? copy_names[p->copy] : "", "object", p->object,
                             "message", p->message));
    }
    return array;
}

static const char *status_word(const nova_replicas_report *r)
{
    return r->damaged ? "damaged" : r->unavailable ? "unavailable" : "ok";
}

static void print_status_json(const nova_replicas_report *r)
{
    const char *names[MAX_COPIES];
    json_t *copies = json_array(), *backups = json_array();
    json_t *root;

    for (size_t c = 0; c < r->copy_count && c < MAX_COPIES; c++) {
        const nova_replica_copy *copy = &r->copies[c];
        json_t *item = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I}", "location", copy->location,
                                 "available", copy->available, "snapshots",
                                 (json_int_t)copy->snapshots, "complete",
                                 (json_int_t)copy->complete, "packs", (json_int_t)copy->packs,
                                 "pack_bytes", (json_int_t)copy->pack_bytes);
        names[c] = copy->location;
        if (!copy->available)
            json_object_set_new(item, "error",
                                json_pack("{s:s, s:s}", "code", user_code(copy->code),
                                          "message", copy->message));
        json_array_append_new(copies, item);
    }
    for (size_t b = 0; b < r->backup_count; b++) {
        const nova_replica_backup *backup = &r->backups[b];
        json_t *states = json_object();
        for (size_t c = 0; c < r->copy_count && c < MAX_COPIES; c++)
            json_object_set_new(states, names[c],
                                json_string(nova_replica_state_name(backup->states[c])));
        json_array_append_new(backups, json_pack("{s:s, s:o, s:I, s:o}", "backup_id",
                                                 backup->backup_id, "started_at",
                                                 iso_time(backup->started_ns), "complete_copies",
                                                 (json_int_t)backup->complete_count, "copies",
                                                 states));
    }
    root = json_pack("{s:s, s:o, s:o, s:o, s:I, s:I}", "status", status_word(r), "copies",
                     copies, "backups", backups, "problems",
                     problems_json(r->problems, r->problem_count, names,
                                   r->copy_count < MAX_COPIES ? r->copy_count : MAX_COPIES),
                     "objects_read", (json_int_t)r->objects_read, "bytes_read",
                     (json_int_t)r->bytes_read);
    print_json(root);
}

static void print_problems(const nova_replica_problem *items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        printf("error: %s [%zu] %s\n", user_code(items[i].code), items[i].copy + 1,
               items[i].message);
}

static void print_status_text(const nova_replicas_report *r, bool quiet)
{
    char bytes[32], when[32];
    size_t everywhere = 0, nowhere = 0;

    for (size_t b = 0; b < r->backup_count; b++) {
        everywhere += r->backups[b].complete_count == r->copy_count;
        nowhere += r->backups[b].complete_count == 0;
    }
    if (!quiet) {
        puts("copies:");
        for (size_t c = 0; c < r->copy_count; c++) {
            const nova_replica_copy *copy = &r->copies[c];
            if (copy->available)
                printf("  [%zu] %s: %llu backup%s (%llu complete), %llu pack%s (%s)\n", c + 1,
                       copy->location, (unsigned long long)copy->snapshots,
                       copy->snapshots == 1 ? "" : "s", (unsigned long long)copy->complete,
                       (unsigned long long)copy->packs, copy->packs == 1 ? "" : "s",
                       cli_format_bytes((double)copy->pack_bytes, bytes, sizeof(bytes)));
            else
                printf("  [%zu] %s: unavailable: %s: %s\n", c + 1, copy->location,
                       user_code(copy->code), copy->message);
        }
        if (r->backup_count) {
            printf("backups:\n  %-16s  %-19s", "ID", "STARTED");
            for (size_t c = 0; c < r->copy_count; c++) {
                char column[24];
                snprintf(column, sizeof(column), "[%zu]", c + 1);
                printf(c + 1 < r->copy_count ? "  %-11s" : "  %s", column);
            }
            putchar('\n');
        }
        for (size_t b = 0; b < r->backup_count; b++) {
            cli_format_time(r->backups[b].started_ns, when, sizeof(when));
            printf("  %.16s  %-19s", r->backups[b].backup_id, when);
            for (size_t c = 0; c < r->copy_count; c++)
                printf(c + 1 < r->copy_count ? "  %-11s" : "  %s",
                       nova_replica_state_name(r->backups[b].states[c]));
            putchar('\n');
        }
    }
    print_problems(r->problems, r->problem_count);
    if (!quiet)
        printf("%zu backup%s: %zu complete in every copy, %zu in none\n", r->backup_count,
               r->backup_count == 1 ? "" : "s", everywhere, nowhere);
    if (r->damaged)
        printf("%zu problem%s found: a copy is damaged (repair it with 'nova replicas repair "
               "--to LOCATION')\n", r->problem_count, r->problem_count == 1 ? "" : "s");
    else if (r->unavailable)
        puts("some copies could not be read");
}

static int parse_common(const char *command, int argc, char **argv, nova_replicas_options *o,
                        location_list *from, const char **to)
{
    static const struct option options[] = {
        {"read-data", no_argument, NULL, 'r'},
        {"threads", required_argument, NULL, 'j'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        if (c == 'r' && !to)
            o->read_data = 1;
        else if (c == 'j') {
            if (parse_threads(command, optarg, &o->threads) != NOVA_EXIT_OK)
                return NOVA_EXIT_USAGE;
        } else if (c == 'f' && to && from) {
            if (location_add(from, optarg) != NOVA_EXIT_OK)
                return NOVA_EXIT_USAGE;
        } else if (c == 't' && to)
            *to = optarg;
        else
            return bad_option(command, c == 'r' || c == 'f' || c == 't' ? '?' : c,
                              argv[optind - 1]);
    }
    return NOVA_EXIT_OK;
}

static int replicas_status(const cli_globals *globals, int argc, char **argv)
{
    nova_replicas_options options = NOVA_REPLICAS_OPTIONS_INIT;
    nova_replicas_report *report = NULL;
    struct nova_config *config = NULL;
    location_list copies = {{NULL}, 0};
    char passphrase[1024];
    cli_progress progress;
    int rc, exit_code = parse_common("replicas status", argc, argv, &options, NULL, NULL);

    if (exit_code != NOVA_EXIT_OK)
        return exit_code;
    rc = cli_load_config(globals, &config);
    if (rc < 0)
        return cli_report_error(rc);
    if (globals->repo)
        exit_code = location_add(&copies, globals->repo);
    for (int i = optind; exit_code == NOVA_EXIT_OK && i < argc; i++)
        exit_code = location_add(&copies, argv[i]);
    if (exit_code == NOVA_EXIT_OK && copies.count == 0)
        exit_code = add_config_targets(&copies, config, NULL);
    if (exit_code == NOVA_EXIT_OK && copies.count == 0 && cli_repo_location(globals, config))
        exit_code = location_add(&copies, cli_repo_location(globals, config));
    if (exit_code == NOVA_EXIT_OK && copies.count == 0) {
        fprintf(stderr, "nova replicas status: no copy to look at\n"
                        "hint: name LOCATIONs, use --repo, or set storage targets in the config\n");
        exit_code = NOVA_EXIT_USAGE;
    }
    if (exit_code == NOVA_EXIT_OK)
        exit_code = get_passphrase(globals, passphrase, sizeof(passphrase));
    if (exit_code != NOVA_EXIT_OK) {
        nova_config_free(config);
        return exit_code;
    }
    cli_progress_init(&progress, globals);
    options.config = config;
    options.progress = cli_progress_cb;
    options.payload = &progress;
    rc = nova_replicas_status(copies.items, copies.count, passphrase, &options, &report);
    memset(passphrase, 0, sizeof(passphrase));
    cli_progress_done(&progress);
    if (rc < 0)
        exit_code = cli_report_error(rc);
    else {
        if (globals->json)
            print_status_json(report);
        else
            print_status_text(report, globals->quiet);
        exit_code = report->damaged       ? NOVA_EXIT_DAMAGE
                    : report->unavailable ? NOVA_EXIT_REPOSITORY
                                          : NOVA_EXIT_OK;
    }
    nova_replicas_report_free(report);
    nova_config_free(config);
    return exit_code;
}

static void print_repair(const char *target, const nova_repair_result *r, bool json, bool quiet)
{
    char bytes[32];
    if (json) {
        const char *names[1] = {target};
        print_json(json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "status",
                             r->unrepairable ? "damaged" : "ok", "target", target,
                             "objects_checked", (json_int_t)r->objects_checked, "bytes_read",
                             (json_int_t)r->bytes_read, "damaged_found",
                             (json_int_t)r->damaged_found, "replaced", (json_int_t)r->replaced,
                             "missing_copied", (json_int_t)r->missing_copied, "unrepairable",
                             (json_int_t)r->unrepairable, "problems",
                             problems_json(r->problems, r->problem_count, names, 1)));
        return;
    }
    if (!quiet)
        printf("checked %llu object%s of '%s' (%s): %llu damaged, %llu replaced, %llu missing "
               "object%s copied\n",
               (unsigned long long)r->objects_checked, r->objects_checked == 1 ? "" : "s",
               target, cli_format_bytes((double)r->bytes_read, bytes, sizeof(bytes)),
               (unsigned long long)r->damaged_found, (unsigned long long)r->replaced,
               (unsigned long long)r->missing_copied, r->missing_copied == 1 ? "" : "s");
    print_problems(r->problems, r->problem_count);
    if (r->unrepairable)
        printf("%llu object%s could not be repaired\n", (unsigned long long)r->unrepairable,
               r->unrepairable == 1 ? "" : "s");
}

static int replicas_repair(const cli_globals *globals, int argc, char **argv)
{
    nova_replicas_options options = NOVA_REPLICAS_OPTIONS_INIT;
    nova_repair_result *result = NULL;
    struct nova_config *config = NULL;
    location_list sources = {{NULL}, 0};
    const char *target = NULL;
    char passphrase[1024];
    cli_progress progress;
    int rc, exit_code = parse_common("replicas repair", argc, argv, &options, &sources, &target);

    if (exit_code != NOVA_EXIT_OK)
        return exit_code;
    if (optind < argc) {
        fprintf(stderr, "nova replicas repair: unexpected argument '%s'\n", argv[optind]);
        usage_hint("replicas");
        return NOVA_EXIT_USAGE;
    }
    if (!target || !target[0]) {
        fputs("nova replicas repair: --to LOCATION is required\n", stderr);
        usage_hint("replicas");
        return NOVA_EXIT_USAGE;
    }
    rc = cli_load_config(globals, &config);
    if (rc < 0)
        return cli_report_error(rc);
    if (sources.count == 0 && globals->repo && strcmp(globals->repo, target) != 0)
        exit_code = location_add(&sources, globals->repo);
    if (exit_code == NOVA_EXIT_OK && sources.count == 0)
        exit_code = add_config_targets(&sources, config, target);
    if (exit_code == NOVA_EXIT_OK && sources.count == 0) {
        const char *here = cli_repo_location(globals, config);
        if (here && strcmp(here, target) != 0)
            exit_code = location_add(&sources, here);
    }
    if (exit_code == NOVA_EXIT_OK && sources.count == 0) {
        fprintf(stderr, "nova replicas repair: no healthy copy to repair '%s' from\n"
                        "hint: use --from LOCATION or --repo\n", target);
        exit_code = NOVA_EXIT_USAGE;
    }
    if (exit_code == NOVA_EXIT_OK)
        exit_code = get_passphrase(globals, passphrase, sizeof(passphrase));
    if (exit_code != NOVA_EXIT_OK) {
        nova_config_free(config);
        return exit_code;
    }
    cli_progress_init(&progress, globals);
    options.config = config;
    options.progress = cli_progress_cb;
    options.payload = &progress;
    rc = nova_replicas_repair(target, sources.items, sources.count, passphrase, &options,
                              &result);
    memset(passphrase, 0, sizeof(passphrase));
    cli_progress_done(&progress);
    if (rc < 0)
        exit_code = cli_report_error(rc);
    else {
        print_repair(target, result, globals->json, globals->quiet);
        exit_code = result->unrepairable ? NOVA_EXIT_DAMAGE : NOVA_EXIT_OK;
    }
    nova_repair_result_free(result);
    nova_config_free(config);
    return exit_code;
}

int cli_cmd_replicas(const cli_globals *globals, int argc, char **argv)
{
    if (argc < 2) {
        fputs("nova replicas: say 'status' or 'repair'\n", stderr);
        usage_hint("replicas");
        return NOVA_EXIT_USAGE;
    }
    if (strcmp(argv[1], "status") == 0)
        return replicas_status(globals, argc - 1, argv + 1);
    if (strcmp(argv[1], "repair") == 0)
        return replicas_repair(globals, argc - 1, argv + 1);
    fprintf(stderr, "nova replicas: unknown subcommand '%s' (use status or repair)\n", argv[1]);
    usage_hint("replicas");
    return NOVA_EXIT_USAGE;
}
