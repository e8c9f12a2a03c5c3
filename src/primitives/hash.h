/*
 * hash.h -- SHA-256 and HMAC-SHA-256 (OpenSSL), and the 32-byte id type (private).
 *
 * Object names are SHA-256 of their stored bytes; chunk ids are HMAC-SHA-256 of the
 * plaintext under the repository's id key, so ids reveal nothing about content.
 * nova_hmac keeps a prepared OpenSSL context so per-chunk hashing allocates nothing.
 */
#ifndef NOVA_PRIMITIVES_HASH_H
#define NOVA_PRIMITIVES_HASH_H

#include <stddef.h>
#include <stdint.h>

#define NOVA_ID_LEN 32
#define NOVA_ID_HEX_LEN 64

typedef struct nova_id {
    uint8_t bytes[NOVA_ID_LEN];
} nova_id;

int nova_id_equal(const nova_id *a, const nova_id *b);
/* Writes 64 lowercase hex digits and a NUL. */
void nova_id_to_hex(const nova_id *id, char out[NOVA_ID_HEX_LEN + 1]);
/* Parses exactly 64 hex digits (either case); NOVA_EINVALID otherwise. */
int nova_id_from_hex(nova_id *out, const char *hex);

/* Writes 2*len lowercase hex digits and a NUL (out needs 2*len + 1 bytes). */
void nova_hex_encode(char *out, const void *data, size_t len);
/* Decodes exactly hex_len == 2*out_len hex digits (either case); NOVA_EINVALID otherwise. */
int nova_hex_decode(void *out, size_t out_len, const char *hex, size_t hex_len);

/* One-shot SHA-256. */
int nova_sha256(nova_id *out, const void *data, size_t len);

/* Streaming SHA-256 (for packs written piece by piece). */
typedef struct nova_sha256_stream nova_sha256_stream;
int nova_sha256_stream_new(nova_sha256_stream **out);
int nova_sha256_stream_update(nova_sha256_stream *s, const void *data, size_t len);
/* Finishes and resets the stream so it can be reused. */
int nova_sha256_stream_final(nova_sha256_stream *s, nova_id *out);
void nova_sha256_stream_free(nova_sha256_stream *s);

/* HMAC-SHA-256 with a fixed key, reusable across many messages; not thread-safe:
 * use one per thread (nova_hmac_dup makes a cheap copy). */
typedef struct nova_hmac nova_hmac;
int nova_hmac_new(nova_hmac **out, const uint8_t *key, size_t key_len);
int nova_hmac_dup(nova_hmac **out, const nova_hmac *src);
int nova_hmac_compute(nova_hmac *h, nova_id *out, const void *data, size_t len);
void nova_hmac_free(nova_hmac *h);

/* One-shot HMAC-SHA-256. */
int nova_hmac_sha256(nova_id *out, const uint8_t *key, size_t key_len, const void *data,
                     size_t len);

#endif
