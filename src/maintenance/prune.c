/*
 * prune.c -- nova_prune: removes the data no snapshot references.
 *
 * Safety rules (docs/readme-maintenance.md explains them for users):
 *   - prune holds the exclusive lock for its whole run: while any unexpired lock exists
 *     (a backup or a check) it refuses with NOVA_ELOCKED, and no backup can start while
 *     it runs, so nothing it deletes can be referenced by a running backup;
 *   - it deletes nothing unless it could read every snapshot, every index file and every
 *     tree, and found every referenced blob in the index: an unreadable object means it
 *     cannot know what is used;
 *   - its writes are ordered so that a crash at any point leaves every snapshot readable:
 *       1. new packs (the used blobs of repacked packs, re-encrypted under fresh salts),
 *       2. the new index file(s): the new packs, plus the surviving packs that an
 *          obsolete index file named,
 *       3. the obsolete index files (those naming a pack that goes),
 *       4. the packs that go, and the packs no index names.
 *     Until 3 completes, every old index entry still points at an existing pack; after
 *     it, no index names a pack that step 4 deletes. A failure stops prune before the
 *     next step; a later prune finishes the job (duplicates are harmless: any copy of a
 *     blob serves);
 *   - packs that no index names come from a backup that died before writing its index.
 *     They are deleted, except when stale (expired) locks were found: their holder may
 *     be a stalled backup that will still index them, so they are kept for one more run
 *     (the stale locks are removed) unless force_unindexed is set.
 */
#include "nova/maintenance.h"

#include "api/handle.h"
#include "common/err.h"
#include "maintenance/lock_keeper.h"
#include "maintenance/scan.h"
#include "repo/snapshot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* New index files are cut at this payload size (an index may hold up to 64 MiB). */
#define INDEX_SPLIT_BYTES (8u << 20)

enum pack_fate { FATE_KEEP = 0, FATE_DELETE, FATE_REPACK, FATE_GONE };

typedef struct prune_ctx {
    nova_repository *handle;
    nova_repo *repo;
    nova_prune_options opt;
    nova_prune_result *res;
    nova_maint_scan scan;
    nova_maint_lock lock;
    uint8_t *used;     /* per entry: referenced by some snapshot */
    uint8_t *fate;     /* per pack */
    uint8_t *obsolete; /* per index file: names a pack that goes */
    uint8_t *relisted; /* per pack: in the new index already */
    int delete_unindexed;
    uint64_t repack_bytes_total;
    uint64_t progress_files;
    uint64_t progress_files_total;
    uint64_t progress_bytes;
    struct timespec started;
    nova_pack_writer *writer;
    nova_pack_reader *reader;
    nova_index_writer *index_writer;
    nova_pack_entry *entries; /* scratch for re-listed packs */
    size_t entries_cap;
    nova_buf bytes;
    nova_buf plain;
    nova_buf sealed;
} prune_ctx;

/* Replaces the current error detail by "prune stopped: <detail>; <advice>". */
static int refuse(int code, const char *advice)
{
    char detail[NOVA_ERROR_MESSAGE_MAX];
    snprintf(detail, sizeof(detail), "%s", nova_error_last()->message);
    return nova_fail(code, "prune stopped: %s; %s", detail, advice);
}

static int progress(prune_ctx *c)
{
    struct timespec now;
    nova_progress p;
    if (!c->opt.progress)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    memset(&p, 0, sizeof(p));
    p.phase = NOVA_PHASE_PRUNE;
    p.files_done = c->progress_files;
    p.files_total = c->progress_files_total;
    p.bytes_done = c->progress_bytes;
    p.bytes_total = c->repack_bytes_total;
    p.elapsed_seconds = (double)(now.tv_sec - c->started.tv_sec) +
                        (double)(now.tv_nsec - c->started.tv_nsec) / 1e9;
    if (c->opt.progress(&p, c->opt.payload) != 0)
        return nova_fail(NOVA_ECANCELLED, "prune cancelled");
    return 0;
}

