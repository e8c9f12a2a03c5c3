/* test_backup_engine.c -- nova_create_backup end to end on the local backend: every kind
 * of entry and its metadata, the tree layout ("/" at the root), many small files, a large
 * file, several paths, the statistics, and the same trees whatever the thread count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backup/catalog.h"
#include "backup_support.h"
#include "repo/tree.h"
#include "test_support.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

typedef struct fixture {
    char *dir;      /* scratch */
    char *src;      /* the source tree */
    char *location; /* the repository */
    nova_repository *repo;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->dir = test_make_temp_dir("backup-engine");
    f->src = bt_join(f->dir, "src");
    bt_mkdirs(f->src);
    f->repo = bt_repo("backup-engine-repo", 2, &f->location);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nova_repository_close(f->repo);
    test_remove_tree(f->dir);
    char *parent = strdup(f->location);
    *strrchr(parent, '/') = '\0';
    test_remove_tree(parent);
    free(parent);
    free(f->dir);
    free(f->src);
    free(f->location);
    free(f);
    return 0;
}

static char *path_in(const fixture *f, const char *rel)
{
    return bt_join(f->src, rel);
}

static void write_rel(const fixture *f, const char *rel, const void *data, size_t len)
{
    char *p = path_in(f, rel);
    test_write_file(p, data, len);
    free(p);
}

static void mkdir_rel(const fixture *f, const char *rel)
{
    char *p = path_in(f, rel);
    bt_mkdirs(p);
    free(p);
}

/* Directory atimes in the future: listing them never changes them (relatime), so two
 * backups of unchanged data produce identical trees. */
static void freeze_dir_atimes(const char *dir)
{
    struct timespec times[2];
    times[0].tv_sec = time(NULL) + 86400;
    times[0].tv_nsec = 0;
    times[1].tv_nsec = UTIME_OMIT;
    utimensat(AT_FDCWD, dir, times, AT_SYMLINK_NOFOLLOW);
}

static uint64_t sum_stored(nova_repository *repo, const char *backup_id);

static void make_mixed_tree(const fixture *f)
{
    uint8_t *random = malloc(3 * 1024 * 1024);
    struct timespec times[2];
    char *p;

    write_rel(f, "hello.txt", "hello, world\n", 13);
    write_rel(f, "empty", "", 0);
    mkdir_rel(f, "empty-dir");
    mkdir_rel(f, "a/b/c");
    write_rel(f, "a/b/c/deep.json", "{\"deep\": true}\n", 15);
    test_fill_random(random, 3 * 1024 * 1024, 11);
    write_rel(f, "a/random.bin", random, 3 * 1024 * 1024); /* read in windows */
    free(random);
    p = path_in(f, "a/hello-link");
    assert_int_equal(symlink("../hello.txt", p), 0);
    free(p);
    p = path_in(f, "dangling");
    assert_int_equal(symlink("/nonexistent/target", p), 0);
    free(p);
    /* a hard link pair */
    write_rel(f, "linked-1", "two names, one file\n", 20);
    {
        char *a = path_in(f, "linked-1"), *b = path_in(f, "a/linked-2");
        assert_int_equal(link(a, b), 0);
        free(a);
        free(b);
    }
    /* a sparse file: 8 MiB with a few bytes at both ends */
    p = path_in(f, "sparse");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "start", 5, 0), 5);
    assert_int_equal(pwrite(fd, "end", 3, 8 * 1024 * 1024 - 3), 3);
    close(fd);
    free(p);
    /* a FIFO, a file with an attribute, odd modes and a precise mtime */
    p = path_in(f, "fifo");
    assert_int_equal(mkfifo(p, 0640), 0);
    free(p);
    write_rel(f, "tagged", "with an attribute\n", 18);
    p = path_in(f, "tagged");
    if (setxattr(p, "user.comment", "memory layer", 12, 0) != 0)
        fprintf(stderr, "note: no user xattrs on this file system\n");
    assert_int_equal(chmod(p, 0600), 0);
    times[0].tv_sec = 1700000000;
    times[0].tv_nsec = 123456789;
    times[1] = times[0];
    assert_int_equal(utimensat(AT_FDCWD, p, times, 0), 0);
    free(p);
    p = path_in(f, "a/b");
    assert_int_equal(chmod(p, 0750), 0);
    free(p);
}

