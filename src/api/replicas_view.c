/*
 * replicas_view.c -- a view of one copy of a repository (its listings, its index files,
 * what it knows of each pack) and the walk of a backup's trees over that view, as copy
 * and status use them to learn which packs a backup needs and whether a copy serves it.
 *
 * Invariants:
 *   - nothing is decrypted here but index files and trees, and only to learn which
 *     objects a backup needs; index files are verified against their names first;
 *   - listing goes snapshots, then index files, then packs: with prune excluded by the
 *     caller's lock, every listed snapshot finds its index files and every indexed pack
 *     is listed;
 *   - a walk reads each tree once (memoised good or bad) and reports each missing or
 *     damaged blob once, however many backups share it;
 *   - a copy's repository view borrows its storage; freeing the view never frees it.
 */
#include "api/replicas_internal.h"

#include "common/err.h"
#include "primitives/crypto.h"
#include "repo/pack.h"
#include "repo/tree.h"

#include <stdio.h>
#include <string.h>

#define TREE_MAX_DEPTH 4096u

/* ---- a view of one copy ----------------------------------------------------------------- */

int replica_repo_view_new(nova_repo **out, nova_storage *storage,
                          const nova_repo_config *config, const nova_master_keys *keys)
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

void replica_repo_view_free(nova_repo *r)
{
    if (!r)
        return;
    r->storage = NULL; /* borrowed */
    nova_repo_free(r);
}

void replica_view_init(replica_view *v, const char *name, nova_repo *repo, int owns_repo)
{
    memset(v, 0, sizeof(*v));
    v->name = name;
    v->repo = repo;
    v->owns_repo = owns_repo;
}

void replica_view_free(replica_view *v)
{
    replica_id_map_free(&v->packs);
    replica_id_map_free(&v->indexes);
    replica_id_map_free(&v->snapshots);
    replica_id_map_free(&v->keys);
    nova_chunk_index_free(v->index);
    for (size_t i = 0; i < v->file_count; i++)
        free(v->files[i].packs);
    free(v->files);
    free(v->metas);
    if (v->owns_repo)
        replica_repo_view_free(v->repo);
    memset(v, 0, sizeof(*v));
}

int replica_view_list(replica_view *v)
{
    nova_storage *s = v->repo->storage;
    NOVA_TRY(replica_list(s, v->name, REPLICA_SNAPSHOT, &v->snapshots));
    NOVA_TRY(replica_list(s, v->name, REPLICA_INDEX, &v->indexes));
    NOVA_TRY(replica_list(s, v->name, REPLICA_PACK, &v->packs));
    return replica_list(s, v->name, REPLICA_KEY, &v->keys);
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

static int view_meta_reserve(replica_view *v, uint32_t number)
{
    size_t want = (size_t)number + 1;
    if (want <= v->meta_count)
        return 0;
    size_t cap = v->meta_count ? v->meta_count : 64;
    while (cap < want)
        cap *= 2;
    replica_pack_meta *grown = realloc(v->metas, cap * sizeof(*grown));
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "unable to describe %zu packs", cap);
    for (size_t i = v->meta_count; i < cap; i++) {
        grown[i].expected_size = 0;
        grown[i].file = REPLICA_NO_FILE;
    }
    v->metas = grown;
    v->meta_count = cap;
    return 0;
}

/* Records the packs an opened index file names: their chunk-index numbers, and for a
 * pack no earlier file named, this file and the size the entries give. */
static int view_add_packs(replica_view *v, size_t number, const nova_index *file,
                          const char *name)
{
    replica_index_file *f = &v->files[number];

    if (file->pack_count > 0 && !(f->packs = malloc(file->pack_count * sizeof(*f->packs))))
        return nova_fail(NOVA_ENOMEM, "index file '%s': unable to list its packs", name);
    for (size_t i = 0; i < file->pack_count; i++) {
        uint32_t pack;
        NOVA_TRY(nova_chunk_index_add_pack(v->index, &pack, &file->packs[i].pack_id));
        NOVA_TRY(view_meta_reserve(v, pack));
        f->packs[f->pack_count++] = pack;
        if (v->metas[pack].file == REPLICA_NO_FILE) {
            v->metas[pack].file = (uint32_t)number;
            v->metas[pack].expected_size = pack_expected_size(&file->packs[i]);
        }
    }
    return 0;
}

static int load_index_file(replica_view *v, size_t number, nova_buf *bytes)
{
    const nova_id *id = &v->files[number].id;
    nova_index file = NOVA_INDEX_INIT;
    char name[REPLICA_NAME_SIZE];
    int rc;

    replica_object_name(name, REPLICA_INDEX, id);
    NOVA_TRY(replica_read_verified(v->repo->storage, v->name, REPLICA_INDEX, id, bytes));
    v->objects_hashed++;
    v->bytes_hashed += bytes->len;
    rc = nova_index_open(&file, v->repo->keys.enc, bytes->data, bytes->len, name);
    if (rc < 0)
        return replica_wrap_error(rc, "index file '%s' in '%s'", name, v->name);
    rc = view_add_packs(v, number, &file, name);
    if (rc >= 0)
        rc = nova_chunk_index_add_index(v->index, &file, NULL);
    nova_index_free(&file);
    return rc < 0 ? rc : 0;
}

