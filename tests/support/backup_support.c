/*
 * backup_support.c -- repositories, backups and a snapshot-against-file-system verifier
 * for the backup engine's tests (see backup_support.h).
 *
 * The verifier reads trees and chunks straight from the repository (blob reader over the
 * handle's chunk index), so it checks what a restore would see without depending on the
 * restore code.
 */
#include "backup_support.h"

#include "backup/catalog.h"
#include "common/err.h"
#include "repo/index.h"
#include "repo/pack.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "test_support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static void die(const char *what, int rc)
{
    char line[1024];
    fprintf(stderr, "backup_support: %s: %s\n", what, nova_error_format(rc, line, sizeof(line)));
    abort();
}

nova_repository *bt_repo(const char *tag, unsigned threads, char **location)
{
    nova_repository_options o = NOVA_REPOSITORY_OPTIONS_INIT;
    nova_repository *repo = NULL;
    char *dir = test_make_temp_dir(tag);
    char *repo_dir = bt_join(dir, "repo");
    int rc;

    o.kdf_log2_n = 10;
    o.threads = threads;
    rc = nova_repository_init(&repo, repo_dir, BT_PASSPHRASE, &o);
    if (rc < 0)
        die("init", rc);
    free(dir);
    if (location)
        *location = repo_dir;
    else
        free(repo_dir);
    return repo;
}

nova_repository *bt_open(const char *location, unsigned threads)
{
    nova_repository_options o = NOVA_REPOSITORY_OPTIONS_INIT;
    nova_repository *repo = NULL;
    int rc;
    o.threads = threads;
    rc = nova_repository_open(&repo, location, BT_PASSPHRASE, &o);
    if (rc < 0)
        die("open", rc);
    return repo;
}

/* ------------------------------------------------------------------ backups */

static void record_error(const char *path, int code, const char *message, void *payload)
{
    bt_errors *e = payload;
    (void)message;
    if (!e || e->count >= sizeof(e->paths) / sizeof(e->paths[0]))
        return;
    e->paths[e->count] = strdup(path);
    e->codes[e->count] = code;
    e->count++;
}

int bt_backup(nova_repository *repo, nova_backup_strategy strategy, const char *const *paths,
              size_t count, nova_backup_info **out, bt_errors *errors)
{
    nova_backup_options o = NOVA_BACKUP_OPTIONS_INIT;
    o.strategy = strategy;
    o.paths = paths;
    o.path_count = count;
    o.file_error = record_error;
    o.payload = errors;
    o.host = "test-host";
    return nova_create_backup(repo, &o, out);
}

int bt_backup_with(nova_repository *repo, nova_backup_options *o, const char *path,
                   nova_backup_info **out, bt_errors *errors)
{
    static const char *one[1];
    one[0] = path;
    o->paths = one;
    o->path_count = 1;
    o->file_error = record_error;
    if (!o->payload)
        o->payload = errors;
    if (!o->host)
        o->host = "test-host";
    return nova_create_backup(repo, o, out);
}

void bt_errors_clear(bt_errors *e)
{
    for (size_t i = 0; i < e->count; i++)
        free(e->paths[i]);
    memset(e, 0, sizeof(*e));
}

int bt_errors_has(const bt_errors *e, const char *path)
{
    for (size_t i = 0; i < e->count; i++)
        if (strcmp(e->paths[i], path) == 0)
            return 1;
    return 0;
}

/* ------------------------------------------------------------------ reading trees */

typedef struct reader_ctx {
    nova_repository *repo;
    nova_repo_reader *reader;
    nova_buf blob;
} reader_ctx;

static int ctx_open(reader_ctx *c, nova_repository *repo)
{
    nova_chunk_index *index;
    memset(c, 0, sizeof(*c));
    c->repo = repo;
    if (nova_repository_chunk_index(repo, &index) < 0)
        return -1;
    return nova_repo_reader_new(&c->reader, repo->repo, index) < 0 ? -1 : 0;
}

static void ctx_close(reader_ctx *c)
{
    nova_repo_reader_free(c->reader);
    nova_buf_free(&c->blob);
}

