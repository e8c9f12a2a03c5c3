/*
 * fuzz_pack.c -- fuzz harness for the pack reader (pack.h).
 *
 * Each input is tried four ways:
 *   1. as a whole pack: parse trailer and header, then open every blob the header lists;
 *   2. as a remote reader would: trailer from the last bytes, then only the tail it asks
 *      for; the outcome must equal way 1;
 *   3. as plaintext header entries (nova_pack_entries_decode, tiled and not);
 *   4. as the codec frame inside a blob: sealed here under the pack subkey and opened,
 *      so the reader's decode and id check see arbitrary frames.
 * A fixed key is compiled in (enc key 00..1f, id key 20..3f, as in test_pack.c), so the
 * valid seeds decrypt and the decoders behind the authentication get exercised.
 * Invariants that a successful parse promises are checked with abort().
 *
 * Seeds: build this file with -DNOVA_FUZZ_WRITE_SEEDS (its own main) and run it with the
 * corpus directory, e.g.
 *   cc -std=c11 -D_GNU_SOURCE -DNOVA_FUZZ_WRITE_SEEDS -Iinclude -Isrc tests/fuzz/fuzz_pack.c \
 *      build/libnova.a $(pkg-config --libs openssl libzstd liblzma liblz4) -o /tmp/seeds \
 *      && /tmp/seeds tests/fuzz/corpus/pack
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "nova/error.h"
#include "primitives/codec.h"
#include "primitives/crypto.h"
#include "primitives/hash.h"
#include "repo/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Frames above this size are skipped in way 4 (keeps each run quick). */
#define MAX_FRAME_INPUT (1u << 20)

static uint8_t fuzz_enc_key[NOVA_KEY_LEN];
static uint8_t fuzz_id_key[NOVA_KEY_LEN];

static nova_pack_reader *fuzz_reader(void)
{
    static nova_pack_reader *reader; /* kept for the whole run; still reachable at exit */
    if (!reader) {
        for (size_t i = 0; i < NOVA_KEY_LEN; i++) {
            fuzz_enc_key[i] = (uint8_t)i;
            fuzz_id_key[i] = (uint8_t)(0x20 + i);
        }
        if (nova_pack_reader_new(&reader, fuzz_enc_key, fuzz_id_key) < 0)
            abort();
    }
    return reader;
}

static void check_header(const nova_pack_header *h, size_t size)
{
    uint64_t next = 0;
    if (h->count == 0 || h->count != h->trailer.entry_count ||
        h->trailer.tail_length + h->trailer.blob_area_length != size)
        abort();
    for (size_t i = 0; i < h->count; i++) {
        const nova_pack_entry *e = &h->entries[i];
        if (e->offset != next || e->length < NOVA_PACK_MIN_BLOB_LEN ||
            e->raw_length > NOVA_CODEC_MAX_RAW || !nova_blob_type_valid(e->type))
            abort();
        next += e->length;
    }
    if (next != h->trailer.blob_area_length)
        abort();
}

/* Ways 1 and 2. */
static void fuzz_whole_pack(nova_pack_reader *r, const uint8_t *data, size_t size)
{
    nova_pack_header h = NOVA_PACK_HEADER_INIT;
    nova_pack_trailer t;
    nova_buf out = NOVA_BUF_INIT;
    int whole = nova_pack_reader_read_header(r, &h, size, data, size, "fuzz");

    if (whole == 0) {
        check_header(&h, size);
        for (size_t i = 0; i < h.count; i++) {
            const nova_pack_entry *e = &h.entries[i];
            int rc = nova_pack_reader_open_blob(r, &out, h.trailer.salt, e, data + e->offset,
                                                e->length, "fuzz");
            if (rc == 0 && out.len != e->raw_length)
                abort();
            if (rc < 0 && out.len != 0)
                abort();
        }
    }
    if (size >= NOVA_PACK_TRAILER_LEN &&
        nova_pack_trailer_parse(&t, size, data + size - NOVA_PACK_TRAILER_LEN,
                                NOVA_PACK_TRAILER_LEN, "fuzz") == 0) {
        int tail = nova_pack_reader_read_header(r, &h, size, data + size - t.tail_length,
                                                t.tail_length, "fuzz");
        if ((tail == 0) != (whole == 0))
            abort();
    }
    nova_pack_header_free(&h);
    nova_buf_free(&out);
}

