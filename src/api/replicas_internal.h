/*
 * replicas_internal.h -- replication on opened storages (private to src/api; the public
 * calls in nova/replicas.h open locations and call these). Tests use them to put a fault
 * wrapper between Nova and a copy.
 *
 * Every storage here is borrowed: the caller opens and frees it. Names are locations
 * without secrets, used in messages and reports.
 *
 * The second half declares what the replicas_*.c files share:
 *   replicas_common.c   errors, id tables, object names, verified reads, configs, the
 *                       keys every copy shares, problem lists, long-held locks;
 *   replicas_workers.c  progress and the pool of threads that move or hash objects;
 *   replicas_view.c     one copy's listings and index files, and the walk of a backup;
 *   replicas_copy.c     copy backups to a replica (nova_copy_to_storage);
 *   replicas_status.c   compare copies (nova_replicas_status_storages);
 *   replicas_repair.c   repair a copy from others (nova_replicas_repair_storages);
 *   replicas.c          the public calls on locations.
 */
#ifndef NOVA_API_REPLICAS_INTERNAL_H
#define NOVA_API_REPLICAS_INTERNAL_H

#include "common/buf.h"
#include "nova/replicas.h"
#include "primitives/hash.h"
#include "repo/index.h"
#include "repo/keys.h"
#include "repo/lock.h"
#include "repo/repo_config.h"
#include "repo/repository.h"
#include "storage/storage.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct nova_config;

/* Every storage target the config names (nova_config_target_location order) behind one
 * replicating storage (storage/replicate.h); a single target is returned unwrapped.
 * create makes missing directories, buckets and containers (for init). Without create,
 * every target must hold the same repository (the same `config` bytes): a target with
 * none gives NOVA_ENO_REPO naming it (make it a replica with 'nova copy --to'), one with
 * another repository NOVA_EINVALID. No target at all is NOVA_ECONFIG. */
int nova_location_open_config_targets(nova_storage **out, const struct nova_config *config,
                                      int create);

typedef struct nova_replica_storage {
    nova_storage *storage;    /* borrowed; NULL when it could not be opened */
    const char *name;         /* for messages */
    int open_code;            /* storage NULL: why (a NOVA_E... code) */
    const char *open_message; /* storage NULL: the detail */
} nova_replica_storage;

/* nova_copy from an open repository to an open storage. ids (count id_count) are the
 * snapshots to copy; NULL = every snapshot of the source. With fill set, snapshots the
 * target already holds are walked too and get the packs and index files they lack
 * (what repair does). */
int nova_copy_to_storage(nova_repo *source, const char *source_name,
                         const nova_replica_storage *target, const nova_id *ids,
                         size_t id_count, int fill, const nova_copy_options *options,
                         nova_copy_result *result);

int nova_replicas_status_storages(const nova_replica_storage *copies, size_t count,
                                  const char *passphrase, const nova_replicas_options *options,
                                  nova_replicas_report **out);

int nova_replicas_repair_storages(const nova_replica_storage *target,
                                  const nova_replica_storage *sources, size_t source_count,
                                  const char *passphrase, const nova_replicas_options *options,
                                  nova_repair_result **out);

/* ======== shared by the replicas_*.c files ============================================ */

/* ---- tools (replicas_common.c) ---------------------------------------------------------- */

#define REPLICA_DEFAULT_THREADS 4u
#define REPLICA_NAME_SIZE (NOVA_STORAGE_NAME_MAX + 1)

/* The worker count for a requested one: 0 = the config's storage.connections when set,
 * else REPLICA_DEFAULT_THREADS. */