static nova_tree *load_tree(reader_ctx *c, const nova_id *id)
{
    nova_tree *tree = NULL;
    if (nova_repo_reader_read(c->reader, id, &c->blob) < 0)
        return NULL;
    if (nova_tree_decode(&tree, c->blob.data, c->blob.len, "tree") < 0)
        return NULL;
    return tree;
}

static int root_of(nova_repository *repo, const char *backup_id, nova_id *root)
{
    nova_backup_info *info = NULL;
    if (nova_get_backup(repo, backup_id, &info) < 0)
        return -1;
    *root = nova_backup_info_snapshot(info)->tree;
    nova_backup_info_free(info);
    return 0;
}

/* Finds the entry for absolute path `path`: *parent gets the tree holding it (caller
 * frees) and *entry points into it. For "/" there is no entry: returns 1. */
static int find_entry(reader_ctx *c, const nova_id *root, const char *path, nova_tree **parent,
                      const nova_tree_entry **entry)
{
    nova_tree *tree = load_tree(c, root);
    const char *p = path;

    *parent = NULL;
    *entry = NULL;
    if (!tree)
        return -1;
    while (*p == '/')
        p++;
    if (!*p) {
        *parent = tree;
        return 1;
    }
    for (;;) {
        size_t len = strcspn(p, "/");
        const nova_tree_entry *e = nova_tree_find(tree, p, len);
        if (!e) {
            nova_tree_free(tree);
            return -1;
        }
        p += len;
        while (*p == '/')
            p++;
        if (!*p) {
            *parent = tree;
            *entry = e;
            return 0;
        }
        if (e->type != NOVA_TREE_DIR) {
            nova_tree_free(tree);
            return -1;
        }
        nova_id next = e->subtree;
        nova_tree_free(tree);
        tree = load_tree(c, &next);
        if (!tree)
            return -1;
    }
}

int bt_tree_of(nova_repository *repo, const char *backup_id, const char *path, nova_id *out)
{
    reader_ctx c;
    nova_id root;
    nova_tree *parent = NULL;
    const nova_tree_entry *e = NULL;
    int rc = -1;

    if (root_of(repo, backup_id, &root) < 0 || ctx_open(&c, repo) < 0)
        return -1;
    int found = find_entry(&c, &root, path, &parent, &e);
    if (found == 1) {
        *out = root;
        rc = 0;
    } else if (found == 0 && e->type == NOVA_TREE_DIR) {
        *out = e->subtree;
        rc = 0;
    }
    nova_tree_free(parent);
    ctx_close(&c);
    return rc;
}

/* ------------------------------------------------------------------ the verifier */

static int differ(const char *path, const char *what)
{
    fprintf(stderr, "bt_verify: %s: %s differs\n", path, what);
    return -1;
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NOATIME); /* leave atimes alone */
    struct stat st;
    uint8_t *data;
    size_t got = 0;

    if (fd < 0 || fstat(fd, &st) != 0)
        return NULL;
    data = malloc((size_t)st.st_size + 1);
    while (data && got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return data;
}

static int verify_content(reader_ctx *c, const nova_tree_entry *e, const char *path)
{
    size_t len = 0, at = 0;
    uint8_t *data = read_whole(path, &len);
    int rc = 0;

    if (!data)
        return differ(path, "readability");
    if (len != e->size)
        rc = differ(path, "size");
    for (uint64_t i = 0; rc == 0 && i < e->chunk_count; i++) {
        if (nova_repo_reader_read(c->reader, &e->chunks[i], &c->blob) < 0)
            rc = differ(path, "chunk readability");
        else if (at + c->blob.len > len || memcmp(data + at, c->blob.data, c->blob.len) != 0)
            rc = differ(path, "content");
        else
            at += c->blob.len;
    }
    if (rc == 0 && at != len)
        rc = differ(path, "content length");
    free(data);
    return rc;
}

