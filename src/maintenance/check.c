/*
 * check.c -- nova_check: verifies a repository's structure and, optionally, its data.
 *
 * Order of work (each step only reads):
 *   1. config and key slots: each slot's bytes hash to its name and decode;
 *   2. the scan (scan.h): snapshots listed, every index file read on its own (a damaged
 *      one is an error, the others still count), packs listed;
 *   3. packs, on repo->threads workers: a pack named by the index must exist; its tail
 *      (trailer and sealed header) must authenticate and agree with every index entry for
 *      it. With read_data a selected pack is fetched whole instead: SHA-256 against its
 *      name, header, and every blob opened (decrypted, decompressed, re-hashed to its id);
 *   4. snapshots: each opens, and its tree is walked: every tree reads and decodes, and
 *      every blob it references is in the index. One shared "visited" bitmap means each
 *      tree is read once however many snapshots share it;
 *   5. only when something is damaged: every snapshot is walked again on its own to name
 *      the backups each damaged blob affects.
 * Damage found is recorded, never fatal; only failures that make a verdict impossible
 * (storage unreachable, out of memory, cancelled) end the check with an error.
 *
 * Damaged blobs are linked to their errors through an id map (blob id -> a list of error
 * numbers), since one blob can be covered by several errors (its own and its pack's).
 */
#include "nova/maintenance.h"

#include "api/handle.h"
#include "common/err.h"
#include "maintenance/idmap.h"
#include "maintenance/lock_keeper.h"
#include "maintenance/scan.h"
#include "repo/keys.h"
#include "repo/snapshot.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TAIL_GUESS (64 * 1024)     /* bytes fetched first for a pack's tail */
#define BLOB_ERRORS_PER_PACK 16    /* further failing blobs of a pack share one error */
#define NO_LINK UINT32_MAX

typedef struct problem_vec {
    nova_check_problem *items;
    size_t count, cap;
} problem_vec;

typedef struct damage_link {
    uint32_t error;
    uint32_t next;
} damage_link;

typedef struct check_ctx {
    nova_repository *handle;
    nova_repo *repo;
    nova_check_options opt;
    nova_maint_scan scan;
    nova_maint_lock lock;
    problem_vec errors;
    problem_vec warnings;
    nova_maint_idmap damage; /* blob id -> first damage_link */
    damage_link *links;
    size_t link_count, link_cap;
    uint8_t *selected; /* per pack: read whole */
    uint8_t *visited;  /* per entry */
    nova_check_report counts;
    struct timespec started;

    pthread_mutex_t mutex; /* guards everything below and the problem lists in step 3 */
    pthread_cond_t changed;
    size_t next_pack;
    size_t workers_running;
    uint64_t packs_done;
    uint64_t bytes_done;
    uint64_t bytes_total;
    int fatal;
    char fatal_message[NOVA_ERROR_MESSAGE_MAX];
    int cancelled;
} check_ctx;

/* ---- recording problems --------------------------------------------------------------- */

static int problem_add(problem_vec *v, int code, const char *object, const char *message)
{
    nova_check_problem *p;
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        nova_check_problem *grown = realloc(v->items, cap * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to record a check problem");
        v->items = grown;
        v->cap = cap;
    }
    p = &v->items[v->count];
    memset(p, 0, sizeof(*p));
    p->code = code;
    p->object = strdup(object);
    p->message = strdup(message);
    if (!p->object || !p->message) {
        free(p->object);
        free(p->message);
        return nova_fail(NOVA_ENOMEM, "unable to record a check problem");
    }
    return (int)v->count++;
}

static void problem_free(nova_check_problem *p)
{
    free(p->object);
    free(p->message);
    for (size_t i = 0; i < p->snapshot_count; i++)
        free(p->snapshots[i]);
    free(p->snapshots);
}

static int problem_add_snapshot(nova_check_problem *p, const char *hex)
{
    char **grown;
    if (p->snapshot_count > 0 && strcmp(p->snapshots[p->snapshot_count - 1], hex) == 0)
        return 0;
    for (size_t i = 0; i < p->snapshot_count; i++)
        if (strcmp(p->snapshots[i], hex) == 0)
            return 0;
    grown = realloc(p->snapshots, (p->snapshot_count + 1) * sizeof(*grown));
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "unable to record an affected snapshot");
    p->snapshots = grown;
    if (!(p->snapshots[p->snapshot_count] = strdup(hex)))
        return nova_fail(NOVA_ENOMEM, "unable to record an affected snapshot");
    p->snapshot_count++;
    return 0;
}

/* Records an error (thread-safe); *number (may be NULL) receives its number. */
static int record_error(check_ctx *c, int code, const char *object, const char *message,
                        uint32_t *number)
{
    int rc;
    pthread_mutex_lock(&c->mutex);
    rc = problem_add(&c->errors, code, object, message);
    pthread_mutex_unlock(&c->mutex);
    if (rc >= 0 && number)
        *number = (uint32_t)rc;
    return rc < 0 ? rc : 0;
}

