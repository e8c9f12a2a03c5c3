/*
 * restore_internal.h -- what the files of src/restore share (private).
 *
 * A restore (nova_restore in restore.c) runs in phases:
 *   1. plan, one thread (plan.c): walk the snapshot's trees from the root, create the
 *      directories and the special nodes (symlinks, fifos, devices, sockets) below the
 *      target, and record every regular file to write, with where each of its chunks lives;
 *   2. check, all workers (writer.c): an existing file of the same size and mtime is hashed
 *      at the chunk boundaries the tree gives; when every chunk id matches it is left alone;
 *   3. write, all workers (writer.c): chunk occurrences sorted by (pack, offset) are cut into
 *      windows of nearby blobs; a worker takes a window, fetches it with one ranged get,
 *      opens (verifies) each blob once and writes it wherever it is needed -- large files
 *      through I/O threads with O_DIRECT (direct.c). The thread that writes the last chunk
 *      of a file finishes it: size, metadata, rename into place;
 *   4. finish, one thread (restore.c): hard links, then directory metadata deepest first.
 *
 * Invariants:
 *   - nothing is created, opened or renamed by path: every call is relative to a directory
 *     descriptor obtained by a walk with O_NOFOLLOW from the target (dircache.c), and every
 *     name passed to the file system passed nova_tree_name_valid;
 *   - a regular file is written under its own name only when that name was free (state
 *     NEW); over an existing entry it is written under a temporary name in the same
 *     directory and renamed over the old entry once complete (REPLACE). A file that cannot
 *     be completed (bad chunk, cancel, error) is removed, so wrong or partial content is
 *     never left in place;
 *   - each window of a pack is fetched once; each blob is opened once per window;
 *   - the handle's chunk index is shared with whatever else runs on the handle (a backup
 *     may insert into it): every look-up holds handle->index_lock, and the write phase
 *     works from locations copied during planning;
 *   - memory: the decoded trees (kept for the whole restore), 32 bytes per chunk
 *     occurrence, per worker one window (<= RESTORE_WINDOW_MAX or one blob) plus one
 *     plaintext chunk, and for large files the staging pool of direct.c.
 */
#ifndef NOVA_RESTORE_RESTORE_INTERNAL_H
#define NOVA_RESTORE_RESTORE_INTERNAL_H

#include "api/handle.h"
#include "fsmeta/ids.h"
#include "fsmeta/restore.h"
#include "nova/backup.h"
#include "repo/pack_cache.h"
#include "repo/repository.h"
#include "repo/tree.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define RESTORE_NONE UINT32_MAX
/* Blobs closer than this are fetched in one ranged get, up to RESTORE_WINDOW_MAX bytes. */
#define RESTORE_WINDOW_GAP (1024u * 1024u)
#define RESTORE_WINDOW_MAX (4u * 1024u * 1024u)
/* Regular files at least this large (and not sparse) are written with O_DIRECT by one
 * I/O thread, in runs of up to RESTORE_STAGE_SIZE bytes the workers stage (direct.c). */
#define RESTORE_DIRECT_MIN (32u * 1024u * 1024u)
#define RESTORE_STAGE_SIZE (4u * 1024u * 1024u + 4096u) /* a default max chunk, unaligned */
#define RESTORE_IO_THREADS 2u
#define RESTORE_WORKERS_MAX 16u /* from storage.connections; more cores still count */
#define RESTORE_DIRECT_ALIGN 4096u
/* Deepest directory nesting a restore follows. */
#define RESTORE_MAX_DEPTH 2048u
#define RESTORE_FD_STRIPES 1024u
/* ".nova-restore-<pid>-<serial>" */
#define RESTORE_TEMP_NAME_SIZE 64

/* ---- directories and their descriptors (dircache.c) ---- */

typedef struct restore_dir {
    const nova_tree_entry *entry; /* NULL for the target itself */
    uint32_t parent;              /* RESTORE_NONE for the target */
    int fd;                       /* -1 while closed */
    uint32_t pins;                /* users of fd; a pinned descriptor is never closed */
    uint8_t fresh;                /* made by this restore: it held nothing before */
    uint8_t failed;               /* could not be opened: skipped (reported once) */
    /* What a file created in it gets from the kernel, so metadata calls that would change
     * nothing can be skipped: its group (the directory's when setgid), and whether a
     * default ACL overrides the creation mode. */
    uint8_t setgid;
    uint8_t default_acl;
    uint32_t file_gid;
} restore_dir;

typedef struct restore_dirs {
    restore_dir *items; /* items[0] is the target */
    size_t count, cap;
    size_t open;   /* descriptors open, the target's included */
    size_t budget; /* close unpinned descriptors beyond this many */
    size_t hand;   /* clock hand of the eviction scan */
    size_t evictions;
    int stable;    /* every directory open for good: get/put need no lock (set after planning) */
    pthread_mutex_t lock;
} restore_dirs;

