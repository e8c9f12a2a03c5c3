/*
 * storage_support.h -- helpers for tests that talk to a storage backend.
 *
 * A scratch local store in a fresh temporary directory, and a collector that gathers the
 * names a listing delivers so a test can compare them with what it expects.
 */
#ifndef NOVA_TEST_STORAGE_SUPPORT_H
#define NOVA_TEST_STORAGE_SUPPORT_H

#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

/* Opens a local store in a new directory under $NOVA_TEST_TMP; *dir gets its path
 * (malloc'd, remove with storage_test_close). Aborts when that is impossible. */
nova_storage *storage_test_open_local(char **dir, const char *tag);
/* Frees the storage, removes the directory tree and frees the path; NULL-safe. */
void storage_test_close(nova_storage *s, char *dir);

/* Stores `text` (without its NUL) as `name`; returns the put's result. */
int storage_test_put_text(nova_storage *s, const char *name, const char *text);

typedef struct storage_test_names {
    char **names;
    uint64_t *sizes;
    size_t count;
    size_t cap;
    size_t stop_after; /* 0 = never; else the callback returns stop_code after this many */
    int stop_code;
} storage_test_names;

/* A nova_storage_list_cb that appends to the storage_test_names in payload. */
int storage_test_collect(const char *name, uint64_t size, void *payload);
/* Sorts the collected names (sizes follow), so results compare as one string. */
void storage_test_names_sort(storage_test_names *names);
/* The sorted names joined by ',' (malloc'd), e.g. "a,b/c"; "" when none. */
char *storage_test_names_join(storage_test_names *names);
/* Index of name, or -1. */
long storage_test_names_find(const storage_test_names *names, const char *name);
void storage_test_names_free(storage_test_names *names);

/* Counts files anywhere below dir whose name holds '~' (local.c's temporary files). */
size_t storage_test_count_temp_files(const char *dir);

#endif
