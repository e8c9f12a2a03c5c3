/*
 * backup_engine.c -- the parallel pipeline of a backup (design in backup_engine.h).
 *
 * Locks (one at a time, except that an uploader writing an index delta holds
 * delta_mutex and then takes handle->index_lock to publish it; nothing takes them in the
 * other order):
 *   engine->mutex       batch queue, completed list, windows and their chunk tasks,
 *                       input_closed, owners, the failure; workers wait on work_cond, the
 *                       walk on main_cond;
 *   engine->dedup_mutex the claimed-id set and compressed_size;
 *   handle->index_lock  the shared chunk index (lookups here, publication by uploaders);
 *   engine->up_mutex    the upload queue and the pool of pack buffers;
 *   engine->delta_mutex the index delta, its pack list and bytes_added (uploaders).
 * Invariants:
 *   - a window is in the free list only when its owner has collected its chunk ids and
 *     no later window still needs its tail; chunk tasks only point into posted windows;
 *   - a blob id is stored by exactly one writer: the one whose claim inserted it;
 *   - an index delta names only packs whose put has succeeded, and its entries are
 *     published into the shared index only after the delta itself is stored;
 *   - after a failure nothing new is stored: workers skip their jobs, handoffs and the
 *     uploader drop packs, no index delta is written.
 */
#include "backup/backup_engine.h"

#include "common/err.h"
#include "fsmeta/scan.h"
#include "repo/index.h"
#include "repo/pack.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024u * 1024u)
/* Files up to this size are read whole into a worker's buffer. */
#define SMALL_MAX (1u * MIB)
/* Windows for large files hold 1.5 times the largest chunk, and at least this: after
 * the tail of the last one (at most a chunk) at least half a chunk is new. */
#define WINDOW_MIN (4u * MIB)
#define WINDOW_ALIGN 4096u
/* Packs are flushed at the repository's target size, but never above this: every worker
 * and the walk fill one at a time, and up to `uploads + 1` more are being uploaded or wait
 * for an uploader, so memory is about (workers + uploads + 2) x this. */
#define PACK_LIMIT_MAX (2u * MIB)
/* A batch closes at this many files, file bytes or metadata bytes. */
#define BATCH_FILES 256u
#define BATCH_BYTES (4u * MIB)
#define BATCH_ARENA (64u * 1024u)
/* A batch is submitted early, before it is full, when the workers are starving. */
#define BATCH_EARLY_FILES 32u
/* Uploads in flight at most, whatever the caller asks. */
#define UPLOADS_MAX 64u
/* Index deltas are written when their payload reaches this size (and at the end). */
#define INDEX_DELTA_MAX (2u * MIB)

struct nova_bk_batch {
    nova_bk_batch *next;
    nova_bk_job *jobs; /* BATCH_FILES */
    size_t count;
    uint8_t *arena;
    size_t arena_used, arena_cap;
    uint64_t bytes;
};

typedef struct chunk_task {
    uint32_t offset;
    uint32_t length;
    nova_id id;
} chunk_task;

typedef struct window {
    struct window *next_free;  /* the pool's free list */
    struct window *next_task;  /* the list of windows with unclaimed chunks */
    struct window *next_owned; /* the owner's FIFO of posted windows */
    uint8_t *data;
    size_t len;
    chunk_task *chunks;
    size_t count;         /* chunks posted */
    size_t next_chunk;    /* next one to be claimed */
    size_t done;          /* chunks processed */
    size_t touched;       /* bytes of data written since the pages were released */
    int collected;        /* the owner took the ids */
    int tail_held;        /* the owner still needs the bytes after the last chunk */
} window;

/* A thread that stores blobs: one per worker, one for the walk's trees. */
typedef struct blob_writer {
    nova_bk_engine *engine;
    nova_hmac *hmac;
    nova_pack_writer *pack;
    nova_buf spare; /* swapped with the pack's bytes by finish */
} blob_writer;

typedef struct worker {
    blob_writer writer;
    pthread_t thread;
    int started;
    uint8_t *small;     /* SMALL_MAX + 1 bytes */
    nova_id *small_ids; /* room for the chunks of a small file */
    size_t small_id_cap;
} worker;

typedef struct upload_item {
    nova_buf bytes;
    nova_id pack_id;
    nova_pack_entry *entries;
    size_t count;
} upload_item;

struct nova_bk_engine {
    nova_repository *handle;
    nova_repo *repo;
    nova_chunk_index *index; /* the handle's; lookups under handle->index_lock */
    size_t pack_limit;
    size_t window_size;

    pthread_mutex_t mutex;
    pthread_cond_t work_cond;
    pthread_cond_t main_cond;
    nova_bk_batch *queue_head, *queue_tail;
    atomic_size_t queued;
    size_t queue_max;
    nova_bk_batch *done_head, *done_tail;
    nova_bk_batch *free_batches;
    nova_bk_batch *current; /* being filled by the walk */
    nova_bk_batch *ready;   /* full, waiting for room in the queue */
    window *windows;
    size_t window_count;
    window *free_windows;
    window *task_head, *task_tail;
    int input_closed;
    unsigned owners;      /* workers reading a large file */
    unsigned owner_limit; /* window_count - 1: each owner may hold a tail window */

    atomic_int failed;
    char failure[NOVA_ERROR_MESSAGE_MAX];
    int failure_errno;

    worker *workers;
    unsigned worker_count;
    blob_writer tree_writer;

    pthread_mutex_t dedup_mutex;
    nova_bk_claims *claims;
    uint64_t compressed_size;

    pthread_t *uploaders;
    unsigned uploader_count, uploaders_started;
    pthread_mutex_t up_mutex;
    pthread_cond_t up_cond;
    upload_item *up_queue; /* a ring of up_cap: packs waiting for an uploader */
    size_t up_cap;         /* packs waiting plus packs being stored, at most */
    size_t up_head, up_waiting, up_storing;
    int up_stop;
    nova_buf *buffers; /* pack buffers to reuse (they keep their allocation) */
    size_t buffer_count, buffer_cap;
    pthread_mutex_t delta_mutex;
    nova_index_writer *index_writer;
    nova_index_pack *delta_packs; /* the packs of the unwritten delta, entries owned */
    size_t delta_count, delta_cap;
    size_t delta_entries;
    uint64_t bytes_added; /* written by the uploaders, read after they stopped */

    atomic_uint_least64_t bytes_read;
    atomic_uint_least64_t bytes_done;
};

/* ------------------------------------------------------------------ failure */

