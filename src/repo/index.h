/*
 * index.h -- index files: which blobs each pack holds (private). Byte layout:
 * docs/format-packs-index.md "Index files".
 *
 * An index file is a sealed envelope (envelope.h, magic "NVIX") whose payload lists packs
 * and, for each, the entries of its header (pack.h). It is stored as "index/<64 hex>",
 * the SHA-256 of its stored bytes. A backup session writes one or more index "deltas"
 * covering the packs it uploaded; the union of all index files is the repository's index.
 *
 * Invariants: a decoded index only holds entries that pass nova_pack_entries_decode
 * (known types, sane lengths, ascending non-overlapping offsets), packs with at least one
 * entry, and counts that were checked against the payload's size before any allocation.
 */
#ifndef NOVA_REPO_INDEX_H
#define NOVA_REPO_INDEX_H

#include "common/buf.h"
#include "primitives/codec.h"
#include "primitives/crypto.h"
#include "primitives/hash.h"
#include "repo/pack.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_INDEX_MAGIC "NVIX"
/* "index/" + 64 hex. */
#define NOVA_INDEX_NAME_LEN (6 + NOVA_ID_HEX_LEN)
/* Payload bytes per pack record before its entries: pack id 32, entry count 4. */
#define NOVA_INDEX_PACK_RECORD_LEN (NOVA_ID_LEN + 4)
/* Largest payload an index file may carry (the envelope's limit). */
#define NOVA_INDEX_MAX_PAYLOAD NOVA_CODEC_MAX_RAW

/* One pack and its entries, in offset order. */
typedef struct nova_index_pack {
    nova_id pack_id;
    size_t entry_count;
    const nova_pack_entry *entries;
} nova_index_pack;

/* A decoded index file. Zero-initialise (NOVA_INDEX_INIT); packs[i].entries point into
 * `entries`, which holds every entry of the file. */
typedef struct nova_index {
    size_t pack_count;
    nova_index_pack *packs;
    size_t entry_count;
    nova_pack_entry *entries;
} nova_index;

#define NOVA_INDEX_INIT {0, NULL, 0, NULL}

/* Releases the arrays and leaves an empty index. NULL-safe. */
void nova_index_free(nova_index *index);

/* Writes "index/<64 hex>" and a NUL. */
void nova_index_storage_name(char out[NOVA_INDEX_NAME_LEN + 1], const nova_id *index_id);

/*
 * Encodes the payload (not yet sealed) for pack_count packs into out (reset first).
 * NOVA_EINVALID for a pack without entries, entries that nova_pack_entries_decode would
 * refuse, or a payload larger than NOVA_INDEX_MAX_PAYLOAD.
 */
int nova_index_encode(nova_buf *out, const nova_index_pack *packs, size_t pack_count);

/* Decodes and validates a payload into *out (which must be empty). NOVA_ECORRUPT naming
 * `what` for anything malformed. */
int nova_index_decode(nova_index *out, const void *payload, size_t payload_len,
                      const char *what);

/* Encodes and seals an index file; index_id gets the SHA-256 of the sealed bytes. */
int nova_index_seal(nova_buf *out, nova_id *index_id, const uint8_t enc_key[NOVA_KEY_LEN],
                    const nova_codec_spec *codec, const nova_index_pack *packs,
                    size_t pack_count);

/* Opens (envelope) and decodes a stored index file. Checking that the bytes hash to
 * the object's name is the caller's (nova_sha256). */
int nova_index_open(nova_index *out, const uint8_t enc_key[NOVA_KEY_LEN], const void *sealed,
                    size_t sealed_len, const char *what);

/*
 * Index writer: collects the packs of one backup session and produces index deltas.
 * Appends each pack straight into the payload, so memory is the payload itself. Finish
 * when nova_index_writer_payload_size nears a limit of your choice (a few MiB keeps
 * index files quick to fetch); add refuses to pass NOVA_INDEX_MAX_PAYLOAD.
 */
typedef struct nova_index_writer nova_index_writer;

int nova_index_writer_new(nova_index_writer **out);
void nova_index_writer_free(nova_index_writer *writer);
/* Records one pack (entries copied). NOVA_EINVALID as for nova_index_encode. */
int nova_index_writer_add_pack(nova_index_writer *writer, const nova_id *pack_id,
                               const nova_pack_entry *entries, size_t entry_count);
size_t nova_index_writer_pack_count(const nova_index_writer *writer);
size_t nova_index_writer_payload_size(const nova_index_writer *writer);
/* Seals the collected packs into out and starts an empty delta. NOVA_EINVALID when no
 * pack was added (an empty delta is never written). */
int nova_index_writer_finish(nova_index_writer *writer, nova_buf *out, nova_id *index_id,
                             const uint8_t enc_key[NOVA_KEY_LEN], const nova_codec_spec *codec);

#endif
