/*
 * backup_lock.c -- the shared lock a backup holds while it runs, and its refresher.
 *
 * A shared lock tells prune (which takes an exclusive one) that someone may be about to
 * reference data: prune refuses to start while it exists, and a backup refuses to start
 * while prune runs. The lock expires after a time to live (a crashed backup must not
 * block prune forever), so a thread refreshes it every third of that time: it stores a
 * new lock object with the same lock id and a later expiry, then deletes the old one, so
 * the lock is never absent. When refreshing keeps failing until the lock expires, `lost`
 * is set and the backup stops: from then on prune could run under it.
 */
#include "backup/backup_internal.h"

#include "common/err.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define RETRY_AFTER_FAILURE_NS (10LL * 1000000000LL)

int64_t nova_bk_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timespec deadline_after(int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ns += ts.tv_nsec;
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    return ts;
}

/* Stores a refreshed copy of the lock and deletes the old object. Called with the mutex
 * released (storage calls may be slow); only this thread changes `name` meanwhile. */
static int refresh_once(nova_bk_lock *l)
{
    nova_lock fresh = l->lock;
    nova_buf sealed = NOVA_BUF_INIT;
    char name[NOVA_LOCK_NAME_SIZE];
    int64_t now = nova_bk_now_ns();
    int rc;

    fresh.expires_ns = now > INT64_MAX - l->ttl_ns ? INT64_MAX : now + l->ttl_ns;
    if (fresh.expires_ns < fresh.created_ns)
        fresh.expires_ns = fresh.created_ns;
    rc = nova_lock_seal(&sealed, name, &fresh, l->repo->keys.enc);
    if (rc == 0)
        rc = nova_storage_put(l->repo->storage, name, sealed.data, sealed.len);
    nova_buf_free(&sealed);
    if (rc < 0)
        return rc;
    (void)nova_storage_del(l->repo->storage, l->name);
    pthread_mutex_lock(&l->mutex);
    memcpy(l->name, name, sizeof(name));
    l->lock = fresh;
    pthread_mutex_unlock(&l->mutex);
    return 0;
}

static void *refresher(void *arg)
{
    nova_bk_lock *l = arg;
    int64_t wait_ns = l->ttl_ns / 3;

    pthread_mutex_lock(&l->mutex);
    while (!l->stop) {
        struct timespec until = deadline_after(wait_ns);
        int rc = 0;
        while (!l->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&l->cond, &l->mutex, &until);
        if (l->stop)
            break;
        pthread_mutex_unlock(&l->mutex);
        rc = refresh_once(l);
        pthread_mutex_lock(&l->mutex);
        if (rc == 0) {
            wait_ns = l->ttl_ns / 3;
        } else {
            if (nova_bk_now_ns() + RETRY_AFTER_FAILURE_NS >= l->lock.expires_ns)
                l->lost = 1;
            wait_ns = l->ttl_ns / 3 < RETRY_AFTER_FAILURE_NS ? l->ttl_ns / 3
                                                             : RETRY_AFTER_FAILURE_NS;
        }
    }
    pthread_mutex_unlock(&l->mutex);
    return NULL;
}

int nova_bk_lock_take(nova_bk_lock *l, nova_repo *repo, const char *description)
{
    const nova_backup_test_hooks *hooks = nova_bk_hooks();
    int rc;

    memset(l, 0, sizeof(*l));
    l->repo = repo;
    l->ttl_ns = hooks && hooks->lock_ttl_ns > 0 ? hooks->lock_ttl_ns : NOVA_BK_LOCK_TTL_NS;
    pthread_mutex_init(&l->mutex, NULL);
    pthread_cond_init(&l->cond, NULL);
    rc = nova_lock_init(&l->lock, 0, description, l->ttl_ns);
    if (rc == 0)
        rc = nova_lock_acquire(repo->storage, repo->keys.enc, &l->lock, nova_bk_now_ns(),
                               l->name);
    if (rc == 0 && (rc = pthread_create(&l->thread, NULL, refresher, l)) != 0) {
        (void)nova_lock_release(repo->storage, l->name);
        rc = nova_fail_errno(NOVA_ENOMEM, rc, "unable to start the lock refresher");
    }
    if (rc < 0) {
        pthread_mutex_destroy(&l->mutex);
        pthread_cond_destroy(&l->cond);
        memset(l, 0, sizeof(*l));
        return rc;
    }
    l->thread_running = 1;
    return 0;
}

int nova_bk_lock_lost(nova_bk_lock *l)
{
    int lost;
    pthread_mutex_lock(&l->mutex);
    lost = l->lost;
    pthread_mutex_unlock(&l->mutex);
    if (lost)
        return nova_fail(NOVA_ELOCKED, "the backup's repository lock expired: it could not be "
                         "refreshed") < 0;
    return 0;
}

void nova_bk_lock_drop(nova_bk_lock *l)
{
    if (!l->repo)
        return;
    if (l->thread_running) {
        pthread_mutex_lock(&l->mutex);
        l->stop = 1;
        pthread_cond_broadcast(&l->cond);
        pthread_mutex_unlock(&l->mutex);
        pthread_join(l->thread, NULL);
        l->thread_running = 0;
    }
    if (l->name[0])
        (void)nova_lock_release(l->repo->storage, l->name);
    l->name[0] = '\0';
    pthread_mutex_destroy(&l->mutex);
    pthread_cond_destroy(&l->cond);
    l->repo = NULL;
}
