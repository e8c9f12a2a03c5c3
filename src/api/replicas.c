/*
 * replicas.c -- copies of a repository on other storage: copy backups to a replica,
 * compare copies (status), repair a copy from a healthy one. Public contract in
 * nova/replicas.h; design and ordering rules in docs/format-replication.md.
 *
 * Invariants:
 *   - nothing is decrypted but trees, snapshots and index files, and only to learn which
 *     objects a backup needs; every object travels byte for byte;
 *   - every object is hashed and compared with its name before it is written anywhere,
 *     so a rotten copy never spreads;
 *   - copy writes packs, then the index files that name them (an index file only once
 *     every pack it names that the source holds is in the target), then snapshots: a
 *     snapshot in a replica always finds its data, whatever moment a copy was stopped;
 *   - a replica is created by writing the key slots first and `config` last, as
 *     nova_repo_init does: a half-created replica holds no config and is not a
 *     repository;
 *   - repair deletes a damaged object only after it holds verified good bytes for it.
 * Worker threads move objects; progress callbacks run on the calling thread only.
 */
#include "api/handle.h"
#include "api/replicas_internal.h"

#include "common/err.h"
#include "nova/config.h"
#include "primitives/crypto.h"
#include "repo/index.h"
#include "repo/keys.h"
#include "repo/lock.h"
#include "repo/pack.h"
#include "repo/repo_config.h"
#include "repo/snapshot.h"
#include "repo/tree.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_THREADS 4u
#define MAX_THREADS 64u
#define TREE_MAX_DEPTH 4096u
#define LOCK_TTL_NS (30LL * 60 * 1000000000LL)
#define NAME_SIZE (NOVA_STORAGE_NAME_MAX + 1)

/* ---- small tools ------------------------------------------------------------------------ */

