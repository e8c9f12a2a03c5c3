/*
 * scan.c -- lstat, readlink and l*xattr into tree entries; sorted directory listings;
 * change detection.
 *
 * While an entry is being filled its strings go into one reusable buffer as offsets
 * (the buffer may move while it grows); the entry's pointers are set once at the end.
 * Invariant: an entry returned by nova_fsmeta_stat passes nova_tree_entry_check.
 */
#include "fsmeta/scan.h"

#include "common/buf.h"
#include "common/err.h"
#include "fsmeta/ids.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#define NO_OFFSET SIZE_MAX
#define XATTR_LIST_RETRIES 8

typedef struct xattr_pos {
    size_t name;
    size_t value;
    uint32_t value_len;
} xattr_pos;

struct nova_fsmeta_scanner {
    unsigned flags;
    nova_fsmeta_ids *ids;
    nova_buf strings;    /* the current entry's strings and attribute values */
    nova_buf name_list;  /* llistxattr output */
    uint8_t *value;      /* one attribute value, NOVA_TREE_XATTR_VALUE_MAX bytes */
    xattr_pos *positions;
    nova_tree_xattr *xattrs;
    size_t xattr_cap;
};

int nova_fsmeta_scanner_new(nova_fsmeta_scanner **out, unsigned flags)
{
    nova_fsmeta_scanner *s = calloc(1, sizeof(*s));
    int rc;

    *out = NULL;
    if (!s)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a metadata scanner");
    s->flags = flags;
    if (!(flags & NOVA_FSMETA_SCAN_NUMERIC_IDS) && (rc = nova_fsmeta_ids_new(&s->ids)) < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void nova_fsmeta_scanner_free(nova_fsmeta_scanner *s)
{
    if (!s)
        return;
    nova_fsmeta_ids_free(s->ids);
    nova_buf_free(&s->strings);
    nova_buf_free(&s->name_list);
    free(s->value);
    free(s->positions);
    free(s->xattrs);
    free(s);
}

/* ------------------------------------------------------------------ stat */

int64_t nova_fsmeta_timespec_ns(const struct timespec *ts)
{
    int64_t ns;
    if (__builtin_mul_overflow((int64_t)ts->tv_sec, (int64_t)1000000000, &ns))
        return ts->tv_sec > 0 ? INT64_MAX : INT64_MIN;
    if (__builtin_add_overflow(ns, (int64_t)ts->tv_nsec, &ns)) /* tv_nsec >= 0 */
        return INT64_MAX;
    return ns;
}

struct timespec nova_fsmeta_ns_timespec(int64_t ns)
{
    struct timespec ts;
    int64_t sec = ns / 1000000000, nsec = ns % 1000000000;
    if (nsec < 0) {
        nsec += 1000000000;
        sec -= 1;
    }
    ts.tv_sec = (time_t)sec;
    ts.tv_nsec = (long)nsec;
    return ts;
}

static int type_from_mode(mode_t mode, nova_tree_type *type)
{
    switch (mode & S_IFMT) {
    case S_IFREG: *type = NOVA_TREE_FILE; return 0;
    case S_IFDIR: *type = NOVA_TREE_DIR; return 0;
    case S_IFLNK: *type = NOVA_TREE_SYMLINK; return 0;
    case S_IFIFO: *type = NOVA_TREE_FIFO; return 0;
    case S_IFCHR: *type = NOVA_TREE_CHAR; return 0;
    case S_IFBLK: *type = NOVA_TREE_BLOCK; return 0;
    case S_IFSOCK: *type = NOVA_TREE_SOCKET; return 0;
    default: return -1;
    }
}

int nova_fsmeta_entry_from_stat(nova_tree_entry *out, const struct stat *st, const char *path)
{
    nova_tree_type type;

    if (type_from_mode(st->st_mode, &type) != 0)
        return nova_fail(NOVA_EUNSUPPORTED, "'%s' has a file type trees cannot hold (0%o)",
                         path, (unsigned)(st->st_mode & S_IFMT));
    out->type = type;
    out->flags = 0;
    out->mode = (uint32_t)(st->st_mode & NOVA_TREE_MODE_MASK);
    out->uid = (uint32_t)st->st_uid;
    out->gid = (uint32_t)st->st_gid;
    out->size = st->st_size > 0 ? (uint64_t)st->st_size : 0;
    out->mtime_ns = nova_fsmeta_timespec_ns(&st->st_mtim);
    out->atime_ns = nova_fsmeta_timespec_ns(&st->st_atim);
    out->ctime_ns = nova_fsmeta_timespec_ns(&st->st_ctim);
    out->inode = (uint64_t)st->st_ino;
    out->device = (uint64_t)st->st_dev;
    out->nlink = st->st_nlink > UINT32_MAX ? UINT32_MAX : (uint32_t)st->st_nlink;
    out->rdev = (type == NOVA_TREE_CHAR || type == NOVA_TREE_BLOCK) ? (uint64_t)st->st_rdev : 0;
    if (type == NOVA_TREE_FILE && st->st_blocks >= 0 && (uint64_t)st->st_blocks * 512 < out->size)
        out->flags |= NOVA_TREE_ENTRY_SPARSE;
    return 0;
}

static size_t append_string(nova_buf *buf, const char *s, size_t len, int *failed)
{
    size_t at = buf->len;
    if (nova_buf_append(buf, s, len) < 0 || nova_buf_append(buf, "", 1) < 0) {
        *failed = 1;
        return NO_OFFSET;
    }
    return at;
}

static int read_symlink(nova_fsmeta_scanner *s, const char *path, size_t *offset)
{
    size_t at = s->strings.len;
    ssize_t n;

    NOVA_TRY(nova_buf_reserve(&s->strings, NOVA_TREE_SYMLINK_MAX + 2));
    n = readlink(path, (char *)s->strings.data + at, NOVA_TREE_SYMLINK_MAX + 1);
    if (n < 0)
        return nova_fail_errno(nova_error_from_errno(errno), errno, "unable to read symlink '%s'",
                               path);
    if (n == 0 || n > NOVA_TREE_SYMLINK_MAX ||
        memchr(s->strings.data + at, '\0', (size_t)n))
        return nova_fail(NOVA_EUNSUPPORTED, "symlink '%s' has an empty or over-long target", path);
    s->strings.data[at + (size_t)n] = '\0';
    s->strings.len = at + (size_t)n + 1;
    *offset = at;
    return 0;
}

static int xattrs_unsupported(int err) { return err == ENOTSUP || err == EOPNOTSUPP; }

/* Fills s->name_list with the attribute names of path; 0 names when unsupported. */
static int list_xattr_names(nova_fsmeta_scanner *s, const char *path)
{
    for (int attempt = 0; attempt < XATTR_LIST_RETRIES; attempt++) {
        ssize_t need = llistxattr(path, NULL, 0), got;
        if (need < 0 && xattrs_unsupported(errno))
            need = 0;
        else if (need < 0)
            break;
        nova_buf_reset(&s->name_list);
        if (need == 0)
            return 0;
        NOVA_TRY(nova_buf_resize(&s->name_list, (size_t)need));
        got = llistxattr(path, (char *)s->name_list.data, (size_t)need);
        if (got >= 0) {
            s->name_list.len = (size_t)got;
            return 0;
        }
        if (errno != ERANGE) /* ERANGE: the list grew meanwhile; ask again */
            break;
    }
    return nova_fail_errno(nova_error_from_errno(errno), errno,
                           "unable to list extended attributes of '%s'", path);
}

static int reserve_positions(nova_fsmeta_scanner *s, size_t count)
{
    xattr_pos *positions;
    nova_tree_xattr *xattrs;

    if (count <= s->xattr_cap)
        return 0;
    positions = realloc(s->positions, count * sizeof(*positions));
    if (positions)
        s->positions = positions;
    xattrs = realloc(s->xattrs, count * sizeof(*xattrs));
    if (xattrs)
        s->xattrs = xattrs;
    if (!positions || !xattrs)
        return nova_fail(NOVA_ENOMEM, "unable to hold %zu extended attributes", count);
    s->xattr_cap = count;
    return 0;
}

/* Reads one attribute into the strings buffer; 0 with *kept = 0 when it vanished. */
static int read_one_xattr(nova_fsmeta_scanner *s, const char *path, const char *name,
                          xattr_pos *pos, int *kept)
{
    ssize_t n = lgetxattr(path, name, s->value, NOVA_TREE_XATTR_VALUE_MAX);
    int failed = 0;

    *kept = 0;
    if (n < 0 && (errno == ENODATA || xattrs_unsupported(errno)))
        return 0;
    if (n < 0)
        return nova_fail_errno(nova_error_from_errno(errno), errno,
                               "unable to read extended attribute '%s' of '%s'", name, path);
    pos->name = append_string(&s->strings, name, strlen(name), &failed);
    pos->value = s->strings.len;
    pos->value_len = (uint32_t)n;
    if (failed || nova_buf_append(&s->strings, s->value, (size_t)n) < 0)
        return nova_fail(NOVA_ENOMEM, "unable to hold the extended attributes of '%s'", path);
    *kept = 1;
    return 0;
}

static int read_xattrs(nova_fsmeta_scanner *s, const char *path, uint32_t *count)
{
    const char *names, *end;
    size_t kept_count = 0;

    *count = 0;
    NOVA_TRY(list_xattr_names(s, path));
    if (s->name_list.len == 0)
        return 0;
    if (!s->value && !(s->value = malloc(NOVA_TREE_XATTR_VALUE_MAX)))
        return nova_fail(NOVA_ENOMEM, "unable to allocate an extended attribute buffer");
    names = (const char *)s->name_list.data;
    end = names + s->name_list.len;
    for (const char *name = names; name < end; name += strnlen(name, (size_t)(end - name)) + 1) {
        size_t len = strnlen(name, (size_t)(end - name));
        int kept;
        if (len == 0 || len == (size_t)(end - name)) /* empty, or not NUL-terminated */
            continue;
        if (len > NOVA_TREE_XATTR_NAME_MAX || kept_count >= NOVA_TREE_XATTRS_MAX)
            return nova_fail(NOVA_EUNSUPPORTED, "'%s' has extended attributes beyond the limits "
                             "of a tree", path);
        NOVA_TRY(reserve_positions(s, kept_count + 1));
        NOVA_TRY(read_one_xattr(s, path, name, &s->positions[kept_count], &kept));
        kept_count += (size_t)kept;
    }
    *count = (uint32_t)kept_count;
    return 0;
}

static int compare_xattr(const void *a, const void *b)
{
    return strcmp(((const nova_tree_xattr *)a)->name, ((const nova_tree_xattr *)b)->name);
}

static const char *at_offset(const nova_fsmeta_scanner *s, size_t offset)
{
    return offset == NO_OFFSET ? NULL : (const char *)s->strings.data + offset;
}

static const char *last_component(const char *path, size_t *len)
{
    size_t end = strlen(path), start;
    while (end > 1 && path[end - 1] == '/')
        end--;
    start = end;
    while (start > 0 && path[start - 1] != '/')
        start--;
    *len = end - start;
    return path + start;
}

int nova_fsmeta_stat(nova_fsmeta_scanner *s, nova_tree_entry *out, const char *path,
                     const char *name)
{
    struct stat st;
    size_t name_len, name_off, user_off = NO_OFFSET, group_off = NO_OFFSET;
    size_t target_off = NO_OFFSET;
    uint32_t xattr_count = 0;
    int failed = 0;

    nova_tree_entry_init(out);
    nova_buf_reset(&s->strings);
    if (lstat(path, &st) != 0)
        return nova_fail_errno(nova_error_from_errno(errno), errno, "unable to stat '%s'", path);
    NOVA_TRY(nova_fsmeta_entry_from_stat(out, &st, path));
    if (name)
        name_len = strlen(name);
    else
        name = last_component(path, &name_len);
    if (!nova_tree_name_valid(name, name_len))
        return nova_fail(NOVA_EINVALID, "'%s': the name '%.*s' cannot be stored in a tree", path,
                         (int)name_len, name);
    name_off = append_string(&s->strings, name, name_len, &failed);
    if (s->ids) {
        const char *user = nova_fsmeta_user_name(s->ids, out->uid);
        if (user)
            user_off = append_string(&s->strings, user, strlen(user), &failed);
        const char *group = nova_fsmeta_group_name(s->ids, out->gid);
        if (group)
            group_off = append_string(&s->strings, group, strlen(group), &failed);
    }
    if (failed)
        return nova_fail(NOVA_ENOMEM, "unable to hold the metadata of '%s'", path);
    if (out->type == NOVA_TREE_SYMLINK)
        NOVA_TRY(read_symlink(s, path, &target_off));
    if (!(s->flags & NOVA_FSMETA_SCAN_NO_XATTRS))
        NOVA_TRY(read_xattrs(s, path, &xattr_count));

    /* The buffer no longer moves: turn offsets into pointers. */
    out->name = at_offset(s, name_off);
    out->name_len = name_len;
    out->user_name = at_offset(s, user_off);
    out->group_name = at_offset(s, group_off);
    out->symlink_target = at_offset(s, target_off);
    for (uint32_t i = 0; i < xattr_count; i++) {
        s->xattrs[i].name = at_offset(s, s->positions[i].name);
        s->xattrs[i].value = s->strings.data + s->positions[i].value;
        s->xattrs[i].value_len = s->positions[i].value_len;
    }
    if (xattr_count > 0) {
        qsort(s->xattrs, xattr_count, sizeof(*s->xattrs), compare_xattr);
        out->xattrs = s->xattrs;
        out->xattr_count = xattr_count;
    }
    return 0;
}

/* ------------------------------------------------------------------ directories */

void nova_fsmeta_dir_list_free(nova_fsmeta_dir_list *list)
{
    if (!list)
        return;
    free(list->names);
    free(list->storage);
    memset(list, 0, sizeof(*list));
}

static int list_append(nova_fsmeta_dir_list *list, const char *name, const char *path)
{
    size_t len = strlen(name) + 1;
    if (len > list->storage_cap - list->storage_len) {
        size_t cap = list->storage_cap ? list->storage_cap : 4096;
        char *grown;
        while (cap - list->storage_len < len)
            cap *= 2;
        grown = realloc(list->storage, cap);
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to list directory '%s'", path);
        list->storage = grown;
        list->storage_cap = cap;
    }
    memcpy(list->storage + list->storage_len, name, len);
    list->storage_len += len;
    list->count++;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    /* strcmp compares as unsigned char: bytewise, the tree order. */
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int index_names(nova_fsmeta_dir_list *list, const char *path)
{
    const char *p = list->storage;

    if (list->count > list->names_cap) {
        const char **grown = realloc(list->names, list->count * sizeof(*grown));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to list directory '%s'", path);
        list->names = grown;
        list->names_cap = list->count;
    }
    for (size_t i = 0; i < list->count; i++) {
        list->names[i] = p;
        p += strlen(p) + 1;
    }
    if (list->count > 1)
        qsort(list->names, list->count, sizeof(*list->names), compare_names);
    return 0;
}

int nova_fsmeta_list_dir(nova_fsmeta_dir_list *list, const char *path)
{
    int fd, rc = 0;
    DIR *dir;

    list->count = 0;
    list->storage_len = 0;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return nova_fail_errno(nova_error_from_errno(errno), errno,
                               "unable to open directory '%s'", path);
    dir = fdopendir(fd);
    if (!dir) {
        int err = errno;
        close(fd);
        return nova_fail_errno(nova_error_from_errno(err), err, "unable to open directory '%s'",
                               path);
    }
    for (;;) {
        struct dirent *d;
        errno = 0;
        d = readdir(dir);
        if (!d) {
            if (errno != 0)
                rc = nova_fail_errno(nova_error_from_errno(errno), errno,
                                     "unable to read directory '%s'", path);
            break;
        }
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        if ((rc = list_append(list, d->d_name, path)) < 0)
            break;
    }
    closedir(dir);
    if (rc == 0)
        rc = index_names(list, path);
    if (rc < 0)
        list->count = 0;
    return rc;
}

static int join_child(nova_buf *out, const char *dir, const char *name)
{
    size_t dir_len = strlen(dir);
    nova_buf_reset(out);
    NOVA_TRY(nova_buf_append(out, dir, dir_len));
    if (dir_len == 0 || dir[dir_len - 1] != '/')
        NOVA_TRY(nova_buf_append(out, "/", 1));
    NOVA_TRY(nova_buf_append(out, name, strlen(name)));
    return nova_buf_append(out, "", 1);
}

int nova_fsmeta_scan_dir(nova_fsmeta_scanner *s, const char *dir_path,
                         nova_fsmeta_entry_cb on_entry, nova_fsmeta_error_cb on_error,
                         void *payload)
{
    nova_fsmeta_dir_list list = NOVA_FSMETA_DIR_LIST_INIT;
    nova_buf path = NOVA_BUF_INIT;
    int rc = nova_fsmeta_list_dir(&list, dir_path);

    for (size_t i = 0; rc == 0 && i < list.count; i++) {
        nova_tree_entry entry;
        if ((rc = join_child(&path, dir_path, list.names[i])) < 0)
            break;
        rc = nova_fsmeta_stat(s, &entry, (const char *)path.data, list.names[i]);
        if (rc == 0) {
            rc = on_entry(&entry, (const char *)path.data, payload);
        } else if (rc != NOVA_ENOMEM && on_error) {
            rc = on_error((const char *)path.data, rc, nova_error_last()->message, payload);
        }
        if (rc > 0)
            rc = 0;
    }
    nova_fsmeta_dir_list_free(&list);
    nova_buf_free(&path);
    return rc;
}

/* ------------------------------------------------------------------ reading content */

int nova_fsmeta_open_file(int *out_fd, const char *path)
{
    /* O_NONBLOCK: a FIFO swapped in after the scan must not block the open. */
    const int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
    struct stat st;
    int fd = open(path, flags | O_NOATIME);

    *out_fd = -1;
    if (fd < 0 && errno == EPERM) /* O_NOATIME needs ownership or CAP_FOWNER */
        fd = open(path, flags);
    if (fd < 0)
        return nova_fail_errno(errno == ELOOP ? NOVA_EUNSUPPORTED : nova_error_from_errno(errno),
                               errno, "unable to open '%s' for reading", path);
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return nova_fail_errno(nova_error_from_errno(err), err, "unable to stat '%s'", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return nova_fail(NOVA_EUNSUPPORTED, "'%s' is no longer a regular file", path);
    }
    /* Back to blocking reads (some network file systems honour O_NONBLOCK). */
    int status = fcntl(fd, F_GETFL);
    if (status < 0 || fcntl(fd, F_SETFL, status & ~O_NONBLOCK) != 0) {
        int err = errno;
        close(fd);
        return nova_fail_errno(nova_error_from_errno(err), err, "unable to open '%s'", path);
    }
    *out_fd = fd;
    return 0;
}

/* ------------------------------------------------------------------ change detection */

unsigned nova_fsmeta_changed_since(const nova_tree_entry *before, const struct stat *after)
{
    nova_tree_type type;
    unsigned changed = 0;

    if (type_from_mode(after->st_mode, &type) != 0 || type != before->type)
        changed |= NOVA_FSMETA_CHANGED_TYPE;
    if (after->st_size < 0 || (uint64_t)after->st_size != before->size)
        changed |= NOVA_FSMETA_CHANGED_SIZE;
    if (nova_fsmeta_timespec_ns(&after->st_mtim) != before->mtime_ns)
        changed |= NOVA_FSMETA_CHANGED_MTIME;
    if (nova_fsmeta_timespec_ns(&after->st_ctim) != before->ctime_ns)
        changed |= NOVA_FSMETA_CHANGED_CTIME;
    if ((uint64_t)after->st_ino != before->inode || (uint64_t)after->st_dev != before->device)
        changed |= NOVA_FSMETA_CHANGED_INODE;
    return changed;
}

unsigned nova_fsmeta_entry_changed(const nova_tree_entry *parent, const nova_tree_entry *current)
{
    unsigned changed = 0;

    if (parent->type != current->type)
        changed |= NOVA_FSMETA_CHANGED_TYPE;
    if (parent->mode != current->mode)
        changed |= NOVA_FSMETA_CHANGED_MODE;
    if (parent->size != current->size)
        changed |= NOVA_FSMETA_CHANGED_SIZE;
    if (parent->mtime_ns != current->mtime_ns)
        changed |= NOVA_FSMETA_CHANGED_MTIME;
    if (parent->ctime_ns != current->ctime_ns)
        changed |= NOVA_FSMETA_CHANGED_CTIME;
    if (parent->inode != current->inode || parent->device != current->device)
        changed |= NOVA_FSMETA_CHANGED_INODE;
    return changed;
}
