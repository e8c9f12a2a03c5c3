/*
 * test_codec.c -- the compression frame: spec parsing, round trips for every codec and
 * several levels, the raw fallback, the exact frame layout, frames made by independent
 * encoders (the zstd, xz and lz4 command-line tools), and hostile frames: every
 * truncation, corrupted headers and payloads, lengths over the limit, short buffers.
 *
 * Frames under test are copied into buffers of exactly their size so that AddressSanitizer
 * reports any read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lz4.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/bytes.h"
#include "nova/error.h"
#include "primitives/codec.h"
#include "primitives/hash.h"

static const nova_codec_spec all_specs[] = {
    {NOVA_CODEC_NONE, 0}, {NOVA_CODEC_ZSTD, 1}, {NOVA_CODEC_ZSTD, 3}, {NOVA_CODEC_ZSTD, 19},
    {NOVA_CODEC_LZMA, 0}, {NOVA_CODEC_LZMA, 6}, {NOVA_CODEC_LZMA, 9}, {NOVA_CODEC_LZ4, 0},
};
#define SPEC_COUNT (sizeof(all_specs) / sizeof(all_specs[0]))

/* The compressing codecs at one middling level each, for the hostile-input tests. */
static const nova_codec_spec compressing_specs[] = {
    {NOVA_CODEC_ZSTD, 3},
    {NOVA_CODEC_LZMA, 6},
    {NOVA_CODEC_LZ4, 0},
};
#define COMPRESSING_COUNT (sizeof(compressing_specs) / sizeof(compressing_specs[0]))

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill_random(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(rng_next() >> 32);
}

/* JSON-like text with some variation: compresses well with every codec. */
static void fill_compressible(uint8_t *p, size_t len)
{
    static const char *const words[] = {"{\"layer\": ", "\"memory\", ", "\"weight\": 0.5, ",
                                        "\"tags\": [\"a\", \"b\"], ", "}\n"};
    size_t pos = 0, w = 0;
    while (pos < len) {
        const char *word = words[w++ % 5];
        size_t n = strlen(word);
        if (n > len - pos)
            n = len - pos;
        memcpy(p + pos, word, n);
        pos += n;
        if (w % 7 == 0 && pos < len)
            p[pos++] = (uint8_t)('0' + rng_next() % 10);
    }
}

/* Words drawn from a skewed vocabulary: redundant, but with structure that only a
 * stronger match finder exploits fully (so compression levels visibly differ). */
static void fill_words(uint8_t *p, size_t len)
{
    static const unsigned spans[] = {10, 50, 200};
    size_t pos = 0;
    while (pos < len) {
        unsigned word = (unsigned)(rng_next() % spans[rng_next() % 3]);
        char text[48];
        int n = 0;
        for (unsigned r = 0; r <= word % 3; r++)
            n += snprintf(text + n, sizeof(text) - (size_t)n, "w%u", word);
        text[n++] = ' ';
        for (int i = 0; i < n && pos < len; i++)
            p[pos++] = (uint8_t)text[i];
    }
}

static uint8_t *dup_exact(const uint8_t *p, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, p, len);
    return copy;
}

/* Encodes in, checks the frame's header and size bound, decodes into an exact-size
 * buffer and compares. Returns the frame's codec id. */
static nova_codec_id round_trip(nova_codec_ctx *ctx, const nova_codec_spec *spec,
                                const uint8_t *in, size_t len)
{
    size_t cap = nova_codec_bound(len), frame_len = 0, out_len = 0;
    uint8_t *frame = malloc(cap);
    uint8_t *out = malloc(len ? len : 1);
    nova_codec_id id;
    uint32_t raw_len;

    assert_non_null(frame);
    assert_non_null(out);
    assert_int_equal(nova_codec_encode(ctx, spec, frame, cap, &frame_len, in, len), 0);
    assert_true(frame_len <= len + NOVA_CODEC_HEADER_LEN);
    assert_int_equal(nova_codec_peek(frame, frame_len, &id, &raw_len), 0);
    assert_int_equal(raw_len, len);
    assert_int_equal(frame[0], id);
    assert_int_equal(nova_get_le32(frame + 1), len);
    assert_true(id == spec->id || id == NOVA_CODEC_NONE);
    if (id == NOVA_CODEC_NONE)
        assert_int_equal(frame_len, len + NOVA_CODEC_HEADER_LEN);
    else
        assert_true(frame_len < len + NOVA_CODEC_HEADER_LEN);

    uint8_t *exact = dup_exact(frame, frame_len);
    assert_int_equal(nova_codec_decode(ctx, out, len, &out_len, exact, frame_len), 0);
    assert_int_equal(out_len, len);
    if (len)
        assert_memory_equal(out, in, len);
    free(exact);
    free(frame);
    free(out);
    return id;
}