static int64_t wall_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static double mono_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Re-raises the last error of code rc with a prefix: "<prefix>: <detail>". */
static int wrap_error(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int wrap_error(int rc, const char *fmt, ...)
{
    const nova_error_detail d = *nova_error_last();
    char prefix[NOVA_ERROR_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (d.code != rc || !d.message[0])
        return nova_error_set(rc, 0, __FILE__, __LINE__, "%s", prefix);
    return nova_error_set(rc, d.sys_errno, d.file, d.line, "%s: %s", prefix, d.message);
}

/* Damage (the object is missing, rotten or malformed) rather than a failure to reach it. */
static int is_damage(int code)
{
    return code == NOVA_ECORRUPT || code == NOVA_ECHECKSUM || code == NOVA_ENOTFOUND ||
           code == NOVA_EVERSION;
}

static char *dup_text(const char *text)
{
    return strdup(text ? text : "");
}

/* ---- a map from ids to 64-bit values (open addressing) ---------------------------------- */

/* Ids are SHA-256 or HMAC outputs: their first bytes are uniform, no further hashing. */
typedef struct id_map {
    nova_id *keys;
    uint64_t *values;
    uint8_t *used;
    size_t cap; /* 0 or a power of two */
    size_t count;
} id_map;

static void id_map_free(id_map *m)
{
    free(m->keys);
    free(m->values);
    free(m->used);
    memset(m, 0, sizeof(*m));
}

static size_t id_map_slot(const id_map *m, const nova_id *id)
{
    uint64_t h;
    size_t i;
    memcpy(&h, id->bytes, sizeof(h));
    i = (size_t)h & (m->cap - 1);
    while (m->used[i] && memcmp(m->keys[i].bytes, id->bytes, NOVA_ID_LEN) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int id_map_grow(id_map *m)
{
    id_map bigger = {NULL, NULL, NULL, m->cap ? m->cap * 2 : 64, m->count};
    bigger.keys = malloc(bigger.cap * sizeof(*bigger.keys));
    bigger.values = malloc(bigger.cap * sizeof(*bigger.values));
    bigger.used = calloc(bigger.cap, 1);
    if (!bigger.keys || !bigger.values || !bigger.used) {
        id_map_free(&bigger);
        return nova_fail(NOVA_ENOMEM, "unable to grow a table of %zu ids", m->count);
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->used[i])
            continue;
        size_t j = id_map_slot(&bigger, &m->keys[i]);
        bigger.used[j] = 1;
        bigger.keys[j] = m->keys[i];
        bigger.values[j] = m->values[i];
    }
    id_map_free(m);
    *m = bigger;
    return 0;
}

static int id_map_set(id_map *m, const nova_id *id, uint64_t value)
{
    size_t i;
    if ((m->count + 1) * 4 > m->cap * 3)
        NOVA_TRY(id_map_grow(m));
    i = id_map_slot(m, id);
    if (!m->used[i]) {
        m->used[i] = 1;
        m->keys[i] = *id;
        m->count++;
    }
    m->values[i] = value;
    return 0;
}

static int id_map_get(const id_map *m, const nova_id *id, uint64_t *value)
{
    size_t i;
    if (m->cap == 0)
        return 0;
    i = id_map_slot(m, id);
    if (!m->used[i])
        return 0;
    if (value)
        *value = m->values[i];
    return 1;
}

static int compare_ids(const void *a, const void *b)
{
    return memcmp(a, b, NOVA_ID_LEN);
}

/* The keys in ascending order (malloc'd; NULL when the map is empty). */
static int id_map_sorted(const id_map *m, nova_id **out)
{
    size_t n = 0;
    *out = NULL;
    if (m->count == 0)
        return 0;
    *out = malloc(m->count * sizeof(**out));
    if (!*out)
        return nova_fail(NOVA_ENOMEM, "unable to sort %zu ids", m->count);
    for (size_t i = 0; i < m->cap; i++)
        if (m->used[i])
            (*out)[n++] = m->keys[i];
    qsort(*out, n, sizeof(**out), compare_ids);
    return 0;
}

static uint8_t *bitmap_new(size_t bits)
{
    return calloc(bits / 8 + 1, 1);
}

static int bit_get(const uint8_t *map, size_t n) { return (map[n >> 3] >> (n & 7)) & 1; }

static void bit_set(uint8_t *map, size_t n)
{
    map[n >> 3] = (uint8_t)(map[n >> 3] | (1u << (n & 7)));
}

/* ---- object names --------------------------------------------------------------------- */

typedef enum object_kind { KIND_PACK, KIND_INDEX, KIND_SNAPSHOT, KIND_KEY } object_kind;

static const char *const kind_prefix[] = {"data/", "index/", "snapshots/", "keys/"};

static void object_name(char out[NAME_SIZE], object_kind kind, const nova_id *id)
{
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_id_to_hex(id, hex);
    if (kind == KIND_PACK)
        snprintf(out, NAME_SIZE, "data/%.2s/%s", hex, hex);
    else
        snprintf(out, NAME_SIZE, "%s%s", kind_prefix[kind], hex);
}

/* 1 and *out set when name is a well-formed name of this kind (lowercase hex). */
static int parse_object_name(object_kind kind, const char *name, nova_id *out)
{
    size_t plen = strlen(kind_prefix[kind]);
    const char *hex = name + plen;

    if (strncmp(name, kind_prefix[kind], plen) != 0)
        return 0;
    if (kind == KIND_PACK) {
        if (strlen(hex) != 3 + NOVA_ID_HEX_LEN || hex[2] != '/' || hex[0] != hex[3] ||
            hex[1] != hex[4])
            return 0;
        hex += 3;
    }
    if (strlen(hex) != NOVA_ID_HEX_LEN)
        return 0;
    for (size_t i = 0; i < NOVA_ID_HEX_LEN; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return 0;
    return nova_id_from_hex(out, hex) == 0;
}

typedef struct listing {
    object_kind kind;
    id_map *map;
} listing;

static int collect_object(const char *name, uint64_t size, void *payload)
{
    const listing *l = payload;
    nova_id id;
    if (!parse_object_name(l->kind, name, &id))
        return 0; /* temporary files of a backend, foreign objects */
    return id_map_set(l->map, &id, size);
}

/* Lists the objects of one kind into map (id -> size). */
static int list_objects(nova_storage *s, const char *where, object_kind kind, id_map *map)
{
    listing l = {kind, map};
    int rc = nova_storage_list(s, kind_prefix[kind], collect_object, &l);
    if (rc < 0)
        return wrap_error(rc, "unable to list '%s' in '%s'", kind_prefix[kind], where);
    return 0;
}

/* Reads a whole object and checks it against its name: NOVA_ECHECKSUM when the bytes do
 * not match. */
static int read_verified(nova_storage *s, const char *where, object_kind kind, const nova_id *id,
                         nova_buf *bytes)
{
    char name[NAME_SIZE];
    nova_id actual;
    int rc;

    object_name(name, kind, id);
    rc = nova_storage_get(s, name, 0, NOVA_STORAGE_WHOLE, bytes);
    if (rc < 0)
        return wrap_error(rc, "unable to read '%s' from '%s'", name, where);
    NOVA_TRY(nova_sha256(&actual, bytes->data, bytes->len));
    if (!nova_id_equal(&actual, id))
        return nova_fail(NOVA_ECHECKSUM, "'%s' in '%s' does not match its name (its bytes are "
                         "damaged)", name, where);
    return 0;
}

/* ---- progress and a pool of worker threads --------------------------------------------- */

typedef struct progress_state {
    nova_progress_cb cb;
    void *payload;
    double started;
    atomic_uint_fast64_t objects_done;
    atomic_uint_fast64_t bytes_done;
    uint64_t objects_total;
    uint64_t bytes_total;
    int (*tick)(void *ctx); /* housekeeping between reports (lock refresh); may be NULL */
    void *tick_ctx;
} progress_state;

static void progress_init(progress_state *p, nova_progress_cb cb, void *payload)
{
    memset(p, 0, sizeof(*p));
    p->cb = cb;
    p->payload = payload;
    p->started = mono_seconds();
    atomic_init(&p->objects_done, 0);
    atomic_init(&p->bytes_done, 0);
}

static void progress_done(progress_state *p, uint64_t bytes)
{
    atomic_fetch_add(&p->objects_done, 1);
    atomic_fetch_add(&p->bytes_done, bytes);
}

/* Reports progress (and runs the housekeeping): NOVA_ECANCELLED when the callback asks. */
static int progress_report(progress_state *p)
{
    nova_progress now;
    memset(&now, 0, sizeof(now));
    now.phase = NOVA_PHASE_COPY;
    now.files_done = atomic_load(&p->objects_done);
    now.files_total = p->objects_total;
    now.bytes_done = atomic_load(&p->bytes_done);
    now.bytes_total = p->bytes_total;
    now.elapsed_seconds = mono_seconds() - p->started;
    if (p->cb && p->cb(&now, p->payload) != 0)
        return nova_fail(NOVA_ECANCELLED, "cancelled after %llu of %llu objects",
                         (unsigned long long)now.files_done,
                         (unsigned long long)now.files_total);
    return p->tick ? p->tick(p->tick_ctx) : 0;
}

typedef struct job {
    nova_id id;
    object_kind kind;
    uint64_t size;
} job;

typedef struct job_list {
    job *items;
    size_t count, cap;
} job_list;

static int job_add(job_list *l, object_kind kind, const nova_id *id, uint64_t size)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        job *grown = realloc(l->items, cap * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to plan %zu transfers", cap);
        l->items = grown;
        l->cap = cap;
    }
    l->items[l->count].id = *id;
    l->items[l->count].kind = kind;
    l->items[l->count].size = size;
    l->count++;
    return 0;
}

static void job_list_free(job_list *l)
{
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* Does one job; scratch is the worker's own buffer. */
typedef int (*job_fn)(void *ctx, const job *item, nova_buf *scratch);

typedef struct pool {
    const job *jobs;
    size_t count;
    job_fn fn;
    void *ctx;
    atomic_size_t next;
    atomic_int stop;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    size_t running;
    int rc;
    nova_error_detail detail; /* of the first failure, from its worker */
} pool;

static void *pool_worker(void *arg)
{
    pool *p = arg;
    nova_buf scratch = NOVA_BUF_INIT;

    while (!atomic_load(&p->stop)) {
        size_t i = atomic_fetch_add(&p->next, 1);
        int rc;
        if (i >= p->count)
            break;
        rc = p->fn(p->ctx, &p->jobs[i], &scratch);
        if (rc < 0) {
            pthread_mutex_lock(&p->lock);
            if (p->rc == 0) {
                p->rc = rc;
                p->detail = *nova_error_last();
            }
            pthread_mutex_unlock(&p->lock);
            atomic_store(&p->stop, 1);
        }
    }
    nova_buf_free(&scratch);
    pthread_mutex_lock(&p->lock);
    p->running--;
    pthread_cond_signal(&p->idle);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Runs the jobs on up to `threads` workers while this thread reports progress every
 * 100 ms. The first failure stops the others and is returned with its detail. */
static int pool_run(const job_list *jobs, unsigned threads, job_fn fn, void *ctx,
                    progress_state *progress)
{
    pthread_t workers[MAX_THREADS];
    pthread_condattr_t attr;
    size_t wanted, started = 0;
    pool p;
    int rc = 0;

    if (jobs->count == 0)
        return 0;
    memset(&p, 0, sizeof(p));
    p.jobs = jobs->items;
    p.count = jobs->count;
    p.fn = fn;
    p.ctx = ctx;
    atomic_init(&p.next, 0);
    atomic_init(&p.stop, 0);
    pthread_mutex_init(&p.lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p.idle, &attr);
    pthread_condattr_destroy(&attr);
    wanted = threads < jobs->count ? threads : jobs->count;
    if (wanted > MAX_THREADS)
        wanted = MAX_THREADS;
    pthread_mutex_lock(&p.lock);
    p.running = wanted;
    pthread_mutex_unlock(&p.lock);
    for (size_t i = 0; i < wanted; i++) {
        if (pthread_create(&workers[started], NULL, pool_worker, &p) != 0)
            break;
        started++;
    }
    pthread_mutex_lock(&p.lock);
    p.running -= wanted - started;
    pthread_mutex_unlock(&p.lock);
    if (started == 0) { /* no thread to be had: do the work here */
        p.running = 1;
        pool_worker(&p);
    }
    pthread_mutex_lock(&p.lock);
    while (p.running > 0) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 100000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p.idle, &p.lock, &until);
        if (p.running == 0)
            break;
        pthread_mutex_unlock(&p.lock);
        if (rc == 0) {
            rc = progress_report(progress);
            if (rc < 0)
                atomic_store(&p.stop, 1);
        }
        pthread_mutex_lock(&p.lock);
    }
    pthread_mutex_unlock(&p.lock);
    for (size_t i = 0; i < started; i++)
        pthread_join(workers[i], NULL);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.idle);
    if (p.rc < 0)
        return nova_error_set(p.rc, p.detail.sys_errno, p.detail.file, p.detail.line, "%s",
                              p.detail.message);
    if (rc == 0)
        rc = progress_report(progress);
    return rc;
}

/* ---- repository locks held for a long operation ---------------------------------------- */

typedef struct held_lock {
    nova_storage *storage;
    const uint8_t *key;
    const char *what;
    char name[NOVA_LOCK_NAME_SIZE]; /* "" when not held */
    int64_t taken_ns;
} held_lock;

static int lock_take(held_lock *l, nova_storage *s, const uint8_t *key, const char *what,
                     const char *where)
{
    nova_lock lock;
    int64_t now = wall_ns();
    int rc;

    l->storage = s;
    l->key = key;
    l->what = what;
    NOVA_TRY(nova_lock_init(&lock, 0, what, LOCK_TTL_NS));
    rc = nova_lock_acquire(s, key, &lock, now, l->name);
    if (rc < 0) {
        l->name[0] = '\0';
        return wrap_error(rc, "unable to lock '%s'", where);
    }
    l->taken_ns = now;
    return 0;
}

/* Replaces the lock by a fresh one when a third of its time to live has passed; the new
 * lock is stored before the old one goes, so the repository is never unlocked. */
static int lock_refresh(held_lock *l)
{
    char old[NOVA_LOCK_NAME_SIZE];
    int rc;
    if (!l->name[0] || wall_ns() - l->taken_ns < LOCK_TTL_NS / 3)
        return 0;
    memcpy(old, l->name, sizeof(old));
    rc = lock_take(l, l->storage, l->key, l->what, "repository");
    if (rc < 0) {
        memcpy(l->name, old, sizeof(old)); /* still held: released at the end */
        return rc;
    }
    nova_lock_release(l->storage, old);
    return 0;
}

static void lock_drop(held_lock *l)
{
    if (l->name[0])
        nova_lock_release(l->storage, l->name);
    l->name[0] = '\0';
}

/* ---- a view of one copy: its objects and its index ------------------------------------- */

#define NO_FILE UINT32_MAX

typedef struct index_file {
    nova_id id;
    uint32_t *packs; /* chunk-index numbers of the packs it names */
    size_t pack_count;
    int loaded;
} index_file;

typedef struct pack_meta {
    uint64_t expected_size; /* from the index: 0 when the entries do not tile the pack */
    uint32_t file;          /* the first index file naming the pack */
} pack_meta;

typedef struct copy_view {
    const char *name;
    nova_repo *repo; /* storage, config and keys of this copy */
    int owns_repo;   /* a repo made by view_repo_new (its storage borrowed) */
    id_map packs, indexes, snapshots, keys; /* listings: id -> size */
    nova_chunk_index *index;
    index_file *files;
    size_t file_count;
    pack_meta *metas; /* by chunk-index pack number */
    size_t meta_count;
    uint64_t objects_read, bytes_read;
} copy_view;

/* A repository handle over another copy: same config and keys, its own storage. */
static int view_repo_new(nova_repo **out, nova_storage *storage, const nova_repo_config *config,
                         const nova_master_keys *keys)
{
    nova_repo *r = calloc(1, sizeof(*r));
    *out = NULL;
    if (!r)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a repository view");
    r->storage = storage;
    r->config = *config;
    r->keys = *keys;
    *out = r;
    return 0;
}

static void view_repo_free(nova_repo *r)
{
    if (!r)
        return;
    r->storage = NULL; /* borrowed */
    nova_repo_free(r);
}

static void view_init(copy_view *v, const char *name, nova_repo *repo, int owns_repo)
{
    memset(v, 0, sizeof(*v));
    v->name = name;
    v->repo = repo;
    v->owns_repo = owns_repo;
}

static void view_free(copy_view *v)
{
    id_map_free(&v->packs);
    id_map_free(&v->indexes);
    id_map_free(&v->snapshots);
    id_map_free(&v->keys);
    nova_chunk_index_free(v->index);
    for (size_t i = 0; i < v->file_count; i++)
        free(v->files[i].packs);
    free(v->files);
    free(v->metas);
    if (v->owns_repo)
        view_repo_free(v->repo);
    memset(v, 0, sizeof(*v));
}

/* Snapshots first, then index files, then packs: with prune excluded by the lock, every
 * listed snapshot finds its index files and every indexed pack is listed. */
static int view_list(copy_view *v)
{
    nova_storage *s = v->repo->storage;
    NOVA_TRY(list_objects(s, v->name, KIND_SNAPSHOT, &v->snapshots));
    NOVA_TRY(list_objects(s, v->name, KIND_INDEX, &v->indexes));
    NOVA_TRY(list_objects(s, v->name, KIND_PACK, &v->packs));
    return list_objects(s, v->name, KIND_KEY, &v->keys);
}

/* The exact size of a pack whose index entries tile its blob area (what writers
 * record), else 0: blobs, sealed header (45 bytes per entry + tag), trailer. */
static uint64_t pack_expected_size(const nova_index_pack *p)
{
    uint64_t end = 0;
    for (size_t k = 0; k < p->entry_count; k++) {
        if (p->entries[k].offset != end)
            return 0;
        end += p->entries[k].length;
    }
    return end + (uint64_t)NOVA_PACK_ENTRY_LEN * p->entry_count + NOVA_TAG_LEN +
           NOVA_PACK_TRAILER_LEN;
}

static int view_meta_reserve(copy_view *v, uint32_t number)
{
    size_t want = (size_t)number + 1;
    if (want <= v->meta_count)
        return 0;
    size_t cap = v->meta_count ? v->meta_count : 64;
    while (cap < want)
        cap *= 2;
    pack_meta *grown = realloc(v->metas, cap * sizeof(*grown));
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "unable to describe %zu packs", cap);
    for (size_t i = v->meta_count; i < cap; i++) {
        grown[i].expected_size = 0;
        grown[i].file = NO_FILE;
    }
    v->metas = grown;
    v->meta_count = cap;
    return 0;
}

static int load_index_file(copy_view *v, size_t number, nova_buf *bytes)
{
    index_file *f = &v->files[number];
    nova_index file = NOVA_INDEX_INIT;
    char name[NAME_SIZE];
    int rc;

    object_name(name, KIND_INDEX, &f->id);
    NOVA_TRY(read_verified(v->repo->storage, v->name, KIND_INDEX, &f->id, bytes));
    v->objects_read++;
    v->bytes_read += bytes->len;
    rc = nova_index_open(&file, v->repo->keys.enc, bytes->data, bytes->len, name);
    if (rc < 0)
        return wrap_error(rc, "index file '%s' in '%s'", name, v->name);
    if (file.pack_count > 0 && !(f->packs = malloc(file.pack_count * sizeof(*f->packs))))
        rc = nova_fail(NOVA_ENOMEM, "index file '%s': unable to list its packs", name);
    for (size_t i = 0; rc == 0 && i < file.pack_count; i++) {
        uint32_t pack;
        rc = nova_chunk_index_add_pack(v->index, &pack, &file.packs[i].pack_id);
        if (rc >= 0)
            rc = view_meta_reserve(v, pack);
        if (rc < 0)
            break;
        f->packs[f->pack_count++] = pack;
        if (v->metas[pack].file == NO_FILE) {
            v->metas[pack].file = (uint32_t)number;
            v->metas[pack].expected_size = pack_expected_size(&file.packs[i]);
        }
    }
    if (rc >= 0)
        rc = nova_chunk_index_add_index(v->index, &file, NULL);
    nova_index_free(&file);
    return rc < 0 ? rc : 0;
}

/* Reports a damaged object; returns 0 to go on, negative to stop. */
typedef int (*problem_fn)(void *ctx, int code, const char *object, const char *message);

/* Loads every index file in name order; a damaged one goes to `problem`. */
static int view_load_indexes(copy_view *v, problem_fn problem, void *ctx)
{
    nova_buf bytes = NOVA_BUF_INIT;
    nova_id *ids = NULL;
    int rc;

    NOVA_TRY(nova_chunk_index_new(&v->index));
    NOVA_TRY(id_map_sorted(&v->indexes, &ids));
    v->file_count = v->indexes.count;
    v->files = calloc(v->file_count + 1, sizeof(*v->files));
    rc = v->files ? 0 : nova_fail(NOVA_ENOMEM, "unable to list %zu index files", v->file_count);
    for (size_t i = 0; rc == 0 && i < v->file_count; i++) {
        v->files[i].id = ids[i];
        rc = load_index_file(v, i, &bytes);
        if (rc == 0) {
            v->files[i].loaded = 1;
            continue;
        }
        free(v->files[i].packs);
        v->files[i].packs = NULL;
        v->files[i].pack_count = 0;
        if (is_damage(rc)) {
            char name[NAME_SIZE];
            object_name(name, KIND_INDEX, &ids[i]);
            rc = problem(ctx, rc, name, nova_error_last()->message);
        }
    }
    free(ids);
    nova_buf_free(&bytes);
    return rc;
}

/* ---- walking a backup's trees, each tree once (memoised) -------------------------------- */

typedef struct walk_ops {
    /* A blob is reached in pack `pack` (chunk-index number): 1 when that pack can serve
     * it, 0 when not (the backup is then incomplete in this copy), negative to stop. */
    int (*pack)(void *ctx, uint32_t pack);
    problem_fn problem; /* a blob not indexed, a tree that does not read */
    void *ctx;
} walk_ops;

enum { TREE_GOOD = 1, TREE_BAD = 2 };

typedef struct walker {
    copy_view *view;
    nova_repo_reader *reader;
    id_map memo; /* tree id -> TREE_GOOD / TREE_BAD */
    id_map told; /* blob ids already reported */
    nova_buf buf;
    walk_ops ops;
    uint64_t trees_read;
} walker;

static int walker_init(walker *w, copy_view *v, const walk_ops *ops)
{
    memset(w, 0, sizeof(*w));
    w->view = v;
    w->ops = *ops;
    return nova_repo_reader_new(&w->reader, v->repo, v->index);
}

static void walker_free(walker *w)
{
    nova_repo_reader_free(w->reader);
    id_map_free(&w->memo);
    id_map_free(&w->told);
    nova_buf_free(&w->buf);
    memset(w, 0, sizeof(*w));
}

/* Reports a problem about a blob once per walker. */
static int walk_problem(walker *w, const nova_id *id, int code, const char *kind,
                        const char *message)
{
    char object[NOVA_ID_HEX_LEN + 8];
    char copy[NOVA_ERROR_MESSAGE_MAX];
    if (id_map_get(&w->told, id, NULL))
        return 0;
    NOVA_TRY(id_map_set(&w->told, id, 1));
    snprintf(copy, sizeof(copy), "%s", message);
    snprintf(object, sizeof(object), "%s ", kind);
    nova_id_to_hex(id, object + strlen(object));
    return w->ops.problem(w->ops.ctx, code, object, copy);
}

/* 1 when the blob is indexed with the expected type and its pack can serve it. */
static int walk_blob(walker *w, const nova_id *id, nova_blob_type type)
{
    nova_chunk_location loc;
    char hex[NOVA_ID_HEX_LEN + 1];
    char message[NOVA_ERROR_MESSAGE_MAX];
    int rc;

    if (nova_chunk_index_lookup(w->view->index, id, &loc) != 1) {
        nova_id_to_hex(id, hex);
        snprintf(message, sizeof(message), "%s %s is needed by a backup but no index file of "
                 "'%s' names it", type == NOVA_BLOB_TREE ? "tree" : "blob", hex, w->view->name);
        rc = walk_problem(w, id, NOVA_ECORRUPT, type == NOVA_BLOB_TREE ? "tree" : "blob",
                          message);
        return rc < 0 ? rc : 0;
    }
    if (loc.type != type) {
        nova_id_to_hex(id, hex);
        snprintf(message, sizeof(message), "blob %s in '%s' is indexed as %s where a %s is "
                 "referenced", hex, w->view->name, loc.type == NOVA_BLOB_TREE ? "a tree" : "data",
                 type == NOVA_BLOB_TREE ? "tree" : "data chunk");
        rc = walk_problem(w, id, NOVA_ECORRUPT, "blob", message);
        return rc < 0 ? rc : 0;
    }
    return w->ops.pack(w->ops.ctx, loc.pack);
}

static int walk_tree(walker *w, const nova_id *id, unsigned depth);

static int walk_entries(walker *w, const nova_tree *tree, unsigned depth)
{
    int good = 1;
    for (size_t i = 0; i < tree->count; i++) {
        const nova_tree_entry *e = &tree->entries[i];
        int rc = 1;
        if (e->type == NOVA_TREE_DIR)
            rc = walk_tree(w, &e->subtree, depth + 1);
        for (uint64_t c = 0; e->type == NOVA_TREE_FILE && c < e->chunk_count; c++) {
            int one = walk_blob(w, &e->chunks[c], NOVA_BLOB_DATA);
            if (one < 0)
                return one;
            if (one == 0)
                rc = 0;
        }
        if (rc < 0)
            return rc;
        if (rc == 0)
            good = 0;
    }
    return good;
}

static int walk_tree_uncached(walker *w, const nova_id *id, unsigned depth)
{
    char what[NOVA_ID_HEX_LEN + 8];
    nova_tree *tree = NULL;
    int rc;

    memcpy(what, "tree ", 5);
    nova_id_to_hex(id, what + 5);
    if (depth > TREE_MAX_DEPTH) {
        rc = walk_problem(w, id, NOVA_ECORRUPT, "tree", "trees nest deeper than 4096 levels");
        return rc < 0 ? rc : 0;
    }
    rc = walk_blob(w, id, NOVA_BLOB_TREE);
    if (rc <= 0)
        return rc;
    rc = nova_repo_reader_read(w->reader, id, &w->buf);
    if (rc == 0)
        rc = nova_tree_decode(&tree, w->buf.data, w->buf.len, what);
    if (rc < 0) {
        if (!is_damage(rc))
            return wrap_error(rc, "%s in '%s'", what, w->view->name);
        char message[NOVA_ERROR_MESSAGE_MAX];
        snprintf(message, sizeof(message), "%s in '%.100s' cannot be read: %.300s", what,
                 w->view->name, nova_error_last()->message);
        rc = walk_problem(w, id, rc, "tree", message);
        return rc < 0 ? rc : 0;
    }
    w->trees_read++;
    rc = walk_entries(w, tree, depth);
    nova_tree_free(tree);
    return rc;
}

/* 1 when the tree and everything below it can be served, 0 when not, negative to stop. */
static int walk_tree(walker *w, const nova_id *id, unsigned depth)
{
    uint64_t state;
    int rc;
    if (id_map_get(&w->memo, id, &state))
        return state == TREE_GOOD;
    rc = walk_tree_uncached(w, id, depth);
    if (rc < 0)
        return rc;
    NOVA_TRY(id_map_set(&w->memo, id, rc ? TREE_GOOD : TREE_BAD));
    return rc;
}

/* ---- copy ------------------------------------------------------------------------------ */

typedef struct selected {
    nova_id id;
    nova_id tree;
    int64_t started_ns;
    int present; /* the target holds the snapshot object */
} selected;

typedef struct copy_engine {
    copy_view src;
    nova_storage *dst;
    const char *dst_name;
    id_map dst_packs, dst_indexes, dst_snapshots, dst_keys;
    uint8_t *needed; /* bit per source pack number: some selected backup needs it */
    size_t pack_count;
    char current[NOVA_ID_HEX_LEN + 1]; /* the backup being walked */
    unsigned threads;
    progress_state progress;
    held_lock src_lock, dst_lock;
    atomic_uint_fast64_t packs_copied, packs_present, indexes_copied, indexes_present;
    atomic_uint_fast64_t bytes_copied;
    uint64_t keys_copied, snapshots_copied, snapshots_present;
    int target_created;
} copy_engine;

/* Copies one object from source to target, verified first. 1 copied, 0 already there. */
static int transfer_object(copy_engine *e, object_kind kind, const nova_id *id, nova_buf *bytes)
{
    char name[NAME_SIZE];
    int rc = read_verified(e->src.repo->storage, e->src.name, kind, id, bytes);

    if (rc == NOVA_ECHECKSUM)
        return wrap_error(rc, "not copied to '%s' (repair the source first: 'nova replicas "
                          "repair --to %s' from a healthy copy)", e->dst_name, e->src.name);
    if (rc < 0)
        return rc;
    object_name(name, kind, id);
    rc = nova_storage_put(e->dst, name, bytes->data, bytes->len);
    if (rc == NOVA_EEXISTS)
        return 0;
    if (rc < 0)
        return wrap_error(rc, "unable to write '%s' to '%s'", name, e->dst_name);
    atomic_fetch_add(&e->bytes_copied, bytes->len);
    return 1;
}

static int copy_job(void *ctx, const job *item, nova_buf *scratch)
{
    copy_engine *e = ctx;
    int rc = transfer_object(e, item->kind, &item->id, scratch);
    if (rc < 0)
        return rc;
    if (item->kind == KIND_PACK)
        atomic_fetch_add(rc ? &e->packs_copied : &e->packs_present, 1);
    else
        atomic_fetch_add(rc ? &e->indexes_copied : &e->indexes_present, 1);
    progress_done(&e->progress, item->size);
    return 0;
}

static int copy_tick(void *ctx)
{
    copy_engine *e = ctx;
    NOVA_TRY(lock_refresh(&e->src_lock));
    return lock_refresh(&e->dst_lock);
}

/* Copies the key slots the target lacks; damaged slots of the source are skipped (any
 * intact slot opens the repository). */
static int copy_keys(copy_engine *e)
{
    id_map src_keys = {0};
    nova_buf bytes = NOVA_BUF_INIT;
    nova_id *ids = NULL;
    int rc = list_objects(e->src.repo->storage, e->src.name, KIND_KEY, &src_keys);

    if (rc == 0)
        rc = list_objects(e->dst, e->dst_name, KIND_KEY, &e->dst_keys);
    if (rc == 0)
        rc = id_map_sorted(&src_keys, &ids);
    for (size_t i = 0; rc == 0 && i < src_keys.count; i++) {
        if (id_map_get(&e->dst_keys, &ids[i], NULL))
            continue;
        rc = transfer_object(e, KIND_KEY, &ids[i], &bytes);
        if (rc == NOVA_ECHECKSUM)
            rc = 0;
        else if (rc > 0) {
            e->keys_copied++;
            rc = id_map_set(&e->dst_keys, &ids[i], bytes.len);
        }
    }
    if (rc == 0 && e->dst_keys.count == 0)
        rc = nova_fail(NOVA_ECORRUPT, "'%s' has no intact key slot to copy to '%s'",
                       e->src.name, e->dst_name);
    free(ids);
    id_map_free(&src_keys);
    nova_buf_free(&bytes);
    return rc < 0 ? rc : 0;
}

/* Compares two configs; NOVA_EINVALID naming both repository ids when they differ. */
static int same_config(const nova_buf *mine, const nova_buf *theirs, const char *where)
{
    nova_repo_config a, b;
    char ha[NOVA_ID_HEX_LEN + 1], hb[NOVA_ID_HEX_LEN + 1];

    if (mine->len == theirs->len && memcmp(mine->data, theirs->data, mine->len) == 0)
        return 0;
    if (nova_repo_config_decode(&b, theirs->data, theirs->len) < 0)
        return nova_fail(NOVA_ECORRUPT, "the config of '%s' is damaged (repair it with 'nova "
                         "replicas repair --to %s')", where, where);
    if (nova_repo_config_decode(&a, mine->data, mine->len) < 0)
        return nova_fail(NOVA_ECORRUPT, "the config of the source is damaged");
    nova_hex_encode(ha, a.repo_id, NOVA_REPO_ID_LEN);
    nova_hex_encode(hb, b.repo_id, NOVA_REPO_ID_LEN);
    return nova_fail(NOVA_EINVALID, "'%s' holds another repository (id %.16s..., this one is "
                     "%.16s...): a replica must start empty", where, hb, ha);
}

/* Makes the target a replica of the source (key slots, then config) or checks that it is
 * one, and copies key slots it lacks. */
static int prepare_target(copy_engine *e)
{
    nova_buf mine = NOVA_BUF_INIT, theirs = NOVA_BUF_INIT;
    int rc = nova_storage_get(e->src.repo->storage, NOVA_REPO_CONFIG_NAME, 0, NOVA_STORAGE_WHOLE,
                              &mine);

    if (rc < 0) {
        rc = wrap_error(rc, "unable to read the config of '%s'", e->src.name);
        goto out;
    }
    rc = nova_storage_get(e->dst, NOVA_REPO_CONFIG_NAME, 0, NOVA_STORAGE_WHOLE, &theirs);
    if (rc == NOVA_ENOTFOUND) {
        e->target_created = 1;
        rc = copy_keys(e);
        if (rc == 0)
            rc = nova_storage_put(e->dst, NOVA_REPO_CONFIG_NAME, mine.data, mine.len);
        if (rc == 0)
            atomic_fetch_add(&e->bytes_copied, mine.len);
        if (rc == NOVA_EEXISTS) /* another copy got there first: it must be ours */
            rc = nova_storage_get(e->dst, NOVA_REPO_CONFIG_NAME, 0, NOVA_STORAGE_WHOLE, &theirs);
        else if (rc < 0)
            rc = wrap_error(rc, "unable to create the replica '%s'", e->dst_name);
        else
            goto out;
    }
    if (rc < 0) {
        rc = wrap_error(rc, "unable to read the config of '%s'", e->dst_name);
        goto out;
    }
    rc = same_config(&mine, &theirs, e->dst_name);
    if (rc == 0 && !e->target_created)
        rc = copy_keys(e);
out:
    nova_buf_free(&mine);
    nova_buf_free(&theirs);
    return rc;
}

static int compare_selected(const void *a, const void *b)
{
    const selected *x = a, *y = b;
    if (x->started_ns != y->started_ns)
        return x->started_ns < y->started_ns ? -1 : 1;
    return memcmp(x->id.bytes, y->id.bytes, NOVA_ID_LEN);
}

/* Reads the chosen snapshots (all when ids is NULL), oldest first. */
static int select_snapshots(copy_engine *e, const nova_id *ids, size_t id_count,
                            selected **out, size_t *count)
{
    nova_id *all = NULL;
    selected *sel;
    int rc = 0;

    *out = NULL;
    *count = 0;
    if (!ids) {
        NOVA_TRY(id_map_sorted(&e->src.snapshots, &all));
        ids = all;
        id_count = e->src.snapshots.count;
    }
    sel = calloc(id_count + 1, sizeof(*sel));
    if (!sel) {
        free(all);
        return nova_fail(NOVA_ENOMEM, "unable to select %zu backups", id_count);
    }
    for (size_t i = 0; rc == 0 && i < id_count; i++) {
        nova_snapshot *snap = NULL;
        char hex[NOVA_ID_HEX_LEN + 1];
        size_t k;
        for (k = 0; k < *count && !nova_id_equal(&sel[k].id, &ids[i]); k++)
            ;
        if (k < *count)
            continue; /* named twice */
        nova_id_to_hex(&ids[i], hex);
        rc = nova_snapshot_read(&snap, e->src.repo->storage, &ids[i], e->src.repo->keys.enc);
        if (rc < 0) {
            rc = wrap_error(rc, "backup %s in '%s'", hex, e->src.name);
            break;
        }
        sel[*count].id = ids[i];
        sel[*count].tree = snap->tree;
        sel[*count].started_ns = snap->start_ns;
        sel[*count].present = id_map_get(&e->dst_snapshots, &ids[i], NULL);
        (*count)++;
        nova_snapshot_free(snap);
    }
    free(all);
    if (rc < 0) {
        free(sel);
        *count = 0;
        return rc;
    }
    qsort(sel, *count, sizeof(*sel), compare_selected);
    *out = sel;
    return 0;
}

static int copy_pack_reached(void *ctx, uint32_t pack)
{
    copy_engine *e = ctx;
    const nova_id *pid = nova_chunk_index_pack_id(e->src.index, pack);
    char name[NAME_SIZE];

    if (!pid || pack >= e->pack_count)
        return nova_fail(NOVA_EINTERNAL, "pack number %u out of range", pack);
    if (bit_get(e->needed, pack))
        return 1;
    if (!id_map_get(&e->src.packs, pid, NULL)) {
        object_name(name, KIND_PACK, pid);
        return nova_fail(NOVA_ECORRUPT, "pack '%s' needed by backup %s is missing from '%s': "
                         "nothing copied (run 'nova check' there)", name, e->current, e->src.name);
    }
    bit_set(e->needed, pack);
    return 1;
}

static int copy_problem(void *ctx, int code, const char *object, const char *message)
{
    copy_engine *e = ctx;
    (void)object;
    return nova_fail(code, "backup %s cannot be copied: %s", e->current, message);
}

/* A damaged index file of the source is skipped: the backups that need it fail their
 * walk ("no index file names it"), the others copy. */
static int copy_index_problem(void *ctx, int code, const char *object, const char *message)
{
    (void)ctx;
    (void)code;
    (void)object;
    (void)message;
    return 0;
}

/* Marks every pack the backups to copy need (trees and chunks). */
static int walk_selected(copy_engine *e, selected *sel, size_t count, int fill)
{
    walk_ops ops = {copy_pack_reached, copy_problem, e};
    walker w;
    int rc;

    e->pack_count = nova_chunk_index_pack_count(e->src.index);
    e->needed = bitmap_new(e->pack_count);
    if (!e->needed)
        return nova_fail(NOVA_ENOMEM, "unable to track %zu packs", e->pack_count);
    NOVA_TRY(walker_init(&w, &e->src, &ops));
    rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (sel[i].present && !fill)
            continue;
        nova_id_to_hex(&sel[i].id, e->current);
        rc = walk_tree(&w, &sel[i].tree, 0);
        if (rc == 0)
            rc = nova_fail(NOVA_ECORRUPT, "backup %s in '%s' is incomplete", e->current,
                           e->src.name);
        else if (rc > 0)
            rc = 0;
    }
    walker_free(&w);
    return rc;
}

