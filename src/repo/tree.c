/*
 * tree.c -- encoding, decoding and building TREE blobs (layout: docs/format-tree.md).
 *
 * The decoder is the gatekeeper: it accepts only the canonical encoding, checks every
 * length against the bytes that remain before using it, and checks the entry count
 * against the smallest possible entry before allocating. A decoded tree lives in one
 * block: the nova_tree header, the entry array, then an arena for names, strings, values
 * and chunk lists. Every string and list occupies fewer bytes in the arena than it did
 * in the encoding (the length prefix pays for the NUL), so an arena as long as the input
 * always suffices. Extended attributes go into one array shared by all entries.
 *
 * The builder deep-copies entries into a block arena whose blocks never move, so the
 * pointers in its entries stay valid while more entries are added.
 */
#include "repo/tree.h"

#include "common/bytes.h"
#include "common/err.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Encoded entry flags (bits of the flags byte). */
#define WIRE_SPARSE 0x01u
#define WIRE_USER_NAME 0x02u
#define WIRE_GROUP_NAME 0x04u
#define WIRE_XATTRS 0x08u
#define WIRE_KNOWN (WIRE_SPARSE | WIRE_USER_NAME | WIRE_GROUP_NAME | WIRE_XATTRS)

/* name_len, type, flags, mode, uid, gid, size, 3 times, inode, device, nlink (+ name). */
#define FIXED_ENTRY_LEN (1 + 1 + 1 + 2 + 4 + 4 + 8 + 24 + 8 + 8 + 4)
#define MAX_CHUNKS (NOVA_TREE_MAX_ENCODED / NOVA_ID_LEN)

/* ------------------------------------------------------------------ entry helpers */

void nova_tree_entry_init(nova_tree_entry *entry) { memset(entry, 0, sizeof(*entry)); }

int nova_tree_type_valid(unsigned type)
{
    return type >= NOVA_TREE_FILE && type <= NOVA_TREE_SOCKET;
}

const char *nova_tree_type_name(unsigned type)
{
    switch (type) {
    case NOVA_TREE_FILE: return "file";
    case NOVA_TREE_DIR: return "dir";
    case NOVA_TREE_SYMLINK: return "symlink";
    case NOVA_TREE_FIFO: return "fifo";
    case NOVA_TREE_CHAR: return "chardev";
    case NOVA_TREE_BLOCK: return "blockdev";
    case NOVA_TREE_SOCKET: return "socket";
    default: return "unknown";
    }
}

int nova_tree_name_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > NOVA_TREE_NAME_MAX)
        return 0;
    if (memchr(name, '/', len) || memchr(name, '\0', len))
        return 0;
    if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
        return 0;
    return 1;
}

int nova_tree_name_compare(const char *a, size_t a_len, const char *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c != 0)
        return c;
    return a_len < b_len ? -1 : a_len > b_len ? 1 : 0;
}

static int is_device(nova_tree_type type) { return type == NOVA_TREE_CHAR || type == NOVA_TREE_BLOCK; }

static int id_is_zero(const nova_id *id)
{
    for (size_t i = 0; i < NOVA_ID_LEN; i++)
        if (id->bytes[i])
            return 0;
    return 1;
}

/* Length of an optional string bounded by max: 0 when NULL, max + 1 when too long. */
static size_t bounded_strlen(const char *s, size_t max) { return s ? strnlen(s, max + 1) : 0; }

static int check_xattrs(const nova_tree_entry *e, int name_len)
{
    if (e->xattr_count > NOVA_TREE_XATTRS_MAX)
        return nova_fail(NOVA_EINVALID, "tree entry '%.*s': %u extended attributes (at most %u)",
                         name_len, e->name, e->xattr_count, NOVA_TREE_XATTRS_MAX);
    if (e->xattr_count > 0 && !e->xattrs)
        return nova_fail(NOVA_EINVALID, "tree entry '%.*s': extended attributes missing",
                         name_len, e->name);
    for (uint32_t i = 0; i < e->xattr_count; i++) {
        const nova_tree_xattr *x = &e->xattrs[i];
        size_t len = bounded_strlen(x->name, NOVA_TREE_XATTR_NAME_MAX);
        if (len == 0 || len > NOVA_TREE_XATTR_NAME_MAX)
            return nova_fail(NOVA_EINVALID,
                             "tree entry '%.*s': extended attribute %u has no name or one over "
                             "%u bytes", name_len, e->name, i, NOVA_TREE_XATTR_NAME_MAX);
        if (x->value_len > NOVA_TREE_XATTR_VALUE_MAX || (x->value_len > 0 && !x->value))
            return nova_fail(NOVA_EINVALID,
                             "tree entry '%.*s': extended attribute '%s' has a bad value "
                             "(%u bytes, at most %u)", name_len, e->name, x->name, x->value_len,
                             NOVA_TREE_XATTR_VALUE_MAX);
    }
    return 0;
}

