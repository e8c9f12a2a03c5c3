/*
 * pack_cache.c -- one whole pack held in memory (contract in pack_cache.h).
 */
#include "repo/pack_cache.h"

#include "common/err.h"

#include <string.h>

static int fetch_pack(nova_pack_cache *cache, nova_storage *storage, uint32_t pack,
                      const char *name)
{
    nova_pack_trailer trailer;

    cache->valid = 0;
    cache->bytes.len = 0;
    NOVA_TRY(nova_storage_get(storage, name, 0, NOVA_STORAGE_WHOLE, &cache->bytes));
    NOVA_TRY(nova_pack_trailer_parse(&trailer, cache->bytes.len, cache->bytes.data,
                                     cache->bytes.len, name));
    memcpy(cache->salt, trailer.salt, NOVA_SALT_LEN);
    cache->pack = pack;
    cache->valid = 1;
    return 0;
}

int nova_pack_cache_slice(nova_pack_cache *cache, nova_storage *storage, uint32_t pack,
                          const char *name, uint32_t offset, uint32_t length,
                          const uint8_t **stored)
{
    if (!cache->valid || cache->pack != pack)
        NOVA_TRY(fetch_pack(cache, storage, pack, name));
    if ((uint64_t)offset + length > cache->bytes.len)
        return nova_fail(NOVA_ECORRUPT, "pack '%s' is %zu bytes, shorter than the index says",
                         name, cache->bytes.len);
    *stored = cache->bytes.data + offset;
    return 0;
}

void nova_pack_cache_clear(nova_pack_cache *cache)
{
    nova_buf_free(&cache->bytes);
    cache->valid = 0;
}
