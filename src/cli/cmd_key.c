/*
 * cmd_key.c -- `nova key add|remove|passwd|list`: the repository's key slots.
 *
 * Each key slot wraps the same master keys under one passphrase, so slots come and go
 * without touching any data. The repository is opened with the usual passphrase
 * (--password-file, $NOVA_PASSWORD, prompt); a new passphrase comes from
 * --new-password-file, $NOVA_NEW_PASSWORD, or is asked twice on a terminal. The library
 * refuses to remove the last usable slot.
 */
#include "cli/cli.h"

#include "nova/backup.h"
#include "nova/error.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


const char cli_key_usage[] =
    "usage: nova key list\n"
    "       nova key add [--new-password-file FILE]\n"
    "       nova key remove ID\n"
    "       nova key passwd [--new-password-file FILE]\n"
    "\n"
    "Manages key slots: every slot opens the repository with its own passphrase.\n"
    "  list     the slots; the one the current passphrase opened is marked\n"
    "  add      adds a slot for a new passphrase\n"
    "  remove   removes a slot by id or unique id prefix (never the last one)\n"
    "  passwd   changes the current passphrase (a new slot replaces the current one)\n"
    "\n"
    "The repository opens with --password-file, $NOVA_PASSWORD or a prompt. The new\n"
    "passphrase comes from --new-password-file FILE, $NOVA_NEW_PASSWORD, or is asked\n"
    "twice on a terminal. --json prints the result as JSON.\n";

#define SLOT_ID_LEN 64
#define MIN_PREFIX 4

typedef struct key_args {
    const char *action;
    const char *slot;
    const char *new_password_file;
} key_args;

static int parse_args(key_args *a, int argc, char **argv)
{
    static const struct option options[] = {
        {"new-password-file", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(a, 0, sizeof(*a));
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        if (c == 'n') {
            a->new_password_file = optarg;
            continue;
        }
        fprintf(stderr, c == ':' ? "nova key: option '%s' needs a value\n"
                                 : "nova key: unknown option '%s'\n",
                argv[optind - 1]);
        return NOVA_EXIT_USAGE;
    }
    if (optind >= argc) {
        fputs("nova key: which action? (add, remove, passwd, list)\n"
              "hint: run 'nova key --help'\n", stderr);
        return NOVA_EXIT_USAGE;
    }
    a->action = argv[optind++];
    if (strcmp(a->action, "remove") == 0) {
        if (optind >= argc) {
            fputs("nova key remove: which key slot? (see 'nova key list')\n", stderr);
            return NOVA_EXIT_USAGE;
        }
        a->slot = argv[optind++];
    } else if (strcmp(a->action, "add") != 0 && strcmp(a->action, "passwd") != 0 &&
               strcmp(a->action, "list") != 0) {
        fprintf(stderr, "nova key: unknown action '%s' (use add, remove, passwd or list)\n",
                a->action);
        return NOVA_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "nova key %s: unexpected argument '%s'\n", a->action, argv[optind]);
        return NOVA_EXIT_USAGE;
    }
    if (a->new_password_file && strcmp(a->action, "add") != 0 &&
        strcmp(a->action, "passwd") != 0) {
        fprintf(stderr, "nova key %s: --new-password-file applies to add and passwd only\n",
                a->action);
        return NOVA_EXIT_USAGE;
    }
    return NOVA_EXIT_OK;
}

static int read_first_line(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t len;

    if (!f) {
        fprintf(stderr, "nova: unable to open password file '%s': %s\n", path, strerror(errno));
        return NOVA_EXIT_USAGE;
    }
    if (!fgets(out, (int)size, f))
        out[0] = '\0';
    fclose(f);
    len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    return NOVA_EXIT_OK;
}

static int new_passphrase(const key_args *a, char *out, size_t size)
{
    const char *env = getenv("NOVA_NEW_PASSWORD");
    int rc = NOVA_EXIT_OK;

    out[0] = '\0';
    if (a->new_password_file)
        rc = read_first_line(a->new_password_file, out, size);
    else if (env)
        snprintf(out, size, "%s", env);
    else
        rc = cli_prompt_new_passphrase("new passphrase",
                                       "set NOVA_NEW_PASSWORD, use --new-password-file FILE, "
                                       "or run on a terminal", out, size);
    if (rc == NOVA_EXIT_OK && out[0] == '\0') {
        fputs("nova: KEY_001: an empty passphrase is not accepted\n", stderr);
        rc = NOVA_EXIT_USAGE;
    }
    return rc;
}

/* ---- listing ----------------------------------------------------------------------- */

typedef struct slot_list {
    char (*ids)[SLOT_ID_LEN + 1];
    int *current;
    size_t count;
} slot_list;

static int collect_slot(const char *slot_id, int is_current, void *payload)
{
    slot_list *list = payload;
    char(*ids)[SLOT_ID_LEN + 1] = realloc(list->ids, (list->count + 1) * sizeof(*ids));
    int *current;

    if (!ids)
        return NOVA_ENOMEM;
    list->ids = ids;
    current = realloc(list->current, (list->count + 1) * sizeof(*current));
    if (!current)
        return NOVA_ENOMEM;
    list->current = current;
    snprintf(list->ids[list->count], SLOT_ID_LEN + 1, "%s", slot_id);
    list->current[list->count++] = is_current;
    return 0;
}

static void slot_list_free(slot_list *list)
{
    free(list->ids);
    free(list->current);
    memset(list, 0, sizeof(*list));
}

static int load_slots(nova_repository *repo, slot_list *list)
{
    memset(list, 0, sizeof(*list));
    return nova_key_list(repo, collect_slot, list);
}

