/*
 * ids.c -- cached user/group name look-ups through the reentrant NSS calls.
 *
 * Four direct-mapped caches of CACHE_SLOTS entries (uid->name, gid->name, name->uid,
 * name->gid). A slot holds the answer including "none", so a miss costs one NSS call and
 * a collision merely repeats one. The look-up buffer is shared and grows on ERANGE.
 */
#include "fsmeta/ids.h"

#include "common/err.h"
#include "repo/tree.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CACHE_SLOTS 64
#define LOOKUP_BUFFER_MAX (1024u * 1024u)

typedef struct id_slot {
    int used;
    uint32_t id;
    int has_name;
    char name[NOVA_TREE_OWNER_NAME_MAX + 1];
} id_slot;

typedef struct name_slot {
    int used;
    char name[NOVA_TREE_OWNER_NAME_MAX + 1];
    int found;
    uint32_t id;
} name_slot;

struct nova_fsmeta_ids {
    id_slot users[CACHE_SLOTS];
    id_slot groups[CACHE_SLOTS];
    name_slot user_names[CACHE_SLOTS];
    name_slot group_names[CACHE_SLOTS];
    char *buffer;
    size_t buffer_len;
};

int nova_fsmeta_ids_new(nova_fsmeta_ids **out)
{
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    nova_fsmeta_ids *ids = calloc(1, sizeof(*ids));

    *out = NULL;
    if (!ids)
        return nova_fail(NOVA_ENOMEM, "unable to allocate the user/group name cache");
    ids->buffer_len = hint > 1024 && hint < (long)LOOKUP_BUFFER_MAX ? (size_t)hint : 16384;
    ids->buffer = malloc(ids->buffer_len);
    if (!ids->buffer) {
        free(ids);
        return nova_fail(NOVA_ENOMEM, "unable to allocate the user/group name cache");
    }
    *out = ids;
    return 0;
}

void nova_fsmeta_ids_free(nova_fsmeta_ids *ids)
{
    if (!ids)
        return;
    free(ids->buffer);
    free(ids);
}

/* Doubles the look-up buffer after ERANGE; 0 when it cannot grow any more. */
static int grow_buffer(nova_fsmeta_ids *ids)
{
    char *grown;
    if (ids->buffer_len >= LOOKUP_BUFFER_MAX)
        return 0;
    grown = realloc(ids->buffer, ids->buffer_len * 2);
    if (!grown)
        return 0;
    ids->buffer = grown;
    ids->buffer_len *= 2;
    return 1;
}

/* Copies a name that fits a tree entry; 0 when absent, empty or too long. */
static int keep_name(char out[NOVA_TREE_OWNER_NAME_MAX + 1], const char *name)
{
    size_t len = name ? strnlen(name, NOVA_TREE_OWNER_NAME_MAX + 1) : 0;
    if (len == 0 || len > NOVA_TREE_OWNER_NAME_MAX)
        return 0;
    memcpy(out, name, len + 1);
    return 1;
}

static int passwd_by_id(nova_fsmeta_ids *ids, uint32_t uid, char *name_out)
{
    struct passwd entry, *found = NULL;
    int rc;
    do
        rc = getpwuid_r((uid_t)uid, &entry, ids->buffer, ids->buffer_len, &found);
    while (rc == ERANGE && grow_buffer(ids));
    return rc == 0 && found && keep_name(name_out, found->pw_name);
}

static int group_by_id(nova_fsmeta_ids *ids, uint32_t gid, char *name_out)
{
    struct group entry, *found = NULL;
    int rc;
    do
        rc = getgrgid_r((gid_t)gid, &entry, ids->buffer, ids->buffer_len, &found);
    while (rc == ERANGE && grow_buffer(ids));
    return rc == 0 && found && keep_name(name_out, found->gr_name);
}

static int passwd_by_name(nova_fsmeta_ids *ids, const char *name, uint32_t *uid)
{
    struct passwd entry, *found = NULL;
    int rc;
    do
        rc = getpwnam_r(name, &entry, ids->buffer, ids->buffer_len, &found);
    while (rc == ERANGE && grow_buffer(ids));
    if (rc != 0 || !found)
        return 0;
    *uid = (uint32_t)found->pw_uid;
    return 1;
}

static int group_by_name(nova_fsmeta_ids *ids, const char *name, uint32_t *gid)
{
    struct group entry, *found = NULL;
    int rc;
    do
        rc = getgrnam_r(name, &entry, ids->buffer, ids->buffer_len, &found);
    while (rc == ERANGE && grow_buffer(ids));
    if (rc != 0 || !found)
        return 0;
    *gid = (uint32_t)found->gr_gid;
    return 1;
}

static size_t name_hash(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % CACHE_SLOTS;
}

const char *nova_fsmeta_user_name(nova_fsmeta_ids *ids, uint32_t uid)
{
    id_slot *slot = &ids->users[uid % CACHE_SLOTS];
    if (!slot->used || slot->id != uid) {
        slot->used = 1;
        slot->id = uid;
        slot->has_name = passwd_by_id(ids, uid, slot->name);
    }
    return slot->has_name ? slot->name : NULL;
}

const char *nova_fsmeta_group_name(nova_fsmeta_ids *ids, uint32_t gid)
{
    id_slot *slot = &ids->groups[gid % CACHE_SLOTS];
    if (!slot->used || slot->id != gid) {
        slot->used = 1;
        slot->id = gid;
        slot->has_name = group_by_id(ids, gid, slot->name);
    }
    return slot->has_name ? slot->name : NULL;
}

static name_slot *name_slot_for(name_slot *table, const char *name, int *hit)
{
    name_slot *slot = &table[name_hash(name)];
    *hit = slot->used && strcmp(slot->name, name) == 0;
    return slot;
}

int nova_fsmeta_user_id(nova_fsmeta_ids *ids, const char *name, uint32_t *uid)
{
    int hit;
    name_slot *slot;

    if (!name || !name[0])
        return 0;
    slot = name_slot_for(ids->user_names, name, &hit);
    if (!hit) {
        uint32_t id = 0;
        int found = passwd_by_name(ids, name, &id);
        if (!keep_name(slot->name, name))
            return found ? (*uid = id, 1) : 0; /* too long to cache */
        slot->used = 1;
        slot->found = found;
        slot->id = id;
    }
    if (slot->found)
        *uid = slot->id;
    return slot->found;
}

int nova_fsmeta_group_id(nova_fsmeta_ids *ids, const char *name, uint32_t *gid)
{
    int hit;
    name_slot *slot;

    if (!name || !name[0])
        return 0;
    slot = name_slot_for(ids->group_names, name, &hit);
    if (!hit) {
        uint32_t id = 0;
        int found = group_by_name(ids, name, &id);
        if (!keep_name(slot->name, name))
            return found ? (*gid = id, 1) : 0;
        slot->used = 1;
        slot->found = found;
        slot->id = id;
    }
    if (slot->found)
        *gid = slot->id;
    return slot->found;
}
