/*
 * replicas_copy.c -- copy backups from an open repository to another storage, making it
 * a replica when it is empty (nova_copy_to_storage; nova_copy and repair's fill call it).
 * Design and ordering rules in docs/format-replication.md.
 *
 * Invariants:
 *   - nothing is decrypted but trees, snapshots and index files, and only to learn which
 *     objects a backup needs; every object travels byte for byte;
 *   - every object is hashed and compared with its name before it is written, so a
 *     rotten copy never spreads;
 *   - copy writes packs, then the index files that name them (an index file only once
 *     every pack it names that the source holds is in the target), then snapshots,
 *     oldest first: a snapshot in a replica always finds its data, whatever moment a
 *     copy was stopped;
 *   - a replica is created by writing the key slots first and `config` last, as
 *     nova_repo_init does: a half-created replica holds no config and is not a
 *     repository;
 *   - both repositories are locked (shared) while objects move; the locks are refreshed
 *     between progress reports.
 */
#include "api/replicas_internal.h"

#include "common/err.h"
#include "repo/snapshot.h"

#include <string.h>

typedef struct selected {
    nova_id id;
    nova_id tree;
    int64_t started_ns;
    int present; /* the target holds the snapshot object */
} selected;

typedef struct copy_engine {
    replica_view src;
    nova_storage *dst;
    const char *dst_name;
    replica_id_map dst_packs, dst_indexes, dst_snapshots, dst_keys;
    selected *sel; /* the backups to copy, oldest first */
    size_t sel_count;
    uint8_t *needed; /* bit per source pack number: some selected backup needs it */
    size_t pack_count;
    replica_job_list packs, indexes; /* what the target lacks */
    char current[NOVA_ID_HEX_LEN + 1]; /* the backup being walked */
    unsigned threads;
    replica_progress progress;
    replica_lock src_lock, dst_lock;
    atomic_uint_fast64_t packs_copied, packs_present, indexes_copied, indexes_present;
    atomic_uint_fast64_t bytes_copied;
    uint64_t keys_copied, snapshots_copied, snapshots_present;
    int target_created;
} copy_engine;

/* ---- moving objects --------------------------------------------------------------------- */

/* Copies one object from source to target, verified first. 1 copied, 0 already there. */
static int transfer_object(copy_engine *e, replica_kind kind, const nova_id *id,
                           nova_buf *bytes)
{
    char name[REPLICA_NAME_SIZE];
    int rc = replica_read_verified(e->src.repo->storage, e->src.name, kind, id, bytes);

    if (rc == NOVA_ECHECKSUM)
        return replica_wrap_error(rc, "not copied to '%s' (repair the source first: 'nova "
                                  "replicas repair --to %s' from a healthy copy)", e->dst_name,
                                  e->src.name);
    if (rc < 0)
        return rc;
    replica_object_name(name, kind, id);
    rc = nova_storage_put(e->dst, name, bytes->data, bytes->len);
    if (rc == NOVA_EEXISTS)
        return 0;
    if (rc < 0)
        return replica_wrap_error(rc, "unable to write '%s' to '%s'", name, e->dst_name);
    atomic_fetch_add(&e->bytes_copied, bytes->len);
    return 1;
}

static int copy_job(void *ctx, const replica_job *item, nova_buf *scratch)
{
    copy_engine *e = ctx;
    int rc = transfer_object(e, item->kind, &item->id, scratch);
    if (rc < 0)
        return rc;
    if (item->kind == REPLICA_PACK)
        atomic_fetch_add(rc ? &e->packs_copied : &e->packs_present, 1);
    else
        atomic_fetch_add(rc ? &e->indexes_copied : &e->indexes_present, 1);
    replica_progress_done(&e->progress, item->size);
    return 0;
}

static int copy_tick(void *ctx)
{
    copy_engine *e = ctx;
    NOVA_TRY(replica_lock_refresh(&e->src_lock));
    return replica_lock_refresh(&e->dst_lock);
}

/* ---- the target: a replica of the source ------------------------------------------------ */