static int key_list(const cli_globals *g, nova_repository *repo)
{
    slot_list list;
    int rc = load_slots(repo, &list);

    if (rc < 0) {
        slot_list_free(&list);
        return cli_report_error(rc);
    }
    if (g->json) {
        json_t *out = json_array();
        for (size_t i = 0; i < list.count; i++)
            json_array_append_new(out, json_pack("{s:s, s:b}", "id", list.ids[i], "current",
                                                 list.current[i]));
        json_dumpf(out, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(out);
    } else {
        for (size_t i = 0; i < list.count; i++)
            printf("%s%s\n", list.ids[i], list.current[i] ? "  (current)" : "");
    }
    slot_list_free(&list);
    return NOVA_EXIT_OK;
}

/* The current slot's id into out ("" when none is marked). */
static int current_slot(nova_repository *repo, char out[SLOT_ID_LEN + 1])
{
    slot_list list;
    int rc = load_slots(repo, &list);
    out[0] = '\0';
    for (size_t i = 0; rc == 0 && i < list.count; i++)
        if (list.current[i])
            memcpy(out, list.ids[i], SLOT_ID_LEN + 1);
    slot_list_free(&list);
    return rc;
}

/* ---- changes ----------------------------------------------------------------------- */

static void print_slot_result(const cli_globals *g, const char *key, const char *id,
                              const char *text)
{
    if (g->json) {
        json_t *out = json_pack("{s:s}", key, id);
        json_dumpf(out, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(out);
    } else if (!g->quiet) {
        printf("%s %s\n", text, id);
    }
}

static int key_add(const cli_globals *g, const key_args *a, nova_repository *repo)
{
    char passphrase[1024], id[SLOT_ID_LEN + 1];
    int rc = new_passphrase(a, passphrase, sizeof(passphrase));

    if (rc != NOVA_EXIT_OK)
        return rc;
    rc = nova_key_add(repo, passphrase, id);
    memset(passphrase, 0, sizeof(passphrase));
    if (rc < 0)
        return cli_report_error(rc);
    print_slot_result(g, "slot_id", id, "added key slot");
    return NOVA_EXIT_OK;
}

static int key_passwd(const cli_globals *g, const key_args *a, nova_repository *repo)
{
    char passphrase[1024], id[SLOT_ID_LEN + 1];
    int rc = new_passphrase(a, passphrase, sizeof(passphrase));

    if (rc != NOVA_EXIT_OK)
        return rc;
    rc = nova_key_change_passphrase(repo, passphrase);
    memset(passphrase, 0, sizeof(passphrase));
    if (rc == 0)
        rc = current_slot(repo, id);
    if (rc < 0)
        return cli_report_error(rc);
    print_slot_result(g, "slot_id", id, "changed the passphrase; the key slot is now");
    return NOVA_EXIT_OK;
}

/* Finds the one slot whose id starts with prefix (at least 4 hex digits). */
static int resolve_slot(const slot_list *list, const char *prefix, size_t *index)
{
    size_t len = strlen(prefix), found = 0;

    if (len < MIN_PREFIX || len > SLOT_ID_LEN) {
        fprintf(stderr, "nova key remove: '%s' is not a key slot id (give %d to %d hex "
                        "digits; see 'nova key list')\n", prefix, MIN_PREFIX, SLOT_ID_LEN);
        return NOVA_EXIT_USAGE;
    }
    for (size_t i = 0; i < list->count; i++) {
        if (strncasecmp(list->ids[i], prefix, len) == 0) {
            *index = i;
            found++;
        }
    }
    if (found == 1)
        return NOVA_EXIT_OK;
    if (found == 0)
        fprintf(stderr, "nova: no key slot '%s' in this repository\nhint: run 'nova key "
                        "list'\n", prefix);
    else
        fprintf(stderr, "nova key remove: '%s' matches %zu key slots; give more digits\n",
                prefix, found);
    return found == 0 ? NOVA_EXIT_ERROR : NOVA_EXIT_USAGE;
}

static int key_remove(const cli_globals *g, const key_args *a, nova_repository *repo)
{
    slot_list list;
    size_t index = 0;
    int rc = load_slots(repo, &list), exit_code;

    if (rc < 0) {
        slot_list_free(&list);
        return cli_report_error(rc);
    }
    exit_code = resolve_slot(&list, a->slot, &index);
    if (exit_code == NOVA_EXIT_OK) {
        rc = nova_key_remove(repo, list.ids[index]);
        if (rc < 0) {
            exit_code = cli_report_error(rc);
        } else {
            print_slot_result(g, "removed", list.ids[index], "removed key slot");
            if (list.current[index] && !g->json && !g->quiet)
                printf("note: this was the slot of the passphrase in use; use another one "
                       "from now on\n");
        }
    }
    slot_list_free(&list);
    return exit_code;
}

static int run_action(const cli_globals *g, const key_args *a, nova_repository *repo)
{
    if (strcmp(a->action, "list") == 0)
        return key_list(g, repo);
    if (strcmp(a->action, "add") == 0)
        return key_add(g, a, repo);
    if (strcmp(a->action, "passwd") == 0)
        return key_passwd(g, a, repo);
    return key_remove(g, a, repo);
}

int cli_cmd_key(const cli_globals *g, int argc, char **argv)
{
    struct nova_config *config = NULL;
    nova_repository *repo = NULL;
    key_args args;
    int exit_code = parse_args(&args, argc, argv);

    if (exit_code != NOVA_EXIT_OK)
        return exit_code;
    exit_code = cli_open_repository(g, &config, &repo);
    if (exit_code == NOVA_EXIT_OK)
        exit_code = run_action(g, &args, repo);
    cli_close_repository(config, repo);
    return exit_code;
}