int replica_view_load_indexes(replica_view *v, replica_problem_fn problem, void *ctx)
{
    nova_buf bytes = NOVA_BUF_INIT;
    nova_id *ids = NULL;
    int rc;

    NOVA_TRY(nova_chunk_index_new(&v->index));
    NOVA_TRY(replica_id_map_sorted(&v->indexes, &ids));
    v->file_count = v->indexes.count;
    v->files = calloc(v->file_count + 1, sizeof(*v->files));
    rc = v->files ? 0 : nova_fail(NOVA_ENOMEM, "unable to list %zu index files", v->file_count);
    for (size_t i = 0; rc == 0 && i < v->file_count; i++) {
        v->files[i].id = ids[i];
        rc = load_index_file(v, i, &bytes);
        if (rc == 0)
            continue;
        free(v->files[i].packs);
        v->files[i].packs = NULL;
        v->files[i].pack_count = 0;
        if (replica_is_damage(rc)) {
            char name[REPLICA_NAME_SIZE];
            replica_object_name(name, REPLICA_INDEX, &ids[i]);
            rc = problem ? problem(ctx, rc, name, nova_error_last()->message) : 0;
        }
    }
    free(ids);
    nova_buf_free(&bytes);
    return rc;
}

/* ---- walking a backup's trees, each tree once (memoised) -------------------------------- */

enum { TREE_GOOD = 1, TREE_BAD = 2 };

int replica_walker_init(replica_walker *w, replica_view *v, const replica_walk_ops *ops)
{
    memset(w, 0, sizeof(*w));
    w->view = v;
    w->ops = *ops;
    return nova_repo_reader_new(&w->reader, v->repo, v->index);
}

void replica_walker_free(replica_walker *w)
{
    nova_repo_reader_free(w->reader);
    replica_id_map_free(&w->memo);
    replica_id_map_free(&w->told);
    nova_buf_free(&w->buf);
    memset(w, 0, sizeof(*w));
}

/* Reports a problem about a blob once per walker; returns 0 to go on. */
static int walk_problem(replica_walker *w, const nova_id *id, int code, const char *kind,
                        const char *message)
{
    char object[NOVA_ID_HEX_LEN + 8];
    char copy[NOVA_ERROR_MESSAGE_MAX];
    int rc;
    if (replica_id_map_get(&w->told, id, NULL))
        return 0;
    NOVA_TRY(replica_id_map_set(&w->told, id, 1));
    snprintf(copy, sizeof(copy), "%s", message);
    snprintf(object, sizeof(object), "%s ", kind);
    nova_id_to_hex(id, object + strlen(object));
    rc = w->ops.problem(w->ops.ctx, code, object, copy);
    return rc < 0 ? rc : 0;
}

/* 1 when the blob is indexed with the expected type and its pack can serve it. */
static int walk_blob(replica_walker *w, const nova_id *id, nova_blob_type type)
{
    const char *kind = type == NOVA_BLOB_TREE ? "tree" : "blob";
    nova_chunk_location loc;
    char hex[NOVA_ID_HEX_LEN + 1];
    char message[NOVA_ERROR_MESSAGE_MAX];

    if (nova_chunk_index_lookup(w->view->index, id, &loc) != 1) {
        nova_id_to_hex(id, hex);
        snprintf(message, sizeof(message), "%s %s is needed by a backup but no index file of "
                 "'%s' names it", kind, hex, w->view->name);
        return walk_problem(w, id, NOVA_ECORRUPT, kind, message);
    }
    if (loc.type != type) {
        nova_id_to_hex(id, hex);
        snprintf(message, sizeof(message), "blob %s in '%s' is indexed as %s where a %s is "
                 "referenced", hex, w->view->name, loc.type == NOVA_BLOB_TREE ? "a tree" : "data",
                 type == NOVA_BLOB_TREE ? "tree" : "data chunk");
        return walk_problem(w, id, NOVA_ECORRUPT, "blob", message);
    }
    return w->ops.pack(w->ops.ctx, loc.pack);
}

static int walk_tree(replica_walker *w, const nova_id *id, unsigned depth);

static int walk_entries(replica_walker *w, const nova_tree *tree, unsigned depth)
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

static int walk_tree_uncached(replica_walker *w, const nova_id *id, unsigned depth)
{
    char what[NOVA_ID_HEX_LEN + 8];
    char message[NOVA_ERROR_MESSAGE_MAX];
    nova_tree *tree = NULL;
    int rc;

    memcpy(what, "tree ", 5);
    nova_id_to_hex(id, what + 5);
    if (depth > TREE_MAX_DEPTH)
        return walk_problem(w, id, NOVA_ECORRUPT, "tree", "trees nest deeper than 4096 levels");
    rc = walk_blob(w, id, NOVA_BLOB_TREE);
    if (rc <= 0)
        return rc;
    rc = nova_repo_reader_read(w->reader, id, &w->buf);
    if (rc == 0)
        rc = nova_tree_decode(&tree, w->buf.data, w->buf.len, what);
    if (rc < 0) {
        if (!replica_is_damage(rc))
            return replica_wrap_error(rc, "%s in '%s'", what, w->view->name);
        snprintf(message, sizeof(message), "%s in '%.100s' cannot be read: %.300s", what,
                 w->view->name, nova_error_last()->message);
        return walk_problem(w, id, rc, "tree", message);
    }
    rc = walk_entries(w, tree, depth);
    nova_tree_free(tree);
    return rc;
}

/* 1 when the tree and everything below it can be served, 0 when not, negative to stop. */
static int walk_tree(replica_walker *w, const nova_id *id, unsigned depth)
{
    uint64_t state;
    int rc;
    if (replica_id_map_get(&w->memo, id, &state))
        return state == TREE_GOOD;
    rc = walk_tree_uncached(w, id, depth);
    if (rc < 0)
        return rc;
    NOVA_TRY(replica_id_map_set(&w->memo, id, rc ? TREE_GOOD : TREE_BAD));
    return rc;
}

int replica_walk_backup(replica_walker *w, const nova_id *root)
{
    return walk_tree(w, root, 0);
}
