/*
 * maintenance_support.c -- test repositories for check and prune; see the header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "maintenance_support.h"

#include "common/err.h"
#include "repo/repository.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "test_support.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE_SIZE 40000

/* ---- file content: a pure function of the file number ------------------------------- */

static size_t file_size(unsigned f)
{
    if (f % 5 == 4)
        return 0;
    if (f % 7 == 3)
        return 16384;
    return 2000 + (size_t)(f * 7919u) % 30000;
}

/* Fills out (file_size(f) bytes). Files f % 7 == 3 repeat one 4 KiB block. */
static void file_content(unsigned f, uint8_t *out)
{
    size_t size = file_size(f);
    if (f % 7 == 3) {
        test_fill_random(out, 4096, 5000 + f);
        for (size_t i = 4096; i < size; i++)
            out[i] = out[i % 4096];
        return;
    }
    test_fill_random(out, size, 1000 + f);
}

/* Length of chunk j of file f starting at pos. */
static size_t chunk_len(unsigned f, unsigned j, size_t pos)
{
    size_t size = file_size(f), len;
    if (f % 7 == 3)
        len = 4096;
    else
        len = 1024 + (size_t)((f * 31u + j * 17u) % 8u) * 1024;
    return len < size - pos ? len : size - pos;
}

static void file_name(char out[32], unsigned f)
{
    snprintf(out, 32, "file-%03u", f);
}

/* ---- building --------------------------------------------------------------------- */

static void set_small_packs(maint_repo *r)
{
    r->handle->repo->config.pack_target_size = MAINT_PACK_TARGET;
}

maint_repo *maint_repo_create(const char *tag)
{
    nova_repository_options options = NOVA_REPOSITORY_OPTIONS_INIT;
    maint_repo *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->dir = test_make_temp_dir(tag);
    options.kdf_log2_n = 10;
    options.threads = 2;
    assert_int_equal(nova_repository_init(&r->handle, r->dir, MAINT_PASS, &options), 0);
    set_small_packs(r);
    return r;
}

maint_repo *maint_repo_standard(const char *tag)
{
    maint_repo *r = maint_repo_create(tag);
    maint_repo_add_snapshot(r, 0, 10);
    maint_repo_add_snapshot(r, 5, 10);
    maint_repo_add_snapshot(r, 10, 10);
    return r;
}

void maint_repo_free(maint_repo *r)
{
    if (!r)
        return;
    nova_repository_close(r->handle);
    test_remove_tree(r->dir);
    free(r->dir);
    free(r);
}

void maint_repo_reopen(maint_repo *r)
{
    nova_repository_options options = NOVA_REPOSITORY_OPTIONS_INIT;
    options.threads = 2;
    nova_repository_close(r->handle);
    r->handle = NULL;
    assert_int_equal(nova_repository_open(&r->handle, r->dir, MAINT_PASS, &options), 0);
    set_small_packs(r);
}

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY), out;
    ssize_t n;
    assert_true(in >= 0);
    out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(out >= 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    assert_int_equal(n, 0);
    close(in);
    close(out);
}

