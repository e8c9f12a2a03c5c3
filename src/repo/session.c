/*
 * session.c -- a write session: blobs are deduplicated, packed, and uploaded pack by pack;
 * commit uploads the last pack and then the index delta that names every pack of the
 * session. Packs are named by the SHA-256 of their bytes, so uploading a pack that
 * already exists (NOVA_EEXISTS) means identical bytes are stored: success.
 */
#include "repo/repository.h"

#include "common/err.h"
#include "repo/index.h"

#include <stdlib.h>
#include <string.h>

struct nova_repo_session {
    nova_repo *repo;
    nova_chunk_index *known;   /* borrowed; may be NULL */
    nova_chunk_index *pending; /* blobs of the pack being filled */
    uint32_t pending_pack;     /* placeholder pack number inside `pending` */
    nova_pack_writer *pack;
    nova_index_writer *index;
    nova_hmac *hmac;
    nova_buf bytes;
    nova_repo_session_stats stats;
};

static int reset_pending(nova_repo_session *s)
{
    static const nova_id placeholder = {{0}};
    nova_chunk_index_free(s->pending);
    s->pending = NULL;
    NOVA_TRY(nova_chunk_index_new(&s->pending));
    return nova_chunk_index_add_pack(s->pending, &s->pending_pack, &placeholder) < 0 ? NOVA_ENOMEM
                                                                                     : 0;
}

int nova_repo_session_new(nova_repo_session **out, nova_repo *repo, nova_chunk_index *known)
{
    nova_repo_session *s = calloc(1, sizeof(*s));
    int rc;

    *out = NULL;
    if (!s)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a write session");
    s->repo = repo;
    s->known = known;
    rc = reset_pending(s);
    if (rc == 0)
        rc = nova_pack_writer_new(&s->pack, repo->keys.enc, &repo->config.codec);
    if (rc == 0)
        rc = nova_index_writer_new(&s->index);
    if (rc == 0)
        rc = nova_hmac_new(&s->hmac, repo->keys.id, sizeof(repo->keys.id));
    if (rc < 0) {
        nova_repo_session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Records the entries of an uploaded pack in `known`. */
static int publish_entries(nova_repo_session *s, const nova_id *pack_id,
                           const nova_pack_entry *entries, size_t count)
{
    uint32_t pack;
    if (!s->known)
        return 0;
    int rc = nova_chunk_index_add_pack(s->known, &pack, pack_id);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < count; i++) {
        nova_chunk_location loc = {pack, entries[i].offset, entries[i].length,
                                   entries[i].raw_length, entries[i].type};
        NOVA_TRY(nova_chunk_index_insert(s->known, &entries[i].id, &loc));
    }
    return 0;
}

static int flush_pack(nova_repo_session *s)
{
    char name[NOVA_PACK_NAME_LEN + 1];
    const nova_pack_entry *entries;
    size_t count;
    nova_id pack_id;
    int rc;

    if (nova_pack_writer_count(s->pack) == 0)
        return 0;
    NOVA_TRY(nova_pack_writer_finish(s->pack, &s->bytes, &pack_id));
    nova_pack_storage_name(name, &pack_id);
    rc = nova_storage_put(s->repo->storage, name, s->bytes.data, s->bytes.len);
    if (rc < 0 && rc != NOVA_EEXISTS)
        return rc;
    if (rc == 0)
        s->stats.stored_bytes_added += s->bytes.len;
    s->stats.packs_written++;
    entries = nova_pack_writer_entries(s->pack, &count);
    NOVA_TRY(nova_index_writer_add_pack(s->index, &pack_id, entries, count));
    NOVA_TRY(publish_entries(s, &pack_id, entries, count));
    NOVA_TRY(nova_pack_writer_reset(s->pack));
    return reset_pending(s);
}

int nova_repo_session_add(nova_repo_session *s, nova_blob_type type, const void *data, size_t len,
                          nova_id *id)
{
    nova_chunk_location loc = {s->pending_pack, 0, 0, 0, (uint8_t)type};

    NOVA_TRY(nova_hmac_compute(s->hmac, id, data, len));
    if ((s->known && nova_chunk_index_lookup(s->known, id, NULL) == 1) ||
        nova_chunk_index_lookup(s->pending, id, NULL) == 1) {
        s->stats.blobs_deduplicated++;
        return 0;
    }
    NOVA_TRY(nova_pack_writer_add(s->pack, type, id, data, len));
    loc.raw_length = (uint32_t)len;
    NOVA_TRY(nova_chunk_index_insert(s->pending, id, &loc));
    s->stats.blobs_added++;
    s->stats.raw_bytes_added += len;
    if (nova_pack_writer_size(s->pack) >= s->repo->config.pack_target_size)
        return flush_pack(s);
    return 0;
}

int nova_repo_session_commit(nova_repo_session *s)
{
    char name[NOVA_INDEX_NAME_LEN + 1];
    nova_id index_id;
    int rc;

    NOVA_TRY(flush_pack(s));
    if (nova_index_writer_pack_count(s->index) == 0)
        return 0;
    NOVA_TRY(nova_index_writer_finish(s->index, &s->bytes, &index_id, s->repo->keys.enc,
                                      &s->repo->config.codec));
    nova_index_storage_name(name, &index_id);
    rc = nova_storage_put(s->repo->storage, name, s->bytes.data, s->bytes.len);
    if (rc < 0 && rc != NOVA_EEXISTS)
        return rc;
    if (rc == 0)
        s->stats.stored_bytes_added += s->bytes.len;
    return 0;
}

const nova_repo_session_stats *nova_repo_session_stats_get(const nova_repo_session *s)
{
    return &s->stats;
}

void nova_repo_session_free(nova_repo_session *s)
{
    if (!s)
        return;
    nova_chunk_index_free(s->pending);
    nova_pack_writer_free(s->pack);
    nova_index_writer_free(s->index);
    nova_hmac_free(s->hmac);
    nova_buf_free(&s->bytes);
    free(s);
}
