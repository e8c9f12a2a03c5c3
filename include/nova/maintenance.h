/*
 * maintenance.h -- keeping a repository healthy: check it, and prune the data no backup
 * references any more.
 *
 * nova_check verifies the repository's structure (config, key slots, index files, packs
 * against their index entries, snapshots, every tree and the presence of every chunk)
 * and, with read_data, the content of the packs themselves (every byte hashed against
 * the pack's name, every blob decrypted, decompressed and re-hashed to its id). Damage is
 * reported, not repaired: each problem names the object and the backups it affects.
 *
 * nova_prune removes packs no snapshot needs and repacks packs that are mostly unused.
 * It holds the repository's exclusive lock for its whole run, so it never runs beside a
 * backup (which holds a shared lock), and it orders its writes so that a crash at any
 * moment leaves every snapshot readable: new packs, then the new index, then the old
 * index files, then the old packs.
 *
 * Both calls are synchronous and report progress through a callback (called on the
 * calling thread), which can cancel them by returning non-zero. Nothing here prints.
 */
#ifndef NOVA_MAINTENANCE_H
#define NOVA_MAINTENANCE_H

#include <stddef.h>
#include <stdint.h>

#include "nova/backup.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- check ----------------------------------------------------------------------- */

typedef struct nova_check_options {
    unsigned version; /* NOVA_CHECK_OPTIONS_VERSION */
    int read_data;    /* also read and verify the content of the selected packs */
    /* Which packs read_data reads (at most one of the two; neither = every pack):
     * subset_part / subset_parts = n/m selects the packs whose id's first byte modulo m
     * is n - 1 (1 <= n <= m <= 256), so n = 1..m together cover every pack once;
     * subset_percent in (0, 100] selects that share of the packs at random (rounded up). */
    unsigned subset_part;
    unsigned subset_parts;
    double subset_percent;
    int no_lock; /* do not take the shared lock (a read-only repository, a stale lock) */
    nova_progress_cb progress; /* may be NULL; phase NOVA_PHASE_CHECK */
    void *payload;
} nova_check_options;

#define NOVA_CHECK_OPTIONS_VERSION 1
#define NOVA_CHECK_OPTIONS_INIT {NOVA_CHECK_OPTIONS_VERSION, 0, 0, 0, 0.0, 0, NULL, NULL}

/* One problem found by a check. */
typedef struct nova_check_problem {
    int code;        /* NOVA_ECHECKSUM (INTEGRITY_001), NOVA_ECORRUPT (INTEGRITY_002), ...;
                        0 for a warning */
    char *object;    /* "config", "keys/<id>", "index/<id>", "data/<xx>/<id>",
                        "snapshots/<id>", "blob <id>" or "tree <id>" */
    char *message;   /* one line, names the object */
    char **snapshots; /* ids (64 hex digits) of the backups this damage affects */
    size_t snapshot_count;
} nova_check_problem;

typedef struct nova_check_report {
    int damaged; /* 1 when error_count > 0 */
    uint64_t keys_checked;
    uint64_t indexes_checked;
    uint64_t packs_checked; /* packs compared with their index entries */
    uint64_t packs_read;    /* packs read whole (read_data) */
    uint64_t blobs_checked; /* blobs decrypted, decompressed and re-hashed (read_data) */
    uint64_t bytes_read;    /* pack bytes read whole (read_data) */
    uint64_t snapshots_checked;
    uint64_t trees_checked;
    uint64_t blobs_unused;  /* indexed blobs no snapshot references ('nova prune' frees) */
    uint64_t bytes_unused;
    nova_check_problem *errors; /* damage: the repository is not intact */
    size_t error_count;
    nova_check_problem *warnings; /* harmless findings, e.g. packs no index names */
    size_t warning_count;
} nova_check_report;

