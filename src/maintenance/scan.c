/*
 * scan.c -- listing and loading a repository for check and prune, and walking snapshot
 * trees. See scan.h for the invariants.
 */
#include "maintenance/scan.h"

#include "common/err.h"
#include "repo/snapshot.h"
#include "repo/tree.h"

#include <stdlib.h>
#include <string.h>

#define INDEX_PREFIX "index/"
#define DATA_PREFIX "data/"

int nova_maint_is_damage(int code)
{
    return code == NOVA_ECORRUPT || code == NOVA_ECHECKSUM || code == NOVA_ENOTFOUND ||
           code == NOVA_EVERSION;
}

uint8_t *nova_maint_bitmap_new(size_t bits)
{
    return calloc(bits / 8 + 1, 1);
}

/* Grows *array (of `size`-byte items) so that it holds at least count + 1 items. */
static int grow_for_one(void **array, size_t *cap, size_t count, size_t size)
{
    size_t new_cap;
    void *grown;
    if (count < *cap)
        return 0;
    new_cap = *cap ? *cap * 2 : 16;
    grown = realloc(*array, new_cap * size);
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "unable to grow a list to %zu items", new_cap);
    *array = grown;
    *cap = new_cap;
    return 0;
}

/* ---- snapshots --------------------------------------------------------------------- */

typedef struct snapshot_list {
    nova_maint_scan *scan;
    size_t cap;
} snapshot_list;

static int collect_snapshot(const nova_id *id, void *payload)
{
    snapshot_list *l = payload;
    nova_maint_scan *s = l->scan;
    NOVA_TRY(grow_for_one((void **)&s->snapshots, &l->cap, s->snapshot_count, sizeof(nova_id)));
    s->snapshots[s->snapshot_count++] = *id;
    return 0;
}

static int compare_ids(const void *a, const void *b)
{
    return memcmp(a, b, NOVA_ID_LEN);
}

static int list_snapshots(nova_maint_scan *s)
{
    snapshot_list l = {s, 0};
    NOVA_TRY(nova_repo_list_snapshots(s->repo, collect_snapshot, &l));
    if (s->snapshot_count > 1)
        qsort(s->snapshots, s->snapshot_count, sizeof(nova_id), compare_ids);
    return 0;
}

/* ---- index files ------------------------------------------------------------------- */

static int hex_id_ok(const char *hex)
{
    nova_id id;
    if (strlen(hex) != NOVA_ID_HEX_LEN)
        return 0;
    for (size_t i = 0; i < NOVA_ID_HEX_LEN; i++)
        if (hex[i] >= 'A' && hex[i] <= 'F')
            return 0; /* names are lowercase */
    return nova_id_from_hex(&id, hex) == 0;
}

typedef struct index_list {
    nova_maint_scan *scan;
    size_t cap;
} index_list;

static int collect_index(const char *name, uint64_t size, void *payload)
{
    index_list *l = payload;
    nova_maint_scan *s = l->scan;
    nova_maint_index_file *f;

    if (strncmp(name, INDEX_PREFIX, strlen(INDEX_PREFIX)) != 0 ||
        !hex_id_ok(name + strlen(INDEX_PREFIX)))
        return 0;
    NOVA_TRY(grow_for_one((void **)&s->indexes, &l->cap, s->index_count, sizeof(*f)));
    f = &s->indexes[s->index_count++];
    memset(f, 0, sizeof(*f));
    memcpy(f->name, name, sizeof(f->name));
    f->size = size;
    return 0;
}

static int compare_index_names(const void *a, const void *b)
{
    return strcmp(((const nova_maint_index_file *)a)->name,
                  ((const nova_maint_index_file *)b)->name);
}

