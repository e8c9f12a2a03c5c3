/*
 * test_support.c -- temp directories and deterministic data for the unit tests.
 */
#include "test_support.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *test_make_temp_dir(const char *tag)
{
    const char *base = getenv("NOVA_TEST_TMP");
    char *path = malloc(4096);

    if (!path)
        abort();
    if (!base || !base[0])
        base = "/tmp";
    if (mkdir(base, 0700) != 0 && errno != EEXIST) {
        perror(base);
        abort();
    }
    snprintf(path, 4096, "%s/%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        perror(path);
        abort();
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void test_remove_tree(const char *path)
{
    if (path)
        nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS);
}

void test_fill_random(void *out, size_t len, uint64_t seed)
{
    uint8_t *p = out;
    uint64_t state = seed;
    while (len > 0) {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        size_t n = len < 8 ? len : 8;
        memcpy(p, &z, n);
        p += n;
        len -= n;
    }
}

void test_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const uint8_t *p = data;
    if (fd < 0) {
        perror(path);
        abort();
    }
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0) {
            perror(path);
            abort();
        }
        p += n;
        len -= (size_t)n;
    }
    close(fd);
}