/* Encodes into a fresh, exactly sized buffer the caller frees. */
static uint8_t *encode_exact(nova_codec_ctx *ctx, const nova_codec_spec *spec,
                             const uint8_t *in, size_t len, size_t *frame_len)
{
    size_t cap = nova_codec_bound(len);
    uint8_t *frame = malloc(cap), *exact;
    assert_non_null(frame);
    assert_int_equal(nova_codec_encode(ctx, spec, frame, cap, frame_len, in, len), 0);
    exact = dup_exact(frame, *frame_len);
    free(frame);
    return exact;
}

/* ---- specs -------------------------------------------------------------------------- */

static void test_spec_parse_and_format(void **state)
{
    static const struct {
        const char *text;
        nova_codec_id id;
        int level;
        const char *canonical;
    } good[] = {
        {"none", NOVA_CODEC_NONE, 0, "none"},   {"zstd", NOVA_CODEC_ZSTD, 3, "zstd:3"},
        {"zstd:1", NOVA_CODEC_ZSTD, 1, "zstd:1"}, {"zstd:19", NOVA_CODEC_ZSTD, 19, "zstd:19"},
        {"zstd:07", NOVA_CODEC_ZSTD, 7, "zstd:7"}, {"lzma", NOVA_CODEC_LZMA, 6, "lzma:6"},
        {"lzma:0", NOVA_CODEC_LZMA, 0, "lzma:0"}, {"lzma:9", NOVA_CODEC_LZMA, 9, "lzma:9"},
        {"lz4", NOVA_CODEC_LZ4, 0, "lz4"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        nova_codec_spec spec = {NOVA_CODEC_NONE, -1}, again = {NOVA_CODEC_NONE, -1};
        char text[32];
        assert_int_equal(nova_codec_spec_parse(&spec, good[i].text), 0);
        assert_int_equal(spec.id, good[i].id);
        assert_int_equal(spec.level, good[i].level);
        nova_codec_spec_format(&spec, text, sizeof(text));
        assert_string_equal(text, good[i].canonical);
        assert_int_equal(nova_codec_spec_parse(&again, text), 0);
        assert_int_equal(again.id, spec.id);
        assert_int_equal(again.level, spec.level);
    }
}

static void test_spec_parse_rejects(void **state)
{
    static const char *const bad[] = {
        "",       "zstd:",  "zstd:0",   "zstd:20",  "zstd:-1", "zstd:+3", "zstd: 3",
        "zstd:3x", "zstd:1000", "zstd:3:4", "lzma:10", "lzma:", "lz4:1",  "none:0",
        "gzip",   "ZSTD",   "zst",      "zstd3",    " zstd",   "zstd ",  "lzma:99999999999",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nova_codec_spec spec = {NOVA_CODEC_LZ4, 42};
        assert_int_equal(nova_codec_spec_parse(&spec, bad[i]), NOVA_EINVALID);
        /* The message quotes what the person wrote. */
        assert_non_null(strstr(nova_error_last()->message, bad[i]));
    }
    nova_codec_spec spec;
    assert_int_equal(nova_codec_spec_parse(&spec, NULL), NOVA_EINVALID);
}

static void test_spec_format_small_buffer_and_names(void **state)
{
    const nova_codec_spec spec = {NOVA_CODEC_ZSTD, 19};
    char text[4] = "xxx";
    (void)state;
    nova_codec_spec_format(&spec, text, sizeof(text));
    assert_string_equal(text, "zst");
    nova_codec_spec_format(&spec, text, 0); /* must not write */
    assert_string_equal(text, "zst");
    assert_string_equal(nova_codec_name(NOVA_CODEC_NONE), "none");
    assert_string_equal(nova_codec_name(NOVA_CODEC_ZSTD), "zstd");
    assert_string_equal(nova_codec_name(NOVA_CODEC_LZMA), "lzma");
    assert_string_equal(nova_codec_name(NOVA_CODEC_LZ4), "lz4");
    assert_string_equal(nova_codec_name((nova_codec_id)9), "unknown");
    assert_int_equal(nova_codec_bound(0), NOVA_CODEC_HEADER_LEN);
    assert_int_equal(nova_codec_bound(1000), 1000 + NOVA_CODEC_HEADER_LEN);
}

/* ---- round trips -------------------------------------------------------------------- */

static void test_round_trip_every_codec(void **state)
{
    static const size_t sizes[] = {0, 1, 2, 17, 4096, 65536 + 7, 300000};
    nova_codec_ctx *ctx = NULL;
    uint8_t *data = malloc(300000);
    (void)state;
    assert_non_null(data);
    assert_int_equal(nova_codec_ctx_new(&ctx), 0);
    for (size_t s = 0; s < SPEC_COUNT; s++) {
        for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
            size_t len = sizes[z];
            nova_codec_id id;

            fill_compressible(data, len);
            id = round_trip(ctx, &all_specs[s], data, len);
            if (len < 2 || all_specs[s].id == NOVA_CODEC_NONE)
                assert_int_equal(id, NOVA_CODEC_NONE);
            else if (len >= 4096)
                assert_int_equal(id, all_specs[s].id); /* text this long always shrinks */

            fill_random(data, len);
            id = round_trip(ctx, &all_specs[s], data, len);
            if (len > 0 && len < 64)
                assert_int_equal(id, NOVA_CODEC_NONE);

            memset(data, 0, len);
            id = round_trip(ctx, &all_specs[s], data, len);
            if (len >= 64)
                assert_int_equal(id, all_specs[s].id);
        }
    }
    nova_codec_ctx_free(ctx);
    nova_codec_ctx_free(NULL);
    free(data);
}