/* Takes ownership of target_fd. */
int restore_dirs_init(restore_dirs *dirs, int target_fd, size_t budget);
/* Records what files created in directory `index` (open as fd) inherit: st is its stat
 * when it existed before, NULL when this restore made it (it inherits from its parent). */
void restore_dir_note_inheritance(restore_dirs *dirs, uint32_t index, int fd,
                                  const struct stat *st, uint32_t egid);
void restore_dirs_free(restore_dirs *dirs);
/* Adds a directory below parent (not thread-safe: planning only). */
int restore_dirs_add(restore_dirs *dirs, uint32_t *out, uint32_t parent,
                     const nova_tree_entry *entry, int fresh);
/* After planning: when no descriptor was ever closed, every directory keeps its descriptor
 * until the end and restore_dir_get/put become lock-free look-ups. */
void restore_dirs_freeze(restore_dirs *dirs);
/* A pinned descriptor of directory `index`, opened (walking down from the nearest open
 * ancestor with O_NOFOLLOW) when closed. Thread-safe. Release with restore_dir_put. */
int restore_dir_get(restore_dirs *dirs, uint32_t index, int *fd);
void restore_dir_put(restore_dirs *dirs, uint32_t index);

/* ---- files ---- */

enum restore_file_state {
    RESTORE_FILE_NEW = 0,   /* written under its own name, which was free */
    RESTORE_FILE_REPLACE,   /* written under a temporary name, then renamed over the old entry */
    RESTORE_FILE_CHECK,     /* an existing file of the same size and mtime may hold the content */
    RESTORE_FILE_UNCHANGED, /* it does: left alone, metadata applied again */
    RESTORE_FILE_FAILED,    /* not restored (reported) */
};

typedef struct restore_file {
    const nova_tree_entry *entry;
    uint32_t dir;
    uint8_t state;
    uint8_t created;          /* exists under write_name (fd guarded by its stripe lock) */
    uint8_t direct;           /* large: written through dfd with O_DIRECT when possible */
    uint32_t users;           /* threads holding fd (stripe lock) */
    int fd;                   /* -1 while closed */
    int dfd;                  /* O_DIRECT descriptor of a direct file, -1 when none */
    uint64_t temp_serial;     /* REPLACE: the temporary name's serial */
    uint64_t size;            /* sum of its chunks' plaintext lengths */
    uint64_t dev, ino;        /* of the file this restore created, once closed early */
    atomic_uint_fast64_t remaining; /* chunk occurrences not yet written */
    atomic_int failed;        /* 1 once a chunk or a write failed (reported once) */
} restore_file;

/* One chunk of one file: where it is stored and where it goes. 32 bytes. */
typedef struct restore_occ {
    uint32_t pack;       /* pack number in the chunk index */
    uint32_t offset;     /* of the blob in the pack */
    uint32_t length;     /* stored bytes */
    uint32_t raw_length; /* plaintext bytes */
    uint32_t file;       /* index in ctx->files */
    uint32_t chunk;      /* index in the file's chunk list */
    uint64_t file_offset;
} restore_occ;

/* A run of occurrences fetched with one ranged get: [first, end) of ctx->occs. */
typedef struct restore_window {
    size_t first, end;
    uint64_t start, length; /* byte range in the pack */
    nova_id pack_id;        /* copied at planning: writers never touch the shared index */
} restore_window;

/* Hard-link groups: the first entry met is restored, the others linked to it. */
typedef struct restore_primary {
    uint64_t device, inode;
    uint32_t dir;
    const nova_tree_entry *entry;
    uint32_t file; /* index in ctx->files when a regular file, else RESTORE_NONE */
    uint8_t ok;    /* non-files: created */
} restore_primary;

typedef struct restore_link {
    uint32_t dir;
    const nova_tree_entry *entry;
    uint32_t primary;
} restore_link;

/* ---- direct writes (direct.c) ---- */

/* A run of contiguous bytes of one direct file, staged in a pool buffer: buf[0] is at
 * file offset `start` (aligned); the bytes [from, len) are the run's. Whole occurrences
 * only, so a job is complete on its own. */
typedef struct restore_io_job {
    uint32_t file;
    uint8_t *buf;
    uint64_t start;
    size_t from, len;
    uint64_t pending; /* occurrences in this job */
} restore_io_job;

/* A page shared by two runs (a chunk boundary inside it), assembled in memory so that it
 * too can be written with O_DIRECT once complete. */
typedef struct restore_edge {
    uint32_t file; /* RESTORE_NONE when the slot is free */
    uint32_t filled; /* bytes present */
    uint64_t block;  /* file offset / RESTORE_DIRECT_ALIGN */
    uint64_t present[RESTORE_DIRECT_ALIGN / 64];
} restore_edge;