/* A checkpoint: progress (which may cancel) and the lock's refresh. */
static int checkpoint(prune_ctx *c)
{
    NOVA_TRY(progress(c));
    return nova_maint_lock_refresh(&c->lock);
}

/* ---- marking ----------------------------------------------------------------------------- */

static int mark_blob(const nova_id *id, nova_blob_type type, size_t entry, void *payload)
{
    char hex[NOVA_ID_HEX_LEN + 1];
    (void)payload;
    if (entry != NOVA_MAINT_NO_ENTRY)
        return 0; /* the walk has set its bit in `used` */
    nova_id_to_hex(id, hex);
    nova_fail(NOVA_ECORRUPT, "%s %s is referenced by a snapshot but no index names it",
              type == NOVA_BLOB_TREE ? "tree" : "blob", hex);
    return refuse(NOVA_ECORRUPT, "nothing was deleted; run 'nova check'");
}

static int mark_problem(const nova_id *id, nova_blob_type type, int code, const char *message,
                        void *payload)
{
    (void)id;
    (void)type;
    (void)message;
    (void)payload;
    return refuse(code, "nothing was deleted; run 'nova check'");
}

static int mark_used(prune_ctx *c)
{
    static const nova_maint_walk_ops ops = {mark_blob, mark_problem};
    nova_repo_reader *reader = NULL;
    int rc;

    if (!(c->used = nova_maint_bitmap_new(c->scan.entry_count)))
        return nova_fail(NOVA_ENOMEM, "unable to allocate a bitmap");
    rc = nova_repo_reader_new(&reader, c->repo, c->scan.index);
    for (size_t i = 0; rc == 0 && i < c->scan.snapshot_count; i++) {
        nova_snapshot *snap = NULL;
        rc = nova_snapshot_read(&snap, c->repo->storage, &c->scan.snapshots[i],
                                c->repo->keys.enc);
        if (rc < 0) {
            rc = refuse(rc, "nothing was deleted; run 'nova check'");
            break;
        }
        rc = nova_maint_walk(&c->scan, reader, &snap->tree, c->used, &ops, c, NULL);
        nova_snapshot_free(snap);
        if (rc == 0)
            rc = checkpoint(c);
    }
    nova_repo_reader_free(reader);
    c->res->snapshots = c->scan.snapshot_count;
    return rc;
}

/* ---- planning ---------------------------------------------------------------------------- */

static void pack_name_of(const prune_ctx *c, uint32_t pack, char name[NOVA_PACK_NAME_LEN + 1])
{
    nova_pack_storage_name(name, nova_chunk_index_pack_id(c->scan.index, pack));
}

/* The bytes of a pack's blobs: its size without the header and trailer (as far as the
 * index knows its entries), so that a pack whose blobs are all used has a used share of
 * exactly 1. */
static uint64_t pack_payload(const nova_maint_pack *p)
{
    uint64_t overhead = (uint64_t)p->count * NOVA_PACK_ENTRY_LEN + NOVA_TAG_LEN +
                        NOVA_PACK_TRAILER_LEN;
    return p->size > overhead ? p->size - overhead : 0;
}