static void test_raw_fallback_on_random_data(void **state)
{
    const size_t len = 65536;
    uint8_t *data = malloc(len);
    nova_codec_ctx *ctx = NULL;
    (void)state;
    assert_non_null(data);
    fill_random(data, len);
    assert_int_equal(nova_codec_ctx_new(&ctx), 0);
    for (size_t s = 0; s < SPEC_COUNT; s++) {
        size_t frame_len = 0;
        uint8_t *frame = encode_exact(ctx, &all_specs[s], data, len, &frame_len);
        assert_int_equal(frame[0], NOVA_CODEC_NONE);
        assert_int_equal(frame_len, len + NOVA_CODEC_HEADER_LEN);
        assert_memory_equal(frame + NOVA_CODEC_HEADER_LEN, data, len);
        free(frame);
    }
    nova_codec_ctx_free(ctx);
    free(data);
}

static void test_compression_levels_differ(void **state)
{
    /* On word-like text the strongest levels compress clearly better than the fastest
     * (the zstd and xz tools give about 25% smaller output), so a level that is not
     * passed through to the library is caught. */
    const size_t len = 200000;
    uint8_t *data = malloc(len);
    nova_codec_ctx *ctx = NULL;
    const nova_codec_spec zstd1 = {NOVA_CODEC_ZSTD, 1}, zstd19 = {NOVA_CODEC_ZSTD, 19};
    const nova_codec_spec lzma0 = {NOVA_CODEC_LZMA, 0}, lzma9 = {NOVA_CODEC_LZMA, 9};
    size_t a_len, b_len;
    uint8_t *a, *b;
    (void)state;
    assert_non_null(data);
    fill_words(data, len);
    assert_int_equal(nova_codec_ctx_new(&ctx), 0);
    a = encode_exact(ctx, &zstd1, data, len, &a_len);
    b = encode_exact(ctx, &zstd19, data, len, &b_len);
    assert_true(b_len < a_len - a_len / 10);
    free(a);
    free(b);
    a = encode_exact(ctx, &lzma0, data, len, &a_len);
    b = encode_exact(ctx, &lzma9, data, len, &b_len);
    assert_true(b_len < a_len - a_len / 10);
    free(a);
    free(b);
    nova_codec_ctx_free(ctx);
    free(data);
}

