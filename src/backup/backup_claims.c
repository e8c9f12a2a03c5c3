/*
 * backup_claims.c -- the chunk ids one backup has decided to store.
 *
 * Workers look a new chunk id up in the repository's index and then here; the first to
 * claim an id stores the blob, everyone else references it. Claims are entries in one
 * growable array, found through an open-addressing table of entry numbers (linear
 * probing, load <= 1/2). Ids are HMAC outputs, uniformly random, so their first bytes
 * serve as the hash. Not thread-safe: the engine holds its dedup mutex around every call.
 */
#include "backup/backup_internal.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

#define EMPTY_SLOT UINT32_MAX
#define INITIAL_TABLE 4096u

struct nova_bk_claims {
    nova_bk_claim *entries;
    size_t count, cap;
    uint32_t *table; /* entry numbers, EMPTY_SLOT when free */
    size_t table_size; /* power of two */
};

static size_t id_hash(const nova_id *id)
{
    uint64_t h;
    memcpy(&h, id->bytes, sizeof(h));
    return (size_t)h;
}

static int table_alloc(nova_bk_claims *c, size_t size)
{
    uint32_t *table = malloc(size * sizeof(*table));
    if (!table)
        return nova_fail(NOVA_ENOMEM, "unable to grow the backup's chunk set to %zu slots", size);
    memset(table, 0xff, size * sizeof(*table));
    for (size_t i = 0; i < c->count; i++) {
        size_t at = id_hash(&c->entries[i].id) & (size - 1);
        while (table[at] != EMPTY_SLOT)
            at = (at + 1) & (size - 1);
        table[at] = (uint32_t)i;
    }
    free(c->table);
    c->table = table;
    c->table_size = size;
    return 0;
}

int nova_bk_claims_new(nova_bk_claims **out)
{
    nova_bk_claims *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (!c)
        return nova_fail(NOVA_ENOMEM, "unable to allocate the backup's chunk set");
    if (table_alloc(c, INITIAL_TABLE) < 0) {
        free(c);
        return NOVA_ENOMEM;
    }
    *out = c;
    return 0;
}

void nova_bk_claims_free(nova_bk_claims *c)
{
    if (!c)
        return;
    free(c->entries);
    free(c->table);
    free(c);
}

int nova_bk_claims_claim(nova_bk_claims *c, const nova_id *id, uint32_t *slot)
{
    size_t at = id_hash(id) & (c->table_size - 1);

    for (; c->table[at] != EMPTY_SLOT; at = (at + 1) & (c->table_size - 1)) {
        if (memcmp(c->entries[c->table[at]].id.bytes, id->bytes, NOVA_ID_LEN) == 0) {
            *slot = c->table[at];
            return 0;
        }
    }
    if (c->count >= UINT32_MAX - 1)
        return nova_fail(NOVA_EINVALID, "a backup cannot store more than 2^32 chunks");
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        nova_bk_claim *grown = realloc(c->entries, cap * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to grow the backup's chunk set");
        c->entries = grown;
        c->cap = cap;
    }
    c->entries[c->count].id = *id;
    c->entries[c->count].stored_length = 0;
    c->entries[c->count].early_refs = 0;
    c->table[at] = (uint32_t)c->count;
    *slot = (uint32_t)c->count;
    c->count++;
    if (c->count * 2 > c->table_size)
        NOVA_TRY(table_alloc(c, c->table_size * 2));
    return 1;
}

nova_bk_claim *nova_bk_claims_at(nova_bk_claims *c, uint32_t slot)
{
    return &c->entries[slot];
}

size_t nova_bk_claims_count(const nova_bk_claims *c)
{
    return c->count;
}