int nova_bk_engine_fail(nova_bk_engine *e, int code)
{
    int expected = 0;
    const nova_error_detail *last = nova_error_last();

    pthread_mutex_lock(&e->mutex);
    if (atomic_compare_exchange_strong(&e->failed, &expected, code)) {
        if (last->code == code)
            snprintf(e->failure, sizeof(e->failure), "%s", last->message);
        else
            snprintf(e->failure, sizeof(e->failure), "%s", nova_error_message(code));
        e->failure_errno = last->code == code ? last->sys_errno : 0;
    }
    pthread_cond_broadcast(&e->work_cond);
    pthread_cond_broadcast(&e->main_cond);
    pthread_mutex_unlock(&e->mutex);
    pthread_mutex_lock(&e->up_mutex);
    pthread_cond_broadcast(&e->up_cond);
    pthread_mutex_unlock(&e->up_mutex);
    return atomic_load(&e->failed);
}

int nova_bk_engine_failed(nova_bk_engine *e)
{
    int code = atomic_load(&e->failed);
    if (code == 0)
        return 0;
    pthread_mutex_lock(&e->mutex);
    nova_error_set(code, e->failure_errno, __FILE__, __LINE__, "%s", e->failure);
    pthread_mutex_unlock(&e->mutex);
    return code;
}

static int is_failed(const nova_bk_engine *e)
{
    return atomic_load_explicit(&e->failed, memory_order_relaxed) != 0;
}

/* ------------------------------------------------------------------ uploads and index */

/* Pack buffers circulate between the writers and the uploader instead of being freed
 * and allocated again: that keeps the heap from fragmenting under big buffers. */
static void take_buffer(nova_bk_engine *e, nova_buf *out)
{
    pthread_mutex_lock(&e->up_mutex);
    if (e->buffer_count)
        *out = e->buffers[--e->buffer_count];
    else
        *out = (nova_buf)NOVA_BUF_INIT;
    pthread_mutex_unlock(&e->up_mutex);
    out->len = 0;
}

static void give_buffer(nova_bk_engine *e, nova_buf *b)
{
    b->len = 0;
    pthread_mutex_lock(&e->up_mutex);
    if (e->buffer_count < e->buffer_cap) {
        e->buffers[e->buffer_count++] = *b;
        *b = (nova_buf)NOVA_BUF_INIT;
    }
    pthread_mutex_unlock(&e->up_mutex);
    nova_buf_free(b);
}

/* Writes the index delta of every pack uploaded since the last one, then publishes its
 * entries into the shared chunk index. An uploader under delta_mutex, or the finisher
 * after the uploaders stopped. */
static int write_delta(nova_bk_engine *e)
{
    char name[NOVA_INDEX_NAME_LEN + 1];
    nova_buf sealed = NOVA_BUF_INIT;
    nova_index published = NOVA_INDEX_INIT;
    nova_id index_id;
    int rc;

    if (nova_index_writer_pack_count(e->index_writer) == 0)
        return 0;
    rc = nova_index_writer_finish(e->index_writer, &sealed, &index_id, e->repo->keys.enc,
                                  &e->repo->config.codec);
    if (rc == 0) {
        nova_index_storage_name(name, &index_id);
        rc = nova_storage_put(e->repo->storage, name, sealed.data, sealed.len);
        if (rc == 0)
            e->bytes_added += sealed.len;
        else if (rc == NOVA_EEXISTS)
            rc = 0;
    }
    nova_buf_free(&sealed);
    if (rc == 0) {
        published.pack_count = e->delta_count;
        published.packs = e->delta_packs;
        published.entry_count = e->delta_entries;
        pthread_mutex_lock(&e->handle->index_lock);
        rc = nova_chunk_index_add_index(e->index, &published, NULL);
        pthread_mutex_unlock(&e->handle->index_lock);
    }
    for (size_t i = 0; i < e->delta_count; i++)
        free((void *)(uintptr_t)e->delta_packs[i].entries);
    e->delta_count = 0;
    e->delta_entries = 0;
    return rc;
}

/* Records a stored pack in the index delta, writing the delta when it is big enough.
 * Takes ownership of item->entries. Under delta_mutex. */
static int note_stored_pack(nova_bk_engine *e, upload_item *item, uint64_t stored_bytes)
{
    int rc;

    e->bytes_added += stored_bytes;
    rc = nova_index_writer_add_pack(e->index_writer, &item->pack_id, item->entries,
                                    item->count);
    if (rc == 0 && e->delta_count == e->delta_cap) {
        size_t cap = e->delta_cap ? e->delta_cap * 2 : 64;
        nova_index_pack *grown = realloc(e->delta_packs, cap * sizeof(*grown));
        if (!grown)
            rc = nova_fail(NOVA_ENOMEM, "unable to track the packs of an index delta");
        else {
            e->delta_packs = grown;
            e->delta_cap = cap;
        }
    }
    if (rc < 0) {
        free(item->entries);
        return rc;
    }
    e->delta_packs[e->delta_count].pack_id = item->pack_id;
    e->delta_packs[e->delta_count].entries = item->entries;
    e->delta_packs[e->delta_count].entry_count = item->count;
    e->delta_count++;
    e->delta_entries += item->count;
    if (nova_index_writer_payload_size(e->index_writer) >= INDEX_DELTA_MAX && !is_failed(e))
        return write_delta(e);
    return 0;
}

/* Stores one pack (uploaders run this in parallel), then notes it in the index delta. */
static int upload_one(nova_bk_engine *e, upload_item *item)
{
    char name[NOVA_PACK_NAME_LEN + 1];
    uint64_t stored_bytes = 0;
    int rc;

    nova_pack_storage_name(name, &item->pack_id);
    rc = nova_storage_put(e->repo->storage, name, item->bytes.data, item->bytes.len);
    if (rc == 0)
        stored_bytes = item->bytes.len;
    else if (rc == NOVA_EEXISTS) /* named by its hash: the same bytes are stored */
        rc = 0;
    give_buffer(e, &item->bytes);
    if (rc < 0) {
        free(item->entries);
        return rc;
    }
    pthread_mutex_lock(&e->delta_mutex);
    rc = note_stored_pack(e, item, stored_bytes);
    pthread_mutex_unlock(&e->delta_mutex);
    return rc;
}

static void *uploader_main(void *arg)
{
    nova_bk_engine *e = arg;

    pthread_mutex_lock(&e->up_mutex);
    for (;;) {
        upload_item item;
        int rc;
        while (!e->up_waiting && !e->up_stop)
            pthread_cond_wait(&e->up_cond, &e->up_mutex);
        if (!e->up_waiting)
            break;
        item = e->up_queue[e->up_head];
        e->up_head = (e->up_head + 1) % e->up_cap;
        e->up_waiting--;
        e->up_storing++; /* counted (memory) until stored */
        pthread_mutex_unlock(&e->up_mutex);
        if (is_failed(e)) {
            nova_buf_free(&item.bytes);
            free(item.entries);
            rc = 0;
        } else {
            rc = upload_one(e, &item);
        }
        if (rc < 0)
            nova_bk_engine_fail(e, rc);
        pthread_mutex_lock(&e->up_mutex);
        e->up_storing--;
        pthread_cond_broadcast(&e->up_cond);
    }
    pthread_mutex_unlock(&e->up_mutex);
    return NULL;
}

