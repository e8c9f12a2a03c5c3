/*
 * idmap.c -- open-addressing id -> value map; see idmap.h.
 */
#include "maintenance/idmap.h"

#include "common/bytes.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(const nova_id *id, size_t capacity)
{
    return (size_t)(nova_get_le64(id->bytes) & (uint64_t)(capacity - 1));
}

static void place(nova_id *keys, uint32_t *values, size_t capacity, const nova_id *id,
                  uint32_t value)
{
    size_t i = slot_of(id, capacity);
    while (values[i] != NOVA_MAINT_IDMAP_EMPTY && !nova_id_equal(&keys[i], id))
        i = (i + 1) & (capacity - 1);
    keys[i] = *id;
    values[i] = value;
}

static int grow(nova_maint_idmap *map)
{
    size_t capacity = map->capacity ? map->capacity * 2 : 64;
    nova_id *keys = malloc(capacity * sizeof(*keys));
    uint32_t *values = malloc(capacity * sizeof(*values));

    if (!keys || !values) {
        free(keys);
        free(values);
        return nova_fail(NOVA_ENOMEM, "unable to grow an id map to %zu slots", capacity);
    }
    for (size_t i = 0; i < capacity; i++)
        values[i] = NOVA_MAINT_IDMAP_EMPTY;
    for (size_t i = 0; i < map->capacity; i++)
        if (map->values[i] != NOVA_MAINT_IDMAP_EMPTY)
            place(keys, values, capacity, &map->keys[i], map->values[i]);
    free(map->keys);
    free(map->values);
    map->keys = keys;
    map->values = values;
    map->capacity = capacity;
    return 0;
}

int nova_maint_idmap_put(nova_maint_idmap *map, const nova_id *id, uint32_t value)
{
    if (value == NOVA_MAINT_IDMAP_EMPTY)
        return nova_fail(NOVA_EINVALID, "id map: reserved value");
    if (!nova_maint_idmap_get(map, id, NULL)) {
        if ((map->count + 1) * 2 > map->capacity)
            NOVA_TRY(grow(map));
        map->count++;
    }
    place(map->keys, map->values, map->capacity, id, value);
    return 0;
}

int nova_maint_idmap_get(const nova_maint_idmap *map, const nova_id *id, uint32_t *value)
{
    size_t i;
    if (map->capacity == 0)
        return 0;
    for (i = slot_of(id, map->capacity); map->values[i] != NOVA_MAINT_IDMAP_EMPTY;
         i = (i + 1) & (map->capacity - 1)) {
        if (nova_id_equal(&map->keys[i], id)) {
            if (value)
                *value = map->values[i];
            return 1;
        }
    }
    return 0;
}

void nova_maint_idmap_free(nova_maint_idmap *map)
{
    if (!map)
        return;
    free(map->keys);
    free(map->values);
    memset(map, 0, sizeof(*map));
}
