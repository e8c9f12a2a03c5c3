/*
 * restore_support.c -- a minimal snapshot writer and tree comparers for the restore tests
 * (see restore_support.h). One scanner per directory level, because a scanner's entry
 * strings only live until its next stat and the walk recurses while an entry is pending.
 */
#include "restore_support.h"

#include "common/err.h"
#include "fsmeta/scan.h"
#include "repo/repository.h"
#include "repo/tree.h"
#include "test_support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

nova_repository *restore_test_repo(const char *tag, unsigned threads, char **location_out)
{
    nova_repository_options options = NOVA_REPOSITORY_OPTIONS_INIT;
    nova_repository *repo = NULL;
    char *dir = test_make_temp_dir(tag);
    char location[4200];

    options.kdf_log2_n = 10;
    options.threads = threads;
    snprintf(location, sizeof(location), "%s/repo", dir);
    if (nova_repository_init(&repo, location, "test-pass", &options) < 0) {
        fprintf(stderr, "repository init failed: %s\n", nova_error_last()->message);
        abort();
    }
    if (location_out)
        *location_out = strdup(location);
    free(dir);
    return repo;
}

/* ------------------------------------------------------------------ the writer */

typedef struct writer {
    nova_repository *repo;
    nova_repo_session *session;
    nova_buf data;   /* file window */
    nova_buf tree;   /* encoded tree */
    nova_id *chunks; /* chunk ids of the current file */
    size_t chunk_count, chunk_cap;
} writer;

static int add_chunk(writer *w, const void *data, size_t len)
{
    if (w->chunk_count == w->chunk_cap) {
        size_t cap = w->chunk_cap ? w->chunk_cap * 2 : 64;
        nova_id *grown = realloc(w->chunks, cap * sizeof(*grown));
        if (!grown)
            return NOVA_ENOMEM;
        w->chunks = grown;
        w->chunk_cap = cap;
    }
    return nova_repo_session_add(w->session, NOVA_BLOB_DATA, data, len,
                                 &w->chunks[w->chunk_count++]);
}

/* Chunks a file with the repository's chunker, streaming through a window. */
static int chunk_file(writer *w, const char *path)
{
    const nova_chunker *chunker = &w->repo->repo->chunker;
    size_t window = (size_t)chunker->params.max_size * 2, have = 0;
    int fd, rc = 0, eof = 0;

    w->chunk_count = 0;
    NOVA_TRY(nova_fsmeta_open_file(&fd, path));
    rc = nova_buf_resize(&w->data, window);
    while (rc == 0 && (!eof || have > 0)) {
        while (!eof && have < window) {
            ssize_t n = read(fd, w->data.data + have, window - have);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = nova_fail_errno(NOVA_EIO, errno, "read '%s'", path);
                break;
            }
            if (n == 0)
                eof = 1;
            have += (size_t)n;
        }
        if (rc < 0 || have == 0)
            break;
        size_t cut = nova_chunker_next(chunker, w->data.data, have);
        rc = add_chunk(w, w->data.data, cut);
        memmove(w->data.data, w->data.data + cut, have - cut);
        have -= cut;
    }
    close(fd);
    return rc;
}

static int backup_dir(writer *w, const char *path, nova_id *tree_id);

typedef struct dir_ctx {
    writer *w;
    nova_tree_builder *builder;
    int rc;
} dir_ctx;

static int on_entry(const nova_tree_entry *entry, const char *path, void *payload)
{
    dir_ctx *d = payload;
    nova_tree_entry e = *entry;
    int rc = 0;

    if (e.type == NOVA_TREE_FILE) {
        rc = chunk_file(d->w, path);
        e.chunks = d->w->chunks;
        e.chunk_count = d->w->chunk_count;
    } else if (e.type == NOVA_TREE_DIR) {
        rc = backup_dir(d->w, path, &e.subtree);
    }
    if (rc == 0)
        rc = nova_tree_builder_add(d->builder, &e);
    return rc;
}

static int on_error(const char *path, int code, const char *message, void *payload)
{
    (void)payload;
    fprintf(stderr, "backup: %s: %s\n", path, message);
    return code;
}

