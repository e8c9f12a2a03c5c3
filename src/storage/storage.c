/*
 * storage.c -- name rules and the dispatchers in front of every storage backend.
 *
 * Invariants: no backend ever sees a name that nova_storage_name_check rejected, or a list
 * prefix that nova_storage_prefix_check rejected; a valid name is a relative path made of
 * non-empty components other than "." and "..", so it can never escape a backend's root.
 * get's `out` is reset here, so backends only ever append.
 */
#include "storage/storage.h"

#include "common/err.h"

#include <string.h>

int nova_storage_name_char_ok(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-' || c == '/';
}

/* Checks the component text[0..len): non-empty, not "." or "..". */
static int component_ok(const char *text, size_t len)
{
    if (len == 0)
        return 0;
    if (len == 1 && text[0] == '.')
        return 0;
    if (len == 2 && text[0] == '.' && text[1] == '.')
        return 0;
    return 1;
}

/*
 * Walks `text` once. Every component that is followed by '/' must be a proper one; the
 * final component must be proper too when `final_must_be_whole`, and is free text otherwise.
 * Returns a short reason, or NULL when the text is acceptable.
 */
static const char *path_problem(const char *text, int final_must_be_whole)
{
    size_t start = 0, i = 0;

    if (text[0] == '/')
        return "starts with '/'";
    for (; text[i] != '\0'; i++) {
        unsigned char c = (unsigned char)text[i];
        if (i >= NOVA_STORAGE_NAME_MAX)
            return "is too long";
        if (!nova_storage_name_char_ok(c))
            return "holds a character outside [A-Za-z0-9._-/]";
        if (c == '/') {
            if (!component_ok(text + start, i - start))
                return "holds an empty, '.' or '..' component";
            start = i + 1;
        }
    }
    if (final_must_be_whole && !component_ok(text + start, i - start))
        return i == 0 ? "is empty" : "holds an empty, '.' or '..' component";
    return NULL;
}

/* Copies at most a short, printable part of untrusted text for an error message. */
static void printable_excerpt(char *dst, size_t dst_size, const char *src)
{
    size_t i = 0;
    for (; src[i] != '\0' && i + 4 < dst_size; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
    if (src[i] != '\0' && i + 4 <= dst_size) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
}

int nova_storage_name_check(const char *name)
{
    const char *problem;
    char shown[72];

    if (!name)
        return nova_fail(NOVA_EINVALID, "object name is missing");
    problem = path_problem(name, 1);
    if (!problem)
        return 0;
    printable_excerpt(shown, sizeof(shown), name);
    return nova_fail(NOVA_EINVALID, "object name '%s' %s", shown, problem);
}

int nova_storage_prefix_check(const char *prefix)
{
    const char *problem;
    char shown[72];

    if (!prefix)
        return nova_fail(NOVA_EINVALID, "list prefix is missing");
    problem = path_problem(prefix, 0);
    if (!problem)
        return 0;
    printable_excerpt(shown, sizeof(shown), prefix);
    return nova_fail(NOVA_EINVALID, "list prefix '%s' %s", shown, problem);
}

static int storage_ok(const nova_storage *s)
{
    if (!s || !s->ops)
        return nova_fail(NOVA_EINVALID, "storage handle is missing");
    return 0;
}

int nova_storage_put(nova_storage *s, const char *name, const void *data, size_t len)
{
    NOVA_TRY(storage_ok(s));
    NOVA_TRY(nova_storage_name_check(name));
    if (!data && len > 0)
        return nova_fail(NOVA_EINVALID, "object '%s': no bytes given for %zu-byte put", name,
                         len);
    return s->ops->put(s, name, data, len);
}

int nova_storage_get(nova_storage *s, const char *name, uint64_t offset, size_t length,
                     nova_buf *out)
{
    NOVA_TRY(storage_ok(s));
    if (!out)
        return nova_fail(NOVA_EINVALID, "object get without an output buffer");
    nova_buf_reset(out);
    NOVA_TRY(nova_storage_name_check(name));
    return s->ops->get(s, name, offset, length, out);
}

int nova_storage_stat(nova_storage *s, const char *name, nova_object_info *out)
{
    NOVA_TRY(storage_ok(s));
    if (!out)
        return nova_fail(NOVA_EINVALID, "object stat without an output");
    NOVA_TRY(nova_storage_name_check(name));
    return s->ops->stat(s, name, out);
}

int nova_storage_list(nova_storage *s, const char *prefix, nova_storage_list_cb cb,
                      void *payload)
{
    NOVA_TRY(storage_ok(s));
    if (!cb)
        return nova_fail(NOVA_EINVALID, "list without a callback");
    if (!prefix)
        prefix = "";
    NOVA_TRY(nova_storage_prefix_check(prefix));
    return s->ops->list(s, prefix, cb, payload);
}

int nova_storage_del(nova_storage *s, const char *name)
{
    NOVA_TRY(storage_ok(s));
    NOVA_TRY(nova_storage_name_check(name));
    return s->ops->del(s, name);
}

void nova_storage_free(nova_storage *s)
{
    if (s && s->ops && s->ops->free)
        s->ops->free(s);
}

int nova_storage_error_transient(int code)
{
    return code == NOVA_EBACKEND || code == NOVA_EIO || code == NOVA_ETIMEOUT;
}

const char *nova_storage_kind(const nova_storage *s)
{
    return (s && s->ops && s->ops->kind) ? s->ops->kind : "unknown";
}

unsigned nova_storage_features(const nova_storage *s)
{
    return (s && s->ops) ? s->ops->features : 0u;
}
