/*
 * chunk_index.c -- open-addressing chunk index over segmented entry storage.
 *
 * Invariants:
 *   - entry n lives at segments[n >> SEGMENT_SHIFT][n & (SEGMENT_ENTRIES - 1)] and never
 *     moves; entries 0..count-1 are initialised; entry numbers fit in 32 bits;
 *   - every entry has exactly one slot in the bucket table: a bucket chosen by the id's
 *     first 8 bytes (masked), or a later one (linear probing over whole buckets) when that
 *     bucket was full. Slots fill in order and are never removed, so the first empty slot
 *     met along the chain ends a search;
 *   - a slot's tag (the id's 9th byte, 0 mapped to 1) is non-zero exactly when it is used;
 *   - count <= 9 * bucket_count (3/4 of 12 slots per bucket), so a chain always ends;
 *   - pack numbers are dense (0..pack_count-1); pack_slots holds number + 1, 0 = empty,
 *     at load <= 1/2.
 */
#include "repo/chunk_index.h"

#include "common/bytes.h"
#include "common/err.h"
#include "repo/pack.h"

#include <stdlib.h>
#include <string.h>

#define SEGMENT_SHIFT 14
#define SEGMENT_ENTRIES ((size_t)1 << SEGMENT_SHIFT)
#define BUCKET_SLOTS 12
#define BUCKET_MAX_LOAD 9 /* entries per bucket before the table doubles: 3/4 of 12 */
#define MIN_BUCKETS 16
#define MIN_PACK_SLOTS 64
#define RAW_BITS 27
#define RAW_MASK ((UINT32_C(1) << RAW_BITS) - 1)
#define MAX_ENTRIES UINT32_MAX

typedef struct chunk_entry {
    nova_id id;
    uint32_t pack;
    uint32_t offset;
    uint32_t length;
    uint32_t raw_and_type; /* raw length in the low RAW_BITS bits, blob type above */
} chunk_entry;

typedef struct bucket {
    uint8_t tags[BUCKET_SLOTS]; /* 0 = empty slot */
    uint32_t entries[BUCKET_SLOTS];
    uint8_t pad[4];
} bucket;

_Static_assert(sizeof(chunk_entry) == 48, "chunk entries are 48 bytes");
_Static_assert(sizeof(bucket) == 64, "a bucket is one cache line");
_Static_assert(NOVA_CODEC_MAX_RAW <= RAW_MASK, "raw lengths fit their bit field");

struct nova_chunk_index {
    bucket *buckets;
    size_t bucket_count; /* a power of two, or 0 before the first insert */
    size_t count;
    chunk_entry **segments;
    size_t segment_count;    /* segments allocated */
    size_t segment_capacity; /* room in the segments pointer array */
    nova_id *pack_ids;
    size_t pack_count;
    size_t pack_capacity;
    uint32_t *pack_slots;
    size_t pack_slot_count; /* a power of two, or 0 */
};

static size_t id_position(const nova_id *id)
{
    return (size_t)nova_get_le64(id->bytes);
}

static uint8_t id_tag(const nova_id *id)
{
    return id->bytes[8] ? id->bytes[8] : 1;
}

static chunk_entry *entry_at(const nova_chunk_index *ix, size_t n)
{
    return &ix->segments[n >> SEGMENT_SHIFT][n & (SEGMENT_ENTRIES - 1)];
}

static void location_of(nova_chunk_location *out, const chunk_entry *e)
{
    out->pack = e->pack;
    out->offset = e->offset;
    out->length = e->length;
    out->raw_length = e->raw_and_type & RAW_MASK;
    out->type = (uint8_t)(e->raw_and_type >> RAW_BITS);
}

/* ---- the bucket table ---------------------------------------------------------------- */

static const chunk_entry *table_find(const nova_chunk_index *ix, const nova_id *id)
{
    size_t mask, b;
    uint8_t tag = id_tag(id);

    if (ix->bucket_count == 0)
        return NULL;
    mask = ix->bucket_count - 1;
    for (b = id_position(id) & mask;; b = (b + 1) & mask) {
        const bucket *bk = &ix->buckets[b];
        for (int s = 0; s < BUCKET_SLOTS; s++) {
            const chunk_entry *e;
            if (bk->tags[s] == 0)
                return NULL;
            if (bk->tags[s] != tag)
                continue;
            e = entry_at(ix, bk->entries[s]);
            if (memcmp(e->id.bytes, id->bytes, NOVA_ID_LEN) == 0)
                return e;
        }
    }
}

/* Puts entry number n into the first free slot of its chain. */
static void table_place(bucket *buckets, size_t bucket_count, const nova_id *id, uint32_t n)
{
    size_t mask = bucket_count - 1;
    uint8_t tag = id_tag(id);

    for (size_t b = id_position(id) & mask;; b = (b + 1) & mask) {
        bucket *bk = &buckets[b];
        for (int s = 0; s < BUCKET_SLOTS; s++) {
            if (bk->tags[s] == 0) {
                bk->tags[s] = tag;
                bk->entries[s] = n;
                return;
            }
        }
    }
}

