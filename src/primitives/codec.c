/*
 * codec.c -- the self-describing compression frame: zstd, raw LZMA2, LZ4 block, none.
 *
 * Frame: u8 codec id | LE32 raw length | payload. Invariants:
 *  - The encoder gives every compressor room for at most in_len - 1 payload bytes, so a
 *    compressor that cannot beat the input runs out of room and the data is stored raw:
 *    an encoded frame is never longer than in_len + NOVA_CODEC_HEADER_LEN.
 *  - The decoder trusts nothing in the frame: the id must be known, the declared length
 *    must be <= NOVA_CODEC_MAX_RAW and <= out_cap, each decompressor writes at most the
 *    declared length, and the decoded length must equal it exactly.
 *  - LZMA is raw LZMA2 (no .xz container: the frame already carries the length and the
 *    envelope authenticates the bytes). Its dictionary is the smallest power of two
 *    >= the raw length (>= 4 KiB, <= the preset's), so the decoder needs the same bound
 *    and never allocates more than about twice the output it was given room for.
 *  - A nova_codec_ctx keeps every compressor's state (zstd contexts, the LZ4 state, the
 *    LZMA streams). liblzma reuses a coder's memory when re-initialised with the same
 *    dictionary size, so after warm-up on similar chunk sizes nothing is allocated.
 */
#include "primitives/codec.h"

#include <limits.h>
#include <lz4.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/bytes.h"
#include "common/err.h"

#define ZSTD_LEVEL_MIN 1
#define ZSTD_LEVEL_MAX 19
#define ZSTD_LEVEL_DEFAULT 3
#define LZMA_LEVEL_MIN 0
#define LZMA_LEVEL_MAX 9
#define LZMA_LEVEL_DEFAULT 6
#define LZMA_DICT_FLOOR 4096u

struct nova_codec_ctx {
    ZSTD_CCtx *zstd_c;
    ZSTD_DCtx *zstd_d;
    void *lz4_state;
    lzma_stream lzma_enc;
    lzma_stream lzma_dec;
};

/* ---- names and specs ---------------------------------------------------------------- */

const char *nova_codec_name(nova_codec_id id)
{
    switch (id) {
    case NOVA_CODEC_NONE:
        return "none";
    case NOVA_CODEC_ZSTD:
        return "zstd";
    case NOVA_CODEC_LZMA:
        return "lzma";
    case NOVA_CODEC_LZ4:
        return "lz4";
    }
    return "unknown";
}

/* Parses a decimal level of 1..3 digits; -1 when the text is not one. */
static int parse_level(const char *text)
{
    int value = 0;
    size_t n = strlen(text);
    if (n == 0 || n > 3)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

int nova_codec_spec_parse(nova_codec_spec *out, const char *text)
{
    static const nova_codec_id ids[] = {NOVA_CODEC_NONE, NOVA_CODEC_ZSTD, NOVA_CODEC_LZMA,
                                        NOVA_CODEC_LZ4};
    const char *colon;
    size_t name_len;
    int level;

    if (!text)
        return nova_fail(NOVA_EINVALID, "compression: missing codec name");
    colon = strchr(text, ':');
    name_len = colon ? (size_t)(colon - text) : strlen(text);
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        const char *name = nova_codec_name(ids[i]);
        if (strlen(name) != name_len || strncmp(text, name, name_len) != 0)
            continue;
        out->id = ids[i];
        switch (ids[i]) {
        case NOVA_CODEC_ZSTD:
            level = colon ? parse_level(colon + 1) : ZSTD_LEVEL_DEFAULT;
            if (level < ZSTD_LEVEL_MIN || level > ZSTD_LEVEL_MAX)
                return nova_fail(NOVA_EINVALID, "compression '%s': zstd level must be %d..%d",
                                 text, ZSTD_LEVEL_MIN, ZSTD_LEVEL_MAX);
            break;
        case NOVA_CODEC_LZMA:
            level = colon ? parse_level(colon + 1) : LZMA_LEVEL_DEFAULT;
            if (level < LZMA_LEVEL_MIN || level > LZMA_LEVEL_MAX)
                return nova_fail(NOVA_EINVALID, "compression '%s': lzma level must be %d..%d",
                                 text, LZMA_LEVEL_MIN, LZMA_LEVEL_MAX);
            break;
        default:
            if (colon)
                return nova_fail(NOVA_EINVALID, "compression '%s': %s takes no level", text,
                                 nova_codec_name(ids[i]));
            level = 0;
            break;
        }
        out->level = level;
        return 0;
    }
    return nova_fail(NOVA_EINVALID,
                     "compression '%s': unknown codec (expected none, zstd, lzma or lz4)", text);
}