static void test_context_reuse_mixed(void **state)
{
    /* One encoding and one decoding context across many chunk sizes and codecs. */
    nova_codec_ctx *enc = NULL, *dec = NULL;
    const size_t max = 70000;
    uint8_t *data = malloc(max), *out = malloc(max);
    (void)state;
    assert_non_null(data);
    assert_non_null(out);
    assert_int_equal(nova_codec_ctx_new(&enc), 0);
    assert_int_equal(nova_codec_ctx_new(&dec), 0);
    for (int i = 0; i < 120; i++) {
        const nova_codec_spec *spec = &all_specs[(size_t)i % SPEC_COUNT];
        size_t len = (size_t)(rng_next() % max), frame_len = 0, out_len = 0;
        uint8_t *frame;
        if (i % 3 == 0)
            fill_random(data, len);
        else
            fill_compressible(data, len);
        frame = encode_exact(enc, spec, data, len, &frame_len);
        assert_int_equal(nova_codec_decode(dec, out, max, &out_len, frame, frame_len), 0);
        assert_int_equal(out_len, len);
        assert_memory_equal(out, data, len);
        free(frame);
    }
    nova_codec_ctx_free(enc);
    nova_codec_ctx_free(dec);
    free(data);
    free(out);
}

static void test_largest_frame(void **state)
{
    /* Exactly NOVA_CODEC_MAX_RAW bytes encode and decode; one more is refused. */
    const size_t len = NOVA_CODEC_MAX_RAW;
    const nova_codec_spec lz4 = {NOVA_CODEC_LZ4, 0};
    uint8_t *data = calloc(1, len), *out = malloc(len), *frame = malloc(nova_codec_bound(len));
    size_t frame_len = 0, out_len = 0;
    nova_codec_ctx *ctx = NULL;
    (void)state;
    assert_non_null(data);
    assert_non_null(out);
    assert_non_null(frame);
    data[len - 1] = 1;
    assert_int_equal(nova_codec_ctx_new(&ctx), 0);
    assert_int_equal(
        nova_codec_encode(ctx, &lz4, frame, nova_codec_bound(len), &frame_len, data, len), 0);
    assert_int_equal(frame[0], NOVA_CODEC_LZ4);
    assert_int_equal(nova_codec_decode(ctx, out, len, &out_len, frame, frame_len), 0);
    assert_int_equal(out_len, len);
    assert_memory_equal(out, data, len);
    assert_int_equal(
        nova_codec_encode(ctx, &lz4, frame, nova_codec_bound(len) + 1, &frame_len, data, len + 1),
        NOVA_EINVALID);
    nova_codec_ctx_free(ctx);
    free(data);
    free(out);
    free(frame);
}

/* ---- frame layout and independent encoders ------------------------------------------ */

static void test_frame_layout(void **state)
{
    static const uint8_t expected[] = {0x00, 0x03, 0x00, 0x00, 0x00, 'a', 'b', 'c'};
    const nova_codec_spec none = {NOVA_CODEC_NONE, 0};
    nova_codec_ctx *ctx = NULL;
    uint8_t frame[16];
    size_t frame_len = 0;
    (void)state;
    assert_int_equal(nova_codec_ctx_new(&ctx), 0);
    assert_int_equal(nova_codec_encode(ctx, &none, frame, sizeof(frame), &frame_len, "abc", 3),
                     0);
    assert_int_equal(frame_len, sizeof(expected));
    assert_memory_equal(frame, expected, sizeof(expected));
    /* An empty input is a bare header. */
    assert_int_equal(nova_codec_encode(ctx, &none, frame, sizeof(frame), &frame_len, NULL, 0), 0);
    assert_int_equal(frame_len, NOVA_CODEC_HEADER_LEN);
    assert_memory_equal(frame, "\0\0\0\0\0", NOVA_CODEC_HEADER_LEN);
    size_t out_len = 1;
    assert_int_equal(nova_codec_decode(ctx, NULL, 0, &out_len, frame, frame_len), 0);
    assert_int_equal(out_len, 0);
    nova_codec_ctx_free(ctx);
}

