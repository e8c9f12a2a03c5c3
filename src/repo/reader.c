/*
 * reader.c -- reads blobs by id: chunk index -> pack number -> ranged get -> open and
 * verify. The salt of each pack (from its trailer) is cached by pack number, so a pack's
 * tail is fetched once per reader.
 *
 * Trees come from a cache of whole tree packs (pack_cache.h): a walk costs two requests
 * per tree pack instead of one per directory. Each blob is still authenticated on its own, so
 * damage elsewhere in the cached pack does not stop its other trees from being read.
 */
#include "repo/repository.h"

#include "common/err.h"
#include "repo/pack_cache.h"

#include <stdlib.h>
#include <string.h>

typedef struct salt_slot {
    int known;
    uint8_t salt[NOVA_SALT_LEN];
} salt_slot;

struct nova_repo_reader {
    nova_repo *repo;
    const nova_chunk_index *index;
    nova_pack_reader *pack;
    salt_slot *salts; /* by pack number */
    size_t salt_count;
    nova_buf stored;
    nova_pack_cache trees;
};

int nova_repo_reader_new(nova_repo_reader **out, nova_repo *repo, const nova_chunk_index *index)
{
    nova_repo_reader *r = calloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    if (!r)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a blob reader");
    r->repo = repo;
    r->index = index;
    rc = nova_pack_reader_new(&r->pack, repo->keys.enc, repo->keys.id);
    if (rc < 0) {
        nova_repo_reader_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* Fetches the tail of a pack and parses its trailer to learn the salt. The header is
 * not needed to read a blob whose location the index gives. */
static int fetch_salt(nova_repo_reader *r, uint32_t pack, const char *name)
{
    nova_object_info info;
    nova_pack_trailer trailer;
    uint64_t start;

    NOVA_TRY(nova_storage_stat(r->repo->storage, name, &info));
    start = info.size > NOVA_PACK_TRAILER_LEN ? info.size - NOVA_PACK_TRAILER_LEN : 0;
    NOVA_TRY(nova_storage_get(r->repo->storage, name, start, (size_t)(info.size - start),
                              &r->stored));
    NOVA_TRY(nova_pack_trailer_parse(&trailer, info.size, r->stored.data, r->stored.len, name));
    memcpy(r->salts[pack].salt, trailer.salt, NOVA_SALT_LEN);
    r->salts[pack].known = 1;
    return 0;
}

/* Makes room for pack number `pack` in the salt cache. */
static int salt_for_number(nova_repo_reader *r, uint32_t pack)
{
    if (pack >= r->salt_count) {
        size_t count = nova_chunk_index_pack_count(r->index);
        salt_slot *grown;
        if (pack >= count)
            return nova_fail(NOVA_EINTERNAL, "pack number %u out of range", pack);
        grown = realloc(r->salts, count * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to grow the pack salt cache");
        memset(grown + r->salt_count, 0, (count - r->salt_count) * sizeof(*grown));
        r->salts = grown;
        r->salt_count = count;
    }
    return 0;
}

static int salt_for(nova_repo_reader *r, uint32_t pack, const char *name)
{
    NOVA_TRY(salt_for_number(r, pack));
    if (r->salts[pack].known)
        return 0;
    return fetch_salt(r, pack, name);
}

/* The stored bytes of the blob at loc and its pack's salt: a tree from the tree-pack
 * cache when its pack is small enough to hold, anything else with a ranged get. */
static int fetch_stored(nova_repo_reader *r, const nova_chunk_location *loc, const char *name,
                        const uint8_t **data, size_t *len, const uint8_t **salt)
{
    if (loc->type == NOVA_BLOB_TREE) {
        int held = nova_pack_cache_slice(&r->trees, r->repo->storage, loc->pack, name,
                                         loc->offset, loc->length, data, salt);
        if (held < 0)
            return held;
        if (held) {
            *len = loc->length;
            return 0;
        }
    }
    NOVA_TRY(salt_for(r, loc->pack, name));
    NOVA_TRY(nova_storage_get(r->repo->storage, name, loc->offset, loc->length, &r->stored));
    *data = r->stored.data;
    *len = r->stored.len;
    *salt = r->salts[loc->pack].salt;
    return 0;
}

int nova_repo_reader_read(nova_repo_reader *r, const nova_id *id, nova_buf *out)
{
    char name[NOVA_PACK_NAME_LEN + 1];
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_chunk_location loc;
    nova_pack_entry entry;
    const uint8_t *data = NULL, *salt = NULL;
    size_t len = 0;

    if (nova_chunk_index_lookup(r->index, id, &loc) != 1) {
        nova_id_to_hex(id, hex);
        return nova_fail(NOVA_ENOTFOUND, "blob '%s' is in no index", hex);
    }
    nova_pack_storage_name(name, nova_chunk_index_pack_id(r->index, loc.pack));
    NOVA_TRY(fetch_stored(r, &loc, name, &data, &len, &salt));
    entry.id = *id;
    entry.offset = loc.offset;
    entry.length = loc.length;
    entry.raw_length = loc.raw_length;
    entry.type = loc.type;
    return nova_pack_reader_open_blob(r->pack, out, salt, &entry, data, len, name);
}

void nova_repo_reader_free(nova_repo_reader *r)
{
    if (!r)
        return;
    nova_pack_reader_free(r->pack);
    free(r->salts);
    nova_buf_free(&r->stored);
    nova_pack_cache_clear(&r->trees);
    free(r);
}