/* Every index file naming a needed pack, and every pack those files name that the target
 * lacks: the target's copy of an index file must find all its packs. */
static int plan_transfers(copy_engine *e, job_list *packs, job_list *indexes)
{
    uint8_t *file_wanted = calloc(e->src.file_count + 1, 1);
    uint8_t *pack_planned = bitmap_new(e->pack_count);
    char name[NAME_SIZE];
    int rc = 0;

    if (!file_wanted || !pack_planned) {
        rc = nova_fail(NOVA_ENOMEM, "unable to plan the copy of %zu packs", e->pack_count);
        goto out;
    }
    for (size_t p = 0; p < e->pack_count; p++)
        if (bit_get(e->needed, p) && p < e->src.meta_count && e->src.metas[p].file != NO_FILE)
            file_wanted[e->src.metas[p].file] = 1;
    for (size_t f = 0; rc == 0 && f < e->src.file_count; f++) {
        const index_file *file = &e->src.files[f];
        if (!file_wanted[f])
            continue;
        for (size_t k = 0; rc == 0 && k < file->pack_count; k++) {
            uint32_t q = file->packs[k];
            const nova_id *pid = nova_chunk_index_pack_id(e->src.index, q);
            uint64_t src_size = 0, dst_size = 0;
            if (bit_get(pack_planned, q))
                continue;
            bit_set(pack_planned, q);
            int in_src = id_map_get(&e->src.packs, pid, &src_size);
            if (id_map_get(&e->dst_packs, pid, &dst_size)) {
                if (in_src && dst_size != src_size) {
                    object_name(name, KIND_PACK, pid);
                    rc = nova_fail(NOVA_ECORRUPT, "pack '%s' in '%s' has %llu bytes where '%s' "
                                   "has %llu: repair it with 'nova replicas repair --to %s'",
                                   name, e->dst_name, (unsigned long long)dst_size,
                                   e->src.name, (unsigned long long)src_size, e->dst_name);
                }
                atomic_fetch_add(&e->packs_present, 1);
                continue;
            }
            if (in_src) /* a pack the source lost that no backup needs stays lost */
                rc = job_add(packs, KIND_PACK, pid, src_size);
        }
        if (rc == 0 && id_map_get(&e->dst_indexes, &file->id, NULL))
            atomic_fetch_add(&e->indexes_present, 1);
        else if (rc == 0) {
            uint64_t size = 0;
            id_map_get(&e->src.indexes, &file->id, &size);
            rc = job_add(indexes, KIND_INDEX, &file->id, size);
        }
    }
out:
    free(file_wanted);
    free(pack_planned);
    return rc;
}

