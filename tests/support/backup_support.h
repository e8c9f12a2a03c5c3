/*
 * backup_support.h -- helpers for the backup engine's tests: repositories with a fast
 * KDF, a backup call that records the file errors it reports, and a verifier that walks
 * a snapshot's trees and compares them, content and metadata, with the file system.
 */
#ifndef NOVA_TEST_BACKUP_SUPPORT_H
#define NOVA_TEST_BACKUP_SUPPORT_H

#include "api/handle.h"
#include "nova/backup.h"

#include <stddef.h>
#include <stdint.h>

#define BT_PASSPHRASE "backup test passphrase"

/* A new repository under $NOVA_TEST_TMP with `threads` workers (0 = cores); the location
 * (malloc'd) goes to *location when not NULL. Aborts on failure. */
nova_repository *bt_repo(const char *tag, unsigned threads, char **location);
/* Opens the repository at location again, with `threads` workers. Aborts on failure. */
nova_repository *bt_open(const char *location, unsigned threads);

/* The file errors a backup reported (through bt_backup). */
typedef struct bt_errors {
    size_t count;
    char *paths[64];
    int codes[64];
} bt_errors;

/* Runs nova_create_backup on `count` paths; errors (may be NULL) collects the reported
 * files (free with bt_errors_clear). Returns the call's result. */
int bt_backup(nova_repository *repo, nova_backup_strategy strategy, const char *const *paths,
              size_t count, nova_backup_info **out, bt_errors *errors);
/* The same for one path, with the options given (paths, callbacks and payload are set). */
int bt_backup_with(nova_repository *repo, nova_backup_options *options, const char *path,
                   nova_backup_info **out, bt_errors *errors);
void bt_errors_clear(bt_errors *errors);
/* 1 when errors holds `path`. */
int bt_errors_has(const bt_errors *errors, const char *path);

/* The id of the tree of directory `path` (absolute) in backup `backup_id`; 0 or -1. */
int bt_tree_of(nova_repository *repo, const char *backup_id, const char *path, nova_id *out);

/* Compares what backup `backup_id` holds at `path` (a file or directory, recursively)
 * with the file system: names, types, modes, owners, sizes, mtimes, inodes, link counts,
 * symlink targets, user.* extended attributes and every byte of content. Entries whose
 * name matches `skip` (fnmatch, may be NULL) must be absent from the backup instead.
 * Returns 0 when equal; otherwise prints the first difference and returns -1. */
int bt_verify(nova_repository *repo, const char *backup_id, const char *path, const char *skip);

/* Prints the entries that differ between two trees (recursively) to stderr. */
void bt_diff_trees(nova_repository *repo, const nova_id *a, const nova_id *b);

/* Number of objects under prefix in the repository at location. */
size_t bt_count(const char *location, const char *prefix);
/* Checks the repository's structure: every index names packs that exist and hold the
 * blobs' byte ranges, and every snapshot's tree (recursively) and chunks are indexed.
 * Returns 0 or -1 (printing why). */
int bt_check_repository(const char *location);

/* test_write_file with a NUL-terminated text. */
void bt_write_text(const char *path, const char *text);
/* Creates directory path (and parents), mode 0755. */
void bt_mkdirs(const char *path);
/* path joined from dir and name (malloc'd). */
char *bt_join(const char *dir, const char *name);

#endif
