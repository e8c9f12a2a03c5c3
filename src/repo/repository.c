/*
 * repository.c -- opening and creating a repository, loading its indexes, listing its
 * snapshots.
 *
 * Init writes the first key slot before the config: the config is the commit point of
 * init, so a crash in between leaves storage that is still "not a repository" (a stray
 * slot bound to a repository id that never came to be, ignored by every later open).
 */
#include "repo/repository.h"

#include "common/err.h"
#include "repo/index.h"
#include "repo/snapshot.h"

#include <stdlib.h>
#include <string.h>

void nova_repo_init_options_default(nova_repo_init_options *options)
{
    nova_repo_config defaults;
    const nova_kdf_params kdf = NOVA_KDF_PARAMS_DEFAULT;

    memset(options, 0, sizeof(*options));
    if (nova_repo_config_init(&defaults) == 0) {
        options->chunker = defaults.chunker;
        options->codec = defaults.codec;
        options->pack_target_size = defaults.pack_target_size;
    }
    options->kdf = kdf;
}

static int repo_new(nova_repo **out, nova_storage *storage)
{
    nova_repo *repo = calloc(1, sizeof(*repo));
    *out = NULL;
    if (!repo) {
        nova_storage_free(storage);
        return nova_fail(NOVA_ENOMEM, "unable to allocate a repository handle");
    }
    repo->storage = storage;
    *out = repo;
    return 0;
}

static int repo_finish_open(nova_repo *repo)
{
    return nova_chunker_init(&repo->chunker, &repo->config.chunker, repo->keys.chunker);
}

int nova_repo_init(nova_repo **out, nova_storage *storage, const char *passphrase,
                   size_t passphrase_len, const nova_repo_init_options *options)
{
    nova_repo *repo = NULL;
    nova_repo_config existing;
    int rc;

    *out = NULL;
    NOVA_TRY(repo_new(&repo, storage));
    rc = nova_repo_config_read(&existing, storage);
    if (rc == 0) {
        rc = nova_fail(NOVA_EEXISTS, "the storage already holds a repository");
        goto out;
    }
    if (rc != NOVA_ENO_REPO)
        goto out;
    rc = nova_repo_config_init(&repo->config);
    if (rc < 0)
        goto out;
    repo->config.chunker = options->chunker;
    repo->config.codec = options->codec;
    repo->config.pack_target_size = options->pack_target_size;
    rc = nova_repo_config_check(&repo->config);
    if (rc < 0)
        goto out;
    rc = nova_master_keys_generate(&repo->keys);
    if (rc < 0)
        goto out;
    rc = nova_keys_add(storage, repo->config.repo_id, &repo->keys, passphrase, passphrase_len,
                       &options->kdf, repo->key_slot);
    if (rc < 0)
        goto out;
    rc = nova_repo_config_write(storage, &repo->config);
    if (rc < 0)
        goto out;
    rc = repo_finish_open(repo);
out:
    if (rc < 0) {
        nova_repo_free(repo);
        return rc;
    }
    *out = repo;
    return 0;
}

int nova_repo_open(nova_repo **out, nova_storage *storage, const char *passphrase,
                   size_t passphrase_len)
{
    nova_repo *repo = NULL;
    int rc;

    *out = NULL;
    NOVA_TRY(repo_new(&repo, storage));
    rc = nova_repo_config_read(&repo->config, storage);
    if (rc == 0)
        rc = nova_keys_open(&repo->keys, storage, repo->config.repo_id, passphrase,
                            passphrase_len, repo->key_slot);
    if (rc == 0)
        rc = repo_finish_open(repo);
    if (rc < 0) {
        nova_repo_free(repo);
        return rc;
    }
    *out = repo;
    return 0;
}

void nova_repo_free(nova_repo *repo)
{
    if (!repo)
        return;
    nova_storage_free(repo->storage);
    nova_master_keys_wipe(&repo->keys);
    nova_wipe(&repo->chunker, sizeof(repo->chunker));
    free(repo);
}

int nova_repo_chunk_id(const nova_repo *repo, nova_id *out, const void *data, size_t len)
{
    return nova_hmac_sha256(out, repo->keys.id, sizeof(repo->keys.id), data, len);
}

/* Index loading: list "index/", fetch each, open it, merge it. */
typedef struct load_ctx {
    nova_repo *repo;
    nova_chunk_index *index;
    nova_buf bytes;
} load_ctx;

static int load_one_index(const char *name, uint64_t size, void *payload)
{
    load_ctx *ctx = payload;
    nova_index file = NOVA_INDEX_INIT;
    int rc;

    (void)size;
    rc = nova_storage_get(ctx->repo->storage, name, 0, NOVA_STORAGE_WHOLE, &ctx->bytes);
    if (rc == 0)
        rc = nova_index_open(&file, ctx->repo->keys.enc, ctx->bytes.data, ctx->bytes.len, name);
    if (rc == 0)
        rc = nova_chunk_index_add_index(ctx->index, &file, NULL);
    nova_index_free(&file);
    return rc;
}

int nova_repo_load_index(nova_repo *repo, nova_chunk_index **out)
{
    load_ctx ctx = {repo, NULL, NOVA_BUF_INIT};
    int rc;

    *out = NULL;
    NOVA_TRY(nova_chunk_index_new(&ctx.index));
    rc = nova_storage_list(repo->storage, "index/", load_one_index, &ctx);
    nova_buf_free(&ctx.bytes);
    if (rc < 0) {
        nova_chunk_index_free(ctx.index);
        return rc;
    }
    *out = ctx.index;
    return 0;
}

typedef struct list_ctx {
    nova_repo_snapshot_cb cb;
    void *payload;
} list_ctx;

static int list_one_snapshot(const char *name, uint64_t size, void *payload)
{
    const list_ctx *ctx = payload;
    nova_id id;

    (void)size;
    if (nova_id_from_hex(&id, name + strlen(NOVA_SNAPSHOT_PREFIX)) < 0)
        return nova_fail(NOVA_ECORRUPT, "unexpected object '%s' among the snapshots", name);
    return ctx->cb(&id, ctx->payload);
}

int nova_repo_list_snapshots(nova_repo *repo, nova_repo_snapshot_cb cb, void *payload)
{
    list_ctx ctx = {cb, payload};
    return nova_storage_list(repo->storage, NOVA_SNAPSHOT_PREFIX, list_one_snapshot, &ctx);
}