static int record_warning(check_ctx *c, const char *object, const char *message)
{
    int rc = problem_add(&c->warnings, 0, object, message);
    return rc < 0 ? rc : 0;
}

/* Links a blob to an error; the caller holds the mutex (or runs alone). */
static int link_locked(check_ctx *c, const nova_id *id, uint32_t error)
{
    uint32_t head = NO_LINK;
    damage_link *l;

    if (nova_maint_idmap_get(&c->damage, id, &head))
        for (uint32_t i = head; i != NO_LINK; i = c->links[i].next)
            if (c->links[i].error == error)
                return 0;
    if (c->link_count == c->link_cap) {
        size_t cap = c->link_cap ? c->link_cap * 2 : 64;
        damage_link *grown = realloc(c->links, cap * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to link a damaged blob");
        c->links = grown;
        c->link_cap = cap;
    }
    l = &c->links[c->link_count];
    l->error = error;
    l->next = head;
    NOVA_TRY(nova_maint_idmap_put(&c->damage, id, (uint32_t)c->link_count));
    c->link_count++;
    return 0;
}

static int link_blob(check_ctx *c, const nova_id *id, uint32_t error)
{
    int rc;
    pthread_mutex_lock(&c->mutex);
    rc = link_locked(c, id, error);
    pthread_mutex_unlock(&c->mutex);
    return rc;
}

static int link_pack(check_ctx *c, uint32_t pack, uint32_t error)
{
    const nova_maint_pack *p = &c->scan.packs[pack];
    int rc = 0;
    pthread_mutex_lock(&c->mutex);
    for (size_t i = 0; rc == 0 && i < p->count; i++)
        rc = link_locked(c, c->scan.entries[p->first + i].id, error);
    pthread_mutex_unlock(&c->mutex);
    return rc;
}

static int is_damaged(check_ctx *c, const nova_id *id)
{
    int found;
    pthread_mutex_lock(&c->mutex);
    found = nova_maint_idmap_get(&c->damage, id, NULL);
    pthread_mutex_unlock(&c->mutex);
    return found;
}

static void blob_object(char *out, size_t size, const nova_id *id, unsigned type)
{
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_id_to_hex(id, hex);
    snprintf(out, size, "%s %s", type == NOVA_BLOB_TREE ? "tree" : "blob", hex);
}

/* ---- step 1: config and key slots ------------------------------------------------------ */

static int check_key_slot(check_ctx *c, const char *name, nova_buf *bytes)
{
    nova_keyslot slot;
    nova_id expected = {{0}}, actual = {{0}};
    int rc = nova_storage_get(c->repo->storage, name, 0, NOVA_STORAGE_WHOLE, bytes);

    if (rc == 0)
        rc = nova_id_from_hex(&expected, name + strlen(NOVA_KEYSLOT_PREFIX));
    if (rc == 0)
        rc = nova_sha256(&actual, bytes->data, bytes->len);
    if (rc == 0 && !nova_id_equal(&expected, &actual))
        rc = nova_fail(NOVA_ECHECKSUM, "key slot '%s': content does not match its name", name);
    if (rc == 0)
        rc = nova_keyslot_decode(&slot, bytes->data, bytes->len, name);
    if (rc == 0 && memcmp(slot.repo_id, c->repo->config.repo_id, NOVA_REPO_ID_LEN) != 0)
        return record_warning(c, name, "key slot belongs to another repository; it opens "
                                       "nothing here");
    if (rc < 0 && nova_maint_is_damage(rc))
        return record_error(c, rc, name, nova_error_last()->message, NULL);
    c->counts.keys_checked += rc == 0;
    return rc;
}

static int check_config_and_keys(check_ctx *c)
{
    nova_repo_config config;
    nova_keyslot_list list = {NULL, 0};
    nova_buf bytes = NOVA_BUF_INIT;
    int rc = nova_repo_config_read(&config, c->repo->storage);

    if (rc < 0 && nova_maint_is_damage(rc))
        rc = record_error(c, rc, "config", nova_error_last()->message, NULL);
    else if (rc == 0 && memcmp(config.repo_id, c->repo->config.repo_id, NOVA_REPO_ID_LEN) != 0)
        rc = record_error(c, NOVA_ECORRUPT, "config",
                          "config: the repository id changed while the repository was open",
                          NULL);
    if (rc == 0)
        rc = nova_keys_list(&list, c->repo->storage);
    for (size_t i = 0; rc == 0 && i < list.count; i++)
        rc = check_key_slot(c, list.names[i], &bytes);
    nova_keyslot_list_free(&list);
    nova_buf_free(&bytes);
    return rc;
}

static int on_index_error(const char *name, int code, const char *message, void *payload)
{
    return record_error(payload, code, name, message, NULL);
}

/* ---- step 3: packs ----------------------------------------------------------------------- */

typedef struct worker {
    check_ctx *c;
    pthread_t thread;
    nova_pack_reader *reader;
    nova_buf bytes;
    nova_buf plain;
    nova_pack_header header;
    uint8_t *matched; /* per header entry: named by an index entry */
    size_t matched_cap;
    uint64_t blobs;
    uint64_t bytes_read;
    uint64_t packs_read;
    unsigned blob_errors;    /* of the current pack */
    uint32_t overflow_error; /* of the current pack, NO_LINK when none */
    uint64_t overflow_count;
} worker;

static void pack_name_of(const check_ctx *c, uint32_t pack, char name[NOVA_PACK_NAME_LEN + 1])
{
    nova_pack_storage_name(name, nova_chunk_index_pack_id(c->scan.index, pack));
}

/* A pack that cannot be used as a whole: records the error and links all its blobs.
 * Non-damage codes are returned (they end the check). */
static int pack_failure(check_ctx *c, uint32_t pack, const char *name, int rc)
{
    uint32_t error;
    if (rc == NOVA_ENOTFOUND)
        rc = nova_fail(NOVA_ECORRUPT, "pack '%s' is named by the index but missing from "
                                      "storage", name);
    if (!nova_maint_is_damage(rc))
        return rc;
    NOVA_TRY(record_error(c, rc, name, nova_error_last()->message, &error));
    return link_pack(c, pack, error);
}

static int header_find(const nova_pack_header *h, uint32_t offset)
{
    size_t lo = 0, hi = h->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->entries[mid].offset < offset)
            lo = mid + 1;
        else if (h->entries[mid].offset > offset)
            hi = mid;
        else
            return (int)mid;
    }
    return -1;
}