#define RESTORE_EDGES_MAX 1024u

/* The I/O threads and their buffer pool. */
typedef struct restore_io {
    int running;
    unsigned thread_count;
    pthread_t threads[RESTORE_IO_THREADS];
    pthread_mutex_t lock;
    pthread_cond_t changed;
    uint8_t **buffers; /* all of them, for freeing */
    uint8_t **free_buffers;
    size_t buffer_count, free_count;
    restore_io_job *queue; /* ring of buffer_count jobs */
    size_t queue_head, queue_count;
    int closing;
    /* partial pages waiting for their other part (edge_lock) */
    pthread_mutex_t edge_lock;
    restore_edge *edges;
    uint8_t *edge_data; /* RESTORE_EDGES_MAX pages, aligned */
    size_t edge_count;
    size_t edge_limit; /* slots in use at most (RESTORE_EDGES_MAX, lower in tests) */
} restore_io;

/* ---- the whole restore ---- */

typedef struct restore_worker restore_worker;

typedef struct restore_salt {
    int known;
    uint8_t salt[NOVA_SALT_LEN];
} restore_salt;

typedef struct restore_ctx {
    nova_repository *handle;
    nova_repo *repo;
    const nova_chunk_index *index;
    const nova_restore_options *options;
    unsigned threads;
    pid_t pid;
    int euid_is_root;
    uint32_t euid, egid;
    int umask_known;
    uint32_t umask; /* of the process, read once from /proc/self/status */

    /* includes, normalised to "a/b/c" (no leading '/'); none = everything */
    char **includes;
    size_t include_count;

    restore_dirs dirs;
    nova_tree **trees;
    size_t tree_count, tree_cap;
    restore_file *files;
    size_t file_count, file_cap;
    uint32_t *checks; /* files in state CHECK */
    size_t check_count, check_cap;
    restore_occ *occs;
    size_t occ_count, occ_cap;
    restore_window *windows;
    size_t window_count;
    restore_primary *primaries;
    size_t primary_count, primary_cap;
    uint32_t *primary_table; /* open addressing, RESTORE_NONE = empty */
    size_t primary_table_cap;
    restore_link *links;
    size_t link_count, link_cap;

    /* planning (main thread) */
    nova_buf tree_bytes;
    uint64_t planned_entries;

    /* shared by the workers */
    atomic_size_t next_job;
    atomic_int stop;        /* cancelled or a fatal error: workers finish their job and stop */
    atomic_uint_fast64_t temp_serial;
    atomic_size_t open_files;
    size_t file_budget;
    pthread_mutex_t fd_locks[RESTORE_FD_STRIPES];

    /* progress and results */
    uint64_t files_total, bytes_total;
    atomic_uint_fast64_t files_done, bytes_done;
    atomic_uint_fast64_t files_restored, files_unchanged, bytes_written, errors;
    double started;

    /* errors: the first failure is returned; integrity failures take precedence */
    pthread_mutex_t report_lock;
    int first_code;
    char first_message[NOVA_ERROR_MESSAGE_MAX];
    int fatal_code; /* a failure that stopped the restore (0 when none) */
    char fatal_message[NOVA_ERROR_MESSAGE_MAX];

    restore_io io;

    /* pack salts learned by any worker, by pack number (writer.c), so that each pack's
     * trailer is fetched once whichever workers read its windows */
    pthread_mutex_t salt_lock;
    restore_salt *salts;
    size_t salt_cap;

    /* the running phase (restore.c) */
    void (*phase_body)(restore_worker *w);
    pthread_mutex_t phase_lock;
    pthread_cond_t phase_done;
    unsigned phase_running;
} restore_ctx;

/* Per-thread state of a worker (the main thread has one too). */
struct restore_worker {
    restore_ctx *ctx;
    nova_pack_reader *pack;
    nova_hmac *hmac;
    nova_fsmeta_ids *ids;
    nova_fsmeta_apply_opts apply;
    uint32_t salt_pack; /* pack whose salt is in `salt`, RESTORE_NONE when none */
    uint8_t salt[NOVA_SALT_LEN];
    nova_buf stored; /* the current window */
    nova_buf plain;  /* one blob's plaintext, or a chunk of an existing file */
    nova_pack_cache trees; /* the tree packs read last (planning) */
    restore_io_job stage; /* the run of a direct file being staged; stage.buf NULL when none */
    pthread_t thread;
};

int restore_worker_init(restore_worker *w, restore_ctx *ctx);
void restore_worker_free(restore_worker *w);

/* writer.c: one blob (a tree while planning) by id: looked up under the index lock,
 * fetched (from the worker's tree-pack cache, or with a ranged get when its pack is too
 * large to hold) and opened (verified) into out. NOVA_ECORRUPT when the index does not
 * name it, it is not of the expected type or its pack is missing. */
