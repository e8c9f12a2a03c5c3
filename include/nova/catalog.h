/*
 * catalog.h -- looking inside backups and retiring them: the file tree of a backup (ls),
 * what changed between two backups (diff), and retention beyond nova_delete_backup and
 * nova_cleanup_old_backups (backup.h): a restic-style keep-policy (forget) and clean-up by
 * age, both with a dry run and a report of what is kept and why.
 *
 * Retiring a backup removes only its snapshot object; the data it alone referenced stays
 * until `nova prune`. Deleting takes a shared repository lock, so it runs beside backups
 * but never during a prune (which holds the exclusive lock).
 * Nothing here prints or exits.
 */
#ifndef NOVA_CATALOG_H
#define NOVA_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "nova/backup.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the file tree of a backup ---------------------------------------------------- */

typedef enum nova_node_type {
    NOVA_NODE_FILE = 1,
    NOVA_NODE_DIR = 2,
    NOVA_NODE_SYMLINK = 3,
    NOVA_NODE_FIFO = 4,
    NOVA_NODE_CHARDEV = 5,
    NOVA_NODE_BLOCKDEV = 6,
    NOVA_NODE_SOCKET = 7,
} nova_node_type;

/* "file", "dir", "symlink", "fifo", "chardev", "blockdev", "socket" or "unknown". */
const char *nova_node_type_name(nova_node_type type);

/* One entry of a backup's tree. Every pointer is borrowed: valid during the callback. */
typedef struct nova_node {
    const char *path; /* absolute, as backed up: "/home/ann/notes.json" */
    const char *name; /* the last component of path */
    nova_node_type type;
    uint32_t mode; /* permission bits, & 07777 */
    uint32_t uid;
    uint32_t gid;
    const char *user_name;  /* NULL when unknown */
    const char *group_name; /* NULL when unknown */
    uint64_t size;
    int64_t mtime_ns; /* ns since the Unix epoch */
    int64_t atime_ns;
    int64_t ctime_ns;
    uint32_t nlink;
    uint64_t rdev;              /* devices only */
    const char *symlink_target; /* symlinks only; else NULL */
    uint32_t xattr_count;       /* extended attributes recorded */
    uint64_t chunk_count;       /* regular files: chunks of content */
    int sparse;                 /* regular files with holes */
} nova_node;

/* Return non-zero to stop a walk; that value is then returned by the call. */
typedef int (*nova_node_cb)(const nova_node *node, void *payload);

/* Calls cb for every entry of backup `id` (id, unique prefix or "latest"), depth first,
 * names in byte order, each directory before its contents. path (NULL or "/" for the
 * whole backup) limits the walk to that entry and, for a directory, everything below it.
 * A path the backup does not hold is NOVA_EINVALID, naming it. */
int nova_backup_ls(nova_repository *repo, const char *id, const char *path, nova_node_cb cb,
                   void *payload);

/* ---- what changed between two backups ---------------------------------------------- */

typedef enum nova_change {
    NOVA_CHANGE_ADDED = '+',    /* only in the second backup */
    NOVA_CHANGE_REMOVED = '-',  /* only in the first backup */
    NOVA_CHANGE_MODIFIED = 'M', /* content or size differs (or a symlink's target) */
    NOVA_CHANGE_METADATA = 'm', /* same content; mode, owner, mtime or xattrs differ */
} nova_change;

/* before is NULL for ADDED, after is NULL for REMOVED. An entry whose type changed is
 * reported REMOVED, then ADDED. Adding or removing a directory reports every entry below
 * it too. A directory whose contents changed is not itself reported unless its own mode,
 * owner or xattrs changed (its times follow its contents). */
typedef int (*nova_diff_cb)(nova_change change, const nova_node *before, const nova_node *after,
                            void *payload);

typedef struct nova_diff_stats {
    uint64_t added;
    uint64_t removed;
    uint64_t modified;
    uint64_t metadata;
    uint64_t bytes_added;   /* sizes of added regular files, plus growth of modified ones */
    uint64_t bytes_removed; /* sizes of removed regular files, plus shrinkage */
} nova_diff_stats;

/* Compares backup id1 (before) with id2 (after), in path order; subtrees with identical
 * content are skipped without reading them. cb may be NULL; stats may be NULL. */
int nova_backup_diff(nova_repository *repo, const char *id1, const char *id2, nova_diff_cb cb,
                     void *payload, nova_diff_stats *stats);

/* ---- retention ------------------------------------------------------------------- */

