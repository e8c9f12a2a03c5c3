/*
 * restore.c -- nova_restore: resolve the backup, take a shared repository lock, run the
 * phases (restore_internal.h), link hard links, set directory metadata deepest first, and
 * report.
 *
 * Threads: the main thread plans, then watches the workers of each parallel phase,
 * calling the progress callback about ten times a second and refreshing the lock; a
 * non-zero return from the callback stops the workers after their current job. The
 * file_error callback may be called from any worker thread, but never concurrently.
 *
 * Return value: 0 when every entry was restored. Otherwise the restore goes on with what
 * it can and returns the first failure -- an integrity failure (NOVA_ECHECKSUM,
 * NOVA_ECORRUPT) in preference to any other -- with result->errors counting the entries
 * that were not restored. A failure before anything was restored (no such backup, a bad
 * include, an unusable target) leaves result->errors at 0. A stop (out of space,
 * cancellation) removes the files it left incomplete.
 */
#include "restore/restore_internal.h"

#include "backup/catalog.h"
#include "common/err.h"
#include "common/log.h"
#include "repo/lock.h"
#include "repo/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCK_TTL_NS (INT64_C(30) * 60 * 1000000000)
#define LOCK_REFRESH_SECONDS (5.0 * 60.0)

static size_t test_dir_budget, test_file_budget;
static uint64_t test_direct_min;

void nova_restore_set_fd_budgets_for_tests(size_t dirs, size_t files)
{
    test_dir_budget = dirs;
    test_file_budget = files;
}

void nova_restore_set_direct_min_for_tests(uint64_t bytes)
{
    test_direct_min = bytes;
}

uint64_t restore_direct_min(void)
{
    return test_direct_min ? test_direct_min : RESTORE_DIRECT_MIN;
}

/* ------------------------------------------------------------------ small helpers */

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double restore_elapsed(const restore_ctx *ctx)
{
    return monotonic_seconds() - ctx->started;
}

void restore_temp_name(const restore_ctx *ctx, uint64_t serial, char out[RESTORE_TEMP_NAME_SIZE])
{
    snprintf(out, RESTORE_TEMP_NAME_SIZE, ".nova-restore-%ld-%llu", (long)ctx->pid,
             (unsigned long long)serial);
}

void restore_path(const restore_ctx *ctx, uint32_t dir, const char *name, char *out, size_t size)
{
    const char *parts[64];
    size_t count = 0, len = 0;
    int truncated = 0;

    for (uint32_t d = dir; d != 0 && d != RESTORE_NONE; d = ctx->dirs.items[d].parent) {
        if (count == sizeof(parts) / sizeof(parts[0])) {
            truncated = 1;
            break;
        }
        parts[count++] = ctx->dirs.items[d].entry->name;
    }
    out[0] = '\0';
    if (truncated)
        len += (size_t)snprintf(out, size, "/...");
    while (count > 0 && len < size)
        len += (size_t)snprintf(out + len, size - len, "/%s", parts[--count]);
    if (name && len < size)
        snprintf(out + len, size - len, "/%s", name);
}

int restore_lookup(restore_ctx *ctx, const nova_id *id, nova_chunk_location *location)
{
    int found;
    pthread_mutex_lock(&ctx->handle->index_lock);
    found = nova_chunk_index_lookup(ctx->index, id, location);
    pthread_mutex_unlock(&ctx->handle->index_lock);
    return found;
}

static int is_integrity(int code)
{
    return code == NOVA_ECHECKSUM || code == NOVA_ECORRUPT;
}

void restore_report(restore_ctx *ctx, const char *path, int code)
{
    const char *message = nova_error_last()->message;

    if (code == NOVA_ENOMEM)
        restore_stop(ctx, code);
    pthread_mutex_lock(&ctx->report_lock);
    atomic_fetch_add(&ctx->errors, 1);
    if (ctx->first_code == 0 || (is_integrity(code) && !is_integrity(ctx->first_code))) {
        ctx->first_code = code;
        snprintf(ctx->first_message, sizeof(ctx->first_message), "%s", message);
    }
    if (ctx->options->file_error)
        ctx->options->file_error(path, code, message, ctx->options->payload);
    pthread_mutex_unlock(&ctx->report_lock);
}

void restore_report_at(restore_ctx *ctx, uint32_t dir, const char *name, int code)
{
    char path[4096];
    restore_path(ctx, dir, name, path, sizeof(path));
    restore_report(ctx, path, code);
}