static int entry_agrees(const nova_pack_entry *a, const nova_pack_entry *b)
{
    return nova_id_equal(&a->id, &b->id) && a->offset == b->offset && a->length == b->length &&
           a->raw_length == b->raw_length && a->type == b->type;
}

/* Compares the index's entries for a pack with its decoded header (w->header). */
static int compare_entries(worker *w, uint32_t pack, const char *name)
{
    check_ctx *c = w->c;
    const nova_maint_pack *p = &c->scan.packs[pack];
    size_t mismatches = 0;
    char first[NOVA_ID_HEX_LEN + 1] = "";
    char message[512];
    uint32_t error;

    if (w->header.count > w->matched_cap) {
        uint8_t *grown = realloc(w->matched, w->header.count);
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to compare the entries of pack '%s'", name);
        w->matched = grown;
        w->matched_cap = w->header.count;
    }
    memset(w->matched, 0, w->header.count);
    for (size_t i = 0; i < p->count; i++) {
        nova_pack_entry e;
        int h;
        nova_maint_scan_entry(&c->scan, p->first + i, &e);
        h = header_find(&w->header, e.offset);
        if (h >= 0 && entry_agrees(&e, &w->header.entries[h])) {
            w->matched[h] = 1;
            continue;
        }
        if (mismatches++ == 0)
            nova_id_to_hex(&e.id, first);
    }
    if (mismatches == 0)
        return 0;
    snprintf(message, sizeof(message),
             "pack '%s': %zu index entr%s disagree with the pack's header (first: blob %s)",
             name, mismatches, mismatches == 1 ? "y does" : "ies do", first);
    NOVA_TRY(record_error(c, NOVA_ECORRUPT, name, message, &error));
    for (size_t i = 0; i < p->count; i++) {
        nova_pack_entry e;
        int h;
        nova_maint_scan_entry(&c->scan, p->first + i, &e);
        h = header_find(&w->header, e.offset);
        if (h < 0 || !entry_agrees(&e, &w->header.entries[h]))
            NOVA_TRY(link_blob(c, &e.id, error));
    }
    return 0;
}

/* Structure only: fetches the tail, authenticates the header, compares the entries. */
static int check_tail(worker *w, uint32_t pack, const char *name)
{
    check_ctx *c = w->c;
    uint64_t size = c->scan.packs[pack].size;
    size_t want = size < TAIL_GUESS ? (size_t)size : TAIL_GUESS;
    nova_pack_trailer trailer;
    int rc = nova_storage_get(c->repo->storage, name, size - want, want, &w->bytes);

    if (rc == 0)
        rc = nova_pack_trailer_parse(&trailer, size, w->bytes.data, w->bytes.len, name);
    if (rc == 0 && trailer.tail_length > w->bytes.len)
        rc = nova_storage_get(c->repo->storage, name, size - trailer.tail_length,
                              (size_t)trailer.tail_length, &w->bytes);
    if (rc == 0)
        rc = nova_pack_reader_read_header(w->reader, &w->header, size, w->bytes.data,
                                          w->bytes.len, name);
    if (rc < 0)
        return pack_failure(c, pack, name, rc);
    return compare_entries(w, pack, name);
}

