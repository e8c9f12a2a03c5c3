/* test_backup_paths.c -- source paths of a backup (cleaning, ordering, nesting), exclude
 * patterns, and the set of chunk ids a backup claims. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backup/backup_internal.h"
#include "test_support.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void expect_clean(const char *in, const char *want)
{
    char *out = NULL;
    assert_int_equal(nova_bk_path_clean(&out, in), 0);
    assert_string_equal(out, want);
    free(out);
}

static void test_clean_absolute(void **state)
{
    (void)state;
    expect_clean("/", "/");
    expect_clean("//", "/");
    expect_clean("/a/b", "/a/b");
    expect_clean("/a/b/", "/a/b");
    expect_clean("/a//b///c", "/a/b/c");
    expect_clean("/a/./b/.", "/a/b");
    expect_clean("/a/b/../c", "/a/c");
    expect_clean("/a/../../b", "/b");
    expect_clean("/..", "/");
    expect_clean("/a/..", "/");
    expect_clean("/a/.../b", "/a/.../b"); /* "..." is a name */
    expect_clean("/a/..b/c", "/a/..b/c");
}

static void test_clean_relative(void **state)
{
    char cwd[PATH_MAX], want[PATH_MAX + 16];
    (void)state;
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    snprintf(want, sizeof(want), "%s/x/y", strcmp(cwd, "/") == 0 ? "" : cwd);
    expect_clean("x/y", want);
    expect_clean("./x//y/", want);
    expect_clean(".", cwd);
}

static void test_clean_rejects_empty(void **state)
{
    char *out = (char *)1;
    (void)state;
    assert_int_equal(nova_bk_path_clean(&out, ""), NOVA_EINVALID);
    assert_null(out);
}

static void expect_prepared(const char *const *in, size_t n, const char *joined)
{
    char **out = NULL;
    size_t count = 0;
    char buf[1024] = "";
    assert_int_equal(nova_bk_paths_prepare(&out, &count, in, n), 0);
    for (size_t i = 0; i < count; i++) {
        if (i)
            strcat(buf, ",");
        strcat(buf, out[i]);
    }
    assert_string_equal(buf, joined);
    nova_bk_paths_free(out, count);
}

static void test_prepare_sorts_and_drops_covered(void **state)
{
    static const char *a[] = {"/b", "/a/", "/a/x", "/a-b", "/a/../b/c", "/c//d", "/c/d"};
    static const char *b[] = {"/x/y", "/", "/z"};
    static const char *c[] = {"/a/b/c", "/a/b", "/a/bc"};
    (void)state;
    expect_prepared(a, 7, "/a,/a-b,/b,/c/d");
    expect_prepared(b, 3, "/");
    expect_prepared(c, 3, "/a/b,/a/bc");
}

static void test_prepare_needs_a_path(void **state)
{
    char **out = NULL;
    size_t count = 1;
    (void)state;
    assert_int_equal(nova_bk_paths_prepare(&out, &count, NULL, 0), NOVA_EINVALID);
    assert_null(out);
    assert_int_equal(count, 0);
}

static void test_excludes(void **state)
{
    static const char *const patterns[] = {"*.tmp", "/home/*/cache", "node_modules"};
    (void)state;
    /* on the name */
    assert_true(nova_bk_excluded(patterns, 3, "/a/b/x.tmp", "x.tmp"));
    assert_true(nova_bk_excluded(patterns, 3, "/p/node_modules", "node_modules"));
    assert_false(nova_bk_excluded(patterns, 3, "/p/node_modules2", "node_modules2"));
    assert_false(nova_bk_excluded(patterns, 3, "/a/b/x.tmpl", "x.tmpl"));
    /* on the full path ('*' crosses '/' as well) */
    assert_true(nova_bk_excluded(patterns, 3, "/home/ann/cache", "cache"));
    assert_true(nova_bk_excluded(patterns, 3, "/home/ann/x/cache", "cache"));
    assert_false(nova_bk_excluded(patterns, 3, "/srv/ann/cache", "cache"));
    /* no patterns: nothing excluded */
    assert_false(nova_bk_excluded(NULL, 0, "/a", "a"));
    /* character classes and '?' */
    static const char *const more[] = {"[ab]?.log"};
    assert_true(nova_bk_excluded(more, 1, "/x/a1.log", "a1.log"));
    assert_false(nova_bk_excluded(more, 1, "/x/c1.log", "c1.log"));
}

static void test_claims(void **state)
{
    nova_bk_claims *claims = NULL;
    enum { N = 20000 };
    nova_id *ids = malloc(N * sizeof(*ids));
    uint32_t slot;
    (void)state;

    assert_non_null(ids);
    test_fill_random(ids, N * sizeof(*ids), 7);
    assert_int_equal(nova_bk_claims_new(&claims), 0);
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(nova_bk_claims_claim(claims, &ids[i], &slot), 1);
        assert_int_equal(slot, i);
        nova_bk_claims_at(claims, slot)->stored_length = i + 100;
    }
    assert_int_equal(nova_bk_claims_count(claims), N);
    for (uint32_t i = 0; i < N; i += 7) { /* after many table growths */
        assert_int_equal(nova_bk_claims_claim(claims, &ids[i], &slot), 0);
        assert_int_equal(slot, i);
        assert_int_equal(nova_bk_claims_at(claims, slot)->stored_length, i + 100);
        assert_memory_equal(nova_bk_claims_at(claims, slot)->id.bytes, ids[i].bytes, NOVA_ID_LEN);
    }
    /* ids that share their first 8 bytes (the hash) are still told apart */
    nova_id twin = ids[0];
    twin.bytes[31] ^= 1;
    assert_int_equal(nova_bk_claims_claim(claims, &twin, &slot), 1);
    assert_int_equal(slot, N);
    assert_int_equal(nova_bk_claims_claim(claims, &ids[0], &slot), 0);
    assert_int_equal(slot, 0);
    nova_bk_claims_free(claims);
    nova_bk_claims_free(NULL);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_absolute),
        cmocka_unit_test(test_clean_relative),
        cmocka_unit_test(test_clean_rejects_empty),
        cmocka_unit_test(test_prepare_sorts_and_drops_covered),
        cmocka_unit_test(test_prepare_needs_a_path),
        cmocka_unit_test(test_excludes),
        cmocka_unit_test(test_claims),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
