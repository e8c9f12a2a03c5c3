/*
 * cmd_init.c -- `nova init`: create a repository.
 *
 * The location comes from --repo, $NOVA_REPOSITORY or the config's storage.local_path;
 * the passphrase from --password-file, $NOVA_PASSWORD, or a terminal prompt asked twice
 * (a new passphrase is never read only once from a person). Compression for new data
 * comes from --compression, else the config's "compression" key; a bad value in the
 * config is CONFIG_001 naming the key. An existing repository is never touched.
 */
#include "cli/cli.h"

#include "nova/backup.h"
#include "nova/config.h"
#include "nova/error.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

const char cli_init_usage[] =
    "usage: nova init [--compression SPEC] [--kdf-cost N]\n"
    "\n"
    "Creates a repository at --repo, $NOVA_REPOSITORY or the config's storage.local_path.\n"
    "The passphrase comes from --password-file or $NOVA_PASSWORD; on a terminal it is\n"
    "asked for twice. Without the passphrase (or another key slot's, see 'nova key') the\n"
    "backups cannot be read: keep it safe.\n"
    "\n"
    "Options:\n"
    "  --compression SPEC  codec for new data: zstd[:1-19] (default zstd:3), lzma[:0-9],\n"
    "                      lz4 or none (default: the config's \"compression\" key)\n"
    "  --kdf-cost N        scrypt cost 2^N for the key slot, 10..22 (default 15); lower\n"
    "                      values open faster and resist guessing less (tests only)\n"
    "  --json              print {\"repository\", \"repository_id\", \"compression\"}\n"
    "\n"
    "Exit codes: 0 created, 1 a repository already exists there, 2 usage,\n"
    "            4 no passphrase, 7 invalid configuration.\n";

#define DEFAULT_COMPRESSION "zstd:3"

static void strip_newline(char *text)
{
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
}

static void read_hidden(const char *prompt, char *out, size_t size)
{
    struct termios old, quiet;
    int restore = 0;

    fputs(prompt, stderr);
    fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        restore = tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == 0;
    }
    if (!fgets(out, (int)size, stdin))
        out[0] = '\0';
    if (restore)
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
    fputc('\n', stderr);
    strip_newline(out);
}

int cli_prompt_new_passphrase(const char *what, const char *hint, char *out, size_t size)
{
    char again[1024], prompt[160];
    int same;

    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "nova: KEY_001: no %s given\nhint: %s\n", what, hint);
        return NOVA_EXIT_PASSWORD;
    }
    snprintf(prompt, sizeof(prompt), "enter the %s: ", what);
    read_hidden(prompt, out, size);
    snprintf(prompt, sizeof(prompt), "enter the %s again: ", what);
    read_hidden(prompt, again, sizeof(again));
    same = strcmp(out, again) == 0;
    memset(again, 0, sizeof(again));
    if (!same) {
        memset(out, 0, size);
        fputs("nova: the two passphrases differ; nothing was changed\n", stderr);
        return NOVA_EXIT_USAGE;
    }
    return NOVA_EXIT_OK;
}

typedef struct init_args {
    const char *compression;
    unsigned kdf_cost;
} init_args;

static int parse_args(init_args *a, int argc, char **argv)
{
    static const struct option options[] = {
        {"compression", required_argument, NULL, 'c'},
        {"kdf-cost", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    char *end;
    long cost;
    int c;

    memset(a, 0, sizeof(*a));
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        switch (c) {
        case 'c':
            a->compression = optarg;
            break;
        case 'k':
            cost = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || cost < 10 || cost > 22) {
                fprintf(stderr, "nova init: --kdf-cost must be a number from 10 to 22\n");
                return NOVA_EXIT_USAGE;
            }
            a->kdf_cost = (unsigned)cost;
            break;
        case ':':
            fprintf(stderr, "nova init: option '%s' needs a value\n", argv[optind - 1]);
            return NOVA_EXIT_USAGE;
        default:
            fprintf(stderr, "nova init: unknown option '%s'\nhint: run 'nova init --help'\n",
                    argv[optind - 1]);
            return NOVA_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nova init: unexpected argument '%s'\nhint: the location is given "
                        "with --repo\n", argv[optind]);
        return NOVA_EXIT_USAGE;
    }
    return NOVA_EXIT_OK;
}

/* The passphrase of the new repository, from its sources in order. */
static int new_repository_passphrase(const cli_globals *g, char *out, size_t size)
{
    int rc = cli_get_password(g, out, size, 0);
    if (rc < 0)
        return NOVA_EXIT_USAGE;
    if (rc == 1) {
        rc = cli_prompt_new_passphrase("passphrase for the new repository",
                                       "set NOVA_PASSWORD, use --password-file FILE, or run "
                                       "on a terminal", out, size);
        if (rc != NOVA_EXIT_OK)
            return rc;
    }
    if (out[0] == '\0') {
        fputs("nova: KEY_001: an empty passphrase is not accepted\n"
              "hint: choose a passphrase, or set NOVA_PASSWORD\n", stderr);
        return NOVA_EXIT_USAGE;
    }
    return NOVA_EXIT_OK;
}

