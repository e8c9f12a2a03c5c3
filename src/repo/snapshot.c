/*
 * snapshot.c -- snapshot objects: the struct, its binary payload, sealing and storage.
 *
 * Invariants: nova_snapshot_check is the single statement of what a valid snapshot is;
 * the encoder refuses anything it rejects and the decoder rejects anything that does not
 * decode to a snapshot passing it, with no trailing bytes, so decode(encode(s)) == s and
 * encode(decode(b)) == b for every accepted b. Counts are checked against the bytes that
 * remain before anything is allocated, so a hostile count cannot make the decoder
 * allocate more than a small multiple of its input.
 */
#include "repo/snapshot.h"

#include "common/bytes.h"
#include "common/err.h"
#include "repo/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_FLAG_HAS_PARENT 0x01u
#define SNAPSHOT_FIXED_LEN 148
#define SNAPSHOT_PREFIX_LEN (sizeof(NOVA_SNAPSHOT_PREFIX) - 1)

/* ---- The struct ------------------------------------------------------------------------ */

static char *copy_string(const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy)
        memcpy(copy, s, len + 1);
    return copy;
}

int nova_snapshot_new(nova_snapshot **out)
{
    nova_snapshot *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (!s)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a snapshot");
    s->strategy = NOVA_SNAPSHOT_FULL;
    s->status = NOVA_SNAPSHOT_COMPLETED;
    s->host = copy_string("");
    s->username = copy_string("");
    if (!s->host || !s->username) {
        nova_snapshot_free(s);
        return nova_fail(NOVA_ENOMEM, "unable to allocate a snapshot");
    }
    *out = s;
    return 0;
}

void nova_snapshot_free(nova_snapshot *snapshot)
{
    if (!snapshot)
        return;
    free(snapshot->host);
    free(snapshot->username);
    for (size_t i = 0; i < snapshot->tag_count; i++) {
        free(snapshot->tags[i].key);
        free(snapshot->tags[i].value);
    }
    free(snapshot->tags);
    for (size_t i = 0; i < snapshot->path_count; i++)
        free(snapshot->paths[i]);
    free(snapshot->paths);
    free(snapshot);
}

static int replace_string(char **slot, const char *value, size_t max, const char *field)
{
    char *copy;

    if (!value || strlen(value) > max)
        return nova_fail(NOVA_EINVALID, "snapshot field '%s': missing or longer than %zu bytes",
                         field, max);
    copy = copy_string(value);
    if (!copy)
        return nova_fail(NOVA_ENOMEM, "snapshot field '%s': out of memory", field);
    free(*slot);
    *slot = copy;
    return 0;
}

int nova_snapshot_set_host(nova_snapshot *snapshot, const char *host)
{
    return replace_string(&snapshot->host, host, NOVA_SNAPSHOT_HOST_MAX, "host");
}

int nova_snapshot_set_username(nova_snapshot *snapshot, const char *username)
{
    return replace_string(&snapshot->username, username, NOVA_SNAPSHOT_USERNAME_MAX, "username");
}

static int tag_key_valid(const char *key, size_t len)
{
    return len >= 1 && len <= NOVA_SNAPSHOT_TAG_KEY_MAX && !memchr(key, '=', len);
}

int nova_snapshot_add_tag(nova_snapshot *snapshot, const char *key, const char *value)
{
    nova_snapshot_tag *grown;
    nova_snapshot_tag tag;

    if (!key || !value || !tag_key_valid(key, strlen(key)) ||
        strlen(value) > NOVA_SNAPSHOT_TAG_VALUE_MAX)
        return nova_fail(NOVA_EINVALID, "snapshot tag '%s': invalid key or value",
                         key ? key : "(null)");
    if (snapshot->tag_count >= NOVA_SNAPSHOT_TAGS_MAX)
        return nova_fail(NOVA_EINVALID, "snapshot: more than %d tags", NOVA_SNAPSHOT_TAGS_MAX);
    grown = realloc(snapshot->tags, (snapshot->tag_count + 1) * sizeof(*grown));
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "snapshot tag '%s': out of memory", key);
    snapshot->tags = grown;
    tag.key = copy_string(key);
    tag.value = copy_string(value);
    if (!tag.key || !tag.value) {
        free(tag.key);
        free(tag.value);
        return nova_fail(NOVA_ENOMEM, "snapshot tag '%s': out of memory", key);
    }
    snapshot->tags[snapshot->tag_count++] = tag;
    return 0;
}

