/*
 * cmd_selftest.c -- `nova selftest`: runs nova_selftest and prints each check, or one
 * JSON object with --json.
 */
#include "cli/cli.h"

#include "nova/config.h"
#include "nova/error.h"
#include "nova/selftest.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cli_selftest_usage[] =
    "usage: nova selftest [--repo DIR] [--json]\n"
    "\n"
    "Checks every primitive against known answers, then backs up a sample set of memory\n"
    "layers (JSON files) into a local repository, restores them in memory and compares\n"
    "every byte, and shows that a damaged pack is detected.\n"
    "The repository is DIR (default: --repo, $NOVA_REPOSITORY, the config's\n"
    "storage.local_path, then ./nova-data/selftest-repo); it is created when missing.\n"
    "The passphrase comes from --password-file or $NOVA_PASSWORD; without one the\n"
    "self-test passphrase 'nova-selftest' is used.\n";

typedef struct printer {
    bool json;
    json_t *checks;
} printer;

static void print_check(const char *check, int ok, const char *detail, void *payload)
{
    printer *p = payload;
    if (p->json)
        json_array_append_new(p->checks, json_pack("{s:s, s:b, s:s}", "name", check, "ok", ok,
                                                   "detail", detail));
    else
        printf("  %s  %-28s %s\n", ok ? "ok  " : "FAIL", check, detail);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void print_summary(const printer *p, const char *location,
                          const nova_selftest_result *result, double seconds)
{
    if (p->json) {
        json_t *root = json_pack("{s:s, s:s, s:s, s:f, s:O}", "status",
                                 result->failures ? "failed" : "passed", "repository", location,
                                 "snapshot_id", result->snapshot_id, "seconds", seconds, "checks",
                                 p->checks);
        char *text = json_dumps(root, JSON_INDENT(2));
        if (text)
            puts(text);
        free(text);
        json_decref(root);
    } else {
        printf("selftest %s in %.2f s (%d failure%s)\n", result->failures ? "FAILED" : "passed",
               seconds, result->failures, result->failures == 1 ? "" : "s");
    }
}

int cli_cmd_selftest(const cli_globals *globals, int argc, char **argv)
{
    printer p = {globals->json, NULL};
    nova_selftest_result result;
    nova_config *config = NULL;
    struct timespec started;
    char passphrase[1024];
    const char *location;
    int rc;

    if (argc > 1) {
        fprintf(stderr, "nova selftest: unexpected argument '%s'\nhint: run 'nova selftest --help'\n",
                argv[1]);
        return NOVA_EXIT_USAGE;
    }
    clock_gettime(CLOCK_MONOTONIC, &started);
    rc = cli_load_config(globals, &config);
    if (rc < 0)
        return cli_report_error(rc);
    location = cli_repo_location(globals, config);
    if (!location)
        location = "./nova-data/selftest-repo";
    rc = cli_get_password(globals, passphrase, sizeof(passphrase), 0);
    if (rc < 0) {
        nova_config_free(config);
        return NOVA_EXIT_USAGE;
    }
    if (rc == 1)
        snprintf(passphrase, sizeof(passphrase), "nova-selftest");
    p.checks = json_array();
    if (!p.json)
        printf("nova selftest\n");
    rc = nova_selftest(location, passphrase, print_check, &p, &result);
    memset(passphrase, 0, sizeof(passphrase));
    print_summary(&p, location, &result, seconds_since(&started));
    json_decref(p.checks);
    nova_config_free(config);
    if (rc < 0)
        return cli_exit_code(rc);
    return result.failures ? NOVA_EXIT_ERROR : NOVA_EXIT_OK;
}