/* Why a backup was kept (bits of nova_retention_entry.reasons). */
typedef enum nova_keep_reason {
    NOVA_KEEP_LAST = 1u << 0,    /* one of the newest --keep-last */
    NOVA_KEEP_HOURLY = 1u << 1,  /* the newest of its hour (local time) */
    NOVA_KEEP_DAILY = 1u << 2,   /* ... of its day */
    NOVA_KEEP_WEEKLY = 1u << 3,  /* ... of its ISO week */
    NOVA_KEEP_MONTHLY = 1u << 4, /* ... of its month */
    NOVA_KEEP_YEARLY = 1u << 5,  /* ... of its year */
    NOVA_KEEP_WITHIN = 1u << 6,  /* within --keep-within of the group's newest */
    NOVA_KEEP_RECENT = 1u << 7,  /* clean-up: finished within the retention period */
    NOVA_KEEP_NEWEST = 1u << 8,  /* clean-up: the newest backup of its host and paths */
} nova_keep_reason;

/* The name of one reason bit: "last", "hourly", "daily", "weekly", "monthly", "yearly",
 * "within", "recent", "newest"; "unknown" otherwise. */
const char *nova_keep_reason_name(unsigned reason);

#define NOVA_KEEP_UNLIMITED (-1)

/* restic's `forget` policy. Counts are 0 (rule off), a positive number, or
 * NOVA_KEEP_UNLIMITED. Backups are grouped by host and set of paths; in each group,
 * newest first, a backup is kept when any rule keeps it:
 *   keep_last n     the n newest;
 *   keep_hourly n   (daily, weekly, monthly, yearly alike) the newest backup of each of the
 *                   n most recent hours that have backups, in local time; weeks are ISO
 *                   weeks (Monday first). When a rule still has count left at the group's
 *                   oldest backup, that one is kept too (the longest history possible);
 *   keep_within s   every backup started less than s seconds before the group's newest
 *                   backup that is not in the future.
 * Backups with equal start times are ordered by id. */
typedef struct nova_forget_policy {
    unsigned version; /* NOVA_FORGET_POLICY_VERSION */
    int keep_last;
    int keep_hourly;
    int keep_daily;
    int keep_weekly;
    int keep_monthly;
    int keep_yearly;
    uint64_t keep_within_seconds; /* 0 = rule off */
} nova_forget_policy;

#define NOVA_FORGET_POLICY_VERSION 1
#define NOVA_FORGET_POLICY_INIT {NOVA_FORGET_POLICY_VERSION, 0, 0, 0, 0, 0, 0, 0}

typedef struct nova_retention_options {
    unsigned version;                 /* NOVA_RETENTION_OPTIONS_VERSION */
    const nova_backup_filter *filter; /* only matching backups are considered; NULL = all */
    int dry_run;                      /* decide and report, delete nothing */
    int64_t now_ns;                   /* 0 = the current time (tests set it) */
} nova_retention_options;

#define NOVA_RETENTION_OPTIONS_VERSION 1
#define NOVA_RETENTION_OPTIONS_INIT {NOVA_RETENTION_OPTIONS_VERSION, NULL, 0, 0}

typedef struct nova_retention_entry {
    const nova_backup_info *info; /* owned by the result */
    size_t group;                 /* entries of one group are adjacent, newest first */
    int keep;
    unsigned reasons; /* nova_keep_reason bits; 0 when removed */
    int deleted;      /* 1 once its snapshot was deleted (never in a dry run) */
} nova_retention_entry;

typedef struct nova_retention_result {
    nova_retention_entry *entries; /* every considered backup, by group, newest first */
    size_t count;
    size_t group_count;
    size_t kept;
    size_t removed; /* entries with keep == 0 (deleted unless dry run) */
    size_t deleted; /* snapshots actually deleted */
} nova_retention_result;

void nova_retention_result_free(nova_retention_result *result);

/* Applies a keep-policy and, unless dry_run, deletes what it does not keep under a
 * shared lock. A policy with no rule is NOVA_EINVALID. When a deletion fails part-way,
 * the error is returned and *out (still set) says which entries were deleted. */
int nova_forget(nova_repository *repo, const nova_forget_policy *policy,
                const nova_retention_options *options, nova_retention_result **out);

/* Clean-up by age (what nova_cleanup_old_backups does, with a report): removes every
 * backup that finished retention_days * 24 h or more before now, except the newest
 * backup of each group (host and set of paths) that did not fail (or the newest one
 * when all failed). Results and errors as nova_forget. */
int nova_cleanup(nova_repository *repo, unsigned retention_days,
                 const nova_retention_options *options, nova_retention_result **out);

#ifdef __cplusplus
}
#endif
#endif