/* Writes the snapshot objects, oldest first: each is the commit point of its backup. */
static int commit_snapshots(copy_engine *e, const selected *sel, size_t count, int fill)
{
    nova_buf bytes = NOVA_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (sel[i].present && !fill) {
            e->snapshots_present++;
            continue;
        }
        rc = transfer_object(e, KIND_SNAPSHOT, &sel[i].id, &bytes);
        if (rc > 0)
            e->snapshots_copied++;
        else if (rc == 0)
            e->snapshots_present++;
        if (rc >= 0) {
            progress_done(&e->progress, bytes.len);
            rc = progress_report(&e->progress);
        }
    }
    nova_buf_free(&bytes);
    return rc;
}

static void copy_result_fill(copy_engine *e, nova_copy_result *r, size_t selected_count,
                             double started)
{
    r->target_created = e->target_created;
    r->snapshots_selected = selected_count;
    r->snapshots_copied = e->snapshots_copied;
    r->snapshots_present = e->snapshots_present;
    r->packs_copied = atomic_load(&e->packs_copied);
    r->packs_present = atomic_load(&e->packs_present);
    r->indexes_copied = atomic_load(&e->indexes_copied);
    r->indexes_present = atomic_load(&e->indexes_present);
    r->keys_copied = e->keys_copied;
    r->bytes_copied = atomic_load(&e->bytes_copied);
    r->seconds = mono_seconds() - started;
}