static void test_payloads_are_standard_formats(void **state)
{
    /* Each payload is the library's own format, readable by the library directly. */
    const size_t len = 50000;
    uint8_t *data = malloc(len), *out = malloc(len);
    nova_codec_ctx *ctx = NULL;
    const nova_codec_spec zstd = {NOVA_CODEC_ZSTD, 5}, lz4 = {NOVA_CODEC_LZ4, 0};
    const nova_codec_spec lzma = {NOVA_CODEC_LZMA, 6};
    size_t frame_len;
    uint8_t *frame;
    (void)state;
    assert_non_null(data);
    assert_non_null(out);
    fill_compressible(data, len);
    assert_int_equal(nova_codec_ctx_new(&ctx), 0);

    frame = encode_exact(ctx, &zstd, data, len, &frame_len);
    assert_int_equal(frame[0], NOVA_CODEC_ZSTD);
    assert_int_equal(ZSTD_decompress(out, len, frame + 5, frame_len - 5), len);
    assert_memory_equal(out, data, len);
    free(frame);

    frame = encode_exact(ctx, &lz4, data, len, &frame_len);
    assert_int_equal(frame[0], NOVA_CODEC_LZ4);
    assert_int_equal(LZ4_decompress_safe((const char *)frame + 5, (char *)out,
                                         (int)(frame_len - 5), (int)len),
                     (int)len);
    assert_memory_equal(out, data, len);
    free(frame);

    frame = encode_exact(ctx, &lzma, data, len, &frame_len);
    assert_int_equal(frame[0], NOVA_CODEC_LZMA);
    {
        lzma_options_lzma opt;
        lzma_filter filters[2];
        size_t in_pos = 0, out_pos = 0;
        assert_false(lzma_lzma_preset(&opt, 6));
        opt.dict_size = 1u << 16; /* the smallest power of two >= 50000 */
        filters[0].id = LZMA_FILTER_LZMA2;
        filters[0].options = &opt;
        filters[1].id = LZMA_VLI_UNKNOWN;
        filters[1].options = NULL;
        assert_int_equal(lzma_raw_buffer_decode(filters, NULL, frame + 5, &in_pos, frame_len - 5,
                                                out, &out_pos, len),
                         LZMA_OK);
        assert_int_equal(out_pos, len);
        assert_int_equal(in_pos, frame_len - 5);
    }
    assert_memory_equal(out, data, len);
    free(frame);

    nova_codec_ctx_free(ctx);
    free(data);
    free(out);
}

/* Frames whose payloads came from the command-line tools, for this 124-byte text:
 *   zstd -19 --no-check;  xz --format=raw --lzma2=preset=6,dict=4KiB;
 *   lz4 -9 --no-frame-crc -BD (the one block taken out of the LZ4 frame). */
static const char kat_text_unit[] = "nova keeps memory layers safe. ";
static const struct {
    nova_codec_id id;
    const char *payload_hex;
} kat_frames[] = {
    {NOVA_CODEC_ZSTD, "28b52ffd207c350100f86e6f7661206b65657073206d656d6f7279206c61796572732073"
                      "6166652e200100ab989413"},
    {NOVA_CODEC_LZMA, "e0007b00265d00371bcb329207963edad24de6dd1c17d885e1cd704949b4bdd5a265e2cb"
                      "18b155a8eedc72000000"},
    {NOVA_CODEC_LZ4, "ff106e6f7661206b65657073206d656d6f7279206c617965727320736166652e201f00455"
                     "06166652e20"},
};

static void test_known_answer_frames(void **state)
{
    uint8_t text[124], frame[128], out[124];
    nova_codec_ctx *ctx = NULL;
    (void)state;
    for (size_t i = 0; i < 4; i++)
        memcpy(text + 31 * i, kat_text_unit, 31);
    assert_int_equal(nova_codec_ctx_new(&ctx), 0);
    for (size_t i = 0; i < sizeof(kat_frames) / sizeof(kat_frames[0]); i++) {
        size_t hex_len = strlen(kat_frames[i].payload_hex), out_len = 0;
        size_t frame_len = NOVA_CODEC_HEADER_LEN + hex_len / 2;
        assert_true(frame_len <= sizeof(frame));
        frame[0] = (uint8_t)kat_frames[i].id;
        nova_put_le32(frame + 1, sizeof(text));
        assert_int_equal(nova_hex_decode(frame + 5, hex_len / 2, kat_frames[i].payload_hex,
                                         hex_len),
                         0);
        uint8_t *exact = dup_exact(frame, frame_len);
        memset(out, 0, sizeof(out));
        assert_int_equal(nova_codec_decode(ctx, out, sizeof(out), &out_len, exact, frame_len),
                         0);
        assert_int_equal(out_len, sizeof(text));
        assert_memory_equal(out, text, sizeof(text));
        free(exact);
    }
    nova_codec_ctx_free(ctx);
}

