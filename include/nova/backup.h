/*
 * backup.h -- the Memory Backup System: create, list, get, delete and clean up backups,
 * and restore them.
 *
 * A backup is a snapshot in a repository; its backup_id is the snapshot id (64 hex
 * digits). Every snapshot is complete on its own: the strategy only decides which
 * earlier snapshot is used to skip re-reading unchanged files (DESIGN.md section 4).
 * All calls are synchronous; long ones report progress through a callback, which can
 * also cancel them (return non-zero). Nothing here prints or exits.
 */
#ifndef NOVA_BACKUP_H
#define NOVA_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "nova/error.h"

struct nova_config;

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the repository -------------------------------------------------------------- */

typedef struct nova_repository nova_repository;

typedef enum nova_backend_type {
    NOVA_BACKEND_LOCAL = 0,
    NOVA_BACKEND_S3 = 1,
    NOVA_BACKEND_AZURE = 2,
    NOVA_BACKEND_GCS = 3,
} nova_backend_type;

typedef struct nova_repository_options {
    unsigned version;          /* NOVA_REPOSITORY_OPTIONS_VERSION */
    const char *compression;   /* init only: "zstd:3" (default), "lzma:6", "lz4", "none" */
    unsigned kdf_log2_n;       /* init only: scrypt cost, 0 = default (15) */
    unsigned threads;          /* worker threads, 0 = number of cores */
    const struct nova_config *config; /* cloud settings (storage.s3/azure/gcs); may be NULL */
} nova_repository_options;

#define NOVA_REPOSITORY_OPTIONS_VERSION 1
#define NOVA_REPOSITORY_OPTIONS_INIT {NOVA_REPOSITORY_OPTIONS_VERSION, NULL, 0, 0, NULL}

/* Creates a repository at location (a local directory for now) and opens it.
 * NOVA_EEXISTS when one is already there. */
int nova_repository_init(nova_repository **out, const char *location, const char *passphrase,
                         const nova_repository_options *options);
/* Opens an existing repository. No repository: NOVA_ENO_REPO; no key slot opens with the
 * passphrase: NOVA_EPASSWORD. */
int nova_repository_open(nova_repository **out, const char *location, const char *passphrase,
                         const nova_repository_options *options);
void nova_repository_close(nova_repository *repo);
/* The repository's id (64 hex digits), random at creation, never changed. */
void nova_repository_id(const nova_repository *repo, char out[65]);

/* Key slots: each passphrase opens the repository; changing one touches no data. */
int nova_key_add(nova_repository *repo, const char *new_passphrase, char slot_id_out[65]);
int nova_key_remove(nova_repository *repo, const char *slot_id);
int nova_key_change_passphrase(nova_repository *repo, const char *new_passphrase);
typedef int (*nova_key_cb)(const char *slot_id, int is_current, void *payload);
int nova_key_list(nova_repository *repo, nova_key_cb cb, void *payload);

/* ---- backups --------------------------------------------------------------------- */

typedef enum nova_backup_strategy {
    NOVA_STRATEGY_FULL = 0,
    NOVA_STRATEGY_INCREMENTAL = 1,
    NOVA_STRATEGY_DIFFERENTIAL = 2,
} nova_backup_strategy;

typedef enum nova_backup_status {
    NOVA_BACKUP_COMPLETED = 0,
    NOVA_BACKUP_PARTIAL = 1, /* some files could not be read; the rest is backed up */
    NOVA_BACKUP_FAILED = 2,
} nova_backup_status;

const char *nova_backup_strategy_name(nova_backup_strategy strategy); /* "FULL" ... */
int nova_backup_strategy_parse(const char *text, nova_backup_strategy *out); /* any case */
const char *nova_backup_status_name(nova_backup_status status);       /* "completed" ... */
int nova_backup_status_parse(const char *text, nova_backup_status *out);

typedef struct nova_backup_tag {
    const char *key;
    const char *value;
} nova_backup_tag;

typedef struct nova_backup_info {
    char backup_id[65];
    nova_backup_strategy strategy;
    char parent_backup_id[65]; /* "" when none */
    nova_backup_status status;
    int64_t started_ns;  /* ns since the Unix epoch */
    int64_t finished_ns;
    const char *host;
    const char *username;
    const nova_backup_tag *tags;
    size_t tag_count;
    const char *const *paths;
    size_t path_count;
    uint64_t files_new;
    uint64_t files_changed;
    uint64_t files_unchanged;
    uint64_t bytes_read;      /* read from the source during this backup */
    uint64_t original_size;   /* size of every file in the snapshot */
    uint64_t compressed_size; /* their size after compression */
    uint64_t bytes_added;     /* bytes this backup added to the repository */
    uint64_t errors;          /* files that could not be backed up */
} nova_backup_info;

void nova_backup_info_free(nova_backup_info *info);
void nova_backup_info_list_free(nova_backup_info **infos, size_t count);

/* Progress of a long operation. Return non-zero from the callback to cancel: the call
 * then stops as soon as it safely can and returns NOVA_ECANCELLED. */
typedef enum nova_phase {
    NOVA_PHASE_SCAN = 0,
    NOVA_PHASE_BACKUP = 1,
    NOVA_PHASE_RESTORE = 2,
    NOVA_PHASE_CHECK = 3,
    NOVA_PHASE_PRUNE = 4,
    NOVA_PHASE_COPY = 5,
} nova_phase;

typedef struct nova_progress {
    nova_phase phase;
    uint64_t files_done;
    uint64_t files_total; /* 0 while unknown */
    uint64_t bytes_done;
    uint64_t bytes_total; /* 0 while unknown */
    double elapsed_seconds;
    const char *current_path; /* may be NULL */
} nova_progress;

