/*
 * tree.h -- TREE blobs: the metadata of one directory of a snapshot (private).
 *
 * A snapshot's file tree is a hierarchy of TREE blobs, one per directory. Each blob lists
 * the directory's entries sorted bytewise by name; a directory entry names the tree of
 * its subdirectory, a regular file lists the chunk ids of its content. Byte layout:
 * docs/format-tree.md. A tree's id is HMAC-SHA-256(id key, encoded bytes), like a chunk's.
 *
 * Invariants:
 *   - the encoding is canonical: nova_tree_decode accepts exactly the byte strings that
 *     nova_tree_builder_encode produces, so decode followed by encode gives back the same
 *     bytes (and the same id); anything else is NOVA_ECORRUPT;
 *   - a decoded tree is one allocation for the entries and their strings and chunk lists,
 *     plus one for the extended attributes when there are any: no allocation per entry;
 *   - every string in an entry is NUL-terminated and holds no NUL byte;
 *   - fields that do not belong to an entry's type are zero / NULL (rdev outside devices,
 *     symlink_target outside symlinks, chunks outside regular files, subtree outside
 *     directories, the sparse flag outside regular files).
 *
 * Hard links: an entry that is not a directory and has nlink > 1 belongs to the hard-link
 * group identified by its (device, inode) pair. Within one snapshot, entries in any of its
 * trees with the same pair were the same file when the backup ran: restore writes the
 * first one and links the others to it (nova_tree_entry_hardlink_key).
 */
#ifndef NOVA_REPO_TREE_H
#define NOVA_REPO_TREE_H

#include "common/buf.h"
#include "primitives/codec.h"
#include "primitives/hash.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_TREE_MAGIC "NVTR"
#define NOVA_TREE_VERSION 1
#define NOVA_TREE_HEADER_LEN 12

/* Limits the decoder enforces and the builder refuses to exceed. */
#define NOVA_TREE_NAME_MAX 255          /* entry name bytes */
#define NOVA_TREE_OWNER_NAME_MAX 255    /* user and group name bytes */
#define NOVA_TREE_SYMLINK_MAX 4095      /* symlink target bytes (PATH_MAX - 1) */
#define NOVA_TREE_XATTR_NAME_MAX 255    /* XATTR_NAME_MAX */
#define NOVA_TREE_XATTR_VALUE_MAX 65536 /* XATTR_SIZE_MAX */
#define NOVA_TREE_XATTRS_MAX 4096       /* attributes per entry */
#define NOVA_TREE_MODE_MASK 07777u      /* permission bits incl. setuid, setgid, sticky */
/* Largest encoded tree: one blob, which the codec caps. About 600,000 entries with short
 * names, or one file of 2 million chunks. */
#define NOVA_TREE_MAX_ENCODED NOVA_CODEC_MAX_RAW
/* Smallest encoded entry: a one-byte name and the fixed fields, nothing optional. */
#define NOVA_TREE_MIN_ENTRY_LEN 66

/* Wire values are the enum values. */
typedef enum nova_tree_type {
    NOVA_TREE_FILE = 1,    /* regular file: chunks */
    NOVA_TREE_DIR = 2,     /* directory: subtree */
    NOVA_TREE_SYMLINK = 3, /* symbolic link: symlink_target */
    NOVA_TREE_FIFO = 4,
    NOVA_TREE_CHAR = 5,  /* character device: rdev */
    NOVA_TREE_BLOCK = 6, /* block device: rdev */
    NOVA_TREE_SOCKET = 7,
} nova_tree_type;

/* nova_tree_entry.flags */
#define NOVA_TREE_ENTRY_SPARSE 0x1u /* regular file with holes: restore keeps them */
#define NOVA_TREE_ENTRY_FLAGS_KNOWN NOVA_TREE_ENTRY_SPARSE

typedef struct nova_tree_xattr {
    const char *name;     /* 1..NOVA_TREE_XATTR_NAME_MAX bytes, e.g. "user.comment" */
    const uint8_t *value; /* may be NULL when value_len is 0 */
    uint32_t value_len;   /* 0..NOVA_TREE_XATTR_VALUE_MAX */
} nova_tree_xattr;

