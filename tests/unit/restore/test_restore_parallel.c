/*
 * test_restore_parallel.c -- parallel restore gives identical bytes: thousands of small
 * files (with duplicates, which share chunks) in nested directories plus one large file
 * of tens of MiB spread over several packs, restored with 4 workers, with 1 worker, and
 * with descriptor budgets so small that directory descriptors are evicted and reopened
 * and files are closed and reopened between chunks, and with large files written through
 * the O_DIRECT staging path (the threshold lowered so mid-sized files take it too).
 *
 * With NOVA_RESTORE_BENCH_SRC and NOVA_RESTORE_BENCH_REPO set it also writes a repository
 * for timing `nova restore` by hand (make_bench_repository).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "nova/backup.h"
#include "restore/restore_internal.h"
#include "restore_support.h"
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DIRS 30
#define FILES_PER_DIR 100
#define LARGE_SIZE (40u * 1024u * 1024u)

typedef struct fixture {
    char *base;
    char src[4096];
    char *location;
    nova_repository *repo;
    nova_id id;
    char hex[NOVA_ID_HEX_LEN + 1];
} fixture;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void build_source(const char *src)
{
    uint8_t *buf = malloc(LARGE_SIZE);
    char path[4200];

    assert_non_null(buf);
    for (int d = 0; d < DIRS; d++) {
        snprintf(path, sizeof(path), d % 3 ? "%s/d%02d" : "%s/n%02d", src, d);
        assert_int_equal(mkdir(path, 0755), 0);
        if (d % 3 == 0) {
            snprintf(path, sizeof(path), "%s/n%02d/deeper", src, d);
            assert_int_equal(mkdir(path, 0700), 0);
        }
        for (int i = 0; i < FILES_PER_DIR; i++) {
            size_t len = (size_t)((d * 7919 + i * 104729) % 2000);
            /* every 10th file repeats another's content: shared chunks */
            uint64_t seed = i % 10 == 0 ? 7 : (uint64_t)(d * 1000 + i);
            snprintf(path, sizeof(path), d % 3 ? "%s/d%02d/f%03d.json" : "%s/n%02d/deeper/f%03d.json",
                     src, d, i);
            test_fill_random(buf, i % 10 == 0 ? 500 : len, seed);
            test_write_file(path, buf, i % 10 == 0 ? 500 : len);
        }
    }
    /* mid-sized files: one to several chunks, none aligned to blocks */
    for (int i = 0; i < 12; i++) {
        size_t len = 100000 + (size_t)i * 400009;
        snprintf(path, sizeof(path), "%s/mid%02d.bin", src, i);
        test_fill_random(buf, len, (uint64_t)i + 777);
        test_write_file(path, buf, len);
    }
    test_fill_random(buf, LARGE_SIZE, 4242);
    snprintf(path, sizeof(path), "%s/large.tar", src);
    test_write_file(path, buf, LARGE_SIZE);
    free(buf);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->base = test_make_temp_dir("restore-par");
    snprintf(f->src, sizeof(f->src), "%s/src", f->base);
    assert_int_equal(mkdir(f->src, 0755), 0);
    build_source(f->src);
    f->repo = restore_test_repo("restore-par-repo", 4, &f->location);
    assert_int_equal(restore_test_backup(f->repo, f->src, 0, NOVA_SNAPSHOT_COMPLETED, &f->id), 0);
    nova_id_to_hex(&f->id, f->hex);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nova_repository_close(f->repo);
    test_remove_tree(f->base);
    test_remove_tree(f->location);
    free(f->base);
    free(f->location);
    free(f);
    return 0;
}

static void restore_and_compare(fixture *f, const char *tag, unsigned threads)
{
    nova_restore_options o = NOVA_RESTORE_OPTIONS_INIT;
    nova_restore_result r;
    char dst[4200], copy[8400];
    unsigned saved = f->repo->threads;

    snprintf(dst, sizeof(dst), "%s/%s", f->base, tag);
    o.target = dst;
    f->repo->threads = threads;
    assert_int_equal(nova_restore(f->repo, f->hex, &o, &r), 0);
    f->repo->threads = saved;
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.files_restored, DIRS * FILES_PER_DIR + 12 + 1);
    assert_true(r.bytes_written >= LARGE_SIZE);
    snprintf(copy, sizeof(copy), "%s%s", dst, f->src);
    assert_int_equal(restore_test_compare_trees(f->src, copy), 0);
    test_remove_tree(dst);
}

static void test_parallel_many_small_and_one_large(void **state)
{
    restore_and_compare(*state, "dst4", 4);
}

static void test_single_worker(void **state)
{
    restore_and_compare(*state, "dst1", 1);
}

static void test_tiny_descriptor_budgets(void **state)
{
    nova_restore_set_fd_budgets_for_tests(8, 1);
    restore_and_compare(*state, "dst-tiny", 3);
    nova_restore_set_fd_budgets_for_tests(0, 0);
}

static void test_direct_writes(void **state)
{
    /* every file from 64 KiB on goes through the O_DIRECT staging path */
    nova_restore_set_direct_min_for_tests(64 * 1024);
    restore_and_compare(*state, "dst-direct", 2);
    nova_restore_set_direct_min_for_tests(0);
}

static void test_direct_writes_tiny_budgets(void **state)
{
    /* and with room for only two partial pages in memory: the others go through the page
     * cache, and pages assembled half in memory are completed when their file ends */
    nova_restore_set_direct_min_for_tests(64 * 1024);
    nova_restore_set_fd_budgets_for_tests(8, 1);
    nova_restore_set_edge_limit_for_tests(2);
    restore_and_compare(*state, "dst-direct-tiny", 4);
    nova_restore_set_edge_limit_for_tests(0);
    nova_restore_set_fd_budgets_for_tests(0, 0);
    nova_restore_set_direct_min_for_tests(0);
}

/* Development aid: NOVA_RESTORE_BENCH_SRC=/abs/path NOVA_RESTORE_BENCH_REPO=/new/repo makes
 * a repository (passphrase "bench-not-secret", default KDF) holding one snapshot of the
 * path, written by the test snapshot writer, for timing `nova restore` against it. */
static void make_bench_repository(void)
{
    const char *src = getenv("NOVA_RESTORE_BENCH_SRC");
    const char *location = getenv("NOVA_RESTORE_BENCH_REPO");
    nova_repository *repo = NULL;
    nova_id id;
    double t0;

    if (!src || !location)
        return;
    assert_int_equal(nova_repository_init(&repo, location, "bench-not-secret", NULL), 0);
    t0 = now_seconds();
    assert_int_equal(restore_test_backup(repo, src, 0, NOVA_SNAPSHOT_COMPLETED, &id), 0);
    printf("bench: %s backed up into %s in %.2f s (test writer, one thread)\n", src, location,
           now_seconds() - t0);
    nova_repository_close(repo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_many_small_and_one_large),
        cmocka_unit_test(test_single_worker),
        cmocka_unit_test(test_tiny_descriptor_budgets),
        cmocka_unit_test(test_direct_writes),
        cmocka_unit_test(test_direct_writes_tiny_budgets),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    make_bench_repository();
    return failed;
}
