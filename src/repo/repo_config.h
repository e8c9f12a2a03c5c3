/*
 * repo_config.h -- the repository config object "config" (private).
 *
 * The config is the one object stored in plaintext: it must be readable before a key is
 * open, and it holds nothing secret (an id, a time, chunker sizes, the codec and the pack
 * size). A SHA-256 over its bytes detects accidental damage; tampering by someone with
 * write access is caught later, because the key slots bind to the repository id and
 * every sealed object authenticates under the master keys. Layout in docs/FORMAT.md
 * "Repository config".
 */
#ifndef NOVA_REPO_REPO_CONFIG_H
#define NOVA_REPO_REPO_CONFIG_H

#include "common/buf.h"
#include "primitives/chunker.h"
#include "primitives/codec.h"
#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_REPO_ID_LEN 32
#define NOVA_REPO_CONFIG_VERSION 1
#define NOVA_REPO_CONFIG_LEN 104
#define NOVA_REPO_CONFIG_NAME "config"

/* Bounds on the pack target size (bytes). */
#define NOVA_PACK_TARGET_MIN (64u * 1024u)
#define NOVA_PACK_TARGET_MAX (1024u * 1024u * 1024u)
#define NOVA_PACK_TARGET_DEFAULT (16u * 1024u * 1024u)

typedef struct nova_repo_config {
    uint32_t version;                     /* NOVA_REPO_CONFIG_VERSION */
    uint8_t repo_id[NOVA_REPO_ID_LEN];    /* random, never changes */
    int64_t created_ns;                   /* creation time, ns since the Unix epoch, > 0 */
    nova_chunker_params chunker;          /* checked by nova_chunker_params_check */
    nova_codec_spec codec;                /* default compression for new data */
    uint64_t pack_target_size;            /* NOVA_PACK_TARGET_MIN..MAX */
} nova_repo_config;

/* Fills a config for a new repository: random id, the current time, default chunker
 * parameters, zstd:3 and NOVA_PACK_TARGET_DEFAULT. */
int nova_repo_config_init(nova_repo_config *out);

/* Checks every field; NOVA_EINVALID naming the field otherwise. */
int nova_repo_config_check(const nova_repo_config *config);

/* Encodes a checked config into exactly NOVA_REPO_CONFIG_LEN bytes (out reset first). */
int nova_repo_config_encode(nova_buf *out, const nova_repo_config *config);

/* Decodes and validates. Damaged, truncated or out-of-range input gives NOVA_ECORRUPT;
 * a version newer than this build gives NOVA_EVERSION. */
int nova_repo_config_decode(nova_repo_config *out, const void *data, size_t len);

/* Stores the config as "config" (NOVA_EEXISTS when the repository already has one). */
int nova_repo_config_write(nova_storage *storage, const nova_repo_config *config);
/* Reads and decodes "config"; a missing config is NOVA_ENO_REPO. */
int nova_repo_config_read(nova_repo_config *out, nova_storage *storage);

#endif
