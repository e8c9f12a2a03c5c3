/*
 * repository.c -- the public repository handle: init, open, close, key slots.
 */
#include "api/handle.h"

#include "common/err.h"
#include "nova/config.h"
#include "repo/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned default_threads(const nova_repository_options *options)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (options && options->threads)
        return options->threads;
    return cores > 0 ? (unsigned)cores : 1;
}

/* The config's storage.connections, else 2 for a local directory (one pack is
 * written while the next is fsynced) and 8 for a cloud, where each request mostly waits
 * on the network. */
static unsigned connections(const nova_repository_options *options, const char *location)
{
    if (options && options->config && options->config->storage.connections > 0)
        return (unsigned)options->config->storage.connections;
    return nova_location_is_local(location) ? 2 : 8;
}

static int handle_new(nova_repository **out, nova_repo *repo, const char *location,
                      const nova_repository_options *options)
{
    nova_repository *h = calloc(1, sizeof(*h));
    *out = NULL;
    if (!h || !(h->location = strdup(location))) {
        free(h);
        nova_repo_free(repo);
        return nova_fail(NOVA_ENOMEM, "unable to allocate a repository handle");
    }
    h->repo = repo;
    h->threads = default_threads(options);
    h->connections = connections(options, location);
    pthread_mutex_init(&h->index_lock, NULL);
    *out = h;
    return 0;
}

static int check_options(const nova_repository_options *options)
{
    if (options && options->version != NOVA_REPOSITORY_OPTIONS_VERSION)
        return nova_fail(NOVA_EINVALID, "repository options of version %u (want %u)",
                         options->version, NOVA_REPOSITORY_OPTIONS_VERSION);
    return 0;
}

int nova_repository_init(nova_repository **out, const char *location, const char *passphrase,
                         const nova_repository_options *options)
{
    nova_repo_init_options init;
    nova_storage *storage = NULL;
    nova_repo *repo = NULL;

    *out = NULL;
    NOVA_TRY(check_options(options));
    nova_repo_init_options_default(&init);
    if (options && options->compression &&
        nova_codec_spec_parse(&init.codec, options->compression) < 0)
        return nova_fail(NOVA_EINVALID, "compression '%s': use zstd[:1-19], lzma[:0-9], lz4 "
                         "or none", options->compression);
    if (options && options->kdf_log2_n)
        init.kdf.log2_n = (uint8_t)options->kdf_log2_n;
    NOVA_TRY(nova_location_open_storage(&storage, location, options ? options->config : NULL, 1));
    NOVA_TRY(nova_repo_init(&repo, storage, passphrase, strlen(passphrase), &init));
    return handle_new(out, repo, location, options);
}

int nova_repository_open(nova_repository **out, const char *location, const char *passphrase,
                         const nova_repository_options *options)
{
    nova_storage *storage = NULL;
    nova_repo *repo = NULL;
    int rc;

    *out = NULL;
    NOVA_TRY(check_options(options));
    rc = nova_location_open_storage(&storage, location, options ? options->config : NULL, 0);
    /* a missing local directory, or a missing bucket or container, is "no repository";
     * an unreachable or refusing cloud endpoint stays BACKUP_001 */
    if ((rc == NOVA_EBACKEND && nova_location_is_local(location)) || rc == NOVA_ENOTFOUND)
        return nova_fail(NOVA_ENO_REPO, "no repository at '%s'", location);
    if (rc < 0)
        return rc;
    rc = nova_repo_open(&repo, storage, passphrase, strlen(passphrase));
    if (rc == NOVA_ENO_REPO)
        return nova_fail(NOVA_ENO_REPO, "no repository at '%s'", location);
    if (rc < 0)
        return rc;
    return handle_new(out, repo, location, options);
}

void nova_repository_close(nova_repository *h)
{
    if (!h)
        return;
    nova_chunk_index_free(h->index);
    nova_repo_free(h->repo);
    pthread_mutex_destroy(&h->index_lock);
    free(h->location);
    free(h);
}

void nova_repository_id(const nova_repository *h, char out[65])
{
    nova_hex_encode(out, h->repo->config.repo_id, NOVA_REPO_ID_LEN);
}

int nova_repository_chunk_index(nova_repository *h, nova_chunk_index **out)
{
    int rc = 0;
    pthread_mutex_lock(&h->index_lock);
    if (!h->index)
        rc = nova_repo_load_index(h->repo, &h->index);
    *out = h->index;
    pthread_mutex_unlock(&h->index_lock);
    return rc;
}

void nova_repository_forget_index(nova_repository *h)
{
    pthread_mutex_lock(&h->index_lock);
    nova_chunk_index_free(h->index);
    h->index = NULL;
    pthread_mutex_unlock(&h->index_lock);
}

int nova_key_add(nova_repository *h, const char *new_passphrase, char slot_id_out[65])
{
    char name[NOVA_KEYSLOT_NAME_SIZE];
    const nova_kdf_params params = NOVA_KDF_PARAMS_DEFAULT;
    NOVA_TRY(nova_keys_add(h->repo->storage, h->repo->config.repo_id, &h->repo->keys,
                           new_passphrase, strlen(new_passphrase), &params, name));
    if (slot_id_out)
        snprintf(slot_id_out, 65, "%s", name + strlen(NOVA_KEYSLOT_PREFIX));
    return 0;
}

int nova_key_remove(nova_repository *h, const char *slot_id)
{
    char name[NOVA_KEYSLOT_NAME_SIZE];
    if (strlen(slot_id) != NOVA_ID_HEX_LEN)
        return nova_fail(NOVA_EINVALID, "key slot id '%s' is not 64 hex digits", slot_id);
    snprintf(name, sizeof(name), "%s%s", NOVA_KEYSLOT_PREFIX, slot_id);
    return nova_keys_remove(h->repo->storage, h->repo->config.repo_id, name);
}

int nova_key_change_passphrase(nova_repository *h, const char *new_passphrase)
{
    char old[NOVA_KEYSLOT_NAME_SIZE];
    const nova_kdf_params params = NOVA_KDF_PARAMS_DEFAULT;

    memcpy(old, h->repo->key_slot, sizeof(old));
    /* the new slot first: at every moment some slot opens the repository */
    NOVA_TRY(nova_keys_add(h->repo->storage, h->repo->config.repo_id, &h->repo->keys,
                           new_passphrase, strlen(new_passphrase), &params, h->repo->key_slot));
    return nova_keys_remove(h->repo->storage, h->repo->config.repo_id, old);
}

int nova_key_list(nova_repository *h, nova_key_cb cb, void *payload)
{
    nova_keyslot_list list = {NULL, 0};
    int rc = nova_keys_list(&list, h->repo->storage);
    for (size_t i = 0; rc == 0 && i < list.count; i++)
        rc = cb(list.names[i] + strlen(NOVA_KEYSLOT_PREFIX),
                strcmp(list.names[i], h->repo->key_slot) == 0, payload);
    nova_keyslot_list_free(&list);
    return rc;
}