int nova_copy_to_storage(nova_repo *source, const char *source_name,
                         const nova_replica_storage *target, const nova_id *ids,
                         size_t id_count, int fill, const nova_copy_options *o,
                         nova_copy_result *result)
{
    nova_copy_result ignored = {0};
    nova_copy_result *r = result ? result : &ignored;
    job_list packs = {0}, indexes = {0};
    selected *sel = NULL;
    size_t sel_count = 0;
    copy_engine e;
    double started = mono_seconds();
    int rc;

    memset(r, 0, sizeof(*r));
    memset(&e, 0, sizeof(e));
    view_init(&e.src, source_name, source, 0);
    e.dst = target->storage;
    e.dst_name = target->name;
    e.threads = o && o->threads ? o->threads : DEFAULT_THREADS;
    atomic_init(&e.packs_copied, 0);
    atomic_init(&e.packs_present, 0);
    atomic_init(&e.indexes_copied, 0);
    atomic_init(&e.indexes_present, 0);
    atomic_init(&e.bytes_copied, 0);
    progress_init(&e.progress, o ? o->progress : NULL, o ? o->payload : NULL);
    e.progress.tick = copy_tick;
    e.progress.tick_ctx = &e;

    rc = prepare_target(&e);
    if (rc == 0)
        rc = lock_take(&e.src_lock, source->storage, source->keys.enc, "nova copy (source)",
                       source_name);
    if (rc == 0)
        rc = lock_take(&e.dst_lock, e.dst, source->keys.enc, "nova copy (target)", e.dst_name);
    if (rc == 0)
        rc = view_list(&e.src);
    if (rc == 0)
        rc = view_load_indexes(&e.src, copy_index_problem, &e);
    if (rc == 0)
        rc = list_objects(e.dst, e.dst_name, KIND_SNAPSHOT, &e.dst_snapshots);
    if (rc == 0)
        rc = list_objects(e.dst, e.dst_name, KIND_INDEX, &e.dst_indexes);
    if (rc == 0)
        rc = list_objects(e.dst, e.dst_name, KIND_PACK, &e.dst_packs);
    if (rc == 0)
        rc = select_snapshots(&e, ids, id_count, &sel, &sel_count);
    if (rc == 0)
        rc = walk_selected(&e, sel, sel_count, fill);
    if (rc == 0)
        rc = plan_transfers(&e, &packs, &indexes);
    if (rc == 0) {
        e.progress.objects_total = packs.count + indexes.count + sel_count;
        for (size_t i = 0; i < packs.count; i++)
            e.progress.bytes_total += packs.items[i].size;
        for (size_t i = 0; i < indexes.count; i++)
            e.progress.bytes_total += indexes.items[i].size;
        rc = progress_report(&e.progress);
    }
    if (rc == 0)
        rc = pool_run(&packs, e.threads, copy_job, &e, &e.progress);
    if (rc == 0)
        rc = pool_run(&indexes, e.threads, copy_job, &e, &e.progress);
    if (rc == 0)
        rc = commit_snapshots(&e, sel, sel_count, fill);

    lock_drop(&e.dst_lock);
    lock_drop(&e.src_lock);
    copy_result_fill(&e, r, sel_count, started);
    job_list_free(&packs);
    job_list_free(&indexes);
    free(sel);
    free(e.needed);
    id_map_free(&e.dst_packs);
    id_map_free(&e.dst_indexes);
    id_map_free(&e.dst_snapshots);
    id_map_free(&e.dst_keys);
    view_free(&e.src);
    return rc;
}

int nova_copy(nova_repository *source, const char *target_location,
              const nova_copy_options *o, nova_copy_result *result)
{
    nova_replica_storage target = {NULL, target_location, 0, NULL};
    nova_id *ids = NULL;
    size_t count = 0;
    int rc = 0;

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
    if (o && o->backup_id_count > 0) {
        ids = calloc(o->backup_id_count, sizeof(*ids));
        if (!ids)
            return nova_fail(NOVA_ENOMEM, "unable to select %zu backups", o->backup_id_count);
        for (size_t i = 0; rc == 0 && i < o->backup_id_count; i++) {
            nova_backup_info *info = NULL;
            rc = nova_get_backup(source, o->backup_ids[i], &info);
            if (rc == 0)
                rc = nova_id_from_hex(&ids[count++], info->backup_id);
            nova_backup_info_free(info);
        }
    }
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

/* ---- status ---------------------------------------------------------------------------- */

const char *nova_replica_state_name(nova_replica_state state)
{
    switch (state) {
    case NOVA_REPLICA_COMPLETE:
        return "complete";
    case NOVA_REPLICA_ABSENT:
        return "absent";
    case NOVA_REPLICA_INCOMPLETE:
        return "incomplete";
    case NOVA_REPLICA_DAMAGED:
        return "damaged";
    case NOVA_REPLICA_UNAVAILABLE:
        return "unavailable";
    }
    return "unknown";
}

/* The keys every copy shares, from the first copy whose config reads and whose key slots
 * open with the passphrase. */
typedef struct shared_keys {
    nova_repo_config config;
    nova_master_keys keys;
    nova_buf config_bytes;
    size_t from; /* which copy gave them */
} shared_keys;

static int open_shared_keys(shared_keys *out, const nova_replica_storage *copies, size_t count,
                            const char *passphrase)
{
    int first = 0, password = 0;
    nova_error_detail first_detail = {0};

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < count; i++) {
        int rc;
        if (!copies[i].storage)
            continue;
        rc = nova_repo_config_read(&out->config, copies[i].storage);
        if (rc == 0)
            rc = nova_keys_open(&out->keys, copies[i].storage, out->config.repo_id, passphrase,
                                strlen(passphrase), NULL);
        if (rc == 0)
            rc = nova_storage_get(copies[i].storage, NOVA_REPO_CONFIG_NAME, 0,
                                  NOVA_STORAGE_WHOLE, &out->config_bytes);
        if (rc == 0) {
            out->from = i;
            return 0;
        }
        if (rc == NOVA_EPASSWORD && !password) {
            password = 1;
            first = rc;
            first_detail = *nova_error_last();
        } else if (!first) {
            first = rc;
            first_detail = *nova_error_last();
        }
    }
    nova_buf_free(&out->config_bytes);
    if (!first)
        return nova_fail(NOVA_ENO_REPO, "none of the %zu copies could be opened", count);
    return nova_error_set(first, first_detail.sys_errno, first_detail.file, first_detail.line,
                          "%s", first_detail.message);
}

