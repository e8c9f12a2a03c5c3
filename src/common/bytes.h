/*
 * bytes.h -- little-endian encoding and a bounds-checked reader (private).
 *
 * Every on-disk integer in Nova is little-endian. Decoders read through nova_reader:
 * a read past the end sets `failed` and yields zeros, so a decoder checks once at the
 * end (or at any point) instead of after every field, and can never read out of bounds.
 */
#ifndef NOVA_COMMON_BYTES_H
#define NOVA_COMMON_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void nova_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void nova_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void nova_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t nova_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t nova_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t nova_get_le64(const uint8_t *p)
{
    return (uint64_t)nova_get_le32(p) | ((uint64_t)nova_get_le32(p + 4) << 32);
}

typedef struct nova_reader {
    const uint8_t *pos;
    size_t left;
    int failed; /* set once a read ran past the end */
} nova_reader;

static inline nova_reader nova_reader_make(const void *data, size_t len)
{
    nova_reader r = {(const uint8_t *)data, len, 0};
    return r;
}

/* Returns a pointer to the next n bytes and advances, or NULL (and sets failed). */
static inline const uint8_t *nova_read_bytes(nova_reader *r, size_t n)
{
    const uint8_t *p;
    if (r->failed || n > r->left) {
        r->failed = 1;
        return NULL;
    }
    p = r->pos;
    r->pos += n;
    r->left -= n;
    return p;
}

static inline uint8_t nova_read_u8(nova_reader *r)
{
    const uint8_t *p = nova_read_bytes(r, 1);
    return p ? p[0] : 0;
}

static inline uint16_t nova_read_le16(nova_reader *r)
{
    const uint8_t *p = nova_read_bytes(r, 2);
    return p ? nova_get_le16(p) : 0;
}

static inline uint32_t nova_read_le32(nova_reader *r)
{
    const uint8_t *p = nova_read_bytes(r, 4);
    return p ? nova_get_le32(p) : 0;
}

static inline uint64_t nova_read_le64(nova_reader *r)
{
    const uint8_t *p = nova_read_bytes(r, 8);
    return p ? nova_get_le64(p) : 0;
}

static inline int nova_read_copy(nova_reader *r, void *out, size_t n)
{
    const uint8_t *p = nova_read_bytes(r, n);
    if (!p)
        return -1;
    memcpy(out, p, n);
    return 0;
}

#endif