/* A blob that did not open: its own error for the first few of a pack, one shared error
 * for the rest; also linked to the pack's checksum error when there is one. */
static int blob_failure(worker *w, const char *name, const nova_pack_entry *e, int rc,
                        uint32_t pack_error, int indexed)
{
    check_ctx *c = w->c;
    char object[NOVA_ID_HEX_LEN + 8];
    uint32_t error;

    if (!nova_maint_is_damage(rc))
        return rc;
    if (!indexed) {
        char message[NOVA_ERROR_MESSAGE_MAX + 64];
        snprintf(message, sizeof(message), "%s (a blob no index names)",
                 nova_error_last()->message);
        return record_error(c, rc, name, message, NULL);
    }
    if (w->blob_errors++ < BLOB_ERRORS_PER_PACK) {
        blob_object(object, sizeof(object), &e->id, e->type);
        NOVA_TRY(record_error(c, rc, object, nova_error_last()->message, &error));
    } else {
        if (w->overflow_error == NO_LINK)
            NOVA_TRY(record_error(c, rc, name, "more blobs fail to open", &w->overflow_error));
        w->overflow_count++;
        error = w->overflow_error;
    }
    NOVA_TRY(link_blob(c, &e->id, error));
    if (pack_error != NO_LINK)
        NOVA_TRY(link_blob(c, &e->id, pack_error));
    return 0;
}

static int open_one(worker *w, const char *name, const uint8_t *salt, const nova_pack_entry *e)
{
    if ((uint64_t)e->offset + e->length > w->bytes.len) {
        char hex[NOVA_ID_HEX_LEN + 1];
        nova_id_to_hex(&e->id, hex);
        return nova_fail(NOVA_ECORRUPT, "pack '%s': blob %s at offset %u runs past the end",
                         name, hex, e->offset);
    }
    w->blobs++;
    return nova_pack_reader_open_blob(w->reader, &w->plain, salt, e, w->bytes.data + e->offset,
                                      e->length, name);
}

static void finish_overflow(worker *w, const char *name)
{
    check_ctx *c = w->c;
    char message[256];
    char *text;
    if (w->overflow_error == NO_LINK)
        return;
    snprintf(message, sizeof(message), "pack '%s': %llu more blobs fail to open", name,
             (unsigned long long)w->overflow_count);
    pthread_mutex_lock(&c->mutex);
    text = strdup(message);
    if (text) {
        free(c->errors.items[w->overflow_error].message);
        c->errors.items[w->overflow_error].message = text;
    }
    pthread_mutex_unlock(&c->mutex);
}

/* read_data: the whole pack against its name, its header, and every blob. A damaged
 * trailer makes every blob unreadable for restore (the salt is taken from it), so all the
 * pack's blobs are linked to that error; a damaged sealed header alone hides nothing
 * (readers locate blobs through the index), so only blobs that fail are linked. */
static int read_pack(worker *w, uint32_t pack, const char *name)
{
    check_ctx *c = w->c;
    const nova_maint_pack *p = &c->scan.packs[pack];
    static const uint8_t no_salt[NOVA_SALT_LEN];
    const uint8_t *salt = no_salt;
    uint32_t pack_error = NO_LINK;
    nova_pack_trailer trailer;
    int trailer_ok = 0, header_ok = 0;
    int rc = nova_storage_get(c->repo->storage, name, 0, NOVA_STORAGE_WHOLE, &w->bytes);

    if (rc < 0)
        return pack_failure(c, pack, name, rc);
    w->packs_read++;
    w->bytes_read += w->bytes.len;
    w->blob_errors = 0;
    w->overflow_error = NO_LINK;
    w->overflow_count = 0;
    rc = nova_pack_verify_id(nova_chunk_index_pack_id(c->scan.index, pack), w->bytes.data,
                             w->bytes.len, name);
    if (rc < 0)
        NOVA_TRY(record_error(c, rc, name, nova_error_last()->message, &pack_error));
    rc = nova_pack_trailer_parse(&trailer, w->bytes.len, w->bytes.data, w->bytes.len, name);
    trailer_ok = rc == 0;
    if (rc < 0)
        NOVA_TRY(pack_failure(c, pack, name, rc));
    else
        rc = nova_pack_reader_read_header(w->reader, &w->header, w->bytes.len, w->bytes.data,
                                          w->bytes.len, name);
    if (rc < 0 && !nova_maint_is_damage(rc))
        return rc;
    if (rc == 0) {
        header_ok = 1;
        NOVA_TRY(compare_entries(w, pack, name));
    } else if (trailer_ok) { /* the sealed header is bad */
        NOVA_TRY(record_error(c, rc, name, nova_error_last()->message, NULL));
    }
    if (header_ok)
        salt = w->header.trailer.salt;
    else if (w->bytes.len >= NOVA_PACK_TRAILER_LEN) /* the salt may have survived */
        salt = w->bytes.data + w->bytes.len - NOVA_PACK_TRAILER_LEN;
    for (size_t i = 0; i < p->count; i++) {
        nova_pack_entry e;
        nova_maint_scan_entry(&c->scan, p->first + i, &e);
        rc = open_one(w, name, salt, &e);
        if (rc < 0)
            NOVA_TRY(blob_failure(w, name, &e, rc, pack_error, 1));
    }
    for (size_t h = 0; header_ok && h < w->header.count; h++) {
        if (w->matched[h])
            continue;
        rc = open_one(w, name, salt, &w->header.entries[h]);
        if (rc < 0)
            NOVA_TRY(blob_failure(w, name, &w->header.entries[h], rc, pack_error, 0));
    }
    finish_overflow(w, name);
    return 0;
}