int nova_snapshot_add_path(nova_snapshot *snapshot, const char *path)
{
    char **grown;
    char *copy;
    size_t len = path ? strlen(path) : 0;

    if (len < 1 || len > NOVA_SNAPSHOT_PATH_MAX)
        return nova_fail(NOVA_EINVALID, "snapshot path: empty or longer than %d bytes",
                         NOVA_SNAPSHOT_PATH_MAX);
    if (snapshot->path_count >= NOVA_SNAPSHOT_PATHS_MAX)
        return nova_fail(NOVA_EINVALID, "snapshot: more than %d paths", NOVA_SNAPSHOT_PATHS_MAX);
    grown = realloc(snapshot->paths, (snapshot->path_count + 1) * sizeof(*grown));
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "snapshot path '%s': out of memory", path);
    snapshot->paths = grown;
    copy = copy_string(path);
    if (!copy)
        return nova_fail(NOVA_ENOMEM, "snapshot path '%s': out of memory", path);
    snapshot->paths[snapshot->path_count++] = copy;
    return 0;
}

static int id_is_zero(const nova_id *id)
{
    uint8_t any = 0;
    for (size_t i = 0; i < NOVA_ID_LEN; i++)
        any |= id->bytes[i];
    return any == 0;
}

static int string_valid(const char *s, size_t min, size_t max)
{
    size_t len;
    if (!s)
        return 0;
    len = strnlen(s, max + 1);
    return len >= min && len <= max;
}

int nova_snapshot_check(const nova_snapshot *s)
{
    if (!s)
        return nova_fail(NOVA_EINVALID, "snapshot: missing");
    if ((unsigned)s->strategy > NOVA_SNAPSHOT_DIFFERENTIAL)
        return nova_fail(NOVA_EINVALID, "snapshot field 'strategy': unknown value %d",
                         (int)s->strategy);
    if ((unsigned)s->status > NOVA_SNAPSHOT_FAILED)
        return nova_fail(NOVA_EINVALID, "snapshot field 'status': unknown value %d",
                         (int)s->status);
    if (s->has_parent != 0 && s->has_parent != 1)
        return nova_fail(NOVA_EINVALID, "snapshot field 'has_parent': must be 0 or 1");
    if (!s->has_parent && !id_is_zero(&s->parent))
        return nova_fail(NOVA_EINVALID, "snapshot field 'parent': set without has_parent");
    if (s->has_parent && s->strategy == NOVA_SNAPSHOT_FULL)
        return nova_fail(NOVA_EINVALID, "snapshot field 'parent': a full snapshot has none");
    if (s->start_ns < 0 || s->end_ns < s->start_ns)
        return nova_fail(NOVA_EINVALID, "snapshot field 'end': before start or negative");
    if (!string_valid(s->host, 0, NOVA_SNAPSHOT_HOST_MAX))
        return nova_fail(NOVA_EINVALID, "snapshot field 'host': missing or too long");
    if (!string_valid(s->username, 0, NOVA_SNAPSHOT_USERNAME_MAX))
        return nova_fail(NOVA_EINVALID, "snapshot field 'username': missing or too long");
    if (s->tag_count > NOVA_SNAPSHOT_TAGS_MAX || s->path_count > NOVA_SNAPSHOT_PATHS_MAX ||
        (s->tag_count && !s->tags) || (s->path_count && !s->paths))
        return nova_fail(NOVA_EINVALID, "snapshot: too many tags or paths");
    for (size_t i = 0; i < s->tag_count; i++) {
        const nova_snapshot_tag *t = &s->tags[i];
        if (!string_valid(t->key, 1, NOVA_SNAPSHOT_TAG_KEY_MAX) ||
            !tag_key_valid(t->key, strlen(t->key)) ||
            !string_valid(t->value, 0, NOVA_SNAPSHOT_TAG_VALUE_MAX))
            return nova_fail(NOVA_EINVALID, "snapshot tag %zu: invalid key or value", i);
    }
    for (size_t i = 0; i < s->path_count; i++)
        if (!string_valid(s->paths[i], 1, NOVA_SNAPSHOT_PATH_MAX))
            return nova_fail(NOVA_EINVALID, "snapshot path %zu: empty or too long", i);
    return 0;
}

/* ---- Payload ------------------------------------------------------------------------- */

static int put_string(nova_buf *out, const char *s)
{
    uint8_t len[2];
    size_t n = strlen(s);

    nova_put_le16(len, (uint16_t)n);
    NOVA_TRY(nova_buf_append(out, len, sizeof(len)));
    return nova_buf_append(out, s, n);
}

static int put_u32(nova_buf *out, uint32_t v)
{
    uint8_t bytes[4];
    nova_put_le32(bytes, v);
    return nova_buf_append(out, bytes, sizeof(bytes));
}

