/*
 * targets.c -- every storage target the config names, opened as one replicated
 * repository: storage.local_path and storage.s3 / azure / gcs, in that order, behind the
 * replicating storage (storage/replicate.h). The first target is the primary: reads and
 * listings go there first.
 *
 * Invariant: a repository opened over several targets is the same repository on each of
 * them (byte-identical `config`), checked at open, so one backup can never put snapshots
 * into a target that lacks the packs and keys of the others.
 */
#include "api/handle.h"
#include "api/replicas_internal.h"

#include "common/err.h"
#include "nova/config.h"
#include "repo/repo_config.h"
#include "storage/replicate.h"

#include <stdio.h>
#include <string.h>

size_t nova_config_target_count(const nova_config *config)
{
    size_t n = 0;
    if (!config)
        return 0;
    n += config->storage.local_path && config->storage.local_path[0];
    n += config->storage.s3.present != 0;
    n += config->storage.azure.present != 0;
    n += config->storage.gcs.present != 0;
    return n;
}

const char *nova_config_target_location(const nova_config *config, size_t i)
{
    const char *found[4];
    size_t n = 0;
    if (!config)
        return NULL;
    if (config->storage.local_path && config->storage.local_path[0])
        found[n++] = config->storage.local_path;
    if (config->storage.s3.present)
        found[n++] = "s3:";
    if (config->storage.azure.present)
        found[n++] = "azure:";
    if (config->storage.gcs.present)
        found[n++] = "gcs:";
    return i < n ? found[i] : NULL;
}

/* A name for messages: the path, or the scheme with the bucket or container (never a
 * credential). */
static void target_name(char *out, size_t size, const nova_config *config, const char *location)
{
    const char *place = NULL;
    if (strcmp(location, "s3:") == 0)
        place = config->storage.s3.bucket;
    else if (strcmp(location, "azure:") == 0)
        place = config->storage.azure.container;
    else if (strcmp(location, "gcs:") == 0)
        place = config->storage.gcs.bucket;
    snprintf(out, size, "%s%s", location, place ? place : "");
}

/* Reads "config" of every target: all must have the same bytes, or none any. */
static int check_same_repository(nova_storage *const *targets, char names[][300], size_t count)
{
    nova_buf first = NOVA_BUF_INIT, bytes = NOVA_BUF_INIT;
    size_t holder = count, missing = count;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < count; i++) {
        rc = nova_storage_get(targets[i], NOVA_REPO_CONFIG_NAME, 0, NOVA_STORAGE_WHOLE, &bytes);
        if (rc == NOVA_ENOTFOUND) {
            rc = 0;
            if (missing == count)
                missing = i;
            continue;
        }
        if (rc < 0) {
            const nova_error_detail d = *nova_error_last();
            rc = nova_error_set(d.code, d.sys_errno, d.file, d.line, "storage target '%s': %s",
                                names[i], d.message);
            break;
        }
        if (holder == count) {
            holder = i;
            rc = nova_buf_append(&first, bytes.data, bytes.len);
        } else if (bytes.len != first.len || memcmp(bytes.data, first.data, first.len) != 0)
            rc = nova_fail(NOVA_EINVALID, "storage target '%s' holds another repository than "
                           "'%s' (their configs differ): each target of the config must hold "
                           "the same repository", names[i], names[holder]);
    }
    if (rc == 0 && holder < count && missing < count)
        rc = nova_fail(NOVA_ENO_REPO, "storage target '%s' holds no repository while '%s' "
                       "does: make it a replica with 'nova copy --to %s' first",
                       names[missing], names[holder], names[missing]);
    nova_buf_free(&first);
    nova_buf_free(&bytes);
    return rc;
}

int nova_location_open_config_targets(nova_storage **out, const nova_config *config, int create)
{
    nova_storage *targets[NOVA_REPLICATE_MAX_TARGETS] = {NULL};
    char names[NOVA_REPLICATE_MAX_TARGETS][300];
    const char *name_ptrs[NOVA_REPLICATE_MAX_TARGETS];
    size_t count = nova_config_target_count(config);
    int rc = 0;

    *out = NULL;
    if (count == 0)
        return nova_fail(NOVA_ECONFIG, "the config names no storage target (set "
                         "storage.local_path, storage.s3, storage.azure or storage.gcs)");
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *location = nova_config_target_location(config, i);
        target_name(names[i], sizeof(names[i]), config, location);
        name_ptrs[i] = names[i];
        rc = nova_location_open_storage(&targets[i], location, config, create);
    }
    if (rc == 0 && !create && count > 1)
        rc = check_same_repository(targets, names, count);
    if (rc < 0) {
        for (size_t i = 0; i < count; i++)
            nova_storage_free(targets[i]);
        return rc;
    }
    if (count == 1) {
        *out = targets[0];
        return 0;
    }
    return nova_storage_replicate_new(out, targets, name_ptrs, count);
}