int restore_read_blob(restore_worker *w, const nova_id *id, nova_blob_type type, nova_buf *out,
                      const char *what);
/* restore.c: nova_chunk_index_lookup under the handle's index lock. */
int restore_lookup(restore_ctx *ctx, const nova_id *id, nova_chunk_location *location);

/* ---- reporting (restore.c) ---- */

/* Writes the path as backed up ("/a/b/name") of `name` in directory dir into out. */
void restore_path(const restore_ctx *ctx, uint32_t dir, const char *name, char *out, size_t size);
/* Records a failure of one entry: the calling thread's last error detail describes it.
 * Counts an error, tells options->file_error (serialised) and keeps the first failure. */
void restore_report(restore_ctx *ctx, const char *path, int code);
/* Same, for the entry `name` in directory dir. */
void restore_report_at(restore_ctx *ctx, uint32_t dir, const char *name, int code);
/* A failure that ends the restore (out of space, cancel): workers stop soon. */
void restore_stop(restore_ctx *ctx, int code);
/* ".nova-restore-<pid>-<serial>" */
void restore_temp_name(const restore_ctx *ctx, uint64_t serial, char out[RESTORE_TEMP_NAME_SIZE]);
/* Time since the restore started, seconds. */
double restore_elapsed(const restore_ctx *ctx);

/* ---- phases ---- */

/* plan.c: walks the snapshot tree below root_tree. Only a failure to read the root or
 * out-of-memory fails; damaged subtrees and entries are reported and skipped. */
int restore_plan(restore_ctx *ctx, restore_worker *main_worker, const nova_id *root_tree);
/* plan.c: NOVA_EINVALID naming the first include that is not in the snapshot. */
int restore_check_includes(restore_ctx *ctx, restore_worker *w, const nova_id *root_tree,
                           const char *backup_id);
/* plan.c: the chunk occurrences of files[index] (state NEW or REPLACE). A chunk missing
 * from the index fails the file (reported). */
int restore_plan_file_chunks(restore_ctx *ctx, uint32_t index);
/* plan.c: sorts the occurrences and cuts them into windows. */
int restore_plan_windows(restore_ctx *ctx);

/* writer.c: the check phase for ctx->checks[*], the write phase for ctx->windows[*];
 * each is a worker body taking jobs through ctx->next_job. */
void restore_check_jobs(restore_worker *w);
void restore_write_jobs(restore_worker *w);
/* direct.c: starts the I/O threads (finishing files with w[0..RESTORE_IO_THREADS), which
 * must be nobody else's) when the plan holds direct files; without them direct files are
 * written like the others. */
void restore_io_start(restore_ctx *ctx, restore_worker *w);
/* direct.c: writes what is queued and stops the I/O threads. */
void restore_io_stop(restore_ctx *ctx);
/* direct.c: stages an occurrence of a direct file for the I/O thread: 0 when staged (it is
 * counted done once written), 1 when the caller should write it itself. */
int restore_stage_add(restore_worker *w, const restore_occ *o, const uint8_t *data);
/* direct.c: hands the staged run, if any, to the I/O thread. */
void restore_stage_submit(restore_worker *w);
/* direct.c: before a direct file is finished (every occurrence done), writes the parts of
 * pages still waiting for a neighbour (there is none: it was written another way);
 * with discard, drops them instead (the file is being removed). */
int restore_edges_flush(restore_ctx *ctx, uint32_t index, int discard);

/* writer.c: shared by direct.c */
int restore_file_acquire(restore_ctx *ctx, uint32_t index, int *fd, int *dfd);
void restore_file_release(restore_ctx *ctx, uint32_t index);
void restore_file_fail(restore_ctx *ctx, uint32_t index, int code);
void restore_chunk_done(restore_worker *w, uint32_t index);
int restore_buffered_write(restore_ctx *ctx, uint32_t index, const uint8_t *data, size_t len,
                           uint64_t offset);

/* writer.c: finishes a file whose occurrences are all written (or that has none). */
void restore_file_finish(restore_worker *w, uint32_t index);
/* writer.c: removes files left incomplete by a stop. */
void restore_cleanup_incomplete(restore_ctx *ctx);

/* Test hooks: descriptor budgets (0 = computed from RLIMIT_NOFILE); the size from which
 * files are written with O_DIRECT (0 = RESTORE_DIRECT_MIN). */
void nova_restore_set_fd_budgets_for_tests(size_t dirs, size_t files);
void nova_restore_set_direct_min_for_tests(uint64_t bytes);
/* Test hook: partial pages held in memory at most (0 = RESTORE_EDGES_MAX). */
void nova_restore_set_edge_limit_for_tests(size_t pages);
uint64_t restore_direct_min(void);

#endif
