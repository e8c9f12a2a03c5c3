/*
 * pack.c -- pack writer and reader (layout in docs/format-packs-index.md).
 *
 * Invariants:
 *   - nonces: blob at offset o uses counter o, the header uses counter = blob area length;
 *     blob offsets are strictly below the area's end, so within one pack subkey (one
 *     random salt) no counter is used twice;
 *   - the writer compresses straight into its pack buffer and seals in place, so after
 *     the buffers have grown to a pack's size an add allocates nothing;
 *   - the reader checks every decoded number against the bytes it was given before it
 *     allocates or indexes with it, authenticates before it parses, and never returns
 *     plaintext that failed authentication or whose id does not match.
 */
#include "repo/pack.h"

#include "common/bytes.h"
#include "common/err.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entries a header may list: its sealed length must fit the trailer's 32-bit field. */
#define PACK_MAX_ENTRIES ((UINT32_MAX - NOVA_TAG_LEN) / NOVA_PACK_ENTRY_LEN)
/* Blob AAD: type byte then the chunk id. */
#define BLOB_AAD_LEN (1 + NOVA_ID_LEN)

/* Trailer field offsets. */
#define TRAILER_SALT 0
#define TRAILER_HEADER_LEN 32
#define TRAILER_COUNT 36
#define TRAILER_VERSION 40
#define TRAILER_MAGIC 41

struct nova_pack_writer {
    uint8_t enc_key[NOVA_KEY_LEN];
    uint8_t salt[NOVA_SALT_LEN];
    nova_codec_spec codec;
    nova_codec_ctx *codec_ctx;
    nova_aead *aead;
    nova_buf bytes;        /* blob area; header and trailer appended by finish */
    nova_buf header_plain; /* encoded entries, reused */
    nova_pack_entry *entries;
    size_t count;
    size_t capacity;
    int finished;
};

struct nova_pack_reader {
    uint8_t enc_key[NOVA_KEY_LEN];
    uint8_t salt[NOVA_SALT_LEN]; /* the salt whose subkey `aead` holds */
    int have_salt;
    nova_aead *aead;
    nova_hmac *hmac;
    nova_codec_ctx *codec_ctx;
    nova_buf scratch; /* decrypted header or codec frame */
};

int nova_blob_type_valid(unsigned type)
{
    return type == NOVA_BLOB_DATA || type == NOVA_BLOB_TREE;
}

void nova_pack_storage_name(char out[NOVA_PACK_NAME_LEN + 1], const nova_id *pack_id)
{
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_id_to_hex(pack_id, hex);
    snprintf(out, NOVA_PACK_NAME_LEN + 1, "data/%.2s/%s", hex, hex);
}

int nova_pack_verify_id(const nova_id *pack_id, const void *bytes, size_t len, const char *what)
{
    nova_id actual;
    char hex[NOVA_ID_HEX_LEN + 1];

    NOVA_TRY(nova_sha256(&actual, bytes, len));
    if (nova_id_equal(&actual, pack_id))
        return 0;
    nova_id_to_hex(&actual, hex);
    return nova_fail(NOVA_ECHECKSUM, "pack '%s': its %zu bytes hash to %s", what, len, hex);
}

/* Derives the pack subkey for salt and puts it into *aead (creating it when NULL). */
static int load_subkey(nova_aead **aead, const uint8_t enc_key[NOVA_KEY_LEN],
                       const uint8_t salt[NOVA_SALT_LEN])
{
    uint8_t subkey[NOVA_KEY_LEN];
    int rc = nova_hkdf_sha256(subkey, sizeof(subkey), enc_key, NOVA_KEY_LEN, salt,
                              NOVA_SALT_LEN, NOVA_PACK_KDF_INFO, strlen(NOVA_PACK_KDF_INFO));
    if (rc == 0)
        rc = *aead ? nova_aead_rekey(*aead, subkey) : nova_aead_new(aead, subkey);
    nova_wipe(subkey, sizeof(subkey));
    return rc;
}

static void blob_aad(uint8_t aad[BLOB_AAD_LEN], unsigned type, const nova_id *id)
{
    aad[0] = (uint8_t)type;
    memcpy(aad + 1, id->bytes, NOVA_ID_LEN);
}

/* ---- entries ------------------------------------------------------------------------ */