void nova_codec_spec_format(const nova_codec_spec *spec, char *out, size_t out_size)
{
    if (out_size == 0)
        return;
    if (spec->id == NOVA_CODEC_ZSTD || spec->id == NOVA_CODEC_LZMA)
        snprintf(out, out_size, "%s:%d", nova_codec_name(spec->id), spec->level);
    else
        snprintf(out, out_size, "%s", nova_codec_name(spec->id));
}

/* ---- context ------------------------------------------------------------------------ */

int nova_codec_ctx_new(nova_codec_ctx **out)
{
    static const lzma_stream stream_init = LZMA_STREAM_INIT;
    nova_codec_ctx *ctx = calloc(1, sizeof(*ctx));
    *out = NULL;
    if (!ctx)
        return nova_fail(NOVA_ENOMEM, "codec context: out of memory");
    ctx->lzma_enc = stream_init;
    ctx->lzma_dec = stream_init;
    ctx->zstd_c = ZSTD_createCCtx();
    ctx->zstd_d = ZSTD_createDCtx();
    ctx->lz4_state = malloc((size_t)LZ4_sizeofState());
    if (!ctx->zstd_c || !ctx->zstd_d || !ctx->lz4_state) {
        nova_codec_ctx_free(ctx);
        return nova_fail(NOVA_ENOMEM, "codec context: out of memory");
    }
    *out = ctx;
    return 0;
}

void nova_codec_ctx_free(nova_codec_ctx *ctx)
{
    if (!ctx)
        return;
    ZSTD_freeCCtx(ctx->zstd_c);
    ZSTD_freeDCtx(ctx->zstd_d);
    free(ctx->lz4_state);
    lzma_end(&ctx->lzma_enc);
    lzma_end(&ctx->lzma_dec);
    free(ctx);
}

size_t nova_codec_bound(size_t raw_len)
{
    return raw_len + NOVA_CODEC_HEADER_LEN;
}

/* ---- compressors: each returns the payload size, 0 when it does not fit in cap ------ */

static uint32_t lzma_dict_for(size_t raw_len, uint32_t ceiling)
{
    uint32_t dict = LZMA_DICT_FLOOR;
    while (dict < raw_len && dict < ceiling)
        dict <<= 1;
    return dict < ceiling ? dict : ceiling;
}

static int zstd_compress(nova_codec_ctx *ctx, int level, uint8_t *dst, size_t cap,
                         size_t *payload, const uint8_t *src, size_t len)
{
    size_t r = ZSTD_CCtx_setParameter(ctx->zstd_c, ZSTD_c_compressionLevel, level);
    if (ZSTD_isError(r))
        return nova_fail(NOVA_EINVALID, "zstd level %d: %s", level, ZSTD_getErrorName(r));
    r = ZSTD_compress2(ctx->zstd_c, dst, cap, src, len);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall) {
            *payload = 0;
            return 0;
        }
        if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
            return nova_fail(NOVA_ENOMEM, "zstd compression of %zu bytes: out of memory", len);
        return nova_fail(NOVA_EINTERNAL, "zstd compression of %zu bytes: %s", len,
                         ZSTD_getErrorName(r));
    }
    *payload = r;
    return 0;
}

static int lzma_compress(nova_codec_ctx *ctx, int level, uint8_t *dst, size_t cap,
                         size_t *payload, const uint8_t *src, size_t len)
{
    lzma_options_lzma opt;
    lzma_filter filters[2];
    lzma_ret ret;
    lzma_stream *s = &ctx->lzma_enc;

    if (lzma_lzma_preset(&opt, (uint32_t)level))
        return nova_fail(NOVA_EINVALID, "lzma level %d: not a preset", level);
    opt.dict_size = lzma_dict_for(len, opt.dict_size);
    filters[0].id = LZMA_FILTER_LZMA2;
    filters[0].options = &opt;
    filters[1].id = LZMA_VLI_UNKNOWN;
    filters[1].options = NULL;
    ret = lzma_raw_encoder(s, filters);
    if (ret != LZMA_OK)
        return nova_fail(ret == LZMA_MEM_ERROR ? NOVA_ENOMEM : NOVA_EINTERNAL,
                         "lzma encoder setup (level %d): error %d", level, (int)ret);
    s->next_in = src;
    s->avail_in = len;
    s->next_out = dst;
    s->avail_out = cap;
    do
        ret = lzma_code(s, LZMA_FINISH);
    while (ret == LZMA_OK);
    if (ret == LZMA_STREAM_END) {
        *payload = cap - s->avail_out;
        return 0;
    }
    if (ret == LZMA_BUF_ERROR) { /* ran out of room: not smaller than the input */
        *payload = 0;
        return 0;
    }
    return nova_fail(ret == LZMA_MEM_ERROR ? NOVA_ENOMEM : NOVA_EINTERNAL,
                     "lzma compression of %zu bytes: error %d", len, (int)ret);
}

