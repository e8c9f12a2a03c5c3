/*
 * replicas_workers.c -- progress and the pool of threads that move or hash objects for
 * copy, status and repair.
 *
 * Invariants:
 *   - progress callbacks and the housekeeping tick (lock refresh) run on the calling
 *     thread only, every 100 ms while workers run and once more when all jobs succeeded;
 *     workers only add to atomic counters;
 *   - each job is taken by exactly one worker; each worker reuses one scratch buffer for
 *     all the objects it handles;
 *   - the first failing job stops the others, and its error detail (recorded on its own
 *     thread) is what the caller sees; a cancel from the callback stops them too.
 */
#include "api/replicas_internal.h"

#include "common/err.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64u
#define REPORT_INTERVAL_NS 100000000L

/* ---- progress --------------------------------------------------------------------------- */

void replica_progress_init(replica_progress *p, nova_progress_cb cb, void *payload)
{
    memset(p, 0, sizeof(*p));
    p->cb = cb;
    p->payload = payload;
    p->started = replica_mono_seconds();
    atomic_init(&p->objects_done, 0);
    atomic_init(&p->bytes_done, 0);
}

void replica_progress_done(replica_progress *p, uint64_t bytes)
{
    atomic_fetch_add(&p->objects_done, 1);
    atomic_fetch_add(&p->bytes_done, bytes);
}

int replica_progress_report(replica_progress *p)
{
    nova_progress now;
    memset(&now, 0, sizeof(now));
    now.phase = NOVA_PHASE_COPY;
    now.files_done = atomic_load(&p->objects_done);
    now.files_total = p->objects_total;
    now.bytes_done = atomic_load(&p->bytes_done);
    now.bytes_total = p->bytes_total;
    now.elapsed_seconds = replica_mono_seconds() - p->started;
    if (p->cb && p->cb(&now, p->payload) != 0)
        return nova_fail(NOVA_ECANCELLED, "cancelled after %llu of %llu objects",
                         (unsigned long long)now.files_done,
                         (unsigned long long)now.files_total);
    return p->tick ? p->tick(p->tick_ctx) : 0;
}

void replica_progress_add_jobs(replica_progress *p, const replica_job_list *jobs)
{
    p->objects_total += jobs->count;
    for (size_t i = 0; i < jobs->count; i++)
        p->bytes_total += jobs->items[i].size;
}

/* ---- job lists -------------------------------------------------------------------------- */

int replica_job_add(replica_job_list *l, replica_kind kind, const nova_id *id, uint64_t size)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        replica_job *grown = realloc(l->items, cap * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to plan %zu transfers", cap);
        l->items = grown;
        l->cap = cap;
    }
    l->items[l->count].id = *id;
    l->items[l->count].kind = kind;
    l->items[l->count].size = size;
    l->count++;
    return 0;
}

int replica_job_add_all(replica_job_list *l, replica_kind kind, const replica_id_map *map,
                        int sized)
{
    nova_id *ids = NULL;
    int rc = replica_id_map_sorted(map, &ids);

    for (size_t i = 0; rc == 0 && i < map->count; i++) {
        uint64_t size = 0;
        if (sized)
            replica_id_map_get(map, &ids[i], &size);
        rc = replica_job_add(l, kind, &ids[i], size);
    }
    free(ids);
    return rc;
}

void replica_job_list_free(replica_job_list *l)
{
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* ---- the pool --------------------------------------------------------------------------- */

typedef struct pool {
    const replica_job *jobs;
    size_t count;
    replica_job_fn fn;
    void *ctx;
    atomic_size_t next;
    atomic_int stop;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    size_t running;
    int rc;
    nova_error_detail detail; /* of the first failure, from its worker */
} pool;

static void *pool_worker(void *arg)
{
    pool *p = arg;
    nova_buf scratch = NOVA_BUF_INIT;

    while (!atomic_load(&p->stop)) {
        size_t i = atomic_fetch_add(&p->next, 1);
        int rc;
        if (i >= p->count)
            break;
        rc = p->fn(p->ctx, &p->jobs[i], &scratch);
        if (rc < 0) {
            pthread_mutex_lock(&p->lock);
            if (p->rc == 0) {
                p->rc = rc;
                p->detail = *nova_error_last();
            }
            pthread_mutex_unlock(&p->lock);
            atomic_store(&p->stop, 1);
        }
    }
    nova_buf_free(&scratch);
    pthread_mutex_lock(&p->lock);
    p->running--;
    pthread_cond_signal(&p->idle);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void pool_init(pool *p, const replica_job_list *jobs, replica_job_fn fn, void *ctx)
{
    pthread_condattr_t attr;

    memset(p, 0, sizeof(*p));
    p->jobs = jobs->items;
    p->count = jobs->count;
    p->fn = fn;
    p->ctx = ctx;
    atomic_init(&p->next, 0);
    atomic_init(&p->stop, 0);
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->idle, &attr);
    pthread_condattr_destroy(&attr);
}

/* Starts up to `threads` workers (no more than jobs, nor MAX_THREADS) and returns how many
 * started; when none could, the work is done here before returning 0. */
static size_t pool_start(pool *p, pthread_t workers[MAX_THREADS], unsigned threads)
{
    size_t wanted = threads < p->count ? threads : p->count;
    size_t started = 0;

    if (wanted > MAX_THREADS)
        wanted = MAX_THREADS;
    pthread_mutex_lock(&p->lock);
    p->running = wanted;
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < wanted; i++) {
        if (pthread_create(&workers[started], NULL, pool_worker, p) != 0)
            break;
        started++;
    }
    pthread_mutex_lock(&p->lock);
    p->running -= wanted - started;
    pthread_mutex_unlock(&p->lock);
    if (started == 0) { /* no thread to be had: do the work here */
        p->running = 1;
        pool_worker(p);
    }
    return started;
}

static void deadline_after(struct timespec *until, long ns)
{
    clock_gettime(CLOCK_MONOTONIC, until);
    until->tv_nsec += ns;
    if (until->tv_nsec >= 1000000000L) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000L;
    }
}

/* Reports progress until every worker is done; a cancel (or a failing tick) stops them.
 * Returns that failure, else 0. */
static int pool_watch(pool *p, replica_progress *progress)
{
    int rc = 0;

    pthread_mutex_lock(&p->lock);
    while (p->running > 0) {
        struct timespec until;
        deadline_after(&until, REPORT_INTERVAL_NS);
        pthread_cond_timedwait(&p->idle, &p->lock, &until);
        if (p->running == 0)
            break;
        pthread_mutex_unlock(&p->lock);
        if (rc == 0) {
            rc = replica_progress_report(progress);
            if (rc < 0)
                atomic_store(&p->stop, 1);
        }
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int replica_pool_run(const replica_job_list *jobs, unsigned threads, replica_job_fn fn,
                     void *ctx, replica_progress *progress)
{
    pthread_t workers[MAX_THREADS];
    size_t started;
    pool p;
    int rc;

    if (jobs->count == 0)
        return 0;
    pool_init(&p, jobs, fn, ctx);
    started = pool_start(&p, workers, threads);
    rc = pool_watch(&p, progress);
    for (size_t i = 0; i < started; i++)
        pthread_join(workers[i], NULL);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.idle);
    if (p.rc < 0)
        return nova_error_set(p.rc, p.detail.sys_errno, p.detail.file, p.detail.line, "%s",
                              p.detail.message);
    if (rc == 0)
        rc = replica_progress_report(progress);
    return rc;
}