typedef struct nova_tree_entry {
    const char *name;      /* 1..255 bytes, no '/', no NUL, not "." or ".." */
    size_t name_len;       /* strlen(name) */
    nova_tree_type type;
    uint32_t flags;        /* NOVA_TREE_ENTRY_* */
    uint32_t mode;         /* permission bits only (& NOVA_TREE_MODE_MASK) */
    uint32_t uid;
    uint32_t gid;
    const char *user_name;  /* NULL when unknown; else 1..255 bytes */
    const char *group_name; /* NULL when unknown; else 1..255 bytes */
    uint64_t size;          /* st_size */
    int64_t mtime_ns;       /* ns since the Unix epoch */
    int64_t atime_ns;
    int64_t ctime_ns;
    uint64_t inode;
    uint64_t device;        /* st_dev of the file system holding the entry */
    uint32_t nlink;
    uint64_t rdev;          /* character and block devices only */
    const char *symlink_target;     /* symlinks only: 1..4095 bytes */
    const nova_tree_xattr *xattrs;  /* sorted by name, names unique */
    uint32_t xattr_count;
    const nova_id *chunks;  /* regular files only: the content, in order */
    uint64_t chunk_count;
    nova_id subtree;        /* directories only: id of the subdirectory's tree */
} nova_tree_entry;

/* A decoded tree. entries and everything they point to live until nova_tree_free. */
typedef struct nova_tree {
    nova_tree_entry *entries; /* sorted by name, names unique */
    size_t count;
    nova_tree_xattr *xattr_storage; /* private */
} nova_tree;

/* ---- entry helpers ---- */

/* Zeroes an entry (a valid starting point: fill name, type and what applies). */
void nova_tree_entry_init(nova_tree_entry *entry);
/* 1 for a type this version knows. */
int nova_tree_type_valid(unsigned type);
/* "file", "dir", "symlink", "fifo", "chardev", "blockdev", "socket" or "unknown". */
const char *nova_tree_type_name(unsigned type);
/* 1 when name[0..len) may name an entry: 1..255 bytes, no '/', no NUL, not "." or "..". */
int nova_tree_name_valid(const char *name, size_t len);
/* Checks an entry against every rule the decoder enforces, except the order of names in a
 * tree and the order and uniqueness of attribute names (the builder establishes those);
 * NOVA_EINVALID with a message naming the entry otherwise. */
int nova_tree_entry_check(const nova_tree_entry *entry);
/* 1 when the entry belongs to a hard-link group (not a directory, nlink > 1). */
int nova_tree_entry_is_hardlink(const nova_tree_entry *entry);
/* The hard-link group of an entry: its (device, inode) pair. Only meaningful when
 * nova_tree_entry_is_hardlink, and only within one snapshot. */
typedef struct nova_tree_hardlink_key {
    uint64_t device;
    uint64_t inode;
} nova_tree_hardlink_key;
nova_tree_hardlink_key nova_tree_entry_hardlink_key(const nova_tree_entry *entry);
/* Deep comparison of every field; 1 when equal. */
int nova_tree_entry_equal(const nova_tree_entry *a, const nova_tree_entry *b);
/* Bytewise name order (memcmp, then the shorter first): <0, 0, >0. */
int nova_tree_name_compare(const char *a, size_t a_len, const char *b, size_t b_len);

/* ---- building and encoding ---- */

typedef struct nova_tree_builder nova_tree_builder;

int nova_tree_builder_new(nova_tree_builder **out);
/* Checks the entry (nova_tree_entry_check) and copies it with everything it points to,
 * so the caller's buffers may be reused at once. Extended attributes are sorted;
 * duplicate attribute names give NOVA_EINVALID. Entries may come in any order. */
int nova_tree_builder_add(nova_tree_builder *builder, const nova_tree_entry *entry);
size_t nova_tree_builder_count(const nova_tree_builder *builder);
/* Sorts the entries by name and writes the encoding into out (reset first).
 * Duplicate names give NOVA_EINVALID; a tree over NOVA_TREE_MAX_ENCODED bytes gives
 * NOVA_EINVALID. The builder keeps its entries; encoding twice gives the same bytes. */
int nova_tree_builder_encode(nova_tree_builder *builder, nova_buf *out);
/* Forgets all entries but keeps the memory, for the next directory. */
void nova_tree_builder_reset(nova_tree_builder *builder);
void nova_tree_builder_free(nova_tree_builder *builder);

/* ---- decoding ---- */

/* Decodes and validates an encoded tree. Anything malformed gives NOVA_ECORRUPT with a
 * message naming `what` (e.g. the tree id) and the entry. *out is NULL on failure. */
int nova_tree_decode(nova_tree **out, const void *data, size_t len, const char *what);
void nova_tree_free(nova_tree *tree);
/* Binary search by name; NULL when absent. */
const nova_tree_entry *nova_tree_find(const nova_tree *tree, const char *name, size_t name_len);

#endif
