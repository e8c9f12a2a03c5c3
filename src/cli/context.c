/*
 * context.c -- what every command needs before it starts: the configuration, the
 * repository location and the passphrase, each from its documented sources in order.
 */
#include "cli/cli.h"

#include "nova/backup.h"
#include "nova/config.h"
#include "nova/replicas.h"
#include "nova/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* The config's own parser sets the detail; only the codec name needs a second look. */
int cli_load_config(const cli_globals *g, nova_config **out)
{
    int rc = g->config_path ? nova_config_load_file(out, g->config_path)
                            : nova_config_new_default(out);
    if (rc < 0)
        return rc;
    /* main.c checked both values when it took the options */
    if (g->connections)
        (*out)->storage.connections = strtol(g->connections, NULL, 10);
    if (g->retry_deadline)
        nova_duration_parse(&(*out)->storage.retry_deadline_seconds, g->retry_deadline);
    return 0;
}

const char *cli_repo_location(const cli_globals *g, const nova_config *config)
{
    const char *env = getenv("NOVA_REPOSITORY");
    if (g->repo)
        return g->repo;
    if (env && env[0])
        return env;
    /* several targets in the config: one repository replicated across all of them */
    if (config && nova_config_target_count(config) > 1)
        return NOVA_CONFIG_TARGETS_LOCATION;
    if (config && config->storage.local_path)
        return config->storage.local_path;
    /* a config that names one cloud target: its bucket or container is the repository */
    if (config && config->storage.s3.present)
        return "s3:";
    if (config && config->storage.azure.present)
        return "azure:";
    if (config && config->storage.gcs.present)
        return "gcs:";
    return NULL;
}

static void strip_newline(char *text)
{
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
}

static int read_password_file(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "nova: unable to open password file '%s': %s\n", path, strerror(errno));
        return -1;
    }
    if (!fgets(out, (int)size, f))
        out[0] = '\0';
    fclose(f);
    strip_newline(out);
    return 0;
}

static int prompt_password(const char *prompt, char *out, size_t size)
{
    struct termios old, quiet;
    int restored = 0;

    fprintf(stderr, "%s", prompt);
    fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        restored = tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == 0;
    }
    if (!fgets(out, (int)size, stdin))
        out[0] = '\0';
    if (restored)
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
    fputc('\n', stderr);
    strip_newline(out);
    return 0;
}

int cli_get_password(const cli_globals *g, char *out, size_t size, int allow_prompt)
{
    const char *env = getenv("NOVA_PASSWORD");
    out[0] = '\0';
    if (g->password_file)
        return read_password_file(g->password_file, out, size);
    if (env) {
        snprintf(out, size, "%s", env);
        return 0;
    }
    if (allow_prompt && isatty(STDIN_FILENO))
        return prompt_password("repository passphrase: ", out, size);
    return 1; /* none available */
}

int cli_open_repository(const cli_globals *g, nova_config **config_out, nova_repository **out)
{
    nova_repository_options options = NOVA_REPOSITORY_OPTIONS_INIT;
    char passphrase[1024];
    const char *location;
    int rc;

    *out = NULL;
    *config_out = NULL;
    rc = cli_load_config(g, config_out);
    if (rc < 0)
        return cli_report_error(rc);
    location = cli_repo_location(g, *config_out);
    if (!location) {
        fprintf(stderr, "nova: REPO_003: no repository given (repository not found)\n"
                        "hint: use --repo DIR, set NOVA_REPOSITORY, or set storage.local_path in "
                        "the config\n");
        return NOVA_EXIT_REPOSITORY;
    }
    rc = cli_get_password(g, passphrase, sizeof(passphrase), 1);
    if (rc < 0)
        return NOVA_EXIT_USAGE;
    if (rc == 1) {
        fprintf(stderr, "nova: KEY_001: no passphrase given\n"
                        "hint: set NOVA_PASSWORD, use --password-file FILE, or run on a terminal\n");
        return NOVA_EXIT_PASSWORD;
    }
    options.config = *config_out;
    rc = nova_repository_open(out, location, passphrase, &options);
    memset(passphrase, 0, sizeof(passphrase));
    if (rc < 0)
        return cli_report_error(rc);
    return NOVA_EXIT_OK;
}

void cli_close_repository(nova_config *config, nova_repository *repo)
{
    nova_repository_close(repo);
    nova_config_free(config);
}
