/*
 * fuzz_codec.c -- fuzzes the compression frame decoder and every codec's round trip.
 *
 * For each input: (1) decode it as a frame into a buffer of exactly the declared length
 * (so the sanitizers see any overrun); a frame may be refused but must never crash, and
 * an accepted one must yield exactly its declared length; (2) treat it as raw data,
 * encode it with every codec and decode it again: the bytes must come back identical,
 * else abort(). Contexts are kept across inputs, as the library keeps them across chunks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "primitives/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Frames declaring more than this are decoded into a buffer this small (and refused),
 * so a 64 MiB claim in a 10-byte input does not cost 64 MiB per run. */
#define FUZZ_MAX_OUTPUT (4u << 20)

static const nova_codec_spec specs[] = {
    {NOVA_CODEC_NONE, 0}, {NOVA_CODEC_ZSTD, 1}, {NOVA_CODEC_ZSTD, 3}, {NOVA_CODEC_ZSTD, 9},
    {NOVA_CODEC_LZMA, 0}, {NOVA_CODEC_LZMA, 6}, {NOVA_CODEC_LZ4, 0},
};

static nova_codec_ctx *shared_ctx(void)
{
    static nova_codec_ctx *ctx;
    if (!ctx && nova_codec_ctx_new(&ctx) != 0)
        abort();
    return ctx;
}

static void fuzz_decode(nova_codec_ctx *ctx, const uint8_t *data, size_t size)
{
    nova_codec_id id;
    uint32_t raw_len;
    size_t cap, out_len = 0;
    uint8_t *out;
    int rc;

    if (nova_codec_peek(data, size, &id, &raw_len) != 0)
        return;
    cap = raw_len <= FUZZ_MAX_OUTPUT ? raw_len : FUZZ_MAX_OUTPUT;
    out = malloc(cap ? cap : 1);
    if (!out)
        abort();
    rc = nova_codec_decode(ctx, out, cap, &out_len, data, size);
    if (rc == 0 && out_len != raw_len)
        abort();
    if (rc != 0 && out_len != 0)
        abort();
    free(out);
}

static void fuzz_round_trip(nova_codec_ctx *ctx, const uint8_t *data, size_t size)
{
    size_t cap = nova_codec_bound(size);
    uint8_t *frame = malloc(cap), *back = malloc(size ? size : 1);

    if (!frame || !back)
        abort();
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        size_t frame_len = 0, back_len = 0;
        if (nova_codec_encode(ctx, &specs[i], frame, cap, &frame_len, data, size) != 0)
            abort();
        if (frame_len > cap)
            abort();
        if (nova_codec_decode(ctx, back, size, &back_len, frame, frame_len) != 0)
            abort();
        if (back_len != size || (size && memcmp(back, data, size) != 0))
            abort();
    }
    free(frame);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nova_codec_ctx *ctx = shared_ctx();
    fuzz_decode(ctx, data, size);
    if (size <= NOVA_CODEC_MAX_RAW)
        fuzz_round_trip(ctx, data, size);
    return 0;
}