/* Way 3. */
static void fuzz_entries(const uint8_t *data, size_t size)
{
    size_t count = size / NOVA_PACK_ENTRY_LEN;
    nova_pack_entry *entries;

    if (count == 0 || count > 4096)
        return;
    entries = calloc(count, sizeof(*entries));
    if (!entries)
        return;
    nova_pack_entries_decode(entries, count, data, count * NOVA_PACK_ENTRY_LEN,
                             NOVA_PACK_MAX_BLOB_AREA, 0, "fuzz");
    if (nova_pack_entries_decode(entries, count, data, count * NOVA_PACK_ENTRY_LEN,
                                 (uint64_t)entries[count - 1].offset + entries[count - 1].length,
                                 1, "fuzz") == 0 &&
        entries[0].offset != 0)
        abort();
    free(entries);
}

/* Way 4: seal the input as blob 0 of a pack with a fixed salt, then open it. */
static void fuzz_blob_frame(nova_pack_reader *r, const uint8_t *data, size_t size)
{
    uint8_t salt[NOVA_SALT_LEN], subkey[NOVA_KEY_LEN], nonce[NOVA_NONCE_LEN];
    uint8_t aad[1 + NOVA_ID_LEN];
    nova_codec_id codec;
    nova_pack_entry e;
    nova_aead *aead = NULL;
    nova_buf sealed = NOVA_BUF_INIT, out = NOVA_BUF_INIT;

    if (size > MAX_FRAME_INPUT || nova_codec_peek(data, size, &codec, &e.raw_length) < 0)
        return;
    memset(salt, 0x5a, sizeof(salt));
    memset(&e.id, 0, sizeof(e.id));
    if (size >= NOVA_CODEC_HEADER_LEN + NOVA_ID_LEN) /* let the input choose the id too */
        memcpy(e.id.bytes, data + size - NOVA_ID_LEN, NOVA_ID_LEN);
    e.type = NOVA_BLOB_DATA;
    e.offset = 0;
    e.length = (uint32_t)(size + NOVA_TAG_LEN);
    aad[0] = e.type;
    memcpy(aad + 1, e.id.bytes, NOVA_ID_LEN);
    nova_nonce_from_counter(nonce, 0);
    if (nova_hkdf_sha256(subkey, sizeof(subkey), fuzz_enc_key, NOVA_KEY_LEN, salt, sizeof(salt),
                         NOVA_PACK_KDF_INFO, strlen(NOVA_PACK_KDF_INFO)) < 0 ||
        nova_aead_new(&aead, subkey) < 0 || nova_buf_resize(&sealed, e.length) < 0 ||
        nova_aead_seal(aead, sealed.data, nonce, aad, sizeof(aad), data, size) < 0)
        abort();
    if (nova_pack_reader_open_blob(r, &out, salt, &e, sealed.data, sealed.len, "fuzz") == 0 &&
        out.len != e.raw_length)
        abort();
    nova_aead_free(aead);
    nova_buf_free(&sealed);
    nova_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nova_pack_reader *r = fuzz_reader();
    fuzz_whole_pack(r, data, size);
    fuzz_entries(data, size);
    fuzz_blob_frame(r, data, size);
    return 0;
}

#ifdef NOVA_FUZZ_WRITE_SEEDS
/* ---- seed writer (not part of the harness) ---- */
#include <stdio.h>

static void write_seed(const char *dir, const char *name, const void *data, size_t len)
{
    char path[1024];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        abort();
}