static void put_stats(uint8_t *p, const nova_snapshot_stats *st)
{
    const uint64_t values[8] = {st->files_new,     st->files_changed,   st->files_unchanged,
                                st->bytes_read,    st->original_size,   st->compressed_size,
                                st->bytes_added,   st->errors};
    for (size_t i = 0; i < 8; i++)
        nova_put_le64(p + 8 * i, values[i]);
}

static int encode_fixed(nova_buf *out, const nova_snapshot *s)
{
    uint8_t *p;

    NOVA_TRY(nova_buf_resize(out, SNAPSHOT_FIXED_LEN));
    p = out->data;
    p[0] = NOVA_SNAPSHOT_VERSION;
    p[1] = (uint8_t)s->strategy;
    p[2] = (uint8_t)s->status;
    p[3] = s->has_parent ? SNAPSHOT_FLAG_HAS_PARENT : 0;
    memcpy(p + 4, s->parent.bytes, NOVA_ID_LEN);
    memcpy(p + 36, s->tree.bytes, NOVA_ID_LEN);
    nova_put_le64(p + 68, (uint64_t)s->start_ns);
    nova_put_le64(p + 76, (uint64_t)s->end_ns);
    put_stats(p + 84, &s->stats);
    return 0;
}

int nova_snapshot_encode(nova_buf *out, const nova_snapshot *s)
{
    int rc;

    nova_buf_reset(out);
    NOVA_TRY(nova_snapshot_check(s));
    rc = encode_fixed(out, s);
    if (rc == 0)
        rc = put_string(out, s->host);
    if (rc == 0)
        rc = put_string(out, s->username);
    if (rc == 0)
        rc = put_u32(out, (uint32_t)s->tag_count);
    for (size_t i = 0; rc == 0 && i < s->tag_count; i++) {
        rc = put_string(out, s->tags[i].key);
        if (rc == 0)
            rc = put_string(out, s->tags[i].value);
    }
    if (rc == 0)
        rc = put_u32(out, (uint32_t)s->path_count);
    for (size_t i = 0; rc == 0 && i < s->path_count; i++)
        rc = put_string(out, s->paths[i]);
    if (rc < 0)
        nova_buf_reset(out);
    return rc;
}

/* Reads a LE16-prefixed string of min..max bytes without NUL into a new allocation. */
static int read_string(char **out, nova_reader *r, size_t min, size_t max, const char *field,
                       const char *what)
{
    uint16_t len = nova_read_le16(r);
    const uint8_t *bytes;

    *out = NULL;
    if (r->failed)
        return nova_fail(NOVA_ECORRUPT, "%s: truncated before %s", what, field);
    if (len < min || len > max)
        return nova_fail(NOVA_ECORRUPT, "%s: %s length %u outside %zu..%zu", what, field,
                         (unsigned)len, min, max);
    bytes = nova_read_bytes(r, len);
    if (!bytes)
        return nova_fail(NOVA_ECORRUPT, "%s: truncated in %s", what, field);
    if (memchr(bytes, '\0', len))
        return nova_fail(NOVA_ECORRUPT, "%s: %s holds a NUL byte", what, field);
    *out = malloc((size_t)len + 1);
    if (!*out)
        return nova_fail(NOVA_ENOMEM, "%s: out of memory", what);
    memcpy(*out, bytes, len);
    (*out)[len] = '\0';
    return 0;
}

/* Reads a LE32 count of items each at least min_item_len bytes long. */
static int read_count(size_t *out, nova_reader *r, size_t max, size_t min_item_len,
                      const char *field, const char *what)
{
    uint32_t count = nova_read_le32(r);

    *out = 0;
    if (r->failed)
        return nova_fail(NOVA_ECORRUPT, "%s: truncated before %s count", what, field);
    if (count > max || (size_t)count * min_item_len > r->left)
        return nova_fail(NOVA_ECORRUPT, "%s: %s count %u impossible", what, field,
                         (unsigned)count);
    *out = count;
    return 0;
}