static int lz4_compress(nova_codec_ctx *ctx, uint8_t *dst, size_t cap, size_t *payload,
                        const uint8_t *src, size_t len)
{
    int capacity = cap > (size_t)INT_MAX ? INT_MAX : (int)cap;
    int r;
    if (len > (size_t)LZ4_MAX_INPUT_SIZE) {
        *payload = 0;
        return 0;
    }
    r = LZ4_compress_fast_extState(ctx->lz4_state, (const char *)src, (char *)dst, (int)len,
                                   capacity, 1);
    *payload = r > 0 ? (size_t)r : 0;
    return 0;
}

int nova_codec_encode(nova_codec_ctx *ctx, const nova_codec_spec *spec, void *out, size_t out_cap,
                      size_t *out_len, const void *in, size_t in_len)
{
    uint8_t *frame = out;
    uint8_t *payload_dst = frame + NOVA_CODEC_HEADER_LEN;
    size_t payload = 0;
    size_t room;
    nova_codec_id id = spec->id;

    *out_len = 0;
    if (in_len > NOVA_CODEC_MAX_RAW)
        return nova_fail(NOVA_EINVALID, "compression: input of %zu bytes over the %u-byte limit",
                         in_len, NOVA_CODEC_MAX_RAW);
    if (out_cap < nova_codec_bound(in_len))
        return nova_fail(NOVA_EINVALID,
                         "compression: output buffer of %zu bytes, %zu-byte input needs %zu",
                         out_cap, in_len, nova_codec_bound(in_len));
    /* Compressed output must be strictly smaller than the input to be worth keeping. */
    room = in_len > 0 ? in_len - 1 : 0;
    if (room == 0)
        id = NOVA_CODEC_NONE;

    switch (id) {
    case NOVA_CODEC_NONE:
        break;
    case NOVA_CODEC_ZSTD:
        if (spec->level < ZSTD_LEVEL_MIN || spec->level > ZSTD_LEVEL_MAX)
            return nova_fail(NOVA_EINVALID, "compression: zstd level %d outside %d..%d",
                             spec->level, ZSTD_LEVEL_MIN, ZSTD_LEVEL_MAX);
        NOVA_TRY(zstd_compress(ctx, spec->level, payload_dst, room, &payload, in, in_len));
        break;
    case NOVA_CODEC_LZMA:
        if (spec->level < LZMA_LEVEL_MIN || spec->level > LZMA_LEVEL_MAX)
            return nova_fail(NOVA_EINVALID, "compression: lzma level %d outside %d..%d",
                             spec->level, LZMA_LEVEL_MIN, LZMA_LEVEL_MAX);
        NOVA_TRY(lzma_compress(ctx, spec->level, payload_dst, room, &payload, in, in_len));
        break;
    case NOVA_CODEC_LZ4:
        NOVA_TRY(lz4_compress(ctx, payload_dst, room, &payload, in, in_len));
        break;
    default:
        return nova_fail(NOVA_EINVALID, "compression: unknown codec id %d", (int)spec->id);
    }

    if (payload == 0 || payload >= in_len) {
        id = NOVA_CODEC_NONE;
        if (in_len > 0)
            memcpy(payload_dst, in, in_len);
        payload = in_len;
    }
    frame[0] = (uint8_t)id;
    nova_put_le32(frame + 1, (uint32_t)in_len);
    *out_len = NOVA_CODEC_HEADER_LEN + payload;
    return 0;
}

/* ---- decoding ----------------------------------------------------------------------- */

int nova_codec_peek(const void *in, size_t in_len, nova_codec_id *id, uint32_t *raw_len)
{
    nova_reader r = nova_reader_make(in, in_len);
    uint8_t codec = nova_read_u8(&r);
    uint32_t length = nova_read_le32(&r);

    if (r.failed)
        return nova_fail(NOVA_ECORRUPT, "codec frame of %zu bytes: shorter than its header",
                         in_len);
    if (codec != NOVA_CODEC_NONE && codec != NOVA_CODEC_ZSTD && codec != NOVA_CODEC_LZMA &&
        codec != NOVA_CODEC_LZ4)
        return nova_fail(NOVA_ECORRUPT, "codec frame: unknown codec id %u", (unsigned)codec);
    if (length > NOVA_CODEC_MAX_RAW)
        return nova_fail(NOVA_ECORRUPT, "codec frame: raw length %u over the %u-byte limit",
                         (unsigned)length, NOVA_CODEC_MAX_RAW);
    *id = (nova_codec_id)codec;
    *raw_len = length;
    return 0;
}