static int check_pack(worker *w, uint32_t pack)
{
    check_ctx *c = w->c;
    char name[NOVA_PACK_NAME_LEN + 1];
    pack_name_of(c, pack, name);
    if (!c->scan.packs[pack].listed)
        return pack_failure(c, pack, name, NOVA_ENOTFOUND);
    return c->selected[pack] ? read_pack(w, pack, name) : check_tail(w, pack, name);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    check_ctx *c = w->c;

    for (;;) {
        uint32_t pack;
        int rc;
        pthread_mutex_lock(&c->mutex);
        if (c->fatal || c->cancelled || c->next_pack >= c->scan.pack_count) {
            pthread_mutex_unlock(&c->mutex);
            break;
        }
        pack = (uint32_t)c->next_pack++;
        pthread_mutex_unlock(&c->mutex);
        rc = check_pack(w, pack);
        pthread_mutex_lock(&c->mutex);
        if (rc < 0 && !c->fatal) {
            c->fatal = rc;
            snprintf(c->fatal_message, sizeof(c->fatal_message), "%s",
                     nova_error_last()->message);
        }
        c->packs_done++;
        c->bytes_done += c->scan.packs[pack].size;
        pthread_cond_signal(&c->changed);
        pthread_mutex_unlock(&c->mutex);
    }
    pthread_mutex_lock(&c->mutex);
    c->workers_running--;
    pthread_cond_signal(&c->changed);
    pthread_mutex_unlock(&c->mutex);
    return NULL;
}

static double elapsed(const check_ctx *c)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - c->started.tv_sec) +
           (double)(now.tv_nsec - c->started.tv_nsec) / 1e9;
}

/* Calls the progress callback; a non-zero answer cancels. */
static int report_progress(check_ctx *c, uint64_t files_done, uint64_t files_total,
                           uint64_t bytes_done, uint64_t bytes_total, const char *what)
{
    nova_progress p;
    if (!c->opt.progress)
        return 0;
    memset(&p, 0, sizeof(p));
    p.phase = NOVA_PHASE_CHECK;
    p.files_done = files_done;
    p.files_total = files_total;
    p.bytes_done = bytes_done;
    p.bytes_total = bytes_total;
    p.elapsed_seconds = elapsed(c);
    p.current_path = what;
    if (c->opt.progress(&p, c->opt.payload) != 0)
        return nova_fail(NOVA_ECANCELLED, "check cancelled");
    return 0;
}

static unsigned worker_count(const check_ctx *c)
{
    unsigned n = c->handle->threads ? c->handle->threads : 1;
    if (n > 64)
        n = 64;
    if (c->scan.pack_count < n)
        n = c->scan.pack_count ? (unsigned)c->scan.pack_count : 1;
    return n;
}

/* The main thread waits for the workers, reporting progress and keeping the lock. */
static int supervise(check_ctx *c)
{
    int rc = 0;
    pthread_mutex_lock(&c->mutex);
    while (c->workers_running > 0) {
        struct timespec until;
        uint64_t done, bytes;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->changed, &c->mutex, &until);
        done = c->packs_done;
        bytes = c->bytes_done;
        pthread_mutex_unlock(&c->mutex);
        if (rc == 0)
            rc = report_progress(c, done, c->scan.pack_count, bytes, c->bytes_total, "packs");
        if (rc == 0)
            rc = nova_maint_lock_refresh(&c->lock);
        pthread_mutex_lock(&c->mutex);
        if (rc < 0)
            c->cancelled = 1;
    }
    pthread_mutex_unlock(&c->mutex);
    return rc;
}

