/*
 * cmd_unlock.c -- `nova unlock [--all]`: removes stale locks.
 */
#include "cli/cli.h"

#include "nova/backup.h"
#include "nova/config.h"
#include "nova/maintenance.h"

#include <stdio.h>
#include <string.h>

const char cli_unlock_usage[] =
    "usage: nova unlock [--all] [--json]\n"
    "\n"
    "Removes stale locks: locks past their expiry, and locks of processes of this host that\n"
    "no longer exist (a backup or prune that was killed). Running operations keep theirs.\n"
    "  --all   remove every lock; only when no other nova process uses the repository\n";

int cli_cmd_unlock(const cli_globals *globals, int argc, char **argv)
{
    nova_repository *repo = NULL;
    nova_config *config = NULL;
    uint64_t removed = 0;
    int all = 0, rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0) {
            all = 1;
        } else {
            fprintf(stderr, "nova unlock: unexpected argument '%s'\nhint: run 'nova unlock --help'\n",
                    argv[i]);
            return NOVA_EXIT_USAGE;
        }
    }
    rc = cli_open_repository(globals, &config, &repo);
    if (rc != NOVA_EXIT_OK)
        return rc;
    rc = nova_unlock(repo, all, &removed);
    if (rc < 0) {
        rc = cli_report_error(rc);
    } else {
        if (globals->json)
            printf("{\"locks_removed\": %llu}\n", (unsigned long long)removed);
        else if (!globals->quiet)
            printf("removed %llu stale lock%s\n", (unsigned long long)removed,
                   removed == 1 ? "" : "s");
        rc = NOVA_EXIT_OK;
    }
    cli_close_repository(config, repo);
    return rc;
}