void restore_stop(restore_ctx *ctx, int code)
{
    pthread_mutex_lock(&ctx->report_lock);
    if (ctx->fatal_code == 0) {
        ctx->fatal_code = code;
        snprintf(ctx->fatal_message, sizeof(ctx->fatal_message), "%s",
                 nova_error_last()->message);
    }
    pthread_mutex_unlock(&ctx->report_lock);
    atomic_store(&ctx->stop, 1);
}

/* ------------------------------------------------------------------ setting up */

/* "/a//b/./c/" -> "a/b/c"; "" for the root; NOVA_EINVALID for "..". */
static int normalize_include(char **out, const char *include)
{
    nova_buf b = NOVA_BUF_INIT;
    const char *p = include;
    int rc = 0;

    *out = NULL;
    while (rc == 0 && *p) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            rc = nova_fail(NOVA_EINVALID, "include '%s': '..' is not allowed", include);
        else if (len > NOVA_TREE_NAME_MAX)
            rc = nova_fail(NOVA_EINVALID, "include '%.64s...': a name is too long", include);
        else if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (b.len > 0)
                rc = nova_buf_append(&b, "/", 1);
            if (rc == 0)
                rc = nova_buf_append(&b, p, len);
        }
        p += len;
        while (*p == '/')
            p++;
    }
    if (rc == 0)
        rc = nova_buf_append(&b, "", 1);
    if (rc < 0) {
        nova_buf_free(&b);
        return rc;
    }
    *out = (char *)b.data;
    return 0;
}

static int set_includes(restore_ctx *ctx, const nova_restore_options *o)
{
    if (o->include_count == 0)
        return 0;
    if (!o->includes)
        return nova_fail(NOVA_EINVALID, "restore options: include_count without includes");
    ctx->includes = calloc(o->include_count, sizeof(*ctx->includes));
    if (!ctx->includes)
        return nova_fail(NOVA_ENOMEM, "unable to store the includes");
    for (size_t i = 0; i < o->include_count; i++) {
        char *inc;
        NOVA_TRY(normalize_include(&inc, o->includes[i] ? o->includes[i] : ""));
        if (inc[0] == '\0') { /* "/": everything */
            free(inc);
            for (size_t j = 0; j < ctx->include_count; j++)
                free(ctx->includes[j]);
            ctx->include_count = 0;
            return 0;
        }
        ctx->includes[ctx->include_count++] = inc;
    }
    return 0;
}

/* Raises the soft descriptor limit and splits what it allows between directories and
 * files being written. */
static void fd_budgets(size_t *dirs, size_t *files)
{
    struct rlimit rl;
    size_t limit = 1024, avail;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t want = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
        if (want > ((rlim_t)1 << 20))
            want = (rlim_t)1 << 20;
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
            rl.rlim_cur = want;
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                getrlimit(RLIMIT_NOFILE, &rl);
        }
        limit = rl.rlim_cur == RLIM_INFINITY ? (size_t)1 << 20 : (size_t)rl.rlim_cur;
    }
    avail = limit > 512 ? limit - 256 : limit / 2;
    *dirs = avail / 4 * 3;
    if (*dirs > 65536)
        *dirs = 65536;
    *files = avail / 4;
    if (*files > 4096)
        *files = 4096;
    if (*files < 16)
        *files = 16;
    if (test_dir_budget)
        *dirs = test_dir_budget;
    if (test_file_budget)
        *files = test_file_budget;
}

/* The process umask without changing it (umask(2) cannot read without writing, and
 * writing it would race with other threads of the caller). 1 when known. */