/* Checks a compression spec before anything is asked or created. The library checks the
 * options before it looks at the location, so an empty location probes the spec without
 * side effects: a bad spec is NOVA_EINVALID, a good one gets as far as "no location". */
static int check_compression(const char *spec, int from_config, const cli_globals *g)
{
    nova_repository_options probe = NOVA_REPOSITORY_OPTIONS_INIT;
    nova_repository *none = NULL;
    int rc;

    if (!spec)
        return NOVA_EXIT_OK;
    probe.compression = spec;
    rc = nova_repository_init(&none, "", "probe", &probe);
    nova_repository_close(none);
    if (rc != NOVA_EINVALID)
        return NOVA_EXIT_OK;
    if (from_config) {
        fprintf(stderr, "nova: %s: %s: key 'compression': %s (%s)\nhint: %s\n",
                nova_error_user_code(NOVA_ECONFIG), g->config_path ? g->config_path : "config",
                nova_error_last()->message, nova_error_message(NOVA_ECONFIG),
                nova_error_hint(NOVA_ECONFIG));
        return NOVA_EXIT_CONFIG;
    }
    fprintf(stderr, "nova init: --compression: %s\n", nova_error_last()->message);
    return NOVA_EXIT_USAGE;
}

/* Explains a failed init; the location is named whatever went wrong. */
static int report_init_error(int rc, const char *location)
{
    char line[1024];

    if (rc == NOVA_EEXISTS) {
        fprintf(stderr, "nova: %s: a repository already exists at '%s' (object already "
                        "exists)\nhint: use it as it is, or give another location with --repo\n",
                nova_error_user_code(rc), location);
        return NOVA_EXIT_ERROR;
    }
    fprintf(stderr, "nova: unable to create a repository at '%s'\n", location);
    fprintf(stderr, "nova: %s\n", nova_error_format(rc, line, sizeof(line)));
    if (nova_error_hint(rc))
        fprintf(stderr, "hint: %s\n", nova_error_hint(rc));
    return cli_exit_code(rc);
}

static void print_created(const cli_globals *g, const nova_repository *repo, const char *location,
                          const char *compression)
{
    char id[65];
    nova_repository_id(repo, id);
    if (g->json) {
        json_t *out = json_pack("{s:s, s:s, s:s}", "repository", location, "repository_id", id,
                                "compression", compression);
        json_dumpf(out, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(out);
    } else if (!g->quiet) {
        printf("created a repository at %s (id %.12s, compression %s)\n", location, id,
               compression);
        printf("keep the passphrase safe: without it the backups cannot be read\n");
    }
}

int cli_cmd_init(const cli_globals *g, int argc, char **argv)
{
    nova_repository_options options = NOVA_REPOSITORY_OPTIONS_INIT;
    nova_repository *repo = NULL;
    nova_config *config = NULL;
    char passphrase[1024];
    const char *location, *compression;
    init_args args;
    int exit_code, rc;

    exit_code = parse_args(&args, argc, argv);
    if (exit_code != NOVA_EXIT_OK)
        return exit_code;
    rc = cli_load_config(g, &config);
    if (rc < 0)
        return cli_report_error(rc);
    location = cli_repo_location(g, config);
    if (!location) {
        fputs("nova: REPO_003: no repository location given\n"
              "hint: use --repo DIR, set NOVA_REPOSITORY, or set storage.local_path in the "
              "config\n", stderr);
        nova_config_free(config);
        return NOVA_EXIT_USAGE;
    }
    compression = args.compression ? args.compression : config->compression;
    exit_code = check_compression(compression, !args.compression, g);
    if (exit_code != NOVA_EXIT_OK) {
        nova_config_free(config);
        return exit_code;
    }
    exit_code = new_repository_passphrase(g, passphrase, sizeof(passphrase));
    if (exit_code == NOVA_EXIT_OK) {
        options.compression = compression;
        options.kdf_log2_n = args.kdf_cost;
        options.config = config;
        rc = nova_repository_init(&repo, location, passphrase, &options);
        if (rc < 0)
            exit_code = report_init_error(rc, location);
        else
            print_created(g, repo, location, compression ? compression : DEFAULT_COMPRESSION);
    }
    memset(passphrase, 0, sizeof(passphrase));
    nova_repository_close(repo);
    nova_config_free(config);
    return exit_code;
}
