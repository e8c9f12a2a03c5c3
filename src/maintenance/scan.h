/*
 * scan.h -- what check and prune learn about a repository before they judge it
 * (private to maintenance).
 *
 * A scan lists the snapshots, loads every index file on its own (so one damaged file
 * is reported, not fatal), lists the packs, and arranges the chunk index's entries by
 * pack in offset order. Entry numbers (positions in `entries`) then address every
 * indexed blob, so "used" and "visited" are bitmaps of one bit per blob rather than
 * hash sets of ids.
 *
 * Invariants:
 *   - packs[p] describes chunk-index pack number p; its entries are
 *     entries[first .. first + count), sorted by offset, and they are exactly the chunk
 *     index's locations in pack p (a blob stored in two packs is indexed, and listed,
 *     under the first pack loaded; the other copy is invisible to readers);
 *   - entries[].id points into the chunk index, which never moves its entries;
 *   - unindexed[] holds the packs under data/ that no loaded index file names.
 *
 * Ordering for concurrent writers: snapshots are listed before index files and index
 * files before packs, so (with prune excluded by the lock) every listed snapshot finds
 * its index and every indexed pack is listed.
 */
#ifndef NOVA_MAINTENANCE_SCAN_H
#define NOVA_MAINTENANCE_SCAN_H

#include "repo/chunk_index.h"
#include "repo/index.h"
#include "repo/repository.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_MAINT_NO_ENTRY SIZE_MAX

typedef struct nova_maint_entry {
    const nova_id *id; /* borrowed from the chunk index */
    uint32_t offset;
    uint32_t length;
} nova_maint_entry;

typedef struct nova_maint_pack {
    uint64_t size; /* stored bytes from the listing; 0 when not listed */
    int listed;    /* the object exists under data/ */
    size_t first;  /* its entries: entries[first .. first + count) */
    size_t count;
} nova_maint_pack;

typedef struct nova_maint_index_file {
    char name[NOVA_INDEX_NAME_LEN + 1];
    uint64_t size;
    int loaded;      /* 0 when it could not be read */
    uint32_t *packs; /* chunk-index numbers of the packs it names */
    size_t pack_count;
} nova_maint_index_file;

typedef struct nova_maint_object {
    nova_id id;
    uint64_t size;
} nova_maint_object;

typedef struct nova_maint_scan {
    nova_repo *repo;
    nova_chunk_index *index;
    nova_maint_index_file *indexes;
    size_t index_count;
    nova_maint_pack *packs; /* by chunk-index pack number */
    size_t pack_count;
    nova_maint_entry *entries;
    size_t entry_count;
    nova_maint_object *unindexed; /* packs under data/ that no index names */
    size_t unindexed_count;
    nova_id *snapshots; /* sorted */
    size_t snapshot_count;
} nova_maint_scan;

/* Called for an index file that cannot be read: return 0 to go on without it, or a
 * negative code to stop the scan with it. */
typedef int (*nova_maint_index_error_cb)(const char *name, int code, const char *message,
                                         void *payload);

/* Runs every step in order: snapshots, index files, packs, grouping. */
int nova_maint_scan_run(nova_maint_scan *scan, nova_repo *repo,
                        nova_maint_index_error_cb on_index_error, void *payload);
void nova_maint_scan_free(nova_maint_scan *scan);

/* The entry number of blob `id`, or NOVA_MAINT_NO_ENTRY when no index names it.
 * location (may be NULL) receives its chunk-index location. */
size_t nova_maint_scan_find(const nova_maint_scan *scan, const nova_id *id,
                            nova_chunk_location *location);
/* The full pack entry (with raw length and type) of entry number n. */
void nova_maint_scan_entry(const nova_maint_scan *scan, size_t n, nova_pack_entry *out);
/* 1 when the code means the object is damaged or missing rather than unreachable. */
int nova_maint_is_damage(int code);

/* Bitmaps over entry numbers. */
uint8_t *nova_maint_bitmap_new(size_t bits);
static inline int nova_maint_bit_get(const uint8_t *bitmap, size_t n)
{
    return (bitmap[n >> 3] >> (n & 7)) & 1;
}
static inline void nova_maint_bit_set(uint8_t *bitmap, size_t n)
{
    bitmap[n >> 3] = (uint8_t)(bitmap[n >> 3] | (1u << (n & 7)));
}

/*
 * Walking a snapshot's tree. The walk reads each tree blob through `reader`, decodes it
 * and visits its subtrees and its files' chunks. `visited` (one bit per entry) is set for
 * every indexed blob reached, and a blob already set is skipped with everything below it,
 * so a bitmap shared by several walks visits each tree once in all.
 */
typedef struct nova_maint_walk_ops {
    /* Every blob reached: trees before they are read, chunks of files; `entry` is
     * NOVA_MAINT_NO_ENTRY for a blob no index names (it is then never read). Return 0 to
     * go on, 1 to skip (a tree is then not read), a negative code to stop the walk. */
    int (*blob)(const nova_id *id, nova_blob_type type, size_t entry, void *payload);
    /* A blob that cannot serve: a tree that does not read or decode, or a blob whose
     * indexed type is not the expected one. Return 0 to go on, negative to stop. */
    int (*problem)(const nova_id *id, nova_blob_type type, int code, const char *message,
                   void *payload);
} nova_maint_walk_ops;

typedef struct nova_maint_walk_stats {
    uint64_t trees_read;
    uint64_t data_blobs; /* chunk references visited */
} nova_maint_walk_stats;

int nova_maint_walk(const nova_maint_scan *scan, nova_repo_reader *reader, const nova_id *root,
                    uint8_t *visited, const nova_maint_walk_ops *ops, void *payload,
                    nova_maint_walk_stats *stats);

#endif