static void copy_tree(const char *from, const char *to)
{
    DIR *d = opendir(from);
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char src[4096], dst[4096];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(src, sizeof(src), "%s/%s", from, e->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", to, e->d_name);
        assert_int_equal(lstat(src, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            assert_int_equal(mkdir(dst, 0700), 0);
            copy_tree(src, dst);
        } else {
            copy_file(src, dst);
        }
    }
    closedir(d);
}

maint_repo *maint_repo_copy(const maint_repo *from, const char *tag)
{
    maint_repo *r = malloc(sizeof(*r));
    assert_non_null(r);
    *r = *from;
    r->handle = NULL;
    r->dir = test_make_temp_dir(tag);
    copy_tree(from->dir, r->dir);
    maint_repo_reopen(r);
    return r;
}

/* Adds one file's chunks to the session; ids receives them. */
static void store_file(nova_repo_session *session, unsigned f, nova_id **ids, uint64_t *count)
{
    static uint8_t data[MAX_FILE_SIZE];
    size_t size = file_size(f), pos = 0;
    unsigned j = 0;

    file_content(f, data);
    *ids = calloc(size / 1024 + 2, sizeof(nova_id));
    assert_non_null(*ids);
    *count = 0;
    while (pos < size) {
        size_t n = chunk_len(f, j++, pos);
        assert_int_equal(nova_repo_session_add(session, NOVA_BLOB_DATA, data + pos, n,
                                               &(*ids)[(*count)++]),
                         0);
        pos += n;
    }
}

static void add_file_entry(nova_tree_builder *b, nova_repo_session *session, unsigned f)
{
    char name[32];
    nova_tree_entry e;
    nova_id *ids = NULL;

    file_name(name, f);
    nova_tree_entry_init(&e);
    e.name = name;
    e.name_len = strlen(name);
    e.type = NOVA_TREE_FILE;
    e.mode = 0644;
    e.size = file_size(f);
    e.mtime_ns = e.atime_ns = e.ctime_ns = (int64_t)f * 1000000000LL;
    e.inode = 100 + f;
    e.nlink = 1;
    store_file(session, f, &ids, &e.chunk_count);
    e.chunks = ids;
    assert_int_equal(nova_tree_builder_add(b, &e), 0);
    free(ids);
}

static void store_tree(nova_tree_builder *b, nova_repo_session *session, nova_id *id)
{
    nova_buf encoded = NOVA_BUF_INIT;
    assert_int_equal(nova_tree_builder_encode(b, &encoded), 0);
    assert_int_equal(nova_repo_session_add(session, NOVA_BLOB_TREE, encoded.data, encoded.len, id),
                     0);
    nova_buf_free(&encoded);
    nova_tree_builder_reset(b);
}

size_t maint_repo_add_snapshot(maint_repo *r, unsigned first, unsigned count)
{
    nova_repo *repo = r->handle->repo;
    nova_chunk_index *known = NULL;
    nova_repo_session *session = NULL;
    nova_tree_builder *b = NULL;
    nova_snapshot *snap = NULL;
    nova_tree_entry dir;
    size_t k = r->snapshot_count;
    unsigned half = count / 2;

    assert_true(k < MAINT_MAX_SNAPSHOTS);
    assert_int_equal(nova_repo_load_index(repo, &known), 0);
    assert_int_equal(nova_repo_session_new(&session, repo, known), 0);
    assert_int_equal(nova_tree_builder_new(&b), 0);
    for (unsigned f = first + half; f < first + count; f++)
        add_file_entry(b, session, f);
    store_tree(b, session, &r->trees[k][1]);
    for (unsigned f = first; f < first + half; f++)
        add_file_entry(b, session, f);
    nova_tree_entry_init(&dir);
    dir.name = "sub";
    dir.name_len = 3;
    dir.type = NOVA_TREE_DIR;
    dir.mode = 0755;
    dir.mtime_ns = (int64_t)k * 1000000000LL; /* makes each snapshot's root unique */
    dir.nlink = 2;
    dir.subtree = r->trees[k][1];
    assert_int_equal(nova_tree_builder_add(b, &dir), 0);
    store_tree(b, session, &r->trees[k][0]);
    assert_int_equal(nova_repo_session_commit(session), 0);

    assert_int_equal(nova_snapshot_new(&snap), 0);
    snap->tree = r->trees[k][0];
    snap->start_ns = snap->end_ns = (int64_t)(1700000000 + k) * 1000000000LL;
    assert_int_equal(nova_snapshot_add_path(snap, "/data"), 0);
    assert_int_equal(nova_snapshot_write(repo->storage, &r->snapshots[k], snap, repo->keys.enc,
                                         &repo->config.codec),
                     0);
    nova_snapshot_free(snap);
    nova_tree_builder_free(b);
    nova_repo_session_free(session);
    nova_chunk_index_free(known);
    nova_repository_forget_index(r->handle);
    r->first_file[k] = first;
    r->file_count[k] = count;
    r->snapshot_count++;
    return k;
}

void maint_repo_delete_snapshot(maint_repo *r, size_t k)
{
    char name[NOVA_SNAPSHOT_NAME_SIZE];
    nova_snapshot_name(name, &r->snapshots[k]);
    assert_int_equal(nova_storage_del(r->handle->repo->storage, name), 0);
    r->deleted[k] = 1;
}

char *maint_repo_orphan_pack(maint_repo *r, unsigned blobs, uint64_t seed)
{
    nova_repo *repo = r->handle->repo;
    nova_pack_writer *w = NULL;
    nova_buf pack = NOVA_BUF_INIT;
    uint8_t data[3000];
    char name[NOVA_PACK_NAME_LEN + 1];
    nova_id id;
    char *out;

    assert_int_equal(nova_pack_writer_new(&w, repo->keys.enc, &repo->config.codec), 0);
    for (unsigned i = 0; i < blobs; i++) {
        test_fill_random(data, sizeof(data), seed + i);
        assert_int_equal(nova_repo_chunk_id(repo, &id, data, sizeof(data)), 0);
        assert_int_equal(nova_pack_writer_add(w, NOVA_BLOB_DATA, &id, data, sizeof(data)), 0);
    }
    assert_int_equal(nova_pack_writer_finish(w, &pack, &id), 0);
    nova_pack_storage_name(name, &id);
    assert_int_equal(nova_storage_put(repo->storage, name, pack.data, pack.len), 0);
    nova_buf_free(&pack);
    nova_pack_writer_free(w);
    out = strdup(name);
    assert_non_null(out);
    return out;
}

/* ---- verifying -------------------------------------------------------------------- */

static int parse_file_number(const char *name, unsigned *f)
{
    return sscanf(name, "file-%03u", f) == 1;
}

static int verify_file(nova_repo_reader *reader, const nova_tree_entry *e, unsigned f,
                       nova_buf *chunk)
{
    static uint8_t expected[MAX_FILE_SIZE];
    size_t pos = 0, size = file_size(f);

    file_content(f, expected);
    if (e->size != size)
        return nova_fail(NOVA_ECORRUPT, "file %u: size %llu, want %zu", f,
                         (unsigned long long)e->size, size);
    for (uint64_t c = 0; c < e->chunk_count; c++) {
        NOVA_TRY(nova_repo_reader_read(reader, &e->chunks[c], chunk));
        if (pos + chunk->len > size || memcmp(expected + pos, chunk->data, chunk->len) != 0)
            return nova_fail(NOVA_ECORRUPT, "file %u differs at %zu", f, pos);
        pos += chunk->len;
    }
    return pos == size ? 0 : nova_fail(NOVA_ECORRUPT, "file %u is short", f);
}

/* Verifies one tree's files (and "sub", once); counts the files seen. */
static int verify_tree(nova_repo_reader *reader, const nova_id *id, unsigned first,
                       unsigned count, unsigned *seen, int depth)
{
    nova_buf buf = NOVA_BUF_INIT;
    nova_tree *tree = NULL;
    int rc = nova_repo_reader_read(reader, id, &buf);

    if (rc == 0)
        rc = nova_tree_decode(&tree, buf.data, buf.len, "test tree");
    for (size_t i = 0; rc == 0 && i < tree->count; i++) {
        const nova_tree_entry *e = &tree->entries[i];
        unsigned f;
        if (e->type == NOVA_TREE_DIR && depth == 0)
            rc = verify_tree(reader, &e->subtree, first, count, seen, 1);
        else if (e->type == NOVA_TREE_FILE && parse_file_number(e->name, &f) && f >= first &&
                 f < first + count) {
            rc = verify_file(reader, e, f, &buf);
            (*seen)++;
        } else
            rc = nova_fail(NOVA_ECORRUPT, "unexpected entry %s", e->name);
    }
    nova_tree_free(tree);
    nova_buf_free(&buf);
    return rc;
}

int maint_repo_verify(maint_repo *r, size_t k)
{
    nova_repo *repo = r->handle->repo;
    nova_chunk_index *index = NULL;
    nova_repo_reader *reader = NULL;
    nova_snapshot *snap = NULL;
    unsigned seen = 0;
    int rc = nova_repo_load_index(repo, &index);

    if (rc == 0)
        rc = nova_snapshot_read(&snap, repo->storage, &r->snapshots[k], repo->keys.enc);
    if (rc == 0)
        rc = nova_repo_reader_new(&reader, repo, index);
    if (rc == 0)
        rc = verify_tree(reader, &snap->tree, r->first_file[k], r->file_count[k], &seen, 0);
    if (rc == 0 && seen != r->file_count[k])
        rc = nova_fail(NOVA_ECORRUPT, "snapshot %zu restored %u of %u files", k, seen,
                       r->file_count[k]);
    nova_repo_reader_free(reader);
    nova_snapshot_free(snap);
    nova_chunk_index_free(index);
    return rc;
}

void maint_repo_verify_all(maint_repo *r)
{
    for (size_t k = 0; k < r->snapshot_count; k++) {
        int rc;
        if (r->deleted[k])
            continue;
        rc = maint_repo_verify(r, k);
        if (rc != 0)
            fail_msg("snapshot %zu does not restore: %s", k, nova_error_last()->message);
    }
}

static void each_blob_of(const maint_repo *r, size_t k, maint_blob_cb cb, void *payload)
{
    static uint8_t data[MAX_FILE_SIZE];
    cb(&r->trees[k][0], payload);
    cb(&r->trees[k][1], payload);
    for (unsigned f = r->first_file[k]; f < r->first_file[k] + r->file_count[k]; f++) {
        size_t size = file_size(f), pos = 0;
        unsigned j = 0;
        file_content(f, data);
        while (pos < size) {
            size_t n = chunk_len(f, j++, pos);
            nova_id id;
            assert_int_equal(nova_repo_chunk_id(r->handle->repo, &id, data + pos, n), 0);
            cb(&id, payload);
            pos += n;
        }
    }
}

typedef struct find_ctx {
    const nova_id *want;
    int found;
} find_ctx;

static void find_blob(const nova_id *id, void *payload)
{
    find_ctx *f = payload;
    if (nova_id_equal(id, f->want))
        f->found = 1;
}

int maint_repo_snapshot_uses(const maint_repo *r, size_t k, const nova_id *id)
{
    find_ctx f = {id, 0};
    each_blob_of(r, k, find_blob, &f);
    return f.found;
}

void maint_repo_each_used_blob(const maint_repo *r, maint_blob_cb cb, void *payload)
{
    for (size_t k = 0; k < r->snapshot_count; k++)
        if (!r->deleted[k])
            each_blob_of(r, k, cb, payload);
}

/* ---- objects ---------------------------------------------------------------------- */

typedef struct names {
    char **items;
    size_t count, cap;
} names;

static int collect(const char *name, uint64_t size, void *payload)
{
    names *n = payload;
    (void)size;
    if (n->count == n->cap) {
        n->cap = n->cap ? n->cap * 2 : 16;
        n->items = realloc(n->items, n->cap * sizeof(char *));
        assert_non_null(n->items);
    }
    n->items[n->count] = strdup(name);
    assert_non_null(n->items[n->count]);
    n->count++;
    return 0;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static names list_names(maint_repo *r, const char *prefix)
{
    names n = {NULL, 0, 0};
    assert_int_equal(nova_storage_list(r->handle->repo->storage, prefix, collect, &n), 0);
    if (n.count > 1)
        qsort(n.items, n.count, sizeof(char *), compare_strings);
    return n;
}

static void names_free(names *n)
{
    for (size_t i = 0; i < n->count; i++)
        free(n->items[i]);
    free(n->items);
}

char *maint_repo_listing(maint_repo *r, const char *prefix)
{
    names n = list_names(r, prefix);
    size_t len = 1;
    char *out;
    for (size_t i = 0; i < n.count; i++)
        len += strlen(n.items[i]) + 1;
    out = calloc(len, 1);
    assert_non_null(out);
    for (size_t i = 0; i < n.count; i++) {
        strcat(out, n.items[i]);
        strcat(out, "\n");
    }
    names_free(&n);
    return out;
}

size_t maint_repo_count(maint_repo *r, const char *prefix)
{
    names n = list_names(r, prefix);
    size_t count = n.count;
    names_free(&n);
    return count;
}

char *maint_repo_first(maint_repo *r, const char *prefix)
{
    names n = list_names(r, prefix);
    char *first = n.count ? strdup(n.items[0]) : NULL;
    names_free(&n);
    return first;
}

char *maint_repo_locate(maint_repo *r, const nova_id *id, uint32_t *offset, uint32_t *length)
{
    nova_chunk_index *index = NULL;
    nova_chunk_location loc;
    char name[NOVA_PACK_NAME_LEN + 1];

    assert_int_equal(nova_repo_load_index(r->handle->repo, &index), 0);
    assert_int_equal(nova_chunk_index_lookup(index, id, &loc), 1);
    nova_pack_storage_name(name, nova_chunk_index_pack_id(index, loc.pack));
    if (offset)
        *offset = loc.offset;
    if (length)
        *length = loc.length;
    nova_chunk_index_free(index);
    return strdup(name);
}

void maint_repo_flip(maint_repo *r, const char *name, long offset)
{
    char path[4096];
    struct stat st;
    uint8_t byte;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", r->dir, name);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    if (offset < 0)
        offset += (long)st.st_size;
    assert_true(offset >= 0 && offset < (long)st.st_size);
    assert_int_equal(pread(fd, &byte, 1, offset), 1);
    byte ^= 0x01;
    assert_int_equal(pwrite(fd, &byte, 1, offset), 1);
    close(fd);
}

void maint_repo_remove_locks(maint_repo *r)
{
    names n = list_names(r, "locks/");
    for (size_t i = 0; i < n.count; i++)
        assert_int_equal(nova_storage_del(r->handle->repo->storage, n.items[i]), 0);
    names_free(&n);
}

void maint_repo_inject(maint_repo *r, const nova_fault_plan *plan)
{
    nova_storage *wrapped = NULL;
    assert_int_equal(nova_storage_fault_wrap(&wrapped, r->handle->repo->storage, plan), 0);
    r->handle->repo->storage = wrapped;
}

int maint_long_mode(void)
{
    const char *v = getenv("NOVA_TEST_LONG");
    return v && strcmp(v, "1") == 0;
}
