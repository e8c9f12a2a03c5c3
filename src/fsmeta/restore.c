/*
 * restore.c -- creating restored entries below a directory descriptor and applying their
 * metadata without ever following a symlink (safety model: restore.h).
 *
 * Metadata goes through a handle of the object itself: a normal descriptor for files,
 * directories and fifos (fchown, fsetxattr, fchmod, futimens), an O_PATH handle for
 * symlinks, devices and sockets, which must not be opened for I/O. O_PATH handles cannot
 * do I/O-style calls, so for them the owner uses fchownat(AT_EMPTY_PATH), times
 * utimensat(AT_EMPTY_PATH), and mode and attributes go through /proc/self/fd/N, which
 * names the handle's object itself (for a symlink handle, the symlink, not its target).
 * When /proc is missing or the kernel lacks AT_EMPTY_PATH for utimensat, the name-based
 * *at calls with AT_SYMLINK_NOFOLLOW are used instead.
 */
#include "fsmeta/restore.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fsmeta/scan.h"

/* ------------------------------------------------------------------ names and paths */

int nova_fsmeta_name_safe(const char *name)
{
    return name && nova_tree_name_valid(name, strnlen(name, NOVA_TREE_NAME_MAX + 1));
}

static int refuse_name(const char *name)
{
    return nova_fail(NOVA_EINVALID, "refusing the name '%.255s': it could leave the restore "
                     "target", name ? name : "");
}

static int relative_path_safe(const char *relative)
{
    const char *p = relative;

    if (!relative || !relative[0] || relative[0] == '/')
        return 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (!nova_tree_name_valid(p, len))
            return 0;
        if (!slash)
            return 1;
        p = slash + 1;
    }
}

int nova_fsmeta_join(nova_buf *out, const char *base, const char *relative)
{
    size_t base_len = base ? strlen(base) : 0;

    nova_buf_reset(out);
    if (!relative_path_safe(relative))
        return nova_fail(NOVA_EINVALID, "refusing the path '%.1024s': it could leave the restore "
                         "target", relative ? relative : "");
    if (base_len > 0) {
        NOVA_TRY(nova_buf_append(out, base, base_len));
        if (base[base_len - 1] != '/')
            NOVA_TRY(nova_buf_append(out, "/", 1));
    }
    NOVA_TRY(nova_buf_append(out, relative, strlen(relative)));
    return nova_buf_append(out, "", 1);
}

/* ------------------------------------------------------------------ directory descriptors */

int nova_fsmeta_open_target(int *out_fd, const char *path, int create)
{
    int fd;

    *out_fd = -1;
    if (create && mkdir(path, 0700) != 0 && errno != EEXIST)
        return nova_fail_errno(nova_error_from_errno(errno), errno,
                               "unable to create the restore target '%s'", path);
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return nova_fail_errno(nova_error_from_errno(errno), errno,
                               "unable to open the restore target '%s'", path);
    *out_fd = fd;
    return 0;
}

int nova_fsmeta_open_dir_at(int *out_fd, int parent_fd, const char *name, int create)
{
    int fd;

    *out_fd = -1;
    if (!nova_fsmeta_name_safe(name))
        return refuse_name(name);
    if (create && mkdirat(parent_fd, name, 0700) != 0 && errno != EEXIST)
        return nova_fail_errno(nova_error_from_errno(errno), errno,
                               "unable to create directory '%s'", name);
    fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
        return nova_fail_errno(NOVA_EEXISTS, errno,
                               "'%s' exists and is not a directory (symlinks are never followed "
                               "during restore)", name);
    if (fd < 0)
        return nova_fail_errno(nova_error_from_errno(errno), errno,
                               "unable to open directory '%s'", name);
    *out_fd = fd;
    return 0;
}

int nova_fsmeta_open_parent(int *out_fd, const char **leaf, int root_fd, const char *relative,
                            int create_dirs)
{
    char component[NOVA_TREE_NAME_MAX + 1];
    const char *p = relative;
    int current = -1, rc;

    *out_fd = -1;
    *leaf = NULL;
    if (!relative_path_safe(relative))
        return nova_fail(NOVA_EINVALID, "refusing the path '%.1024s': it could leave the restore "
                         "target", relative ? relative : "");
    current = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    if (current < 0)
        return nova_fail_errno(nova_error_from_errno(errno), errno,
                               "unable to duplicate the restore target descriptor");
    for (const char *slash; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        int next;
        memcpy(component, p, (size_t)(slash - p)); /* length checked by relative_path_safe */
        component[slash - p] = '\0';
        rc = nova_fsmeta_open_dir_at(&next, current, component, create_dirs);
        close(current);
        if (rc < 0)
            return rc;
        current = next;
    }
    *out_fd = current;
    *leaf = p;
    return 0;
}

