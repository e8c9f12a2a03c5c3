/*
 * maintenance_support.h -- test repositories for check and prune.
 *
 * Builds real local repositories through the repository layer, the way a backup will:
 * one write session (packs + index delta) and one snapshot per "backup", with small packs
 * so a handful of files spread over many packs. The content of every file is a pure
 * function of its number, so any snapshot can be restored in memory and compared byte
 * for byte. Snapshot k holds files [first, first + count): consecutive snapshots share
 * files, so their data is deduplicated and deleting one leaves some blobs unreferenced.
 * Every helper asserts (cmocka) instead of returning errors.
 */
#ifndef NOVA_TEST_MAINTENANCE_SUPPORT_H
#define NOVA_TEST_MAINTENANCE_SUPPORT_H

#include "api/handle.h"
#include "primitives/hash.h"
#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

#define MAINT_MAX_SNAPSHOTS 16
#define MAINT_PASS "maintenance test"
#define MAINT_PACK_TARGET (64 * 1024)

typedef struct maint_repo {
    char *dir;
    nova_repository *handle;
    size_t snapshot_count;
    nova_id snapshots[MAINT_MAX_SNAPSHOTS];
    nova_id trees[MAINT_MAX_SNAPSHOTS][2]; /* root and "sub" */
    unsigned first_file[MAINT_MAX_SNAPSHOTS];
    unsigned file_count[MAINT_MAX_SNAPSHOTS];
    int deleted[MAINT_MAX_SNAPSHOTS];
} maint_repo;

/* A new repository in a fresh directory under $NOVA_TEST_TMP. */
maint_repo *maint_repo_create(const char *tag);
/* The standard fixture: three snapshots of files 0..9, 5..14 and 10..19. */
maint_repo *maint_repo_standard(const char *tag);
/* Closes the handle and removes the directory. NULL-safe. */
void maint_repo_free(maint_repo *r);
/* Closes and opens the repository again (a fresh handle, no fault wrapper). */
void maint_repo_reopen(maint_repo *r);
/* A copy of the repository (directory and bookkeeping) in a new directory, opened. */
maint_repo *maint_repo_copy(const maint_repo *r, const char *tag);

/* Backs up files [first, first + count) as a new snapshot; returns its number. */
size_t maint_repo_add_snapshot(maint_repo *r, unsigned first, unsigned count);
/* Deletes snapshot k's object (its data becomes garbage for prune). */
void maint_repo_delete_snapshot(maint_repo *r, size_t k);
/* Uploads a pack of `blobs` fresh blobs without writing an index for it (an interrupted
 * backup). Returns the pack's object name (malloc'd). */
char *maint_repo_orphan_pack(maint_repo *r, unsigned blobs, uint64_t seed);

/* Restores snapshot k in memory and compares every file: 0 when identical, else the
 * failing NOVA_E code. */
int maint_repo_verify(maint_repo *r, size_t k);
/* Asserts that every snapshot not deleted verifies. */
void maint_repo_verify_all(maint_repo *r);

/* 1 when snapshot k references blob id (a tree or a chunk of one of its files). */
int maint_repo_snapshot_uses(const maint_repo *r, size_t k, const nova_id *id);
/* Calls cb for every blob (trees and chunks) of the snapshots not deleted. */
typedef void (*maint_blob_cb)(const nova_id *id, void *payload);
void maint_repo_each_used_blob(const maint_repo *r, maint_blob_cb cb, void *payload);

/* Object names under prefix, sorted, '\n'-joined (malloc'd). */
char *maint_repo_listing(maint_repo *r, const char *prefix);
/* Number of objects under prefix. */
size_t maint_repo_count(maint_repo *r, const char *prefix);
/* The first object name under prefix (sorted), malloc'd; NULL when none. */
char *maint_repo_first(maint_repo *r, const char *prefix);
/* Where blob id lives: its pack's object name (malloc'd) and offset. Asserts it exists. */
char *maint_repo_locate(maint_repo *r, const nova_id *id, uint32_t *offset, uint32_t *length);
/* XORs one byte of an object on disk with 0x01; a negative offset counts from the end. */
void maint_repo_flip(maint_repo *r, const char *name, long offset);
/* Deletes every object under locks/ (what 'nova unlock' would do). */
void maint_repo_remove_locks(maint_repo *r);
/* Puts the handle's storage behind a fault wrapper. */
void maint_repo_inject(maint_repo *r, const nova_fault_plan *plan);

/* 1 when NOVA_TEST_LONG=1 is set. */
int maint_long_mode(void);

#endif
