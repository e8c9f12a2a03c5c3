/*
 * chunk_index.h -- the in-memory chunk index: chunk id -> where the blob lives (private).
 *
 * Built from the repository's index files (nova_chunk_index_add_index) and extended as a
 * backup writes packs; the backup asks it whether a chunk is already stored, restore and
 * check ask it where a chunk lives.
 *
 * Layout (implementation notes in chunk_index.c):
 *   - entries (id, pack number, offset, length, raw length, type) are 48 bytes each,
 *     appended to fixed-size segments, so growth never copies them and the only slack
 *     is the unused tail of the last segment;
 *   - a hash table of 64-byte buckets (12 one-byte tags + 12 entry numbers) finds them;
 *     the bucket is chosen by the id's first 8 bytes (ids are uniformly random HMAC
 *     outputs, so no further hashing is needed), the tag is the id's 9th byte, so a miss
 *     usually reads one cache line and a hit two. Load stays <= 3/4; growing rehashes the
 *     table of entry numbers only;
 *   - pack ids (32 bytes) live once in a pack table with its own small hash map, and
 *     entries refer to them by a 32-bit pack number.
 * Memory: 48 bytes per entry + 64/12/load bytes of table (7.1 .. 14.2, load 3/8 .. 3/4)
 * + the last segment's unused tail (< 768 KiB) + the pack table. Measured with
 * 1,000,000 random ids: about 57 bytes per chunk; for 100,000 or more chunks it stays
 * below 64 bytes per chunk (tests/unit/repo/test_chunk_index.c checks it).
 *
 * Thread safety: lookups, counts, iteration and pack-id queries may run concurrently on
 * several threads as long as no thread inserts or adds packs at the same time; writers
 * need exclusive access (a rwlock around the index is the caller's).
 * A trusted index is assumed: ids come from authenticated index files or from our own
 * HMAC, so nobody without the keys can choose ids that collide in the table.
 */
#ifndef NOVA_REPO_CHUNK_INDEX_H
#define NOVA_REPO_CHUNK_INDEX_H

#include "primitives/hash.h"
#include "repo/index.h"

#include <stddef.h>
#include <stdint.h>

typedef struct nova_chunk_index nova_chunk_index;

typedef struct nova_chunk_location {
    uint32_t pack;       /* number in the pack table (nova_chunk_index_pack_id) */
    uint32_t offset;     /* of the blob in its pack */
    uint32_t length;     /* stored bytes */
    uint32_t raw_length; /* plaintext bytes, <= NOVA_CODEC_MAX_RAW */
    uint8_t type;        /* nova_blob_type */
} nova_chunk_location;

int nova_chunk_index_new(nova_chunk_index **out);
void nova_chunk_index_free(nova_chunk_index *index);

/* Sizes the table for chunk_count chunks in all, so loading that many does not rehash. */
int nova_chunk_index_reserve(nova_chunk_index *index, size_t chunk_count);

/* Gives the pack its number, adding it when new. Returns 1 when added, 0 when known. */
int nova_chunk_index_add_pack(nova_chunk_index *index, uint32_t *pack, const nova_id *pack_id);
/* 1 and *pack set when the pack is known, else 0. */
int nova_chunk_index_find_pack(const nova_chunk_index *index, uint32_t *pack,
                               const nova_id *pack_id);
/* The id of pack number `pack`, or NULL when there is no such number. */
const nova_id *nova_chunk_index_pack_id(const nova_chunk_index *index, uint32_t pack);
size_t nova_chunk_index_pack_count(const nova_chunk_index *index);

/*
 * Records where chunk `id` lives. Returns 1 when inserted, 0 when the id was already
 * present (the first location is kept: any copy serves), or a negative code:
 * NOVA_EINVALID for an unknown pack number, blob type or a raw length above
 * NOVA_CODEC_MAX_RAW.
 */
int nova_chunk_index_insert(nova_chunk_index *index, const nova_id *id,
                            const nova_chunk_location *location);

/* 1 when found (and *location filled when not NULL), 0 when absent. */
int nova_chunk_index_lookup(const nova_chunk_index *index, const nova_id *id,
                            nova_chunk_location *location);

size_t nova_chunk_index_count(const nova_chunk_index *index);
/* Bytes the index has allocated (tables, segments, pack table, the struct itself). */
size_t nova_chunk_index_memory_bytes(const nova_chunk_index *index);

/* Calls cb for every chunk in insertion order; a nonzero return stops the walk and is
 * returned. The index must not change during the walk. */
typedef int (*nova_chunk_index_cb)(const nova_id *id, const nova_chunk_location *location,
                                   void *payload);
int nova_chunk_index_foreach(const nova_chunk_index *index, nova_chunk_index_cb cb,
                             void *payload);

/* Adds every pack and entry of a decoded index file. *duplicates (when not NULL) gets
 * the number of chunk ids that were already present. */
int nova_chunk_index_add_index(nova_chunk_index *index, const nova_index *file,
                               size_t *duplicates);

#endif
