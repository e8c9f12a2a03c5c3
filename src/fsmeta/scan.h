/*
 * scan.h -- reading file-system metadata into tree entries, listing directories in tree
 * order, and detecting files that change while they are read (private).
 *
 * The backup side of src/fsmeta. A scanner owns reusable buffers, so scanning a directory
 * of 10,000 entries allocates nothing per entry once the buffers have grown; the strings
 * an entry points to (name, owner names, symlink target, extended attributes) live in the
 * scanner until its next nova_fsmeta_stat call. Copy the entry into a tree builder
 * (nova_tree_builder_add deep-copies) before scanning the next one.
 *
 * Nothing here follows a symlink: entries are lstat'ed, attributes read with the l*xattr
 * calls, and nova_fsmeta_open_file refuses symlinks.
 *
 * Not thread-safe: use one scanner per thread.
 */
#ifndef NOVA_FSMETA_SCAN_H
#define NOVA_FSMETA_SCAN_H

#include "repo/tree.h"

#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/* nova_fsmeta_scanner_new flags */
#define NOVA_FSMETA_SCAN_NO_XATTRS 0x1u   /* do not read extended attributes */
#define NOVA_FSMETA_SCAN_NUMERIC_IDS 0x2u /* do not look up user and group names */

typedef struct nova_fsmeta_scanner nova_fsmeta_scanner;

int nova_fsmeta_scanner_new(nova_fsmeta_scanner **out, unsigned flags);
void nova_fsmeta_scanner_free(nova_fsmeta_scanner *scanner);

/*
 * lstat()s path and fills *out: type, mode, uid/gid and their names, size, times (ns),
 * inode, device, nlink, rdev for devices, the target of a symlink (readlink), extended
 * attributes of every namespace the caller may read (sorted; a file system without them,
 * ENOTSUP, gives none) and the sparse flag (st_blocks * 512 < st_size).
 * `name` becomes out->name; NULL takes the last component of path. The content fields
 * (chunks, subtree) stay empty: the caller fills them.
 * Errors: NOVA_ENOTFOUND when the path vanished, NOVA_EACCESS, NOVA_EUNSUPPORTED for a
 * file type trees cannot hold, NOVA_EIO otherwise; the message names the path.
 */
int nova_fsmeta_stat(nova_fsmeta_scanner *scanner, nova_tree_entry *out, const char *path,
                     const char *name);

/* Fills the stat-derived fields of *out (everything but name, owner names, symlink target
 * and attributes); NOVA_EUNSUPPORTED for an unknown file type. */
int nova_fsmeta_entry_from_stat(nova_tree_entry *out, const struct stat *st, const char *path);

/* ns since the epoch, saturated to the int64 range. */
int64_t nova_fsmeta_timespec_ns(const struct timespec *ts);
/* The inverse, for any int64 (tv_nsec always in 0..999999999). */
struct timespec nova_fsmeta_ns_timespec(int64_t ns);

/* ---- directories ---- */

/* Entry names of one directory, sorted bytewise (tree order), without "." and "..".
 * Zero-initialise (NOVA_FSMETA_DIR_LIST_INIT); reuse across directories to keep memory. */
typedef struct nova_fsmeta_dir_list {
    const char **names;
    size_t count;
    /* private */
    char *storage;
    size_t storage_len, storage_cap;
    size_t names_cap;
} nova_fsmeta_dir_list;

#define NOVA_FSMETA_DIR_LIST_INIT {NULL, 0, NULL, 0, 0, 0}

/* Lists path (which must be a directory, not a symlink to one). Replaces the list's
 * contents. Failure to open or read the directory is returned (the list is then empty). */
int nova_fsmeta_list_dir(nova_fsmeta_dir_list *list, const char *path);
void nova_fsmeta_dir_list_free(nova_fsmeta_dir_list *list);

/* Called for each entry that could be read; the entry is valid during the call only. A
 * negative return stops the scan with that code. */
typedef int (*nova_fsmeta_entry_cb)(const nova_tree_entry *entry, const char *path,
                                    void *payload);
/* Called for each entry that could not be read (vanished, permission denied, a name or
 * type a tree cannot hold); code is the NOVA_E... value and message the detail. Return 0
 * to go on with the next entry, or a negative code to stop the scan with it. Running out
 * of memory always stops the scan without a call. */
typedef int (*nova_fsmeta_error_cb)(const char *path, int code, const char *message,
                                    void *payload);

/* Lists dir_path and stats its entries in name order, calling on_entry or on_error for
 * each. Returns 0, the error of listing the directory itself, or the negative value a
 * callback returned. With on_error NULL the first unreadable entry stops the scan with
 * its error. Recursing from on_entry with the same scanner is fine, but it reuses the
 * scanner's buffers: add the entry to its tree builder before recursing. */
int nova_fsmeta_scan_dir(nova_fsmeta_scanner *scanner, const char *dir_path,
                         nova_fsmeta_entry_cb on_entry, nova_fsmeta_error_cb on_error,
                         void *payload);

/* ---- reading content ---- */

/* Opens a regular file for reading without following a symlink and, where permitted,
 * without updating its atime (O_NOATIME). */
int nova_fsmeta_open_file(int *out_fd, const char *path);

/* ---- change detection ---- */

#define NOVA_FSMETA_CHANGED_SIZE 0x01u
#define NOVA_FSMETA_CHANGED_MTIME 0x02u
#define NOVA_FSMETA_CHANGED_CTIME 0x04u
#define NOVA_FSMETA_CHANGED_INODE 0x08u /* inode or device: another file now */
#define NOVA_FSMETA_CHANGED_TYPE 0x10u
#define NOVA_FSMETA_CHANGED_MODE 0x20u

/*
 * "File changed while read": compares the entry captured before reading with an fstat of
 * the open file taken after reading. Returns 0 when size, mtime, ctime, inode, device and
 * type all match, else the NOVA_FSMETA_CHANGED_* bits of what differs. Call it with the
 * fstat taken right after opening as well, to catch a file replaced between the scan and
 * the open.
 */
unsigned nova_fsmeta_changed_since(const nova_tree_entry *before, const struct stat *after);

/*
 * Incremental change detection: compares a file's entry in the parent snapshot with its
 * current entry. 0 means the parent's content (chunk list) may be reused without reading
 * the file: type, mode, size, mtime, ctime, inode and device all match.
 */
unsigned nova_fsmeta_entry_changed(const nova_tree_entry *parent, const nova_tree_entry *current);

#endif