static void shared_keys_free(shared_keys *k)
{
    nova_master_keys_wipe(&k->keys);
    nova_buf_free(&k->config_bytes);
}

typedef struct status_copy {
    copy_view view;
    size_t number;
    int available;
    id_map damaged;    /* ids of objects found damaged in this copy */
    uint8_t *reported; /* bit per pack number: a problem was recorded */
    walker walk;
    int walk_ready;
    struct status_run *run;
} status_copy;

typedef struct status_run {
    nova_replicas_report *report;
    status_copy *copies;
    size_t count;
    shared_keys keys;
    int read_data;
    unsigned threads;
    progress_state progress;
    pthread_mutex_t lock; /* problems and damage recorded by workers */
    size_t problem_cap;
    id_map backups; /* id -> index in report->backups */
    nova_id *roots;
    size_t backup_cap;
} status_run;

static int add_problem(status_run *run, size_t copy, int code, const char *object,
                       const char *message)
{
    nova_replicas_report *r = run->report;
    nova_replica_problem *p;
    int rc = 0;

    pthread_mutex_lock(&run->lock);
    if (r->problem_count == run->problem_cap) {
        size_t cap = run->problem_cap ? run->problem_cap * 2 : 16;
        nova_replica_problem *grown = realloc(r->problems, cap * sizeof(*grown));
        if (!grown) {
            rc = nova_fail(NOVA_ENOMEM, "unable to record %zu problems", cap);
            goto out;
        }
        r->problems = grown;
        run->problem_cap = cap;
    }
    p = &r->problems[r->problem_count];
    p->copy = copy;
    p->code = code;
    p->object = dup_text(object);
    p->message = dup_text(message);
    if (!p->object || !p->message) {
        free(p->object);
        free(p->message);
        rc = nova_fail(NOVA_ENOMEM, "unable to record a problem");
        goto out;
    }
    r->problem_count++;
    if (is_damage(code))
        r->damaged = 1;
    else
        r->unavailable = 1;
out:
    pthread_mutex_unlock(&run->lock);
    return rc;
}

static int status_problem(void *ctx, int code, const char *object, const char *message)
{
    status_copy *c = ctx;
    return add_problem(c->run, c->number, code, object, message);
}

static void copy_unavailable(status_copy *c, int code, const char *message)
{
    nova_replica_copy *info = &c->run->report->copies[c->number];
    c->available = 0;
    info->available = 0;
    info->code = code;
    free(info->message);
    info->message = dup_text(message);
    c->run->report->unavailable = 1;
}

/* Checks the copy's config against the shared one. 1 when usable, 0 when unavailable. */
static int status_check_config(status_copy *c, const nova_replica_storage *where)
{
    status_run *run = c->run;
    nova_buf bytes = NOVA_BUF_INIT;
    char message[NOVA_ERROR_MESSAGE_MAX];
    int rc = nova_storage_get(where->storage, NOVA_REPO_CONFIG_NAME, 0, NOVA_STORAGE_WHOLE,
                              &bytes);
    int usable = 1;

    if (rc == NOVA_ENOTFOUND) {
        snprintf(message, sizeof(message), "'%s' holds no repository (make it a replica with "
                 "'nova copy --to %s')", where->name, where->name);
        copy_unavailable(c, NOVA_ENO_REPO, message);
        usable = 0;
    } else if (rc < 0) {
        snprintf(message, sizeof(message), "'%.150s': %.300s", where->name,
                 nova_error_last()->message);
        copy_unavailable(c, rc, message);
        usable = 0;
    } else if ((rc = same_config(&run->keys.config_bytes, &bytes, where->name)) < 0) {
        snprintf(message, sizeof(message), "%s", nova_error_last()->message);
        if (rc == NOVA_ECORRUPT) /* still this repository's copy: report and go on */
            add_problem(run, c->number, NOVA_ECORRUPT, NOVA_REPO_CONFIG_NAME, message);
        else {
            copy_unavailable(c, rc, message);
            usable = 0;
        }
    }
    nova_buf_free(&bytes);
    return usable;
}

static int note_damage(status_copy *c, const nova_id *id)
{
    status_run *run = c->run;
    int rc;
    pthread_mutex_lock(&run->lock);
    rc = id_map_set(&c->damaged, id, 1);
    pthread_mutex_unlock(&run->lock);
    return rc;
}

/* Hashes one object of a copy; damage is recorded, not returned. */
static int status_hash_job(void *ctx, const job *item, nova_buf *scratch)
{
    status_copy *c = ctx;
    status_run *run = c->run;
    char name[NAME_SIZE];
    int rc = read_verified(c->view.repo->storage, c->view.name, item->kind, &item->id, scratch);

    progress_done(&run->progress, item->size);
    if (rc == 0) {
        pthread_mutex_lock(&run->lock);
        run->report->objects_read++;
        run->report->bytes_read += scratch->len;
        pthread_mutex_unlock(&run->lock);
        return 0;
    }
    if (!is_damage(rc))
        return rc;
    object_name(name, item->kind, &item->id);
    NOVA_TRY(note_damage(c, &item->id));
    return add_problem(run, c->number, rc, name, nova_error_last()->message);
}

/* Hashes the copy's key slots, and with read_data its packs. */
static int status_hash_objects(status_copy *c)
{
    job_list jobs = {0};
    nova_id *ids = NULL;
    int rc = id_map_sorted(&c->view.keys, &ids);

    for (size_t i = 0; rc == 0 && i < c->view.keys.count; i++)
        rc = job_add(&jobs, KIND_KEY, &ids[i], 0);
    free(ids);
    ids = NULL;
    if (rc == 0 && c->run->read_data)
        rc = id_map_sorted(&c->view.packs, &ids);
    for (size_t i = 0; rc == 0 && ids && i < c->view.packs.count; i++) {
        uint64_t size = 0;
        id_map_get(&c->view.packs, &ids[i], &size);
        rc = job_add(&jobs, KIND_PACK, &ids[i], size);
    }
    free(ids);
    if (rc == 0) {
        c->run->progress.objects_total += jobs.count;
        for (size_t i = 0; i < jobs.count; i++)
            c->run->progress.bytes_total += jobs.items[i].size;
        rc = pool_run(&jobs, c->run->threads, status_hash_job, c, &c->run->progress);
    }
    job_list_free(&jobs);
    return rc;
}

static int register_backup(status_run *run, const nova_id *id, const nova_snapshot *snap)
{
    nova_replicas_report *r = run->report;
    nova_replica_backup *b;
    if (id_map_get(&run->backups, id, NULL))
        return 0;
    if (r->backup_count == run->backup_cap) {
        size_t cap = run->backup_cap ? run->backup_cap * 2 : 16;
        nova_replica_backup *grown = realloc(r->backups, cap * sizeof(*grown));
        nova_id *roots;
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to list %zu backups", cap);
        r->backups = grown;
        roots = realloc(run->roots, cap * sizeof(*roots));
        if (!roots)
            return nova_fail(NOVA_ENOMEM, "unable to list %zu backups", cap);
        run->roots = roots;
        run->backup_cap = cap;
    }
    b = &r->backups[r->backup_count];
    memset(b, 0, sizeof(*b));
    nova_id_to_hex(id, b->backup_id);
    b->started_ns = snap->start_ns;
    b->states = calloc(run->count + 1, sizeof(*b->states));
    if (!b->states)
        return nova_fail(NOVA_ENOMEM, "unable to record the copies of a backup");
    run->roots[r->backup_count] = snap->tree;
    NOVA_TRY(id_map_set(&run->backups, id, r->backup_count));
    r->backup_count++;
    return 0;
}

/* Reads every snapshot of the copy: damaged ones are recorded, sound ones registered. */
static int status_read_snapshots(status_copy *c)
{
    nova_buf bytes = NOVA_BUF_INIT;
    nova_id *ids = NULL;
    int rc = id_map_sorted(&c->view.snapshots, &ids);

    for (size_t i = 0; rc == 0 && i < c->view.snapshots.count; i++) {
        nova_snapshot *snap = NULL;
        char name[NAME_SIZE];
        object_name(name, KIND_SNAPSHOT, &ids[i]);
        rc = read_verified(c->view.repo->storage, c->view.name, KIND_SNAPSHOT, &ids[i], &bytes);
        if (rc == 0) {
            c->run->report->objects_read++;
            c->run->report->bytes_read += bytes.len;
            rc = nova_snapshot_open(&snap, bytes.data, bytes.len, c->view.repo->keys.enc,
                                    &ids[i]);
            if (rc < 0)
                rc = wrap_error(rc, "'%s' in '%s'", name, c->view.name);
        }
        if (rc == 0) {
            rc = register_backup(c->run, &ids[i], snap);
            nova_snapshot_free(snap);
        } else if (is_damage(rc)) {
            char message[NOVA_ERROR_MESSAGE_MAX];
            int code = rc == NOVA_ECHECKSUM ? NOVA_ECHECKSUM : NOVA_ECORRUPT;
            snprintf(message, sizeof(message), "%s", nova_error_last()->message);
            rc = note_damage(c, &ids[i]);
            if (rc == 0)
                rc = add_problem(c->run, c->number, code, name, message);
        }
    }
    free(ids);
    nova_buf_free(&bytes);
    return rc;
}