static int verify_xattrs(const nova_tree_entry *e, const char *path)
{
    char names[4096], value[4096];
    ssize_t n = llistxattr(path, names, sizeof(names));
    uint32_t user_count = 0, stored_user = 0;

    for (uint32_t i = 0; i < e->xattr_count; i++)
        stored_user += strncmp(e->xattrs[i].name, "user.", 5) == 0;
    for (ssize_t at = 0; n > 0 && at < n; at += (ssize_t)strlen(names + at) + 1) {
        const char *name = names + at;
        ssize_t vlen;
        uint32_t k;
        if (strncmp(name, "user.", 5) != 0)
            continue;
        user_count++;
        vlen = lgetxattr(path, name, value, sizeof(value));
        for (k = 0; k < e->xattr_count; k++)
            if (strcmp(e->xattrs[k].name, name) == 0)
                break;
        if (k == e->xattr_count || vlen < 0 || (uint32_t)vlen != e->xattrs[k].value_len ||
            (vlen && memcmp(value, e->xattrs[k].value, (size_t)vlen) != 0))
            return differ(path, name);
    }
    return user_count == stored_user ? 0 : differ(path, "extended attribute count");
}

static int verify_node(reader_ctx *c, const nova_tree_entry *e, const char *path,
                       const char *skip);

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int verify_dir(reader_ctx *c, const nova_id *id, const char *path, const char *skip)
{
    nova_tree *tree = load_tree(c, id);
    DIR *dir = opendir(path);
    char *names[4096];
    size_t count = 0, kept = 0;
    struct dirent *d;
    int rc = 0;

    if (!tree || !dir) {
        if (dir)
            closedir(dir);
        nova_tree_free(tree);
        return differ(path, "tree or directory readability");
    }
    while ((d = readdir(dir)) && count < 4096) {
        if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
            names[count++] = strdup(d->d_name);
    }
    closedir(dir);
    qsort(names, count, sizeof(*names), compare_names);
    for (size_t i = 0; i < count && rc == 0; i++) {
        char *child = bt_join(path, names[i]);
        const nova_tree_entry *e = nova_tree_find(tree, names[i], strlen(names[i]));
        if (skip && (fnmatch(skip, names[i], 0) == 0 || fnmatch(skip, child, 0) == 0)) {
            if (e)
                rc = differ(child, "presence of an excluded entry");
        } else if (!e) {
            rc = differ(child, "presence");
        } else {
            kept++;
            rc = verify_node(c, e, child, skip);
        }
        free(child);
    }
    if (rc == 0 && kept != tree->count)
        rc = differ(path, "entry count");
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    nova_tree_free(tree);
    return rc;
}

