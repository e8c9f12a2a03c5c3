/*
 * codec.h -- self-describing compression: zstd (levels), LZMA, LZ4 and none (private).
 *
 * Encoded form: 1 byte codec id, LE32 raw length, then the codec's payload. When a
 * codec does not make the data smaller the encoder stores it raw (codec id NONE), so
 * the encoded size is never more than raw + NOVA_CODEC_HEADER_LEN.
 * Payloads: NONE the raw bytes; ZSTD one standard zstd frame; LZMA a raw LZMA2 stream
 * (no .xz container) whose dictionary is at most the smallest power of two >= the raw
 * length (and >= 4 KiB); LZ4 one LZ4 block (not the LZ4 frame format).
 * A nova_codec_ctx holds reusable compressor state (one per thread), so the per-chunk
 * path allocates nothing after warm-up.
 */
#ifndef NOVA_PRIMITIVES_CODEC_H
#define NOVA_PRIMITIVES_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define NOVA_CODEC_HEADER_LEN 5
/* Largest raw length a codec frame may declare (decoders refuse more). */
#define NOVA_CODEC_MAX_RAW (64u * 1024u * 1024u)

typedef enum nova_codec_id {
    NOVA_CODEC_NONE = 0,
    NOVA_CODEC_ZSTD = 1,
    NOVA_CODEC_LZMA = 2,
    NOVA_CODEC_LZ4 = 3,
} nova_codec_id;

typedef struct nova_codec_spec {
    nova_codec_id id;
    int level; /* zstd 1..19 (default 3), lzma 0..9 (default 6), lz4 ignored */
} nova_codec_spec;

#define NOVA_CODEC_SPEC_DEFAULT {NOVA_CODEC_ZSTD, 3}

/* Parses "none", "zstd", "zstd:7", "lzma", "lzma:9", "lz4". */
int nova_codec_spec_parse(nova_codec_spec *out, const char *text);
/* Writes the canonical text form ("zstd:3"). */
void nova_codec_spec_format(const nova_codec_spec *spec, char *out, size_t out_size);
const char *nova_codec_name(nova_codec_id id);

typedef struct nova_codec_ctx nova_codec_ctx;
int nova_codec_ctx_new(nova_codec_ctx **out);
void nova_codec_ctx_free(nova_codec_ctx *ctx);

/* Room that nova_codec_encode needs for raw_len input bytes. */
size_t nova_codec_bound(size_t raw_len);

/* Encodes in[0..in_len) into out (capacity out_cap >= nova_codec_bound(in_len), else
 * NOVA_EINVALID; in_len <= NOVA_CODEC_MAX_RAW). in and out must not overlap. A zstd or
 * lzma level outside the ranges above is NOVA_EINVALID. */
int nova_codec_encode(nova_codec_ctx *ctx, const nova_codec_spec *spec, void *out, size_t out_cap,
                      size_t *out_len, const void *in, size_t in_len);

/* Reads the header: codec id and raw length. NOVA_ECORRUPT for unknown ids or lengths
 * over NOVA_CODEC_MAX_RAW or a too-short frame. */
int nova_codec_peek(const void *in, size_t in_len, nova_codec_id *id, uint32_t *raw_len);

/* Decodes a frame into out (capacity out_cap >= its raw length). The output must be
 * exactly the declared raw length, else NOVA_ECORRUPT; a frame declaring more than
 * out_cap is NOVA_ECORRUPT too (nothing is written). *out_len is 0 on any failure.
 * out may be NULL when out_cap is 0. in and out must not overlap. */
int nova_codec_decode(nova_codec_ctx *ctx, void *out, size_t out_cap, size_t *out_len,
                      const void *in, size_t in_len);

#endif