typedef int (*nova_progress_cb)(const nova_progress *progress, void *payload);

/* Called for each file or directory that could not be backed up or restored; the
 * operation goes on. code is a NOVA_E... value; message names the path. */
typedef void (*nova_file_error_cb)(const char *path, int code, const char *message,
                                   void *payload);

typedef struct nova_backup_options {
    unsigned version; /* NOVA_BACKUP_OPTIONS_VERSION */
    nova_backup_strategy strategy;
    const char *const *paths; /* files or directories; made absolute */
    size_t path_count;
    const nova_backup_tag *tags;
    size_t tag_count;
    const char *const *excludes; /* glob patterns (fnmatch) matched on full paths and names */
    size_t exclude_count;
    const char *host;             /* NULL = gethostname() */
    nova_progress_cb progress;    /* may be NULL */
    nova_file_error_cb file_error; /* may be NULL */
    void *payload;                /* passed to both callbacks */
} nova_backup_options;

#define NOVA_BACKUP_OPTIONS_VERSION 1
#define NOVA_BACKUP_OPTIONS_INIT                                                                \
    {NOVA_BACKUP_OPTIONS_VERSION, NOVA_STRATEGY_FULL, NULL, 0, NULL, 0, NULL, 0, NULL, NULL,   \
     NULL, NULL}

/* Runs a backup. On success (status completed or partial) *out describes it; a backup
 * with unreadable files returns 0 with status NOVA_BACKUP_PARTIAL. An INCREMENTAL or
 * DIFFERENTIAL backup without an eligible parent runs as FULL (info->strategy says
 * FULL). A full repository gives NOVA_ENOSPACE and leaves the repository consistent. */
int nova_create_backup(nova_repository *repo, const nova_backup_options *options,
                       nova_backup_info **out);

typedef struct nova_backup_filter {
    unsigned version;            /* NOVA_BACKUP_FILTER_VERSION */
    int strategy;                /* a nova_backup_strategy, or -1 for any */
    int status;                  /* a nova_backup_status, or -1 for any */
    const nova_backup_tag *tags; /* every tag must be present */
    size_t tag_count;
    const char *host;            /* NULL = any */
    const char *path;            /* NULL = any; else the snapshot must include this path */
    int64_t before_ns;           /* 0 = no bound; else started_ns <= before_ns */
    size_t limit;                /* 0 = all; else the newest `limit` */
} nova_backup_filter;

#define NOVA_BACKUP_FILTER_VERSION 1
#define NOVA_BACKUP_FILTER_INIT {NOVA_BACKUP_FILTER_VERSION, -1, -1, NULL, 0, NULL, NULL, 0, 0}

/* Backups matching the filter, newest first. */
int nova_list_backups(nova_repository *repo, const nova_backup_filter *filter,
                      nova_backup_info ***out, size_t *count);
/* One backup by id, unique id prefix (at least 4 hex digits) or "latest".
 * No such backup: NOVA_EBACKUP_NOT_FOUND. */
int nova_get_backup(nova_repository *repo, const char *id, nova_backup_info **out);
/* Removes the snapshot; its data goes when `nova prune` finds it unreferenced. */
int nova_delete_backup(nova_repository *repo, const char *id);
/* Deletes every backup that finished more than retention_days ago, keeping at least the
 * newest backup of each set of paths. *deleted (may be NULL) receives how many. */
int nova_cleanup_old_backups(nova_repository *repo, unsigned retention_days, size_t *deleted);

/* ---- restore --------------------------------------------------------------------- */

typedef struct nova_restore_options {
    unsigned version; /* NOVA_RESTORE_OPTIONS_VERSION */
    const char *target; /* directory; created when missing */
    const char *const *includes; /* restore only these paths (as backed up) and below */
    size_t include_count;
    nova_progress_cb progress;
    nova_file_error_cb file_error;
    void *payload;
} nova_restore_options;

#define NOVA_RESTORE_OPTIONS_VERSION 1
#define NOVA_RESTORE_OPTIONS_INIT {NOVA_RESTORE_OPTIONS_VERSION, NULL, NULL, 0, NULL, NULL, NULL}

typedef struct nova_restore_result {
    uint64_t files_restored;  /* files written */
    uint64_t files_unchanged; /* already identical in the target: not rewritten */
    uint64_t bytes_written;
    uint64_t errors;
} nova_restore_result;

/* Restores backup `id` (id, prefix or "latest") under target: a backed-up absolute path
 * /a/b appears as target/a/b. Every chunk is verified before it is written; nothing is
 * ever written outside target. Returns 0 only when everything was restored; otherwise it
 * restores what it can and returns the first failure (integrity errors first), with
 * result->errors counting the entries not restored (0 when it failed before writing).
 * file_error may be called from worker threads, never two at a time. */
int nova_restore(nova_repository *repo, const char *id, const nova_restore_options *options,
                 nova_restore_result *result);

/* ---- point in time -------------------------------------------------------------- */

/* Parses the time a point-in-time restore aims at into ns since the Unix epoch:
 *   "now"; relative "30m", "1h", "2d", "1h30m" (units s m h d w), counted back from now_ns;
 *   "YYYY-MM-DD[( |T)HH:MM[:SS]][Z|+HH:MM|-HH:MM]", local time without a zone, a date
 *   alone meaning 00:00. Anything else (or an out-of-range field) is NOVA_EINVALID. */
int nova_point_in_time_parse(int64_t *out_ns, const char *text, int64_t now_ns);

#ifdef __cplusplus
}
#endif
#endif
