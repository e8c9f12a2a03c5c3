/*
 * backup_paths.c -- the source paths of a backup and its exclude patterns.
 *
 * A backup records its paths absolute and lexically clean ("/a/b", never "a/./b/" or
 * "/a/../b"), sorted bytewise, without duplicates and without a path that another one
 * already covers; the parent search compares these lists, so the same sources named in
 * another order or spelling find the same parent. Cleaning is lexical, like restic's and
 * Go's filepath.Clean: symlinks in the path are not resolved.
 */
#include "backup/backup_internal.h"

#include "common/err.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Appends component [s, s+len) to out (holding a clean absolute path), handling "." and
 * "..". out has room for the whole input. */
static void push_component(char *out, size_t *out_len, const char *s, size_t len)
{
    if (len == 0 || (len == 1 && s[0] == '.'))
        return;
    if (len == 2 && s[0] == '.' && s[1] == '.') {
        while (*out_len > 1 && out[*out_len - 1] != '/')
            (*out_len)--;
        if (*out_len > 1)
            (*out_len)--; /* the '/' before the removed component */
        out[*out_len] = '\0';
        return;
    }
    if (*out_len > 1)
        out[(*out_len)++] = '/';
    memcpy(out + *out_len, s, len);
    *out_len += len;
    out[*out_len] = '\0';
}

static void clean_into(char *out, const char *path)
{
    size_t out_len = 1;
    out[0] = '/';
    out[1] = '\0';
    while (*path) {
        const char *slash = strchr(path, '/');
        size_t len = slash ? (size_t)(slash - path) : strlen(path);
        push_component(out, &out_len, path, len);
        path += len;
        if (*path == '/')
            path++;
    }
}

int nova_bk_path_clean(char **out, const char *path)
{
    char cwd[PATH_MAX];
    char *joined = NULL, *clean = NULL;
    size_t len;

    *out = NULL;
    if (!path || !path[0])
        return nova_fail(NOVA_EINVALID, "an empty path cannot be backed up");
    if (path[0] != '/') {
        if (!getcwd(cwd, sizeof(cwd)))
            return nova_fail_errno(nova_error_from_errno(errno), errno,
                                   "unable to make '%s' absolute: no working directory", path);
        len = strlen(cwd) + 1 + strlen(path) + 1;
        joined = malloc(len);
        if (!joined)
            return nova_fail(NOVA_ENOMEM, "unable to hold the path '%s'", path);
        snprintf(joined, len, "%s/%s", cwd, path);
        path = joined;
    }
    clean = malloc(strlen(path) + 2);
    if (!clean) {
        free(joined);
        return nova_fail(NOVA_ENOMEM, "unable to hold the path '%s'", path);
    }
    clean_into(clean, path);
    free(joined);
    *out = clean;
    return 0;
}

void nova_bk_paths_free(char **paths, size_t count)
{
    for (size_t i = 0; paths && i < count; i++)
        free(paths[i]);
    free(paths);
}

static int compare_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 1 when one of the sorted paths kept[0..kept) is `path` or an ancestor of it. */
static int covered_by(char *const *kept, size_t kept_count, const char *path)
{
    size_t len = strlen(path);
    char *prefix;
    int found = 0;

    if (kept_count > 0 && strcmp(kept[0], "/") == 0)
        return 1;
    prefix = malloc(len + 1);
    if (!prefix)
        return -1;
    memcpy(prefix, path, len + 1);
    for (size_t end = len; end > 0 && !found; end--) {
        if (end < len && path[end] != '/')
            continue;
        prefix[end] = '\0';
        const char *key = prefix;
        found = bsearch(&key, kept, kept_count, sizeof(*kept), compare_paths) != NULL;
    }
    free(prefix);
    return found;
}

int nova_bk_paths_prepare(char ***out, size_t *out_count, const char *const *paths,
                          size_t count)
{
    char **clean;
    size_t kept = 0;

    *out = NULL;
    *out_count = 0;
    if (count == 0)
        return nova_fail(NOVA_EINVALID, "no path to back up");
    clean = calloc(count, sizeof(*clean));
    if (!clean)
        return nova_fail(NOVA_ENOMEM, "unable to hold %zu paths", count);
    for (size_t i = 0; i < count; i++) {
        int rc = nova_bk_path_clean(&clean[i], paths[i]);
        if (rc < 0) {
            nova_bk_paths_free(clean, count);
            return rc;
        }
    }
    qsort(clean, count, sizeof(*clean), compare_paths);
    /* Sorted bytewise, an ancestor comes before what it covers ("/a" < "/a/b"). */
    for (size_t i = 0; i < count; i++) {
        int covered = covered_by(clean, kept, clean[i]);
        if (covered < 0) {
            for (size_t k = i; k < count; k++)
                free(clean[k]);
            nova_bk_paths_free(clean, kept);
            return nova_fail(NOVA_ENOMEM, "unable to compare paths");
        }
        if (covered)
            free(clean[i]);
        else
            clean[kept++] = clean[i];
    }
    *out = clean;
    *out_count = kept;
    return 0;
}

int nova_bk_excluded(const char *const *patterns, size_t count, const char *path,
                     const char *name)
{
    for (size_t i = 0; i < count; i++) {
        if (fnmatch(patterns[i], path, 0) == 0)
            return 1;
        if (name && fnmatch(patterns[i], name, 0) == 0)
            return 1;
    }
    return 0;
}
