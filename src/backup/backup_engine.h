/*
 * backup_engine.h -- the parallel pipeline under a backup (private to src/backup).
 *
 * The walk (one thread) hands files to read in batches; worker threads read each file,
 * cut it into chunks, hash them, skip those the repository or this backup already has,
 * and compress and encrypt the rest into their own packs; one uploader thread stores full
 * packs and then the index deltas that name them. A file larger than a worker's small
 * buffer is read in windows by one worker while every idle worker hashes and compresses
 * its chunks, so a single large file keeps all cores busy. Completed batches come back to
 * the walk, which builds the trees; only the walk's thread calls the user's callbacks.
 *
 * Memory is bounded whatever the data: batches in flight (queue_max), windows for large
 * files (workers + 1, each 1.5 x the largest chunk and at least 4 MiB; their pages are
 * given back when no large file is being read), one pack per worker and one for the
 * walk's trees while they fill (flushed at pack_limit, at most 2 MiB), and two packs
 * waiting for or in upload. Blob ids this backup stored are kept (about 48 bytes each)
 * until the end.
 *
 * Commit order: packs, then an index delta naming only uploaded packs (after which its
 * entries are published into the handle's shared chunk index), then -- by the caller --
 * the snapshot. A failure or cancellation stops everything; the repository then holds at
 * worst packs or index deltas that no snapshot references.
 */
#ifndef NOVA_BACKUP_ENGINE_H
#define NOVA_BACKUP_ENGINE_H

#include "backup/backup_internal.h"

/* One file to read. The walk fills path, entry (metadata as scanned), dir and
 * had_parent_file; the worker fills the rest and updates entry (size, times, inode ...)
 * to what it read, with entry.chunks pointing at the content's chunk ids. */
typedef struct nova_bk_job {
    const char *path; /* in the batch */
    nova_tree_entry entry;
    void *dir;            /* the walk's directory node */
    int had_parent_file;  /* the parent snapshot had a regular file at this path */
    int error;            /* 0, or why the file could not be read (it is left out) */
    int changed_while_read; /* stored, but it changed during both reads */
    char *message;        /* malloc'd detail for error / changed_while_read */
    nova_id single_chunk; /* storage when the file is one chunk */
    nova_id *owned_chunks; /* malloc'd storage for more chunks */
    uint64_t bytes_read;
} nova_bk_job;

typedef struct nova_bk_batch nova_bk_batch;

/* Creates the engine and starts its threads: `threads` workers and `uploads` uploaders
 * (packs stored at once; each at least 1, uploads at most 64). */
int nova_bk_engine_new(nova_bk_engine **out, nova_repository *handle, unsigned threads,
                       unsigned uploads);
/* Stops every thread (after nova_bk_engine_finish, or to abandon a failed run) and frees
 * everything. NULL-safe. */
void nova_bk_engine_free(nova_bk_engine *engine);

/* Adds a job for `entry` at `path` to the current batch, copying what they point to. May
 * start a new batch when the current one is full: returns 1 when the previous batch is
 * ready to submit (call nova_bk_engine_submit until it is taken), 0 otherwise. *job
 * receives the job (valid until its batch is released). */
int nova_bk_engine_add_job(nova_bk_engine *engine, nova_bk_job **job, const nova_tree_entry *entry,
                           const char *path, void *dir, int had_parent_file);
/* Hands the batch waiting for submission (if any) to the workers, or, when
 * `flush_current` is set, also the batch being filled. Waits up to wait_ms for room in
 * the queue. Returns 1 when nothing is left to submit, 0 when the queue stayed full,
 * or the engine's failure code. */
int nova_bk_engine_submit(nova_bk_engine *engine, int flush_current, int wait_ms);
/* Completed batches (a list linked through nova_bk_batch_next), NULL when none; waits up
 * to wait_ms for one. */
nova_bk_batch *nova_bk_engine_take_done(nova_bk_engine *engine, int wait_ms);
nova_bk_batch *nova_bk_batch_next(const nova_bk_batch *batch);
nova_bk_job *nova_bk_batch_jobs(nova_bk_batch *batch, size_t *count);
/* Returns a completed batch for reuse (frees its jobs' chunk lists and messages). */
void nova_bk_engine_release(nova_bk_engine *engine, nova_bk_batch *batch);

/* Stores a TREE blob (unless known) from the walk's thread; *id receives its id. */
int nova_bk_engine_store_tree(nova_bk_engine *engine, const void *data, size_t len,
                              nova_id *id);
/* For a file taken unchanged from the parent: when every chunk is in the repository's
 * index, adds their compressed sizes to the statistics and returns 1; returns 0 (and
 * adds nothing) when one is missing -- the file must then be read again. */
int nova_bk_engine_account(nova_bk_engine *engine, const nova_id *chunks, uint64_t count);

/* Stops the run with `code` (a negative NOVA_E value); the first failure wins. Returns
 * the failure in effect. */
int nova_bk_engine_fail(nova_bk_engine *engine, int code);
/* 0, or the failure that stopped the run (with its detail set on this thread). */
int nova_bk_engine_failed(nova_bk_engine *engine);

/* After the last batch was submitted and every completed batch taken: waits for the
 * workers, stores the last packs and the final index delta. */
int nova_bk_engine_finish(nova_bk_engine *engine);

/* Running totals for progress (any thread). */
uint64_t nova_bk_engine_bytes_done(const nova_bk_engine *engine);
/* Final figures, after nova_bk_engine_finish: bytes_read, compressed_size, bytes_added. */
void nova_bk_engine_stats(const nova_bk_engine *engine, nova_bk_stats *stats);

#endif