static int read_umask(uint32_t *out)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "re");
    int found = 0;

    if (!f)
        return 0;
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned value;
        if (sscanf(line, "Umask: %o", &value) == 1) {
            *out = value & 0777;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static void ctx_free(restore_ctx *ctx)
{
    if (!ctx)
        return;
    for (size_t i = 0; i < ctx->include_count; i++)
        free(ctx->includes[i]);
    free(ctx->includes);
    restore_dirs_free(&ctx->dirs);
    for (size_t i = 0; i < ctx->tree_count; i++)
        nova_tree_free(ctx->trees[i]);
    free(ctx->trees);
    for (size_t i = 0; i < ctx->file_count; i++) {
        if (ctx->files[i].fd >= 0)
            close(ctx->files[i].fd);
        if (ctx->files[i].dfd >= 0)
            close(ctx->files[i].dfd);
    }
    free(ctx->files);
    free(ctx->checks);
    free(ctx->occs);
    free(ctx->windows);
    free(ctx->primaries);
    free(ctx->primary_table);
    free(ctx->links);
    nova_buf_free(&ctx->tree_bytes);
    for (unsigned i = 0; i < RESTORE_FD_STRIPES; i++)
        pthread_mutex_destroy(&ctx->fd_locks[i]);
    pthread_mutex_destroy(&ctx->report_lock);
    pthread_mutex_destroy(&ctx->salt_lock);
    free(ctx->salts);
    pthread_mutex_destroy(&ctx->phase_lock);
    pthread_cond_destroy(&ctx->phase_done);
    free(ctx);
}

static int ctx_new(restore_ctx **out, nova_repository *handle, const nova_chunk_index *index,
                   const nova_restore_options *options)
{
    restore_ctx *ctx = calloc(1, sizeof(*ctx));
    int rc;

    *out = NULL;
    if (!ctx)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a restore");
    ctx->handle = handle;
    ctx->repo = handle->repo;
    ctx->index = index;
    ctx->options = options;
    /* a worker fetches a pack, then decrypts and writes it: on a cloud, where a fetch
     * mostly waits, as many workers as connections keep the downloads going; each holds
     * up to two 4 MiB buffers, hence the cap */
    ctx->threads = handle->threads > handle->connections ? handle->threads : handle->connections;
    if (ctx->threads > RESTORE_WORKERS_MAX)
        ctx->threads = handle->threads > RESTORE_WORKERS_MAX ? handle->threads
                                                              : RESTORE_WORKERS_MAX;
    if (ctx->threads == 0)
        ctx->threads = 1;
    ctx->pid = getpid();
    ctx->euid = (uint32_t)geteuid();
    ctx->egid = (uint32_t)getegid();
    ctx->euid_is_root = ctx->euid == 0;
    ctx->umask_known = read_umask(&ctx->umask);
    ctx->started = monotonic_seconds();
    for (unsigned i = 0; i < RESTORE_FD_STRIPES; i++)
        pthread_mutex_init(&ctx->fd_locks[i], NULL);
    pthread_mutex_init(&ctx->report_lock, NULL);
    pthread_mutex_init(&ctx->salt_lock, NULL);
    pthread_mutex_init(&ctx->phase_lock, NULL);
    pthread_cond_init(&ctx->phase_done, NULL);
    rc = set_includes(ctx, options);
    if (rc < 0) {
        ctx_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

/* ------------------------------------------------------------------ the repository lock */

typedef struct restore_lock {
    nova_lock lock;
    char name[NOVA_LOCK_NAME_SIZE];
    int held;
    double refreshed;
} restore_lock;

static int lock_take(restore_ctx *ctx, restore_lock *l)
{
    nova_repo *repo = ctx->repo;
    int64_t now = realtime_ns();
    int rc;

    memset(l, 0, sizeof(*l));
    NOVA_TRY(nova_lock_init(&l->lock, 0, "restore", LOCK_TTL_NS));
    rc = nova_lock_acquire(repo->storage, repo->keys.enc, &l->lock, now, l->name);
    if (rc == NOVA_EACCESS) {
        /* A read-only repository (a mounted backup disk): nobody can prune it either. */
        nova_log_warn("restore: the repository is read-only; restoring without a lock");
        return 0;
    }
    if (rc < 0)
        return rc;
    l->held = 1;
    l->refreshed = restore_elapsed(ctx);
    return 0;
}

/* A new lock object with the same lock id and a later expiry, then the old one goes. */
static void lock_refresh(restore_ctx *ctx, restore_lock *l)
{
    nova_repo *repo = ctx->repo;
    nova_lock fresh;
    char name[NOVA_LOCK_NAME_SIZE];
    int64_t now;

    if (!l->held || restore_elapsed(ctx) - l->refreshed < LOCK_REFRESH_SECONDS)
        return;
    now = realtime_ns();
    fresh = l->lock;
    fresh.created_ns = now;
    fresh.expires_ns = now + LOCK_TTL_NS;
    if (nova_lock_acquire(repo->storage, repo->keys.enc, &fresh, now, name) == 0) {
        nova_lock_release(repo->storage, l->name);
        l->lock = fresh;
        memcpy(l->name, name, sizeof(name));
    } else {
        nova_log_warn("restore: unable to refresh the repository lock: %s",
                      nova_error_last()->message);
    }
    l->refreshed = restore_elapsed(ctx);
}

static void lock_release(restore_ctx *ctx, restore_lock *l)
{
    if (l->held && nova_lock_release(ctx->repo->storage, l->name) < 0)
        nova_log_warn("restore: unable to release the repository lock '%s': %s", l->name,
                      nova_error_last()->message);
    l->held = 0;
}

/* ------------------------------------------------------------------ parallel phases */

static int report_progress(restore_ctx *ctx)
{
    nova_progress p;

    if (!ctx->options->progress)
        return 0;
    memset(&p, 0, sizeof(p));
    p.phase = NOVA_PHASE_RESTORE;
    p.files_done = atomic_load(&ctx->files_done);
    p.files_total = ctx->files_total;
    p.bytes_done = atomic_load(&ctx->bytes_done);
    p.bytes_total = ctx->bytes_total;
    p.elapsed_seconds = restore_elapsed(ctx);
    return ctx->options->progress(&p, ctx->options->payload);
}

static void cancel(restore_ctx *ctx)
{
    nova_fail(NOVA_ECANCELLED, "restore cancelled");
    restore_stop(ctx, NOVA_ECANCELLED);
}

static void *worker_main(void *arg)
{
    restore_worker *w = arg;
    restore_ctx *ctx = w->ctx;

    ctx->phase_body(w);
    pthread_mutex_lock(&ctx->phase_lock);
    ctx->phase_running--;
    pthread_cond_signal(&ctx->phase_done);
    pthread_mutex_unlock(&ctx->phase_lock);
    return NULL;
}

static void wait_phase(restore_ctx *ctx, restore_lock *lock)
{
    for (;;) {
        struct timespec until;
        int running;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&ctx->phase_lock);
        if (ctx->phase_running > 0)
            pthread_cond_timedwait(&ctx->phase_done, &ctx->phase_lock, &until);
        running = ctx->phase_running > 0;
        pthread_mutex_unlock(&ctx->phase_lock);
        if (!running)
            return;
        if (!atomic_load(&ctx->stop) && report_progress(ctx) != 0)
            cancel(ctx);
        lock_refresh(ctx, lock);
    }
}

/* Runs body on every worker at once; the main thread watches. */
static void run_phase(restore_ctx *ctx, restore_worker *workers, unsigned count,
                      void (*body)(restore_worker *w), restore_lock *lock)
{
    unsigned started = 0;

    atomic_store(&ctx->next_job, 0);
    ctx->phase_body = body;
    pthread_mutex_lock(&ctx->phase_lock);
    for (unsigned i = 0; i < count; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
            break;
        started++;
        ctx->phase_running++;
    }
    pthread_mutex_unlock(&ctx->phase_lock);
    if (started == 0) /* no thread could start: do the work here */
        body(&workers[0]);
    else
        wait_phase(ctx, lock);
    for (unsigned i = 0; i < started; i++)
        pthread_join(workers[i].thread, NULL);
}

/* ------------------------------------------------------------------ hard links */

static int primary_in_place(const restore_ctx *ctx, const restore_primary *p)
{
    const restore_file *f;
    if (p->file == RESTORE_NONE)
        return p->ok;
    f = &ctx->files[p->file];
    return f->state == RESTORE_FILE_UNCHANGED ||
           ((f->state == RESTORE_FILE_NEW || f->state == RESTORE_FILE_REPLACE) &&
            !atomic_load(&f->failed));
}

/* Links l to its primary; *unchanged when the name already was that link. */
static int make_link(restore_ctx *ctx, const restore_link *l, int *unchanged)
{
    const restore_primary *p = &ctx->primaries[l->primary];
    const char *name = l->entry->name;
    char temp[RESTORE_TEMP_NAME_SIZE];
    struct stat have, want;
    int src_fd, dst_fd, rc;

    *unchanged = 0;
    if (!primary_in_place(ctx, p)) {
        char path[4096];
        restore_path(ctx, p->dir, p->entry->name, path, sizeof(path));
        return nova_fail(NOVA_EIO, "unable to restore hard link '%s': its target '%s' was not "
                         "restored", name, path);
    }
    NOVA_TRY(restore_dir_get(&ctx->dirs, p->dir, &src_fd));
    rc = restore_dir_get(&ctx->dirs, l->dir, &dst_fd);
    if (rc < 0) {
        restore_dir_put(&ctx->dirs, p->dir);
        return rc;
    }
    if (ctx->dirs.items[l->dir].fresh ||
        fstatat(dst_fd, name, &have, AT_SYMLINK_NOFOLLOW) != 0) {
        rc = nova_fsmeta_link_at(src_fd, p->entry->name, dst_fd, name);
    } else if (fstatat(src_fd, p->entry->name, &want, AT_SYMLINK_NOFOLLOW) == 0 &&
               have.st_dev == want.st_dev && have.st_ino == want.st_ino) {
        *unchanged = 1;
    } else if (S_ISDIR(have.st_mode)) {
        rc = nova_fail(NOVA_EEXISTS, "unable to restore hard link '%s': a directory is in the "
                       "way", name);
    } else {
        restore_temp_name(ctx, atomic_fetch_add(&ctx->temp_serial, 1), temp);
        rc = nova_fsmeta_link_at(src_fd, p->entry->name, dst_fd, temp);
        if (rc == 0 && renameat(dst_fd, temp, dst_fd, name) != 0) {
            rc = nova_fail_errno(nova_error_from_errno(errno), errno, "unable to rename hard "
                                 "link '%s' into place", name);
            unlinkat(dst_fd, temp, 0);
        }
    }
    restore_dir_put(&ctx->dirs, l->dir);
    restore_dir_put(&ctx->dirs, p->dir);
    return rc;
}

static void make_links(restore_ctx *ctx)
{
    for (size_t i = 0; i < ctx->link_count && !atomic_load(&ctx->stop); i++) {
        const restore_link *l = &ctx->links[i];
        int unchanged, rc = make_link(ctx, l, &unchanged);
        if (rc < 0)
            restore_report_at(ctx, l->dir, l->entry->name, rc);
        else
            atomic_fetch_add(unchanged ? &ctx->files_unchanged : &ctx->files_restored, 1);
        atomic_fetch_add(&ctx->files_done, 1);
    }
}

/* ------------------------------------------------------------------ directory metadata */

/* Deepest first: directories were added in pre-order, so every directory comes after its
 * parent and the reverse order finishes children before their parents. */
static void apply_directory_metadata(restore_ctx *ctx, restore_worker *w)
{
    for (size_t i = ctx->dirs.count; i-- > 1 && !atomic_load(&ctx->stop);) {
        const restore_dir *d = &ctx->dirs.items[i];
        int fd, parent_fd, rc;
        if (d->failed)
            continue;
        rc = restore_dir_get(&ctx->dirs, d->parent, &parent_fd);
        if (rc == 0) {
            rc = restore_dir_get(&ctx->dirs, (uint32_t)i, &fd);
            if (rc == 0) {
                rc = nova_fsmeta_apply(parent_fd, fd, d->entry, &w->apply);
                restore_dir_put(&ctx->dirs, (uint32_t)i);
            }
            restore_dir_put(&ctx->dirs, d->parent);
        }
        if (rc < 0)
            restore_report_at(ctx, d->parent, d->entry->name, rc);
    }
}

/* ------------------------------------------------------------------ the restore */

/* Files with nothing to write (empty, or every chunk already failed) are finished here. */
static void finish_files_without_chunks(restore_ctx *ctx, restore_worker *w)
{
    for (size_t i = 0; i < ctx->file_count && !atomic_load(&ctx->stop); i++) {
        restore_file *f = &ctx->files[i];
        if ((f->state == RESTORE_FILE_NEW || f->state == RESTORE_FILE_REPLACE) &&
            atomic_load(&f->remaining) == 0)
            restore_file_finish(w, (uint32_t)i);
    }
}

static int run(restore_ctx *ctx, restore_worker *workers, const nova_snapshot *snap,
               const char *backup_id, restore_lock *lock)
{
    restore_worker *main_worker = &workers[ctx->threads];
    size_t dir_budget;
    int target_fd;

    NOVA_TRY(restore_check_includes(ctx, main_worker, &snap->tree, backup_id));
    NOVA_TRY(nova_fsmeta_open_target(&target_fd, ctx->options->target, 1));
    fd_budgets(&dir_budget, &ctx->file_budget);
    NOVA_TRY(restore_dirs_init(&ctx->dirs, target_fd, dir_budget));
    {
        struct stat st;
        if (fstat(target_fd, &st) == 0)
            restore_dir_note_inheritance(&ctx->dirs, 0, target_fd, &st, ctx->egid);
    }
    NOVA_TRY(restore_plan(ctx, main_worker, &snap->tree));
    nova_pack_cache_clear(&main_worker->trees); /* the trees are decoded and kept */
    restore_dirs_freeze(&ctx->dirs);

    if (ctx->check_count > 0 && !atomic_load(&ctx->stop)) {
        run_phase(ctx, workers, ctx->threads, restore_check_jobs, lock);
        for (size_t i = 0; i < ctx->check_count; i++)
            if (ctx->files[ctx->checks[i]].state == RESTORE_FILE_REPLACE)
                NOVA_TRY(restore_plan_file_chunks(ctx, ctx->checks[i]));
    }
    NOVA_TRY(restore_plan_windows(ctx));
    finish_files_without_chunks(ctx, main_worker);
    if (ctx->window_count > 0 && !atomic_load(&ctx->stop)) {
        restore_io_start(ctx, &workers[ctx->threads + 1]);
        run_phase(ctx, workers, ctx->threads, restore_write_jobs, lock);
        restore_io_stop(ctx);
    }
    if (atomic_load(&ctx->stop)) {
        restore_cleanup_incomplete(ctx);
        return 0;
    }
    make_links(ctx);
    apply_directory_metadata(ctx, main_worker);
    report_progress(ctx); /* the final 100%: nothing is left to cancel */
    return 0;
}

static int check_arguments(nova_repository *handle, const char *id,
                           const nova_restore_options *options)
{
    if (!handle || !id || !options)
        return nova_fail(NOVA_EINVALID, "restore: a repository, a backup id and options are "
                         "needed");
    if (options->version != NOVA_RESTORE_OPTIONS_VERSION)
        return nova_fail(NOVA_EINVALID, "restore options of version %u (want %u)",
                         options->version, NOVA_RESTORE_OPTIONS_VERSION);
    if (!options->target || !options->target[0])
        return nova_fail(NOVA_EINVALID, "restore: no target directory given");
    return 0;
}

int nova_restore(nova_repository *handle, const char *id, const nova_restore_options *options,
                 nova_restore_result *result)
{
    restore_ctx *ctx = NULL;
    restore_worker *workers = NULL;
    nova_snapshot *snap = NULL;
    nova_chunk_index *index;
    restore_lock lock;
    char hex[NOVA_ID_HEX_LEN + 1];
    unsigned ready = 0;
    nova_id snap_id;
    int rc;

    memset(&lock, 0, sizeof(lock));
    if (result)
        memset(result, 0, sizeof(*result));
    NOVA_TRY(check_arguments(handle, id, options));
    NOVA_TRY(nova_catalog_resolve(handle, id, &snap_id));
    nova_id_to_hex(&snap_id, hex);
    NOVA_TRY(nova_snapshot_read(&snap, handle->repo->storage, &snap_id, handle->repo->keys.enc));
    rc = nova_repository_chunk_index(handle, &index);
    if (rc == 0)
        rc = ctx_new(&ctx, handle, index, options);
    /* the compute workers, then the main thread's and the I/O threads' */
    if (rc == 0 && !(workers = calloc(ctx->threads + 1 + RESTORE_IO_THREADS, sizeof(*workers))))
        rc = nova_fail(NOVA_ENOMEM, "unable to allocate the restore workers");
    for (; rc == 0 && ready < ctx->threads + 1 + RESTORE_IO_THREADS; ready++)
        rc = restore_worker_init(&workers[ready], ctx);
    if (rc == 0)
        rc = lock_take(ctx, &lock);
    if (rc == 0)
        rc = run(ctx, workers, snap, hex, &lock);
    if (ctx) {
        lock_release(ctx, &lock);
        if (result) {
            result->files_restored = atomic_load(&ctx->files_restored);
            result->files_unchanged = atomic_load(&ctx->files_unchanged);
            result->bytes_written = atomic_load(&ctx->bytes_written);
            result->errors = atomic_load(&ctx->errors);
        }
        if (rc == 0 && ctx->fatal_code)
            rc = nova_fail(ctx->fatal_code, "%s", ctx->fatal_message);
        else if (rc == 0 && ctx->first_code)
            rc = nova_fail(ctx->first_code, "%s", ctx->first_message);
    }
    for (unsigned i = 0; i < ready; i++)
        restore_worker_free(&workers[i]);
    free(workers);
    ctx_free(ctx);
    nova_snapshot_free(snap);
    return rc;
}
