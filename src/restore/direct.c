/*
 * direct.c -- large files go to disk with O_DIRECT, written by I/O threads from runs the
 * workers stage in a small pool of aligned buffers.
 *
 * Why: a large restore through the page cache fills memory the machine must first find
 * (on small virtual machines, touching fresh memory costs more than the copy itself) and
 * evicts what the rest of the system uses; and parallel writes into one file take its
 * inode lock in turn, so workers would wait on each other instead of decompressing.
 * Here workers only decompress, verify and copy into a pool buffer; RESTORE_IO_THREADS
 * threads do every write of the direct files (two writes in flight keep a disk busier
 * than one, and neither waits for decompression).
 *
 * A run is a stretch of contiguous bytes of one file (a file's consecutive chunks often
 * sit next to each other in a pack). A pool buffer holds the run from an aligned offset:
 * its bytes are [from, len) of the buffer, whole occurrences only (a run that does not fit
 * goes on in a new job), so each job is complete in itself and the I/O threads may finish
 * jobs in any order. The whole-page middle is written with O_DIRECT. A partial page at
 * either end is shared with a neighbouring run: it is assembled in memory (restore_edge)
 * and written with O_DIRECT once both parts are there, so no write of a direct file goes
 * through the page cache -- a buffered write takes the inode lock exclusively and would
 * wait for every direct write in flight. Only the file's last page (written up to the
 * file's end, not a whole page) and pages whose slot could not be had use the page cache;
 * direct ranges are whole pages, so they never overlap a buffered one. The occurrences of
 * a job count as done once it is written, so a file is finished (metadata, rename) only
 * after all its bytes are.
 *
 * Memory: threads + RESTORE_IO_THREADS + 1 buffers of RESTORE_STAGE_SIZE, and up to
 * RESTORE_EDGES_MAX partial pages. A worker that wants a buffer while none is free waits
 * for an I/O thread (back-pressure; never a deadlock: every buffer not free is queued,
 * being written, or being filled by a worker that will queue it without waiting).
 * After a stop (cancel, out of space) queued jobs are not written and their files are
 * marked failed, so they are removed rather than finished.
 */
#include "restore/restore_internal.h"

#include "common/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t test_edge_limit;

void nova_restore_set_edge_limit_for_tests(size_t pages)
{
    test_edge_limit = pages;
}

/* ------------------------------------------------------------------ the I/O thread */

/* Writes [data, data + len) at offset: O_DIRECT when possible, else through the page cache. */
static int direct_write(restore_ctx *ctx, uint32_t index, const uint8_t *data, size_t len,
                        uint64_t offset)
{
    restore_file *f = &ctx->files[index];
    int fd = -1, dfd = -1, rc = 0;

    NOVA_TRY(restore_file_acquire(ctx, index, &fd, &dfd));
    while (len > 0 && dfd >= 0) {
        ssize_t n = pwrite(dfd, data, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EINVAL) {
            rc = nova_fail_errno(nova_error_from_errno(errno), errno, "unable to write '%s'",
                                 f->entry->name);
            break;
        }
        if (n <= 0 || (size_t)n % RESTORE_DIRECT_ALIGN != 0) {
            /* refused (an alignment this file system does not take) or short: the rest
             * goes through the page cache */
            if (n > 0) {
                data += n;
                offset += (uint64_t)n;
                len -= (size_t)n;
            }
            break;
        }
        data += n;
        offset += (uint64_t)n;
        len -= (size_t)n;
    }
    if (rc == 0 && len > 0)
        rc = nova_fsmeta_write_at(fd, offset, data, len, f->entry->name);
    restore_file_release(ctx, index);
    return rc;
}

static int direct_write_page(restore_ctx *ctx, uint32_t index, const uint8_t *page,
                             uint64_t offset)
{
    return direct_write(ctx, index, page, RESTORE_DIRECT_ALIGN, offset);
}

/* ------------------------------------------------------------------ partial pages */

/* Bytes of page `block` that belong to the file (fewer than a page at its end). */
static size_t page_valid(const restore_file *f, uint64_t block)
{
    uint64_t start = block * RESTORE_DIRECT_ALIGN;
    uint64_t rest = f->size > start ? f->size - start : 0;
    return rest < RESTORE_DIRECT_ALIGN ? (size_t)rest : RESTORE_DIRECT_ALIGN;
}