/* ------------------------------------------------------------------ creating entries */

static int creation_failed(int err, const char *what, const char *name)
{
    if (err == EEXIST)
        return nova_fail_errno(NOVA_EEXISTS, err, "unable to create %s '%s': it already exists",
                               what, name);
    return nova_fail_errno(nova_error_from_errno(err), err, "unable to create %s '%s'", what,
                           name);
}

int nova_fsmeta_create_file(int *out_fd, int dir_fd, const char *name)
{
    int fd;

    *out_fd = -1;
    if (!nova_fsmeta_name_safe(name))
        return refuse_name(name);
    /* O_EXCL: an existing entry, including a dangling symlink, is an error, never followed. */
    fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return creation_failed(errno, "file", name);
    *out_fd = fd;
    return 0;
}

int nova_fsmeta_create_node(int dir_fd, const nova_tree_entry *e)
{
    int rc;
    const char *name = e->name;

    if (!nova_fsmeta_name_safe(name))
        return refuse_name(name);
    switch (e->type) {
    case NOVA_TREE_DIR: rc = mkdirat(dir_fd, name, 0700); break;
    case NOVA_TREE_SYMLINK:
        if (!e->symlink_target || !e->symlink_target[0])
            return nova_fail(NOVA_EINVALID, "symlink '%s' has no target", name);
        rc = symlinkat(e->symlink_target, dir_fd, name);
        break;
    case NOVA_TREE_FIFO: rc = mkfifoat(dir_fd, name, 0600); break;
    case NOVA_TREE_CHAR: rc = mknodat(dir_fd, name, S_IFCHR | 0600, (dev_t)e->rdev); break;
    case NOVA_TREE_BLOCK: rc = mknodat(dir_fd, name, S_IFBLK | 0600, (dev_t)e->rdev); break;
    case NOVA_TREE_SOCKET: rc = mknodat(dir_fd, name, S_IFSOCK | 0600, 0); break;
    default:
        return nova_fail(NOVA_EINVALID, "'%s': a %s is not created by nova_fsmeta_create_node",
                         name, nova_tree_type_name(e->type));
    }
    return rc == 0 ? 0 : creation_failed(errno, nova_tree_type_name(e->type), name);
}

int nova_fsmeta_link_at(int target_dir_fd, const char *target_name, int dir_fd, const char *name)
{
    if (!nova_fsmeta_name_safe(target_name))
        return refuse_name(target_name);
    if (!nova_fsmeta_name_safe(name))
        return refuse_name(name);
    if (linkat(target_dir_fd, target_name, dir_fd, name, 0) != 0)
        return creation_failed(errno, "hard link", name);
    return 0;
}

/* ------------------------------------------------------------------ metadata */

typedef struct handle {
    int fd;
    int is_path;  /* O_PATH handle: no fchmod / fsetxattr / futimens */
    int owned;    /* opened here: close it */
    char proc[48]; /* "/proc/self/fd/N" for O_PATH handles */
} handle;

static mode_t type_bits(nova_tree_type type)
{
    switch (type) {
    case NOVA_TREE_FILE: return S_IFREG;
    case NOVA_TREE_DIR: return S_IFDIR;
    case NOVA_TREE_SYMLINK: return S_IFLNK;
    case NOVA_TREE_FIFO: return S_IFIFO;
    case NOVA_TREE_CHAR: return S_IFCHR;
    case NOVA_TREE_BLOCK: return S_IFBLK;
    case NOVA_TREE_SOCKET: return S_IFSOCK;
    default: return 0;
    }
}

