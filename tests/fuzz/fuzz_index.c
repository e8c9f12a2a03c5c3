/*
 * fuzz_index.c -- fuzz harness for index files (index.h) and the chunk index loader.
 *
 * Each input is tried two ways:
 *   1. as a stored index file: envelope-open under a fixed key (enc key 00..1f, as in
 *      test_index.c) and decode, so valid seeds reach the payload decoder;
 *   2. as a raw payload: decode directly; an accepted payload must encode back to exactly
 *      the input (one encoding per index).
 * Whatever decodes is loaded into a chunk index, and every entry must then be found.
 *
 * Seeds: build this file with -DNOVA_FUZZ_WRITE_SEEDS (see fuzz_pack.c for the command)
 * and run it with tests/fuzz/corpus/index.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "nova/error.h"
#include "repo/chunk_index.h"
#include "repo/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t fuzz_enc_key[NOVA_KEY_LEN];

static void init_key(void)
{
    for (size_t i = 0; i < NOVA_KEY_LEN; i++)
        fuzz_enc_key[i] = (uint8_t)i;
}

/* Checks what a successful decode promises and loads it into a chunk index. */
static void check_and_load(const nova_index *ix)
{
    nova_chunk_index *chunks = NULL;
    size_t total = 0, duplicates = 0;

    for (size_t p = 0; p < ix->pack_count; p++) {
        const nova_index_pack *pk = &ix->packs[p];
        if (pk->entry_count == 0 || pk->entries != ix->entries + total)
            abort();
        for (size_t i = 0; i < pk->entry_count; i++) {
            const nova_pack_entry *e = &pk->entries[i];
            if (!nova_blob_type_valid(e->type) || e->length < NOVA_PACK_MIN_BLOB_LEN ||
                e->raw_length > NOVA_CODEC_MAX_RAW ||
                (i > 0 && e->offset < pk->entries[i - 1].offset + (uint64_t)pk->entries[i - 1].length))
                abort();
        }
        total += pk->entry_count;
    }
    if (total != ix->entry_count)
        abort();
    if (nova_chunk_index_new(&chunks) < 0)
        abort();
    if (nova_chunk_index_add_index(chunks, ix, &duplicates) < 0)
        abort();
    if (nova_chunk_index_count(chunks) + duplicates != total)
        abort();
    for (size_t k = 0; k < ix->entry_count; k++)
        if (nova_chunk_index_lookup(chunks, &ix->entries[k].id, NULL) != 1)
            abort();
    nova_chunk_index_free(chunks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nova_index ix = NOVA_INDEX_INIT;
    nova_buf again = NOVA_BUF_INIT;

    init_key();
    if (nova_index_open(&ix, fuzz_enc_key, data, size, "fuzz") == 0) {
        check_and_load(&ix);
        nova_index_free(&ix);
    } else if (ix.packs || ix.entries || ix.pack_count) {
        abort();
    }
    if (nova_index_decode(&ix, data, size, "fuzz") == 0) {
        check_and_load(&ix);
        if (nova_index_encode(&again, ix.packs, ix.pack_count) < 0 || again.len != size ||
            memcmp(again.data, data, size) != 0)
            abort();
        nova_index_free(&ix);
    }
    nova_buf_free(&again);
    return 0;
}

#ifdef NOVA_FUZZ_WRITE_SEEDS
/* ---- seed writer (not part of the harness) ---- */
#include <stdio.h>

#include "primitives/hash.h"

static void write_seed(const char *dir, const char *name, const void *data, size_t len)
{
    char path[1024];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        abort();
}

int main(int argc, char **argv)
{
    enum { PACKS = 3, PER_PACK = 4 };
    nova_pack_entry entries[PACKS * PER_PACK];
    nova_index_pack packs[PACKS];
    nova_buf buf = NOVA_BUF_INIT;
    nova_id index_id;
    nova_codec_spec codec;
    uint8_t garbage[200];

    if (argc != 2)
        return 2;
    init_key();
    for (size_t p = 0; p < PACKS; p++) {
        nova_sha256(&packs[p].pack_id, &p, sizeof(p));
        packs[p].entries = &entries[p * PER_PACK];
        packs[p].entry_count = PER_PACK;
        for (size_t i = 0; i < PER_PACK; i++) {
            nova_pack_entry *e = &entries[p * PER_PACK + i];
            size_t k = p * PER_PACK + i;
            nova_sha256(&e->id, &k, sizeof(k));
            e->type = k % 3 == 2 ? NOVA_BLOB_TREE : NOVA_BLOB_DATA;
            e->offset = (uint32_t)(i * 5000);
            e->length = (uint32_t)(1000 + 100 * i);
            e->raw_length = (uint32_t)(3000 + i);
        }
    }
    nova_codec_spec_parse(&codec, "zstd");
    if (nova_index_seal(&buf, &index_id, fuzz_enc_key, &codec, packs, PACKS) < 0)
        abort();
    write_seed(argv[1], "sealed-zstd", buf.data, buf.len);
    write_seed(argv[1], "sealed-truncated", buf.data, buf.len - 1);
    nova_codec_spec_parse(&codec, "none");
    if (nova_index_seal(&buf, &index_id, fuzz_enc_key, &codec, packs, 1) < 0)
        abort();
    write_seed(argv[1], "sealed-none", buf.data, buf.len);
    if (nova_index_encode(&buf, packs, PACKS) < 0)
        abort();
    write_seed(argv[1], "payload-3-packs", buf.data, buf.len);
    write_seed(argv[1], "payload-truncated", buf.data, buf.len - 7);
    if (nova_index_encode(&buf, packs, 1) < 0)
        abort();
    write_seed(argv[1], "payload-1-pack", buf.data, buf.len);
    if (nova_index_encode(&buf, packs, 0) < 0)
        abort();
    write_seed(argv[1], "payload-empty", buf.data, buf.len);
    /* The same entries twice under two pack ids: duplicates for the chunk index. */
    packs[1].entries = packs[0].entries;
    if (nova_index_encode(&buf, packs, 2) < 0)
        abort();
    write_seed(argv[1], "payload-duplicate-ids", buf.data, buf.len);
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (uint8_t)(i * 89 + 7);
    write_seed(argv[1], "garbage", garbage, sizeof(garbage));
    write_seed(argv[1], "empty", "", 0);
    nova_buf_free(&buf);
    return 0;
}
#endif