static void test_full_backup_of_every_kind(void **state)
{
    fixture *f = *state;
    const char *paths[1] = {f->src};
    nova_backup_info *info = NULL;
    bt_errors errors = {0};

    make_mixed_tree(f);
    assert_int_equal(bt_backup(f->repo, NOVA_STRATEGY_FULL, paths, 1, &info, &errors), 0);
    assert_int_equal(errors.count, 0);
    assert_int_equal(info->status, NOVA_BACKUP_COMPLETED);
    assert_int_equal(info->strategy, NOVA_STRATEGY_FULL);
    assert_string_equal(info->parent_backup_id, "");
    assert_int_equal(strlen(info->backup_id), 64);
    /* regular files: hello, empty, deep.json, random.bin, linked-1, linked-2, sparse, tagged */
    assert_int_equal(info->files_new, 8);
    assert_int_equal(info->files_changed + info->files_unchanged, 0);
    uint64_t total = 13 + 0 + 15 + 3 * 1024 * 1024 + 20 + 20 + 8 * 1024 * 1024 + 18;
    assert_int_equal(info->original_size, total);
    assert_int_equal(info->bytes_read, total);
    assert_true(info->compressed_size > 3 * 1024 * 1024); /* random data does not shrink */
    assert_true(info->compressed_size < total);           /* the sparse zeros do */
    assert_int_equal(info->compressed_size, sum_stored(f->repo, info->backup_id));
    assert_true(info->bytes_added > info->compressed_size / 2);
    assert_int_equal(info->path_count, 1);
    assert_string_equal(info->paths[0], f->src);
    assert_string_equal(info->host, "test-host");
    assert_true(info->finished_ns >= info->started_ns);
    assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    assert_int_equal(bt_check_repository(f->location), 0);
    assert_int_equal(bt_count(f->location, "locks/"), 0);
    nova_backup_info_free(info);
    bt_errors_clear(&errors);
}

/* Sums the stored size (minus the tag) of every chunk occurrence in a backup's files:
 * the documented definition of compressed_size. */
static uint64_t sum_tree(nova_repository *repo, nova_repo_reader *reader, const nova_id *id)
{
    nova_buf blob = NOVA_BUF_INIT;
    nova_tree *tree = NULL;
    nova_chunk_index *index;
    uint64_t sum = 0;

    assert_int_equal(nova_repository_chunk_index(repo, &index), 0);
    assert_int_equal(nova_repo_reader_read(reader, id, &blob), 0);
    assert_int_equal(nova_tree_decode(&tree, blob.data, blob.len, "tree"), 0);
    nova_buf_free(&blob);
    for (size_t i = 0; i < tree->count; i++) {
        const nova_tree_entry *e = &tree->entries[i];
        if (e->type == NOVA_TREE_DIR)
            sum += sum_tree(repo, reader, &e->subtree);
        for (uint64_t k = 0; k < e->chunk_count; k++) {
            nova_chunk_location loc;
            assert_int_equal(nova_chunk_index_lookup(index, &e->chunks[k], &loc), 1);
            sum += loc.length - NOVA_TAG_LEN;
        }
    }
    nova_tree_free(tree);
    return sum;
}

static uint64_t sum_stored(nova_repository *repo, const char *backup_id)
{
    nova_backup_info *info = NULL;
    nova_repo_reader *reader = NULL;
    nova_chunk_index *index;
    uint64_t sum;

    assert_int_equal(nova_get_backup(repo, backup_id, &info), 0);
    assert_int_equal(nova_repository_chunk_index(repo, &index), 0);
    assert_int_equal(nova_repo_reader_new(&reader, repo->repo, index), 0);
    sum = sum_tree(repo, reader, &nova_backup_info_snapshot(info)->tree);
    nova_repo_reader_free(reader);
    nova_backup_info_free(info);
    return sum;
}