static int verify_node(reader_ctx *c, const nova_tree_entry *e, const char *path,
                       const char *skip)
{
    struct stat st;
    char target[4096];

    if (lstat(path, &st) != 0)
        return differ(path, "existence");
    if ((e->type == NOVA_TREE_FILE) != S_ISREG(st.st_mode) ||
        (e->type == NOVA_TREE_DIR) != S_ISDIR(st.st_mode) ||
        (e->type == NOVA_TREE_SYMLINK) != S_ISLNK(st.st_mode) ||
        (e->type == NOVA_TREE_FIFO) != S_ISFIFO(st.st_mode))
        return differ(path, "type");
    if (e->mode != (st.st_mode & 07777))
        return differ(path, "mode");
    if (e->uid != st.st_uid || e->gid != st.st_gid)
        return differ(path, "owner");
    if (e->inode != st.st_ino || e->nlink != st.st_nlink)
        return differ(path, "inode or link count");
    if (e->type != NOVA_TREE_DIR &&
        e->mtime_ns != (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec)
        return differ(path, "mtime");
    if (verify_xattrs(e, path) < 0)
        return -1;
    switch (e->type) {
    case NOVA_TREE_FILE:
        if (((e->flags & NOVA_TREE_ENTRY_SPARSE) != 0) !=
            ((uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size))
            return differ(path, "sparse flag");
        return verify_content(c, e, path);
    case NOVA_TREE_DIR:
        return verify_dir(c, &e->subtree, path, skip);
    case NOVA_TREE_SYMLINK: {
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n < 0)
            return differ(path, "symlink readability");
        target[n] = '\0';
        return strcmp(target, e->symlink_target) == 0 ? 0 : differ(path, "symlink target");
    }
    default:
        return 0;
    }
}

int bt_verify(nova_repository *repo, const char *backup_id, const char *path, const char *skip)
{
    reader_ctx c;
    nova_id root;
    nova_tree *parent = NULL;
    const nova_tree_entry *e = NULL;
    int rc;

    if (root_of(repo, backup_id, &root) < 0 || ctx_open(&c, repo) < 0) {
        fprintf(stderr, "bt_verify: backup %s cannot be opened\n", backup_id);
        return -1;
    }
    rc = find_entry(&c, &root, path, &parent, &e);
    if (rc == 1)
        rc = verify_dir(&c, &root, "/", skip);
    else if (rc == 0)
        rc = verify_node(&c, e, path, skip);
    else
        fprintf(stderr, "bt_verify: %s is not in backup %s\n", path, backup_id);
    nova_tree_free(parent);
    ctx_close(&c);
    return rc;
}

/* ------------------------------------------------------------------ repository checks */

static int count_one(const char *name, uint64_t size, void *payload)
{
    (void)name;
    (void)size;
    (*(size_t *)payload)++;
    return 0;
}

size_t bt_count(const char *location, const char *prefix)
{
    nova_storage *s = NULL;
    size_t n = 0;
    if (nova_storage_local_open(&s, location, 0) < 0)
        return 0;
    nova_storage_list(s, prefix, count_one, &n);
    nova_storage_free(s);
    return n;
}

typedef struct check_ctx {
    nova_repository *repo;
    nova_buf bytes;
    int bad;
} check_ctx;

static int check_index_file(const char *name, uint64_t size, void *payload)
{
    check_ctx *c = payload;
    nova_index index = NOVA_INDEX_INIT;
    nova_repo *r = c->repo->repo;
    (void)size;

    if (nova_storage_get(r->storage, name, 0, NOVA_STORAGE_WHOLE, &c->bytes) < 0 ||
        nova_index_open(&index, r->keys.enc, c->bytes.data, c->bytes.len, name) < 0) {
        fprintf(stderr, "bt_check: index %s unreadable\n", name);
        c->bad = 1;
        return 0;
    }
    for (size_t p = 0; p < index.pack_count; p++) {
        char pack[NOVA_PACK_NAME_LEN + 1];
        nova_object_info info;
        const nova_index_pack *ip = &index.packs[p];
        nova_pack_storage_name(pack, &ip->pack_id);
        if (nova_storage_stat(r->storage, pack, &info) < 0) {
            fprintf(stderr, "bt_check: %s names missing pack %s\n", name, pack);
            c->bad = 1;
            continue;
        }
        for (size_t i = 0; i < ip->entry_count; i++)
            if ((uint64_t)ip->entries[i].offset + ip->entries[i].length > info.size) {
                fprintf(stderr, "bt_check: pack %s is too short\n", pack);
                c->bad = 1;
                break;
            }
    }
    nova_index_free(&index);
    return 0;
}

static int check_tree(reader_ctx *rc, const nova_id *id, int depth)
{
    nova_tree *tree = load_tree(rc, id);
    int bad = 0;
    if (!tree || depth > 64)
        return -1;
    for (size_t i = 0; i < tree->count && !bad; i++) {
        const nova_tree_entry *e = &tree->entries[i];
        if (e->type == NOVA_TREE_DIR)
            bad = check_tree(rc, &e->subtree, depth + 1) < 0;
        for (uint64_t k = 0; k < e->chunk_count && !bad; k++)
            bad = nova_repo_reader_read(rc->reader, &e->chunks[k], &rc->blob) < 0;
    }
    nova_tree_free(tree);
    return bad ? -1 : 0;
}

int bt_check_repository(const char *location)
{
    nova_repository *repo = bt_open(location, 1);
    nova_backup_info **infos = NULL;
    size_t count = 0;
    check_ctx c = {repo, NOVA_BUF_INIT, 0};
    reader_ctx rc;

    nova_storage_list(repo->repo->storage, "index/", check_index_file, &c);
    nova_buf_free(&c.bytes);
    if (nova_list_backups(repo, NULL, &infos, &count) < 0 || ctx_open(&rc, repo) < 0) {
        nova_repository_close(repo);
        return -1;
    }
    for (size_t i = 0; i < count && !c.bad; i++) {
        if (check_tree(&rc, &nova_backup_info_snapshot(infos[i])->tree, 0) < 0) {
            fprintf(stderr, "bt_check: backup %s has unreadable trees or chunks\n",
                    infos[i]->backup_id);
            c.bad = 1;
        }
    }
    ctx_close(&rc);
    nova_backup_info_list_free(infos, count);
    nova_repository_close(repo);
    return c.bad ? -1 : 0;
}

/* ------------------------------------------------------------------ files */

void bt_write_text(const char *path, const char *text)
{
    test_write_file(path, text, strlen(text));
}

void bt_mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        perror(path);
        abort();
    }
}

