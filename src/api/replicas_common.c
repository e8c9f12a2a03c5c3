/*
 * replicas_common.c -- what copy, status and repair share: error helpers, a table of ids,
 * the names of objects named by their hash, verified reads, config comparison, the keys
 * every copy shares, problem lists and repository locks held for a long operation.
 *
 * Invariants:
 *   - an object is only ever read whole through replica_read_verified, which hashes it
 *     and compares the hash with its name before handing the bytes on, so no caller can
 *     write, replace or trust a rotten object;
 *   - listings keep only well-formed names (lowercase hex of the right length), so
 *     temporary files of a backend and foreign objects are never taken for objects;
 *   - a refreshed lock is stored before the old one is released: the repository is never
 *     unlocked while an operation runs.
 */
#include "api/replicas_internal.h"

#include "common/err.h"
#include "nova/config.h"
#include "primitives/crypto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define LOCK_TTL_NS (30LL * 60 * 1000000000LL)

/* ---- small tools ------------------------------------------------------------------------ */

static int64_t wall_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

double replica_mono_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

unsigned replica_threads(unsigned requested, const nova_config *config)
{
    if (requested)
        return requested;
    if (config && config->storage.connections > 0)
        return (unsigned)config->storage.connections;
    return REPLICA_DEFAULT_THREADS;
}