static void test_tree_root_is_slash(void **state)
{
    fixture *f = *state;
    const char *paths[1] = {f->src};
    nova_backup_info *info = NULL;
    nova_id root, src_tree;

    write_rel(f, "x", "x", 1);
    assert_int_equal(bt_backup(f->repo, NOVA_STRATEGY_FULL, paths, 1, &info, NULL), 0);
    /* the root tree is "/": the source is reached through its path components, whose
     * directories carry their real metadata */
    assert_int_equal(bt_tree_of(f->repo, info->backup_id, "/", &root), 0);
    assert_int_equal(bt_tree_of(f->repo, info->backup_id, f->src, &src_tree), 0);
    assert_false(nova_id_equal(&root, &src_tree));
    assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    /* a sibling of the source was not backed up */
    char *sibling = bt_join(f->dir, "not-backed-up");
    bt_write_text(sibling, "no");
    assert_int_not_equal(bt_verify(f->repo, info->backup_id, sibling, NULL), 0);
    free(sibling);
    nova_backup_info_free(info);
}

static void test_several_paths_and_single_files(void **state)
{
    fixture *f = *state;
    char *one = path_in(f, "one"), *two = path_in(f, "two"), *file = path_in(f, "file.txt");
    char *messy = malloc(strlen(two) + 8);
    const char *paths[4];
    nova_backup_info *info = NULL;

    bt_mkdirs(one);
    bt_mkdirs(two);
    bt_write_text(file, "a single file");
    write_rel(f, "one/a", "a", 1);
    write_rel(f, "two/b", "b", 1);
    sprintf(messy, "%s/./", two);
    paths[0] = messy;
    paths[1] = file;
    paths[2] = one;
    paths[3] = one; /* a duplicate */
    assert_int_equal(bt_backup(f->repo, NOVA_STRATEGY_FULL, paths, 4, &info, NULL), 0);
    assert_int_equal(info->path_count, 3);
    /* clean and sorted */
    assert_string_equal(info->paths[0], file);
    assert_string_equal(info->paths[1], one);
    assert_string_equal(info->paths[2], two);
    assert_int_equal(info->files_new, 3);
    assert_int_equal(bt_verify(f->repo, info->backup_id, one, NULL), 0);
    assert_int_equal(bt_verify(f->repo, info->backup_id, two, NULL), 0);
    assert_int_equal(bt_verify(f->repo, info->backup_id, file, NULL), 0);
    nova_backup_info_free(info);
    free(one);
    free(two);
    free(file);
    free(messy);
}

static void test_many_small_files(void **state)
{
    fixture *f = *state;
    const char *paths[1] = {f->src};
    nova_backup_info *info = NULL;
    char rel[64], text[1024];
    uint64_t total = 0;
    enum { DIRS = 40, FILES = 60 };

    for (int d = 0; d < DIRS; d++) {
        snprintf(rel, sizeof(rel), "pkg%02d/lib", d);
        mkdir_rel(f, rel);
        for (int i = 0; i < FILES; i++) {
            int len = snprintf(text, sizeof(text),
                               "{\"package\": %d, \"file\": %d, \"body\": \"%0*d\"}\n", d, i,
                               200 + (i * 37) % 300, i);
            snprintf(rel, sizeof(rel), "pkg%02d/lib/f%03d.json", d, i);
            write_rel(f, rel, text, (size_t)len);
            total += (uint64_t)len;
        }
        /* some identical files: deduplicated, but counted in both sizes */
        snprintf(rel, sizeof(rel), "pkg%02d/LICENSE", d);
        write_rel(f, rel, "MIT License, the same text everywhere\n", 38);
        total += 38;
    }
    assert_int_equal(bt_backup(f->repo, NOVA_STRATEGY_FULL, paths, 1, &info, NULL), 0);
    assert_int_equal(info->status, NOVA_BACKUP_COMPLETED);
    assert_int_equal(info->files_new, DIRS * (FILES + 1));
    assert_int_equal(info->original_size, total);
    assert_int_equal(info->compressed_size, sum_stored(f->repo, info->backup_id));
    assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    assert_int_equal(bt_check_repository(f->location), 0);
    nova_backup_info_free(info);
}

