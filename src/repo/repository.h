/*
 * repository.h -- an open repository: its storage, config, master keys and chunker,
 * plus the two ways to touch its data: a write session (blobs -> packs -> index delta)
 * and a blob reader (id -> pack range -> verified plaintext) (private).
 *
 * Commit order of a write session: packs first, then the index delta that names them;
 * the snapshot that references the blobs is written by the caller after
 * nova_repo_session_commit returns. A crash at any point leaves at worst packs that no
 * index names, or an index no snapshot uses: never a snapshot with missing data.
 */
#ifndef NOVA_REPO_REPOSITORY_H
#define NOVA_REPO_REPOSITORY_H

#include "common/buf.h"
#include "primitives/chunker.h"
#include "primitives/crypto.h"
#include "repo/chunk_index.h"
#include "repo/keys.h"
#include "repo/pack.h"
#include "repo/repo_config.h"
#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

typedef struct nova_repo {
    nova_storage *storage; /* owned */
    nova_repo_config config;
    nova_master_keys keys;
    nova_chunker chunker;
    char key_slot[NOVA_KEYSLOT_NAME_SIZE]; /* the slot that opened it ("keys/<hex>") */
} nova_repo;

typedef struct nova_repo_init_options {
    nova_chunker_params chunker;
    nova_codec_spec codec;
    uint64_t pack_target_size;
    nova_kdf_params kdf;
} nova_repo_init_options;

/* Fills options with the defaults of nova_repo_config_init and NOVA_KDF_PARAMS_DEFAULT. */
void nova_repo_init_options_default(nova_repo_init_options *options);

/* Creates a repository in empty storage and opens it. Takes ownership of storage in every
 * case. A storage that already holds a repository config gives NOVA_EEXISTS. */
int nova_repo_init(nova_repo **out, nova_storage *storage, const char *passphrase,
                   size_t passphrase_len, const nova_repo_init_options *options);
/* Opens an existing repository; takes ownership of storage in every case. No config:
 * NOVA_ENO_REPO; no slot opens with the passphrase: NOVA_EPASSWORD. */
int nova_repo_open(nova_repo **out, nova_storage *storage, const char *passphrase,
                   size_t passphrase_len);
void nova_repo_free(nova_repo *repo);

/* Computes a chunk id: HMAC-SHA-256 under the id key. */
int nova_repo_chunk_id(const nova_repo *repo, nova_id *out, const void *data, size_t len);

/* Reads every index file into a new chunk index. */
int nova_repo_load_index(nova_repo *repo, nova_chunk_index **out);

/* Calls cb for every snapshot id in the repository (no order). */
typedef int (*nova_repo_snapshot_cb)(const nova_id *id, void *payload);
int nova_repo_list_snapshots(nova_repo *repo, nova_repo_snapshot_cb cb, void *payload);

/* A write session: deduplicates blobs against `known` (may be NULL), packs them and
 * uploads full packs. Not thread-safe; one per writer thread. */
typedef struct nova_repo_session nova_repo_session;

typedef struct nova_repo_session_stats {
    uint64_t blobs_added;
    uint64_t blobs_deduplicated;
    uint64_t raw_bytes_added;    /* plaintext bytes of new blobs */
    uint64_t stored_bytes_added; /* bytes of the packs and index written */
    uint64_t packs_written;
} nova_repo_session_stats;

int nova_repo_session_new(nova_repo_session **out, nova_repo *repo, nova_chunk_index *known);
/* Adds a blob unless `known` or this session already has it; *id receives its id. */
int nova_repo_session_add(nova_repo_session *session, nova_blob_type type, const void *data,
                          size_t len, nova_id *id);
/* Uploads the last pack and the index delta. After it, every added blob is durable and
 * (when `known` was given) present in `known`. */
int nova_repo_session_commit(nova_repo_session *session);
const nova_repo_session_stats *nova_repo_session_stats_get(const nova_repo_session *session);
void nova_repo_session_free(nova_repo_session *session);

/* Reads blobs by id, verifying the pack's blob authentication and the plaintext's id.
 * Caches pack salts. Not thread-safe; one per reader thread. */
typedef struct nova_repo_reader nova_repo_reader;
int nova_repo_reader_new(nova_repo_reader **out, nova_repo *repo, const nova_chunk_index *index);
int nova_repo_reader_read(nova_repo_reader *reader, const nova_id *id, nova_buf *out);
void nova_repo_reader_free(nova_repo_reader *reader);

#endif
