/*
 * buf.c -- growable byte buffer.
 */
#include "common/buf.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

int nova_buf_reserve(nova_buf *buf, size_t extra)
{
    size_t need, cap;
    uint8_t *grown;

    if (extra > SIZE_MAX - buf->len)
        return nova_fail(NOVA_ENOMEM, "buffer of %zu bytes cannot grow by %zu", buf->len, extra);
    need = buf->len + extra;
    if (need <= buf->cap)
        return 0;
    cap = buf->cap ? buf->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    grown = realloc(buf->data, cap);
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "unable to grow a buffer to %zu bytes", cap);
    buf->data = grown;
    buf->cap = cap;
    return 0;
}

int nova_buf_append(nova_buf *buf, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    NOVA_TRY(nova_buf_reserve(buf, len));
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    return 0;
}

int nova_buf_resize(nova_buf *buf, size_t n)
{
    if (n > buf->len)
        NOVA_TRY(nova_buf_reserve(buf, n - buf->len));
    buf->len = n;
    return 0;
}

void nova_buf_free(nova_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}