struct nova_config;
unsigned replica_threads(unsigned requested, const struct nova_config *config);
double replica_mono_seconds(void);
/* Re-raises the last error of code rc with a prefix: "<prefix>: <detail>". */
int replica_wrap_error(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Damage (the object is missing, rotten or malformed) rather than a failure to reach it. */
int replica_is_damage(int code);
/* strdup of text, "" for NULL; NULL when out of memory. */
char *replica_dup_text(const char *text);
/* NOVA_EINVALID unless options is NULL or of NOVA_REPLICAS_OPTIONS_VERSION. */
int replica_check_options(const nova_replicas_options *options);

/* ---- a map from ids to 64-bit values (replicas_common.c) -------------------------------- */

/* Open addressing; zero-initialised is empty. */
typedef struct replica_id_map {
    nova_id *keys;
    uint64_t *values;
    uint8_t *used;
    size_t cap; /* 0 or a power of two */
    size_t count;
} replica_id_map;

void replica_id_map_free(replica_id_map *map);
int replica_id_map_set(replica_id_map *map, const nova_id *id, uint64_t value);
/* 1 (and *value set when value is not NULL) when id is in the map, else 0. */
int replica_id_map_get(const replica_id_map *map, const nova_id *id, uint64_t *value);
/* The keys in ascending order (malloc'd; NULL when the map is empty). */
int replica_id_map_sorted(const replica_id_map *map, nova_id **out);
/* The sum of the values. */
uint64_t replica_id_map_total(const replica_id_map *map);

/* A bit per number, all clear; NULL when out of memory. */
static inline uint8_t *replica_bitmap_new(size_t bits)
{
    return calloc(bits / 8 + 1, 1);
}

static inline int replica_bit_get(const uint8_t *map, size_t n)
{
    return (map[n >> 3] >> (n & 7)) & 1;
}

static inline void replica_bit_set(uint8_t *map, size_t n)
{
    map[n >> 3] = (uint8_t)(map[n >> 3] | (1u << (n & 7)));
}

/* ---- objects named by their hash (replicas_common.c) ------------------------------------ */

typedef enum replica_kind {
    REPLICA_PACK,
    REPLICA_INDEX,
    REPLICA_SNAPSHOT,
    REPLICA_KEY
} replica_kind;

void replica_object_name(char out[REPLICA_NAME_SIZE], replica_kind kind, const nova_id *id);
/* Lists the objects of one kind into map (id -> size); other names are skipped. */
int replica_list(nova_storage *storage, const char *where, replica_kind kind,
                 replica_id_map *map);
/* Reads a whole object and checks it against its name: NOVA_ECHECKSUM when the bytes do
 * not match. */
int replica_read_verified(nova_storage *storage, const char *where, replica_kind kind,
                          const nova_id *id, nova_buf *bytes);
/* Compares two configs; NOVA_EINVALID naming both repository ids when they differ,
 * NOVA_ECORRUPT when theirs (at where) does not decode. */
int replica_same_config(const nova_buf *mine, const nova_buf *theirs, const char *where);

/* ---- what every copy shares (replicas_common.c) ----------------------------------------- */

/* The keys every copy shares, from the first copy whose config reads and whose key slots
 * open with the passphrase. */
typedef struct replica_shared_keys {
    nova_repo_config config;
    nova_master_keys keys;
    nova_buf config_bytes;
} replica_shared_keys;

/* Without a copy that opens: the first password failure, else the first failure. */
int replica_shared_keys_open(replica_shared_keys *out, const nova_replica_storage *copies,
                             size_t count, const char *passphrase);
void replica_shared_keys_free(replica_shared_keys *keys);

/* Appends a problem to *problems (*count used, *cap allocated); object and message are
 * copied. */
int replica_problem_add(nova_replica_problem **problems, size_t *count, size_t *cap,
                        size_t copy, int code, const char *object, const char *message);
void replica_problems_free(nova_replica_problem *problems, size_t count);

/* ---- repository locks held for a long operation (replicas_common.c) --------------------- */

typedef struct replica_lock {
    nova_storage *storage;
    const uint8_t *key;
    const char *what;
    char name[NOVA_LOCK_NAME_SIZE]; /* "" when not held */
    int64_t taken_ns;
} replica_lock;

int replica_lock_take(replica_lock *lock, nova_storage *storage, const uint8_t *key,
                      const char *what, const char *where);
/* Replaces the lock by a fresh one when a third of its time to live has passed; the new
 * lock is stored before the old one goes, so the repository is never unlocked. */
int replica_lock_refresh(replica_lock *lock);
void replica_lock_drop(replica_lock *lock);

/* ---- progress and a pool of worker threads (replicas_workers.c) ------------------------- */

typedef struct replica_progress {
    nova_progress_cb cb;
    void *payload;
    double started;
    atomic_uint_fast64_t objects_done;
    atomic_uint_fast64_t bytes_done;
    uint64_t objects_total;
    uint64_t bytes_total;
    int (*tick)(void *ctx); /* housekeeping between reports (lock refresh); may be NULL */
    void *tick_ctx;
} replica_progress;

void replica_progress_init(replica_progress *progress, nova_progress_cb cb, void *payload);
/* One object done (any thread). */
void replica_progress_done(replica_progress *progress, uint64_t bytes);
/* Reports progress (and runs the housekeeping): NOVA_ECANCELLED when the callback asks. */
int replica_progress_report(replica_progress *progress);

typedef struct replica_job {
    nova_id id;
    replica_kind kind;
    uint64_t size;
} replica_job;

typedef struct replica_job_list {
    replica_job *items;
    size_t count, cap;
} replica_job_list;

int replica_job_add(replica_job_list *list, replica_kind kind, const nova_id *id,
                    uint64_t size);
/* A job per id of map, in id order; with sized the map's values are the sizes, else 0. */
int replica_job_add_all(replica_job_list *list, replica_kind kind, const replica_id_map *map,
                        int sized);
void replica_job_list_free(replica_job_list *list);
/* Adds the jobs to the totals progress reports. */
void replica_progress_add_jobs(replica_progress *progress, const replica_job_list *jobs);

/* Does one job; scratch is the worker's own buffer. */
typedef int (*replica_job_fn)(void *ctx, const replica_job *item, nova_buf *scratch);

/* Runs the jobs on up to `threads` workers while this thread reports progress every
 * 100 ms. The first failure stops the others and is returned with its detail. */
int replica_pool_run(const replica_job_list *jobs, unsigned threads, replica_job_fn fn,
                     void *ctx, replica_progress *progress);

/* ---- a view of one copy: its objects and its index (replicas_view.c) -------------------- */

#define REPLICA_NO_FILE UINT32_MAX

typedef struct replica_index_file {
    nova_id id;
    uint32_t *packs; /* chunk-index numbers of the packs it names */
    size_t pack_count;
} replica_index_file;

typedef struct replica_pack_meta {
    uint64_t expected_size; /* from the index: 0 when the entries do not tile the pack */
    uint32_t file;          /* the first index file naming the pack */
} replica_pack_meta;

typedef struct replica_view {
    const char *name;
    nova_repo *repo; /* storage, config and keys of this copy */
    int owns_repo;   /* a repo made by replica_repo_view_new (its storage borrowed) */
    replica_id_map packs, indexes, snapshots, keys; /* listings: id -> size */
    nova_chunk_index *index;
    replica_index_file *files; /* in id order */
    size_t file_count;
    replica_pack_meta *metas; /* by chunk-index pack number */
    size_t meta_count;
    uint64_t objects_hashed, bytes_hashed; /* index files read whole and hashed */
} replica_view;

/* Reports a damaged object; returns 0 to go on, negative to stop. */
typedef int (*replica_problem_fn)(void *ctx, int code, const char *object,
                                  const char *message);

/* A repository handle over another copy: same config and keys, its own (borrowed)
 * storage. */
int replica_repo_view_new(nova_repo **out, nova_storage *storage,
                          const nova_repo_config *config, const nova_master_keys *keys);
void replica_repo_view_free(nova_repo *repo);

void replica_view_init(replica_view *view, const char *name, nova_repo *repo, int owns_repo);
void replica_view_free(replica_view *view);
/* Lists snapshots, index files, packs and key slots. */
int replica_view_list(replica_view *view);
/* Loads every listed index file in id order; a damaged one goes to `problem` (NULL:
 * skipped). */
int replica_view_load_indexes(replica_view *view, replica_problem_fn problem, void *ctx);

/* ---- walking a backup's trees, each tree once (replicas_view.c) ------------------------- */

typedef struct replica_walk_ops {
    /* A blob is reached in pack `pack` (chunk-index number): 1 when that pack can serve
     * it, 0 when not (the backup is then incomplete in this copy), negative to stop. */
    int (*pack)(void *ctx, uint32_t pack);
    replica_problem_fn problem; /* a blob not indexed, a tree that does not read */
    void *ctx;
} replica_walk_ops;

typedef struct replica_walker {
    replica_view *view;
    nova_repo_reader *reader;
    replica_id_map memo; /* tree id -> good or bad */
    replica_id_map told; /* blob ids already reported */
    nova_buf buf;
    replica_walk_ops ops;
} replica_walker;

int replica_walker_init(replica_walker *walker, replica_view *view,
                        const replica_walk_ops *ops);
void replica_walker_free(replica_walker *walker);
/* 1 when the backup with this root tree can be served in full, 0 when not (its problems
 * were reported once each), negative to stop. */
int replica_walk_backup(replica_walker *walker, const nova_id *root);

#endif