static void mark_present(restore_edge *e, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        e->present[i / 64] |= UINT64_C(1) << (i % 64);
}

static int is_present(const restore_edge *e, size_t i)
{
    return (e->present[i / 64] >> (i % 64)) & 1;
}

/* Writes the present bytes of an edge through the page cache, run by run. */
static int write_present(restore_ctx *ctx, const restore_edge *e, const uint8_t *data,
                         size_t valid)
{
    for (size_t i = 0; i < valid;) {
        size_t j = i;
        if (!is_present(e, i)) {
            i++;
            continue;
        }
        while (j < valid && is_present(e, j))
            j++;
        NOVA_TRY(restore_buffered_write(ctx, e->file, data + i, j - i,
                                        e->block * RESTORE_DIRECT_ALIGN + i));
        i = j;
    }
    return 0;
}

/* Adds bytes [offset, offset + len) of a file, all inside one page, to that page's edge.
 * A page made complete is written (O_DIRECT when whole); without a free slot the bytes
 * go through the page cache at once (a page that ends up assembled partly in memory and
 * partly that way is completed at the file's end, restore_edges_flush). */
static int edge_put(restore_ctx *ctx, uint32_t index, uint64_t offset, const uint8_t *data,
                    size_t len)
{
    restore_io *io = &ctx->io;
    const restore_file *f = &ctx->files[index];
    uint64_t block = offset / RESTORE_DIRECT_ALIGN;
    size_t at = (size_t)(offset % RESTORE_DIRECT_ALIGN), valid = page_valid(f, block);
    restore_edge *e = NULL, *free_slot = NULL;
    uint8_t *page;
    int rc = 0;

    pthread_mutex_lock(&io->edge_lock);
    for (size_t i = 0; i < io->edge_limit && !e; i++) {
        if (io->edges[i].file == index && io->edges[i].block == block)
            e = &io->edges[i];
        else if (io->edges[i].file == RESTORE_NONE && !free_slot)
            free_slot = &io->edges[i];
    }
    if (!e && !free_slot) {
        pthread_mutex_unlock(&io->edge_lock);
        return restore_buffered_write(ctx, index, data, len, offset);
    }
    if (!e) {
        e = free_slot;
        memset(e, 0, sizeof(*e));
        e->file = index;
        e->block = block;
        io->edge_count++;
    }
    page = io->edge_data + (size_t)(e - io->edges) * RESTORE_DIRECT_ALIGN;
    memcpy(page + at, data, len);
    mark_present(e, at, at + len);
    e->filled += (uint32_t)len;
    if (e->filled < valid) {
        pthread_mutex_unlock(&io->edge_lock);
        return 0;
    }
    /* complete: write it outside the lock, then free the slot (nobody else finds it,
     * every byte of the page is here) */
    e->block = UINT64_MAX;
    pthread_mutex_unlock(&io->edge_lock);
    if (valid == RESTORE_DIRECT_ALIGN)
        rc = direct_write_page(ctx, index, page, block * RESTORE_DIRECT_ALIGN);
    else /* the file's last page: never past its end */
        rc = restore_buffered_write(ctx, index, page, valid, block * RESTORE_DIRECT_ALIGN);
    pthread_mutex_lock(&io->edge_lock);
    e->file = RESTORE_NONE;
    io->edge_count--;
    pthread_mutex_unlock(&io->edge_lock);
    return rc;
}

int restore_edges_flush(restore_ctx *ctx, uint32_t index, int discard)
{
    restore_io *io = &ctx->io;
    int rc = 0;

    if (!io->edges)
        return 0;
    pthread_mutex_lock(&io->edge_lock);
    for (size_t i = 0; i < RESTORE_EDGES_MAX && io->edge_count > 0; i++) {
        restore_edge *e = &io->edges[i];
        if (e->file != index)
            continue;
        if (!discard && rc == 0)
            rc = write_present(ctx, e, io->edge_data + i * RESTORE_DIRECT_ALIGN,
                               page_valid(&ctx->files[index], e->block));
        e->file = RESTORE_NONE;
        io->edge_count--;
    }
    pthread_mutex_unlock(&io->edge_lock);
    return rc;
}

/* ------------------------------------------------------------------ writing a job */