/* Reads, verifies and merges one index file; the error detail is set on failure. */
static int load_index_file(nova_maint_scan *s, nova_maint_index_file *f, nova_buf *bytes)
{
    nova_index file = NOVA_INDEX_INIT;
    nova_id expected, actual;
    int rc;

    NOVA_TRY(nova_id_from_hex(&expected, f->name + strlen(INDEX_PREFIX)));
    NOVA_TRY(nova_storage_get(s->repo->storage, f->name, 0, NOVA_STORAGE_WHOLE, bytes));
    NOVA_TRY(nova_sha256(&actual, bytes->data, bytes->len));
    if (!nova_id_equal(&expected, &actual))
        return nova_fail(NOVA_ECHECKSUM, "index file '%s': content does not match its name",
                         f->name);
    rc = nova_index_open(&file, s->repo->keys.enc, bytes->data, bytes->len, f->name);
    if (rc == 0 && file.pack_count > 0 &&
        !(f->packs = malloc(file.pack_count * sizeof(*f->packs))))
        rc = nova_fail(NOVA_ENOMEM, "index file '%s': unable to list its packs", f->name);
    for (size_t i = 0; rc == 0 && i < file.pack_count; i++) {
        uint32_t number;
        int added = nova_chunk_index_add_pack(s->index, &number, &file.packs[i].pack_id);
        if (added < 0)
            rc = added;
        else
            f->packs[f->pack_count++] = number;
    }
    if (rc == 0)
        rc = nova_chunk_index_add_index(s->index, &file, NULL);
    nova_index_free(&file);
    return rc;
}

static int load_indexes(nova_maint_scan *s, nova_maint_index_error_cb on_error, void *payload)
{
    index_list l = {s, 0};
    nova_buf bytes = NOVA_BUF_INIT;
    int rc = nova_storage_list(s->repo->storage, INDEX_PREFIX, collect_index, &l);

    if (rc == 0 && s->index_count > 1)
        qsort(s->indexes, s->index_count, sizeof(*s->indexes), compare_index_names);
    for (size_t i = 0; rc == 0 && i < s->index_count; i++) {
        nova_maint_index_file *f = &s->indexes[i];
        rc = load_index_file(s, f, &bytes);
        if (rc == 0) {
            f->loaded = 1;
            continue;
        }
        free(f->packs);
        f->packs = NULL;
        f->pack_count = 0;
        if (nova_maint_is_damage(rc))
            rc = on_error(f->name, rc, nova_error_last()->message, payload);
    }
    nova_buf_free(&bytes);
    return rc;
}

/* ---- packs ------------------------------------------------------------------------- */

typedef struct pack_list {
    nova_maint_scan *scan;
    size_t cap;
} pack_list;

/* Parses "data/<2 hex>/<64 hex>" whose two-digit directory matches the id. */
static int parse_pack_name(nova_id *out, const char *name)
{
    const char *dir = name + strlen(DATA_PREFIX);
    if (strncmp(name, DATA_PREFIX, strlen(DATA_PREFIX)) != 0 ||
        strlen(dir) != 3 + NOVA_ID_HEX_LEN || dir[2] != '/' || !hex_id_ok(dir + 3) ||
        dir[0] != dir[3] || dir[1] != dir[4])
        return 0;
    return nova_id_from_hex(out, dir + 3) == 0;
}

static int collect_pack(const char *name, uint64_t size, void *payload)
{
    pack_list *l = payload;
    nova_maint_scan *s = l->scan;
    nova_id id;
    uint32_t number;

    if (!parse_pack_name(&id, name))
        return 0;
    if (nova_chunk_index_find_pack(s->index, &number, &id)) {
        s->packs[number].listed = 1;
        s->packs[number].size = size;
        return 0;
    }
    NOVA_TRY(grow_for_one((void **)&s->unindexed, &l->cap, s->unindexed_count,
                          sizeof(*s->unindexed)));
    s->unindexed[s->unindexed_count].id = id;
    s->unindexed[s->unindexed_count].size = size;
    s->unindexed_count++;
    return 0;
}

static int list_packs(nova_maint_scan *s)
{
    pack_list l = {s, 0};
    s->pack_count = nova_chunk_index_pack_count(s->index);
    s->packs = calloc(s->pack_count + 1, sizeof(*s->packs));
    if (!s->packs)
        return nova_fail(NOVA_ENOMEM, "unable to allocate the table of %zu packs", s->pack_count);
    return nova_storage_list(s->repo->storage, DATA_PREFIX, collect_pack, &l);
}

/* ---- grouping entries by pack ------------------------------------------------------- */

