/*
 * replicas.c -- copies of a repository on other storage: the public calls of
 * nova/replicas.h (nova_copy, nova_replicas_status, nova_replicas_repair), which open
 * locations and hand the storages to the engines of replicas_copy.c, replicas_status.c
 * and replicas_repair.c. Design and ordering rules in docs/format-replication.md; the
 * files of this module are listed in replicas_internal.h.
 *
 * Invariants:
 *   - every storage opened here is freed here, whatever the outcome;
 *   - a location that cannot be opened is not an error for status: it is reported as an
 *     unavailable copy; repair needs its target open, and refuses to repair a copy from
 *     itself; copy refuses to copy a repository onto itself.
 */
#include "api/handle.h"
#include "api/replicas_internal.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

/* ---- copy ------------------------------------------------------------------------------- */

/* The ids of the backups options name (ids, unique prefixes or "latest"); *ids is NULL
 * when none is named, else malloc'd (also on failure), with *count resolved. */
static int resolve_backups(nova_id **ids, size_t *count, nova_repository *source,
                           const nova_copy_options *o)
{
    int rc = 0;

    *ids = NULL;
    *count = 0;
    if (!o || o->backup_id_count == 0)
        return 0;
    *ids = calloc(o->backup_id_count, sizeof(**ids));
    if (!*ids)
        return nova_fail(NOVA_ENOMEM, "unable to select %zu backups", o->backup_id_count);
    for (size_t i = 0; rc == 0 && i < o->backup_id_count; i++) {
        nova_backup_info *info = NULL;
        rc = nova_get_backup(source, o->backup_ids[i], &info);
        if (rc == 0)
            rc = nova_id_from_hex(&(*ids)[(*count)++], info->backup_id);
        nova_backup_info_free(info);
    }
    return rc;
}

int nova_copy(nova_repository *source, const char *target_location,
              const nova_copy_options *o, nova_copy_result *result)
{
    nova_replica_storage target = {NULL, target_location, 0, NULL};
    nova_id *ids = NULL;
    size_t count = 0;
    int rc;

    if (result)
        memset(result, 0, sizeof(*result));
    if (o && o->version != NOVA_COPY_OPTIONS_VERSION)
        return nova_fail(NOVA_EINVALID, "copy options of version %u (want %u)", o->version,
                         NOVA_COPY_OPTIONS_VERSION);
    if (!target_location || !target_location[0])
        return nova_fail(NOVA_EINVALID, "no target location to copy to");
    if (strcmp(target_location, source->location) == 0)
        return nova_fail(NOVA_EINVALID, "'%s' is the repository itself: copy to another "
                         "location", target_location);
    rc = resolve_backups(&ids, &count, source, o);
    if (rc == 0)
        rc = nova_location_open_storage(&target.storage, target_location, o ? o->config : NULL,
                                        1);
    if (rc == 0)
        rc = nova_copy_to_storage(source->repo, source->location, &target, ids, count, 0, o,
                                  result);
    nova_storage_free(target.storage);
    free(ids);
    return rc;
}

/* ---- status and repair ------------------------------------------------------------------ */

/* Opens each location; a failure is kept in the entry (storage NULL) for the report. */
static int open_copies(nova_replica_storage **out, char ***messages, const char *const *locations,
                       size_t count, const struct nova_config *config, int create_first)
{
    nova_replica_storage *copies = calloc(count + 1, sizeof(*copies));
    char **texts = calloc(count + 1, sizeof(*texts));

    *out = NULL;
    *messages = NULL;
    if (!copies || !texts) {
        free(copies);
        free(texts);
        return nova_fail(NOVA_ENOMEM, "unable to open %zu copies", count);
    }
    for (size_t i = 0; i < count; i++) {
        int rc = nova_location_open_storage(&copies[i].storage, locations[i], config,
                                            create_first && i == 0);
        copies[i].name = locations[i];
        if (rc < 0) {
            copies[i].storage = NULL;
            copies[i].open_code = rc;
            texts[i] = replica_dup_text(nova_error_last()->message);
            copies[i].open_message = texts[i];
        }
    }
    *out = copies;
    *messages = texts;
    return 0;
}

static void close_copies(nova_replica_storage *copies, char **messages, size_t count)
{
    for (size_t i = 0; copies && i < count; i++) {
        nova_storage_free(copies[i].storage);
        free(messages[i]);
    }
    free(copies);
    free(messages);
}

int nova_replicas_status(const char *const *locations, size_t count, const char *passphrase,
                         const nova_replicas_options *o, nova_replicas_report **out)
{
    nova_replica_storage *copies = NULL;
    char **messages = NULL;
    int rc;

    *out = NULL;
    NOVA_TRY(open_copies(&copies, &messages, locations, count, o ? o->config : NULL, 0));
    rc = nova_replicas_status_storages(copies, count, passphrase, o, out);
    close_copies(copies, messages, count);
    return rc;
}

int nova_replicas_repair(const char *target, const char *const *sources, size_t source_count,
                         const char *passphrase, const nova_replicas_options *o,
                         nova_repair_result **out)
{
    nova_replica_storage *copies = NULL;
    char **messages = NULL;
    const char **locations;
    int rc;

    *out = NULL;
    if (!target || source_count == 0)
        return nova_fail(NOVA_EINVALID, "a repair needs a target and at least one source");
    locations = calloc(source_count + 1, sizeof(*locations));
    if (!locations)
        return nova_fail(NOVA_ENOMEM, "unable to list the copies");
    locations[0] = target;
    for (size_t i = 0; i < source_count; i++) {
        if (strcmp(sources[i], target) == 0) {
            free(locations);
            return nova_fail(NOVA_EINVALID, "'%s' cannot be repaired from itself", target);
        }
        locations[i + 1] = sources[i];
    }
    rc = open_copies(&copies, &messages, locations, source_count + 1, o ? o->config : NULL, 1);
    if (rc == 0 && !copies[0].storage)
        rc = nova_error_set(copies[0].open_code, 0, __FILE__, __LINE__, "%s",
                            messages[0] ? messages[0] : "unable to open the target");
    if (rc == 0)
        rc = nova_replicas_repair_storages(&copies[0], copies + 1, source_count, passphrase, o,
                                           out);
    close_copies(copies, messages, source_count + 1);
    free(locations);
    return rc;
}