void nova_pack_entry_encode(uint8_t out[NOVA_PACK_ENTRY_LEN], const nova_pack_entry *entry)
{
    out[0] = entry->type;
    memcpy(out + 1, entry->id.bytes, NOVA_ID_LEN);
    nova_put_le32(out + 33, entry->offset);
    nova_put_le32(out + 37, entry->length);
    nova_put_le32(out + 41, entry->raw_length);
}

static int entry_check(const nova_pack_entry *e, size_t i, uint64_t min_offset, int tiled,
                       uint64_t area_end, const char *what)
{
    if (!nova_blob_type_valid(e->type))
        return nova_fail(NOVA_ECORRUPT, "%s: entry %zu has unknown blob type %u", what, i,
                         (unsigned)e->type);
    if (e->length < NOVA_PACK_MIN_BLOB_LEN)
        return nova_fail(NOVA_ECORRUPT, "%s: entry %zu is %" PRIu32 " bytes, below the minimum %d",
                         what, i, e->length, NOVA_PACK_MIN_BLOB_LEN);
    if (e->raw_length > NOVA_CODEC_MAX_RAW)
        return nova_fail(NOVA_ECORRUPT, "%s: entry %zu declares %" PRIu32 " raw bytes, above %u",
                         what, i, e->raw_length, NOVA_CODEC_MAX_RAW);
    if ((uint64_t)e->length > (uint64_t)e->raw_length + NOVA_PACK_MIN_BLOB_LEN)
        return nova_fail(NOVA_ECORRUPT,
                         "%s: entry %zu stores %" PRIu32 " bytes for %" PRIu32 " raw bytes",
                         what, i, e->length, e->raw_length);
    if (tiled ? e->offset != min_offset : e->offset < min_offset)
        return nova_fail(NOVA_ECORRUPT, "%s: entry %zu at offset %" PRIu32 " %s (expected %s%" PRIu64 ")",
                         what, i, e->offset, tiled ? "leaves a gap or overlaps" : "overlaps",
                         tiled ? "" : ">= ", min_offset);
    if ((uint64_t)e->offset + e->length > area_end)
        return nova_fail(NOVA_ECORRUPT, "%s: entry %zu ends beyond the blob area (%" PRIu64 " bytes)",
                         what, i, area_end);
    return 0;
}

int nova_pack_entries_check(const nova_pack_entry *entries, size_t count, uint64_t area_end,
                            int tiled, const char *what)
{
    uint64_t next = 0;

    for (size_t i = 0; i < count; i++) {
        NOVA_TRY(entry_check(&entries[i], i, next, tiled, area_end, what));
        next = (uint64_t)entries[i].offset + entries[i].length;
    }
    if (tiled && next != area_end)
        return nova_fail(NOVA_ECORRUPT, "%s: entries cover %" PRIu64 " of %" PRIu64
                                        " bytes of the blob area",
                         what, next, area_end);
    return 0;
}

int nova_pack_entries_decode(nova_pack_entry *out, size_t count, const void *encoded,
                             size_t encoded_len, uint64_t area_end, int tiled, const char *what)
{
    nova_reader r = nova_reader_make(encoded, encoded_len);

    if (count > SIZE_MAX / NOVA_PACK_ENTRY_LEN || encoded_len != count * NOVA_PACK_ENTRY_LEN)
        return nova_fail(NOVA_ECORRUPT, "%s: %zu bytes cannot hold %zu entries", what,
                         encoded_len, count);
    for (size_t i = 0; i < count; i++) {
        nova_pack_entry *e = &out[i];
        e->type = nova_read_u8(&r);
        nova_read_copy(&r, e->id.bytes, NOVA_ID_LEN);
        e->offset = nova_read_le32(&r);
        e->length = nova_read_le32(&r);
        e->raw_length = nova_read_le32(&r);
    }
    if (r.failed)
        return nova_fail(NOVA_ECORRUPT, "%s: entries truncated", what);
    return nova_pack_entries_check(out, count, area_end, tiled, what);
}

/* ---- trailer and header -------------------------------------------------------------- */

static void trailer_encode(uint8_t out[NOVA_PACK_TRAILER_LEN], const uint8_t salt[NOVA_SALT_LEN],
                           uint32_t header_length, uint32_t count)
{
    memcpy(out + TRAILER_SALT, salt, NOVA_SALT_LEN);
    nova_put_le32(out + TRAILER_HEADER_LEN, header_length);
    nova_put_le32(out + TRAILER_COUNT, count);
    out[TRAILER_VERSION] = NOVA_PACK_VERSION;
    memcpy(out + TRAILER_MAGIC, NOVA_PACK_MAGIC, 4);
}