/* Rebuilds the table with room for `needed` entries at the maximum load. */
static int table_grow(nova_chunk_index *ix, size_t needed)
{
    size_t count = ix->bucket_count ? ix->bucket_count : MIN_BUCKETS;
    bucket *grown;

    while (count * BUCKET_MAX_LOAD < needed) {
        if (count > SIZE_MAX / 2 / sizeof(bucket))
            return nova_fail(NOVA_ENOMEM, "chunk index: table for %zu chunks is too large", needed);
        count *= 2;
    }
    if (count == ix->bucket_count)
        return 0;
    grown = aligned_alloc(sizeof(bucket), count * sizeof(bucket));
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "chunk index: unable to allocate %zu buckets", count);
    memset(grown, 0, count * sizeof(bucket));
    for (size_t n = 0; n < ix->count; n++)
        table_place(grown, count, &entry_at(ix, n)->id, (uint32_t)n);
    free(ix->buckets);
    ix->buckets = grown;
    ix->bucket_count = count;
    return 0;
}

/* Makes sure the segments pointer array can hold `segments` pointers. */
static int segments_reserve(nova_chunk_index *ix, size_t segments)
{
    chunk_entry **grown;
    size_t cap = ix->segment_capacity ? ix->segment_capacity : 16;

    if (segments <= ix->segment_capacity)
        return 0;
    while (cap < segments)
        cap *= 2;
    grown = realloc(ix->segments, cap * sizeof(*grown));
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "chunk index: unable to grow the segment list");
    ix->segments = grown;
    ix->segment_capacity = cap;
    return 0;
}

/* Makes sure entry number ix->count has storage. */
static int segment_for_next(nova_chunk_index *ix)
{
    chunk_entry *segment;

    if (ix->count < ix->segment_count * SEGMENT_ENTRIES)
        return 0;
    NOVA_TRY(segments_reserve(ix, ix->segment_count + 1));
    segment = malloc(SEGMENT_ENTRIES * sizeof(*segment));
    if (!segment)
        return nova_fail(NOVA_ENOMEM, "chunk index: unable to allocate an entry segment");
    ix->segments[ix->segment_count++] = segment;
    return 0;
}

/* ---- the pack table ------------------------------------------------------------------- */

/* Index of the pack's slot, or of the empty slot where it would go. */
static size_t pack_slot(const uint32_t *slots, size_t slot_count, const nova_id *ids,
                        const nova_id *pack_id)
{
    size_t mask = slot_count - 1;
    size_t s = id_position(pack_id) & mask;

    while (slots[s] != 0 && !nova_id_equal(&ids[slots[s] - 1], pack_id))
        s = (s + 1) & mask;
    return s;
}

static int pack_slots_grow(nova_chunk_index *ix)
{
    size_t count = ix->pack_slot_count ? ix->pack_slot_count * 2 : MIN_PACK_SLOTS;
    uint32_t *grown;

    if (count > SIZE_MAX / sizeof(*grown))
        return nova_fail(NOVA_ENOMEM, "chunk index: pack table too large");
    grown = calloc(count, sizeof(*grown));
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "chunk index: unable to grow the pack table");
    for (size_t p = 0; p < ix->pack_count; p++)
        grown[pack_slot(grown, count, ix->pack_ids, &ix->pack_ids[p])] = (uint32_t)(p + 1);
    free(ix->pack_slots);
    ix->pack_slots = grown;
    ix->pack_slot_count = count;
    return 0;
}

static int pack_ids_reserve(nova_chunk_index *ix)
{
    size_t cap = ix->pack_capacity ? ix->pack_capacity * 2 : 64;
    nova_id *grown;

    if (ix->pack_count < ix->pack_capacity)
        return 0;
    grown = realloc(ix->pack_ids, cap * sizeof(*grown));
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "chunk index: unable to grow the pack table");
    ix->pack_ids = grown;
    ix->pack_capacity = cap;
    return 0;
}

int nova_chunk_index_find_pack(const nova_chunk_index *index, uint32_t *pack,
                               const nova_id *pack_id)
{
    size_t s;
    if (index->pack_slot_count == 0)
        return 0;
    s = pack_slot(index->pack_slots, index->pack_slot_count, index->pack_ids, pack_id);
    if (index->pack_slots[s] == 0)
        return 0;
    *pack = index->pack_slots[s] - 1;
    return 1;
}

int nova_chunk_index_add_pack(nova_chunk_index *index, uint32_t *pack, const nova_id *pack_id)
{
    size_t s;

    if (nova_chunk_index_find_pack(index, pack, pack_id))
        return 0;
    if (index->pack_count >= UINT32_MAX - 1)
        return nova_fail(NOVA_EINVALID, "chunk index: too many packs");
    NOVA_TRY(pack_ids_reserve(index));
    if ((index->pack_count + 1) * 2 > index->pack_slot_count)
        NOVA_TRY(pack_slots_grow(index));
    s = pack_slot(index->pack_slots, index->pack_slot_count, index->pack_ids, pack_id);
    index->pack_ids[index->pack_count] = *pack_id;
    index->pack_slots[s] = (uint32_t)(index->pack_count + 1);
    *pack = (uint32_t)index->pack_count++;
    return 1;
}