/* ---- hostile frames ----------------------------------------------------------------- */

static void test_every_truncation_rejected(void **state)
{
    const size_t len = 3000;
    uint8_t *data = malloc(len), *out = malloc(len);
    nova_codec_ctx *ctx = NULL;
    (void)state;
    assert_non_null(data);
    assert_non_null(out);
    fill_compressible(data, len);
    assert_int_equal(nova_codec_ctx_new(&ctx), 0);
    for (size_t s = 0; s < SPEC_COUNT; s++) {
        size_t frame_len = 0, out_len = 0;
        uint8_t *frame = encode_exact(ctx, &all_specs[s], data, len, &frame_len);
        for (size_t cut = 0; cut < frame_len; cut++) {
            uint8_t *prefix = dup_exact(frame, cut);
            int rc = nova_codec_decode(ctx, out, len, &out_len, prefix, cut);
            assert_int_equal(rc, NOVA_ECORRUPT);
            assert_int_equal(out_len, 0);
            free(prefix);
        }
        /* One byte of trailing garbage is refused too. */
        uint8_t *longer = malloc(frame_len + 1);
        assert_non_null(longer);
        memcpy(longer, frame, frame_len);
        longer[frame_len] = 0x5a;
        assert_int_equal(nova_codec_decode(ctx, out, len, &out_len, longer, frame_len + 1),
                         NOVA_ECORRUPT);
        free(longer);
        /* The untouched frame still decodes with the same context afterwards. */
        assert_int_equal(nova_codec_decode(ctx, out, len, &out_len, frame, frame_len), 0);
        assert_memory_equal(out, data, len);
        free(frame);
    }
    nova_codec_ctx_free(ctx);
    free(data);
    free(out);
}

static void test_corrupt_headers_rejected(void **state)
{
    const size_t len = 2000;
    uint8_t *data = malloc(len), *out = malloc(len + 1);
    nova_codec_ctx *ctx = NULL;
    (void)state;
    assert_non_null(data);
    assert_non_null(out);
    fill_compressible(data, len);
    assert_int_equal(nova_codec_ctx_new(&ctx), 0);
    for (size_t s = 0; s < SPEC_COUNT; s++) {
        size_t frame_len = 0, out_len = 0;
        uint8_t *frame = encode_exact(ctx, &all_specs[s], data, len, &frame_len);
        const uint8_t id = frame[0];
        nova_codec_id peek_id;
        uint32_t peek_len;

        for (unsigned bad = 4; bad < 256; bad++) {
            frame[0] = (uint8_t)bad;
            assert_int_equal(nova_codec_peek(frame, frame_len, &peek_id, &peek_len),
                             NOVA_ECORRUPT);
            assert_int_equal(nova_codec_decode(ctx, out, len, &out_len, frame, frame_len),
                             NOVA_ECORRUPT);
        }
        frame[0] = id;
        /* The other known ids cannot read this payload as the right length. */
        for (unsigned other = 0; other < 4; other++) {
            if (other == id)
                continue;
            frame[0] = (uint8_t)other;
            int rc = nova_codec_decode(ctx, out, len, &out_len, frame, frame_len);
            assert_true(rc == NOVA_ECORRUPT || (rc == 0 && out_len == len));
        }
        frame[0] = id;
        /* Declared length one short or one long. */
        nova_put_le32(frame + 1, (uint32_t)len - 1);
        assert_int_equal(nova_codec_decode(ctx, out, len + 1, &out_len, frame, frame_len),
                         NOVA_ECORRUPT);
        nova_put_le32(frame + 1, (uint32_t)len + 1);
        assert_int_equal(nova_codec_decode(ctx, out, len + 1, &out_len, frame, frame_len),
                         NOVA_ECORRUPT);
        /* Lengths over the limit are refused before any buffer is considered. */
        nova_put_le32(frame + 1, NOVA_CODEC_MAX_RAW + 1);
        assert_int_equal(nova_codec_peek(frame, frame_len, &peek_id, &peek_len), NOVA_ECORRUPT);
        assert_int_equal(nova_codec_decode(ctx, out, SIZE_MAX, &out_len, frame, frame_len),
                         NOVA_ECORRUPT);
        nova_put_le32(frame + 1, UINT32_MAX);
        assert_int_equal(nova_codec_decode(ctx, out, SIZE_MAX, &out_len, frame, frame_len),
                         NOVA_ECORRUPT);
        /* The limit itself passes peek but not a buffer smaller than it. */
        nova_put_le32(frame + 1, NOVA_CODEC_MAX_RAW);
        assert_int_equal(nova_codec_peek(frame, frame_len, &peek_id, &peek_len), 0);
        assert_int_equal(peek_len, NOVA_CODEC_MAX_RAW);
        assert_int_equal(nova_codec_decode(ctx, out, len, &out_len, frame, frame_len),
                         NOVA_ECORRUPT);
        assert_int_equal(out_len, 0);
        free(frame);
    }
    nova_codec_ctx_free(ctx);
    free(data);
    free(out);
}

