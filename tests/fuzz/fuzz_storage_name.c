/* fuzz_storage_name.c -- nova_storage_name_check and nova_storage_prefix_check on arbitrary
 * bytes (as a NUL-terminated copy): never crash, and every accepted name is one that can
 * never leave a backend's root -- 1..255 bytes of [A-Za-z0-9._-/], no leading or trailing
 * '/', no empty, "." or ".." component. An accepted prefix obeys the same rules except that
 * it may be empty and its last part is free text. A rejection always records
 * NOVA_EINVALID. */
#include "common/err.h"
#include "storage/storage.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int char_allowed(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-' || c == '/';
}

/* Aborts unless text obeys the name rules; the final component may be partial (any
 * allowed text, even empty) when `prefix`. */
static void assert_path_rules(const char *text, int prefix)
{
    size_t len = strlen(text), start = 0;

    if (len > NOVA_STORAGE_NAME_MAX || (!prefix && len == 0) || text[0] == '/')
        abort();
    for (size_t i = 0; i <= len; i++) {
        if (i < len && !char_allowed(text[i]))
            abort();
        if (i < len && text[i] != '/')
            continue;
        if (i == len && prefix)
            break;
        size_t part = i - start;
        if (part == 0 || (part == 1 && text[start] == '.') ||
            (part == 2 && text[start] == '.' && text[start + 1] == '.'))
            abort();
        start = i + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size > 4096)
        size = 4096;
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    if (nova_storage_name_check(text) == 0) {
        assert_path_rules(text, 0);
        /* Every name is also a valid prefix (of itself). */
        if (nova_storage_prefix_check(text) != 0)
            abort();
    } else if (nova_error_last()->code != NOVA_EINVALID) {
        abort();
    }
    if (nova_storage_prefix_check(text) == 0)
        assert_path_rules(text, 1);
    else if (nova_error_last()->code != NOVA_EINVALID)
        abort();
    free(text);
    return 0;
}