static int count_entry(const nova_id *id, const nova_chunk_location *loc, void *payload)
{
    nova_maint_scan *s = payload;
    (void)id;
    if (loc->pack >= s->pack_count)
        return nova_fail(NOVA_EINTERNAL, "chunk index: pack number %u out of range", loc->pack);
    s->packs[loc->pack].count++;
    return 0;
}

static int place_entry(const nova_id *id, const nova_chunk_location *loc, void *payload)
{
    nova_maint_scan *s = payload;
    nova_maint_pack *p = &s->packs[loc->pack];
    nova_maint_entry *e = &s->entries[p->first + p->count++];
    e->id = id;
    e->offset = loc->offset;
    e->length = loc->length;
    return 0;
}

static int compare_offsets(const void *a, const void *b)
{
    uint32_t x = ((const nova_maint_entry *)a)->offset, y = ((const nova_maint_entry *)b)->offset;
    return (x > y) - (x < y);
}

static int group_entries(nova_maint_scan *s)
{
    size_t next = 0;
    s->entry_count = nova_chunk_index_count(s->index);
    s->entries = malloc((s->entry_count + 1) * sizeof(*s->entries));
    if (!s->entries)
        return nova_fail(NOVA_ENOMEM, "unable to allocate the table of %zu blobs",
                         s->entry_count);
    NOVA_TRY(nova_chunk_index_foreach(s->index, count_entry, s));
    for (size_t p = 0; p < s->pack_count; p++) {
        s->packs[p].first = next;
        next += s->packs[p].count;
        s->packs[p].count = 0;
    }
    NOVA_TRY(nova_chunk_index_foreach(s->index, place_entry, s));
    for (size_t p = 0; p < s->pack_count; p++)
        if (s->packs[p].count > 1)
            qsort(s->entries + s->packs[p].first, s->packs[p].count, sizeof(*s->entries),
                  compare_offsets);
    return 0;
}

int nova_maint_scan_run(nova_maint_scan *s, nova_repo *repo,
                        nova_maint_index_error_cb on_index_error, void *payload)
{
    memset(s, 0, sizeof(*s));
    s->repo = repo;
    NOVA_TRY(list_snapshots(s));
    NOVA_TRY(nova_chunk_index_new(&s->index));
    NOVA_TRY(load_indexes(s, on_index_error, payload));
    NOVA_TRY(list_packs(s));
    return group_entries(s);
}

void nova_maint_scan_free(nova_maint_scan *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->index_count; i++)
        free(s->indexes[i].packs);
    free(s->indexes);
    free(s->packs);
    free(s->entries);
    free(s->unindexed);
    free(s->snapshots);
    nova_chunk_index_free(s->index);
    memset(s, 0, sizeof(*s));
}

size_t nova_maint_scan_find(const nova_maint_scan *s, const nova_id *id,
                            nova_chunk_location *location)
{
    nova_chunk_location loc;
    size_t lo, hi;

    if (nova_chunk_index_lookup(s->index, id, &loc) != 1 || loc.pack >= s->pack_count)
        return NOVA_MAINT_NO_ENTRY;
    if (location)
        *location = loc;
    lo = s->packs[loc.pack].first;
    hi = lo + s->packs[loc.pack].count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->entries[mid].offset < loc.offset)
            lo = mid + 1;
        else if (s->entries[mid].offset > loc.offset)
            hi = mid;
        else
            return mid;
    }
    return NOVA_MAINT_NO_ENTRY;
}

void nova_maint_scan_entry(const nova_maint_scan *s, size_t n, nova_pack_entry *out)
{
    nova_chunk_location loc;
    memset(out, 0, sizeof(*out));
    out->id = *s->entries[n].id;
    out->offset = s->entries[n].offset;
    out->length = s->entries[n].length;
    if (nova_chunk_index_lookup(s->index, &out->id, &loc) == 1) {
        out->raw_length = loc.raw_length;
        out->type = loc.type;
    }
}

/* ---- walking trees ------------------------------------------------------------------ */

typedef struct id_stack {
    nova_id *ids;
    size_t count, cap;
} id_stack;

static int stack_push(id_stack *st, const nova_id *id)
{
    NOVA_TRY(grow_for_one((void **)&st->ids, &st->cap, st->count, sizeof(nova_id)));
    st->ids[st->count++] = *id;
    return 0;
}