/* Hands a finished pack to the uploaders, waiting while up_cap packs are waiting or being
 * stored (that bounds memory). Takes ownership of bytes and entries in every case. */
static int hand_off(nova_bk_engine *e, nova_buf *bytes, const nova_id *pack_id,
                    nova_pack_entry *entries, size_t count)
{
    upload_item *slot;

    pthread_mutex_lock(&e->up_mutex);
    while (e->up_waiting + e->up_storing >= e->up_cap && !is_failed(e))
        pthread_cond_wait(&e->up_cond, &e->up_mutex);
    if (is_failed(e)) {
        pthread_mutex_unlock(&e->up_mutex);
        nova_buf_free(bytes);
        free(entries);
        return nova_bk_engine_failed(e);
    }
    slot = &e->up_queue[(e->up_head + e->up_waiting) % e->up_cap];
    slot->bytes = *bytes;
    slot->pack_id = *pack_id;
    slot->entries = entries;
    slot->count = count;
    e->up_waiting++;
    *bytes = (nova_buf)NOVA_BUF_INIT;
    pthread_cond_broadcast(&e->up_cond);
    pthread_mutex_unlock(&e->up_mutex);
    return 0;
}

static int flush_writer(blob_writer *w)
{
    const nova_pack_entry *entries;
    nova_pack_entry *copy;
    size_t count;
    nova_id pack_id;

    if (nova_pack_writer_count(w->pack) == 0)
        return 0;
    if (!w->spare.data)
        take_buffer(w->engine, &w->spare);
    NOVA_TRY(nova_pack_writer_finish(w->pack, &w->spare, &pack_id));
    entries = nova_pack_writer_entries(w->pack, &count);
    copy = malloc(count * sizeof(*copy));
    if (!copy)
        return nova_fail(NOVA_ENOMEM, "unable to hold the entries of a pack");
    memcpy(copy, entries, count * sizeof(*copy));
    NOVA_TRY(hand_off(w->engine, &w->spare, &pack_id, copy, count));
    return nova_pack_writer_reset(w->pack);
}

/* ------------------------------------------------------------------ storing blobs */

/* Hashes a blob and stores it unless the repository or this backup has it. File chunks
 * (`account`) count towards compressed_size whether stored or found. */
static int store_blob(blob_writer *w, nova_blob_type type, int account, const uint8_t *data,
                      size_t len, nova_id *id)
{
    nova_bk_engine *e = w->engine;
    nova_chunk_location loc;
    const nova_pack_entry *entries;
    nova_bk_claim *claim;
    size_t count;
    uint32_t slot;
    int found, rc;

    NOVA_TRY(nova_hmac_compute(w->hmac, id, data, len));
    pthread_mutex_lock(&e->handle->index_lock);
    found = nova_chunk_index_lookup(e->index, id, &loc) == 1;
    pthread_mutex_unlock(&e->handle->index_lock);
    pthread_mutex_lock(&e->dedup_mutex);
    if (found) {
        if (account)
            e->compressed_size += loc.length - NOVA_TAG_LEN;
        pthread_mutex_unlock(&e->dedup_mutex);
        return 0;
    }
    rc = nova_bk_claims_claim(e->claims, id, &slot);
    if (rc == 0 && account) {
        claim = nova_bk_claims_at(e->claims, slot);
        if (claim->stored_length)
            e->compressed_size += claim->stored_length - NOVA_TAG_LEN;
        else
            claim->early_refs++;
    }
    pthread_mutex_unlock(&e->dedup_mutex);
    if (rc <= 0)
        return rc;

    NOVA_TRY(nova_pack_writer_add(w->pack, type, id, data, len));
    entries = nova_pack_writer_entries(w->pack, &count);
    pthread_mutex_lock(&e->dedup_mutex);
    claim = nova_bk_claims_at(e->claims, slot);
    claim->stored_length = entries[count - 1].length;
    e->compressed_size += (uint64_t)(claim->stored_length - NOVA_TAG_LEN) *
                          ((uint64_t)claim->early_refs + (account ? 1 : 0));
    claim->early_refs = 0;
    pthread_mutex_unlock(&e->dedup_mutex);
    if (nova_pack_writer_size(w->pack) >= e->pack_limit)
        return flush_writer(w);
    return 0;
}

static int writer_init(blob_writer *w, nova_bk_engine *e)
{
    w->engine = e;
    NOVA_TRY(nova_hmac_new(&w->hmac, e->repo->keys.id, sizeof(e->repo->keys.id)));
    return nova_pack_writer_new(&w->pack, e->repo->keys.enc, &e->repo->config.codec);
}

static void writer_free(blob_writer *w)
{
    nova_hmac_free(w->hmac);
    nova_pack_writer_free(w->pack);
    nova_buf_free(&w->spare);
}

int nova_bk_engine_store_tree(nova_bk_engine *e, const void *data, size_t len, nova_id *id)
{
    int rc;
    if (is_failed(e))
        return nova_bk_engine_failed(e);
    rc = store_blob(&e->tree_writer, NOVA_BLOB_TREE, 0, data, len, id);
    if (rc < 0)
        nova_bk_engine_fail(e, rc);
    return rc;
}

int nova_bk_engine_account(nova_bk_engine *e, const nova_id *chunks, uint64_t count)
{
    uint64_t sum = 0, i;
    pthread_mutex_lock(&e->handle->index_lock);
    for (i = 0; i < count; i++) {
        nova_chunk_location loc;
        if (nova_chunk_index_lookup(e->index, &chunks[i], &loc) != 1)
            break;
        sum += loc.length - NOVA_TAG_LEN;
    }
    pthread_mutex_unlock(&e->handle->index_lock);
    if (i < count)
        return 0;
    pthread_mutex_lock(&e->dedup_mutex);
    e->compressed_size += sum;
    pthread_mutex_unlock(&e->dedup_mutex);
    return 1;
}

/* ------------------------------------------------------------------ jobs: helpers */

static void job_fail(nova_bk_job *job, int code)
{
    const nova_error_detail *last = nova_error_last();
    job->error = code;
    free(job->message);
    job->message = strdup(last->code == code ? last->message : nova_error_message(code));
}

