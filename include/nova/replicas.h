/*
 * replicas.h -- copies of a repository on other storage (the 3-2-1 rule): copy backups to
 * another repository on any backend, write one backup to several storage targets at
 * once, see which copies hold each backup completely, and repair a damaged copy from a
 * healthy one.
 *
 * A replica is a repository with the same repository id and master keys as its primary:
 * its `config` and key slots are copies of the primary's. Every other object is named by
 * the SHA-256 of its bytes and never changes, so replication copies objects byte for byte
 * and never decrypts data; it reads only the trees of the backups it copies (to learn
 * which packs they need) and the index files (to learn which index file names each
 * pack). Any passphrase of the primary opens the replica, and `nova restore --repo
 * REPLICA` works on it as on the primary. docs/format-replication.md has the details.
 *
 * Nothing here prints or exits; long calls report progress through a callback (called
 * on the calling thread) that may cancel them by returning non-zero.
 */
#ifndef NOVA_REPLICAS_H
#define NOVA_REPLICAS_H

#include <stddef.h>
#include <stdint.h>

#include "nova/backup.h"

#ifdef __cplusplus
extern "C" {
#endif

struct nova_config;

/* Copy, status and repair report progress with phase NOVA_PHASE_COPY (backup.h). */

/* ---- the storage targets of a configuration ------------------------------------- */

/* The location that means "every storage target of the config at once": one repository
 * replicated on all of them (a backup writes to every target in parallel and succeeds
 * only when all confirmed; reads fall back to the next target). */
#define NOVA_CONFIG_TARGETS_LOCATION "targets:"

/* How many storage targets the config names: storage.local_path, storage.s3,
 * storage.azure and storage.gcs, each when present. */
size_t nova_config_target_count(const struct nova_config *config);
/* Target i's location in that order: the local path, then "s3:", "azure:", "gcs:" (each
 * completed from the config when opened). NULL when i is out of range. */
const char *nova_config_target_location(const struct nova_config *config, size_t i);

/* ---- copy ------------------------------------------------------------------------- */

typedef struct nova_copy_options {
    unsigned version;               /* NOVA_COPY_OPTIONS_VERSION */
    const char *const *backup_ids;  /* ids, unique prefixes or "latest"; none = every backup */
    size_t backup_id_count;
    const struct nova_config *config; /* completes cloud locations; may be NULL */
    unsigned threads;               /* objects moved at once; 0 = the config's
                                     * storage.connections, else 4 */
    nova_progress_cb progress;      /* may be NULL; phase NOVA_PHASE_COPY */
    void *payload;
} nova_copy_options;

#define NOVA_COPY_OPTIONS_VERSION 1
#define NOVA_COPY_OPTIONS_INIT {NOVA_COPY_OPTIONS_VERSION, NULL, 0, NULL, 0, NULL, NULL}

typedef struct nova_copy_result {
    int target_created;          /* the target was empty and became a replica */
    uint64_t snapshots_selected;
    uint64_t snapshots_copied;
    uint64_t snapshots_present;  /* already in the target: skipped */
    uint64_t packs_copied;
    uint64_t packs_present;
    uint64_t indexes_copied;
    uint64_t indexes_present;
    uint64_t keys_copied;        /* key slots (a new replica gets all of them) */
    uint64_t bytes_copied;       /* bytes of every object written to the target */
    double seconds;
} nova_copy_result;

/*
 * Copies backups (and every pack and index file they need) from source to the repository
 * at target_location, creating it as a replica when the location is empty. For each
 * backup: its packs, then the index files that name them, then the snapshot object, which
 * is written last (the commit point), so an interrupted copy leaves at worst unreferenced
 * packs and a second run finishes the work without copying anything twice. Objects
 * already in the target are skipped. Every object's SHA-256 is checked against its name
 * before it is written: damage is never propagated (NOVA_ECHECKSUM naming the object).
 * A target holding another repository is refused (NOVA_EINVALID). Takes a shared lock on
 * both repositories. result (may be NULL) is filled also on failure, with what was done.
 */
int nova_copy(nova_repository *source, const char *target_location,
              const nova_copy_options *options, nova_copy_result *result);

/* ---- status and repair ----------------------------------------------------------- */

typedef enum nova_replica_state {
    NOVA_REPLICA_COMPLETE = 0,    /* the backup and every object it needs are there, sound */
    NOVA_REPLICA_ABSENT = 1,      /* this copy does not hold the backup */
    NOVA_REPLICA_INCOMPLETE = 2,  /* the snapshot is there, some data is missing or damaged */
    NOVA_REPLICA_DAMAGED = 3,     /* the snapshot object itself is damaged */
    NOVA_REPLICA_UNAVAILABLE = 4, /* the copy could not be read at all */
} nova_replica_state;

/* "complete", "absent", "incomplete", "damaged", "unavailable". */
const char *nova_replica_state_name(nova_replica_state state);

typedef struct nova_replicas_options {
    unsigned version;   /* NOVA_REPLICAS_OPTIONS_VERSION */
    int read_data;      /* status: also hash every pack (repair always does) */
    const struct nova_config *config; /* completes cloud locations; may be NULL */
    unsigned threads;   /* objects read at once; 0 = the config's storage.connections,
                         * else 4 */
    nova_progress_cb progress; /* may be NULL; phase NOVA_PHASE_COPY */
    void *payload;
} nova_replicas_options;

#define NOVA_REPLICAS_OPTIONS_VERSION 1
#define NOVA_REPLICAS_OPTIONS_INIT {NOVA_REPLICAS_OPTIONS_VERSION, 0, NULL, 0, NULL, NULL}

typedef struct nova_replica_copy {
    char *location;
    int available;      /* 0: could not be read; code and message say why */
    int code;
    char *message;
    uint64_t snapshots; /* snapshot objects it holds */
    uint64_t complete;  /* backups complete in it */
    uint64_t packs;
    uint64_t pack_bytes;
} nova_replica_copy;

typedef struct nova_replica_backup {
    char backup_id[65];
    int64_t started_ns;
    nova_replica_state *states; /* one per copy, in the order of the locations */
    size_t complete_count;      /* copies that hold it completely */
} nova_replica_backup;

typedef struct nova_replica_problem {
    size_t copy;    /* which copy (index into the report's copies) */
    int code;       /* NOVA_ECHECKSUM (INTEGRITY_001): bytes do not match the name;
                       NOVA_ECORRUPT (INTEGRITY_002): missing, wrong size or unreadable;
                       NOVA_EBACKEND...: the copy could not be read */
    char *object;   /* "data/<xx>/<id>", "index/<id>", "snapshots/<id>", "keys/<id>",
                       "config", "tree <id>", "blob <id>" or "" for the whole copy */
    char *message;  /* one line, names the object and the copy */
} nova_replica_problem;

typedef struct nova_replicas_report {
    size_t copy_count;
    nova_replica_copy *copies;
    size_t backup_count;
    nova_replica_backup *backups; /* every backup any copy holds, oldest first */
    size_t problem_count;
    nova_replica_problem *problems;
    int damaged;         /* some copy holds a damaged object or misses one a backup needs */
    int unavailable;     /* some copy could not be read */
    uint64_t objects_read; /* objects read whole and hashed */
    uint64_t bytes_read;
} nova_replicas_report;

/*
 * Compares count copies of one repository (locations; the first copy whose key slots open
 * with the passphrase gives the keys for all). For each backup held by any copy, says
 * which copies hold it completely: the snapshot object is sound, every tree reads, and
 * every pack its blobs need is present with the size its index gives (with read_data,
 * also with the right SHA-256). Index files, snapshots and key slots are always hashed.
 * Returns 0 when the comparison ran, whatever it found; a negative code when no copy
 * could be opened.
 */
int nova_replicas_status(const char *const *locations, size_t count, const char *passphrase,
                         const nova_replicas_options *options, nova_replicas_report **out);
void nova_replicas_report_free(nova_replicas_report *report);

typedef struct nova_repair_result {
    uint64_t objects_checked; /* objects of the target read whole and hashed */
    uint64_t bytes_read;
    uint64_t damaged_found;   /* objects whose bytes did not match their name */
    uint64_t replaced;        /* damaged objects replaced with verified bytes */
    uint64_t missing_copied;  /* packs, index files and key slots the target lacked */
    uint64_t unrepairable;    /* damaged objects no source holds intact */
    size_t problem_count;
    nova_replica_problem *problems; /* what could not be repaired (copy 0 = the target) */
} nova_repair_result;

/*
 * Repairs the copy at target from sources: reads every object of the target and checks
 * it against its name; a damaged object is replaced (deleted, then written again) with
 * bytes from the first source that holds it intact (verified before anything is
 * deleted); then every backup the target holds gets the packs and index files it lacks.
 * Returns 0 when the repair ran ((*out)->unrepairable says whether all is well), a
 * negative code when it could not run.
 */
int nova_replicas_repair(const char *target, const char *const *sources, size_t source_count,
                         const char *passphrase, const nova_replicas_options *options,
                         nova_repair_result **out);
void nova_repair_result_free(nova_repair_result *result);

#ifdef __cplusplus
}
#endif
#endif