static int open_handle(handle *h, int dir_fd, int fd, const nova_tree_entry *e)
{
    struct stat st;

    memset(h, 0, sizeof(*h));
    h->fd = fd;
    if (fd < 0) {
        int io = e->type == NOVA_TREE_FILE || e->type == NOVA_TREE_DIR || e->type == NOVA_TREE_FIFO;
        int flags = O_NOFOLLOW | O_CLOEXEC | (e->type == NOVA_TREE_DIR ? O_DIRECTORY : 0);
        /* O_NONBLOCK: opening a fifo must not wait for a writer. */
        if (io)
            h->fd = openat(dir_fd, e->name, flags | O_RDONLY | O_NONBLOCK | O_NOCTTY);
        if (!io || (h->fd < 0 && errno == EACCES)) {
            h->fd = openat(dir_fd, e->name, flags | O_PATH);
            h->is_path = 1;
        }
        if (h->fd < 0)
            return nova_fail_errno(errno == ELOOP ? NOVA_EEXISTS : nova_error_from_errno(errno),
                                   errno, "unable to open '%s' to restore its metadata", e->name);
        h->owned = 1;
        snprintf(h->proc, sizeof(h->proc), "/proc/self/fd/%d", h->fd);
    }
    if (fstat(h->fd, &st) != 0)
        return nova_fail_errno(nova_error_from_errno(errno), errno, "unable to stat '%s'", e->name);
    if ((st.st_mode & S_IFMT) != type_bits(e->type))
        return nova_fail(NOVA_EEXISTS, "'%s' is no longer the %s that was restored; its metadata "
                         "is left alone", e->name, nova_tree_type_name(e->type));
    return 0;
}

static void warn(const nova_fsmeta_apply_opts *o, const char *name, int code)
{
    if (o->on_warning)
        o->on_warning(name, code, nova_error_last()->message, o->payload);
}

static void resolve_owner(const nova_tree_entry *e, const nova_fsmeta_apply_opts *o,
                          uint32_t *uid, uint32_t *gid)
{
    *uid = e->uid;
    *gid = e->gid;
    if (o->numeric_ids || !o->ids)
        return;
    if (e->user_name)
        nova_fsmeta_user_id(o->ids, e->user_name, uid);
    if (e->group_name)
        nova_fsmeta_group_id(o->ids, e->group_name, gid);
}