/* Records the metadata of what was read (the file may have changed since the scan). */
static void entry_update(nova_bk_job *job, const struct stat *st)
{
    nova_tree_entry fresh;
    nova_tree_entry_init(&fresh);
    if (nova_fsmeta_entry_from_stat(&fresh, st, job->path) < 0 || fresh.type != NOVA_TREE_FILE)
        return;
    job->entry.flags = fresh.flags;
    job->entry.mode = fresh.mode;
    job->entry.uid = fresh.uid;
    job->entry.gid = fresh.gid;
    job->entry.size = fresh.size;
    job->entry.mtime_ns = fresh.mtime_ns;
    job->entry.atime_ns = fresh.atime_ns;
    job->entry.ctime_ns = fresh.ctime_ns;
    job->entry.inode = fresh.inode;
    job->entry.device = fresh.device;
    job->entry.nlink = fresh.nlink;
}

static int set_chunks(nova_bk_job *job, const nova_id *ids, size_t count)
{
    free(job->owned_chunks);
    job->owned_chunks = NULL;
    job->entry.chunks = NULL;
    job->entry.chunk_count = count;
    if (count == 0)
        return 0;
    if (count == 1) {
        job->single_chunk = ids[0];
        job->entry.chunks = &job->single_chunk;
        return 0;
    }
    job->owned_chunks = malloc(count * sizeof(*ids));
    if (!job->owned_chunks)
        return nova_fail(NOVA_ENOMEM, "unable to hold the chunk list of '%s'", job->path);
    memcpy(job->owned_chunks, ids, count * sizeof(*ids));
    job->entry.chunks = job->owned_chunks;
    return 0;
}

static int read_error(const char *path)
{
    int err = errno;
    return nova_fail_errno(nova_error_from_errno(err), err, "unable to read '%s'", path);
}