static int check_type_fields(const nova_tree_entry *e, int name_len)
{
    size_t target_len = bounded_strlen(e->symlink_target, NOVA_TREE_SYMLINK_MAX);

    if ((e->flags & NOVA_TREE_ENTRY_SPARSE) && e->type != NOVA_TREE_FILE)
        return nova_fail(NOVA_EINVALID, "tree entry '%.*s': only regular files can be sparse",
                         name_len, e->name);
    if ((e->type == NOVA_TREE_SYMLINK) != (e->symlink_target != NULL))
        return nova_fail(NOVA_EINVALID,
                         "tree entry '%.*s': a symlink target belongs to symlinks and only them",
                         name_len, e->name);
    if (e->symlink_target && (target_len == 0 || target_len > NOVA_TREE_SYMLINK_MAX))
        return nova_fail(NOVA_EINVALID, "tree entry '%.*s': symlink target empty or over %u bytes",
                         name_len, e->name, NOVA_TREE_SYMLINK_MAX);
    if (e->rdev != 0 && !is_device(e->type))
        return nova_fail(NOVA_EINVALID, "tree entry '%.*s': rdev set on a %s", name_len, e->name,
                         nova_tree_type_name(e->type));
    if (e->chunk_count > 0 && e->type != NOVA_TREE_FILE)
        return nova_fail(NOVA_EINVALID, "tree entry '%.*s': content chunks on a %s", name_len,
                         e->name, nova_tree_type_name(e->type));
    if (e->chunk_count > MAX_CHUNKS || (e->chunk_count > 0 && !e->chunks))
        return nova_fail(NOVA_EINVALID, "tree entry '%.*s': bad chunk list (%llu chunks)",
                         name_len, e->name, (unsigned long long)e->chunk_count);
    if (e->type != NOVA_TREE_DIR && !id_is_zero(&e->subtree))
        return nova_fail(NOVA_EINVALID, "tree entry '%.*s': subtree set on a %s", name_len,
                         e->name, nova_tree_type_name(e->type));
    return 0;
}

int nova_tree_entry_check(const nova_tree_entry *e)
{
    int name_len;
    size_t user_len = bounded_strlen(e->user_name, NOVA_TREE_OWNER_NAME_MAX);
    size_t group_len = bounded_strlen(e->group_name, NOVA_TREE_OWNER_NAME_MAX);

    if (!nova_tree_name_valid(e->name, e->name_len))
        return nova_fail(NOVA_EINVALID, "tree entry name '%.*s' is not a valid file name",
                         e->name ? (int)(e->name_len > 255 ? 255 : e->name_len) : 0,
                         e->name ? e->name : "");
    name_len = (int)e->name_len;
    if (!nova_tree_type_valid(e->type))
        return nova_fail(NOVA_EINVALID, "tree entry '%.*s': unknown type %u", name_len, e->name,
                         (unsigned)e->type);
    if (e->flags & ~NOVA_TREE_ENTRY_FLAGS_KNOWN)
        return nova_fail(NOVA_EINVALID, "tree entry '%.*s': unknown flags 0x%x", name_len, e->name,
                         e->flags);
    if (e->mode & ~NOVA_TREE_MODE_MASK)
        return nova_fail(NOVA_EINVALID, "tree entry '%.*s': mode 0%o has bits beyond 07777",
                         name_len, e->name, e->mode);
    if ((e->user_name && (user_len == 0 || user_len > NOVA_TREE_OWNER_NAME_MAX)) ||
        (e->group_name && (group_len == 0 || group_len > NOVA_TREE_OWNER_NAME_MAX)))
        return nova_fail(NOVA_EINVALID, "tree entry '%.*s': user or group name empty or over %u "
                         "bytes", name_len, e->name, NOVA_TREE_OWNER_NAME_MAX);
    NOVA_TRY(check_type_fields(e, name_len));
    return check_xattrs(e, name_len);
}