static int backup_dir(writer *w, const char *path, nova_id *tree_id)
{
    nova_fsmeta_scanner *scanner = NULL;
    dir_ctx d = {w, NULL, 0};
    int rc = nova_fsmeta_scanner_new(&scanner, 0);

    if (rc == 0)
        rc = nova_tree_builder_new(&d.builder);
    if (rc == 0)
        rc = nova_fsmeta_scan_dir(scanner, path, on_entry, on_error, &d);
    if (rc == 0)
        rc = nova_tree_builder_encode(d.builder, &w->tree);
    if (rc == 0)
        rc = nova_repo_session_add(w->session, NOVA_BLOB_TREE, w->tree.data, w->tree.len, tree_id);
    nova_tree_builder_free(d.builder);
    nova_fsmeta_scanner_free(scanner);
    return rc;
}

/* The tree of one entry: `e` (already filled) alone. */
static int single_entry_tree(writer *w, const nova_tree_entry *e, nova_id *tree_id)
{
    nova_tree_builder *builder = NULL;
    int rc = nova_tree_builder_new(&builder);
    if (rc == 0)
        rc = nova_tree_builder_add(builder, e);
    if (rc == 0)
        rc = nova_tree_builder_encode(builder, &w->tree);
    if (rc == 0)
        rc = nova_repo_session_add(w->session, NOVA_BLOB_TREE, w->tree.data, w->tree.len, tree_id);
    nova_tree_builder_free(builder);
    return rc;
}