char *bt_join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *out = malloc(len);
    if (!out)
        abort();
    snprintf(out, len, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return out;
}

/* ------------------------------------------------------------------ tree differences */

static void print_entry_diff(const char *path, const nova_tree_entry *a, const nova_tree_entry *b)
{
    fprintf(stderr, "bt_diff: %s/%s:", path, a->name);
    if (a->type != b->type)
        fprintf(stderr, " type");
    if (a->flags != b->flags)
        fprintf(stderr, " flags %u/%u", a->flags, b->flags);
    if (a->mode != b->mode)
        fprintf(stderr, " mode");
    if (a->size != b->size)
        fprintf(stderr, " size");
    if (a->mtime_ns != b->mtime_ns)
        fprintf(stderr, " mtime");
    if (a->atime_ns != b->atime_ns)
        fprintf(stderr, " atime %lld/%lld", (long long)a->atime_ns, (long long)b->atime_ns);
    if (a->ctime_ns != b->ctime_ns)
        fprintf(stderr, " ctime");
    if (a->inode != b->inode || a->device != b->device || a->nlink != b->nlink)
        fprintf(stderr, " inode/device/nlink");
    if (a->chunk_count != b->chunk_count ||
        (a->chunk_count && memcmp(a->chunks, b->chunks, a->chunk_count * sizeof(nova_id))))
        fprintf(stderr, " chunks");
    if (a->type == NOVA_TREE_DIR && !nova_id_equal(&a->subtree, &b->subtree))
        fprintf(stderr, " subtree");
    fprintf(stderr, "\n");
}

static void diff_trees(reader_ctx *c, const nova_id *x, const nova_id *y, const char *path)
{
    nova_tree *a = load_tree(c, x);
    nova_tree *b = a ? load_tree(c, y) : NULL;
    if (!a || !b) {
        fprintf(stderr, "bt_diff: %s: unreadable tree\n", path);
    } else if (a->count != b->count) {
        fprintf(stderr, "bt_diff: %s: %zu vs %zu entries\n", path, a->count, b->count);
    } else {
        for (size_t i = 0; i < a->count; i++) {
            const nova_tree_entry *ea = &a->entries[i], *eb = &b->entries[i];
            if (nova_tree_entry_equal(ea, eb))
                continue;
            print_entry_diff(path, ea, eb);
            if (ea->type == NOVA_TREE_DIR && eb->type == NOVA_TREE_DIR) {
                char *sub = bt_join(path, ea->name);
                diff_trees(c, &ea->subtree, &eb->subtree, sub);
                free(sub);
            }
        }
    }
    nova_tree_free(a);
    nova_tree_free(b);
}

void bt_diff_trees(nova_repository *repo, const nova_id *a, const nova_id *b)
{
    reader_ctx c;
    if (ctx_open(&c, repo) < 0)
        return;
    diff_trees(&c, a, b, "");
    ctx_close(&c);
}