static int zstd_decompress(nova_codec_ctx *ctx, uint8_t *dst, size_t raw_len,
                           const uint8_t *src, size_t len)
{
    size_t r = ZSTD_decompressDCtx(ctx->zstd_d, dst, raw_len, src, len);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
            return nova_fail(NOVA_ENOMEM, "zstd frame: out of memory");
        return nova_fail(NOVA_ECORRUPT, "zstd frame: %s", ZSTD_getErrorName(r));
    }
    if (r != raw_len)
        return nova_fail(NOVA_ECORRUPT, "zstd frame: decoded %zu bytes, header says %zu", r,
                         raw_len);
    return 0;
}

static int lzma_decompress(nova_codec_ctx *ctx, uint8_t *dst, size_t raw_len,
                           const uint8_t *src, size_t len)
{
    lzma_options_lzma opt;
    lzma_filter filters[2];
    lzma_ret ret;
    lzma_stream *s = &ctx->lzma_dec;

    memset(&opt, 0, sizeof(opt));
    if (lzma_lzma_preset(&opt, LZMA_LEVEL_MAX | LZMA_PRESET_EXTREME))
        return nova_fail(NOVA_EINTERNAL, "lzma decoder setup: no preset");
    opt.dict_size = lzma_dict_for(raw_len, opt.dict_size);
    filters[0].id = LZMA_FILTER_LZMA2;
    filters[0].options = &opt;
    filters[1].id = LZMA_VLI_UNKNOWN;
    filters[1].options = NULL;
    ret = lzma_raw_decoder(s, filters);
    if (ret != LZMA_OK)
        return nova_fail(ret == LZMA_MEM_ERROR ? NOVA_ENOMEM : NOVA_EINTERNAL,
                         "lzma decoder setup: error %d", (int)ret);
    s->next_in = src;
    s->avail_in = len;
    s->next_out = dst;
    s->avail_out = raw_len;
    do
        ret = lzma_code(s, LZMA_FINISH);
    while (ret == LZMA_OK);
    if (ret == LZMA_MEM_ERROR)
        return nova_fail(NOVA_ENOMEM, "lzma frame: out of memory");
    if (ret != LZMA_STREAM_END)
        return nova_fail(NOVA_ECORRUPT, "lzma frame: %s",
                         ret == LZMA_BUF_ERROR ? "truncated or longer than declared"
                                               : "invalid data");
    if (s->avail_out != 0 || s->avail_in != 0)
        return nova_fail(NOVA_ECORRUPT, "lzma frame: decoded %zu bytes of %zu, %zu bytes left",
                         raw_len - s->avail_out, raw_len, (size_t)s->avail_in);
    return 0;
}

static int lz4_decompress(uint8_t *dst, size_t raw_len, const uint8_t *src, size_t len)
{
    int r;
    if (len > (size_t)INT_MAX)
        return nova_fail(NOVA_ECORRUPT, "lz4 frame: payload of %zu bytes too large", len);
    r = LZ4_decompress_safe((const char *)src, (char *)dst, (int)len, (int)raw_len);
    if (r < 0)
        return nova_fail(NOVA_ECORRUPT, "lz4 frame: invalid data");
    if ((size_t)r != raw_len)
        return nova_fail(NOVA_ECORRUPT, "lz4 frame: decoded %d bytes, header says %zu", r,
                         raw_len);
    return 0;
}

int nova_codec_decode(nova_codec_ctx *ctx, void *out, size_t out_cap, size_t *out_len,
                      const void *in, size_t in_len)
{
    uint8_t spare = 0;
    uint8_t *dst = out ? out : &spare; /* decompressors get a valid pointer even for 0 bytes */
    const uint8_t *payload = (const uint8_t *)in + NOVA_CODEC_HEADER_LEN;
    size_t payload_len;
    nova_codec_id id;
    uint32_t raw_len;

    *out_len = 0;
    NOVA_TRY(nova_codec_peek(in, in_len, &id, &raw_len));
    if (raw_len > out_cap)
        return nova_fail(NOVA_ECORRUPT,
                         "codec frame: raw length %u larger than the %zu-byte buffer",
                         (unsigned)raw_len, out_cap);
    payload_len = in_len - NOVA_CODEC_HEADER_LEN;

    switch (id) {
    case NOVA_CODEC_NONE:
        if (payload_len != raw_len)
            return nova_fail(NOVA_ECORRUPT, "stored frame: %zu payload bytes, header says %u",
                             payload_len, (unsigned)raw_len);
        if (raw_len > 0)
            memcpy(dst, payload, raw_len);
        break;
    case NOVA_CODEC_ZSTD:
        NOVA_TRY(zstd_decompress(ctx, dst, raw_len, payload, payload_len));
        break;
    case NOVA_CODEC_LZMA:
        NOVA_TRY(lzma_decompress(ctx, dst, raw_len, payload, payload_len));
        break;
    case NOVA_CODEC_LZ4:
        NOVA_TRY(lz4_decompress(dst, raw_len, payload, payload_len));
        break;
    }
    *out_len = raw_len;
    return 0;
}