int nova_pack_trailer_parse(nova_pack_trailer *out, uint64_t pack_size, const void *tail,
                            size_t tail_len, const char *what)
{
    const uint8_t *t;
    uint64_t header_length, expected_header, need;

    memset(out, 0, sizeof(*out));
    if ((uint64_t)tail_len > pack_size)
        return nova_fail(NOVA_EINVALID, "pack '%s': tail of %zu bytes exceeds the pack's %" PRIu64,
                         what, tail_len, pack_size);
    if (pack_size < NOVA_PACK_TRAILER_LEN)
        return nova_fail(NOVA_ECORRUPT, "pack '%s': %" PRIu64 " bytes is too small for a pack",
                         what, pack_size);
    if (tail_len < NOVA_PACK_TRAILER_LEN)
        return nova_fail(NOVA_EINVALID, "pack '%s': need the last %d bytes, got %zu", what,
                         NOVA_PACK_TRAILER_LEN, tail_len);
    t = (const uint8_t *)tail + tail_len - NOVA_PACK_TRAILER_LEN;
    if (memcmp(t + TRAILER_MAGIC, NOVA_PACK_MAGIC, 4) != 0)
        return nova_fail(NOVA_ECORRUPT, "pack '%s': bad magic, not a nova pack", what);
    if (t[TRAILER_VERSION] != NOVA_PACK_VERSION)
        return nova_fail(NOVA_EVERSION, "pack '%s': format version %u, this nova reads %d", what,
                         (unsigned)t[TRAILER_VERSION], NOVA_PACK_VERSION);
    memcpy(out->salt, t + TRAILER_SALT, NOVA_SALT_LEN);
    out->header_length = nova_get_le32(t + TRAILER_HEADER_LEN);
    out->entry_count = nova_get_le32(t + TRAILER_COUNT);
    header_length = out->header_length;
    expected_header = (uint64_t)out->entry_count * NOVA_PACK_ENTRY_LEN + NOVA_TAG_LEN;
    if (out->entry_count == 0)
        return nova_fail(NOVA_ECORRUPT, "pack '%s': header lists no blobs", what);
    if (header_length != expected_header)
        return nova_fail(NOVA_ECORRUPT, "pack '%s': header of %" PRIu64 " bytes cannot hold %" PRIu32
                                        " entries",
                         what, header_length, out->entry_count);
    need = header_length + NOVA_PACK_TRAILER_LEN;
    if (need > pack_size)
        return nova_fail(NOVA_ECORRUPT, "pack '%s': header of %" PRIu64 " bytes exceeds the pack",
                         what, header_length);
    out->tail_length = need;
    out->blob_area_length = pack_size - need;
    if (out->blob_area_length > NOVA_PACK_MAX_BLOB_AREA)
        return nova_fail(NOVA_ECORRUPT, "pack '%s': blob area of %" PRIu64 " bytes is too large",
                         what, out->blob_area_length);
    if (out->blob_area_length < (uint64_t)out->entry_count * NOVA_PACK_MIN_BLOB_LEN)
        return nova_fail(NOVA_ECORRUPT, "pack '%s': %" PRIu64 " bytes cannot hold %" PRIu32 " blobs",
                         what, out->blob_area_length, out->entry_count);
    return 0;
}

void nova_pack_header_free(nova_pack_header *header)
{
    if (!header)
        return;
    free(header->entries);
    memset(header, 0, sizeof(*header));
}

static int header_reserve(nova_pack_header *header, size_t count)
{
    nova_pack_entry *grown;
    if (count <= header->capacity)
        return 0;
    grown = realloc(header->entries, count * sizeof(*grown));
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "unable to allocate %zu pack entries", count);
    header->entries = grown;
    header->capacity = count;
    return 0;
}

/* ---- reader -------------------------------------------------------------------------- */