static int apply_owner(const handle *h, const nova_tree_entry *e, const nova_fsmeta_apply_opts *o)
{
    uid_t euid = geteuid();
    uint32_t uid, gid;
    uid_t new_uid;
    int rc;

    resolve_owner(e, o, &uid, &gid);
    if (euid == 0)
        new_uid = (uid_t)uid;
    else if ((uid_t)uid == euid)
        new_uid = (uid_t)-1; /* already ours: only the group can change */
    else
        return 0;
    if (h->is_path)
        rc = fchownat(h->fd, "", new_uid, (gid_t)gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    else
        rc = fchown(h->fd, new_uid, (gid_t)gid);
    if (rc != 0) {
        int err = errno;
        if (err != EPERM && err != EINVAL && err != EACCES)
            return nova_fail_errno(nova_error_from_errno(err), err,
                                   "unable to set the owner of '%s'", e->name);
        warn(o, e->name, nova_fail_errno(NOVA_EACCESS, err,
                                         "unable to set the owner of '%s' to %u:%u", e->name,
                                         uid, gid));
    }
    return 0;
}

static int xattr_refusal(int err)
{
    return err == EPERM || err == EACCES || err == ENOTSUP || err == EOPNOTSUPP ||
           err == EINVAL || err == E2BIG || err == ERANGE;
}

static int apply_xattrs(const handle *h, const nova_tree_entry *e, const nova_fsmeta_apply_opts *o)
{
    for (uint32_t i = 0; i < e->xattr_count; i++) {
        const nova_tree_xattr *x = &e->xattrs[i];
        int rc, err;
        if (h->is_path)
            rc = setxattr(h->proc, x->name, x->value, x->value_len, 0);
        else
            rc = fsetxattr(h->fd, x->name, x->value, x->value_len, 0);
        if (rc == 0)
            continue;
        err = errno;
        if (!xattr_refusal(err) && !(h->is_path && err == ENOENT))
            return nova_fail_errno(nova_error_from_errno(err), err,
                                   "unable to set extended attribute '%s' of '%s'", x->name,
                                   e->name);
        warn(o, e->name, nova_fail_errno(NOVA_EUNSUPPORTED, err,
                                         "extended attribute '%s' of '%s' not restored", x->name,
                                         e->name));
    }
    return 0;
}

static int apply_mode(const handle *h, int dir_fd, const nova_tree_entry *e)
{
    mode_t mode = (mode_t)(e->mode & NOVA_TREE_MODE_MASK);
    int rc;

    if (!h->is_path)
        rc = fchmod(h->fd, mode);
    else if ((rc = chmod(h->proc, mode)) != 0 && errno == ENOENT) /* no /proc */
        rc = fchmodat(dir_fd, e->name, mode, 0); /* type checked: not a symlink */
    if (rc != 0)
        return nova_fail_errno(nova_error_from_errno(errno), errno,
                               "unable to set the mode of '%s' to 0%o", e->name, (unsigned)mode);
    return 0;
}

static int apply_times(const handle *h, int dir_fd, const nova_tree_entry *e)
{
    struct timespec times[2];
    int rc;

    times[0] = nova_fsmeta_ns_timespec(e->atime_ns);
    times[1] = nova_fsmeta_ns_timespec(e->mtime_ns);
    if (!h->is_path)
        rc = futimens(h->fd, times);
    else if ((rc = utimensat(h->fd, "", times, AT_EMPTY_PATH)) != 0 &&
             (errno == EINVAL || errno == ENOENT)) /* kernel without AT_EMPTY_PATH here */
        rc = utimensat(dir_fd, e->name, times, AT_SYMLINK_NOFOLLOW);
    if (rc != 0)
        return nova_fail_errno(nova_error_from_errno(errno), errno,
                               "unable to set the times of '%s'", e->name);
    return 0;
}

int nova_fsmeta_apply(int dir_fd, int fd, const nova_tree_entry *entry,
                      const nova_fsmeta_apply_opts *opts)
{
    static const nova_fsmeta_apply_opts defaults = NOVA_FSMETA_APPLY_OPTS_INIT;
    const nova_fsmeta_apply_opts *o = opts ? opts : &defaults;
    handle h;
    int rc;

    if (!nova_fsmeta_name_safe(entry->name))
        return refuse_name(entry->name);
    rc = open_handle(&h, dir_fd, fd, entry);
    if (rc == 0 && (o->what & NOVA_FSMETA_APPLY_OWNER))
        rc = apply_owner(&h, entry, o);
    if (rc == 0 && (o->what & NOVA_FSMETA_APPLY_XATTRS))
        rc = apply_xattrs(&h, entry, o);
    if (rc == 0 && (o->what & NOVA_FSMETA_APPLY_MODE) && entry->type != NOVA_TREE_SYMLINK)
        rc = apply_mode(&h, dir_fd, entry);
    if (rc == 0 && (o->what & NOVA_FSMETA_APPLY_TIMES))
        rc = apply_times(&h, dir_fd, entry);
    if (h.owned && h.fd >= 0)
        close(h.fd);
    return rc;
}

/* ------------------------------------------------------------------ writing content */

static int check_range(uint64_t offset, size_t len, const char *what)
{
    if (offset > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - offset)
        return nova_fail(NOVA_EINVALID, "'%s': write at offset %llu of %zu bytes is out of range",
                         what, (unsigned long long)offset, len);
    return 0;
}

int nova_fsmeta_write_at(int fd, uint64_t offset, const void *data, size_t len, const char *what)
{
    const uint8_t *p = data;

    NOVA_TRY(check_range(offset, len, what));
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return nova_fail_errno(nova_error_from_errno(errno), errno, "unable to write '%s'",
                                   what);
        if (n == 0)
            return nova_fail(NOVA_EIO, "unable to write '%s': no progress", what);
        p += n;
        offset += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

static int all_zero(const uint8_t *p, size_t len)
{
    /* p[0] == 0 and every byte equal to its predecessor. */
    return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

int nova_fsmeta_write_sparse(int fd, uint64_t offset, const void *data, size_t len,
                             const char *what)
{
    const uint8_t *p = data;
    size_t done = 0, run_start = 0, run_len = 0;

    NOVA_TRY(check_range(offset, len, what));
    while (done < len) {
        size_t piece = NOVA_FSMETA_SPARSE_BLOCK - (size_t)((offset + done) % NOVA_FSMETA_SPARSE_BLOCK);
        if (piece > len - done)
            piece = len - done;
        if (all_zero(p + done, piece)) {
            if (run_len > 0)
                NOVA_TRY(nova_fsmeta_write_at(fd, offset + run_start, p + run_start, run_len, what));
            run_len = 0;
        } else {
            if (run_len == 0)
                run_start = done;
            run_len += piece;
        }
        done += piece;
    }
    if (run_len > 0)
        NOVA_TRY(nova_fsmeta_write_at(fd, offset + run_start, p + run_start, run_len, what));
    return 0;
}

int nova_fsmeta_finish_sparse(int fd, uint64_t size, const char *what)
{
    if (size > (uint64_t)INT64_MAX)
        return nova_fail(NOVA_EINVALID, "'%s': size %llu is out of range", what,
                         (unsigned long long)size);
    if (ftruncate(fd, (off_t)size) != 0)
        return nova_fail_errno(nova_error_from_errno(errno), errno,
                               "unable to set the size of '%s'", what);
    return 0;
}