static int plan_pack(prune_ctx *c, uint32_t pack)
{
    const nova_maint_pack *p = &c->scan.packs[pack];
    nova_prune_result *r = c->res;
    uint64_t used_bytes = 0, used_count = 0;

    for (size_t i = 0; i < p->count; i++) {
        if (!nova_maint_bit_get(c->used, p->first + i)) {
            r->bytes_unused += c->scan.entries[p->first + i].length;
            continue;
        }
        used_count++;
        used_bytes += c->scan.entries[p->first + i].length;
    }
    r->blobs_used += used_count;
    r->blobs_unused += p->count - used_count;
    if (!p->listed && used_count > 0) {
        char name[NOVA_PACK_NAME_LEN + 1];
        pack_name_of(c, pack, name);
        return nova_fail(NOVA_ECORRUPT, "prune stopped: pack '%s' holding %llu blobs in use is "
                                        "missing; nothing was deleted; run 'nova check'",
                         name, (unsigned long long)used_count);
    }
    if (!p->listed) {
        c->fate[pack] = FATE_GONE;
    } else if (used_count == 0) {
        c->fate[pack] = FATE_DELETE;
        r->packs_deleted++;
        r->bytes_deleted += p->size;
    } else if ((double)used_bytes < c->opt.max_repack_ratio * (double)pack_payload(p)) {
        c->fate[pack] = FATE_REPACK;
        r->packs_repacked++;
        r->blobs_repacked += used_count;
        r->bytes_deleted += p->size;
        c->repack_bytes_total += used_bytes;
    }
    return 0;
}

static int plan(prune_ctx *c)
{
    nova_prune_result *r = c->res;
    size_t n = c->scan.pack_count;

    c->fate = calloc(n + 1, 1);
    c->relisted = calloc(n + 1, 1);
    c->obsolete = calloc(c->scan.index_count + 1, 1);
    if (!c->fate || !c->relisted || !c->obsolete)
        return nova_fail(NOVA_ENOMEM, "unable to plan the prune of %zu packs", n);
    r->packs = n;
    for (size_t p = 0; p < n; p++) {
        NOVA_TRY(plan_pack(c, (uint32_t)p));
        r->repository_bytes_before += c->scan.packs[p].size;
    }
    for (size_t i = 0; i < c->scan.index_count; i++) {
        const nova_maint_index_file *f = &c->scan.indexes[i];
        r->repository_bytes_before += f->size;
        for (size_t k = 0; k < f->pack_count && !c->obsolete[i]; k++)
            c->obsolete[i] = c->fate[f->packs[k]] != FATE_KEEP;
        if (c->obsolete[i]) {
            r->indexes_deleted++;
            r->bytes_deleted += f->size;
        }
    }
    for (size_t u = 0; u < c->scan.unindexed_count; u++) {
        r->repository_bytes_before += c->scan.unindexed[u].size;
        if (c->delete_unindexed) {
            r->unindexed_deleted++;
            r->bytes_deleted += c->scan.unindexed[u].size;
        } else {
            r->unindexed_kept++;
        }
    }
    c->progress_files_total = r->packs_deleted + r->packs_repacked + r->unindexed_deleted;
    return 0;
}

/* What a dry run expects to write: the repacked blobs in full packs, and one index
 * listing the new packs and the survivors that obsolete index files named (an upper
 * bound: index payloads are compressed). */
static void estimate_writes(prune_ctx *c)
{
    nova_prune_result *r = c->res;
    uint64_t target = c->repo->config.pack_target_size, packs = 0, entries = 0;

    if (c->repack_bytes_total > 0) {
        r->packs_written = (c->repack_bytes_total + target - 1) / target;
        r->bytes_written += c->repack_bytes_total + r->blobs_repacked * NOVA_PACK_ENTRY_LEN +
                            r->packs_written * (NOVA_TAG_LEN + NOVA_PACK_TRAILER_LEN);
        packs += r->packs_written;
        entries += r->blobs_repacked;
    }
    for (size_t i = 0; i < c->scan.index_count; i++) {
        const nova_maint_index_file *f = &c->scan.indexes[i];
        for (size_t k = 0; c->obsolete[i] && k < f->pack_count; k++) {
            uint32_t p = f->packs[k];
            if (c->fate[p] != FATE_KEEP || c->relisted[p])
                continue;
            c->relisted[p] = 1;
            packs++;
            entries += c->scan.packs[p].count;
        }
    }
    if (r->indexes_deleted > 0 && packs > 0) {
        r->indexes_written = 1;
        r->bytes_written += 40 + 5 + NOVA_TAG_LEN + 4 + packs * NOVA_INDEX_PACK_RECORD_LEN +
                            entries * NOVA_PACK_ENTRY_LEN;
    }
}

