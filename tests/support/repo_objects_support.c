/*
 * repo_objects_support.c -- hex and storage-listing helpers for the repository object tests.
 */
#include "repo_objects_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t test_hex_decode(uint8_t *out, size_t out_cap, const char *hex)
{
    size_t n = 0;
    int high = -1;

    for (; *hex; hex++) {
        int v;
        if (*hex == ' ' || *hex == '\n')
            continue;
        v = hex_value(*hex);
        if (v < 0)
            abort();
        if (high < 0) {
            high = v;
            continue;
        }
        if (n >= out_cap)
            abort();
        out[n++] = (uint8_t)(high << 4 | v);
        high = -1;
    }
    if (high >= 0)
        abort();
    return n;
}

void test_hex_encode(char *out, const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

struct listing {
    char **names;
    size_t count;
};

static int collect(const char *name, uint64_t size, void *payload)
{
    struct listing *l = payload;
    char **grown = realloc(l->names, (l->count + 1) * sizeof(*grown));
    (void)size;
    if (!grown)
        abort();
    l->names = grown;
    l->names[l->count] = strdup(name);
    if (!l->names[l->count])
        abort();
    l->count++;
    return 0;
}

static int compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *test_storage_listing(nova_storage *storage, const char *prefix)
{
    struct listing l = {NULL, 0};
    size_t total = 1;
    char *out;

    if (nova_storage_list(storage, prefix, collect, &l) < 0)
        abort();
    if (l.count)
        qsort(l.names, l.count, sizeof(*l.names), compare);
    for (size_t i = 0; i < l.count; i++)
        total += strlen(l.names[i]) + 1;
    out = malloc(total);
    if (!out)
        abort();
    out[0] = '\0';
    for (size_t i = 0; i < l.count; i++) {
        if (i)
            strcat(out, "\n");
        strcat(out, l.names[i]);
        free(l.names[i]);
    }
    free(l.names);
    return out;
}

size_t test_listing_count(const char *listing)
{
    size_t n;
    if (!listing[0])
        return 0;
    n = 1;
    for (; *listing; listing++)
        n += *listing == '\n';
    return n;
}