int nova_pack_reader_new(nova_pack_reader **out, const uint8_t enc_key[NOVA_KEY_LEN],
                         const uint8_t id_key[NOVA_KEY_LEN])
{
    nova_pack_reader *r = calloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    if (!r)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a pack reader");
    memcpy(r->enc_key, enc_key, NOVA_KEY_LEN);
    rc = nova_hmac_new(&r->hmac, id_key, NOVA_KEY_LEN);
    if (rc == 0)
        rc = nova_codec_ctx_new(&r->codec_ctx);
    if (rc < 0) {
        nova_pack_reader_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void nova_pack_reader_free(nova_pack_reader *reader)
{
    if (!reader)
        return;
    nova_aead_free(reader->aead);
    nova_hmac_free(reader->hmac);
    nova_codec_ctx_free(reader->codec_ctx);
    nova_buf_free(&reader->scratch);
    nova_wipe(reader->enc_key, sizeof(reader->enc_key));
    free(reader);
}

static int reader_select_salt(nova_pack_reader *r, const uint8_t salt[NOVA_SALT_LEN])
{
    if (r->have_salt && memcmp(r->salt, salt, NOVA_SALT_LEN) == 0)
        return 0;
    r->have_salt = 0;
    NOVA_TRY(load_subkey(&r->aead, r->enc_key, salt));
    memcpy(r->salt, salt, NOVA_SALT_LEN);
    r->have_salt = 1;
    return 0;
}

/* Makes scratch hold n bytes with a non-NULL data pointer even when n is 0. */
static int scratch_size(nova_buf *b, size_t n)
{
    nova_buf_reset(b);
    NOVA_TRY(nova_buf_reserve(b, n ? n : 1));
    return nova_buf_resize(b, n);
}

int nova_pack_reader_read_header(nova_pack_reader *reader, nova_pack_header *header,
                                 uint64_t pack_size, const void *tail, size_t tail_len,
                                 const char *what)
{
    nova_pack_trailer t;
    uint8_t nonce[NOVA_NONCE_LEN];
    const uint8_t *end = (const uint8_t *)tail + tail_len;
    size_t plain_len;

    header->count = 0;
    NOVA_TRY(nova_pack_trailer_parse(&t, pack_size, tail, tail_len, what));
    if ((uint64_t)tail_len < t.tail_length)
        return nova_fail(NOVA_EINVALID, "pack '%s': need the last %" PRIu64 " bytes, got %zu",
                         what, t.tail_length, tail_len);
    plain_len = t.header_length - NOVA_TAG_LEN;
    NOVA_TRY(scratch_size(&reader->scratch, plain_len));
    NOVA_TRY(reader_select_salt(reader, t.salt));
    nova_nonce_from_counter(nonce, t.blob_area_length);
    if (nova_aead_open(reader->aead, reader->scratch.data, nonce, end - NOVA_PACK_TRAILER_LEN,
                       NOVA_PACK_TRAILER_LEN, end - t.tail_length, t.header_length) < 0)
        return nova_fail(NOVA_ECORRUPT,
                         "pack '%s': header does not authenticate (wrong key or damaged pack)",
                         what);
    NOVA_TRY(header_reserve(header, t.entry_count));
    NOVA_TRY(nova_pack_entries_decode(header->entries, t.entry_count, reader->scratch.data,
                                      plain_len, t.blob_area_length, 1, what));
    header->trailer = t;
    header->count = t.entry_count;
    return 0;
}

static int blob_fail(int code, const nova_pack_entry *entry, const char *what, const char *why)
{
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_id_to_hex(&entry->id, hex);
    return nova_fail(code, "pack '%s': blob %s at offset %" PRIu32 ": %s", what, hex,
                     entry->offset, why);
}

int nova_pack_reader_open_blob(nova_pack_reader *reader, nova_buf *out,
                               const uint8_t salt[NOVA_SALT_LEN], const nova_pack_entry *entry,
                               const void *stored, size_t stored_len, const char *what)
{
    uint8_t nonce[NOVA_NONCE_LEN];
    uint8_t aad[BLOB_AAD_LEN];
    nova_codec_id codec;
    uint32_t raw_length;
    size_t frame_len, got = 0;
    nova_id actual;
    int rc;

    nova_buf_reset(out);
    if (stored_len != entry->length)
        return blob_fail(NOVA_ECORRUPT, entry, what, "stored length differs from its entry");
    if (entry_check(entry, 0, 0, 0, UINT64_MAX, what) < 0)
        return blob_fail(NOVA_ECORRUPT, entry, what, "invalid entry");
    frame_len = stored_len - NOVA_TAG_LEN;
    NOVA_TRY(scratch_size(&reader->scratch, frame_len));
    NOVA_TRY(reader_select_salt(reader, salt));
    nova_nonce_from_counter(nonce, entry->offset);
    blob_aad(aad, entry->type, &entry->id);
    if (nova_aead_open(reader->aead, reader->scratch.data, nonce, aad, sizeof(aad), stored,
                       stored_len) < 0)
        return blob_fail(NOVA_ECORRUPT, entry, what,
                         "does not authenticate (wrong key, wrong place or damaged)");
    if (nova_codec_peek(reader->scratch.data, frame_len, &codec, &raw_length) < 0 ||
        raw_length != entry->raw_length)
        return blob_fail(NOVA_ECORRUPT, entry, what, "codec frame disagrees with its entry");
    NOVA_TRY(nova_buf_reserve(out, raw_length ? raw_length : 1));
    rc = nova_codec_decode(reader->codec_ctx, out->data, raw_length, &got, reader->scratch.data,
                           frame_len);
    if (rc < 0 || got != raw_length)
        return blob_fail(NOVA_ECORRUPT, entry, what, "codec frame does not decode");
    out->len = got;
    NOVA_TRY(nova_hmac_compute(reader->hmac, &actual, out->data, out->len));
    if (!nova_id_equal(&actual, &entry->id)) {
        nova_buf_reset(out);
        return blob_fail(NOVA_ECHECKSUM, entry, what, "plaintext does not hash to its id");
    }
    return 0;
}

/* ---- writer -------------------------------------------------------------------------- */

int nova_pack_writer_new(nova_pack_writer **out, const uint8_t enc_key[NOVA_KEY_LEN],
                         const nova_codec_spec *codec)
{
    nova_pack_writer *w = calloc(1, sizeof(*w));
    int rc;

    *out = NULL;
    if (!w)
        return nova_fail(NOVA_ENOMEM, "unable to allocate a pack writer");
    memcpy(w->enc_key, enc_key, NOVA_KEY_LEN);
    w->codec = *codec;
    rc = nova_codec_ctx_new(&w->codec_ctx);
    if (rc == 0)
        rc = nova_pack_writer_reset(w);
    if (rc < 0) {
        nova_pack_writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void nova_pack_writer_free(nova_pack_writer *writer)
{
    if (!writer)
        return;
    nova_codec_ctx_free(writer->codec_ctx);
    nova_aead_free(writer->aead);
    nova_buf_free(&writer->bytes);
    nova_buf_free(&writer->header_plain);
    free(writer->entries);
    nova_wipe(writer->enc_key, sizeof(writer->enc_key));
    free(writer);
}

static void writer_clear(nova_pack_writer *w)
{
    nova_buf_reset(&w->bytes);
    w->count = 0;
    w->finished = 0;
}

int nova_pack_writer_reset(nova_pack_writer *writer)
{
    writer_clear(writer);
    NOVA_TRY(nova_random_bytes(writer->salt, NOVA_SALT_LEN));
    return load_subkey(&writer->aead, writer->enc_key, writer->salt);
}

void nova_pack_writer_reset_with_salt(nova_pack_writer *writer, const uint8_t salt[NOVA_SALT_LEN])
{
    writer_clear(writer);
    memcpy(writer->salt, salt, NOVA_SALT_LEN);
    /* Only fails on an OpenSSL breakdown; then the next add fails too (finished is set). */
    if (load_subkey(&writer->aead, writer->enc_key, writer->salt) < 0)
        writer->finished = 1;
}

static int writer_reserve_entry(nova_pack_writer *w)
{
    nova_pack_entry *grown;
    size_t cap;
    if (w->count < w->capacity)
        return 0;
    cap = w->capacity ? w->capacity * 2 : 256;
    grown = realloc(w->entries, cap * sizeof(*grown));
    if (!grown)
        return nova_fail(NOVA_ENOMEM, "unable to grow a pack's entry list to %zu", cap);
    w->entries = grown;
    w->capacity = cap;
    return 0;
}

int nova_pack_writer_add(nova_pack_writer *writer, nova_blob_type type, const nova_id *id,
                         const void *raw, size_t raw_len)
{
    static const uint8_t empty[1];
    uint8_t nonce[NOVA_NONCE_LEN];
    uint8_t aad[BLOB_AAD_LEN];
    size_t bound, frame_len = 0;
    uint64_t offset = writer->bytes.len;
    uint8_t *frame;
    nova_pack_entry *e;

    if (writer->finished)
        return nova_fail(NOVA_EINVALID, "pack writer: pack already finished, reset it first");
    if (!nova_blob_type_valid((unsigned)type))
        return nova_fail(NOVA_EINVALID, "pack writer: unknown blob type %d", (int)type);
    if (raw_len > NOVA_CODEC_MAX_RAW)
        return nova_fail(NOVA_EINVALID, "pack writer: chunk of %zu bytes exceeds %u", raw_len,
                         NOVA_CODEC_MAX_RAW);
    if (writer->count >= PACK_MAX_ENTRIES)
        return nova_fail(NOVA_EINVALID, "pack writer: pack holds the most blobs it can");
    if (raw_len == 0)
        raw = empty;
    NOVA_TRY(writer_reserve_entry(writer));
    bound = nova_codec_bound(raw_len) + NOVA_TAG_LEN;
    NOVA_TRY(nova_buf_reserve(&writer->bytes, bound));
    frame = writer->bytes.data + writer->bytes.len;
    NOVA_TRY(nova_codec_encode(writer->codec_ctx, &writer->codec, frame, bound - NOVA_TAG_LEN,
                               &frame_len, raw, raw_len));
    if (offset + frame_len + NOVA_TAG_LEN > NOVA_PACK_MAX_BLOB_AREA)
        return nova_fail(NOVA_EINVALID, "pack writer: blob would end beyond %" PRIu64
                                        " bytes, finish the pack first",
                         (uint64_t)NOVA_PACK_MAX_BLOB_AREA);
    nova_nonce_from_counter(nonce, offset);
    blob_aad(aad, type, id);
    NOVA_TRY(nova_aead_seal(writer->aead, frame, nonce, aad, sizeof(aad), frame, frame_len));
    writer->bytes.len += frame_len + NOVA_TAG_LEN;
    e = &writer->entries[writer->count++];
    e->id = *id;
    e->offset = (uint32_t)offset;
    e->length = (uint32_t)(frame_len + NOVA_TAG_LEN);
    e->raw_length = (uint32_t)raw_len;
    e->type = (uint8_t)type;
    return 0;
}

size_t nova_pack_writer_count(const nova_pack_writer *writer)
{
    return writer->count;
}

uint64_t nova_pack_writer_size(const nova_pack_writer *writer)
{
    if (writer->finished)
        return 0;
    return (uint64_t)writer->bytes.len + (uint64_t)writer->count * NOVA_PACK_ENTRY_LEN +
           NOVA_TAG_LEN + NOVA_PACK_TRAILER_LEN;
}

const nova_pack_entry *nova_pack_writer_entries(const nova_pack_writer *writer, size_t *count)
{
    *count = writer->count;
    return writer->entries;
}

const uint8_t *nova_pack_writer_salt(const nova_pack_writer *writer)
{
    return writer->salt;
}

int nova_pack_writer_finish(nova_pack_writer *writer, nova_buf *out, nova_id *pack_id)
{
    uint8_t trailer[NOVA_PACK_TRAILER_LEN];
    uint8_t nonce[NOVA_NONCE_LEN];
    size_t area = writer->bytes.len;
    size_t plain_len = writer->count * NOVA_PACK_ENTRY_LEN;
    size_t header_length = plain_len + NOVA_TAG_LEN;
    nova_buf swap;

    if (writer->finished)
        return nova_fail(NOVA_EINVALID, "pack writer: pack already finished, reset it first");
    if (writer->count == 0)
        return nova_fail(NOVA_EINVALID, "pack writer: refusing to write an empty pack");
    NOVA_TRY(nova_buf_resize(&writer->header_plain, plain_len));
    for (size_t i = 0; i < writer->count; i++)
        nova_pack_entry_encode(writer->header_plain.data + i * NOVA_PACK_ENTRY_LEN,
                               &writer->entries[i]);
    trailer_encode(trailer, writer->salt, (uint32_t)header_length, (uint32_t)writer->count);
    NOVA_TRY(nova_buf_reserve(&writer->bytes, header_length + NOVA_PACK_TRAILER_LEN));
    nova_nonce_from_counter(nonce, area);
    NOVA_TRY(nova_aead_seal(writer->aead, writer->bytes.data + area, nonce, trailer,
                            sizeof(trailer), writer->header_plain.data, plain_len));
    writer->bytes.len += header_length;
    NOVA_TRY(nova_buf_append(&writer->bytes, trailer, sizeof(trailer)));
    NOVA_TRY(nova_sha256(pack_id, writer->bytes.data, writer->bytes.len));
    swap = *out;
    *out = writer->bytes;
    writer->bytes = swap;
    nova_buf_reset(&writer->bytes);
    writer->finished = 1;
    return 0;
}