const nova_id *nova_chunk_index_pack_id(const nova_chunk_index *index, uint32_t pack)
{
    return pack < index->pack_count ? &index->pack_ids[pack] : NULL;
}

size_t nova_chunk_index_pack_count(const nova_chunk_index *index)
{
    return index->pack_count;
}

/* ---- public API ---------------------------------------------------------------------- */

int nova_chunk_index_new(nova_chunk_index **out)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a chunk index");
    return 0;
}

void nova_chunk_index_free(nova_chunk_index *index)
{
    if (!index)
        return;
    for (size_t i = 0; i < index->segment_count; i++)
        free(index->segments[i]);
    free(index->segments);
    free(index->buckets);
    free(index->pack_ids);
    free(index->pack_slots);
    free(index);
}

int nova_chunk_index_reserve(nova_chunk_index *index, size_t chunk_count)
{
    if (chunk_count > MAX_ENTRIES)
        return nova_fail(NOVA_EINVALID, "chunk index: %zu chunks exceed the limit", chunk_count);
    NOVA_TRY(segments_reserve(index, (chunk_count + SEGMENT_ENTRIES - 1) >> SEGMENT_SHIFT));
    return table_grow(index, chunk_count);
}

int nova_chunk_index_insert(nova_chunk_index *index, const nova_id *id,
                            const nova_chunk_location *location)
{
    chunk_entry *e;

    if (location->pack >= index->pack_count)
        return nova_fail(NOVA_EINVALID, "chunk index: unknown pack number %u",
                         (unsigned)location->pack);
    if (!nova_blob_type_valid(location->type))
        return nova_fail(NOVA_EINVALID, "chunk index: unknown blob type %u",
                         (unsigned)location->type);
    if (location->raw_length > NOVA_CODEC_MAX_RAW)
        return nova_fail(NOVA_EINVALID, "chunk index: raw length %u exceeds %u",
                         (unsigned)location->raw_length, NOVA_CODEC_MAX_RAW);
    if (table_find(index, id))
        return 0;
    if (index->count >= MAX_ENTRIES)
        return nova_fail(NOVA_EINVALID, "chunk index: full at %zu chunks", index->count);
    if (index->count + 1 > index->bucket_count * BUCKET_MAX_LOAD)
        NOVA_TRY(table_grow(index, index->count + 1));
    NOVA_TRY(segment_for_next(index));
    e = entry_at(index, index->count);
    e->id = *id;
    e->pack = location->pack;
    e->offset = location->offset;
    e->length = location->length;
    e->raw_and_type = location->raw_length | ((uint32_t)location->type << RAW_BITS);
    table_place(index->buckets, index->bucket_count, id, (uint32_t)index->count);
    index->count++;
    return 1;
}

int nova_chunk_index_lookup(const nova_chunk_index *index, const nova_id *id,
                            nova_chunk_location *location)
{
    const chunk_entry *e = table_find(index, id);
    if (!e)
        return 0;
    if (location)
        location_of(location, e);
    return 1;
}

size_t nova_chunk_index_count(const nova_chunk_index *index)
{
    return index->count;
}

size_t nova_chunk_index_memory_bytes(const nova_chunk_index *index)
{
    return sizeof(*index) + index->bucket_count * sizeof(bucket) +
           index->segment_capacity * sizeof(chunk_entry *) +
           index->segment_count * SEGMENT_ENTRIES * sizeof(chunk_entry) +
           index->pack_capacity * sizeof(nova_id) + index->pack_slot_count * sizeof(uint32_t);
}

int nova_chunk_index_foreach(const nova_chunk_index *index, nova_chunk_index_cb cb,
                             void *payload)
{
    for (size_t n = 0; n < index->count; n++) {
        const chunk_entry *e = entry_at(index, n);
        nova_chunk_location loc;
        int rc;
        location_of(&loc, e);
        rc = cb(&e->id, &loc, payload);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int nova_chunk_index_add_index(nova_chunk_index *index, const nova_index *file,
                               size_t *duplicates)
{
    size_t dup = 0;

    if (duplicates)
        *duplicates = 0;
    if (file->entry_count > MAX_ENTRIES - index->count)
        return nova_fail(NOVA_EINVALID, "chunk index: %zu more chunks exceed the limit",
                         file->entry_count);
    NOVA_TRY(nova_chunk_index_reserve(index, index->count + file->entry_count));
    for (size_t p = 0; p < file->pack_count; p++) {
        const nova_index_pack *pack = &file->packs[p];
        nova_chunk_location loc;
        NOVA_TRY(nova_chunk_index_add_pack(index, &loc.pack, &pack->pack_id));
        for (size_t i = 0; i < pack->entry_count; i++) {
            const nova_pack_entry *e = &pack->entries[i];
            int rc;
            loc.offset = e->offset;
            loc.length = e->length;
            loc.raw_length = e->raw_length;
            loc.type = e->type;
            rc = nova_chunk_index_insert(index, &e->id, &loc);
            if (rc < 0)
                return rc;
            dup += rc == 0;
        }
    }
    if (duplicates)
        *duplicates = dup;
    return 0;
}
