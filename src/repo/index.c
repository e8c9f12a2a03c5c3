/*
 * index.c -- index file payload encoder/decoder, sealing, and the per-session writer.
 *
 * Payload (little-endian): LE32 pack count, then per pack: pack id (32), LE32 entry
 * count (>= 1), entries of NOVA_PACK_ENTRY_LEN bytes (pack.h). The decoder makes one
 * pass that checks every count against the bytes that remain (so a lying count can never
 * make it allocate more than the payload justifies), allocates exactly, then decodes.
 */
#include "repo/index.h"

#include "common/bytes.h"
#include "common/err.h"
#include "repo/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The smallest pack record: id, count, one entry. */
#define MIN_PACK_RECORD (NOVA_INDEX_PACK_RECORD_LEN + NOVA_PACK_ENTRY_LEN)

struct nova_index_writer {
    nova_buf payload; /* LE32 count placeholder, then the pack records */
    size_t pack_count;
};

void nova_index_free(nova_index *index)
{
    if (!index)
        return;
    free(index->packs);
    free(index->entries);
    memset(index, 0, sizeof(*index));
}

void nova_index_storage_name(char out[NOVA_INDEX_NAME_LEN + 1], const nova_id *index_id)
{
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_id_to_hex(index_id, hex);
    snprintf(out, NOVA_INDEX_NAME_LEN + 1, "index/%s", hex);
}

/* ---- encoding ----------------------------------------------------------------------- */

/* Checks one pack's entries for encoding: what a decoder would accept. */
static int pack_record_check(const nova_id *pack_id, const nova_pack_entry *entries,
                             size_t entry_count)
{
    char hex[NOVA_ID_HEX_LEN + 1];
    nova_id_to_hex(pack_id, hex);
    if (entry_count == 0)
        return nova_fail(NOVA_EINVALID, "index: pack %s has no entries", hex);
    if (entry_count > UINT32_MAX)
        return nova_fail(NOVA_EINVALID, "index: pack %s has too many entries", hex);
    if (nova_pack_entries_check(entries, entry_count, NOVA_PACK_MAX_BLOB_AREA, 0, hex) < 0) {
        char why[NOVA_ERROR_MESSAGE_MAX];
        snprintf(why, sizeof(why), "%s", nova_error_last()->message);
        return nova_fail(NOVA_EINVALID, "index: %s", why);
    }
    return 0;
}

static size_t pack_record_len(size_t entry_count)
{
    return NOVA_INDEX_PACK_RECORD_LEN + entry_count * NOVA_PACK_ENTRY_LEN;
}

/* Appends one pack record; the caller checked it and the size limit. */
static int pack_record_append(nova_buf *out, const nova_id *pack_id,
                              const nova_pack_entry *entries, size_t entry_count)
{
    uint8_t *p;
    size_t start = out->len;

    NOVA_TRY(nova_buf_resize(out, start + pack_record_len(entry_count)));
    p = out->data + start;
    memcpy(p, pack_id->bytes, NOVA_ID_LEN);
    nova_put_le32(p + NOVA_ID_LEN, (uint32_t)entry_count);
    p += NOVA_INDEX_PACK_RECORD_LEN;
    for (size_t i = 0; i < entry_count; i++, p += NOVA_PACK_ENTRY_LEN)
        nova_pack_entry_encode(p, &entries[i]);
    return 0;
}

/* Fails when a payload of `len` bytes plus `extra` would pass the limit. */
static int payload_room(size_t len, size_t extra)
{
    if (extra > NOVA_INDEX_MAX_PAYLOAD || len > NOVA_INDEX_MAX_PAYLOAD - extra)
        return nova_fail(NOVA_EINVALID, "index: payload would exceed %u bytes; write a delta first",
                         (unsigned)NOVA_INDEX_MAX_PAYLOAD);
    return 0;
}