/* The bytes [from, to) of a job, all inside one page. */
static int write_piece(restore_ctx *ctx, const restore_io_job *job, size_t from, size_t to)
{
    if (to <= from)
        return 0;
    return edge_put(ctx, job->file, job->start + from, job->buf + from, to - from);
}

static int write_job(restore_ctx *ctx, const restore_io_job *job)
{
    size_t mid_from = (job->from + RESTORE_DIRECT_ALIGN - 1) & ~(size_t)(RESTORE_DIRECT_ALIGN - 1);
    size_t mid_to = job->len & ~(size_t)(RESTORE_DIRECT_ALIGN - 1);

    if (mid_to <= mid_from) { /* no whole page: one or two partial ones */
        size_t split = job->from | (RESTORE_DIRECT_ALIGN - 1);
        if (split + 1 >= job->len)
            return write_piece(ctx, job, job->from, job->len);
        NOVA_TRY(write_piece(ctx, job, job->from, split + 1));
        return write_piece(ctx, job, split + 1, job->len);
    }
    NOVA_TRY(write_piece(ctx, job, job->from, mid_from));
    NOVA_TRY(direct_write(ctx, job->file, job->buf + mid_from, mid_to - mid_from,
                          job->start + mid_from));
    return write_piece(ctx, job, mid_to, job->len);
}

static void *io_main(void *arg)
{
    restore_worker *w = arg;
    restore_ctx *ctx = w->ctx;
    restore_io *io = &ctx->io;

    for (;;) {
        restore_io_job job;
        pthread_mutex_lock(&io->lock);
        while (io->queue_count == 0 && !io->closing)
            pthread_cond_wait(&io->changed, &io->lock);
        if (io->queue_count == 0) {
            pthread_mutex_unlock(&io->lock);
            return NULL;
        }
        job = io->queue[io->queue_head];
        io->queue_head = (io->queue_head + 1) % io->buffer_count;
        io->queue_count--;
        pthread_mutex_unlock(&io->lock);

        if (atomic_load(&ctx->stop)) {
            /* not written: the file must not be finished as if it were (it is removed) */
            atomic_store(&ctx->files[job.file].failed, 1);
        } else if (!atomic_load(&ctx->files[job.file].failed)) {
            int rc = write_job(ctx, &job);
            if (rc < 0)
                restore_file_fail(ctx, job.file, rc);
        }
        pthread_mutex_lock(&io->lock);
        io->free_buffers[io->free_count++] = job.buf;
        pthread_cond_broadcast(&io->changed);
        pthread_mutex_unlock(&io->lock);
        while (job.pending-- > 0)
            restore_chunk_done(w, job.file);
    }
}

static void free_pool(restore_io *io)
{
    for (size_t i = 0; i < io->buffer_count; i++)
        free(io->buffers[i]);
    free(io->buffers);
    free(io->free_buffers);
    free(io->queue);
    free(io->edges);
    free(io->edge_data);
    io->buffers = io->free_buffers = NULL;
    io->queue = NULL;
    io->edges = NULL;
    io->edge_data = NULL;
    io->buffer_count = io->free_count = 0;
}

static int has_direct_files(const restore_ctx *ctx)
{
    for (size_t i = 0; i < ctx->file_count; i++)
        if (ctx->files[i].direct && (ctx->files[i].state == RESTORE_FILE_NEW ||
                                     ctx->files[i].state == RESTORE_FILE_REPLACE))
            return 1;
    return 0;
}

/* Without the pool or the thread, direct files are written like the others. */
static void no_direct_writes(restore_ctx *ctx)
{
    for (size_t i = 0; i < ctx->file_count; i++)
        ctx->files[i].direct = 0;
}

