/*
 * idmap.h -- a small hash map from 32-byte ids to 32-bit values (private to maintenance).
 *
 * Used for the few ids a check singles out (damaged or missing blobs); the bulk of the
 * repository's blobs are tracked by bitmaps over the scan's entry table instead.
 * Ids are uniformly random keyed-hash outputs, so their first 8 bytes serve as the hash.
 * Open addressing with linear probing; the load stays at or below 1/2.
 */
#ifndef NOVA_MAINTENANCE_IDMAP_H
#define NOVA_MAINTENANCE_IDMAP_H

#include "primitives/hash.h"

#include <stddef.h>
#include <stdint.h>

typedef struct nova_maint_idmap {
    nova_id *keys;
    uint32_t *values; /* NOVA_MAINT_IDMAP_EMPTY marks a free slot */
    size_t capacity;  /* a power of two, or 0 */
    size_t count;
} nova_maint_idmap;

#define NOVA_MAINT_IDMAP_INIT {NULL, NULL, 0, 0}
#define NOVA_MAINT_IDMAP_EMPTY UINT32_MAX

/* Sets id -> value (value < NOVA_MAINT_IDMAP_EMPTY), replacing an earlier value. */
int nova_maint_idmap_put(nova_maint_idmap *map, const nova_id *id, uint32_t value);
/* 1 and *value set when present, else 0. */
int nova_maint_idmap_get(const nova_maint_idmap *map, const nova_id *id, uint32_t *value);
void nova_maint_idmap_free(nova_maint_idmap *map);

#endif
