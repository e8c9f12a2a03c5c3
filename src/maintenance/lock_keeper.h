/*
 * lock_keeper.h -- holding a repository lock for a long operation (private to maintenance).
 *
 * Takes a lock with nova_lock_acquire and keeps it alive: nova_maint_lock_refresh, called
 * at the operation's checkpoints, replaces the lock object by one with the same lock id
 * and a later expiry once a third of the time to live has passed (the new object is
 * stored before the old one is deleted, so the lock is never absent).
 */
#ifndef NOVA_MAINTENANCE_LOCK_KEEPER_H
#define NOVA_MAINTENANCE_LOCK_KEEPER_H

#include "repo/lock.h"
#include "repo/repository.h"

#include <stdint.h>

/* How long maintenance locks live without a refresh. */
#define NOVA_MAINT_LOCK_TTL_NS (30LL * 60 * 1000000000LL)

typedef struct nova_maint_lock {
    nova_repo *repo;
    nova_lock lock;
    char name[NOVA_LOCK_NAME_SIZE]; /* "" when not held */
    int64_t ttl_ns;
    int64_t refreshed_ns;
} nova_maint_lock;

int64_t nova_maint_now_ns(void);

/* Acquires the lock; NOVA_ELOCKED (with the holder named) on conflict. */
int nova_maint_lock_take(nova_maint_lock *out, nova_repo *repo, int exclusive,
                         const char *description, int64_t ttl_ns);
/* Renews the lock when a third of its time to live has passed; 0 otherwise. */
int nova_maint_lock_refresh(nova_maint_lock *lock);
/* Releases the lock (when held); returns the deletion's result. */
int nova_maint_lock_drop(nova_maint_lock *lock);

/* Finds the stale (expired, or of a dead process of this host) lock objects other than `own` (may be NULL) and, when `remove` is
 * set, deletes them; *found (may be NULL) gets their number. Locks that cannot be opened
 * are left alone. */
int nova_maint_stale_locks(nova_repo *repo, const char *own, int remove, uint64_t *found);

#endif