int replica_wrap_error(int rc, const char *fmt, ...)
{
    const nova_error_detail d = *nova_error_last();
    char prefix[NOVA_ERROR_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (d.code != rc || !d.message[0])
        return nova_error_set(rc, 0, __FILE__, __LINE__, "%s", prefix);
    return nova_error_set(rc, d.sys_errno, d.file, d.line, "%s: %s", prefix, d.message);
}

int replica_is_damage(int code)
{
    return code == NOVA_ECORRUPT || code == NOVA_ECHECKSUM || code == NOVA_ENOTFOUND ||
           code == NOVA_EVERSION;
}

char *replica_dup_text(const char *text)
{
    return strdup(text ? text : "");
}

int replica_check_options(const nova_replicas_options *o)
{
    if (o && o->version != NOVA_REPLICAS_OPTIONS_VERSION)
        return nova_fail(NOVA_EINVALID, "replicas options of version %u (want %u)", o->version,
                         NOVA_REPLICAS_OPTIONS_VERSION);
    return 0;
}

/* ---- a map from ids to 64-bit values (open addressing) ---------------------------------- */

/* Ids are SHA-256 or HMAC outputs: their first bytes are uniform, no further hashing. */

void replica_id_map_free(replica_id_map *m)
{
    free(m->keys);
    free(m->values);
    free(m->used);
    memset(m, 0, sizeof(*m));
}

static size_t id_map_slot(const replica_id_map *m, const nova_id *id)
{
    uint64_t h;
    size_t i;
    memcpy(&h, id->bytes, sizeof(h));
    i = (size_t)h & (m->cap - 1);
    while (m->used[i] && memcmp(m->keys[i].bytes, id->bytes, NOVA_ID_LEN) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int id_map_grow(replica_id_map *m)
{
    replica_id_map bigger = {NULL, NULL, NULL, m->cap ? m->cap * 2 : 64, m->count};
    bigger.keys = malloc(bigger.cap * sizeof(*bigger.keys));
    bigger.values = malloc(bigger.cap * sizeof(*bigger.values));
    bigger.used = calloc(bigger.cap, 1);
    if (!bigger.keys || !bigger.values || !bigger.used) {
        replica_id_map_free(&bigger);
        return nova_fail(NOVA_ENOMEM, "unable to grow a table of %zu ids", m->count);
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->used[i])
            continue;
        size_t j = id_map_slot(&bigger, &m->keys[i]);
        bigger.used[j] = 1;
        bigger.keys[j] = m->keys[i];
        bigger.values[j] = m->values[i];
    }
    replica_id_map_free(m);
    *m = bigger;
    return 0;
}

int replica_id_map_set(replica_id_map *m, const nova_id *id, uint64_t value)
{
    size_t i;
    if ((m->count + 1) * 4 > m->cap * 3)
        NOVA_TRY(id_map_grow(m));
    i = id_map_slot(m, id);
    if (!m->used[i]) {
        m->used[i] = 1;
        m->keys[i] = *id;
        m->count++;
    }
    m->values[i] = value;
    return 0;
}

int replica_id_map_get(const replica_id_map *m, const nova_id *id, uint64_t *value)
{
    size_t i;
    if (m->cap == 0)
        return 0;
    i = id_map_slot(m, id);
    if (!m->used[i])
        return 0;
    if (value)
        *value = m->values[i];
    return 1;
}

static int compare_ids(const void *a, const void *b)
{
    return memcmp(a, b, NOVA_ID_LEN);
}

int replica_id_map_sorted(const replica_id_map *m, nova_id **out)
{
    size_t n = 0;
    *out = NULL;
    if (m->count == 0)
        return 0;
    *out = malloc(m->count * sizeof(**out));
    if (!*out)
        return nova_fail(NOVA_ENOMEM, "unable to sort %zu ids", m->count);
    for (size_t i = 0; i < m->cap; i++)
        if (m->used[i])
            (*out)[n++] = m->keys[i];
    qsort(*out, n, sizeof(**out), compare_ids);
    return 0;
}

uint64_t replica_id_map_total(const replica_id_map *m)
{
    uint64_t total = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->used[i])
            total += m->values[i];
    return total;
}

/* ---- object names ----------------------------------------------------------------------- */

static const char *const kind_prefix[] = {"data/", "index/", "snapshots/", "keys/"};

void replica_object_name(char out[REPLICA_NAME_SIZE], replica_kind kind, const nova_id *id)
{
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_id_to_hex(id, hex);
    if (kind == REPLICA_PACK)
        snprintf(out, REPLICA_NAME_SIZE, "data/%.2s/%s", hex, hex);
    else
        snprintf(out, REPLICA_NAME_SIZE, "%s%s", kind_prefix[kind], hex);
}

/* 1 and *out set when name is a well-formed name of this kind (lowercase hex). */
static int parse_object_name(replica_kind kind, const char *name, nova_id *out)
{
    size_t plen = strlen(kind_prefix[kind]);
    const char *hex = name + plen;

    if (strncmp(name, kind_prefix[kind], plen) != 0)
        return 0;
    if (kind == REPLICA_PACK) {
        if (strlen(hex) != 3 + NOVA_ID_HEX_LEN || hex[2] != '/' || hex[0] != hex[3] ||
            hex[1] != hex[4])
            return 0;
        hex += 3;
    }
    if (strlen(hex) != NOVA_ID_HEX_LEN)
        return 0;
    for (size_t i = 0; i < NOVA_ID_HEX_LEN; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return 0;
    return nova_id_from_hex(out, hex) == 0;
}

typedef struct listing {
    replica_kind kind;
    replica_id_map *map;
} listing;

static int collect_object(const char *name, uint64_t size, void *payload)
{
    const listing *l = payload;
    nova_id id;
    if (!parse_object_name(l->kind, name, &id))
        return 0; /* temporary files of a backend, foreign objects */
    return replica_id_map_set(l->map, &id, size);
}

int replica_list(nova_storage *s, const char *where, replica_kind kind, replica_id_map *map)
{
    listing l = {kind, map};
    int rc = nova_storage_list(s, kind_prefix[kind], collect_object, &l);
    if (rc < 0)
        return replica_wrap_error(rc, "unable to list '%s' in '%s'", kind_prefix[kind], where);
    return 0;
}

int replica_read_verified(nova_storage *s, const char *where, replica_kind kind,
                          const nova_id *id, nova_buf *bytes)
{
    char name[REPLICA_NAME_SIZE];
    nova_id actual;
    int rc;

    replica_object_name(name, kind, id);
    rc = nova_storage_get(s, name, 0, NOVA_STORAGE_WHOLE, bytes);
    if (rc < 0)
        return replica_wrap_error(rc, "unable to read '%s' from '%s'", name, where);
    NOVA_TRY(nova_sha256(&actual, bytes->data, bytes->len));
    if (!nova_id_equal(&actual, id))
        return nova_fail(NOVA_ECHECKSUM, "'%s' in '%s' does not match its name (its bytes are "
                         "damaged)", name, where);
    return 0;
}

int replica_same_config(const nova_buf *mine, const nova_buf *theirs, const char *where)
{
    nova_repo_config a, b;
    char ha[NOVA_ID_HEX_LEN + 1], hb[NOVA_ID_HEX_LEN + 1];

    if (mine->len == theirs->len && memcmp(mine->data, theirs->data, mine->len) == 0)
        return 0;
    if (nova_repo_config_decode(&b, theirs->data, theirs->len) < 0)
        return nova_fail(NOVA_ECORRUPT, "the config of '%s' is damaged (repair it with 'nova "
                         "replicas repair --to %s')", where, where);
    if (nova_repo_config_decode(&a, mine->data, mine->len) < 0)
        return nova_fail(NOVA_ECORRUPT, "the config of the source is damaged");
    nova_hex_encode(ha, a.repo_id, NOVA_REPO_ID_LEN);
    nova_hex_encode(hb, b.repo_id, NOVA_REPO_ID_LEN);
    return nova_fail(NOVA_EINVALID, "'%s' holds another repository (id %.16s..., this one is "
                     "%.16s...): a replica must start empty", where, hb, ha);
}

/* ---- what every copy shares ------------------------------------------------------------- */

/* Config, keys and config bytes of one copy. */
static int shared_keys_read(replica_shared_keys *out, nova_storage *storage,
                            const char *passphrase)
{
    int rc = nova_repo_config_read(&out->config, storage);
    if (rc == 0)
        rc = nova_keys_open(&out->keys, storage, out->config.repo_id, passphrase,
                            strlen(passphrase), NULL);
    if (rc == 0)
        rc = nova_storage_get(storage, NOVA_REPO_CONFIG_NAME, 0, NOVA_STORAGE_WHOLE,
                              &out->config_bytes);
    return rc;
}

int replica_shared_keys_open(replica_shared_keys *out, const nova_replica_storage *copies,
                             size_t count, const char *passphrase)
{
    int first = 0, password = 0;
    nova_error_detail first_detail = {0};

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < count; i++) {
        int rc;
        if (!copies[i].storage)
            continue;
        rc = shared_keys_read(out, copies[i].storage, passphrase);
        if (rc == 0)
            return 0;
        if (rc == NOVA_EPASSWORD && !password) {
            password = 1;
            first = rc;
            first_detail = *nova_error_last();
        } else if (!first) {
            first = rc;
            first_detail = *nova_error_last();
        }
    }
    nova_buf_free(&out->config_bytes);
    if (!first)
        return nova_fail(NOVA_ENO_REPO, "none of the %zu copies could be opened", count);
    return nova_error_set(first, first_detail.sys_errno, first_detail.file, first_detail.line,
                          "%s", first_detail.message);
}

void replica_shared_keys_free(replica_shared_keys *k)
{
    nova_master_keys_wipe(&k->keys);
    nova_buf_free(&k->config_bytes);
}

/* ---- problem lists ---------------------------------------------------------------------- */

int replica_problem_add(nova_replica_problem **problems, size_t *count, size_t *cap,
                        size_t copy, int code, const char *object, const char *message)
{
    nova_replica_problem *p;

    if (*count == *cap) {
        size_t grown_cap = *cap ? *cap * 2 : 16;
        nova_replica_problem *grown = realloc(*problems, grown_cap * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to record %zu problems", grown_cap);
        *problems = grown;
        *cap = grown_cap;
    }
    p = &(*problems)[*count];
    p->copy = copy;
    p->code = code;
    p->object = replica_dup_text(object);
    p->message = replica_dup_text(message);
    if (!p->object || !p->message) {
        free(p->object);
        free(p->message);
        return nova_fail(NOVA_ENOMEM, "unable to record a problem");
    }
    (*count)++;
    return 0;
}

void replica_problems_free(nova_replica_problem *problems, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(problems[i].object);
        free(problems[i].message);
    }
    free(problems);
}

/* ---- repository locks held for a long operation ----------------------------------------- */

int replica_lock_take(replica_lock *l, nova_storage *s, const uint8_t *key, const char *what,
                      const char *where)
{
    nova_lock lock;
    int64_t now = wall_ns();
    int rc;

    l->storage = s;
    l->key = key;
    l->what = what;
    NOVA_TRY(nova_lock_init(&lock, 0, what, LOCK_TTL_NS));
    rc = nova_lock_acquire(s, key, &lock, now, l->name);
    if (rc < 0) {
        l->name[0] = '\0';
        return replica_wrap_error(rc, "unable to lock '%s'", where);
    }
    l->taken_ns = now;
    return 0;
}

int replica_lock_refresh(replica_lock *l)
{
    char old[NOVA_LOCK_NAME_SIZE];
    int rc;
    if (!l->name[0] || wall_ns() - l->taken_ns < LOCK_TTL_NS / 3)
        return 0;
    memcpy(old, l->name, sizeof(old));
    rc = replica_lock_take(l, l->storage, l->key, l->what, "repository");
    if (rc < 0) {
        memcpy(l->name, old, sizeof(old)); /* still held: released at the end */
        return rc;
    }
    nova_lock_release(l->storage, old);
    return 0;
}

void replica_lock_drop(replica_lock *l)
{
    if (l->name[0])
        nova_lock_release(l->storage, l->name);
    l->name[0] = '\0';
}