/* Copies the key slots the target lacks; damaged slots of the source are skipped (any
 * intact slot opens the repository). */
static int copy_keys(copy_engine *e)
{
    replica_id_map src_keys = {0};
    nova_buf bytes = NOVA_BUF_INIT;
    nova_id *ids = NULL;
    int rc = replica_list(e->src.repo->storage, e->src.name, REPLICA_KEY, &src_keys);

    if (rc == 0)
        rc = replica_list(e->dst, e->dst_name, REPLICA_KEY, &e->dst_keys);
    if (rc == 0)
        rc = replica_id_map_sorted(&src_keys, &ids);
    for (size_t i = 0; rc == 0 && i < src_keys.count; i++) {
        if (replica_id_map_get(&e->dst_keys, &ids[i], NULL))
            continue;
        rc = transfer_object(e, REPLICA_KEY, &ids[i], &bytes);
        if (rc == NOVA_ECHECKSUM)
            rc = 0;
        else if (rc > 0) {
            e->keys_copied++;
            rc = replica_id_map_set(&e->dst_keys, &ids[i], bytes.len);
        }
    }
    if (rc == 0 && e->dst_keys.count == 0)
        rc = nova_fail(NOVA_ECORRUPT, "'%s' has no intact key slot to copy to '%s'",
                       e->src.name, e->dst_name);
    free(ids);
    replica_id_map_free(&src_keys);
    nova_buf_free(&bytes);
    return rc < 0 ? rc : 0;
}

/* Makes the target a replica of the source (key slots, then config) or checks that it is
 * one, and copies key slots it lacks. */
static int prepare_target(copy_engine *e)
{
    nova_buf mine = NOVA_BUF_INIT, theirs = NOVA_BUF_INIT;
    int rc = nova_storage_get(e->src.repo->storage, NOVA_REPO_CONFIG_NAME, 0, NOVA_STORAGE_WHOLE,
                              &mine);

    if (rc < 0) {
        rc = replica_wrap_error(rc, "unable to read the config of '%s'", e->src.name);
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
        if (rc == NOVA_EEXISTS) { /* another copy got there first: it must be ours */
            rc = nova_storage_get(e->dst, NOVA_REPO_CONFIG_NAME, 0, NOVA_STORAGE_WHOLE, &theirs);
        } else {
            if (rc < 0)
                rc = replica_wrap_error(rc, "unable to create the replica '%s'", e->dst_name);
            goto out;
        }
    }
    if (rc < 0) {
        rc = replica_wrap_error(rc, "unable to read the config of '%s'", e->dst_name);
        goto out;
    }
    rc = replica_same_config(&mine, &theirs, e->dst_name);
    if (rc == 0 && !e->target_created)
        rc = copy_keys(e);
out:
    nova_buf_free(&mine);
    nova_buf_free(&theirs);
    return rc;
}

static int lock_both(copy_engine *e)
{
    const uint8_t *key = e->src.repo->keys.enc;
    NOVA_TRY(replica_lock_take(&e->src_lock, e->src.repo->storage, key, "nova copy (source)",
                               e->src.name));
    return replica_lock_take(&e->dst_lock, e->dst, key, "nova copy (target)", e->dst_name);
}

/* What the copy works from: the source's objects and index files, the target's
 * snapshots, index files and packs. */
static int survey(copy_engine *e)
{
    NOVA_TRY(replica_view_list(&e->src));
    /* a damaged index file of the source is skipped: the backups that need it fail their
     * walk ("no index file names it"), the others copy */
    NOVA_TRY(replica_view_load_indexes(&e->src, NULL, NULL));
    NOVA_TRY(replica_list(e->dst, e->dst_name, REPLICA_SNAPSHOT, &e->dst_snapshots));
    NOVA_TRY(replica_list(e->dst, e->dst_name, REPLICA_INDEX, &e->dst_indexes));
    return replica_list(e->dst, e->dst_name, REPLICA_PACK, &e->dst_packs);
}

/* ---- choosing and walking the backups --------------------------------------------------- */

