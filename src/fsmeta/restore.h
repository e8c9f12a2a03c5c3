/*
 * restore.h -- the file-system side of restore: safe paths, creating entries, applying
 * metadata, sparse-aware writing (private).
 *
 * Safety model. A restore writes below a target directory that other people may be able
 * to write into (a shared staging area, an existing tree). Nothing here resolves a path
 * string below the target: the caller opens the target once (nova_fsmeta_open_target),
 * then walks down one component at a time with openat(O_NOFOLLOW | O_DIRECTORY)
 * (nova_fsmeta_open_dir_at, nova_fsmeta_open_parent), and creates every entry relative to
 * its parent's descriptor with calls that never follow a final symlink (O_CREAT|O_EXCL,
 * mkdirat, symlinkat, mknodat, linkat without AT_SYMLINK_FOLLOW). A symlink planted
 * anywhere in the target therefore makes the walk fail instead of redirecting a write
 * outside the target, and an existing entry is never replaced (NOVA_EEXISTS). Names are
 * checked first: empty, ".", "..", and anything holding '/' or NUL are refused.
 * Metadata is applied through a descriptor of the object itself (an O_PATH handle for
 * symlinks, devices and sockets), after checking that its type is the one restored, so
 * an entry swapped after creation is refused rather than chown'ed or chmod'ed.
 *
 * Order. For each entry: create it, write content (regular files), then apply metadata:
 * owner, extended attributes, mode, times. A directory's metadata is applied after all of
 * its children are written, because creating a child changes the directory's mtime and
 * its final mode may forbid writing into it; the caller orders that (depth-first,
 * post-order). Directories and files are created with owner-only modes, so nobody else
 * can use them before their final mode is set.
 */
#ifndef NOVA_FSMETA_RESTORE_H
#define NOVA_FSMETA_RESTORE_H

#include "common/buf.h"
#include "fsmeta/ids.h"
#include "repo/tree.h"

#include <stddef.h>
#include <stdint.h>

/* ---- names and paths ---- */

/* 1 when name is one path component that is safe to create below a directory:
 * nova_tree_name_valid (1..255 bytes, no '/' or NUL, not "." or ".."). */
int nova_fsmeta_name_safe(const char *name);

/* Writes base "/" relative (NUL-terminated) into out, after checking that relative cannot
 * leave base: not empty, not absolute, every component nova_fsmeta_name_safe (no "..",
 * no ".", no empty component). NOVA_EINVALID otherwise. For messages and for path-based
 * calls on trusted trees; writes go through the descriptor walk below. */
int nova_fsmeta_join(nova_buf *out, const char *base, const char *relative);

/* ---- directory descriptors ---- */

/* Opens the restore target (symlinks in this path are followed: the user chose it);
 * with create, makes its last component first (mode 0700) when missing. */
int nova_fsmeta_open_target(int *out_fd, const char *path, int create);

/* Opens the directory `name` below parent_fd without following a symlink; with create,
 * makes it first (mode 0700) when missing. An existing non-directory or symlink gives
 * NOVA_EEXISTS. The descriptor is O_RDONLY, usable for *at calls and nova_fsmeta_apply. */
int nova_fsmeta_open_dir_at(int *out_fd, int parent_fd, const char *name, int create);

/* Walks `relative` ("a/b/c") below root_fd with nova_fsmeta_open_dir_at and returns the
 * descriptor of its parent directory ("a/b") and, in *leaf, a pointer to its last
 * component inside relative ("c"). With create_dirs, missing directories are made. */
int nova_fsmeta_open_parent(int *out_fd, const char **leaf, int root_fd, const char *relative,
                            int create_dirs);

/* ---- creating entries ---- */

/* Creates a new empty regular file, mode 0600, open for writing. Never follows or
 * replaces an existing entry (NOVA_EEXISTS). */
int nova_fsmeta_create_file(int *out_fd, int dir_fd, const char *name);