void restore_io_start(restore_ctx *ctx, restore_worker *w)
{
    restore_io *io = &ctx->io;
    size_t count = (size_t)ctx->threads + RESTORE_IO_THREADS + 1;

    memset(io, 0, sizeof(*io));
    if (!has_direct_files(ctx))
        return;
    io->buffers = calloc(count, sizeof(*io->buffers));
    io->free_buffers = calloc(count, sizeof(*io->free_buffers));
    io->queue = calloc(count, sizeof(*io->queue));
    io->edges = malloc(RESTORE_EDGES_MAX * sizeof(*io->edges));
    if (posix_memalign((void **)&io->edge_data, RESTORE_DIRECT_ALIGN,
                       (size_t)RESTORE_EDGES_MAX * RESTORE_DIRECT_ALIGN) != 0)
        io->edge_data = NULL;
    if (!io->buffers || !io->free_buffers || !io->queue || !io->edges || !io->edge_data) {
        free_pool(io);
        no_direct_writes(ctx);
        return;
    }
    for (size_t i = 0; i < RESTORE_EDGES_MAX; i++)
        io->edges[i].file = RESTORE_NONE;
    io->edge_limit = test_edge_limit && test_edge_limit < RESTORE_EDGES_MAX ? test_edge_limit
                                                                            : RESTORE_EDGES_MAX;
    for (; io->buffer_count < count; io->buffer_count++) {
        void *buf;
        if (posix_memalign(&buf, RESTORE_DIRECT_ALIGN, RESTORE_STAGE_SIZE) != 0)
            break;
        io->buffers[io->buffer_count] = buf;
        io->free_buffers[io->free_count++] = buf;
    }
    pthread_mutex_init(&io->lock, NULL);
    pthread_mutex_init(&io->edge_lock, NULL);
    pthread_cond_init(&io->changed, NULL);
    if (io->buffer_count == count)
        for (; io->thread_count < RESTORE_IO_THREADS; io->thread_count++)
            if (pthread_create(&io->threads[io->thread_count], NULL, io_main,
                               &w[io->thread_count]) != 0)
                break;
    io->running = io->thread_count > 0;
    if (!io->running) {
        pthread_mutex_destroy(&io->lock);
        pthread_mutex_destroy(&io->edge_lock);
        pthread_cond_destroy(&io->changed);
        free_pool(io);
        no_direct_writes(ctx);
    }
}

void restore_io_stop(restore_ctx *ctx)
{
    restore_io *io = &ctx->io;

    if (!io->running)
        return;
    pthread_mutex_lock(&io->lock);
    io->closing = 1;
    pthread_cond_broadcast(&io->changed);
    pthread_mutex_unlock(&io->lock);
    for (unsigned i = 0; i < io->thread_count; i++)
        pthread_join(io->threads[i], NULL);
    pthread_mutex_destroy(&io->lock);
    pthread_mutex_destroy(&io->edge_lock);
    pthread_cond_destroy(&io->changed);
    free_pool(io);
    io->running = 0;
}

/* ------------------------------------------------------------------ staging (workers) */

static uint8_t *take_buffer(restore_io *io)
{
    uint8_t *buf;
    pthread_mutex_lock(&io->lock);
    while (io->free_count == 0)
        pthread_cond_wait(&io->changed, &io->lock);
    buf = io->free_buffers[--io->free_count];
    pthread_mutex_unlock(&io->lock);
    return buf;
}

void restore_stage_submit(restore_worker *w)
{
    restore_io *io = &w->ctx->io;

    if (!w->stage.buf)
        return;
    pthread_mutex_lock(&io->lock);
    io->queue[(io->queue_head + io->queue_count) % io->buffer_count] = w->stage;
    io->queue_count++;
    pthread_cond_broadcast(&io->changed);
    pthread_mutex_unlock(&io->lock);
    memset(&w->stage, 0, sizeof(w->stage));
}

/* Starts a run (in a fresh buffer) at file offset `offset` of file `index`. */
static void stage_begin(restore_worker *w, uint32_t index, uint64_t offset)
{
    restore_io_job *s = &w->stage;
    s->buf = take_buffer(&w->ctx->io);
    s->file = index;
    s->start = offset & ~(uint64_t)(RESTORE_DIRECT_ALIGN - 1);
    s->from = (size_t)(offset - s->start);
    s->len = s->from;
    s->pending = 0;
}

int restore_stage_add(restore_worker *w, const restore_occ *o, const uint8_t *data)
{
    restore_io_job *s = &w->stage;
    uint64_t offset = o->file_offset;
    size_t len = o->raw_length;

    if (!w->ctx->io.running || offset % RESTORE_DIRECT_ALIGN + len > RESTORE_STAGE_SIZE)
        return 1; /* too big for a buffer (a repository with larger chunks): write it here */
    if (s->buf && (s->file != o->file || s->start + s->len != offset ||
                   s->len + len > RESTORE_STAGE_SIZE))
        restore_stage_submit(w);
    if (!s->buf)
        stage_begin(w, o->file, offset);
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->pending++;
    return 0;
}