/* Reaches one blob: marks it, checks its indexed type, asks the caller. Returns 1 when
 * the blob is to be skipped, 0 to go on, negative to stop. */
static int reach(const nova_maint_scan *s, const nova_id *id, nova_blob_type type,
                 uint8_t *visited, const nova_maint_walk_ops *ops, void *payload)
{
    nova_chunk_location loc;
    size_t entry = nova_maint_scan_find(s, id, &loc);
    int rc;

    if (entry != NOVA_MAINT_NO_ENTRY) {
        if (nova_maint_bit_get(visited, entry))
            return 1;
        nova_maint_bit_set(visited, entry);
    }
    rc = ops->blob(id, type, entry, payload);
    if (rc != 0 || entry == NOVA_MAINT_NO_ENTRY)
        return rc != 0 ? rc : 1;
    if (loc.type != type) {
        char hex[NOVA_ID_HEX_LEN + 1];
        nova_id_to_hex(id, hex);
        rc = nova_fail(NOVA_ECORRUPT, "blob %s is indexed as %s where a %s is referenced", hex,
                       loc.type == NOVA_BLOB_TREE ? "a tree" : "data",
                       type == NOVA_BLOB_TREE ? "tree" : "data chunk");
        rc = ops->problem(id, type, rc, nova_error_last()->message, payload);
        return rc < 0 ? rc : 1;
    }
    return 0;
}

/* Reads and decodes one tree; a damaged one goes to ops->problem. *tree is NULL when
 * the tree could not be used. */
static int read_tree(nova_repo_reader *reader, const nova_id *id, nova_buf *buf,
                     nova_tree **tree, const nova_maint_walk_ops *ops, void *payload)
{
    char what[NOVA_ID_HEX_LEN + 8];
    int rc;

    *tree = NULL;
    memcpy(what, "tree ", 5);
    nova_id_to_hex(id, what + 5);
    rc = nova_repo_reader_read(reader, id, buf);
    if (rc == 0)
        rc = nova_tree_decode(tree, buf->data, buf->len, what);
    if (rc < 0 && nova_maint_is_damage(rc))
        return ops->problem(id, NOVA_BLOB_TREE, rc, nova_error_last()->message, payload);
    return rc;
}

static int visit_entries(const nova_maint_scan *s, const nova_tree *tree, id_stack *stack,
                         uint8_t *visited, const nova_maint_walk_ops *ops, void *payload,
                         nova_maint_walk_stats *stats)
{
    for (size_t i = 0; i < tree->count; i++) {
        const nova_tree_entry *e = &tree->entries[i];
        if (e->type == NOVA_TREE_DIR)
            NOVA_TRY(stack_push(stack, &e->subtree));
        for (uint64_t c = 0; e->type == NOVA_TREE_FILE && c < e->chunk_count; c++) {
            int rc = reach(s, &e->chunks[c], NOVA_BLOB_DATA, visited, ops, payload);
            if (rc < 0)
                return rc;
            if (rc == 0 && stats)
                stats->data_blobs++;
        }
    }
    return 0;
}

int nova_maint_walk(const nova_maint_scan *s, nova_repo_reader *reader, const nova_id *root,
                    uint8_t *visited, const nova_maint_walk_ops *ops, void *payload,
                    nova_maint_walk_stats *stats)
{
    id_stack stack = {NULL, 0, 0};
    nova_buf buf = NOVA_BUF_INIT;
    int rc = stack_push(&stack, root);

    while (rc >= 0 && stack.count > 0) {
        nova_id id = stack.ids[--stack.count];
        nova_tree *tree = NULL;
        rc = reach(s, &id, NOVA_BLOB_TREE, visited, ops, payload);
        if (rc != 0)
            continue; /* 1: skipped; negative: the loop ends */
        rc = read_tree(reader, &id, &buf, &tree, ops, payload);
        if (rc < 0 || !tree)
            continue;
        if (stats)
            stats->trees_read++;
        rc = visit_entries(s, tree, &stack, visited, ops, payload, stats);
        nova_tree_free(tree);
    }
    free(stack.ids);
    nova_buf_free(&buf);
    return rc < 0 ? rc : 0;
}