/* Reads up to cap bytes (stopping early only at end of file). */
static int read_fully(int fd, uint8_t *buf, size_t cap, size_t *got, const char *path)
{
    *got = 0;
    while (*got < cap) {
        ssize_t n = read(fd, buf + *got, cap - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return read_error(path);
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return 0;
}

static void after_read_hook(const char *path)
{
    const nova_backup_test_hooks *hooks = nova_bk_hooks();
    if (hooks && hooks->after_read)
        hooks->after_read(path, hooks->payload);
}

/* ------------------------------------------------------------------ small files */

/* Reads a file of at most SMALL_MAX bytes whole, then stores its chunks unless it
 * changed during the read and `store_changed` is clear. */
static int read_small(worker *wk, nova_bk_job *job, int fd, const struct stat *before,
                      int store_changed, int *changed)
{
    nova_bk_engine *e = wk->writer.engine;
    const nova_chunker *chunker = &e->repo->chunker;
    nova_id *ids = wk->small_ids;
    size_t got, pos = 0, count = 0;
    struct stat after;
    int rc;

    NOVA_TRY(read_fully(fd, wk->small, SMALL_MAX + 1, &got, job->path));
    job->bytes_read += got;
    atomic_fetch_add(&e->bytes_read, got);
    after_read_hook(job->path);
    if (fstat(fd, &after) != 0)
        return read_error(job->path);
    entry_update(job, before);
    *changed = got != (uint64_t)before->st_size || nova_fsmeta_changed_since(&job->entry, &after);
    if (*changed && !store_changed)
        return 0;
    if (*changed)
        entry_update(job, &after);
    if (got > SMALL_MAX)
        got = SMALL_MAX + 1; /* grew while read: keep what was read (reported) */
    job->entry.size = got;
    while (pos < got) {
        size_t cut = nova_chunker_next(chunker, wk->small + pos, got - pos);
        if (count == wk->small_id_cap) {
            rc = nova_fail(NOVA_EINTERNAL, "'%s': too many chunks in a small file", job->path);
            return nova_bk_engine_fail(e, rc);
        }
        rc = store_blob(&wk->writer, NOVA_BLOB_DATA, 1, wk->small + pos, cut, &ids[count]);
        if (rc < 0)
            return nova_bk_engine_fail(e, rc);
        count++;
        pos += cut;
    }
    atomic_fetch_add(&e->bytes_done, got);
    rc = set_chunks(job, ids, count);
    return rc < 0 ? nova_bk_engine_fail(e, rc) : 0;
}

/* ------------------------------------------------------------------ large files */

/* Runs one chunk task from the head of the task list. Called and returns with the
 * engine mutex held. */
static void run_chunk_task(worker *wk)
{
    nova_bk_engine *e = wk->writer.engine;
    window *win = e->task_head;
    size_t k = win->next_chunk++;
    chunk_task *task = &win->chunks[k];

    if (win->next_chunk == win->count) {
        e->task_head = win->next_task;
        if (!e->task_head)
            e->task_tail = NULL;
        win->next_task = NULL;
    }
    pthread_mutex_unlock(&e->mutex);
    if (!is_failed(e)) {
        int rc = store_blob(&wk->writer, NOVA_BLOB_DATA, 1, win->data + task->offset,
                            task->length, &task->id);
        if (rc < 0)
            nova_bk_engine_fail(e, rc);
        atomic_fetch_add(&e->bytes_done, task->length);
    }
    pthread_mutex_lock(&e->mutex);
    if (++win->done == win->count)
        pthread_cond_broadcast(&e->work_cond);
}

/* The large file a worker is reading: its windows in order, and the ids so far. */
typedef struct large_file {
    window *head, *tail; /* posted, not yet collected */
    window *tail_window; /* holds the bytes after the last chunk */
    nova_id *ids;
    size_t count, cap;
    int nomem;
} large_file;

/* Engine mutex held. Returns a window to the pool when nobody needs it any more. */
static void release_if_idle(nova_bk_engine *e, window *win)
{
    if (!win->collected || win->tail_held)
        return;
    win->next_free = e->free_windows;
    e->free_windows = win;
    pthread_cond_broadcast(&e->work_cond);
}

/* Engine mutex held, no owner left (every window free). Gives the windows' pages back
 * to the system: they are only needed while a large file is read, and faulting them in
 * again costs far less than reading the next large file. */
static void release_window_memory(nova_bk_engine *e)
{
    for (size_t i = 0; i < e->window_count; i++) {
        window *win = &e->windows[i];
        if (win->touched)
            (void)madvise(win->data, (win->touched + WINDOW_ALIGN - 1) & ~(size_t)(WINDOW_ALIGN - 1),
                          MADV_DONTNEED);
        win->touched = 0;
    }
}

/* Engine mutex held. Takes the ids of the owner's finished windows, oldest first. */
static void collect_windows(nova_bk_engine *e, large_file *lf)
{
    while (lf->head && lf->head->done == lf->head->count) {
        window *win = lf->head;
        lf->head = win->next_owned;
        if (!lf->head)
            lf->tail = NULL;
        win->next_owned = NULL;
        if (lf->count + win->count > lf->cap) {
            size_t cap = lf->cap ? lf->cap : 64;
            nova_id *grown;
            while (cap < lf->count + win->count)
                cap *= 2;
            grown = realloc(lf->ids, cap * sizeof(*grown));
            if (grown) {
                lf->ids = grown;
                lf->cap = cap;
            } else {
                lf->nomem = 1;
            }
        }
        if (!lf->nomem)
            for (size_t i = 0; i < win->count; i++)
                lf->ids[lf->count++] = win->chunks[i].id;
        win->collected = 1;
        release_if_idle(e, win);
    }
}

/* Engine mutex held. Waits for a free window, helping with chunk tasks and collecting
 * meanwhile. NULL when the run failed. */
static window *acquire_window(worker *wk, large_file *lf)
{
    nova_bk_engine *e = wk->writer.engine;
    for (;;) {
        collect_windows(e, lf);
        if (is_failed(e))
            return NULL;
        if (e->free_windows) {
            window *win = e->free_windows;
            e->free_windows = win->next_free;
            win->next_free = NULL;
            win->len = win->count = win->next_chunk = win->done = 0;
            win->collected = win->tail_held = 0;
            return win;
        }
        if (e->task_head)
            run_chunk_task(wk);
        else
            pthread_cond_wait(&e->work_cond, &e->mutex);
    }
}

/* Engine mutex held. Waits until every posted window of the file is collected. */
static void drain_windows(worker *wk, large_file *lf)
{
    nova_bk_engine *e = wk->writer.engine;
    for (;;) {
        collect_windows(e, lf);
        if (!lf->head)
            return;
        if (e->task_head)
            run_chunk_task(wk);
        else
            pthread_cond_wait(&e->work_cond, &e->mutex);
    }
}

/* Engine mutex held. Queues the window in the owner's FIFO and makes its chunks
 * available to every worker. */
static void post_window(nova_bk_engine *e, large_file *lf, window *win)
{
    if (lf->tail)
        lf->tail->next_owned = win;
    else
        lf->head = win;
    lf->tail = win;
    if (win->count == 0)
        return; /* nothing to hash: collected at once */
    win->next_chunk = 0;
    if (e->task_tail)
        e->task_tail->next_task = win;
    else
        e->task_head = win;
    e->task_tail = win;
    pthread_cond_broadcast(&e->work_cond);
}

/* Cuts the window into chunks; leaves the unfinished end as the tail (unless at_eof). */
static void cut_window(const nova_chunker *chunker, window *win, int at_eof, size_t *tail_offset)
{
    size_t pos = 0;
    while (pos < win->len) {
        size_t rest = win->len - pos;
        size_t cut = nova_chunker_next(chunker, win->data + pos, rest);
        if (cut == rest && !at_eof)
            break; /* maybe premature: wait for more data */
        win->chunks[win->count].offset = (uint32_t)pos;
        win->chunks[win->count].length = (uint32_t)cut;
        win->count++;
        pos += cut;
    }
    *tail_offset = pos;
}

/* Reads a file larger than SMALL_MAX window by window; every idle worker hashes and
 * stores its chunks while this one reads and cuts the next window. */
static int read_large(worker *wk, nova_bk_job *job, int fd, const struct stat *before,
                      int *changed)
{
    nova_bk_engine *e = wk->writer.engine;
    large_file lf;
    size_t tail_offset = 0;
    uint64_t total = 0;
    struct stat after;
    int rc = 0, at_eof = 0;

    memset(&lf, 0, sizeof(lf));
    pthread_mutex_lock(&e->mutex);
    while (e->owners >= e->owner_limit && !is_failed(e)) {
        if (e->task_head)
            run_chunk_task(wk);
        else
            pthread_cond_wait(&e->work_cond, &e->mutex);
    }
    e->owners++;
    while (!at_eof) {
        window *win = acquire_window(wk, &lf);
        window *prev = lf.tail_window;
        size_t carry = prev ? prev->len - tail_offset : 0, got = 0;

        if (!win) {
            rc = atomic_load(&e->failed); /* the mutex is held: no detail here */
            break;
        }
        pthread_mutex_unlock(&e->mutex);
        if (carry)
            memcpy(win->data, prev->data + tail_offset, carry);
        rc = read_fully(fd, win->data + carry, e->window_size - carry, &got, job->path);
        if (rc == 0) {
            win->len = carry + got;
            if (win->len > win->touched)
                win->touched = win->len;
            total += got;
            atomic_fetch_add(&e->bytes_read, got);
            at_eof = got < e->window_size - carry;
            cut_window(&e->repo->chunker, win, at_eof, &tail_offset);
        }
        pthread_mutex_lock(&e->mutex);
        if (prev) {
            prev->tail_held = 0;
            release_if_idle(e, prev);
            lf.tail_window = NULL;
        }
        if (rc < 0) {
            win->collected = 1;
            release_if_idle(e, win);
            break;
        }
        win->tail_held = !at_eof && tail_offset < win->len;
        if (win->tail_held)
            lf.tail_window = win;
        post_window(e, &lf, win);
    }
    if (lf.tail_window) {
        lf.tail_window->tail_held = 0;
        release_if_idle(e, lf.tail_window);
        lf.tail_window = NULL;
    }
    drain_windows(wk, &lf);
    if (--e->owners == 0) {
        release_window_memory(e);
        pthread_cond_broadcast(&e->work_cond);
    }
    pthread_mutex_unlock(&e->mutex);

    job->bytes_read += total;
    if (rc == 0 && lf.nomem)
        rc = nova_bk_engine_fail(e, nova_fail(NOVA_ENOMEM, "unable to hold the chunk list of "
                                                           "'%s'", job->path));
    if (rc == 0 && is_failed(e))
        rc = nova_bk_engine_failed(e);
    if (rc == 0)
        after_read_hook(job->path);
    if (rc == 0 && fstat(fd, &after) != 0)
        rc = read_error(job->path);
    if (rc < 0) {
        free(lf.ids);
        return rc;
    }
    entry_update(job, before);
    *changed = total != (uint64_t)before->st_size || nova_fsmeta_changed_since(&job->entry, &after);
    if (*changed)
        entry_update(job, &after);
    job->entry.size = total;
    free(job->owned_chunks);
    job->owned_chunks = lf.ids;
    job->entry.chunks = lf.ids;
    job->entry.chunk_count = lf.count;
    return 0;
}

/* ------------------------------------------------------------------ workers */

static void process_file(worker *wk, nova_bk_job *job)
{
    nova_bk_engine *e = wk->writer.engine;
    const nova_backup_test_hooks *hooks = nova_bk_hooks();

    if (hooks && hooks->before_read)
        hooks->before_read(job->path, hooks->payload);
    for (int attempt = 0; attempt < 2; attempt++) {
        struct stat before;
        int fd, changed = 0, rc;

        rc = nova_fsmeta_open_file(&fd, job->path);
        if (rc < 0) {
            job_fail(job, rc);
            return;
        }
        if (fstat(fd, &before) != 0)
            rc = read_error(job->path);
        else if (before.st_size <= (off_t)SMALL_MAX)
            rc = read_small(wk, job, fd, &before, attempt == 1, &changed);
        else
            rc = read_large(wk, job, fd, &before, &changed);
        close(fd);
        if (is_failed(e)) {
            job->error = NOVA_ECANCELLED;
            return;
        }
        if (rc < 0) {
            job_fail(job, rc);
            return;
        }
        if (!changed)
            return;
    }
    job->changed_while_read = 1;
    free(job->message);
    job->message = malloc(strlen(job->path) + 64);
    if (job->message)
        sprintf(job->message, "'%s' changed while it was read, twice; stored as read",
                job->path);
}

static void process_batch(worker *wk, nova_bk_batch *b)
{
    for (size_t i = 0; i < b->count; i++) {
        if (is_failed(wk->writer.engine))
            b->jobs[i].error = NOVA_ECANCELLED;
        else
            process_file(wk, &b->jobs[i]);
    }
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    nova_bk_engine *e = wk->writer.engine;

    pthread_mutex_lock(&e->mutex);
    for (;;) {
        if (e->task_head) {
            run_chunk_task(wk);
            continue;
        }
        if (e->queue_head) {
            nova_bk_batch *b = e->queue_head;
            e->queue_head = b->next;
            if (!e->queue_head)
                e->queue_tail = NULL;
            b->next = NULL;
            atomic_fetch_sub(&e->queued, 1);
            pthread_cond_broadcast(&e->main_cond);
            pthread_mutex_unlock(&e->mutex);
            process_batch(wk, b);
            pthread_mutex_lock(&e->mutex);
            if (e->done_tail)
                e->done_tail->next = b;
            else
                e->done_head = b;
            e->done_tail = b;
            pthread_cond_broadcast(&e->main_cond);
            continue;
        }
        if (e->input_closed && e->owners == 0)
            break;
        pthread_cond_wait(&e->work_cond, &e->mutex);
    }
    pthread_mutex_unlock(&e->mutex);
    if (!is_failed(e)) {
        int rc = flush_writer(&wk->writer);
        if (rc < 0)
            nova_bk_engine_fail(e, rc);
    }
    return NULL;
}

/* ------------------------------------------------------------------ batches (walk side) */

static size_t align_up(size_t n, size_t a)
{
    return (n + a - 1) & ~(a - 1);
}

static size_t opt_len(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* Bytes a job's copy of entry and path takes in an arena, alignment slack included. */
static size_t job_copy_size(const nova_tree_entry *e, size_t path_len)
{
    size_t n = alignof(nova_tree_xattr) + path_len + 1 + e->name_len + 1 + opt_len(e->user_name) +
               opt_len(e->group_name) + opt_len(e->symlink_target);
    n += (size_t)e->xattr_count * sizeof(nova_tree_xattr);
    for (uint32_t i = 0; i < e->xattr_count; i++)
        n += strlen(e->xattrs[i].name) + 1 + e->xattrs[i].value_len;
    return n;
}

static void *arena_take(nova_bk_batch *b, size_t len, size_t align)
{
    size_t at = align_up(b->arena_used, align);
    b->arena_used = at + len;
    return b->arena + at;
}

static const char *arena_string(nova_bk_batch *b, const char *s, size_t len)
{
    char *copy;
    if (!s)
        return NULL;
    copy = arena_take(b, len + 1, 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

static void copy_job(nova_bk_batch *b, nova_bk_job *job, const nova_tree_entry *src,
                     const char *path)
{
    nova_tree_entry *dst = &job->entry;

    *dst = *src;
    if (src->xattr_count) {
        nova_tree_xattr *xattrs = arena_take(b, src->xattr_count * sizeof(*xattrs),
                                             alignof(nova_tree_xattr));
        for (uint32_t i = 0; i < src->xattr_count; i++) {
            uint8_t *value = arena_take(b, src->xattrs[i].value_len, 1);
            if (src->xattrs[i].value_len)
                memcpy(value, src->xattrs[i].value, src->xattrs[i].value_len);
            xattrs[i].name = arena_string(b, src->xattrs[i].name, strlen(src->xattrs[i].name));
            xattrs[i].value = src->xattrs[i].value_len ? value : NULL;
            xattrs[i].value_len = src->xattrs[i].value_len;
        }
        dst->xattrs = xattrs;
    }
    job->path = arena_string(b, path, strlen(path));
    dst->name = arena_string(b, src->name, src->name_len);
    dst->user_name = arena_string(b, src->user_name, opt_len(src->user_name) ? strlen(src->user_name) : 0);
    dst->group_name =
        arena_string(b, src->group_name, opt_len(src->group_name) ? strlen(src->group_name) : 0);
    dst->symlink_target = arena_string(b, src->symlink_target,
                                       opt_len(src->symlink_target) ? strlen(src->symlink_target) : 0);
    dst->chunks = NULL;
    dst->chunk_count = 0;
}

static void batch_free(nova_bk_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->count; i++) {
        free(b->jobs[i].message);
        free(b->jobs[i].owned_chunks);
    }
    free(b->jobs);
    free(b->arena);
    free(b);
}

static void batch_list_free(nova_bk_batch *b)
{
    while (b) {
        nova_bk_batch *next = b->next;
        batch_free(b);
        b = next;
    }
}

/* A batch whose arena holds at least `need` bytes: recycled, or new. */
static nova_bk_batch *batch_get(nova_bk_engine *e, size_t need)
{
    nova_bk_batch *b = e->free_batches;
    size_t cap = need > BATCH_ARENA ? need : BATCH_ARENA;

    if (b && b->arena_cap >= cap) {
        e->free_batches = b->next;
        b->next = NULL;
        return b;
    }
    b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->jobs = malloc(BATCH_FILES * sizeof(*b->jobs));
    b->arena = malloc(cap);
    b->arena_cap = cap;
    if (!b->jobs || !b->arena) {
        batch_free(b);
        return NULL;
    }
    return b;
}

int nova_bk_engine_add_job(nova_bk_engine *e, nova_bk_job **out, const nova_tree_entry *entry,
                           const char *path, void *dir, int had_parent_file)
{
    size_t need = job_copy_size(entry, strlen(path));
    nova_bk_batch *b = e->current;
    nova_bk_job *job;
    int ready = 0;

    *out = NULL;
    if (e->ready)
        return nova_fail(NOVA_EINTERNAL, "backup engine: a full batch was not submitted");
    if (b && (b->count == BATCH_FILES || b->bytes >= BATCH_BYTES ||
              need > b->arena_cap - b->arena_used)) {
        e->ready = b;
        e->current = b = NULL;
        ready = 1;
    }
    if (!b && !(b = e->current = batch_get(e, need)))
        return nova_fail(NOVA_ENOMEM, "unable to allocate a batch of files");
    job = &b->jobs[b->count++];
    memset(job, 0, sizeof(*job));
    copy_job(b, job, entry, path);
    job->dir = dir;
    job->had_parent_file = had_parent_file;
    b->bytes += entry->size;
    if (!ready && b->count >= BATCH_EARLY_FILES && atomic_load(&e->queued) == 0) {
        e->ready = b;
        e->current = NULL;
        ready = 1;
    }
    *out = job;
    return ready;
}

static struct timespec after_ms(int ms)
{
    struct timespec ts;
    long long ns;
    clock_gettime(CLOCK_REALTIME, &ts);
    ns = (long long)ts.tv_nsec + (long long)ms * 1000000LL;
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    return ts;
}

int nova_bk_engine_submit(nova_bk_engine *e, int flush_current, int wait_ms)
{
    int waited = 0, left;

    pthread_mutex_lock(&e->mutex);
    for (;;) {
        if (!e->ready && flush_current && e->current && e->current->count) {
            e->ready = e->current;
            e->current = NULL;
        }
        if (!e->ready || is_failed(e))
            break;
        if (atomic_load(&e->queued) < e->queue_max) {
            if (e->queue_tail)
                e->queue_tail->next = e->ready;
            else
                e->queue_head = e->ready;
            e->queue_tail = e->ready;
            e->ready = NULL;
            atomic_fetch_add(&e->queued, 1);
            pthread_cond_signal(&e->work_cond);
            continue;
        }
        if (waited || wait_ms <= 0)
            break;
        struct timespec until = after_ms(wait_ms);
        pthread_cond_timedwait(&e->main_cond, &e->mutex, &until);
        waited = 1;
    }
    left = e->ready != NULL;
    pthread_mutex_unlock(&e->mutex);
    if (is_failed(e))
        return nova_bk_engine_failed(e);
    return left ? 0 : 1;
}

nova_bk_batch *nova_bk_engine_take_done(nova_bk_engine *e, int wait_ms)
{
    nova_bk_batch *list;

    pthread_mutex_lock(&e->mutex);
    if (!e->done_head && wait_ms > 0 && !is_failed(e)) {
        struct timespec until = after_ms(wait_ms);
        pthread_cond_timedwait(&e->main_cond, &e->mutex, &until);
    }
    list = e->done_head;
    e->done_head = e->done_tail = NULL;
    pthread_mutex_unlock(&e->mutex);
    return list;
}

nova_bk_batch *nova_bk_batch_next(const nova_bk_batch *b)
{
    return b->next;
}

nova_bk_job *nova_bk_batch_jobs(nova_bk_batch *b, size_t *count)
{
    *count = b->count;
    return b->jobs;
}

void nova_bk_engine_release(nova_bk_engine *e, nova_bk_batch *b)
{
    for (size_t i = 0; i < b->count; i++) {
        free(b->jobs[i].message);
        free(b->jobs[i].owned_chunks);
    }
    b->count = 0;
    b->bytes = 0;
    b->arena_used = 0;
    if (b->arena_cap > BATCH_ARENA) { /* an oversized one: do not keep it */
        batch_free(b);
        return;
    }
    b->next = e->free_batches;
    e->free_batches = b;
}

/* ------------------------------------------------------------------ life cycle */

uint64_t nova_bk_engine_bytes_done(const nova_bk_engine *e)
{
    return atomic_load(&e->bytes_done);
}

void nova_bk_engine_stats(const nova_bk_engine *e, nova_bk_stats *stats)
{
    stats->bytes_read = atomic_load(&e->bytes_read);
    stats->compressed_size = e->compressed_size;
    stats->bytes_added = e->bytes_added;
}

static int start_threads(nova_bk_engine *e)
{
    int rc;
    for (unsigned i = 0; i < e->uploader_count; i++) {
        rc = pthread_create(&e->uploaders[i], NULL, uploader_main, e);
        if (rc != 0)
            return nova_fail_errno(NOVA_ENOMEM, rc, "unable to start an upload thread");
        e->uploaders_started++;
    }
    for (unsigned i = 0; i < e->worker_count; i++) {
        rc = pthread_create(&e->workers[i].thread, NULL, worker_main, &e->workers[i]);
        if (rc != 0)
            return nova_fail_errno(NOVA_ENOMEM, rc, "unable to start a backup worker");
        e->workers[i].started = 1;
    }
    return 0;
}

static int allocate_windows(nova_bk_engine *e)
{
    size_t chunk_cap = e->window_size / e->repo->config.chunker.min_size + 2;

    /* An owner holds at most one window for its tail while it waits for another, so
     * workers + 1 windows let every worker read a large file at once without deadlock;
     * with one large file, the spare windows let its reader run ahead of the hashing. */
    e->window_count = (size_t)e->worker_count + 1;
    e->owner_limit = e->worker_count;
    e->windows = calloc(e->window_count, sizeof(*e->windows));
    if (!e->windows)
        return nova_fail(NOVA_ENOMEM, "unable to allocate read windows");
    for (size_t i = 0; i < e->window_count; i++) {
        window *win = &e->windows[i];
        /* page-aligned, so that release_window_memory can hand pages back */
        win->data = aligned_alloc(WINDOW_ALIGN, e->window_size);
        win->chunks = malloc(chunk_cap * sizeof(*win->chunks));
        if (!win->data || !win->chunks)
            return nova_fail(NOVA_ENOMEM, "unable to allocate read windows of %zu bytes",
                             e->window_size);
        win->next_free = e->free_windows;
        e->free_windows = win;
    }
    return 0;
}

static int engine_setup(nova_bk_engine *e, unsigned threads, unsigned uploads)
{
    const nova_backup_test_hooks *hooks = nova_bk_hooks();
    size_t max_chunk = e->repo->config.chunker.max_size;

    e->pack_limit = e->repo->config.pack_target_size < PACK_LIMIT_MAX
                        ? (size_t)e->repo->config.pack_target_size
                        : PACK_LIMIT_MAX;
    if (hooks && hooks->pack_size)
        e->pack_limit = hooks->pack_size;
    e->window_size = max_chunk + max_chunk / 2 > WINDOW_MIN ? max_chunk + max_chunk / 2
                                                             : WINDOW_MIN;
    e->window_size = (e->window_size + WINDOW_ALIGN - 1) & ~(size_t)(WINDOW_ALIGN - 1);
    e->worker_count = threads ? threads : 1;
    e->queue_max = 2 * (size_t)e->worker_count + 2;
    e->uploader_count = uploads == 0 ? 1 : uploads < UPLOADS_MAX ? uploads : UPLOADS_MAX;
    /* one pack more than uploaders, so that a finished pack waits while all are busy */
    e->up_cap = (size_t)e->uploader_count + 1;
    e->buffer_cap = (size_t)e->worker_count + 1 + e->up_cap;
    e->buffers = calloc(e->buffer_cap, sizeof(*e->buffers));
    e->up_queue = calloc(e->up_cap, sizeof(*e->up_queue));
    e->uploaders = calloc(e->uploader_count, sizeof(*e->uploaders));
    if (!e->buffers || !e->up_queue || !e->uploaders)
        return nova_fail(NOVA_ENOMEM, "unable to allocate the upload queue");
    NOVA_TRY(nova_repository_chunk_index(e->handle, &e->index));
    NOVA_TRY(nova_bk_claims_new(&e->claims));
    NOVA_TRY(nova_index_writer_new(&e->index_writer));
    NOVA_TRY(allocate_windows(e));
    e->workers = calloc(e->worker_count, sizeof(*e->workers));
    if (!e->workers)
        return nova_fail(NOVA_ENOMEM, "unable to allocate %u backup workers", e->worker_count);
    for (unsigned i = 0; i < e->worker_count; i++) {
        NOVA_TRY(writer_init(&e->workers[i].writer, e));
        e->workers[i].small_id_cap = (SMALL_MAX + 1) / e->repo->config.chunker.min_size + 2;
        e->workers[i].small = malloc(SMALL_MAX + 1);
        e->workers[i].small_ids = malloc(e->workers[i].small_id_cap * sizeof(nova_id));
        if (!e->workers[i].small || !e->workers[i].small_ids)
            return nova_fail(NOVA_ENOMEM, "unable to allocate a read buffer");
    }
    NOVA_TRY(writer_init(&e->tree_writer, e));
    return start_threads(e);
}

int nova_bk_engine_new(nova_bk_engine **out, nova_repository *handle, unsigned threads,
                       unsigned uploads)
{
    nova_bk_engine *e = calloc(1, sizeof(*e));
    int rc;

    *out = NULL;
    if (!e)
        return nova_fail(NOVA_ENOMEM, "unable to allocate the backup engine");
    e->handle = handle;
    e->repo = handle->repo;
    pthread_mutex_init(&e->mutex, NULL);
    pthread_cond_init(&e->work_cond, NULL);
    pthread_cond_init(&e->main_cond, NULL);
    pthread_mutex_init(&e->dedup_mutex, NULL);
    pthread_mutex_init(&e->up_mutex, NULL);
    pthread_cond_init(&e->up_cond, NULL);
    pthread_mutex_init(&e->delta_mutex, NULL);
    atomic_init(&e->failed, 0);
    atomic_init(&e->queued, 0);
    atomic_init(&e->bytes_read, 0);
    atomic_init(&e->bytes_done, 0);
    rc = engine_setup(e, threads, uploads);
    if (rc < 0) {
        nova_bk_engine_fail(e, rc);
        nova_bk_engine_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

static void join_workers(nova_bk_engine *e)
{
    pthread_mutex_lock(&e->mutex);
    e->input_closed = 1;
    pthread_cond_broadcast(&e->work_cond);
    pthread_mutex_unlock(&e->mutex);
    for (unsigned i = 0; e->workers && i < e->worker_count; i++) {
        if (e->workers[i].started)
            pthread_join(e->workers[i].thread, NULL);
        e->workers[i].started = 0;
    }
}

/* Lets the uploaders store what is queued, then stops them. */
static void join_uploaders(nova_bk_engine *e)
{
    if (!e->uploaders_started)
        return;
    pthread_mutex_lock(&e->up_mutex);
    e->up_stop = 1;
    pthread_cond_broadcast(&e->up_cond);
    pthread_mutex_unlock(&e->up_mutex);
    for (unsigned i = 0; i < e->uploaders_started; i++)
        pthread_join(e->uploaders[i], NULL);
    e->uploaders_started = 0;
}

int nova_bk_engine_finish(nova_bk_engine *e)
{
    int rc;

    join_workers(e);
    if (!is_failed(e) && (rc = flush_writer(&e->tree_writer)) < 0)
        nova_bk_engine_fail(e, rc);
    join_uploaders(e);
    if (!is_failed(e) && (rc = write_delta(e)) < 0)
        nova_bk_engine_fail(e, rc);
    return nova_bk_engine_failed(e);
}

void nova_bk_engine_free(nova_bk_engine *e)
{
    if (!e)
        return;
    if (!is_failed(e) && (e->uploaders_started || (e->workers && e->workers[0].started))) {
        /* keep the caller's error detail: this failure only stops the threads */
        nova_error_detail saved = *nova_error_last();
        nova_bk_engine_fail(e, nova_fail(NOVA_ECANCELLED, "backup abandoned"));
        nova_error_set(saved.code, saved.sys_errno, saved.file ? saved.file : __FILE__,
                       saved.line, "%s", saved.message);
    }
    join_workers(e);
    join_uploaders(e);
    for (size_t i = 0; i < e->up_waiting; i++) {
        upload_item *item = &e->up_queue[(e->up_head + i) % e->up_cap];
        nova_buf_free(&item->bytes);
        free(item->entries);
    }
    free(e->up_queue);
    free(e->uploaders);
    for (size_t i = 0; i < e->buffer_count; i++)
        nova_buf_free(&e->buffers[i]);
    free(e->buffers);
    batch_list_free(e->queue_head);
    batch_list_free(e->done_head);
    batch_list_free(e->free_batches);
    batch_free(e->current);
    batch_free(e->ready);
    for (size_t i = 0; e->windows && i < e->window_count; i++) {
        free(e->windows[i].data);
        free(e->windows[i].chunks);
    }
    free(e->windows);
    for (unsigned i = 0; e->workers && i < e->worker_count; i++) {
        writer_free(&e->workers[i].writer);
        free(e->workers[i].small);
        free(e->workers[i].small_ids);
    }
    free(e->workers);
    writer_free(&e->tree_writer);
    for (size_t i = 0; i < e->delta_count; i++)
        free((void *)(uintptr_t)e->delta_packs[i].entries);
    free(e->delta_packs);
    nova_index_writer_free(e->index_writer);
    nova_bk_claims_free(e->claims);
    pthread_mutex_destroy(&e->mutex);
    pthread_cond_destroy(&e->work_cond);
    pthread_cond_destroy(&e->main_cond);
    pthread_mutex_destroy(&e->dedup_mutex);
    pthread_mutex_destroy(&e->up_mutex);
    pthread_cond_destroy(&e->up_cond);
    pthread_mutex_destroy(&e->delta_mutex);
    free(e);
}