static void test_corrupt_payloads_do_not_crash(void **state)
{
    const size_t len = 1500;
    uint8_t *data = malloc(len), *out = malloc(len);
    nova_codec_ctx *ctx = NULL;
    (void)state;
    assert_non_null(data);
    assert_non_null(out);
    fill_compressible(data, len);
    assert_int_equal(nova_codec_ctx_new(&ctx), 0);
    for (size_t s = 0; s < COMPRESSING_COUNT; s++) {
        size_t frame_len = 0, out_len = 0;
        uint8_t *frame = encode_exact(ctx, &compressing_specs[s], data, len, &frame_len);
        static const uint8_t patterns[] = {0x01, 0x80, 0xff};
        assert_int_equal(frame[0], compressing_specs[s].id);
        for (size_t pos = NOVA_CODEC_HEADER_LEN; pos < frame_len; pos++) {
            for (size_t k = 0; k < sizeof(patterns); k++) {
                frame[pos] ^= patterns[k];
                out_len = 12345;
                int rc = nova_codec_decode(ctx, out, len, &out_len, frame, frame_len);
                /* Without a checksum a flip may decode to other bytes, but never to
                 * another length. */
                if (rc == 0)
                    assert_int_equal(out_len, len);
                else
                    assert_int_equal(rc, NOVA_ECORRUPT);
                frame[pos] ^= patterns[k];
            }
        }
        free(frame);

        /* Random payloads under each id. */
        for (int trial = 0; trial < 300; trial++) {
            size_t payload = (size_t)(rng_next() % 200);
            uint8_t *junk = malloc(NOVA_CODEC_HEADER_LEN + payload);
            assert_non_null(junk);
            junk[0] = (uint8_t)compressing_specs[s].id;
            nova_put_le32(junk + 1, (uint32_t)(rng_next() % (len + 1)));
            fill_random(junk + NOVA_CODEC_HEADER_LEN, payload);
            if (trial % 2 && compressing_specs[s].id == NOVA_CODEC_ZSTD && payload >= 4)
                nova_put_le32(junk + NOVA_CODEC_HEADER_LEN, 0xfd2fb528u); /* zstd magic */
            int rc = nova_codec_decode(ctx, out, len, &out_len, junk, NOVA_CODEC_HEADER_LEN + payload);
            assert_true(rc == NOVA_ECORRUPT || (rc == 0 && out_len == nova_get_le32(junk + 1)));
            free(junk);
        }
    }
    nova_codec_ctx_free(ctx);
    free(data);
    free(out);
}

static void test_decode_into_small_buffer(void **state)
{
    const size_t len = 5000;
    uint8_t *data = malloc(len);
    nova_codec_ctx *ctx = NULL;
    (void)state;
    assert_non_null(data);
    fill_compressible(data, len);
    assert_int_equal(nova_codec_ctx_new(&ctx), 0);
    for (size_t s = 0; s < SPEC_COUNT; s++) {
        size_t frame_len = 0, out_len = 0;
        uint8_t *frame = encode_exact(ctx, &all_specs[s], data, len, &frame_len);
        uint8_t *small = malloc(len - 1), *exact = malloc(len);
        assert_non_null(small);
        assert_non_null(exact);
        assert_int_equal(nova_codec_decode(ctx, small, len - 1, &out_len, frame, frame_len),
                         NOVA_ECORRUPT);
        assert_int_equal(nova_codec_decode(ctx, small, 0, &out_len, frame, frame_len),
                         NOVA_ECORRUPT);
        assert_int_equal(nova_codec_decode(ctx, exact, len, &out_len, frame, frame_len), 0);
        assert_memory_equal(exact, data, len);
        free(small);
        free(exact);
        free(frame);
    }
    nova_codec_ctx_free(ctx);
    free(data);
}

