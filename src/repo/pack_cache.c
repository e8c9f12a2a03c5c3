/*
 * pack_cache.c -- a few whole packs held in memory (contract in pack_cache.h).
 */
#include "repo/pack_cache.h"

#include "common/err.h"

#include <string.h>

static nova_pack_cache_slot *find_slot(nova_pack_cache *cache, uint32_t pack)
{
    for (size_t i = 0; i < NOVA_PACK_CACHE_SLOTS; i++)
        if (cache->slots[i].valid && cache->slots[i].pack == pack)
            return &cache->slots[i];
    return NULL;
}

/* An empty slot, else the least recently used one. */
static nova_pack_cache_slot *victim_slot(nova_pack_cache *cache)
{
    nova_pack_cache_slot *oldest = &cache->slots[0];
    for (size_t i = 0; i < NOVA_PACK_CACHE_SLOTS; i++) {
        if (!cache->slots[i].valid)
            return &cache->slots[i];
        if (cache->slots[i].last_use < oldest->last_use)
            oldest = &cache->slots[i];
    }
    return oldest;
}

static int known_large(const nova_pack_cache *cache, uint32_t pack)
{
    for (size_t i = 0; i < cache->large_count; i++)
        if (cache->large[i] == pack)
            return 1;
    return 0;
}

static void remember_large(nova_pack_cache *cache, uint32_t pack)
{
    cache->large[cache->large_next] = pack;
    cache->large_next = (cache->large_next + 1) % NOVA_PACK_CACHE_LARGE_MEMORY;
    if (cache->large_count < NOVA_PACK_CACHE_LARGE_MEMORY)
        cache->large_count++;
}

/* Fetches pack `pack` whole into a slot; 0 (nothing held) when it is too large. */
static int fetch_pack(nova_pack_cache *cache, nova_storage *storage, uint32_t pack,
                      const char *name, nova_pack_cache_slot **out)
{
    nova_pack_cache_slot *slot;
    nova_pack_trailer trailer;
    nova_object_info info;

    NOVA_TRY(nova_storage_stat(storage, name, &info));
    if (info.size > NOVA_PACK_CACHE_WHOLE_MAX) {
        remember_large(cache, pack);
        return 0;
    }
    slot = victim_slot(cache);
    slot->valid = 0;
    slot->bytes.len = 0;
    NOVA_TRY(nova_storage_get(storage, name, 0, (size_t)info.size, &slot->bytes));
    NOVA_TRY(nova_pack_trailer_parse(&trailer, slot->bytes.len, slot->bytes.data,
                                     slot->bytes.len, name));
    memcpy(slot->salt, trailer.salt, NOVA_SALT_LEN);
    slot->pack = pack;
    slot->valid = 1;
    *out = slot;
    return 1;
}

int nova_pack_cache_slice(nova_pack_cache *cache, nova_storage *storage, uint32_t pack,
                          const char *name, uint32_t offset, uint32_t length,
                          const uint8_t **stored, const uint8_t **salt)
{
    nova_pack_cache_slot *slot = find_slot(cache, pack);
    int rc;

    if (!slot) {
        if (known_large(cache, pack))
            return 0;
        rc = fetch_pack(cache, storage, pack, name, &slot);
        if (rc <= 0)
            return rc;
    }
    if ((uint64_t)offset + length > slot->bytes.len)
        return nova_fail(NOVA_ECORRUPT, "pack '%s' is %zu bytes, shorter than the index says",
                         name, slot->bytes.len);
    slot->last_use = ++cache->clock;
    *stored = slot->bytes.data + offset;
    *salt = slot->salt;
    return 1;
}

void nova_pack_cache_clear(nova_pack_cache *cache)
{
    for (size_t i = 0; i < NOVA_PACK_CACHE_SLOTS; i++) {
        nova_buf_free(&cache->slots[i].bytes);
        cache->slots[i].valid = 0;
    }
}