int nova_tree_entry_is_hardlink(const nova_tree_entry *e)
{
    return e->type != NOVA_TREE_DIR && e->nlink > 1;
}

nova_tree_hardlink_key nova_tree_entry_hardlink_key(const nova_tree_entry *e)
{
    nova_tree_hardlink_key key = {e->device, e->inode};
    return key;
}

static int optional_string_equal(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int xattrs_equal(const nova_tree_entry *a, const nova_tree_entry *b)
{
    if (a->xattr_count != b->xattr_count)
        return 0;
    for (uint32_t i = 0; i < a->xattr_count; i++) {
        const nova_tree_xattr *x = &a->xattrs[i], *y = &b->xattrs[i];
        if (strcmp(x->name, y->name) != 0 || x->value_len != y->value_len)
            return 0;
        if (x->value_len > 0 && memcmp(x->value, y->value, x->value_len) != 0)
            return 0;
    }
    return 1;
}

int nova_tree_entry_equal(const nova_tree_entry *a, const nova_tree_entry *b)
{
    if (a->name_len != b->name_len || memcmp(a->name, b->name, a->name_len) != 0)
        return 0;
    if (a->type != b->type || a->flags != b->flags || a->mode != b->mode || a->uid != b->uid ||
        a->gid != b->gid || a->size != b->size || a->mtime_ns != b->mtime_ns ||
        a->atime_ns != b->atime_ns || a->ctime_ns != b->ctime_ns || a->inode != b->inode ||
        a->device != b->device || a->nlink != b->nlink || a->rdev != b->rdev)
        return 0;
    if (!optional_string_equal(a->user_name, b->user_name) ||
        !optional_string_equal(a->group_name, b->group_name) ||
        !optional_string_equal(a->symlink_target, b->symlink_target))
        return 0;
    if (!xattrs_equal(a, b) || a->chunk_count != b->chunk_count)
        return 0;
    if (a->chunk_count > 0 &&
        memcmp(a->chunks, b->chunks, (size_t)a->chunk_count * NOVA_ID_LEN) != 0)
        return 0;
    return memcmp(&a->subtree, &b->subtree, sizeof(a->subtree)) == 0;
}

/* ------------------------------------------------------------------ encoding */

static size_t entry_encoded_len(const nova_tree_entry *e)
{
    size_t len = FIXED_ENTRY_LEN + e->name_len;

    if (e->user_name)
        len += 1 + strlen(e->user_name);
    if (e->group_name)
        len += 1 + strlen(e->group_name);
    if (e->xattr_count > 0) {
        len += 2;
        for (uint32_t i = 0; i < e->xattr_count; i++)
            len += 1 + strlen(e->xattrs[i].name) + 4 + e->xattrs[i].value_len;
    }
    switch (e->type) {
    case NOVA_TREE_FILE: len += 4 + (size_t)e->chunk_count * NOVA_ID_LEN; break;
    case NOVA_TREE_DIR: len += NOVA_ID_LEN; break;
    case NOVA_TREE_SYMLINK: len += 2 + strlen(e->symlink_target); break;
    case NOVA_TREE_CHAR:
    case NOVA_TREE_BLOCK: len += 8; break;
    default: break;
    }
    return len;
}

/* Writes into space reserved beforehand, so no bounds checks are needed here. */
typedef struct writer {
    uint8_t *p;
} writer;

static void put_u8(writer *w, unsigned v) { *w->p++ = (uint8_t)v; }
static void put_u16(writer *w, unsigned v) { nova_put_le16(w->p, (uint16_t)v); w->p += 2; }
static void put_u32(writer *w, uint32_t v) { nova_put_le32(w->p, v); w->p += 4; }
static void put_u64(writer *w, uint64_t v) { nova_put_le64(w->p, v); w->p += 8; }
static void put_bytes(writer *w, const void *data, size_t len)
{
    if (len > 0)
        memcpy(w->p, data, len);
    w->p += len;
}
static void put_string8(writer *w, const char *s)
{
    size_t len = strlen(s);
    put_u8(w, (unsigned)len);
    put_bytes(w, s, len);
}

static unsigned wire_flags(const nova_tree_entry *e)
{
    unsigned flags = 0;
    if (e->flags & NOVA_TREE_ENTRY_SPARSE)
        flags |= WIRE_SPARSE;
    if (e->user_name)
        flags |= WIRE_USER_NAME;
    if (e->group_name)
        flags |= WIRE_GROUP_NAME;
    if (e->xattr_count > 0)
        flags |= WIRE_XATTRS;
    return flags;
}

static void encode_entry(writer *w, const nova_tree_entry *e)
{
    put_u8(w, (unsigned)e->name_len);
    put_bytes(w, e->name, e->name_len);
    put_u8(w, (unsigned)e->type);
    put_u8(w, wire_flags(e));
    put_u16(w, e->mode);
    put_u32(w, e->uid);
    put_u32(w, e->gid);
    put_u64(w, e->size);
    put_u64(w, (uint64_t)e->mtime_ns);
    put_u64(w, (uint64_t)e->atime_ns);
    put_u64(w, (uint64_t)e->ctime_ns);
    put_u64(w, e->inode);
    put_u64(w, e->device);
    put_u32(w, e->nlink);
    if (e->user_name)
        put_string8(w, e->user_name);
    if (e->group_name)
        put_string8(w, e->group_name);
    if (e->xattr_count > 0) {
        put_u16(w, e->xattr_count);
        for (uint32_t i = 0; i < e->xattr_count; i++) {
            put_string8(w, e->xattrs[i].name);
            put_u32(w, e->xattrs[i].value_len);
            put_bytes(w, e->xattrs[i].value, e->xattrs[i].value_len);
        }
    }
    switch (e->type) {
    case NOVA_TREE_FILE:
        put_u32(w, (uint32_t)e->chunk_count);
        put_bytes(w, e->chunks, (size_t)e->chunk_count * NOVA_ID_LEN);
        break;
    case NOVA_TREE_DIR: put_bytes(w, e->subtree.bytes, NOVA_ID_LEN); break;
    case NOVA_TREE_SYMLINK: {
        size_t len = strlen(e->symlink_target);
        put_u16(w, (unsigned)len);
        put_bytes(w, e->symlink_target, len);
        break;
    }
    case NOVA_TREE_CHAR:
    case NOVA_TREE_BLOCK: put_u64(w, e->rdev); break;
    default: break;
    }
}

/* ------------------------------------------------------------------ builder arena */

#define ARENA_BLOCK_SIZE (64u * 1024u)

typedef struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t cap;
    alignas(max_align_t) uint8_t data[];
} arena_block;

