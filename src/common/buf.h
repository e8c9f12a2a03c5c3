/*
 * buf.h -- a growable byte buffer (private).
 *
 * A zero-initialised nova_buf is empty and valid. Growth is geometric so appends are
 * amortised O(1); nova_buf_reset keeps the allocation so hot loops reuse it.
 */
#ifndef NOVA_COMMON_BUF_H
#define NOVA_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct nova_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} nova_buf;

#define NOVA_BUF_INIT {NULL, 0, 0}

/* Ensures room for at least `extra` more bytes; NOVA_ENOMEM on failure. */
int nova_buf_reserve(nova_buf *buf, size_t extra);
int nova_buf_append(nova_buf *buf, const void *data, size_t len);
/* Makes len == n (growing with uninitialised bytes when needed). */
int nova_buf_resize(nova_buf *buf, size_t n);
static inline void nova_buf_reset(nova_buf *buf) { buf->len = 0; }
void nova_buf_free(nova_buf *buf);

#endif
