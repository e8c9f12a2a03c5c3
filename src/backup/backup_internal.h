/*
 * backup_internal.h -- the pieces of the backup engine shared between its files (private
 * to src/backup/backup*.c and their unit tests).
 *
 *   backup.c         nova_create_backup: options, parent selection, lock, snapshot
 *   backup_paths.c   absolute, clean, sorted source paths; exclude patterns
 *   backup_claims.c  the set of chunk ids this backup stores (so none is stored twice)
 *   backup_engine.c  the parallel pipeline: workers, windows, packs, uploader, index
 *   backup_walk.c    the directory walk beside the parent snapshot, and tree building
 *   backup_lock.c    the shared repository lock, refreshed while the backup runs
 *
 * Threads: the caller's thread walks the source and builds trees (the only thread that
 * calls the user's callbacks); `repo->threads` workers read, chunk, hash, deduplicate,
 * compress and encrypt; one uploader thread stores packs and index deltas.
 */
#ifndef NOVA_BACKUP_INTERNAL_H
#define NOVA_BACKUP_INTERNAL_H

#include "api/handle.h"
#include "nova/backup.h"
#include "repo/lock.h"
#include "repo/tree.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* ---- source paths (backup_paths.c) ----------------------------------------------------- */

/* `path` made absolute (against the working directory) and lexically clean: no empty,
 * "." or ".." component, no trailing '/'. "/" stays "/". *out is malloc'd. */
int nova_bk_path_clean(char **out, const char *path);

/* Cleans every path, sorts them bytewise and drops duplicates and paths that lie inside
 * another one (which covers them). *out is a malloc'd array of malloc'd strings. */
int nova_bk_paths_prepare(char ***out, size_t *out_count, const char *const *paths,
                          size_t count);
void nova_bk_paths_free(char **paths, size_t count);

/* 1 when `path` (absolute) or its last component `name` matches one of the fnmatch(3)
 * patterns (flags 0: '*' also matches '/' in full paths). */
int nova_bk_excluded(const char *const *patterns, size_t count, const char *path,
                     const char *name);

/* ---- the ids this backup stores (backup_claims.c) ---------------------------------------- */

/* An open-addressing set of chunk ids with, per id, its stored length once known and the
 * number of references made before it was known. Not thread-safe: callers lock. */
typedef struct nova_bk_claims nova_bk_claims;

typedef struct nova_bk_claim {
    nova_id id;
    uint32_t stored_length; /* 0 until the blob is in a pack */
    uint32_t early_refs;    /* references counted before stored_length was known */
} nova_bk_claim;

int nova_bk_claims_new(nova_bk_claims **out);
void nova_bk_claims_free(nova_bk_claims *claims);
/* Looks id up; when absent, inserts it (stored_length 0) and returns 1 (the caller must
 * store the blob), else returns 0. *slot receives the claim's number either way. */
int nova_bk_claims_claim(nova_bk_claims *claims, const nova_id *id, uint32_t *slot);
nova_bk_claim *nova_bk_claims_at(nova_bk_claims *claims, uint32_t slot);
size_t nova_bk_claims_count(const nova_bk_claims *claims);

/* ---- test hooks ------------------------------------------------------------------------ */

/* Seams for the unit tests, process-wide; production never sets them. */
typedef struct nova_backup_test_hooks {
    /* called by a worker just before it opens a file for reading */
    void (*before_read)(const char *path, void *payload);
    /* called by a worker after it read a file's content, before it checks for changes */
    void (*after_read)(const char *path, void *payload);
    /* called by the walk just before it lists a directory */
    void (*before_list)(const char *path, void *payload);
    int64_t lock_ttl_ns;     /* 0 = default; the lock is refreshed at a third of it */
    unsigned pack_size;      /* 0 = default; flush packs at this many bytes */
    void *payload;
} nova_backup_test_hooks;

/* Installs hooks (copied) or removes them (NULL). Not thread-safe: set before a backup. */
void nova_backup_set_test_hooks(const nova_backup_test_hooks *hooks);
const nova_backup_test_hooks *nova_bk_hooks(void);

/* ---- the shared lock (backup_lock.c) ----------------------------------------------------- */

#define NOVA_BK_LOCK_TTL_NS (30LL * 60 * 1000000000LL)

typedef struct nova_bk_lock {
    nova_repo *repo;
    nova_lock lock;
    char name[NOVA_LOCK_NAME_SIZE]; /* "" when not held */
    int64_t ttl_ns;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int thread_running;
    int stop;
    int lost; /* a refresh failed until the lock expired: the backup must stop */
} nova_bk_lock;

/* Takes a shared lock and starts a thread that refreshes it every ttl/3. */
int nova_bk_lock_take(nova_bk_lock *lock, nova_repo *repo, const char *description);
/* 1 when the lock could not be kept alive (then NOVA_ELOCKED is set as the detail). */
int nova_bk_lock_lost(nova_bk_lock *lock);
/* Stops the refresher and deletes the lock; safe on a lock that was never taken. */
void nova_bk_lock_drop(nova_bk_lock *lock);

int64_t nova_bk_now_ns(void);

/* ---- the engine (backup_engine.c) and the walk (backup_walk.c) ------------------------ */

typedef struct nova_bk_engine nova_bk_engine;

/* Counters of one backup, filled in by the walk and the engine. */
typedef struct nova_bk_stats {
    uint64_t files_new;
    uint64_t files_changed;
    uint64_t files_unchanged;
    uint64_t bytes_read;
    uint64_t original_size;
    uint64_t compressed_size;
    uint64_t bytes_added;
    uint64_t errors;
} nova_bk_stats;

/* Everything the walk needs to know about the run. */
typedef struct nova_bk_run {
    nova_repository *handle;
    const nova_backup_options *options;
    char **paths; /* prepared (clean, sorted, not nested) */
    size_t path_count;
    const nova_id *parent_tree; /* NULL: no parent, every file is read */
    nova_bk_lock *lock;
} nova_bk_run;

/* Runs the walk and the pipeline: on success *root receives the id of the snapshot's root
 * tree, every pack and index delta is stored, and stats is filled (except bytes_added of
 * the snapshot object itself). */
int nova_bk_execute(const nova_bk_run *run, nova_id *root, nova_bk_stats *stats);

#endif