static void *arena_alloc(arena_block **head, size_t len, size_t align)
{
    arena_block *b = *head;
    size_t start = 0;

    if (b)
        start = (b->used + align - 1) & ~(align - 1);
    if (!b || start > b->cap || len > b->cap - start) {
        size_t cap = len > ARENA_BLOCK_SIZE ? len : ARENA_BLOCK_SIZE;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = *head;
        *head = b;
        start = 0;
    }
    b->used = start + len;
    return b->data + start;
}

static void arena_free_all(arena_block *b)
{
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
}

/* ------------------------------------------------------------------ builder */

struct nova_tree_builder {
    nova_tree_entry *entries;
    size_t count;
    size_t cap;
    const nova_tree_entry **order; /* sorted view used by encode */
    size_t order_cap;
    arena_block *arena;
};

int nova_tree_builder_new(nova_tree_builder **out)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a tree builder");
    return 0;
}

size_t nova_tree_builder_count(const nova_tree_builder *b) { return b->count; }

void nova_tree_builder_reset(nova_tree_builder *b)
{
    b->count = 0;
    if (b->arena) {
        arena_free_all(b->arena->next);
        b->arena->next = NULL;
        b->arena->used = 0;
    }
}

void nova_tree_builder_free(nova_tree_builder *b)
{
    if (!b)
        return;
    arena_free_all(b->arena);
    free(b->entries);
    free(b->order);
    free(b);
}