static int compare_selected(const void *a, const void *b)
{
    const selected *x = a, *y = b;
    if (x->started_ns != y->started_ns)
        return x->started_ns < y->started_ns ? -1 : 1;
    return memcmp(x->id.bytes, y->id.bytes, NOVA_ID_LEN);
}

static int already_selected(const copy_engine *e, const nova_id *id)
{
    for (size_t k = 0; k < e->sel_count; k++)
        if (nova_id_equal(&e->sel[k].id, id))
            return 1;
    return 0;
}

/* Reads one chosen snapshot of the source and appends it to the selection. */
static int select_one(copy_engine *e, const nova_id *id)
{
    nova_snapshot *snap = NULL;
    char hex[NOVA_ID_HEX_LEN + 1];
    selected *s = &e->sel[e->sel_count];
    int rc;

    nova_id_to_hex(id, hex);
    rc = nova_snapshot_read(&snap, e->src.repo->storage, id, e->src.repo->keys.enc);
    if (rc < 0)
        return replica_wrap_error(rc, "backup %s in '%s'", hex, e->src.name);
    s->id = *id;
    s->tree = snap->tree;
    s->started_ns = snap->start_ns;
    s->present = replica_id_map_get(&e->dst_snapshots, id, NULL);
    e->sel_count++;
    nova_snapshot_free(snap);
    return 0;
}

/* Reads the chosen snapshots (all when ids is NULL), each once, oldest first. */
static int select_snapshots(copy_engine *e, const nova_id *ids, size_t id_count)
{
    nova_id *all = NULL;
    int rc = 0;

    if (!ids) {
        NOVA_TRY(replica_id_map_sorted(&e->src.snapshots, &all));
        ids = all;
        id_count = e->src.snapshots.count;
    }
    e->sel = calloc(id_count + 1, sizeof(*e->sel));
    if (!e->sel)
        rc = nova_fail(NOVA_ENOMEM, "unable to select %zu backups", id_count);
    for (size_t i = 0; rc == 0 && i < id_count; i++)
        if (!already_selected(e, &ids[i]))
            rc = select_one(e, &ids[i]);
    free(all);
    if (rc < 0) {
        e->sel_count = 0;
        return rc;
    }
    qsort(e->sel, e->sel_count, sizeof(*e->sel), compare_selected);
    return 0;
}

static int copy_pack_reached(void *ctx, uint32_t pack)
{
    copy_engine *e = ctx;
    const nova_id *pid = nova_chunk_index_pack_id(e->src.index, pack);
    char name[REPLICA_NAME_SIZE];

    if (!pid || pack >= e->pack_count)
        return nova_fail(NOVA_EINTERNAL, "pack number %u out of range", pack);
    if (replica_bit_get(e->needed, pack))
        return 1;
    if (!replica_id_map_get(&e->src.packs, pid, NULL)) {
        replica_object_name(name, REPLICA_PACK, pid);
        return nova_fail(NOVA_ECORRUPT, "pack '%s' needed by backup %s is missing from '%s': "
                         "nothing copied (run 'nova check' there)", name, e->current, e->src.name);
    }
    replica_bit_set(e->needed, pack);
    return 1;
}

static int copy_problem(void *ctx, int code, const char *object, const char *message)
{
    copy_engine *e = ctx;
    (void)object;
    return nova_fail(code, "backup %s cannot be copied: %s", e->current, message);
}

/* Marks every pack the backups to copy need (trees and chunks). */
static int walk_selected(copy_engine *e, int fill)
{
    replica_walk_ops ops = {copy_pack_reached, copy_problem, e};
    replica_walker w;
    int rc;

    e->pack_count = nova_chunk_index_pack_count(e->src.index);
    e->needed = replica_bitmap_new(e->pack_count);
    if (!e->needed)
        return nova_fail(NOVA_ENOMEM, "unable to track %zu packs", e->pack_count);
    NOVA_TRY(replica_walker_init(&w, &e->src, &ops));
    rc = 0;
    for (size_t i = 0; rc == 0 && i < e->sel_count; i++) {
        if (e->sel[i].present && !fill)
            continue;
        nova_id_to_hex(&e->sel[i].id, e->current);
        rc = replica_walk_backup(&w, &e->sel[i].tree);
        if (rc == 0)
            rc = nova_fail(NOVA_ECORRUPT, "backup %s in '%s' is incomplete", e->current,
                           e->src.name);
        else if (rc > 0)
            rc = 0;
    }
    replica_walker_free(&w);
    return rc;
}