/* ---- writing ----------------------------------------------------------------------------- */

static int put_object(prune_ctx *c, const char *name, const nova_buf *bytes)
{
    int rc = nova_storage_put(c->repo->storage, name, bytes->data, bytes->len);
    if (rc == NOVA_EEXISTS)
        return 0; /* named by its hash: identical bytes are already there */
    if (rc == 0)
        c->res->bytes_written += bytes->len;
    return rc;
}

/* Writes the collected index delta when forced or when it grew large. */
static int flush_index(prune_ctx *c, int force)
{
    char name[NOVA_INDEX_NAME_LEN + 1];
    nova_id id;

    if (nova_index_writer_pack_count(c->index_writer) == 0 ||
        (!force && nova_index_writer_payload_size(c->index_writer) < INDEX_SPLIT_BYTES))
        return 0;
    NOVA_TRY(nova_index_writer_finish(c->index_writer, &c->sealed, &id, c->repo->keys.enc,
                                      &c->repo->config.codec));
    nova_index_storage_name(name, &id);
    NOVA_TRY(put_object(c, name, &c->sealed));
    c->res->indexes_written++;
    return 0;
}

/* Uploads the pack being filled (if any) and lists it for the new index. The index
 * delta naming it is written only after the pack is durable. */
static int flush_pack(prune_ctx *c)
{
    char name[NOVA_PACK_NAME_LEN + 1];
    const nova_pack_entry *entries;
    size_t count;
    nova_id id;

    if (nova_pack_writer_count(c->writer) == 0)
        return 0;
    NOVA_TRY(nova_pack_writer_finish(c->writer, &c->sealed, &id));
    nova_pack_storage_name(name, &id);
    NOVA_TRY(put_object(c, name, &c->sealed));
    c->res->packs_written++;
    entries = nova_pack_writer_entries(c->writer, &count);
    NOVA_TRY(nova_index_writer_add_pack(c->index_writer, &id, entries, count));
    NOVA_TRY(nova_pack_writer_reset(c->writer));
    return flush_index(c, 0);
}

/* Copies the used blobs of one pack into the pack writer. */
static int repack_one(prune_ctx *c, uint32_t pack)
{
    const nova_maint_pack *p = &c->scan.packs[pack];
    char name[NOVA_PACK_NAME_LEN + 1];
    nova_pack_trailer trailer;
    int rc;

    pack_name_of(c, pack, name);
    rc = nova_storage_get(c->repo->storage, name, 0, NOVA_STORAGE_WHOLE, &c->bytes);
    if (rc == 0)
        rc = nova_pack_trailer_parse(&trailer, c->bytes.len, c->bytes.data, c->bytes.len, name);
    if (rc < 0)
        return nova_maint_is_damage(rc) ? refuse(rc, "run 'nova check'") : rc;
    for (size_t i = 0; i < p->count; i++) {
        nova_pack_entry e;
        if (!nova_maint_bit_get(c->used, p->first + i))
            continue;
        nova_maint_scan_entry(&c->scan, p->first + i, &e);
        rc = (uint64_t)e.offset + e.length > c->bytes.len
                 ? nova_fail(NOVA_ECORRUPT, "pack '%s': a blob runs past the end", name)
                 : nova_pack_reader_open_blob(c->reader, &c->plain, trailer.salt, &e,
                                              c->bytes.data + e.offset, e.length, name);
        if (rc < 0)
            return nova_maint_is_damage(rc) ? refuse(rc, "run 'nova check'") : rc;
        NOVA_TRY(nova_pack_writer_add(c->writer, (nova_blob_type)e.type, &e.id, c->plain.data,
                                      c->plain.len));
        c->res->bytes_repacked += c->plain.len;
        c->progress_bytes += e.length;
        if (nova_pack_writer_size(c->writer) >= c->repo->config.pack_target_size)
            NOVA_TRY(flush_pack(c));
    }
    return 0;
}