/*
 * Checks the repository. Returns 0 when the check ran to its end, whatever it found:
 * (*out)->damaged says whether anything is broken. A negative code means the check could
 * not run (NOVA_ELOCKED while prune runs, an unreachable backend, NOVA_ECANCELLED, ...);
 * *out is then NULL. Takes a shared lock unless options->no_lock.
 */
int nova_check(nova_repository *repo, const nova_check_options *options,
               nova_check_report **out);
void nova_check_report_free(nova_check_report *report);

/* ---- prune ----------------------------------------------------------------------- */

typedef struct nova_prune_options {
    unsigned version; /* NOVA_PRUNE_OPTIONS_VERSION */
    int dry_run;      /* compute and report the plan, change nothing */
    /* A pack whose used blob bytes are below this share of all its blob bytes is
     * repacked (its used blobs copied into new packs, the pack deleted). 0 never
     * repacks; 1 repacks every pack holding any unused blob. */
    double max_repack_ratio;
    /* Delete packs that no index names even when stale locks suggest a stalled writer
     * may still index them (see docs/readme-maintenance.md). */
    int force_unindexed;
    nova_progress_cb progress; /* may be NULL; phase NOVA_PHASE_PRUNE */
    void *payload;
} nova_prune_options;

#define NOVA_PRUNE_OPTIONS_VERSION 1
#define NOVA_PRUNE_DEFAULT_REPACK_RATIO 0.5
#define NOVA_PRUNE_OPTIONS_INIT                                                                \
    {NOVA_PRUNE_OPTIONS_VERSION, 0, NOVA_PRUNE_DEFAULT_REPACK_RATIO, 0, NULL, NULL}

typedef struct nova_prune_result {
    int dry_run;                  /* 1 when nothing was changed */
    uint64_t snapshots;           /* snapshots whose data was kept */
    uint64_t packs;               /* packs named by the index before prune */
    uint64_t blobs_used;          /* blobs some snapshot references */
    uint64_t blobs_unused;        /* indexed blobs no snapshot references */
    uint64_t bytes_unused;        /* their stored bytes */
    uint64_t packs_deleted;       /* packs without a used blob, deleted */
    uint64_t packs_repacked;      /* mostly unused packs rewritten and deleted */
    uint64_t packs_written;       /* new packs holding the repacked blobs */
    uint64_t blobs_repacked;      /* used blobs copied into new packs */
    uint64_t bytes_repacked;      /* their plaintext bytes */
    uint64_t unindexed_deleted;   /* packs no index named, deleted */
    uint64_t unindexed_kept;      /* packs no index named, kept (stale locks found) */
    uint64_t indexes_deleted;     /* index files replaced */
    uint64_t indexes_written;     /* index files written */
    uint64_t stale_locks_removed; /* expired locks removed */
    uint64_t bytes_deleted;       /* stored bytes of every object deleted */
    uint64_t bytes_written;       /* stored bytes of every object written */
    uint64_t bytes_freed;         /* deleted - written (0 when negative) */
    uint64_t repository_bytes_before; /* packs and index files */
    uint64_t repository_bytes_after;
} nova_prune_result;

/*
 * Removes unreferenced data. Takes the exclusive lock (NOVA_ELOCKED while a backup or a
 * check holds a lock; a dry run takes a shared lock instead). Refuses to delete anything
 * (NOVA_ECORRUPT) when a snapshot, an index file or a tree cannot be read, or a snapshot
 * references a blob no index names: run nova_check first. *result is filled (also for a
 * dry run) when it returns 0. Forgets the handle's cached chunk index afterwards.
 */
int nova_prune(nova_repository *repo, const nova_prune_options *options,
               nova_prune_result *result);

/* Removes stale locks: expired ones, and those of processes of this host that no longer
 * exist (a killed backup or prune). With all != 0 removes every lock: only when no other
 * nova process uses the repository. *removed (may be NULL) receives how many went. */
int nova_unlock(nova_repository *repo, int all, uint64_t *removed);

#ifdef __cplusplus
}
#endif
#endif