static int check_packs(check_ctx *c)
{
    unsigned n = worker_count(c), started = 0;
    worker *workers = calloc(n, sizeof(*workers));
    int rc = workers ? 0 : nova_fail(NOVA_ENOMEM, "unable to allocate check workers");

    for (unsigned i = 0; rc == 0 && i < n; i++) {
        workers[i].c = c;
        rc = nova_pack_reader_new(&workers[i].reader, c->repo->keys.enc, c->repo->keys.id);
    }
    for (size_t p = 0; p < c->scan.pack_count; p++)
        c->bytes_total += c->scan.packs[p].size;
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        int failed;
        pthread_mutex_lock(&c->mutex); /* counted before it starts: it may finish at once */
        c->workers_running++;
        pthread_mutex_unlock(&c->mutex);
        failed = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0;
        if (failed) {
            pthread_mutex_lock(&c->mutex);
            c->workers_running--;
            pthread_mutex_unlock(&c->mutex);
            break;
        }
        started++;
    }
    if (rc == 0) {
        if (!started) { /* no thread to be had: do the work here */
            c->workers_running = 1;
            worker_main(&workers[0]);
        }
        rc = supervise(c);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(workers[i].thread, NULL);
    for (unsigned i = 0; workers && i < n; i++) {
        c->counts.blobs_checked += workers[i].blobs;
        c->counts.bytes_read += workers[i].bytes_read;
        c->counts.packs_read += workers[i].packs_read;
        nova_pack_reader_free(workers[i].reader);
        nova_buf_free(&workers[i].bytes);
        nova_buf_free(&workers[i].plain);
        nova_pack_header_free(&workers[i].header);
        free(workers[i].matched);
    }
    free(workers);
    c->counts.packs_checked = c->packs_done;
    if (rc == 0 && c->fatal)
        rc = nova_fail(c->fatal, "%s", c->fatal_message);
    return rc;
}

/* ---- pack selection for read_data -------------------------------------------------------- */

static int select_packs(check_ctx *c)
{
    size_t n = c->scan.pack_count, k;
    uint32_t *order;

    c->selected = calloc(n + 1, 1);
    if (!c->selected)
        return nova_fail(NOVA_ENOMEM, "unable to select packs");
    if (!c->opt.read_data)
        return 0;
    if (c->opt.subset_parts) {
        for (size_t p = 0; p < n; p++)
            c->selected[p] = nova_chunk_index_pack_id(c->scan.index, (uint32_t)p)->bytes[0] %
                                 c->opt.subset_parts ==
                             c->opt.subset_part - 1;
        return 0;
    }
    if (c->opt.subset_percent <= 0.0 || c->opt.subset_percent >= 100.0) {
        memset(c->selected, 1, n);
        return 0;
    }
    k = (size_t)ceil((double)n * c->opt.subset_percent / 100.0);
    order = malloc((n + 1) * sizeof(*order));
    if (!order)
        return nova_fail(NOVA_ENOMEM, "unable to select packs");
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    for (size_t i = 0; i < k && i < n; i++) { /* a partial Fisher-Yates shuffle */
        uint64_t r;
        size_t j;
        uint32_t t;
        if (nova_random_bytes(&r, sizeof(r)) < 0) {
            free(order);
            return NOVA_ECRYPTO;
        }
        j = i + (size_t)(r % (n - i));
        t = order[i];
        order[i] = order[j];
        order[j] = t;
        c->selected[order[i]] = 1;
    }
    free(order);
    return 0;
}

/* ---- steps 4 and 5: snapshots and trees -------------------------------------------------- */

typedef struct walk_ctx {
    check_ctx *c;
    const char *snapshot; /* hex id, in step 5 */
} walk_ctx;

/* Step 4: a blob no index names is an error of its own (once per blob). */
static int structure_blob(const nova_id *id, nova_blob_type type, size_t entry, void *payload)
{
    walk_ctx *w = payload;
    char object[NOVA_ID_HEX_LEN + 8], message[256];
    uint32_t error;

    if (entry != NOVA_MAINT_NO_ENTRY || is_damaged(w->c, id))
        return 0;
    blob_object(object, sizeof(object), id, type);
    snprintf(message, sizeof(message), "%s is referenced by a snapshot but no index names it",
             object);
    NOVA_TRY(record_error(w->c, NOVA_ECORRUPT, object, message, &error));
    return link_blob(w->c, id, error);
}

static int structure_problem(const nova_id *id, nova_blob_type type, int code,
                             const char *message, void *payload)
{
    walk_ctx *w = payload;
    char object[NOVA_ID_HEX_LEN + 8];
    uint32_t error;

    if (!nova_maint_is_damage(code))
        return code;
    if (is_damaged(w->c, id))
        return 0; /* already counted with its pack */
    blob_object(object, sizeof(object), id, type);
    NOVA_TRY(record_error(w->c, code, object, message, &error));
    return link_blob(w->c, id, error);
}

/* Step 5: every damaged blob reached names the snapshot being walked. */
static int attribute(check_ctx *c, const nova_id *id, const char *snapshot)
{
    uint32_t head;
    if (!nova_maint_idmap_get(&c->damage, id, &head))
        return 0;
    for (uint32_t i = head; i != NO_LINK; i = c->links[i].next)
        NOVA_TRY(problem_add_snapshot(&c->errors.items[c->links[i].error], snapshot));
    return 0;
}

