/*
 * restore_support.h -- helpers for the restore tests: a small, single-threaded snapshot
 * writer that follows the format exactly (root tree = "/", a backed-up path /a/b appears
 * as directories a -> b, files as chunk lists cut by the repository's chunker, metadata
 * from src/fsmeta), plus file-tree builders and comparers.
 *
 * It stands in for the backup engine so restore can be tested on its own; it is not
 * meant to be fast.
 */
#ifndef NOVA_TEST_RESTORE_SUPPORT_H
#define NOVA_TEST_RESTORE_SUPPORT_H

#include "api/handle.h"
#include "repo/pack.h"
#include "repo/snapshot.h"

#include <stddef.h>
#include <stdint.h>

/* A repository in a fresh directory below $NOVA_TEST_TMP (fast KDF), with `threads`
 * workers. *location_out (may be NULL) receives its path (malloc'd). Aborts on failure. */
nova_repository *restore_test_repo(const char *tag, unsigned threads, char **location_out);

/* Backs up one absolute path as a snapshot started at start_ns (0 = now) with the given
 * status; *snapshot_id gets its id. Returns 0 or a NOVA_E code. */
int restore_test_backup(nova_repository *repo, const char *path, int64_t start_ns,
                        nova_snapshot_status status, nova_id *snapshot_id);

/* Writes a snapshot whose root tree is exactly the given bytes (a crafted tree), stored
 * as a TREE blob; the other blobs (may be none; types[i] each) are stored first. */
int restore_test_snapshot_from_tree(nova_repository *repo, const void *tree, size_t tree_len,
                                    const nova_blob_type *types, const void *const *blobs,
                                    const size_t *blob_lens, size_t blob_count,
                                    nova_id *snapshot_id);

/* The id of a data blob as the repository computes it. */
void restore_test_chunk_id(nova_repository *repo, nova_id *out, const void *data, size_t len);

/* Path of a pack file holding blob `id` in the repository at location (malloc'd) and the
 * offset of the blob in it. Aborts when the blob is in no index. */
char *restore_test_pack_of(nova_repository *repo, const char *location, const nova_id *id,
                           uint32_t *offset, uint32_t *length);

/* Writes len bytes of data to path (created or truncated, mode 0644). Aborts on failure. */
/* Reads a whole file (malloc'd); *len gets its size. NULL when it cannot be read. */
uint8_t *restore_test_read_file(const char *path, size_t *len);

/* Compares two trees recursively: types, content (byte for byte), symlink targets, mode,
 * uid/gid, mtime (ns; directories and non-symlinks), xattrs (user.*), sizes and, for
 * hard links, that entries sharing an inode in `a` share one in `b`. Returns 0 when
 * equal; otherwise prints the first difference to stderr and returns -1. */
int restore_test_compare_trees(const char *a, const char *b);

#endif
