/*
 * dircache.c -- descriptors of the directories a restore writes into.
 *
 * Every directory below the target is reached by openat(parent, name, O_NOFOLLOW |
 * O_DIRECTORY) from its parent's descriptor, so a symlink planted anywhere in the target
 * makes the open fail instead of leading out of it. Descriptors stay open while the
 * budget allows (the restore raises RLIMIT_NOFILE first); beyond it, unpinned ones are
 * closed by a clock scan and reopened from the nearest open ancestor when needed again.
 * A pinned descriptor (restore_dir_get without restore_dir_put yet) is never closed.
 * One mutex guards the table; the work under it is a few syscalls at most. When planning
 * opened every directory without closing any (the common case), the table is frozen:
 * nothing opens or closes a directory any more and look-ups take no lock.
 */
#include "restore/restore_internal.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

int restore_dirs_init(restore_dirs *d, int target_fd, size_t budget)
{
    memset(d, 0, sizeof(*d));
    d->items = calloc(16, sizeof(*d->items));
    if (!d->items) {
        close(target_fd);
        return nova_fail(NOVA_ENOMEM, "unable to allocate the directory table");
    }
    d->cap = 16;
    d->count = 1;
    d->items[0].entry = NULL;
    d->items[0].parent = RESTORE_NONE;
    d->items[0].fd = target_fd;
    d->items[0].pins = 1; /* the target is never closed */
    d->open = 1;
    d->budget = budget < 8 ? 8 : budget;
    pthread_mutex_init(&d->lock, NULL);
    return 0;
}

void restore_dirs_free(restore_dirs *d)
{
    if (!d->items)
        return;
    for (size_t i = 0; i < d->count; i++)
        if (d->items[i].fd >= 0)
            close(d->items[i].fd);
    free(d->items);
    d->items = NULL;
    pthread_mutex_destroy(&d->lock);
}

void restore_dir_note_inheritance(restore_dirs *d, uint32_t index, int fd,
                                  const struct stat *st, uint32_t egid)
{
    restore_dir *dir = &d->items[index];

    if (!st) {
        const restore_dir *parent = &d->items[dir->parent];
        /* mkdir inherits a setgid parent's group and setgid bit, and its default ACL. */
        dir->setgid = parent->setgid;
        dir->file_gid = parent->setgid ? parent->file_gid : egid;
        dir->default_acl = parent->default_acl;
        return;
    }
    dir->setgid = (st->st_mode & S_ISGID) != 0;
    dir->file_gid = dir->setgid ? (uint32_t)st->st_gid : egid;
    /* ENODATA (none) and ENOTSUP (no ACLs here) both mean the mode is the creation mode;
     * anything else is treated as "there may be one". */
    dir->default_acl = fgetxattr(fd, "system.posix_acl_default", NULL, 0) >= 0 ||
                       (errno != ENODATA && errno != ENOTSUP && errno != EOPNOTSUPP);
}

int restore_dirs_add(restore_dirs *d, uint32_t *out, uint32_t parent,
                     const nova_tree_entry *entry, int fresh)
{
    restore_dir *dir;

    if (d->count >= RESTORE_NONE - 1)
        return nova_fail(NOVA_EINVALID, "too many directories to restore");
    if (d->count == d->cap) {
        size_t cap = d->cap * 2;
        restore_dir *grown;
        pthread_mutex_lock(&d->lock);
        grown = realloc(d->items, cap * sizeof(*grown));
        if (grown) {
            d->items = grown;
            d->cap = cap;
        }
        pthread_mutex_unlock(&d->lock);
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to grow the directory table");
    }
    dir = &d->items[d->count];
    dir->entry = entry;
    dir->parent = parent;
    dir->fd = -1;
    dir->pins = 0;
    dir->fresh = (uint8_t)(fresh != 0);
    dir->failed = 0;
    dir->setgid = 0;
    dir->default_acl = 1; /* until noted: assume the worst */
    dir->file_gid = 0;
    *out = (uint32_t)d->count++;
    return 0;
}

/* Closes unpinned descriptors until one more fits in the budget (or none is left). */
static void make_room(restore_dirs *d)
{
    size_t scanned = 0;
    while (d->open >= d->budget && scanned < d->count) {
        restore_dir *dir;
        if (d->hand >= d->count)
            d->hand = 1;
        dir = &d->items[d->hand++];
        scanned++;
        if (dir->fd >= 0 && dir->pins == 0) {
            close(dir->fd);
            dir->fd = -1;
            d->open--;
            d->evictions++;
        }
    }
}

static int open_locked(restore_dirs *d, uint32_t index, unsigned depth)
{
    restore_dir *dir = &d->items[index];
    restore_dir *parent;
    int fd, err;

    if (dir->fd >= 0)
        return 0;
    if (dir->failed)
        return nova_fail(NOVA_EIO, "directory '%s' could not be restored", dir->entry->name);
    if (dir->parent == RESTORE_NONE || depth > RESTORE_MAX_DEPTH)
        return nova_fail(NOVA_EINTERNAL, "directory %u has no open ancestor", index);
    NOVA_TRY(open_locked(d, dir->parent, depth + 1));
    parent = &d->items[dir->parent];
    parent->pins++;
    make_room(d);
    fd = openat(parent->fd, dir->entry->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    err = errno;
    parent->pins--;
    if (fd < 0 && (err == ELOOP || err == ENOTDIR))
        return nova_fail_errno(NOVA_EEXISTS, err, "'%s' is no longer a directory (symlinks are "
                               "never followed during restore)", dir->entry->name);
    if (fd < 0)
        return nova_fail_errno(nova_error_from_errno(err), err, "unable to open directory '%s'",
                               dir->entry->name);
    dir->fd = fd;
    d->open++;
    return 0;
}

void restore_dirs_freeze(restore_dirs *d)
{
    d->stable = d->evictions == 0 && d->open == d->count;
}

int restore_dir_get(restore_dirs *d, uint32_t index, int *fd)
{
    int rc;

    if (d->stable) {
        *fd = d->items[index].fd;
        return 0;
    }
    *fd = -1;
    pthread_mutex_lock(&d->lock);
    rc = open_locked(d, index, 0);
    if (rc == 0) {
        d->items[index].pins++;
        *fd = d->items[index].fd;
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void restore_dir_put(restore_dirs *d, uint32_t index)
{
    if (d->stable)
        return;
    pthread_mutex_lock(&d->lock);
    if (d->items[index].pins > 0)
        d->items[index].pins--;
    pthread_mutex_unlock(&d->lock);
}