static int attribute_blob(const nova_id *id, nova_blob_type type, size_t entry, void *payload)
{
    walk_ctx *w = payload;
    (void)type;
    NOVA_TRY(attribute(w->c, id, w->snapshot));
    return entry == NOVA_MAINT_NO_ENTRY ? 1 : 0;
}

static int attribute_problem(const nova_id *id, nova_blob_type type, int code,
                             const char *message, void *payload)
{
    walk_ctx *w = payload;
    (void)type;
    (void)message;
    if (!nova_maint_is_damage(code))
        return code;
    return attribute(w->c, id, w->snapshot);
}

/* Step 4. roots[i] receives snapshot i's tree; ok[i] whether it opened. */
static int check_snapshots(check_ctx *c, nova_repo_reader *reader, nova_id *roots, uint8_t *ok)
{
    static const nova_maint_walk_ops ops = {structure_blob, structure_problem};
    walk_ctx w = {c, NULL};
    nova_maint_walk_stats stats = {0, 0};
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < c->scan.snapshot_count; i++) {
        char name[NOVA_SNAPSHOT_NAME_SIZE], hex[NOVA_ID_HEX_LEN + 1];
        nova_snapshot *snap = NULL;
        uint32_t error;

        nova_id_to_hex(&c->scan.snapshots[i], hex);
        nova_snapshot_name(name, &c->scan.snapshots[i]);
        rc = nova_snapshot_read(&snap, c->repo->storage, &c->scan.snapshots[i], c->repo->keys.enc);
        if (rc == NOVA_EBACKUP_NOT_FOUND) { /* deleted since it was listed: not damage */
            rc = 0;
            continue;
        }
        if (rc < 0 && nova_maint_is_damage(rc)) {
            rc = record_error(c, rc, name, nova_error_last()->message, &error);
            if (rc == 0)
                rc = problem_add_snapshot(&c->errors.items[error], hex);
            continue;
        }
        if (rc < 0)
            break;
        roots[i] = snap->tree;
        ok[i] = 1;
        nova_snapshot_free(snap);
        c->counts.snapshots_checked++;
        rc = nova_maint_walk(&c->scan, reader, &roots[i], c->visited, &ops, &w, &stats);
        if (rc == 0)
            rc = report_progress(c, i + 1, c->scan.snapshot_count, c->bytes_total,
                                 c->bytes_total, "snapshots");
        if (rc == 0)
            rc = nova_maint_lock_refresh(&c->lock);
    }
    c->counts.trees_checked = stats.trees_read;
    return rc;
}

/* Step 5: names the snapshots each damaged blob affects. */
static int attribute_snapshots(check_ctx *c, nova_repo_reader *reader, const nova_id *roots,
                               const uint8_t *ok)
{
    static const nova_maint_walk_ops ops = {attribute_blob, attribute_problem};
    uint8_t *visited = nova_maint_bitmap_new(c->scan.entry_count);
    int rc = visited ? 0 : nova_fail(NOVA_ENOMEM, "unable to allocate a bitmap");

    for (size_t i = 0; rc == 0 && i < c->scan.snapshot_count; i++) {
        char hex[NOVA_ID_HEX_LEN + 1];
        walk_ctx w = {c, hex};
        if (!ok[i])
            continue;
        nova_id_to_hex(&c->scan.snapshots[i], hex);
        memset(visited, 0, c->scan.entry_count / 8 + 1);
        rc = nova_maint_walk(&c->scan, reader, &roots[i], visited, &ops, &w, NULL);
        if (rc == 0)
            rc = nova_maint_lock_refresh(&c->lock);
    }
    free(visited);
    return rc;
}

static int check_trees(check_ctx *c)
{
    nova_repo_reader *reader = NULL;
    size_t n = c->scan.snapshot_count;
    nova_id *roots = calloc(n + 1, sizeof(*roots));
    uint8_t *ok = calloc(n + 1, 1);
    int rc = roots && ok ? 0 : nova_fail(NOVA_ENOMEM, "unable to list the snapshots' trees");

    if (rc == 0 && !(c->visited = nova_maint_bitmap_new(c->scan.entry_count)))
        rc = nova_fail(NOVA_ENOMEM, "unable to allocate a bitmap");
    if (rc == 0)
        rc = nova_repo_reader_new(&reader, c->repo, c->scan.index);
    if (rc == 0)
        rc = check_snapshots(c, reader, roots, ok);
    if (rc == 0 && c->damage.count > 0)
        rc = attribute_snapshots(c, reader, roots, ok);
    for (size_t e = 0; rc == 0 && e < c->scan.entry_count; e++) {
        if (nova_maint_bit_get(c->visited, e))
            continue;
        c->counts.blobs_unused++;
        c->counts.bytes_unused += c->scan.entries[e].length;
    }
    nova_repo_reader_free(reader);
    free(roots);
    free(ok);
    return rc;
}