static int repack(prune_ctx *c)
{
    for (size_t p = 0; p < c->scan.pack_count; p++) {
        if (c->fate[p] != FATE_REPACK)
            continue;
        NOVA_TRY(repack_one(c, (uint32_t)p));
        c->progress_files++;
        NOVA_TRY(checkpoint(c));
    }
    return flush_pack(c);
}

/* Lists a surviving pack in the new index with every entry the index had for it. */
static int relist_pack(prune_ctx *c, uint32_t pack)
{
    const nova_maint_pack *p = &c->scan.packs[pack];
    if (c->relisted[pack] || c->fate[pack] != FATE_KEEP)
        return 0;
    c->relisted[pack] = 1;
    if (p->count > c->entries_cap) {
        nova_pack_entry *grown = realloc(c->entries, p->count * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to list the entries of a pack");
        c->entries = grown;
        c->entries_cap = p->count;
    }
    for (size_t i = 0; i < p->count; i++)
        nova_maint_scan_entry(&c->scan, p->first + i, &c->entries[i]);
    NOVA_TRY(nova_index_writer_add_pack(c->index_writer,
                                        nova_chunk_index_pack_id(c->scan.index, pack),
                                        c->entries, p->count));
    return flush_index(c, 0);
}

static int write_new_index(prune_ctx *c)
{
    for (size_t i = 0; i < c->scan.index_count; i++) {
        const nova_maint_index_file *f = &c->scan.indexes[i];
        for (size_t k = 0; c->obsolete[i] && k < f->pack_count; k++)
            NOVA_TRY(relist_pack(c, f->packs[k]));
    }
    return flush_index(c, 1);
}

/* ---- deleting ---------------------------------------------------------------------------- */

static int delete_object(const prune_ctx *c, const char *name)
{
    int rc = nova_storage_del(c->repo->storage, name);
    return rc == NOVA_ENOTFOUND ? 0 : rc;
}

static int delete_obsolete_indexes(prune_ctx *c)
{
    for (size_t i = 0; i < c->scan.index_count; i++)
        if (c->obsolete[i])
            NOVA_TRY(delete_object(c, c->scan.indexes[i].name));
    return 0;
}

static int delete_packs(prune_ctx *c)
{
    char name[NOVA_PACK_NAME_LEN + 1];
    for (size_t p = 0; p < c->scan.pack_count; p++) {
        if (c->fate[p] != FATE_DELETE && c->fate[p] != FATE_REPACK)
            continue;
        pack_name_of(c, (uint32_t)p, name);
        NOVA_TRY(delete_object(c, name));
        if (++c->progress_files % 64 == 0)
            NOVA_TRY(checkpoint(c));
    }
    for (size_t u = 0; c->delete_unindexed && u < c->scan.unindexed_count; u++) {
        nova_pack_storage_name(name, &c->scan.unindexed[u].id);
        NOVA_TRY(delete_object(c, name));
        if (++c->progress_files % 64 == 0)
            NOVA_TRY(checkpoint(c));
    }
    return progress(c);
}

static int execute(prune_ctx *c)
{
    NOVA_TRY(nova_pack_writer_new(&c->writer, c->repo->keys.enc, &c->repo->config.codec));
    NOVA_TRY(nova_pack_reader_new(&c->reader, c->repo->keys.enc, c->repo->keys.id));
    NOVA_TRY(nova_index_writer_new(&c->index_writer));
    NOVA_TRY(repack(c));             /* 1. new packs */
    NOVA_TRY(write_new_index(c));    /* 2. the index naming them and the survivors */
    NOVA_TRY(delete_obsolete_indexes(c)); /* 3. */
    return delete_packs(c);          /* 4. */
}

/* ---- the call ---------------------------------------------------------------------------- */

static int prune_options(nova_prune_options *out, const nova_prune_options *in)
{
    const nova_prune_options defaults = NOVA_PRUNE_OPTIONS_INIT;
    *out = in ? *in : defaults;
    if (out->version != NOVA_PRUNE_OPTIONS_VERSION)
        return nova_fail(NOVA_EINVALID, "prune options of version %u (want %u)", out->version,
                         NOVA_PRUNE_OPTIONS_VERSION);
    if (!(out->max_repack_ratio >= 0.0 && out->max_repack_ratio <= 1.0))
        return nova_fail(NOVA_EINVALID, "prune: repack ratio %g is not within 0..1",
                         out->max_repack_ratio);
    return 0;
}

static int on_index_error(const char *name, int code, const char *message, void *payload)
{
    (void)name;
    (void)message;
    (void)payload;
    return refuse(code, "nothing was deleted; run 'nova check'");
}

static int take_lock(prune_ctx *c)
{
    uint64_t stale = 0;
    int rc = nova_maint_lock_take(&c->lock, c->repo, !c->opt.dry_run, "prune",
                                  NOVA_MAINT_LOCK_TTL_NS);
    if (rc == NOVA_ELOCKED)
        return refuse(rc, "a backup or check is running; prune needs the repository to "
                          "itself, run it again when they have finished");
    if (rc < 0)
        return rc;
    NOVA_TRY(nova_maint_stale_locks(c->repo, c->lock.name, !c->opt.dry_run, &stale));
    c->res->stale_locks_removed = c->opt.dry_run ? 0 : stale;
    c->delete_unindexed = stale == 0 || c->opt.force_unindexed;
    return 0;
}

static int run_prune(prune_ctx *c)
{
    nova_prune_result *r = c->res;

    NOVA_TRY(take_lock(c));
    NOVA_TRY(nova_maint_scan_run(&c->scan, c->repo, on_index_error, c));
    NOVA_TRY(mark_used(c));
    NOVA_TRY(plan(c));
    if (c->opt.dry_run) {
        estimate_writes(c);
    } else if (r->indexes_deleted > 0 || r->unindexed_deleted > 0) {
        NOVA_TRY(progress(c));
        NOVA_TRY(execute(c));
    }
    r->bytes_freed = r->bytes_deleted > r->bytes_written ? r->bytes_deleted - r->bytes_written : 0;
    r->repository_bytes_after = r->repository_bytes_before + r->bytes_written >= r->bytes_deleted
                                    ? r->repository_bytes_before + r->bytes_written -
                                          r->bytes_deleted
                                    : 0;
    return 0;
}

int nova_prune(nova_repository *handle, const nova_prune_options *options,
               nova_prune_result *result)
{
    prune_ctx c;
    int rc;

    memset(&c, 0, sizeof(c));
    memset(result, 0, sizeof(*result));
    NOVA_TRY(prune_options(&c.opt, options));
    c.handle = handle;
    c.repo = handle->repo;
    c.res = result;
    result->dry_run = c.opt.dry_run ? 1 : 0;
    clock_gettime(CLOCK_MONOTONIC, &c.started);
    rc = run_prune(&c);
    if (rc < 0) {
        char detail[NOVA_ERROR_MESSAGE_MAX];
        snprintf(detail, sizeof(detail), "%s", nova_error_last()->message);
        (void)nova_maint_lock_drop(&c.lock);
        nova_fail(rc, "%s", detail); /* the lock's release must not hide why prune stopped */
    } else {
        (void)nova_maint_lock_drop(&c.lock);
    }
    if (!c.opt.dry_run)
        nova_repository_forget_index(handle);
    nova_pack_writer_free(c.writer);
    nova_pack_reader_free(c.reader);
    nova_index_writer_free(c.index_writer);
    nova_buf_free(&c.bytes);
    nova_buf_free(&c.plain);
    nova_buf_free(&c.sealed);
    free(c.entries);
    free(c.used);
    free(c.fate);
    free(c.obsolete);
    free(c.relisted);
    nova_maint_scan_free(&c.scan);
    return rc;
}