static const char *copy_string(nova_tree_builder *b, const char *s, size_t len)
{
    char *copy;
    if (!s)
        return NULL;
    copy = arena_alloc(&b->arena, len + 1, 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

static int compare_xattr(const void *a, const void *b)
{
    return strcmp(((const nova_tree_xattr *)a)->name, ((const nova_tree_xattr *)b)->name);
}

static int copy_xattrs(nova_tree_builder *b, nova_tree_entry *copy, const nova_tree_entry *e)
{
    nova_tree_xattr *xattrs;

    if (e->xattr_count == 0) {
        copy->xattrs = NULL;
        return 0;
    }
    xattrs = arena_alloc(&b->arena, e->xattr_count * sizeof(*xattrs), alignof(nova_tree_xattr));
    if (!xattrs)
        return NOVA_ENOMEM;
    for (uint32_t i = 0; i < e->xattr_count; i++) {
        const nova_tree_xattr *x = &e->xattrs[i];
        uint8_t *value = NULL;
        xattrs[i].name = copy_string(b, x->name, strlen(x->name));
        if (x->value_len > 0 && (value = arena_alloc(&b->arena, x->value_len, 1)) != NULL)
            memcpy(value, x->value, x->value_len);
        if (!xattrs[i].name || (x->value_len > 0 && !value))
            return NOVA_ENOMEM;
        xattrs[i].value = value;
        xattrs[i].value_len = x->value_len;
    }
    qsort(xattrs, e->xattr_count, sizeof(*xattrs), compare_xattr);
    for (uint32_t i = 1; i < e->xattr_count; i++)
        if (strcmp(xattrs[i - 1].name, xattrs[i].name) == 0)
            return nova_fail(NOVA_EINVALID, "tree entry '%.*s': extended attribute '%s' appears "
                             "twice", (int)e->name_len, e->name, xattrs[i].name);
    copy->xattrs = xattrs;
    return 0;
}

static int copy_entry(nova_tree_builder *b, nova_tree_entry *copy, const nova_tree_entry *e)
{
    *copy = *e;
    copy->name = copy_string(b, e->name, e->name_len);
    copy->user_name = copy_string(b, e->user_name, e->user_name ? strlen(e->user_name) : 0);
    copy->group_name = copy_string(b, e->group_name, e->group_name ? strlen(e->group_name) : 0);
    copy->symlink_target =
        copy_string(b, e->symlink_target, e->symlink_target ? strlen(e->symlink_target) : 0);
    if (!copy->name || (e->user_name && !copy->user_name) ||
        (e->group_name && !copy->group_name) || (e->symlink_target && !copy->symlink_target))
        return NOVA_ENOMEM;
    copy->chunks = NULL;
    if (e->chunk_count > 0) {
        size_t bytes = (size_t)e->chunk_count * NOVA_ID_LEN;
        nova_id *chunks = arena_alloc(&b->arena, bytes, alignof(nova_id));
        if (!chunks)
            return NOVA_ENOMEM;
        memcpy(chunks, e->chunks, bytes);
        copy->chunks = chunks;
    }
    return copy_xattrs(b, copy, e);
}

int nova_tree_builder_add(nova_tree_builder *b, const nova_tree_entry *entry)
{
    int rc;

    NOVA_TRY(nova_tree_entry_check(entry));
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        nova_tree_entry *grown = realloc(b->entries, cap * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to grow a tree builder to %zu entries", cap);
        b->entries = grown;
        b->cap = cap;
    }
    rc = copy_entry(b, &b->entries[b->count], entry);
    if (rc == NOVA_ENOMEM)
        return nova_fail(NOVA_ENOMEM, "unable to copy tree entry '%.*s'", (int)entry->name_len,
                         entry->name);
    if (rc < 0)
        return rc; /* the arena keeps what was copied; reset or free releases it */
    b->count++;
    return 0;
}

static int compare_entry_ptr(const void *a, const void *b)
{
    const nova_tree_entry *x = *(const nova_tree_entry *const *)a;
    const nova_tree_entry *y = *(const nova_tree_entry *const *)b;
    return nova_tree_name_compare(x->name, x->name_len, y->name, y->name_len);
}

int nova_tree_builder_encode(nova_tree_builder *b, nova_buf *out)
{
    size_t total = NOVA_TREE_HEADER_LEN;
    writer w;

    nova_buf_reset(out);
    if (b->count > b->order_cap) {
        const nova_tree_entry **grown = realloc(b->order, b->count * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to sort a tree of %zu entries", b->count);
        b->order = grown;
        b->order_cap = b->count;
    }
    for (size_t i = 0; i < b->count; i++) {
        b->order[i] = &b->entries[i];
        total += entry_encoded_len(&b->entries[i]);
        if (total > NOVA_TREE_MAX_ENCODED)
            return nova_fail(NOVA_EINVALID, "tree of %zu entries exceeds %u bytes", b->count,
                             NOVA_TREE_MAX_ENCODED);
    }
    if (b->count > 0)
        qsort(b->order, b->count, sizeof(*b->order), compare_entry_ptr);
    for (size_t i = 1; i < b->count; i++)
        if (compare_entry_ptr(&b->order[i - 1], &b->order[i]) == 0)
            return nova_fail(NOVA_EINVALID, "tree entry '%.*s' appears twice",
                             (int)b->order[i]->name_len, b->order[i]->name);
    NOVA_TRY(nova_buf_resize(out, total));
    w.p = out->data;
    put_bytes(&w, NOVA_TREE_MAGIC, 4);
    put_u8(&w, NOVA_TREE_VERSION);
    put_u8(&w, 0);
    put_u16(&w, 0);
    put_u32(&w, (uint32_t)b->count);
    for (size_t i = 0; i < b->count; i++)
        encode_entry(&w, b->order[i]);
    if ((size_t)(w.p - out->data) != total)
        return nova_fail(NOVA_EINTERNAL, "tree encoding wrote %zu bytes, expected %zu",
                         (size_t)(w.p - out->data), total);
    return 0;
}

/* ------------------------------------------------------------------ decoding */

typedef struct decoder {
    nova_reader r;
    const char *what;
    size_t index; /* entry being decoded, for messages */
    uint8_t *arena;
    size_t arena_used;
    size_t arena_cap;
    nova_tree_xattr *xattrs; /* shared by all entries, fixed up at the end */
    size_t xattr_count;
    size_t xattr_cap;
} decoder;

#define CORRUPT(d, ...) decoder_fail((d), __FILE__, __LINE__, __VA_ARGS__)

__attribute__((format(printf, 4, 5))) static int decoder_fail(const decoder *d, const char *file,
                                                              int line, const char *fmt, ...);

static int decoder_fail(const decoder *d, const char *file, int line, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return nova_error_set(NOVA_ECORRUPT, 0, file, line, "tree '%s': entry %zu: %s", d->what,
                          d->index, detail);
}

/* Copies n bytes from the reader into the arena (plus a NUL when terminate is set). */
static const uint8_t *take_bytes(decoder *d, size_t n, int terminate)
{
    const uint8_t *src = nova_read_bytes(&d->r, n);
    uint8_t *dst;

    if (!src || n + (size_t)terminate > d->arena_cap - d->arena_used)
        return NULL;
    dst = d->arena + d->arena_used;
    if (n > 0)
        memcpy(dst, src, n);
    if (terminate)
        dst[n] = '\0';
    d->arena_used += n + (size_t)terminate;
    return dst;
}

/* Reads a string of `len` bytes holding no NUL; NULL when truncated or invalid. */
static const char *take_string(decoder *d, size_t len)
{
    const char *s = (const char *)take_bytes(d, len, 1);
    if (s && memchr(s, '\0', len))
        return NULL;
    return s;
}

static int decode_owner_names(decoder *d, nova_tree_entry *e, unsigned flags)
{
    if (flags & WIRE_USER_NAME) {
        size_t len = nova_read_u8(&d->r);
        if (len == 0 || !(e->user_name = take_string(d, len)))
            return CORRUPT(d, "bad user name");
    }
    if (flags & WIRE_GROUP_NAME) {
        size_t len = nova_read_u8(&d->r);
        if (len == 0 || !(e->group_name = take_string(d, len)))
            return CORRUPT(d, "bad group name");
    }
    return 0;
}

static int reserve_xattrs(decoder *d, size_t extra)
{
    size_t cap;
    nova_tree_xattr *grown;

    if (d->xattr_count + extra <= d->xattr_cap)
        return 0;
    cap = d->xattr_cap ? d->xattr_cap : 16;
    while (cap < d->xattr_count + extra)
        cap *= 2;
    grown = realloc(d->xattrs, cap * sizeof(*grown));
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "tree '%s': unable to hold %zu extended attributes", d->what,
                         cap);
    d->xattrs = grown;
    d->xattr_cap = cap;
    return 0;
}

static int decode_xattrs(decoder *d, nova_tree_entry *e)
{
    uint32_t count = nova_read_le16(&d->r);

    /* Smallest attribute: 1-byte name length, 1-byte name, 4-byte value length. */
    if (d->r.failed || count == 0 || count > NOVA_TREE_XATTRS_MAX || count > d->r.left / 6)
        return CORRUPT(d, "bad extended attribute count %u", count);
    NOVA_TRY(reserve_xattrs(d, count));
    for (uint32_t i = 0; i < count; i++) {
        nova_tree_xattr *x = &d->xattrs[d->xattr_count + i];
        size_t name_len = nova_read_u8(&d->r);
        if (name_len == 0 || !(x->name = take_string(d, name_len)))
            return CORRUPT(d, "extended attribute %u: bad name", i);
        if (i > 0 && strcmp(x[-1].name, x->name) >= 0)
            return CORRUPT(d, "extended attribute '%s' out of order or repeated", x->name);
        x->value_len = nova_read_le32(&d->r);
        if (d->r.failed || x->value_len > NOVA_TREE_XATTR_VALUE_MAX ||
            !(x->value = take_bytes(d, x->value_len, 0)))
            return CORRUPT(d, "extended attribute '%s': bad value length %u", x->name,
                           x->value_len);
    }
    e->xattr_count = count;
    d->xattr_count += count;
    return 0;
}

static int decode_type_fields(decoder *d, nova_tree_entry *e)
{
    switch (e->type) {
    case NOVA_TREE_FILE: {
        uint32_t count = nova_read_le32(&d->r);
        if (d->r.failed || count > d->r.left / NOVA_ID_LEN)
            return CORRUPT(d, "chunk count %u exceeds the remaining bytes", count);
        e->chunks = (const nova_id *)take_bytes(d, (size_t)count * NOVA_ID_LEN, 0);
        e->chunk_count = count;
        if (!e->chunks)
            return CORRUPT(d, "chunk list truncated");
        if (count == 0)
            e->chunks = NULL;
        return 0;
    }
    case NOVA_TREE_DIR:
        if (nova_read_copy(&d->r, e->subtree.bytes, NOVA_ID_LEN) != 0)
            return CORRUPT(d, "subtree id truncated");
        return 0;
    case NOVA_TREE_SYMLINK: {
        size_t len = nova_read_le16(&d->r);
        if (d->r.failed || len == 0 || len > NOVA_TREE_SYMLINK_MAX ||
            !(e->symlink_target = take_string(d, len)))
            return CORRUPT(d, "bad symlink target (%zu bytes)", len);
        return 0;
    }
    case NOVA_TREE_CHAR:
    case NOVA_TREE_BLOCK:
        e->rdev = nova_read_le64(&d->r);
        return d->r.failed ? CORRUPT(d, "rdev truncated") : 0;
    default: return 0;
    }
}

static int decode_entry(decoder *d, nova_tree_entry *e, const nova_tree_entry *prev)
{
    unsigned flags, type;
    size_t name_len = nova_read_u8(&d->r);

    memset(e, 0, sizeof(*e));
    if (d->r.failed)
        return CORRUPT(d, "truncated");
    e->name = take_string(d, name_len);
    if (!e->name || !nova_tree_name_valid(e->name, name_len))
        return CORRUPT(d, "missing or invalid name");
    e->name_len = name_len;
    if (prev && nova_tree_name_compare(prev->name, prev->name_len, e->name, name_len) >= 0)
        return CORRUPT(d, "name '%s' out of order or repeated", e->name);
    type = nova_read_u8(&d->r);
    flags = nova_read_u8(&d->r);
    e->mode = nova_read_le16(&d->r);
    e->uid = nova_read_le32(&d->r);
    e->gid = nova_read_le32(&d->r);
    e->size = nova_read_le64(&d->r);
    e->mtime_ns = (int64_t)nova_read_le64(&d->r);
    e->atime_ns = (int64_t)nova_read_le64(&d->r);
    e->ctime_ns = (int64_t)nova_read_le64(&d->r);
    e->inode = nova_read_le64(&d->r);
    e->device = nova_read_le64(&d->r);
    e->nlink = nova_read_le32(&d->r);
    if (d->r.failed)
        return CORRUPT(d, "'%s': fixed fields truncated", e->name);
    if (!nova_tree_type_valid(type))
        return CORRUPT(d, "'%s': unknown type %u", e->name, type);
    e->type = (nova_tree_type)type;
    if ((flags & ~WIRE_KNOWN) || ((flags & WIRE_SPARSE) && e->type != NOVA_TREE_FILE))
        return CORRUPT(d, "'%s': bad flags 0x%02x", e->name, flags);
    if (e->mode & ~NOVA_TREE_MODE_MASK)
        return CORRUPT(d, "'%s': mode 0%o has bits beyond 07777", e->name, e->mode);
    if (flags & WIRE_SPARSE)
        e->flags |= NOVA_TREE_ENTRY_SPARSE;
    NOVA_TRY(decode_owner_names(d, e, flags));
    if (flags & WIRE_XATTRS)
        NOVA_TRY(decode_xattrs(d, e));
    return decode_type_fields(d, e);
}

static int decode_header(decoder *d, uint32_t *count)
{
    const uint8_t *magic = nova_read_bytes(&d->r, 4);
    unsigned version = nova_read_u8(&d->r);
    unsigned reserved = nova_read_u8(&d->r);
    unsigned reserved2 = nova_read_le16(&d->r);

    *count = nova_read_le32(&d->r);
    if (d->r.failed)
        return nova_fail(NOVA_ECORRUPT, "tree '%s': header truncated", d->what);
    if (memcmp(magic, NOVA_TREE_MAGIC, 4) != 0)
        return nova_fail(NOVA_ECORRUPT, "tree '%s': bad magic (not a tree)", d->what);
    if (version != NOVA_TREE_VERSION)
        return nova_fail(NOVA_EVERSION, "tree '%s': format version %u (this nova reads %u)",
                         d->what, version, NOVA_TREE_VERSION);
    if (reserved != 0 || reserved2 != 0)
        return nova_fail(NOVA_ECORRUPT, "tree '%s': reserved header bytes are not zero", d->what);
    if (*count > d->r.left / NOVA_TREE_MIN_ENTRY_LEN)
        return nova_fail(NOVA_ECORRUPT, "tree '%s': %u entries cannot fit in %zu bytes", d->what,
                         *count, d->r.left);
    return 0;
}

/* One block: the tree, its entries, then the arena. */
static nova_tree *allocate_tree(size_t count, size_t arena_len, uint8_t **arena)
{
    size_t head = (sizeof(nova_tree) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    size_t entries = count * sizeof(nova_tree_entry);
    nova_tree *tree = malloc(head + entries + arena_len + 1);

    if (!tree)
        return NULL;
    tree->entries = (nova_tree_entry *)((uint8_t *)tree + head);
    tree->count = count;
    tree->xattr_storage = NULL;
    *arena = (uint8_t *)tree + head + entries;
    return tree;
}

int nova_tree_decode(nova_tree **out, const void *data, size_t len, const char *what)
{
    decoder d;
    uint32_t count;
    nova_tree *tree = NULL;
    size_t next_xattr = 0;
    int rc;

    *out = NULL;
    memset(&d, 0, sizeof(d));
    d.what = what ? what : "tree";
    if (!data && len > 0)
        return nova_fail(NOVA_EINVALID, "tree '%s': no data", d.what);
    if (len > NOVA_TREE_MAX_ENCODED)
        return nova_fail(NOVA_ECORRUPT, "tree '%s': %zu bytes exceeds the limit of %u", d.what,
                         len, NOVA_TREE_MAX_ENCODED);
    d.r = nova_reader_make(data, len);
    NOVA_TRY(decode_header(&d, &count));
    tree = allocate_tree(count, len, &d.arena);
    if (!tree)
        return nova_fail(NOVA_ENOMEM, "tree '%s': unable to allocate %u entries", d.what, count);
    d.arena_cap = len;
    for (d.index = 0; d.index < count; d.index++) {
        const nova_tree_entry *prev = d.index > 0 ? &tree->entries[d.index - 1] : NULL;
        rc = decode_entry(&d, &tree->entries[d.index], prev);
        if (rc < 0)
            goto out;
    }
    if (d.r.left != 0) {
        rc = nova_fail(NOVA_ECORRUPT, "tree '%s': %zu bytes after the last entry", d.what,
                       d.r.left);
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        nova_tree_entry *e = &tree->entries[i];
        if (e->xattr_count > 0) {
            e->xattrs = d.xattrs + next_xattr;
            next_xattr += e->xattr_count;
        }
    }
    tree->xattr_storage = d.xattrs;
    d.xattrs = NULL;
    *out = tree;
    tree = NULL;
    rc = 0;
out:
    free(d.xattrs);
    free(tree);
    return rc;
}

void nova_tree_free(nova_tree *tree)
{
    if (!tree)
        return;
    free(tree->xattr_storage);
    free(tree);
}

const nova_tree_entry *nova_tree_find(const nova_tree *tree, const char *name, size_t name_len)
{
    size_t lo = 0, hi = tree->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const nova_tree_entry *e = &tree->entries[mid];
        int c = nova_tree_name_compare(e->name, e->name_len, name, name_len);
        if (c == 0)
            return e;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