static int status_pack_reached(void *ctx, uint32_t pack)
{
    status_copy *c = ctx;
    const nova_id *pid = nova_chunk_index_pack_id(c->view.index, pack);
    char name[NAME_SIZE], message[NOVA_ERROR_MESSAGE_MAX];
    uint64_t size, expected = pack < c->view.meta_count ? c->view.metas[pack].expected_size : 0;
    int code = NOVA_ECORRUPT;

    if (!pid)
        return nova_fail(NOVA_EINTERNAL, "pack number %u out of range", pack);
    if (!id_map_get(&c->view.packs, pid, &size)) {
        object_name(name, KIND_PACK, pid);
        snprintf(message, sizeof(message), "pack '%s' is missing from '%s'", name, c->view.name);
    } else if (expected && size != expected) {
        object_name(name, KIND_PACK, pid);
        snprintf(message, sizeof(message), "pack '%s' in '%s' has %llu bytes where its index "
                 "says %llu", name, c->view.name, (unsigned long long)size,
                 (unsigned long long)expected);
    } else if (id_map_get(&c->damaged, pid, NULL))
        return 0; /* reported when it was hashed */
    else
        return 1;
    if (bit_get(c->reported, pack))
        return 0;
    bit_set(c->reported, pack);
    NOVA_TRY(add_problem(c->run, c->number, code, name, message));
    return 0;
}

/* Opens, lists and loads one copy; failures to reach it make it unavailable. */
static int status_load_copy(status_copy *c, const nova_replica_storage *where)
{
    status_run *run = c->run;
    nova_replica_copy *info = &run->report->copies[c->number];
    nova_repo *repo = NULL;
    int rc;

    info->location = dup_text(where->name);
    info->message = dup_text("");
    if (!info->location || !info->message)
        return nova_fail(NOVA_ENOMEM, "unable to describe copy '%s'", where->name);
    if (!where->storage) {
        copy_unavailable(c, where->open_code ? where->open_code : NOVA_EBACKEND,
                         where->open_message ? where->open_message : "could not be opened");
        return 0;
    }
    c->available = 1;
    info->available = 1;
    if (!status_check_config(c, where))
        return 0;
    NOVA_TRY(view_repo_new(&repo, where->storage, &run->keys.config, &run->keys.keys));
    view_init(&c->view, where->name, repo, 1);
    rc = view_list(&c->view);
    if (rc == 0)
        rc = view_load_indexes(&c->view, status_problem, c);
    if (rc == 0)
        rc = status_hash_objects(c);
    if (rc == 0)
        rc = status_read_snapshots(c);
    if (rc < 0) {
        if (rc == NOVA_ENOMEM || rc == NOVA_ECANCELLED)
            return rc;
        copy_unavailable(c, rc, nova_error_last()->message);
        return 0;
    }
    info->snapshots = c->view.snapshots.count;
    info->packs = c->view.packs.count;
    for (size_t i = 0; i < c->view.packs.cap; i++)
        if (c->view.packs.used[i])
            info->pack_bytes += c->view.packs.values[i];
    c->reported = bitmap_new(nova_chunk_index_pack_count(c->view.index));
    if (!c->reported)
        return nova_fail(NOVA_ENOMEM, "unable to track the packs of '%s'", where->name);
    walk_ops ops = {status_pack_reached, status_problem, c};
    NOVA_TRY(walker_init(&c->walk, &c->view, &ops));
    c->walk_ready = 1;
    return 0;
}

static int compare_backups(const void *a, const void *b)
{
    const nova_replica_backup *x = a, *y = b;
    if (x->started_ns != y->started_ns)
        return x->started_ns < y->started_ns ? -1 : 1;
    return strcmp(x->backup_id, y->backup_id);
}

/* The state of backup b in copy c. */
static int status_judge(status_copy *c, size_t b, nova_replica_state *state)
{
    nova_replicas_report *r = c->run->report;
    nova_id id;
    int rc;

    if (!c->available) {
        *state = NOVA_REPLICA_UNAVAILABLE;
        return 0;
    }
    NOVA_TRY(nova_id_from_hex(&id, r->backups[b].backup_id));
    if (!id_map_get(&c->view.snapshots, &id, NULL)) {
        *state = NOVA_REPLICA_ABSENT;
        return 0;
    }
    if (id_map_get(&c->damaged, &id, NULL)) {
        *state = NOVA_REPLICA_DAMAGED;
        return 0;
    }
    rc = walk_tree(&c->walk, &c->run->roots[b], 0);
    if (rc < 0) { /* unreachable mid-way: say so, and judge nothing more here */
        if (rc == NOVA_ENOMEM || rc == NOVA_ECANCELLED)
            return rc;
        copy_unavailable(c, rc, nova_error_last()->message);
        *state = NOVA_REPLICA_UNAVAILABLE;
        return 0;
    }
    *state = rc ? NOVA_REPLICA_COMPLETE : NOVA_REPLICA_INCOMPLETE;
    return 0;
}

static int status_judge_all(status_run *run)
{
    nova_replicas_report *r = run->report;
    nova_id *roots_sorted = malloc((r->backup_count + 1) * sizeof(*roots_sorted));

    /* sort the backups oldest first, keeping their roots alongside */
    if (!roots_sorted)
        return nova_fail(NOVA_ENOMEM, "unable to sort %zu backups", r->backup_count);
    qsort(r->backups, r->backup_count, sizeof(*r->backups), compare_backups);
    for (size_t b = 0; b < r->backup_count; b++) {
        nova_id id;
        uint64_t old = 0;
        nova_id_from_hex(&id, r->backups[b].backup_id);
        id_map_get(&run->backups, &id, &old);
        roots_sorted[b] = run->roots[old];
    }
    for (size_t b = 0; b < r->backup_count; b++) {
        nova_id id;
        nova_id_from_hex(&id, r->backups[b].backup_id);
        NOVA_TRY(id_map_set(&run->backups, &id, b));
    }
    free(run->roots);
    run->roots = roots_sorted;

    for (size_t b = 0; b < r->backup_count; b++)
        for (size_t c = 0; c < run->count; c++) {
            nova_replica_state state;
            NOVA_TRY(status_judge(&run->copies[c], b, &state));
            r->backups[b].states[c] = state;
            if (state == NOVA_REPLICA_COMPLETE) {
                r->backups[b].complete_count++;
                r->copies[c].complete++;
            }
        }
    return 0;
}

void nova_replicas_report_free(nova_replicas_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->copy_count; i++) {
        free(r->copies[i].location);
        free(r->copies[i].message);
    }
    free(r->copies);
    for (size_t i = 0; i < r->backup_count; i++)
        free(r->backups[i].states);
    free(r->backups);
    for (size_t i = 0; i < r->problem_count; i++) {
        free(r->problems[i].object);
        free(r->problems[i].message);
    }
    free(r->problems);
    free(r);
}

int nova_replicas_status_storages(const nova_replica_storage *copies, size_t count,
                                  const char *passphrase, const nova_replicas_options *o,
                                  nova_replicas_report **out)
{
    status_run run;
    int rc;

    *out = NULL;
    if (o && o->version != NOVA_REPLICAS_OPTIONS_VERSION)
        return nova_fail(NOVA_EINVALID, "replicas options of version %u (want %u)", o->version,
                         NOVA_REPLICAS_OPTIONS_VERSION);
    if (count == 0)
        return nova_fail(NOVA_EINVALID, "no copy to look at");
    memset(&run, 0, sizeof(run));
    NOVA_TRY(open_shared_keys(&run.keys, copies, count, passphrase));
    pthread_mutex_init(&run.lock, NULL);
    run.count = count;
    run.read_data = o ? o->read_data : 0;
    run.threads = o && o->threads ? o->threads : DEFAULT_THREADS;
    progress_init(&run.progress, o ? o->progress : NULL, o ? o->payload : NULL);
    run.report = calloc(1, sizeof(*run.report));
    run.copies = calloc(count, sizeof(*run.copies));
    rc = run.report && run.copies ? 0 : nova_fail(NOVA_ENOMEM, "unable to allocate a report");
    if (rc == 0) {
        run.report->copies = calloc(count, sizeof(*run.report->copies));
        rc = run.report->copies ? 0 : nova_fail(NOVA_ENOMEM, "unable to allocate a report");
    }
    if (rc == 0)
        run.report->copy_count = count;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        run.copies[i].run = &run;
        run.copies[i].number = i;
        rc = status_load_copy(&run.copies[i], &copies[i]);
    }
    if (rc == 0)
        rc = status_judge_all(&run);
    for (size_t i = 0; run.copies && i < count; i++) {
        if (run.copies[i].walk_ready)
            walker_free(&run.copies[i].walk);
        free(run.copies[i].reported);
        id_map_free(&run.copies[i].damaged);
        view_free(&run.copies[i].view);
    }
    free(run.copies);
    free(run.roots);
    id_map_free(&run.backups);
    shared_keys_free(&run.keys);
    pthread_mutex_destroy(&run.lock);
    if (rc < 0) {
        nova_replicas_report_free(run.report);
        return rc;
    }
    *out = run.report;
    return 0;
}

/* ---- repair ---------------------------------------------------------------------------- */

typedef struct repair_run {
    nova_repair_result *result;
    nova_storage *target;
    const char *target_name;
    const nova_replica_storage *sources;
    size_t source_count;
    shared_keys keys;
    progress_state progress;
    unsigned threads;
    pthread_mutex_t lock;
    job_list damaged; /* objects of the target whose bytes do not match their names */
    size_t problem_cap;
} repair_run;