static int warn_unindexed(check_ctx *c)
{
    for (size_t i = 0; i < c->scan.unindexed_count; i++) {
        char name[NOVA_PACK_NAME_LEN + 1], message[256];
        nova_pack_storage_name(name, &c->scan.unindexed[i].id);
        snprintf(message, sizeof(message),
                 "pack '%s' (%llu bytes) is named by no index: left by an interrupted backup "
                 "or written by one still running; 'nova prune' removes it",
                 name, (unsigned long long)c->scan.unindexed[i].size);
        NOVA_TRY(record_warning(c, name, message));
    }
    return 0;
}

/* ---- the call ---------------------------------------------------------------------------- */

static int check_options(nova_check_options *out, const nova_check_options *in)
{
    const nova_check_options defaults = NOVA_CHECK_OPTIONS_INIT;
    *out = in ? *in : defaults;
    if (out->version != NOVA_CHECK_OPTIONS_VERSION)
        return nova_fail(NOVA_EINVALID, "check options of version %u (want %u)", out->version,
                         NOVA_CHECK_OPTIONS_VERSION);
    if (out->subset_parts && out->subset_percent != 0.0)
        return nova_fail(NOVA_EINVALID, "check: choose either a n/m subset or a percentage");
    if (out->subset_parts > 256 || out->subset_part > out->subset_parts ||
        (out->subset_parts && out->subset_part == 0) || (!out->subset_parts && out->subset_part))
        return nova_fail(NOVA_EINVALID, "check: subset %u/%u is not n/m with 1 <= n <= m <= 256",
                         out->subset_part, out->subset_parts);
    if (!(out->subset_percent >= 0.0 && out->subset_percent <= 100.0))
        return nova_fail(NOVA_EINVALID, "check: subset of %g%% is not within 0..100",
                         out->subset_percent);
    if (out->subset_parts || out->subset_percent > 0.0)
        out->read_data = 1;
    return 0;
}

static void take_problems(nova_check_problem **items, size_t *count, problem_vec *v)
{
    *items = v->items;
    *count = v->count;
    memset(v, 0, sizeof(*v));
}

static void problems_free(problem_vec *v)
{
    for (size_t i = 0; i < v->count; i++)
        problem_free(&v->items[i]);
    free(v->items);
    memset(v, 0, sizeof(*v));
}

static int run_check(check_ctx *c)
{
    NOVA_TRY(check_config_and_keys(c));
    NOVA_TRY(report_progress(c, 0, 0, 0, 0, "index"));
    NOVA_TRY(nova_maint_scan_run(&c->scan, c->repo, on_index_error, c));
    c->counts.indexes_checked = c->scan.index_count;
    NOVA_TRY(select_packs(c));
    NOVA_TRY(check_packs(c));
    NOVA_TRY(check_trees(c));
    return warn_unindexed(c);
}

int nova_check(nova_repository *handle, const nova_check_options *options,
               nova_check_report **out)
{
    check_ctx *c;
    int rc;

    *out = NULL;
    if (!(c = calloc(1, sizeof(*c))))
        return nova_fail(NOVA_ENOMEM, "unable to allocate a check");
    rc = check_options(&c->opt, options);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->handle = handle;
    c->repo = handle->repo;
    clock_gettime(CLOCK_MONOTONIC, &c->started);
    pthread_mutex_init(&c->mutex, NULL);
    pthread_cond_init(&c->changed, NULL);
    if (!c->opt.no_lock)
        rc = nova_maint_lock_take(&c->lock, c->repo, 0, "check", NOVA_MAINT_LOCK_TTL_NS);
    if (rc == 0)
        rc = run_check(c);
    /* a lock that could not be deleted expires on its own; the verdict stands */
    (void)nova_maint_lock_drop(&c->lock);
    if (rc == 0 && !(*out = calloc(1, sizeof(**out))))
        rc = nova_fail(NOVA_ENOMEM, "unable to allocate a check report");
    if (rc == 0) {
        **out = c->counts;
        take_problems(&(*out)->errors, &(*out)->error_count, &c->errors);
        take_problems(&(*out)->warnings, &(*out)->warning_count, &c->warnings);
        (*out)->damaged = (*out)->error_count > 0;
    }
    problems_free(&c->errors);
    problems_free(&c->warnings);
    nova_maint_idmap_free(&c->damage);
    free(c->links);
    free(c->selected);
    free(c->visited);
    nova_maint_scan_free(&c->scan);
    pthread_cond_destroy(&c->changed);
    pthread_mutex_destroy(&c->mutex);
    free(c);
    return rc;
}

void nova_check_report_free(nova_check_report *report)
{
    if (!report)
        return;
    for (size_t i = 0; i < report->error_count; i++)
        problem_free(&report->errors[i]);
    for (size_t i = 0; i < report->warning_count; i++)
        problem_free(&report->warnings[i]);
    free(report->errors);
    free(report->warnings);
    free(report);
}