int nova_index_encode(nova_buf *out, const nova_index_pack *packs, size_t pack_count)
{
    nova_buf_reset(out);
    if (pack_count > UINT32_MAX)
        return nova_fail(NOVA_EINVALID, "index: %zu packs are too many", pack_count);
    NOVA_TRY(nova_buf_resize(out, 4));
    nova_put_le32(out->data, (uint32_t)pack_count);
    for (size_t i = 0; i < pack_count; i++) {
        const nova_index_pack *p = &packs[i];
        NOVA_TRY(pack_record_check(&p->pack_id, p->entries, p->entry_count));
        if (p->entry_count > (NOVA_INDEX_MAX_PAYLOAD - NOVA_INDEX_PACK_RECORD_LEN) / NOVA_PACK_ENTRY_LEN)
            return payload_room(out->len, SIZE_MAX);
        NOVA_TRY(payload_room(out->len, pack_record_len(p->entry_count)));
        NOVA_TRY(pack_record_append(out, &p->pack_id, p->entries, p->entry_count));
    }
    return 0;
}

/* ---- decoding ----------------------------------------------------------------------- */

/* First pass: checks the structure against the payload's bounds, totals the entries. */
static int payload_scan(size_t *pack_count, size_t *entry_total, const uint8_t *payload,
                        size_t payload_len, const char *what)
{
    nova_reader r = nova_reader_make(payload, payload_len);
    uint32_t count = nova_read_le32(&r);
    size_t total = 0;

    if (r.failed)
        return nova_fail(NOVA_ECORRUPT, "index '%s': payload of %zu bytes is truncated", what,
                         payload_len);
    if (count > r.left / MIN_PACK_RECORD)
        return nova_fail(NOVA_ECORRUPT, "index '%s': %u packs cannot fit in %zu bytes", what,
                         (unsigned)count, payload_len);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t entries;
        nova_read_bytes(&r, NOVA_ID_LEN);
        entries = nova_read_le32(&r);
        if (r.failed)
            return nova_fail(NOVA_ECORRUPT, "index '%s': pack record %u truncated", what,
                             (unsigned)i);
        if (entries == 0)
            return nova_fail(NOVA_ECORRUPT, "index '%s': pack record %u has no entries", what,
                             (unsigned)i);
        if (entries > r.left / NOVA_PACK_ENTRY_LEN)
            return nova_fail(NOVA_ECORRUPT, "index '%s': pack record %u claims %u entries, beyond the payload",
                             what, (unsigned)i, (unsigned)entries);
        nova_read_bytes(&r, (size_t)entries * NOVA_PACK_ENTRY_LEN);
        total += entries;
    }
    if (r.left != 0)
        return nova_fail(NOVA_ECORRUPT, "index '%s': %zu unexpected bytes after the last pack",
                         what, r.left);
    *pack_count = count;
    *entry_total = total;
    return 0;
}

/* Second pass: fills the arrays the first pass sized. */
static int payload_fill(nova_index *out, const uint8_t *payload, size_t payload_len,
                        const char *what)
{
    nova_reader r = nova_reader_make(payload, payload_len);
    size_t next_entry = 0;

    nova_read_le32(&r);
    for (size_t i = 0; i < out->pack_count; i++) {
        nova_index_pack *p = &out->packs[i];
        nova_pack_entry *entries = out->entries + next_entry;
        char label[NOVA_ID_HEX_LEN + 64];
        char hex[NOVA_ID_HEX_LEN + 1];
        size_t n;

        nova_read_copy(&r, p->pack_id.bytes, NOVA_ID_LEN);
        n = nova_read_le32(&r);
        nova_id_to_hex(&p->pack_id, hex);
        snprintf(label, sizeof(label), "index '%.24s' pack %.16s", what, hex);
        NOVA_TRY(nova_pack_entries_decode(entries, n, nova_read_bytes(&r, n * NOVA_PACK_ENTRY_LEN),
                                          n * NOVA_PACK_ENTRY_LEN, NOVA_PACK_MAX_BLOB_AREA, 0,
                                          label));
        p->entries = entries;
        p->entry_count = n;
        next_entry += n;
    }
    return 0;
}

int nova_index_decode(nova_index *out, const void *payload, size_t payload_len, const char *what)
{
    size_t pack_count = 0, entry_total = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!payload && payload_len > 0)
        return nova_fail(NOVA_EINVALID, "index '%s': missing payload", what);
    NOVA_TRY(payload_scan(&pack_count, &entry_total, payload, payload_len, what));
    if (pack_count == 0)
        return 0;
    out->packs = calloc(pack_count, sizeof(*out->packs));
    out->entries = calloc(entry_total, sizeof(*out->entries));
    if (!out->packs || !out->entries) {
        nova_index_free(out);
        return nova_fail(NOVA_ENOMEM, "index '%s': unable to allocate %zu entries", what,
                         entry_total);
    }
    out->pack_count = pack_count;
    out->entry_count = entry_total;
    rc = payload_fill(out, payload, payload_len, what);
    if (rc < 0)
        nova_index_free(out);
    return rc;
}