static void test_large_file(void **state)
{
    fixture *f = *state;
    const size_t size = 64u * 1024 * 1024;
    uint8_t *data = malloc(size);
    const char *paths[1];
    char *p = path_in(f, "large.bin");
    nova_backup_info *info = NULL;

    /* random blocks mixed with repeated text, so some of it compresses */
    test_fill_random(data, size, 99);
    for (size_t at = 0; at + 65536 <= size; at += 3 * 65536)
        memset(data + at, 'n' + (int)(at % 7), 65536);
    test_write_file(p, data, size);
    paths[0] = p;
    assert_int_equal(bt_backup(f->repo, NOVA_STRATEGY_FULL, paths, 1, &info, NULL), 0);
    assert_int_equal(info->files_new, 1);
    assert_int_equal(info->bytes_read, size);
    assert_int_equal(info->original_size, size);
    assert_true(info->compressed_size < size);
    assert_int_equal(bt_verify(f->repo, info->backup_id, p, NULL), 0);
    /* the same content again in another file adds (almost) nothing */
    char *copy = path_in(f, "copy.bin");
    test_write_file(copy, data, size);
    uint64_t first_added = info->bytes_added;
    nova_backup_info_free(info);
    paths[0] = copy;
    assert_int_equal(bt_backup(f->repo, NOVA_STRATEGY_FULL, paths, 1, &info, NULL), 0);
    assert_true(info->bytes_added < first_added / 100);
    assert_int_equal(bt_verify(f->repo, info->backup_id, copy, NULL), 0);
    nova_backup_info_free(info);
    free(copy);
    free(p);
    free(data);
}

static void make_tree_for_threads(const fixture *f)
{
    uint8_t *big = malloc(5 * 1024 * 1024);
    char rel[64];
    test_fill_random(big, 5 * 1024 * 1024, 5);
    for (int d = 0; d < 6; d++) {
        snprintf(rel, sizeof(rel), "d%d", d);
        mkdir_rel(f, rel);
        for (int i = 0; i < 50; i++) {
            snprintf(rel, sizeof(rel), "d%d/f%d", d, i);
            write_rel(f, rel, big + d * 1000 + i, 100 + (size_t)i * 97);
        }
        snprintf(rel, sizeof(rel), "d%d/big", d);
        write_rel(f, rel, big, 1024 * 1024 + (size_t)d * 700000);
    }
    free(big);
}

static void freeze_tree_atimes(const fixture *f)
{
    char rel[4096];
    freeze_dir_atimes(f->src);
    for (int d = 0; d < 6; d++) {
        snprintf(rel, sizeof(rel), "%s/d%d", f->src, d);
        freeze_dir_atimes(rel);
    }
}

static void test_same_tree_whatever_the_threads(void **state)
{
    fixture *f = *state;
    const char *paths[1] = {f->src};
    nova_backup_info *info = NULL;
    nova_id one, four, again;

    make_tree_for_threads(f);
    freeze_tree_atimes(f);
    nova_repository_close(f->repo);
    f->repo = bt_open(f->location, 1);
    assert_int_equal(bt_backup(f->repo, NOVA_STRATEGY_FULL, paths, 1, &info, NULL), 0);
    assert_int_equal(bt_tree_of(f->repo, info->backup_id, f->src, &one), 0);
    nova_backup_info_free(info);

    nova_repository_close(f->repo);
    f->repo = bt_open(f->location, 4);
    assert_int_equal(bt_backup(f->repo, NOVA_STRATEGY_FULL, paths, 1, &info, NULL), 0);
    assert_int_equal(info->files_new, 6 * 51);
    assert_int_equal(bt_tree_of(f->repo, info->backup_id, f->src, &four), 0);
    assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    nova_backup_info_free(info);
    if (!nova_id_equal(&one, &four))
        bt_diff_trees(f->repo, &one, &four);
    assert_true(nova_id_equal(&one, &four));

    /* and an incremental backup (nothing read) builds the same trees too */
    assert_int_equal(bt_backup(f->repo, NOVA_STRATEGY_INCREMENTAL, paths, 1, &info, NULL), 0);
    assert_int_equal(info->bytes_read, 0);
    assert_int_equal(bt_tree_of(f->repo, info->backup_id, f->src, &again), 0);
    if (!nova_id_equal(&one, &again))
        bt_diff_trees(f->repo, &one, &again);
    assert_true(nova_id_equal(&one, &again));
    nova_backup_info_free(info);
}