/* ---- planning the transfers ------------------------------------------------------------- */

/* A pack an index file names, once: a job when the target lacks it and the source holds
 * it (a pack the source lost that no backup needs stays lost); a pack of another size in
 * the target is refused. */
static int plan_pack(copy_engine *e, uint32_t pack, uint8_t *planned)
{
    const nova_id *pid = nova_chunk_index_pack_id(e->src.index, pack);
    uint64_t src_size = 0, dst_size = 0;
    char name[REPLICA_NAME_SIZE];
    int in_src;

    if (replica_bit_get(planned, pack))
        return 0;
    replica_bit_set(planned, pack);
    in_src = replica_id_map_get(&e->src.packs, pid, &src_size);
    if (!replica_id_map_get(&e->dst_packs, pid, &dst_size))
        return in_src ? replica_job_add(&e->packs, REPLICA_PACK, pid, src_size) : 0;
    atomic_fetch_add(&e->packs_present, 1);
    if (!in_src || dst_size == src_size)
        return 0;
    replica_object_name(name, REPLICA_PACK, pid);
    return nova_fail(NOVA_ECORRUPT, "pack '%s' in '%s' has %llu bytes where '%s' has %llu: "
                     "repair it with 'nova replicas repair --to %s'", name, e->dst_name,
                     (unsigned long long)dst_size, e->src.name, (unsigned long long)src_size,
                     e->dst_name);
}

/* Every pack a wanted index file names, then the file itself when the target lacks it. */
static int plan_index_file(copy_engine *e, const replica_index_file *file, uint8_t *planned)
{
    uint64_t size = 0;

    for (size_t k = 0; k < file->pack_count; k++)
        NOVA_TRY(plan_pack(e, file->packs[k], planned));
    if (replica_id_map_get(&e->dst_indexes, &file->id, NULL)) {
        atomic_fetch_add(&e->indexes_present, 1);
        return 0;
    }
    replica_id_map_get(&e->src.indexes, &file->id, &size);
    return replica_job_add(&e->indexes, REPLICA_INDEX, &file->id, size);
}

/* Every index file naming a needed pack, and every pack those files name that the target
 * lacks: the target's copy of an index file must find all its packs. */
static int plan_transfers(copy_engine *e)
{
    uint8_t *file_wanted = calloc(e->src.file_count + 1, 1);
    uint8_t *pack_planned = replica_bitmap_new(e->pack_count);
    int rc = 0;

    if (!file_wanted || !pack_planned) {
        rc = nova_fail(NOVA_ENOMEM, "unable to plan the copy of %zu packs", e->pack_count);
        goto out;
    }
    for (size_t p = 0; p < e->pack_count; p++)
        if (replica_bit_get(e->needed, p) && p < e->src.meta_count &&
            e->src.metas[p].file != REPLICA_NO_FILE)
            file_wanted[e->src.metas[p].file] = 1;
    for (size_t f = 0; rc == 0 && f < e->src.file_count; f++)
        if (file_wanted[f])
            rc = plan_index_file(e, &e->src.files[f], pack_planned);
out:
    free(file_wanted);
    free(pack_planned);
    return rc;
}

/* ---- moving the planned objects --------------------------------------------------------- */

/* Writes the snapshot objects, oldest first: each is the commit point of its backup. */
static int commit_snapshots(copy_engine *e, int fill)
{
    nova_buf bytes = NOVA_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < e->sel_count; i++) {
        if (e->sel[i].present && !fill) {
            e->snapshots_present++;
            continue;
        }
        rc = transfer_object(e, REPLICA_SNAPSHOT, &e->sel[i].id, &bytes);
        if (rc > 0)
            e->snapshots_copied++;
        else if (rc == 0)
            e->snapshots_present++;
        if (rc >= 0) {
            replica_progress_done(&e->progress, bytes.len);
            rc = replica_progress_report(&e->progress);
        }
    }
    nova_buf_free(&bytes);
    return rc;
}

