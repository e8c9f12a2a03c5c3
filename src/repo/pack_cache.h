/*
 * pack_cache.h -- a few whole packs held in memory, for readers of trees (private).
 *
 * Walks (restore, ls, diff, check, the parent of an incremental backup) read the trees
 * of a pack one after another, and a backup writes its trees together into their own
 * packs. Fetching such a pack whole, once, costs two requests (a stat, a get) where
 * ranged reads cost one per tree: on a cloud, milliseconds instead of seconds. After
 * incremental backups a walk alternates between the tree packs of several backups, so
 * the cache keeps the last NOVA_PACK_CACHE_SLOTS packs it fetched (least recently used
 * goes first). Packs above NOVA_PACK_CACHE_WHOLE_MAX (repacked ones that mix trees and
 * data) are not fetched whole: the caller reads those by range, as before.
 * Memory: at most NOVA_PACK_CACHE_SLOTS x NOVA_PACK_CACHE_WHOLE_MAX.
 * Blobs are not verified here: the caller opens (authenticates) each one.
 * Not thread-safe: one cache per reading thread.
 */
#ifndef NOVA_REPO_PACK_CACHE_H
#define NOVA_REPO_PACK_CACHE_H

#include "common/buf.h"
#include "repo/pack.h"
#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_PACK_CACHE_SLOTS 4
#define NOVA_PACK_CACHE_WHOLE_MAX (4u * 1024u * 1024u)
/* packs found too large to hold, remembered so that they are not stat'ed again */
#define NOVA_PACK_CACHE_LARGE_MEMORY 16

typedef struct nova_pack_cache_slot {
    nova_buf bytes;    /* the whole pack */
    uint32_t pack;     /* its number in the chunk index */
    int valid;
    uint64_t last_use; /* the cache's clock at the last slice */
    uint8_t salt[NOVA_SALT_LEN]; /* from its trailer */
} nova_pack_cache_slot;

typedef struct nova_pack_cache {
    nova_pack_cache_slot slots[NOVA_PACK_CACHE_SLOTS];
    uint64_t clock;
    uint32_t large[NOVA_PACK_CACHE_LARGE_MEMORY]; /* a ring of pack numbers */
    size_t large_count, large_next;
} nova_pack_cache;

#define NOVA_PACK_CACHE_INIT {{{NOVA_BUF_INIT, 0, 0, 0, {0}}}, 0, {0}, 0, 0}

/* Points *stored at the `length` stored bytes at `offset` of pack number `pack` (named
 * `name` in storage) and *salt at the pack's salt, fetching the whole pack unless it is
 * cached. Returns 1 then; both pointers stay valid until the next call. Returns 0 (and
 * fetches nothing more) when the pack is too large to hold whole: read it by range.
 * NOVA_ECORRUPT when the pack is shorter than the range or its trailer is malformed;
 * storage errors as they come. */
int nova_pack_cache_slice(nova_pack_cache *cache, nova_storage *storage, uint32_t pack,
                          const char *name, uint32_t offset, uint32_t length,
                          const uint8_t **stored, const uint8_t **salt);
/* Frees the packs held (the cache stays usable). */
void nova_pack_cache_clear(nova_pack_cache *cache);

#endif
