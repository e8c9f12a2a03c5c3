/*
 * local.c -- the object store on a POSIX file system: object "a/b/c" is the file root/a/b/c.
 *
 * Invariants:
 *  - An object is visible only once complete and fsynced: put writes a temporary file in
 *    the object's directory, fsyncs it, publishes it under the final name without ever
 *    replacing an existing file (renameat2 RENAME_NOREPLACE, or link(2), both atomic), then
 *    fsyncs the directory -- and the parent of every directory it had to make.
 *  - Temporary names hold '~', which nova_storage_name_check never accepts, so list skips
 *    them and no operation can address them.
 *  - Every path is resolved relative to a descriptor of the root (openat and friends), so
 *    the process's working directory is never used or changed; the only shared mutable
 *    state is an atomic flag, so every operation is safe from several threads.
 *  - Directories are made on demand (tolerating races with other threads and processes)
 *    and never removed.
 * Files are created 0600 and directories 0700 (less the umask): repositories hold wrapped
 * keys, so nobody but the owner needs to read them.
 */
#include "storage/storage.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#define LOCAL_FILE_MODE 0600
#define LOCAL_DIR_MODE 0700
#define LOCAL_TEMP_PREFIX ".nova~"
#define LOCAL_TEMP_ATTEMPTS 16
#define LOCAL_IO_CHUNK ((size_t)1 << 30)

typedef struct local_storage {
    nova_storage parent;
    int root_fd;
    char *root;              /* as given, for messages */
    atomic_int publish_link; /* 1: publish with link(2) (forced, or renameat2 unsupported) */
} local_storage;

static local_storage *local_of(nova_storage *s) { return (local_storage *)s; }

/* ---- small helpers ------------------------------------------------------------------ */

/* errno values that say the file system itself went away (a network file system whose
 * server is gone, a removed disk); 0 for every other errno. */
static int unreachable_code(int err)
{
    switch (err) {
    case ESTALE:
    case ENOTCONN:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case ENODEV:
    case ENXIO:
    case ENOMEDIUM:
        return NOVA_EBACKEND;
    case ETIMEDOUT:
        return NOVA_ETIMEOUT;
    default:
        return 0;
    }
}

/* put-side errno mapping: the object cannot be "not found" while being written. */
static int local_write_code(int err)
{
    if (unreachable_code(err))
        return unreachable_code(err);
    switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return NOVA_ENOSPACE;
    case EACCES:
    case EPERM:
    case EROFS:
        return NOVA_EACCESS;
    case ENOMEM:
        return NOVA_ENOMEM;
    default:
        return NOVA_EIO;
    }
}

/* read-side errno mapping. */
static int local_read_code(int err)
{
    if (unreachable_code(err))
        return unreachable_code(err);
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case EISDIR:
        return NOVA_ENOTFOUND;
    case EACCES:
    case EPERM:
        return NOVA_EACCESS;
    case ENOMEM:
        return NOVA_ENOMEM;
    default:
        return NOVA_EIO;
    }
}

/* Splits "a/b/c" into the directory "a/b" (copied to dir, "" for top-level names) and
 * returns the base name "c". dir has room for NOVA_STORAGE_NAME_MAX + 1 bytes. */
static const char *split_name(const char *name, char *dir)
{
    const char *slash = strrchr(name, '/');
    size_t dir_len = slash ? (size_t)(slash - name) : 0;

    memcpy(dir, name, dir_len);
    dir[dir_len] = '\0';
    return slash ? slash + 1 : name;
}