static int decode_fixed(nova_snapshot *s, nova_reader *r, const char *what)
{
    uint8_t version, strategy, status, flags;
    uint64_t start, end;
    uint64_t *stats[8] = {&s->stats.files_new,       &s->stats.files_changed,
                          &s->stats.files_unchanged, &s->stats.bytes_read,
                          &s->stats.original_size,   &s->stats.compressed_size,
                          &s->stats.bytes_added,     &s->stats.errors};

    version = nova_read_u8(r);
    if (r->failed)
        return nova_fail(NOVA_ECORRUPT, "%s: empty snapshot payload", what);
    if (version > NOVA_SNAPSHOT_VERSION)
        return nova_fail(NOVA_EVERSION, "%s: snapshot version %u is newer than %u", what,
                         (unsigned)version, (unsigned)NOVA_SNAPSHOT_VERSION);
    if (version != NOVA_SNAPSHOT_VERSION)
        return nova_fail(NOVA_ECORRUPT, "%s: invalid snapshot version %u", what,
                         (unsigned)version);
    strategy = nova_read_u8(r);
    status = nova_read_u8(r);
    flags = nova_read_u8(r);
    nova_read_copy(r, s->parent.bytes, NOVA_ID_LEN);
    nova_read_copy(r, s->tree.bytes, NOVA_ID_LEN);
    start = nova_read_le64(r);
    end = nova_read_le64(r);
    for (size_t i = 0; i < 8; i++)
        *stats[i] = nova_read_le64(r);
    if (r->failed)
        return nova_fail(NOVA_ECORRUPT, "%s: snapshot payload truncated", what);
    if (strategy > NOVA_SNAPSHOT_DIFFERENTIAL || status > NOVA_SNAPSHOT_FAILED)
        return nova_fail(NOVA_ECORRUPT, "%s: unknown strategy %u or status %u", what,
                         (unsigned)strategy, (unsigned)status);
    if ((flags & ~SNAPSHOT_FLAG_HAS_PARENT) != 0)
        return nova_fail(NOVA_ECORRUPT, "%s: unknown snapshot flags 0x%02x", what,
                         (unsigned)flags);
    if (start > (uint64_t)INT64_MAX || end > (uint64_t)INT64_MAX)
        return nova_fail(NOVA_ECORRUPT, "%s: snapshot times out of range", what);
    s->strategy = (nova_snapshot_strategy)strategy;
    s->status = (nova_snapshot_status)status;
    s->has_parent = (flags & SNAPSHOT_FLAG_HAS_PARENT) ? 1 : 0;
    s->start_ns = (int64_t)start;
    s->end_ns = (int64_t)end;
    return 0;
}

static int decode_lists(nova_snapshot *s, nova_reader *r, const char *what)
{
    size_t count;

    NOVA_TRY(read_count(&count, r, NOVA_SNAPSHOT_TAGS_MAX, 4, "tag", what));
    if (count) {
        s->tags = calloc(count, sizeof(*s->tags));
        if (!s->tags)
            return nova_fail(NOVA_ENOMEM, "%s: out of memory", what);
    }
    for (; s->tag_count < count; s->tag_count++) {
        nova_snapshot_tag *t = &s->tags[s->tag_count];
        int rc = read_string(&t->key, r, 1, NOVA_SNAPSHOT_TAG_KEY_MAX, "tag key", what);
        if (rc == 0)
            rc = read_string(&t->value, r, 0, NOVA_SNAPSHOT_TAG_VALUE_MAX, "tag value", what);
        if (rc < 0) {
            s->tag_count++; /* so that free releases the partial tag */
            return rc;
        }
        if (strchr(t->key, '=')) {
            s->tag_count++;
            return nova_fail(NOVA_ECORRUPT, "%s: tag key holds '='", what);
        }
    }
    NOVA_TRY(read_count(&count, r, NOVA_SNAPSHOT_PATHS_MAX, 3, "path", what));
    if (count) {
        s->paths = calloc(count, sizeof(*s->paths));
        if (!s->paths)
            return nova_fail(NOVA_ENOMEM, "%s: out of memory", what);
    }
    for (; s->path_count < count; s->path_count++) {
        int rc = read_string(&s->paths[s->path_count], r, 1, NOVA_SNAPSHOT_PATH_MAX, "path",
                             what);
        if (rc < 0)
            return rc; /* the failed slot is NULL */
    }
    return 0;
}