/* Creates entry->name below dir_fd as a directory (mode 0700), symlink (to
 * symlink_target), fifo, character or block device (rdev) or socket node (0600).
 * Regular files go through nova_fsmeta_create_file. An existing entry gives NOVA_EEXISTS;
 * devices need privilege (NOVA_EACCESS otherwise). */
int nova_fsmeta_create_node(int dir_fd, const nova_tree_entry *entry);

/* Makes `name` below dir_fd a hard link to `target_name` below target_dir_fd (restore of
 * a hard-link group: see nova_tree_entry_hardlink_key). A symlink target is linked
 * itself, never followed. */
int nova_fsmeta_link_at(int target_dir_fd, const char *target_name, int dir_fd,
                        const char *name);

/* ---- metadata ---- */

#define NOVA_FSMETA_APPLY_OWNER 0x1u
#define NOVA_FSMETA_APPLY_XATTRS 0x2u
#define NOVA_FSMETA_APPLY_MODE 0x4u
#define NOVA_FSMETA_APPLY_TIMES 0x8u
#define NOVA_FSMETA_APPLY_ALL 0xfu

/* A step that could not be applied here but need not fail the restore: owner change
 * refused (not root), an attribute namespace not allowed or not supported. */
typedef void (*nova_fsmeta_warning_cb)(const char *name, int code, const char *message,
                                       void *payload);

typedef struct nova_fsmeta_apply_opts {
    unsigned version;          /* 1 */
    unsigned what;             /* NOVA_FSMETA_APPLY_* */
    int numeric_ids;           /* ignore user/group names, use the numbers */
    nova_fsmeta_ids *ids;      /* name look-ups; NULL also means numeric ids */
    nova_fsmeta_warning_cb on_warning; /* NULL: warnings are dropped */
    void *payload;
} nova_fsmeta_apply_opts;

#define NOVA_FSMETA_APPLY_OPTS_INIT {1, NOVA_FSMETA_APPLY_ALL, 0, NULL, NULL, NULL}

/*
 * Applies entry's metadata to entry->name below dir_fd, in this order:
 *   1. owner (lchown semantics): as root, uid and gid (by name when the names resolve
 *      here and numeric_ids is off); as the user who is the entry's owner, the group
 *      only; otherwise left alone. A refusal is a warning.
 *   2. extended attributes (before the mode, because a read-only mode would forbid
 *      setting user.* attributes for a non-root owner; a POSIX ACL set here keeps its
 *      mask through the chmod, since the group bits of the recorded mode are that mask).
 *      Refused or unsupported namespaces are warnings. Attributes are added, never
 *      removed: the object is expected to be new.
 *   3. mode (not for symlinks), including setuid/setgid/sticky: after the owner change,
 *      which clears them.
 *   4. atime and mtime (ctime cannot be set).
 * fd, when >= 0, is an open descriptor of the object (not O_PATH), e.g. the file just
 * written; otherwise a handle is opened without following symlinks. Either way the
 * object's type must match entry->type (NOVA_EEXISTS otherwise).
 */
int nova_fsmeta_apply(int dir_fd, int fd, const nova_tree_entry *entry,
                      const nova_fsmeta_apply_opts *opts);

/* ---- writing content ---- */

#define NOVA_FSMETA_SPARSE_BLOCK 4096

/* pwrite()s all of data at offset (retrying short writes and EINTR). */
int nova_fsmeta_write_at(int fd, uint64_t offset, const void *data, size_t len,
                         const char *what);

/*
 * Like nova_fsmeta_write_at, but skips every all-zero piece of each 4 KiB block (blocks
 * aligned to file offsets), so holes stay holes. Only correct on a file that was created
 * empty and where each range is written once (skipped bytes must read as zero): exactly
 * the case of nova_fsmeta_create_file. Finish with nova_fsmeta_finish_sparse.
 */
int nova_fsmeta_write_sparse(int fd, uint64_t offset, const void *data, size_t len,
                             const char *what);

/* Sets the final size with ftruncate, which also creates a trailing hole. */
int nova_fsmeta_finish_sparse(int fd, uint64_t size, const char *what);

#endif