/* Packs, then index files, then snapshots, with progress over all of them. */
static int transfer_all(copy_engine *e, int fill)
{
    replica_progress_add_jobs(&e->progress, &e->packs);
    replica_progress_add_jobs(&e->progress, &e->indexes);
    e->progress.objects_total += e->sel_count;
    NOVA_TRY(replica_progress_report(&e->progress));
    NOVA_TRY(replica_pool_run(&e->packs, e->threads, copy_job, e, &e->progress));
    NOVA_TRY(replica_pool_run(&e->indexes, e->threads, copy_job, e, &e->progress));
    return commit_snapshots(e, fill);
}

/* ---- the copy --------------------------------------------------------------------------- */

static void engine_init(copy_engine *e, nova_repo *source, const char *source_name,
                        const nova_replica_storage *target, const nova_copy_options *o)
{
    memset(e, 0, sizeof(*e));
    replica_view_init(&e->src, source_name, source, 0);
    e->dst = target->storage;
    e->dst_name = target->name;
    e->threads = replica_threads(o ? o->threads : 0, o ? o->config : NULL);
    atomic_init(&e->packs_copied, 0);
    atomic_init(&e->packs_present, 0);
    atomic_init(&e->indexes_copied, 0);
    atomic_init(&e->indexes_present, 0);
    atomic_init(&e->bytes_copied, 0);
    replica_progress_init(&e->progress, o ? o->progress : NULL, o ? o->payload : NULL);
    e->progress.tick = copy_tick;
    e->progress.tick_ctx = e;
}

static void engine_free(copy_engine *e)
{
    replica_job_list_free(&e->packs);
    replica_job_list_free(&e->indexes);
    free(e->sel);
    free(e->needed);
    replica_id_map_free(&e->dst_packs);
    replica_id_map_free(&e->dst_indexes);
    replica_id_map_free(&e->dst_snapshots);
    replica_id_map_free(&e->dst_keys);
    replica_view_free(&e->src);
}

static void result_fill(copy_engine *e, nova_copy_result *r, double started)
{
    r->target_created = e->target_created;
    r->snapshots_selected = e->sel_count;
    r->snapshots_copied = e->snapshots_copied;
    r->snapshots_present = e->snapshots_present;
    r->packs_copied = atomic_load(&e->packs_copied);
    r->packs_present = atomic_load(&e->packs_present);
    r->indexes_copied = atomic_load(&e->indexes_copied);
    r->indexes_present = atomic_load(&e->indexes_present);
    r->keys_copied = e->keys_copied;
    r->bytes_copied = atomic_load(&e->bytes_copied);
    r->seconds = replica_mono_seconds() - started;
}

int nova_copy_to_storage(nova_repo *source, const char *source_name,
                         const nova_replica_storage *target, const nova_id *ids,
                         size_t id_count, int fill, const nova_copy_options *o,
                         nova_copy_result *result)
{
    nova_copy_result ignored = {0};
    nova_copy_result *r = result ? result : &ignored;
    double started = replica_mono_seconds();
    copy_engine e;
    int rc;

    memset(r, 0, sizeof(*r));
    engine_init(&e, source, source_name, target, o);
    rc = prepare_target(&e);
    if (rc == 0)
        rc = lock_both(&e);
    if (rc == 0)
        rc = survey(&e);
    if (rc == 0)
        rc = select_snapshots(&e, ids, id_count);
    if (rc == 0)
        rc = walk_selected(&e, fill);
    if (rc == 0)
        rc = plan_transfers(&e);
    if (rc == 0)
        rc = transfer_all(&e, fill);
    replica_lock_drop(&e.dst_lock);
    replica_lock_drop(&e.src_lock);
    result_fill(&e, r, started);
    engine_free(&e);
    return rc;
}