static int repair_problem(repair_run *run, int code, const char *object, const char *message)
{
    nova_repair_result *r = run->result;
    if (r->problem_count == run->problem_cap) {
        size_t cap = run->problem_cap ? run->problem_cap * 2 : 16;
        nova_replica_problem *grown = realloc(r->problems, cap * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to record %zu problems", cap);
        r->problems = grown;
        run->problem_cap = cap;
    }
    nova_replica_problem *p = &r->problems[r->problem_count];
    p->copy = 0;
    p->code = code;
    p->object = dup_text(object);
    p->message = dup_text(message);
    if (!p->object || !p->message) {
        free(p->object);
        free(p->message);
        return nova_fail(NOVA_ENOMEM, "unable to record a problem");
    }
    r->problem_count++;
    return 0;
}

static int repair_hash_job(void *ctx, const job *item, nova_buf *scratch)
{
    repair_run *run = ctx;
    int rc = read_verified(run->target, run->target_name, item->kind, &item->id, scratch);

    progress_done(&run->progress, item->size);
    pthread_mutex_lock(&run->lock);
    run->result->objects_checked++;
    if (rc == 0)
        run->result->bytes_read += scratch->len;
    else if (is_damage(rc) && rc != NOVA_ENOTFOUND) {
        run->result->damaged_found++;
        rc = job_add(&run->damaged, item->kind, &item->id, item->size);
    }
    pthread_mutex_unlock(&run->lock);
    return rc == NOVA_ENOTFOUND ? 0 : rc; /* gone since the listing: the fill copies it */
}

/* Hashes every object of the target that is named by its hash. */
static int repair_scan_target(repair_run *run)
{
    static const object_kind kinds[] = {KIND_KEY, KIND_INDEX, KIND_SNAPSHOT, KIND_PACK};
    job_list jobs = {0};
    int rc = 0;

    for (size_t k = 0; rc == 0 && k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        id_map listed = {0};
        nova_id *ids = NULL;
        rc = list_objects(run->target, run->target_name, kinds[k], &listed);
        if (rc == 0)
            rc = id_map_sorted(&listed, &ids);
        for (size_t i = 0; rc == 0 && i < listed.count; i++) {
            uint64_t size = 0;
            id_map_get(&listed, &ids[i], &size);
            rc = job_add(&jobs, kinds[k], &ids[i], size);
        }
        free(ids);
        id_map_free(&listed);
    }
    if (rc == 0) {
        run->progress.objects_total += jobs.count;
        for (size_t i = 0; i < jobs.count; i++)
            run->progress.bytes_total += jobs.items[i].size;
        rc = pool_run(&jobs, run->threads, repair_hash_job, run, &run->progress);
    }
    job_list_free(&jobs);
    return rc;
}

/* Replaces one damaged object with verified bytes from the first source holding them. */
static int repair_replace(repair_run *run, const job *item, nova_buf *bytes)
{
    char name[NAME_SIZE], message[NOVA_ERROR_MESSAGE_MAX];
    int rc;

    object_name(name, item->kind, &item->id);
    for (size_t s = 0; s < run->source_count; s++) {
        if (!run->sources[s].storage)
            continue;
        rc = read_verified(run->sources[s].storage, run->sources[s].name, item->kind, &item->id,
                           bytes);
        if (rc < 0)
            continue; /* missing or damaged there too, or unreachable: try the next */
        rc = nova_storage_del(run->target, name);
        if (rc < 0 && rc != NOVA_ENOTFOUND)
            return wrap_error(rc, "unable to remove the damaged '%s' from '%s'", name,
                              run->target_name);
        rc = nova_storage_put(run->target, name, bytes->data, bytes->len);
        if (rc < 0 && rc != NOVA_EEXISTS)
            return wrap_error(rc, "unable to write '%s' to '%s' (the damaged copy was "
                              "removed; run the repair again)", name, run->target_name);
        run->result->replaced++;
        return 0;
    }
    run->result->unrepairable++;
    snprintf(message, sizeof(message), "'%s' in '%s' is damaged and no source holds it intact",
             name, run->target_name);
    return repair_problem(run, NOVA_ECHECKSUM, name, message);
}

/* The target's config: absent (the fill makes the target a replica), equal, damaged
 * (replaced), or another repository's (refused). */
static int repair_config(repair_run *run)
{
    nova_buf bytes = NOVA_BUF_INIT;
    int rc = nova_storage_get(run->target, NOVA_REPO_CONFIG_NAME, 0, NOVA_STORAGE_WHOLE, &bytes);

    if (rc == NOVA_ENOTFOUND)
        rc = 0;
    else if (rc < 0)
        rc = wrap_error(rc, "unable to read the config of '%s'", run->target_name);
    else if ((rc = same_config(&run->keys.config_bytes, &bytes, run->target_name)) ==
             NOVA_ECORRUPT) {
        run->result->damaged_found++;
        rc = nova_storage_del(run->target, NOVA_REPO_CONFIG_NAME);
        if (rc == 0)
            rc = nova_storage_put(run->target, NOVA_REPO_CONFIG_NAME, run->keys.config_bytes.data,
                                  run->keys.config_bytes.len);
        if (rc < 0)
            rc = wrap_error(rc, "unable to replace the config of '%s'", run->target_name);
        else
            run->result->replaced++;
    }
    nova_buf_free(&bytes);
    return rc;
}

/* Gives every backup of the target the packs and index files it lacks, from the first
 * source holding that backup. */
static int repair_fill(repair_run *run, const nova_replicas_options *o)
{
    nova_replica_storage target = {run->target, run->target_name, 0, NULL};
    id_map wanted = {0}, filled = {0};
    nova_id *all = NULL, *ids = NULL;
    int rc = list_objects(run->target, run->target_name, KIND_SNAPSHOT, &wanted);

    if (rc == 0)
        rc = id_map_sorted(&wanted, &all);
    if (rc == 0 && wanted.count > 0 && !(ids = malloc(wanted.count * sizeof(*ids))))
        rc = nova_fail(NOVA_ENOMEM, "unable to list %zu backups", wanted.count);
    for (size_t s = 0; rc == 0 && s < run->source_count && filled.count < wanted.count; s++) {
        nova_copy_options copy = NOVA_COPY_OPTIONS_INIT;
        nova_copy_result done;
        nova_repo *repo = NULL;
        id_map held = {0};
        size_t n = 0;

        if (!run->sources[s].storage)
            continue;
        rc = list_objects(run->sources[s].storage, run->sources[s].name, KIND_SNAPSHOT, &held);
        for (size_t i = 0; rc == 0 && i < wanted.count; i++)
            if (id_map_get(&held, &all[i], NULL) && !id_map_get(&filled, &all[i], NULL))
                ids[n++] = all[i];
        if (rc == 0 && n > 0)
            rc = view_repo_new(&repo, run->sources[s].storage, &run->keys.config,
                               &run->keys.keys);
        if (rc == 0 && n > 0) {
            copy.threads = run->threads;
            copy.progress = o ? o->progress : NULL;
            copy.payload = o ? o->payload : NULL;
            rc = nova_copy_to_storage(repo, run->sources[s].name, &target, ids, n, 1, &copy,
                                      &done);
            run->result->missing_copied += done.packs_copied + done.indexes_copied +
                                           done.keys_copied;
        }
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = id_map_set(&filled, &ids[i], 1);
        view_repo_free(repo);
        id_map_free(&held);
    }
    free(all);
    free(ids);
    id_map_free(&wanted);
    id_map_free(&filled);
    return rc;
}

void nova_repair_result_free(nova_repair_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->problem_count; i++) {
        free(r->problems[i].object);
        free(r->problems[i].message);
    }
    free(r->problems);
    free(r);
}

int nova_replicas_repair_storages(const nova_replica_storage *target,
                                  const nova_replica_storage *sources, size_t source_count,
                                  const char *passphrase, const nova_replicas_options *o,
                                  nova_repair_result **out)
{
    nova_replica_storage *all = NULL;
    nova_buf bytes = NOVA_BUF_INIT;
    held_lock lock;
    repair_run run;
    int rc;

    *out = NULL;
    if (o && o->version != NOVA_REPLICAS_OPTIONS_VERSION)
        return nova_fail(NOVA_EINVALID, "replicas options of version %u (want %u)", o->version,
                         NOVA_REPLICAS_OPTIONS_VERSION);
    if (source_count == 0)
        return nova_fail(NOVA_EINVALID, "no source to repair '%s' from", target->name);
    memset(&run, 0, sizeof(run));
    memset(&lock, 0, sizeof(lock));
    run.target = target->storage;
    run.target_name = target->name;
    run.sources = sources;
    run.source_count = source_count;
    run.threads = o && o->threads ? o->threads : DEFAULT_THREADS;
    progress_init(&run.progress, o ? o->progress : NULL, o ? o->payload : NULL);
    pthread_mutex_init(&run.lock, NULL);

    /* the keys: from a source first, the target last */
    all = calloc(source_count + 1, sizeof(*all));
    if (!all) {
        pthread_mutex_destroy(&run.lock);
        return nova_fail(NOVA_ENOMEM, "unable to list the copies");
    }
    memcpy(all, sources, source_count * sizeof(*all));
    all[source_count] = *target;
    rc = open_shared_keys(&run.keys, all, source_count + 1, passphrase);
    free(all);
    if (rc == 0) {
        run.result = calloc(1, sizeof(*run.result));
        rc = run.result ? 0 : nova_fail(NOVA_ENOMEM, "unable to allocate a repair result");
    }
    if (rc == 0)
        rc = repair_config(&run);
    if (rc == 0 && nova_storage_stat(run.target, NOVA_REPO_CONFIG_NAME,
                                     &(nova_object_info){0}) == 0)
        rc = lock_take(&lock, run.target, run.keys.keys.enc, "nova replicas repair",
                       run.target_name);
    if (rc == 0)
        rc = repair_scan_target(&run);
    for (size_t i = 0; rc == 0 && i < run.damaged.count; i++)
        rc = repair_replace(&run, &run.damaged.items[i], &bytes);
    if (rc == 0)
        rc = repair_fill(&run, o);
    lock_drop(&lock);
    nova_buf_free(&bytes);
    job_list_free(&run.damaged);
    shared_keys_free(&run.keys);
    pthread_mutex_destroy(&run.lock);
    if (rc < 0) {
        nova_repair_result_free(run.result);
        return rc;
    }
    *out = run.result;
    return 0;
}

/* ---- the public calls on locations ----------------------------------------------------- */

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
            texts[i] = dup_text(nova_error_last()->message);
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
