/*
 * storage_support.c -- scratch local stores and listing collectors for storage tests.
 */
#include "storage_support.h"

#include "test_support.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

nova_storage *storage_test_open_local(char **dir, const char *tag)
{
    nova_storage *s = NULL;

    *dir = test_make_temp_dir(tag);
    if (nova_storage_local_open(&s, *dir, 0) != 0) {
        fprintf(stderr, "cannot open a local store in %s\n", *dir);
        abort();
    }
    return s;
}

void storage_test_close(nova_storage *s, char *dir)
{
    nova_storage_free(s);
    if (dir)
        test_remove_tree(dir);
    free(dir);
}

int storage_test_put_text(nova_storage *s, const char *name, const char *text)
{
    return nova_storage_put(s, name, text, strlen(text));
}

int storage_test_collect(const char *name, uint64_t size, void *payload)
{
    storage_test_names *names = payload;

    if (names->count == names->cap) {
        size_t cap = names->cap ? names->cap * 2 : 16;
        char **grown_names = realloc(names->names, cap * sizeof(*grown_names));
        if (!grown_names)
            abort();
        names->names = grown_names;
        uint64_t *grown_sizes = realloc(names->sizes, cap * sizeof(*grown_sizes));
        if (!grown_sizes)
            abort();
        names->sizes = grown_sizes;
        names->cap = cap;
    }
    names->names[names->count] = strdup(name);
    if (!names->names[names->count])
        abort();
    names->sizes[names->count] = size;
    names->count++;
    if (names->stop_after && names->count >= names->stop_after)
        return names->stop_code;
    return 0;
}

void storage_test_names_sort(storage_test_names *names)
{
    /* Insertion sort: listings in tests are short. */
    for (size_t i = 1; i < names->count; i++) {
        for (size_t j = i; j > 0 && strcmp(names->names[j - 1], names->names[j]) > 0; j--) {
            char *name = names->names[j];
            uint64_t size = names->sizes[j];
            names->names[j] = names->names[j - 1];
            names->sizes[j] = names->sizes[j - 1];
            names->names[j - 1] = name;
            names->sizes[j - 1] = size;
        }
    }
}

char *storage_test_names_join(storage_test_names *names)
{
    size_t total = 1;
    char *joined;

    storage_test_names_sort(names);
    for (size_t i = 0; i < names->count; i++)
        total += strlen(names->names[i]) + 1;
    joined = calloc(1, total);
    if (!joined)
        abort();
    for (size_t i = 0; i < names->count; i++) {
        if (i)
            strcat(joined, ",");
        strcat(joined, names->names[i]);
    }
    return joined;
}

long storage_test_names_find(const storage_test_names *names, const char *name)
{
    for (size_t i = 0; i < names->count; i++)
        if (strcmp(names->names[i], name) == 0)
            return (long)i;
    return -1;
}

void storage_test_names_free(storage_test_names *names)
{
    for (size_t i = 0; i < names->count; i++)
        free(names->names[i]);
    free(names->names);
    free(names->sizes);
    memset(names, 0, sizeof(*names));
}

static size_t temp_files_seen;

static int count_temp(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    if (strchr(path + ftw->base, '~'))
        temp_files_seen++;
    return 0;
}

size_t storage_test_count_temp_files(const char *dir)
{
    temp_files_seen = 0;
    nftw(dir, count_temp, 16, FTW_PHYS);
    return temp_files_seen;
}