int nova_snapshot_decode(nova_snapshot **out, const void *data, size_t len, const char *what)
{
    nova_reader r = nova_reader_make(data, len);
    nova_snapshot *s = NULL;
    int rc;

    *out = NULL;
    if (!what)
        what = "snapshot";
    if (!data && len > 0)
        return nova_fail(NOVA_EINVALID, "%s: missing data", what);
    s = calloc(1, sizeof(*s));
    if (!s)
        return nova_fail(NOVA_ENOMEM, "%s: out of memory", what);
    rc = decode_fixed(s, &r, what);
    if (rc == 0)
        rc = read_string(&s->host, &r, 0, NOVA_SNAPSHOT_HOST_MAX, "host", what);
    if (rc == 0)
        rc = read_string(&s->username, &r, 0, NOVA_SNAPSHOT_USERNAME_MAX, "username", what);
    if (rc == 0)
        rc = decode_lists(s, &r, what);
    if (rc == 0 && r.left != 0)
        rc = nova_fail(NOVA_ECORRUPT, "%s: %zu trailing bytes", what, r.left);
    if (rc == 0) {
        rc = nova_snapshot_check(s);
        if (rc == NOVA_EINVALID) {
            char why[NOVA_ERROR_MESSAGE_MAX];
            memcpy(why, nova_error_last()->message, sizeof(why));
            rc = nova_fail(NOVA_ECORRUPT, "%s: %s", what, why);
        }
    }
    if (rc < 0) {
        nova_snapshot_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- Sealed objects and storage ---------------------------------------------------------- */

void nova_snapshot_name(char out[NOVA_SNAPSHOT_NAME_SIZE], const nova_id *id)
{
    memcpy(out, NOVA_SNAPSHOT_PREFIX, SNAPSHOT_PREFIX_LEN);
    nova_id_to_hex(id, out + SNAPSHOT_PREFIX_LEN);
}

int nova_snapshot_seal(nova_buf *out, nova_id *id_out, const nova_snapshot *snapshot,
                       const uint8_t master_enc_key[NOVA_KEY_LEN], const nova_codec_spec *codec)
{
    nova_buf payload = NOVA_BUF_INIT;
    int rc;

    nova_buf_reset(out);
    rc = nova_snapshot_encode(&payload, snapshot);
    if (rc == 0)
        rc = nova_envelope_seal(out, NOVA_SNAPSHOT_MAGIC, master_enc_key, codec, payload.data,
                                payload.len);
    if (rc == 0 && id_out)
        rc = nova_sha256(id_out, out->data, out->len);
    nova_buf_free(&payload);
    if (rc < 0)
        nova_buf_reset(out);
    return rc;
}

int nova_snapshot_open(nova_snapshot **out, const void *sealed, size_t sealed_len,
                       const uint8_t master_enc_key[NOVA_KEY_LEN], const nova_id *expected_id)
{
    char what[NOVA_SNAPSHOT_NAME_SIZE + 16] = "snapshot";
    nova_buf payload = NOVA_BUF_INIT;
    nova_id actual;
    int rc;

    *out = NULL;
    if (expected_id) {
        char name[NOVA_SNAPSHOT_NAME_SIZE];
        nova_snapshot_name(name, expected_id);
        snprintf(what, sizeof(what), "snapshot '%s'", name + SNAPSHOT_PREFIX_LEN);
        NOVA_TRY(nova_sha256(&actual, sealed, sealed_len));
        if (!nova_id_equal(&actual, expected_id))
            return nova_fail(NOVA_ECORRUPT, "%s: stored bytes do not match the id", what);
    }
    rc = nova_envelope_open(&payload, NOVA_SNAPSHOT_MAGIC, master_enc_key, sealed, sealed_len,
                            what);
    if (rc == 0)
        rc = nova_snapshot_decode(out, payload.data, payload.len, what);
    nova_buf_free(&payload);
    return rc;
}

int nova_snapshot_write(nova_storage *storage, nova_id *id_out, const nova_snapshot *snapshot,
                        const uint8_t master_enc_key[NOVA_KEY_LEN], const nova_codec_spec *codec)
{
    nova_buf sealed = NOVA_BUF_INIT;
    char name[NOVA_SNAPSHOT_NAME_SIZE];
    nova_id id;
    int rc;

    rc = nova_snapshot_seal(&sealed, &id, snapshot, master_enc_key, codec);
    if (rc == 0) {
        nova_snapshot_name(name, &id);
        rc = nova_storage_put(storage, name, sealed.data, sealed.len);
    }
    if (rc == 0 && id_out)
        *id_out = id;
    nova_buf_free(&sealed);
    return rc;
}

int nova_snapshot_read(nova_snapshot **out, nova_storage *storage, const nova_id *id,
                       const uint8_t master_enc_key[NOVA_KEY_LEN])
{
    nova_buf sealed = NOVA_BUF_INIT;
    char name[NOVA_SNAPSHOT_NAME_SIZE];
    int rc;

    *out = NULL;
    nova_snapshot_name(name, id);
    rc = nova_storage_get(storage, name, 0, NOVA_STORAGE_WHOLE, &sealed);
    if (rc == NOVA_ENOTFOUND)
        rc = nova_fail(NOVA_EBACKUP_NOT_FOUND, "snapshot '%s' not found",
                       name + SNAPSHOT_PREFIX_LEN);
    if (rc == 0)
        rc = nova_snapshot_open(out, sealed.data, sealed.len, master_enc_key, id);
    nova_buf_free(&sealed);
    return rc;
}
