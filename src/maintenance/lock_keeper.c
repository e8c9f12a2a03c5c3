/*
 * lock_keeper.c -- acquiring, refreshing and releasing the lock of a maintenance run,
 * and removing expired locks. See lock_keeper.h.
 */
#include "maintenance/lock_keeper.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t nova_maint_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int nova_maint_lock_take(nova_maint_lock *out, nova_repo *repo, int exclusive,
                         const char *description, int64_t ttl_ns)
{
    memset(out, 0, sizeof(*out));
    out->repo = repo;
    out->ttl_ns = ttl_ns;
    NOVA_TRY(nova_lock_init(&out->lock, exclusive, description, ttl_ns));
    out->refreshed_ns = out->lock.created_ns;
    return nova_lock_acquire(repo->storage, repo->keys.enc, &out->lock, out->lock.created_ns,
                             out->name);
}

int nova_maint_lock_refresh(nova_maint_lock *l)
{
    char new_name[NOVA_LOCK_NAME_SIZE];
    nova_buf sealed = NOVA_BUF_INIT;
    nova_lock renewed;
    int64_t now = nova_maint_now_ns();
    int rc;

    if (!l->name[0] || now - l->refreshed_ns < l->ttl_ns / 3)
        return 0;
    renewed = l->lock;
    renewed.expires_ns = now > INT64_MAX - l->ttl_ns ? INT64_MAX : now + l->ttl_ns;
    rc = nova_lock_seal(&sealed, new_name, &renewed, l->repo->keys.enc);
    if (rc == 0)
        rc = nova_storage_put(l->repo->storage, new_name, sealed.data, sealed.len);
    nova_buf_free(&sealed);
    if (rc < 0)
        return rc;
    /* the renewed lock is in place; the old object only has to go */
    (void)nova_lock_release(l->repo->storage, l->name);
    memcpy(l->name, new_name, sizeof(l->name));
    l->lock = renewed;
    l->refreshed_ns = now;
    return 0;
}

int nova_maint_lock_drop(nova_maint_lock *l)
{
    int rc;
    if (!l->name[0])
        return 0;
    rc = nova_lock_release(l->repo->storage, l->name);
    l->name[0] = '\0';
    return rc == NOVA_ENOTFOUND ? 0 : rc;
}

typedef struct lock_names {
    char (*names)[NOVA_LOCK_NAME_SIZE];
    size_t count, cap;
} lock_names;

static int collect_lock(const char *name, uint64_t size, void *payload)
{
    lock_names *l = payload;
    (void)size;
    if (strlen(name) + 1 != NOVA_LOCK_NAME_SIZE)
        return 0;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        void *grown = realloc(l->names, cap * sizeof(*l->names));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to list the locks");
        l->names = grown;
        l->cap = cap;
    }
    memcpy(l->names[l->count++], name, NOVA_LOCK_NAME_SIZE);
    return 0;
}

int nova_maint_stale_locks(nova_repo *repo, const char *own, int remove, uint64_t *found)
{
    lock_names list = {NULL, 0, 0};
    nova_buf bytes = NOVA_BUF_INIT;
    int64_t now = nova_maint_now_ns();
    uint64_t count = 0;
    int rc = nova_storage_list(repo->storage, NOVA_LOCK_PREFIX, collect_lock, &list);

    for (size_t i = 0; rc == 0 && i < list.count; i++) {
        nova_lock other;
        if (own && strcmp(list.names[i], own) == 0)
            continue;
        rc = nova_storage_get(repo->storage, list.names[i], 0, NOVA_STORAGE_WHOLE, &bytes);
        if (rc == 0)
            rc = nova_lock_open(&other, bytes.data, bytes.len, repo->keys.enc, list.names[i]);
        if (rc == NOVA_ENOTFOUND || rc == NOVA_ECORRUPT || rc == NOVA_EVERSION) {
            rc = 0; /* gone meanwhile, or not ours to judge */
            continue;
        }
        if (rc == 0 && nova_lock_is_stale(&other, now)) {
            count++;
            if (!remove)
                continue;
            rc = nova_storage_del(repo->storage, list.names[i]);
            if (rc == NOVA_ENOTFOUND)
                rc = 0;
        }
    }
    free(list.names);
    nova_buf_free(&bytes);
    if (found)
        *found = count;
    return rc;
}