static void make_pack(nova_buf *out, const char *codec_text, size_t blobs, int with_empty)
{
    nova_codec_spec codec;
    nova_pack_writer *w = NULL;
    uint8_t salt[NOVA_SALT_LEN], chunk[3000];
    nova_id id, pack_id;

    memset(salt, 0x40, sizeof(salt));
    if (nova_codec_spec_parse(&codec, codec_text) < 0 || nova_pack_writer_new(&w, fuzz_enc_key, &codec) < 0)
        abort();
    nova_pack_writer_reset_with_salt(w, salt);
    for (size_t b = 0; b < blobs; b++) {
        size_t len = with_empty && b == 0 ? 0 : 100 + 700 * b;
        for (size_t i = 0; i < len; i++)
            chunk[i] = (uint8_t)(b % 2 ? (i * 131 + b) >> 3 : 'a' + i % 7);
        nova_hmac_sha256(&id, fuzz_id_key, NOVA_KEY_LEN, chunk, len);
        if (nova_pack_writer_add(w, b % 3 == 2 ? NOVA_BLOB_TREE : NOVA_BLOB_DATA, &id, chunk, len) < 0)
            abort();
    }
    if (nova_pack_writer_finish(w, out, &pack_id) < 0)
        abort();
    nova_pack_writer_free(w);
}

int main(int argc, char **argv)
{
    static const char *codecs[] = {"none", "zstd", "lzma", "lz4"};
    nova_buf pack = NOVA_BUF_INIT, frame = NOVA_BUF_INIT;
    nova_pack_header h = NOVA_PACK_HEADER_INIT;
    nova_codec_ctx *ctx = NULL;
    char name[64];
    uint8_t garbage[300];

    if (argc != 2)
        return 2;
    fuzz_reader();
    for (size_t c = 0; c < 4; c++) {
        make_pack(&pack, codecs[c], 4, c == 0);
        snprintf(name, sizeof(name), "valid-%s", codecs[c]);
        write_seed(argv[1], name, pack.data, pack.len);
    }
    make_pack(&pack, "none", 1, 1);
    write_seed(argv[1], "valid-one-empty-blob", pack.data, pack.len);
    make_pack(&pack, "zstd", 3, 0);
    write_seed(argv[1], "truncated-end", pack.data, pack.len - 1);
    write_seed(argv[1], "truncated-start", pack.data + 1, pack.len - 1);
    write_seed(argv[1], "trailer-only", pack.data + pack.len - NOVA_PACK_TRAILER_LEN,
               NOVA_PACK_TRAILER_LEN);
    pack.data[pack.len - 9] ^= 1; /* the entry count */
    write_seed(argv[1], "bad-count", pack.data, pack.len);
    pack.data[pack.len - 9] ^= 1;
    pack.data[3] ^= 0x80; /* inside the first blob */
    write_seed(argv[1], "bad-blob", pack.data, pack.len);
    /* Plaintext entries of that pack, for way 3. */
    if (nova_pack_reader_read_header(fuzz_reader(), &h, pack.len, pack.data, pack.len, "seed") < 0)
        abort();
    {
        uint8_t enc[3 * NOVA_PACK_ENTRY_LEN];
        for (size_t i = 0; i < h.count; i++)
            nova_pack_entry_encode(enc + i * NOVA_PACK_ENTRY_LEN, &h.entries[i]);
        write_seed(argv[1], "entries-plain", enc, h.count * NOVA_PACK_ENTRY_LEN);
    }
    /* Codec frames, for way 4. */
    if (nova_codec_ctx_new(&ctx) < 0)
        abort();
    for (size_t c = 0; c < 4; c++) {
        nova_codec_spec codec;
        static const char text[] = "a codec frame inside a blob, a codec frame inside a blob";
        size_t n = 0;
        nova_codec_spec_parse(&codec, codecs[c]);
        if (nova_buf_resize(&frame, nova_codec_bound(sizeof(text))) < 0 ||
            nova_codec_encode(ctx, &codec, frame.data, frame.len, &n, text, sizeof(text)) < 0)
            abort();
        snprintf(name, sizeof(name), "frame-%s", codecs[c]);
        write_seed(argv[1], name, frame.data, n);
    }
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (uint8_t)(i * 167 + 13);
    write_seed(argv[1], "garbage", garbage, sizeof(garbage));
    write_seed(argv[1], "empty", "", 0);
    nova_codec_ctx_free(ctx);
    nova_pack_header_free(&h);
    nova_buf_free(&pack);
    nova_buf_free(&frame);
    return 0;
}
#endif