/* The root tree for `path`: its own entry wrapped in one directory per ancestor. */
static int backup_path(writer *w, const char *path, nova_id *root)
{
    char *copy = strdup(path);
    nova_fsmeta_scanner *scanner = NULL;
    nova_tree_entry e;
    nova_id tree;
    int rc;

    if (!copy)
        return NOVA_ENOMEM;
    rc = nova_fsmeta_scanner_new(&scanner, 0);
    if (rc == 0)
        rc = nova_fsmeta_stat(scanner, &e, copy, NULL);
    if (rc == 0 && e.type == NOVA_TREE_FILE) {
        rc = chunk_file(w, copy);
        e.chunks = w->chunks;
        e.chunk_count = w->chunk_count;
    } else if (rc == 0 && e.type == NOVA_TREE_DIR) {
        rc = backup_dir(w, copy, &e.subtree);
    }
    if (rc == 0)
        rc = single_entry_tree(w, &e, &tree);
    /* Up the ancestors: each becomes a directory holding only the previous level. */
    for (char *slash; rc == 0 && (slash = strrchr(copy, '/')) != NULL;) {
        *slash = '\0';
        if (copy[0] == '\0')
            break;
        rc = nova_fsmeta_stat(scanner, &e, copy, NULL);
        if (rc == 0) {
            e.subtree = tree;
            rc = single_entry_tree(w, &e, &tree);
        }
    }
    if (rc == 0)
        *root = tree;
    nova_fsmeta_scanner_free(scanner);
    free(copy);
    return rc;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int write_snapshot(writer *w, const nova_id *root, const char *path, int64_t start_ns,
                          nova_snapshot_status status, nova_id *snapshot_id)
{
    nova_repo *r = w->repo->repo;
    nova_snapshot *snap = NULL;
    int rc = nova_repo_session_commit(w->session);

    if (rc == 0)
        rc = nova_snapshot_new(&snap);
    if (rc == 0) {
        snap->tree = *root;
        snap->status = status;
        snap->start_ns = start_ns ? start_ns : now_ns();
        snap->end_ns = snap->start_ns + 1000;
        rc = nova_snapshot_set_host(snap, "restore-test");
    }
    if (rc == 0)
        rc = nova_snapshot_add_path(snap, path);
    if (rc == 0)
        rc = nova_snapshot_write(r->storage, snapshot_id, snap, r->keys.enc, &r->config.codec);
    nova_snapshot_free(snap);
    return rc;
}

static int writer_open(writer *w, nova_repository *repo)
{
    nova_chunk_index *index;
    memset(w, 0, sizeof(*w));
    w->repo = repo;
    NOVA_TRY(nova_repository_chunk_index(repo, &index));
    return nova_repo_session_new(&w->session, repo->repo, index);
}

static void writer_close(writer *w)
{
    nova_repo_session_free(w->session);
    nova_buf_free(&w->data);
    nova_buf_free(&w->tree);
    free(w->chunks);
}

int restore_test_backup(nova_repository *repo, const char *path, int64_t start_ns,
                        nova_snapshot_status status, nova_id *snapshot_id)
{
    writer w;
    nova_id root;
    int rc = writer_open(&w, repo);
    if (rc == 0)
        rc = backup_path(&w, path, &root);
    if (rc == 0)
        rc = write_snapshot(&w, &root, path, start_ns, status, snapshot_id);
    writer_close(&w);
    return rc;
}

int restore_test_snapshot_from_tree(nova_repository *repo, const void *tree, size_t tree_len,
                                    const nova_blob_type *types, const void *const *blobs,
                                    const size_t *blob_lens, size_t blob_count,
                                    nova_id *snapshot_id)
{
    writer w;
    nova_id root, id;
    int rc = writer_open(&w, repo);
    for (size_t i = 0; rc == 0 && i < blob_count; i++)
        rc = nova_repo_session_add(w.session, types[i], blobs[i], blob_lens[i], &id);
    if (rc == 0)
        rc = nova_repo_session_add(w.session, NOVA_BLOB_TREE, tree, tree_len, &root);
    if (rc == 0)
        rc = write_snapshot(&w, &root, "/crafted", 0, NOVA_SNAPSHOT_COMPLETED, snapshot_id);
    writer_close(&w);
    return rc;
}

void restore_test_chunk_id(nova_repository *repo, nova_id *out, const void *data, size_t len)
{
    if (nova_repo_chunk_id(repo->repo, out, data, len) < 0)
        abort();
}

char *restore_test_pack_of(nova_repository *repo, const char *location, const nova_id *id,
                           uint32_t *offset, uint32_t *length)
{
    char name[NOVA_PACK_NAME_LEN + 1];
    nova_chunk_index *index;
    nova_chunk_location loc;
    char *path = malloc(4200);

    if (!path || nova_repository_chunk_index(repo, &index) < 0 ||
        nova_chunk_index_lookup(index, id, &loc) != 1)
        abort();
    nova_pack_storage_name(name, nova_chunk_index_pack_id(index, loc.pack));
    snprintf(path, 4200, "%s/%s", location, name);
    *offset = loc.offset;
    *length = loc.length;
    return path;
}

/* ------------------------------------------------------------------ files */

uint8_t *restore_test_read_file(const char *path, size_t *len)
{
    struct stat st;
    uint8_t *data;
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    size_t done = 0;

    *len = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    data = malloc((size_t)st.st_size + 1);
    while (data && done < (size_t)st.st_size) {
        ssize_t n = read(fd, data + done, (size_t)st.st_size - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    close(fd);
    *len = done;
    return data;
}

/* ------------------------------------------------------------------ comparing trees */

typedef struct inode_pair {
    dev_t a_dev;
    ino_t a_ino;
    dev_t b_dev;
    ino_t b_ino;
} inode_pair;

typedef struct compare_ctx {
    inode_pair *pairs;
    size_t count, cap;
} compare_ctx;

static int differ(const char *path, const char *what)
{
    fprintf(stderr, "trees differ at '%s': %s\n", path, what);
    return -1;
}

static int compare_xattrs(const char *a, const char *b)
{
    char list_a[4096], list_b[4096], va[4096], vb[4096];
    ssize_t la = llistxattr(a, list_a, sizeof(list_a));
    ssize_t lb = llistxattr(b, list_b, sizeof(list_b));
    if (la < 0)
        la = 0;
    if (lb < 0)
        lb = 0;
    for (ssize_t i = 0; i < la; i += (ssize_t)strlen(list_a + i) + 1) {
        const char *name = list_a + i;
        ssize_t na, nb;
        if (strncmp(name, "user.", 5) != 0)
            continue;
        na = lgetxattr(a, name, va, sizeof(va));
        nb = lgetxattr(b, name, vb, sizeof(vb));
        if (na != nb || (na > 0 && memcmp(va, vb, (size_t)na) != 0))
            return differ(b, name);
    }
    (void)list_b;
    return 0;
}

static int check_hardlink(compare_ctx *c, const char *path, const struct stat *sa,
                          const struct stat *sb)
{
    for (size_t i = 0; i < c->count; i++) {
        int same_a = c->pairs[i].a_dev == sa->st_dev && c->pairs[i].a_ino == sa->st_ino;
        int same_b = c->pairs[i].b_dev == sb->st_dev && c->pairs[i].b_ino == sb->st_ino;
        if (same_a != same_b)
            return differ(path, "hard links not preserved");
        if (same_a)
            return 0;
    }
    if (c->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->pairs = realloc(c->pairs, c->cap * sizeof(*c->pairs));
        if (!c->pairs)
            abort();
    }
    c->pairs[c->count].a_dev = sa->st_dev;
    c->pairs[c->count].a_ino = sa->st_ino;
    c->pairs[c->count].b_dev = sb->st_dev;
    c->pairs[c->count].b_ino = sb->st_ino;
    c->count++;
    return 0;
}

static int compare_entry(compare_ctx *c, const char *a, const char *b);

static int compare_dir(compare_ctx *c, const char *a, const char *b)
{
    struct dirent **list_a = NULL, **list_b = NULL;
    int na = scandir(a, &list_a, NULL, alphasort), nb = scandir(b, &list_b, NULL, alphasort);
    int rc = 0;

    if (na < 0 || nb < 0)
        rc = differ(b, "unreadable directory");
    else if (na != nb)
        rc = differ(b, "different number of entries");
    for (int i = 0; rc == 0 && i < na; i++) {
        char pa[4096], pb[4096];
        if (strcmp(list_a[i]->d_name, list_b[i]->d_name) != 0) {
            rc = differ(b, list_a[i]->d_name);
            break;
        }
        if (strcmp(list_a[i]->d_name, ".") == 0 || strcmp(list_a[i]->d_name, "..") == 0)
            continue;
        snprintf(pa, sizeof(pa), "%s/%s", a, list_a[i]->d_name);
        snprintf(pb, sizeof(pb), "%s/%s", b, list_b[i]->d_name);
        rc = compare_entry(c, pa, pb);
    }
    for (int i = 0; i < na; i++)
        free(list_a[i]);
    for (int i = 0; i < nb; i++)
        free(list_b[i]);
    free(list_a);
    free(list_b);
    return rc;
}

static int compare_content(const char *a, const char *b)
{
    size_t la, lb;
    uint8_t *da = restore_test_read_file(a, &la), *db = restore_test_read_file(b, &lb);
    int rc = 0;
    if (!da || !db || la != lb || (la > 0 && memcmp(da, db, la) != 0))
        rc = differ(b, "content");
    free(da);
    free(db);
    return rc;
}

static int compare_entry(compare_ctx *c, const char *a, const char *b)
{
    struct stat sa, sb;

    if (lstat(a, &sa) != 0 || lstat(b, &sb) != 0)
        return differ(b, "missing");
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT))
        return differ(b, "type");
    if (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777))
        return differ(b, "mode");
    if (sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid)
        return differ(b, "owner");
    if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
        return differ(b, "mtime");
    if (!S_ISDIR(sa.st_mode) && sa.st_size != sb.st_size)
        return differ(b, "size");
    if (compare_xattrs(a, b) != 0)
        return -1;
    if (!S_ISDIR(sa.st_mode) && sa.st_nlink > 1 && check_hardlink(c, b, &sa, &sb) != 0)
        return -1;
    if (S_ISREG(sa.st_mode))
        return compare_content(a, b);
    if (S_ISLNK(sa.st_mode)) {
        char ta[4096], tb[4096];
        ssize_t la = readlink(a, ta, sizeof(ta)), lb = readlink(b, tb, sizeof(tb));
        if (la != lb || la < 0 || memcmp(ta, tb, (size_t)la) != 0)
            return differ(b, "symlink target");
        return 0;
    }
    if (S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode))
        return sa.st_rdev == sb.st_rdev ? 0 : differ(b, "rdev");
    if (S_ISDIR(sa.st_mode))
        return compare_dir(c, a, b);
    return 0;
}

int restore_test_compare_trees(const char *a, const char *b)
{
    compare_ctx c = {NULL, 0, 0};
    int rc = compare_entry(&c, a, b);
    free(c.pairs);
    return rc;
}