static int open_dir_at(int base_fd, const char *path)
{
    return openat(base_fd, path[0] ? path : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* fsyncs an open directory; file systems that cannot (EINVAL) have nothing to flush. */
static int fsync_dir_fd(int fd)
{
    if (fsync(fd) == 0 || errno == EINVAL || errno == EROFS)
        return 0;
    return -1;
}

/* fsyncs the directory that holds path[0..len) (relative to base_fd, or absolute). */
static int fsync_parent_of(int base_fd, char *path, size_t len)
{
    size_t cut = len;
    int fd, rc, saved_errno;

    while (cut > 0 && path[cut - 1] != '/')
        cut--;
    /* cut is now just past the last '/', or 0 when path has no '/'. */
    if (cut == 0) {
        fd = openat(base_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        size_t end = cut - 1 == 0 ? 1 : cut - 1; /* keep "/" for children of the root */
        char saved = path[end];
        path[end] = '\0';
        fd = openat(base_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        path[end] = saved;
    }
    if (fd < 0)
        return -1;
    rc = fsync_dir_fd(fd);
    saved_errno = errno;
    close(fd);
    errno = saved_errno;
    return rc;
}

/*
 * Makes every directory of path (relative to base_fd, or absolute), like mkdir -p, and
 * fsyncs the parent of each one it made, so the new entries are durable before anything is
 * published inside them. The parent of a directory that already existed is synced too, on
 * a best-effort basis: a concurrent caller may have made it a moment ago and not synced it
 * yet (and an ancestor we may not read, such as a 0711 home, is no error).
 * -1 with errno on failure.
 */
static int make_dirs(int base_fd, char *path)
{
    size_t len = strlen(path);

    for (size_t i = 1; i <= len; i++) {
        if (i < len && (path[i] != '/' || path[i - 1] == '/'))
            continue;
        char saved = path[i];
        path[i] = '\0';
        int made = mkdirat(base_fd, path, LOCAL_DIR_MODE);
        int err = errno;
        path[i] = saved;
        if (made != 0 && err != EEXIST) {
            errno = err;
            return -1;
        }
        if (fsync_parent_of(base_fd, path, i) != 0 && made == 0)
            return -1;
    }
    return 0;
}

static uint64_t temp_token(void)
{
    static atomic_ulong counter;
    uint64_t token = 0;
    unsigned long n = atomic_fetch_add(&counter, 1);

    if (getrandom(&token, sizeof(token), GRND_NONBLOCK) != (ssize_t)sizeof(token)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        token = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    }
    return token ^ ((uint64_t)n * 0x9e3779b97f4a7c15u);
}

/* ---- open / free ---------------------------------------------------------------------- */

static const nova_storage_ops local_ops;

int nova_storage_local_open(nova_storage **out, const char *root, int create)
{
    nova_local_options options = NOVA_LOCAL_OPTIONS_INIT;
    options.create = create;
    return nova_storage_local_open_with(out, root, &options);
}

int nova_storage_local_open_with(nova_storage **out, const char *root,
                                 const nova_local_options *options)
{
    nova_local_options defaults = NOVA_LOCAL_OPTIONS_INIT;
    local_storage *ls = NULL;
    char *path = NULL;
    int fd = -1, rc = 0;
    struct stat st;

    if (!out)
        return nova_fail(NOVA_EINVALID, "local storage: no output handle");
    *out = NULL;
    if (!root || root[0] == '\0')
        return nova_fail(NOVA_EINVALID, "local storage: empty root path");
    if (!options)
        options = &defaults;
    if (options->publish != NOVA_LOCAL_PUBLISH_AUTO && options->publish != NOVA_LOCAL_PUBLISH_LINK)
        return nova_fail(NOVA_EINVALID, "local storage '%s': unknown publish mode %d", root,
                         (int)options->publish);
    path = strdup(root);
    if (!path)
        return nova_fail(NOVA_ENOMEM, "local storage '%s': out of memory", root);
    fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && options->create) {
        if (make_dirs(AT_FDCWD, path) != 0) {
            rc = nova_fail_errno(NOVA_EBACKEND, errno,
                                 "local storage '%s': unable to create it", root);
            goto out;
        }
        fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (fd < 0) {
        rc = nova_fail_errno(NOVA_EBACKEND, errno, "local storage '%s' is unavailable", root);
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = nova_fail(NOVA_EBACKEND, "local storage '%s' is not a directory", root);
        goto out;
    }
    ls = calloc(1, sizeof(*ls));
    if (!ls) {
        rc = nova_fail(NOVA_ENOMEM, "local storage '%s': out of memory", root);
        goto out;
    }
    ls->parent.ops = &local_ops;
    ls->root_fd = fd;
    ls->root = path;
    atomic_init(&ls->publish_link, options->publish == NOVA_LOCAL_PUBLISH_LINK);
    *out = &ls->parent;
    fd = -1;
    path = NULL;
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

static void local_free(nova_storage *s)
{
    local_storage *ls = local_of(s);
    if (!ls)
        return;
    close(ls->root_fd);
    free(ls->root);
    free(ls);
}

/* ---- put ------------------------------------------------------------------------------ */

/* Opens the directory that will hold `name`, making it when missing. */
static int open_object_dir(local_storage *ls, const char *name, char *dir, int *dir_fd)
{
    *dir_fd = open_dir_at(ls->root_fd, dir);
    if (*dir_fd >= 0)
        return 0;
    if (errno == ENOENT) {
        if (make_dirs(ls->root_fd, dir) != 0 && errno != ENOTDIR)
            return nova_fail_errno(local_write_code(errno), errno,
                                   "local storage '%s': unable to make the directory of "
                                   "object '%s'",
                                   ls->root, name);
        *dir_fd = open_dir_at(ls->root_fd, dir);
        if (*dir_fd >= 0)
            return 0;
    }
    if (errno == ENOTDIR)
        return nova_fail(NOVA_EINVALID,
                         "local storage '%s': object '%s' cannot be stored because a part of "
                         "its path is an object",
                         ls->root, name);
    return nova_fail_errno(local_write_code(errno), errno,
                           "local storage '%s': unable to open the directory of object '%s'",
                           ls->root, name);
}

static int create_temp(local_storage *ls, const char *name, int dir_fd, char *temp,
                       size_t temp_size, int *fd)
{
    for (int attempt = 0; attempt < LOCAL_TEMP_ATTEMPTS; attempt++) {
        snprintf(temp, temp_size, LOCAL_TEMP_PREFIX "%016llx", (unsigned long long)temp_token());
        *fd = openat(dir_fd, temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, LOCAL_FILE_MODE);
        if (*fd >= 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    return nova_fail_errno(local_write_code(errno), errno,
                           "local storage '%s': unable to create a temporary file for object "
                           "'%s'",
                           ls->root, name);
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len < LOCAL_IO_CHUNK ? len : LOCAL_IO_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int exists_error(local_storage *ls, const char *name, int dir_fd, const char *base)
{
    struct stat st;
    if (fstatat(dir_fd, base, &st, 0) == 0 && S_ISDIR(st.st_mode))
        return nova_fail(NOVA_EINVALID,
                         "local storage '%s': object '%s' cannot be stored because a "
                         "directory of that name holds other objects",
                         ls->root, name);
    return nova_fail(NOVA_EEXISTS, "local storage '%s': object '%s' already exists", ls->root,
                     name);
}

/* Makes the temporary file visible as `base`, never replacing anything. The temporary
 * name is gone afterwards on success; on failure the caller removes it. */
static int publish(local_storage *ls, const char *name, int dir_fd, const char *temp,
                   const char *base)
{
    if (!atomic_load(&ls->publish_link)) {
        if (renameat2(dir_fd, temp, dir_fd, base, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno == EEXIST)
            return exists_error(ls, name, dir_fd, base);
        if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP && errno != EOPNOTSUPP)
            goto failed;
        atomic_store(&ls->publish_link, 1);
    }
    if (linkat(dir_fd, temp, dir_fd, base, 0) != 0) {
        if (errno == EEXIST)
            return exists_error(ls, name, dir_fd, base);
        goto failed;
    }
    /* The object is complete and visible; a temporary left behind is only clutter. */
    (void)unlinkat(dir_fd, temp, 0);
    return 0;
failed:
    return nova_fail_errno(local_write_code(errno), errno,
                           "local storage '%s': unable to publish object '%s'", ls->root, name);
}

static int local_put(nova_storage *s, const char *name, const void *data, size_t len)
{
    local_storage *ls = local_of(s);
    char dir[NOVA_STORAGE_NAME_MAX + 1];
    char temp[64];
    const char *base;
    struct stat st;
    int dir_fd = -1, fd = -1, temp_made = 0, closed, rc;

    NOVA_TRY(nova_storage_name_check(name));
    base = split_name(name, dir);
    rc = open_object_dir(ls, name, dir, &dir_fd);
    if (rc < 0)
        goto out;
    /* Cheap early answer for duplicates; publish() is what guarantees no overwrite. */
    if (fstatat(dir_fd, base, &st, 0) == 0) {
        rc = exists_error(ls, name, dir_fd, base);
        goto out;
    }
    rc = create_temp(ls, name, dir_fd, temp, sizeof(temp), &fd);
    if (rc < 0)
        goto out;
    temp_made = 1;
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        rc = nova_fail_errno(local_write_code(errno), errno,
                             "local storage '%s': unable to write object '%s'", ls->root, name);
        goto out;
    }
    closed = close(fd);
    fd = -1;
    if (closed != 0) {
        rc = nova_fail_errno(local_write_code(errno), errno,
                             "local storage '%s': unable to write object '%s'", ls->root, name);
        goto out;
    }
    rc = publish(ls, name, dir_fd, temp, base);
    if (rc < 0)
        goto out;
    temp_made = 0;
    if (fsync_dir_fd(dir_fd) != 0)
        rc = nova_fail_errno(NOVA_EIO, errno,
                             "local storage '%s': object '%s' written but its directory could "
                             "not be synced",
                             ls->root, name);
out:
    if (fd >= 0)
        close(fd);
    if (temp_made)
        (void)unlinkat(dir_fd, temp, 0);
    if (dir_fd >= 0)
        close(dir_fd);
    return rc;
}

/* ---- get / stat ----------------------------------------------------------------------- */

static int read_range(local_storage *ls, const char *name, int fd, uint64_t offset,
                      size_t want, nova_buf *out)
{
    NOVA_TRY(nova_buf_reserve(out, want));
    while (want > 0) {
        size_t ask = want < LOCAL_IO_CHUNK ? want : LOCAL_IO_CHUNK;
        ssize_t n = pread(fd, out->data + out->len, ask, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return nova_fail_errno(local_read_code(errno), errno,
                                   "local storage '%s': unable to read object '%s'", ls->root,
                                   name);
        }
        if (n == 0)
            return nova_fail(NOVA_ECORRUPT,
                             "local storage '%s': object '%s' ended early at offset %llu",
                             ls->root, name, (unsigned long long)offset);
        out->len += (size_t)n;
        offset += (uint64_t)n;
        want -= (size_t)n;
    }
    return 0;
}

static int local_get(nova_storage *s, const char *name, uint64_t offset, size_t length,
                     nova_buf *out)
{
    local_storage *ls = local_of(s);
    struct stat st;
    uint64_t size, available;
    size_t want;
    int fd, rc;

    NOVA_TRY(nova_storage_name_check(name));
    /* O_NONBLOCK: a FIFO planted in the repository must not hang the reader. */
    fd = openat(ls->root_fd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return nova_fail_errno(local_read_code(errno), errno,
                               "local storage '%s': unable to open object '%s'", ls->root, name);
    if (fstat(fd, &st) != 0) {
        rc = nova_fail_errno(NOVA_EIO, errno, "local storage '%s': unable to stat object '%s'",
                             ls->root, name);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = nova_fail(NOVA_ENOTFOUND, "local storage '%s': '%s' is not an object", ls->root,
                       name);
        goto out;
    }
    size = (uint64_t)st.st_size;
    if (offset > size) {
        rc = nova_fail(NOVA_ECORRUPT,
                       "local storage '%s': object '%s' has %llu bytes, read asked for offset "
                       "%llu",
                       ls->root, name, (unsigned long long)size, (unsigned long long)offset);
        goto out;
    }
    available = size - offset;
    if (length == NOVA_STORAGE_WHOLE) {
        if (available > SIZE_MAX - 1) {
            rc = nova_fail(NOVA_ENOMEM, "local storage '%s': object '%s' is too large to read",
                           ls->root, name);
            goto out;
        }
        want = (size_t)available;
    } else if ((uint64_t)length > available) {
        rc = nova_fail(NOVA_ECORRUPT,
                       "local storage '%s': object '%s' has %llu bytes, read of %zu at offset "
                       "%llu runs past its end",
                       ls->root, name, (unsigned long long)size, length,
                       (unsigned long long)offset);
        goto out;
    } else {
        want = length;
    }
    rc = read_range(ls, name, fd, offset, want, out);
out:
    close(fd);
    return rc;
}

static int local_stat(nova_storage *s, const char *name, nova_object_info *out)
{
    local_storage *ls = local_of(s);
    struct stat st;

    NOVA_TRY(nova_storage_name_check(name));
    if (fstatat(ls->root_fd, name, &st, 0) != 0)
        return nova_fail_errno(local_read_code(errno), errno,
                               "local storage '%s': unable to stat object '%s'", ls->root, name);
    if (!S_ISREG(st.st_mode))
        return nova_fail(NOVA_ENOTFOUND, "local storage '%s': '%s' is not an object", ls->root,
                         name);
    out->size = (uint64_t)st.st_size;
    return 0;
}

/* ---- list ----------------------------------------------------------------------------- */

typedef struct list_walk {
    local_storage *ls;
    const char *prefix;
    size_t prefix_len;
    nova_storage_list_cb cb;
    void *payload;
    char path[NOVA_STORAGE_NAME_MAX + 2]; /* name of the entry being looked at */
} list_walk;

static int entry_name_ok(const char *entry)
{
    if (entry[0] == '.' && (entry[1] == '\0' || (entry[1] == '.' && entry[2] == '\0')))
        return 0;
    for (const char *p = entry; *p; p++)
        if (*p == '/' || !nova_storage_name_char_ok((unsigned char)*p))
            return 0;
    return 1;
}

static int walk_dir(list_walk *w, int dir_fd, size_t path_len);

/* Looks at one directory entry whose full name is w->path[0..full_len). */
static int walk_entry(list_walk *w, DIR *dir, const struct dirent *entry, size_t full_len)
{
    size_t common = full_len < w->prefix_len ? full_len : w->prefix_len;
    int is_dir = entry->d_type == DT_DIR, is_file = entry->d_type == DT_REG;
    struct stat st;
    int have_stat = 0;

    if (memcmp(w->path, w->prefix, common) != 0)
        return 0;
    if (entry->d_type == DT_UNKNOWN || entry->d_type == DT_LNK) {
        if (fstatat(dirfd(dir), entry->d_name, &st, 0) != 0)
            return 0; /* gone, or a dangling link: not an object */
        have_stat = 1;
        is_dir = S_ISDIR(st.st_mode);
        is_file = S_ISREG(st.st_mode);
    }
    if (is_dir) {
        /* Names below are path + "/...": they can match only if the prefix allows it. */
        if (full_len < w->prefix_len && w->prefix[full_len] != '/')
            return 0;
        if (full_len + 1 >= NOVA_STORAGE_NAME_MAX)
            return 0;
        int child = openat(dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (child < 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                return 0;
            return nova_fail_errno(local_read_code(errno), errno,
                                   "local storage '%s': unable to list directory '%s'",
                                   w->ls->root, w->path);
        }
        return walk_dir(w, child, full_len);
    }
    if (!is_file || full_len < w->prefix_len)
        return 0;
    if (!have_stat && fstatat(dirfd(dir), entry->d_name, &st, 0) != 0) {
        if (errno == ENOENT)
            return 0; /* deleted while we listed */
        return nova_fail_errno(local_read_code(errno), errno,
                               "local storage '%s': unable to stat object '%s'", w->ls->root,
                               w->path);
    }
    return w->cb(w->path, (uint64_t)st.st_size, w->payload);
}

/* Walks the directory open at dir_fd (taking ownership), whose name is w->path[0..path_len). */
static int walk_dir(list_walk *w, int dir_fd, size_t path_len)
{
    DIR *dir = fdopendir(dir_fd);
    int rc = 0;

    if (!dir) {
        int err = errno;
        close(dir_fd);
        return nova_fail_errno(NOVA_EIO, err, "local storage '%s': unable to list '%s'",
                               w->ls->root, path_len ? w->path : ".");
    }
    for (;;) {
        errno = 0;
        const struct dirent *entry = readdir(dir);
        if (!entry) {
            if (errno != 0) {
                w->path[path_len] = '\0';
                rc = nova_fail_errno(NOVA_EIO, errno, "local storage '%s': unable to list '%s'",
                                     w->ls->root, path_len ? w->path : ".");
            }
            break;
        }
        if (!entry_name_ok(entry->d_name))
            continue; /* ".", "..", temporary files, anything no name can address */
        size_t entry_len = strlen(entry->d_name);
        size_t full_len = path_len + (path_len ? 1 : 0) + entry_len;
        if (full_len > NOVA_STORAGE_NAME_MAX)
            continue;
        if (path_len)
            w->path[path_len] = '/';
        memcpy(w->path + full_len - entry_len, entry->d_name, entry_len + 1);
        rc = walk_entry(w, dir, entry, full_len);
        w->path[path_len] = '\0';
        if (rc != 0)
            break;
    }
    closedir(dir);
    return rc;
}

static int local_list(nova_storage *s, const char *prefix, nova_storage_list_cb cb,
                      void *payload)
{
    local_storage *ls = local_of(s);
    list_walk walk, *w = &walk;
    const char *slash;
    size_t start_len;
    int dir_fd, rc;

    NOVA_TRY(nova_storage_prefix_check(prefix));
    w->ls = ls;
    w->prefix = prefix;
    w->prefix_len = strlen(prefix);
    w->cb = cb;
    w->payload = payload;
    /* Start in the deepest directory the prefix names in full: "data/ab" starts in "data". */
    slash = strrchr(prefix, '/');
    start_len = slash ? (size_t)(slash - prefix) : 0;
    memcpy(w->path, prefix, start_len);
    w->path[start_len] = '\0';
    dir_fd = open_dir_at(ls->root_fd, w->path);
    if (dir_fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            rc = 0; /* nothing was ever stored under this prefix */
        else
            rc = nova_fail_errno(local_read_code(errno), errno,
                                 "local storage '%s': unable to list '%s'", ls->root, prefix);
    } else {
        rc = walk_dir(w, dir_fd, start_len);
    }
    return rc;
}

/* ---- del ------------------------------------------------------------------------------ */

static int local_del(nova_storage *s, const char *name)
{
    local_storage *ls = local_of(s);
    char dir[NOVA_STORAGE_NAME_MAX + 1];
    int dir_fd, rc = 0;

    NOVA_TRY(nova_storage_name_check(name));
    if (unlinkat(ls->root_fd, name, 0) != 0)
        return nova_fail_errno(errno == EROFS ? NOVA_EACCESS : local_read_code(errno), errno,
                               "local storage '%s': unable to delete object '%s'", ls->root,
                               name);
    (void)split_name(name, dir);
    dir_fd = open_dir_at(ls->root_fd, dir);
    if (dir_fd < 0 || fsync_dir_fd(dir_fd) != 0)
        rc = nova_fail_errno(NOVA_EIO, errno,
                             "local storage '%s': object '%s' deleted but its directory could "
                             "not be synced",
                             ls->root, name);
    if (dir_fd >= 0)
        close(dir_fd);
    return rc;
}

static const nova_storage_ops local_ops = {
    .kind = "local",
    .features = NOVA_STORAGE_RANGE_READ | NOVA_STORAGE_ATOMIC_CREATE | NOVA_STORAGE_STREAMING_LIST,
    .put = local_put,
    .get = local_get,
    .stat = local_stat,
    .list = local_list,
    .del = local_del,
    .free = local_free,
};