static void test_exclude_patterns(void **state)
{
    fixture *f = *state;
    nova_backup_options o = NOVA_BACKUP_OPTIONS_INIT;
    static const char *excludes[] = {"*.tmp", "cache"};
    nova_backup_info *info = NULL;

    write_rel(f, "keep.txt", "keep", 4);
    write_rel(f, "drop.tmp", "drop", 4);
    mkdir_rel(f, "cache/deep");
    write_rel(f, "cache/deep/x", "x", 1);
    mkdir_rel(f, "sub");
    write_rel(f, "sub/also.tmp", "drop", 4);
    write_rel(f, "sub/kept", "kept", 4);
    o.strategy = NOVA_STRATEGY_FULL;
    o.excludes = excludes;
    o.exclude_count = 2;
    assert_int_equal(bt_backup_with(f->repo, &o, f->src, &info, NULL), 0);
    assert_int_equal(info->files_new, 2);
    {
        static const char *const in[] = {"keep.txt", "sub/kept", "sub"};
        static const char *const out[] = {"drop.tmp", "sub/also.tmp", "cache", "cache/deep/x"};
        for (size_t i = 0; i < 3; i++) {
            char *p = path_in(f, in[i]);
            assert_int_equal(bt_verify(f->repo, info->backup_id, p, i == 2 ? "*.tmp" : NULL), 0);
            free(p);
        }
        for (size_t i = 0; i < 4; i++) {
            char *p = path_in(f, out[i]);
            assert_int_equal(bt_verify(f->repo, info->backup_id, p, NULL), -1);
            free(p);
        }
    }
    nova_backup_info_free(info);

    /* a full-path pattern */
    static const char *by_path[1];
    char *pattern = bt_join(f->src, "sub/*");
    by_path[0] = pattern;
    o.excludes = by_path;
    o.exclude_count = 1;
    assert_int_equal(bt_backup_with(f->repo, &o, f->src, &info, NULL), 0);
    assert_int_equal(info->files_new, 3); /* keep.txt, drop.tmp, cache/deep/x */
    assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, pattern), 0);
    nova_backup_info_free(info);
    free(pattern);
}

static void test_empty_directory(void **state)
{
    fixture *f = *state;
    const char *paths[1] = {f->src};
    nova_backup_info *info = NULL;

    assert_int_equal(bt_backup(f->repo, NOVA_STRATEGY_FULL, paths, 1, &info, NULL), 0);
    assert_int_equal(info->files_new, 0);
    assert_int_equal(info->original_size, 0);
    assert_int_equal(info->compressed_size, 0);
    assert_int_equal(bt_verify(f->repo, info->backup_id, f->src, NULL), 0);
    nova_backup_info_free(info);
}

static int count_progress(const nova_progress *p, void *payload)
{
    nova_progress *last = payload;
    assert_int_equal(p->phase, NOVA_PHASE_BACKUP);
    assert_true(p->files_done <= p->files_total || p->files_total == 0);
    *last = *p;
    last->current_path = NULL;
    last->phase = (nova_phase)((int)last->phase + 100); /* marks "called" */
    return 0;
}

static void test_progress_reports_totals(void **state)
{
    fixture *f = *state;
    nova_backup_options o = NOVA_BACKUP_OPTIONS_INIT;
    nova_progress last;
    nova_backup_info *info = NULL;

    memset(&last, 0, sizeof(last));
    write_rel(f, "a", "aaaa", 4);
    write_rel(f, "b", "bbbbbb", 6);
    o.strategy = NOVA_STRATEGY_FULL;
    o.progress = count_progress;
    o.payload = &last;
    assert_int_equal(bt_backup_with(f->repo, &o, f->src, &info, NULL), 0);
    assert_true((int)last.phase >= 100);
    assert_int_equal(last.files_done, 2);
    assert_int_equal(last.files_total, 2);
    assert_int_equal(last.bytes_done, 10);
    assert_int_equal(last.bytes_total, 10);
    nova_backup_info_free(info);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_backup_of_every_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_root_is_slash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_paths_and_single_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_small_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_tree_whatever_the_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exclude_patterns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_reports_totals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
