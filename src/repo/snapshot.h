/*
 * snapshot.h -- snapshot objects "snapshots/<id>" (private).
 *
 * A snapshot is the commit point of a backup: it names the tree root of a complete
 * manifest and records how the backup was made. Its payload (binary, documented in
 * docs/FORMAT.md "Snapshot objects") is sealed in an envelope with magic "NVSN"; the
 * snapshot id, which is also the backup id users see, is the SHA-256 of the sealed
 * bytes, so it is not stored inside the object and anyone can verify it without a key.
 */
#ifndef NOVA_REPO_SNAPSHOT_H
#define NOVA_REPO_SNAPSHOT_H

#include "common/buf.h"
#include "primitives/codec.h"
#include "primitives/crypto.h"
#include "primitives/hash.h"
#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_SNAPSHOT_MAGIC "NVSN"
#define NOVA_SNAPSHOT_VERSION 1
#define NOVA_SNAPSHOT_PREFIX "snapshots/"
/* "snapshots/" + 64 hex digits + NUL */
#define NOVA_SNAPSHOT_NAME_SIZE (sizeof(NOVA_SNAPSHOT_PREFIX) - 1 + NOVA_ID_HEX_LEN + 1)

/* Limits the decoder enforces (and the encoder refuses to exceed). */
#define NOVA_SNAPSHOT_HOST_MAX 255
#define NOVA_SNAPSHOT_USERNAME_MAX 255
#define NOVA_SNAPSHOT_TAG_KEY_MAX 128
#define NOVA_SNAPSHOT_TAG_VALUE_MAX 1024
#define NOVA_SNAPSHOT_TAGS_MAX 256
#define NOVA_SNAPSHOT_PATH_MAX 4096
#define NOVA_SNAPSHOT_PATHS_MAX 65536

/* Wire values are the enum values. */
typedef enum nova_snapshot_strategy {
    NOVA_SNAPSHOT_FULL = 0,
    NOVA_SNAPSHOT_INCREMENTAL = 1,
    NOVA_SNAPSHOT_DIFFERENTIAL = 2,
} nova_snapshot_strategy;

typedef enum nova_snapshot_status {
    NOVA_SNAPSHOT_COMPLETED = 0,
    NOVA_SNAPSHOT_PARTIAL = 1,
    NOVA_SNAPSHOT_FAILED = 2,
} nova_snapshot_status;

typedef struct nova_snapshot_stats {
    uint64_t files_new;
    uint64_t files_changed;
    uint64_t files_unchanged;
    uint64_t bytes_read;      /* bytes read from the source */
    uint64_t original_size;   /* total size of the files in the snapshot */
    uint64_t compressed_size; /* their size after compression */
    uint64_t bytes_added;     /* bytes added to the repository (packs) */
    uint64_t errors;          /* files or directories that could not be read */
} nova_snapshot_stats;

typedef struct nova_snapshot_tag {
    char *key;   /* 1..NOVA_SNAPSHOT_TAG_KEY_MAX bytes, no '=' and no NUL */
    char *value; /* 0..NOVA_SNAPSHOT_TAG_VALUE_MAX bytes, no NUL */
} nova_snapshot_tag;

typedef struct nova_snapshot {
    nova_snapshot_strategy strategy;
    nova_snapshot_status status;
    int has_parent;       /* a FULL snapshot has no parent */
    nova_id parent;       /* all zero when has_parent is 0 */
    nova_id tree;         /* root of the tree manifest */
    int64_t start_ns;     /* ns since the Unix epoch, >= 0 */
    int64_t end_ns;       /* >= start_ns */
    char *host;           /* never NULL after new/decode; "" when unknown */
    char *username;       /* never NULL after new/decode */
    nova_snapshot_tag *tags;
    size_t tag_count;
    char **paths;         /* 1..NOVA_SNAPSHOT_PATH_MAX bytes each, no NUL */
    size_t path_count;
    nova_snapshot_stats stats;
} nova_snapshot;

/* An empty FULL, COMPLETED snapshot with empty host and username. */
int nova_snapshot_new(nova_snapshot **out);
void nova_snapshot_free(nova_snapshot *snapshot);

/* Setters copy their arguments; they check limits (NOVA_EINVALID). */
int nova_snapshot_set_host(nova_snapshot *snapshot, const char *host);
int nova_snapshot_set_username(nova_snapshot *snapshot, const char *username);
int nova_snapshot_add_tag(nova_snapshot *snapshot, const char *key, const char *value);
int nova_snapshot_add_path(nova_snapshot *snapshot, const char *path);

/* Checks every field and limit; NOVA_EINVALID naming the field otherwise. */
int nova_snapshot_check(const nova_snapshot *snapshot);

/* The plaintext payload (out reset first). */
int nova_snapshot_encode(nova_buf *out, const nova_snapshot *snapshot);
/* Decodes and validates a payload: malformed, truncated or out-of-range input gives
 * NOVA_ECORRUPT, a newer payload version NOVA_EVERSION. `what` names the object. */
int nova_snapshot_decode(nova_snapshot **out, const void *data, size_t len, const char *what);

/* Encodes and seals; id_out (may be NULL) receives the snapshot id. */
int nova_snapshot_seal(nova_buf *out, nova_id *id_out, const nova_snapshot *snapshot,
                       const uint8_t master_enc_key[NOVA_KEY_LEN], const nova_codec_spec *codec);
/* Opens a sealed snapshot. When expected_id is not NULL the bytes must hash to it
 * (NOVA_ECORRUPT otherwise), before any decryption. */
int nova_snapshot_open(nova_snapshot **out, const void *sealed, size_t sealed_len,
                       const uint8_t master_enc_key[NOVA_KEY_LEN], const nova_id *expected_id);

/* "snapshots/<hex id>". */
void nova_snapshot_name(char out[NOVA_SNAPSHOT_NAME_SIZE], const nova_id *id);

/* Seals and stores a snapshot; id_out (may be NULL) receives its id. */
int nova_snapshot_write(nova_storage *storage, nova_id *id_out, const nova_snapshot *snapshot,
                        const uint8_t master_enc_key[NOVA_KEY_LEN], const nova_codec_spec *codec);
/* Reads, verifies and opens "snapshots/<id>"; a missing one is NOVA_EBACKUP_NOT_FOUND. */
int nova_snapshot_read(nova_snapshot **out, nova_storage *storage, const nova_id *id,
                       const uint8_t master_enc_key[NOVA_KEY_LEN]);

#endif
