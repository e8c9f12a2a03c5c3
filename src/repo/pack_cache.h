/*
 * pack_cache.h -- one whole pack held in memory, for readers of trees (private).
 *
 * Walks (restore, ls, diff, check, the parent of an incremental backup) read the trees
 * of a pack one after another, and a backup writes its trees together into their own
 * packs. Fetching such a pack whole, once, costs one request where ranged reads cost one
 * per tree (plus a stat and a trailer read): on a cloud, milliseconds instead of
 * seconds. The cache holds one pack; asking for another replaces it.
 * Blobs are not verified here: the caller opens (authenticates) each one.
 * Not thread-safe: one cache per reading thread.
 */
#ifndef NOVA_REPO_PACK_CACHE_H
#define NOVA_REPO_PACK_CACHE_H

#include "common/buf.h"
#include "repo/pack.h"
#include "storage/storage.h"

#include <stdint.h>

typedef struct nova_pack_cache {
    nova_buf bytes; /* the whole pack */
    uint32_t pack;  /* its number in the chunk index */
    int valid;
    uint8_t salt[NOVA_SALT_LEN]; /* from its trailer */
} nova_pack_cache;

#define NOVA_PACK_CACHE_INIT {NOVA_BUF_INIT, 0, 0, {0}}

/* Points *stored at the `length` stored bytes at `offset` of pack number `pack` (named
 * `name` in storage), fetching the whole pack first unless it is the cached one. The
 * pointer and cache->salt stay valid until the next call. NOVA_ECORRUPT when the pack
 * is shorter than the range or its trailer is malformed; storage errors as they come. */
int nova_pack_cache_slice(nova_pack_cache *cache, nova_storage *storage, uint32_t pack,
                          const char *name, uint32_t offset, uint32_t length,
                          const uint8_t **stored);
void nova_pack_cache_clear(nova_pack_cache *cache);

#endif
