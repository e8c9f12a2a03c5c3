/*
 * unlock.c -- nova_unlock: removes the locks that can no longer be released by their
 * holders (expired, or of a process of this host that was killed), or every lock.
 */
#include "nova/maintenance.h"

#include "api/handle.h"
#include "common/err.h"
#include "maintenance/lock_keeper.h"

#include <stdlib.h>
#include <string.h>

typedef struct all_locks {
    nova_storage *storage;
    uint64_t removed;
} all_locks;

static int remove_lock(const char *name, uint64_t size, void *payload)
{
    all_locks *ctx = payload;
    int rc;
    (void)size;
    rc = nova_storage_del(ctx->storage, name);
    if (rc == 0)
        ctx->removed++;
    return rc == NOVA_ENOTFOUND ? 0 : rc;
}

int nova_unlock(nova_repository *repo, int all, uint64_t *removed)
{
    all_locks ctx = {repo->repo->storage, 0};
    int rc;

    if (!all)
        return nova_maint_stale_locks(repo->repo, NULL, 1, removed);
    rc = nova_storage_list(repo->repo->storage, NOVA_LOCK_PREFIX, remove_lock, &ctx);
    if (removed)
        *removed = ctx.removed;
    return rc;
}