/* ---- sealed files ------------------------------------------------------------------- */

/* Seals payload into out and names it. */
static int seal_payload(nova_buf *out, nova_id *index_id, const uint8_t enc_key[NOVA_KEY_LEN],
                        const nova_codec_spec *codec, const nova_buf *payload)
{
    NOVA_TRY(nova_envelope_seal(out, NOVA_INDEX_MAGIC, enc_key, codec, payload->data,
                                payload->len));
    return nova_sha256(index_id, out->data, out->len);
}

int nova_index_seal(nova_buf *out, nova_id *index_id, const uint8_t enc_key[NOVA_KEY_LEN],
                    const nova_codec_spec *codec, const nova_index_pack *packs,
                    size_t pack_count)
{
    nova_buf payload = NOVA_BUF_INIT;
    int rc = nova_index_encode(&payload, packs, pack_count);
    if (rc == 0)
        rc = seal_payload(out, index_id, enc_key, codec, &payload);
    nova_buf_free(&payload);
    return rc;
}

int nova_index_open(nova_index *out, const uint8_t enc_key[NOVA_KEY_LEN], const void *sealed,
                    size_t sealed_len, const char *what)
{
    nova_buf payload = NOVA_BUF_INIT;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = nova_envelope_open(&payload, NOVA_INDEX_MAGIC, enc_key, sealed, sealed_len, what);
    if (rc == 0)
        rc = nova_index_decode(out, payload.data, payload.len, what);
    nova_buf_free(&payload);
    return rc;
}

/* ---- writer ------------------------------------------------------------------------- */

static int writer_start(nova_index_writer *w)
{
    static const uint8_t zero_count[4];
    nova_buf_reset(&w->payload);
    w->pack_count = 0;
    return nova_buf_append(&w->payload, zero_count, sizeof(zero_count));
}

int nova_index_writer_new(nova_index_writer **out)
{
    nova_index_writer *w = calloc(1, sizeof(*w));
    *out = NULL;
    if (!w)
        return nova_fail(NOVA_ENOMEM, "unable to allocate an index writer");
    if (writer_start(w) < 0) {
        nova_index_writer_free(w);
        return NOVA_ENOMEM;
    }
    *out = w;
    return 0;
}

void nova_index_writer_free(nova_index_writer *writer)
{
    if (!writer)
        return;
    nova_buf_free(&writer->payload);
    free(writer);
}

int nova_index_writer_add_pack(nova_index_writer *writer, const nova_id *pack_id,
                               const nova_pack_entry *entries, size_t entry_count)
{
    if (writer->pack_count >= UINT32_MAX)
        return nova_fail(NOVA_EINVALID, "index writer: too many packs in one delta");
    NOVA_TRY(pack_record_check(pack_id, entries, entry_count));
    if (entry_count > (NOVA_INDEX_MAX_PAYLOAD - NOVA_INDEX_PACK_RECORD_LEN) / NOVA_PACK_ENTRY_LEN)
        return payload_room(writer->payload.len, SIZE_MAX);
    NOVA_TRY(payload_room(writer->payload.len, pack_record_len(entry_count)));
    NOVA_TRY(pack_record_append(&writer->payload, pack_id, entries, entry_count));
    writer->pack_count++;
    return 0;
}

size_t nova_index_writer_pack_count(const nova_index_writer *writer)
{
    return writer->pack_count;
}

size_t nova_index_writer_payload_size(const nova_index_writer *writer)
{
    return writer->payload.len;
}

int nova_index_writer_finish(nova_index_writer *writer, nova_buf *out, nova_id *index_id,
                             const uint8_t enc_key[NOVA_KEY_LEN], const nova_codec_spec *codec)
{
    if (writer->pack_count == 0)
        return nova_fail(NOVA_EINVALID, "index writer: no packs to write");
    nova_put_le32(writer->payload.data, (uint32_t)writer->pack_count);
    NOVA_TRY(seal_payload(out, index_id, enc_key, codec, &writer->payload));
    return writer_start(writer);
}
