/*
 * test_support.h -- small helpers shared by the unit tests.
 */
#ifndef NOVA_TEST_SUPPORT_H
#define NOVA_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh empty directory under $NOVA_TEST_TMP (or /tmp) and returns its path
 * (malloc'd). Aborts the test program when that is impossible. */
char *test_make_temp_dir(const char *tag);
/* Removes a directory tree (like rm -rf); ignores errors. */
void test_remove_tree(const char *path);
/* Writes len bytes to path (created or truncated, mode 0644); aborts on failure. */
void test_write_file(const char *path, const void *data, size_t len);
/* Deterministic pseudo-random bytes (splitmix64) from a seed. */
void test_fill_random(void *out, size_t len, uint64_t seed);

#endif