static void test_encode_rejects_bad_arguments(void **state)
{
    uint8_t in[100], out[200];
    size_t out_len = 99;
    nova_codec_ctx *ctx = NULL;
    static const nova_codec_spec bad_specs[] = {
        {NOVA_CODEC_ZSTD, 0}, {NOVA_CODEC_ZSTD, 20}, {NOVA_CODEC_ZSTD, -5},
        {NOVA_CODEC_LZMA, -1}, {NOVA_CODEC_LZMA, 10}, {(nova_codec_id)4, 0},
        {(nova_codec_id)-1, 0},
    };
    const nova_codec_spec ok = {NOVA_CODEC_ZSTD, 3};
    (void)state;
    memset(in, 'q', sizeof(in));
    assert_int_equal(nova_codec_ctx_new(&ctx), 0);
    for (size_t i = 0; i < sizeof(bad_specs) / sizeof(bad_specs[0]); i++)
        assert_int_equal(
            nova_codec_encode(ctx, &bad_specs[i], out, sizeof(out), &out_len, in, sizeof(in)),
            NOVA_EINVALID);
    /* The output must hold the worst case, even when this input would compress. */
    assert_int_equal(nova_codec_encode(ctx, &ok, out, sizeof(in) + NOVA_CODEC_HEADER_LEN - 1,
                                       &out_len, in, sizeof(in)),
                     NOVA_EINVALID);
    assert_int_equal(nova_codec_encode(ctx, &ok, out, sizeof(in) + NOVA_CODEC_HEADER_LEN,
                                       &out_len, in, sizeof(in)),
                     0);
    assert_int_equal(out[0], NOVA_CODEC_ZSTD);
    /* Inputs over the frame limit are refused before being read. */
    assert_int_equal(nova_codec_encode(ctx, &ok, out, SIZE_MAX, &out_len, in,
                                       (size_t)NOVA_CODEC_MAX_RAW + 1),
                     NOVA_EINVALID);
    nova_codec_ctx_free(ctx);
}

static void test_peek(void **state)
{
    static const uint8_t frame[] = {0x03, 0x10, 0x27, 0x00, 0x00, 0xaa};
    nova_codec_id id;
    uint32_t raw_len;
    (void)state;
    assert_int_equal(nova_codec_peek(frame, sizeof(frame), &id, &raw_len), 0);
    assert_int_equal(id, NOVA_CODEC_LZ4);
    assert_int_equal(raw_len, 10000);
    assert_int_equal(nova_codec_peek(frame, NOVA_CODEC_HEADER_LEN, &id, &raw_len), 0);
    for (size_t cut = 0; cut < NOVA_CODEC_HEADER_LEN; cut++)
        assert_int_equal(nova_codec_peek(frame, cut, &id, &raw_len), NOVA_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_parse_and_format),
        cmocka_unit_test(test_spec_parse_rejects),
        cmocka_unit_test(test_spec_format_small_buffer_and_names),
        cmocka_unit_test(test_round_trip_every_codec),
        cmocka_unit_test(test_raw_fallback_on_random_data),
        cmocka_unit_test(test_compression_levels_differ),
        cmocka_unit_test(test_context_reuse_mixed),
        cmocka_unit_test(test_largest_frame),
        cmocka_unit_test(test_frame_layout),
        cmocka_unit_test(test_payloads_are_standard_formats),
        cmocka_unit_test(test_known_answer_frames),
        cmocka_unit_test(test_every_truncation_rejected),
        cmocka_unit_test(test_corrupt_headers_rejected),
        cmocka_unit_test(test_corrupt_payloads_do_not_crash),
        cmocka_unit_test(test_decode_into_small_buffer),
        cmocka_unit_test(test_encode_rejects_bad_arguments),
        cmocka_unit_test(test_peek),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
