/*
 * pack.h -- pack files: encrypted blobs laid back to back, an encrypted header listing
 * them, and a fixed plaintext trailer (private). Byte layout: docs/format-packs-index.md.
 *
 * Invariants a pack keeps:
 *   - every blob is AES-256-GCM sealed under the pack subkey HKDF-SHA-256(master enc key,
 *     pack salt, "nova/pack/v1") with nonce = the blob's offset in the pack and
 *     AAD = blob type || chunk id, so a blob moved to another offset, another pack or
 *     another id fails to open;
 *   - the header is sealed under the same subkey with nonce = length of the blob area
 *     (never the offset of a blob) and AAD = the trailer, so no (key, nonce) repeats and
 *     the trailer cannot be altered either;
 *   - header entries are in offset order and tile the blob area exactly, from offset 0;
 *   - a pack's name is the SHA-256 of all its bytes, so anyone can detect bit rot
 *     without the key.
 * Readers validate everything before they allocate or index with a decoded value.
 *
 * Thread safety: writers and readers hold per-thread state (codec, cipher and HMAC
 * contexts); use one per thread. The free-standing functions are thread-safe.
 */
#ifndef NOVA_REPO_PACK_H
#define NOVA_REPO_PACK_H

#include "common/buf.h"
#include "primitives/codec.h"
#include "primitives/crypto.h"
#include "primitives/hash.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_PACK_VERSION 1
#define NOVA_PACK_MAGIC "NVPK"
#define NOVA_PACK_KDF_INFO "nova/pack/v1"

/* Trailer: salt 32, header length 4, entry count 4, version 1, magic 4. */
#define NOVA_PACK_TRAILER_LEN 45
/* One encoded entry: type 1, chunk id 32, offset 4, stored length 4, raw length 4. */
#define NOVA_PACK_ENTRY_LEN 45
/* Smallest sealed blob: an empty codec frame plus the GCM tag. */
#define NOVA_PACK_MIN_BLOB_LEN (NOVA_CODEC_HEADER_LEN + NOVA_TAG_LEN)
/* Offsets are 32-bit: the blob area of a pack ends at or before 4 GiB - 1. */
#define NOVA_PACK_MAX_BLOB_AREA UINT32_MAX
/* "data/" + 2 hex + "/" + 64 hex. */
#define NOVA_PACK_NAME_LEN (5 + 2 + 1 + NOVA_ID_HEX_LEN)

typedef enum nova_blob_type {
    NOVA_BLOB_DATA = 1, /* a chunk of file content */
    NOVA_BLOB_TREE = 2, /* directory metadata */
} nova_blob_type;

/* 1 for a type this version knows. */
int nova_blob_type_valid(unsigned type);

/* Where one blob lives in its pack. The same record appears in pack headers and in
 * index files. */
typedef struct nova_pack_entry {
    nova_id id;          /* chunk id: HMAC-SHA-256 of the plaintext under the id key */
    uint32_t offset;     /* from the start of the pack */
    uint32_t length;     /* stored bytes: codec frame + GCM tag */
    uint32_t raw_length; /* plaintext bytes */
    uint8_t type;        /* nova_blob_type */
} nova_pack_entry;

/* Writes "data/<first 2 hex>/<64 hex>" and a NUL. */
void nova_pack_storage_name(char out[NOVA_PACK_NAME_LEN + 1], const nova_id *pack_id);

/* Checks that bytes hash to pack_id (no key needed); NOVA_ECHECKSUM otherwise. */
int nova_pack_verify_id(const nova_id *pack_id, const void *bytes, size_t len, const char *what);

/* ---- entries (shared with index files) ---- */

void nova_pack_entry_encode(uint8_t out[NOVA_PACK_ENTRY_LEN], const nova_pack_entry *entry);

/* Validates decoded entries; the rules are those of nova_pack_entries_decode below. */
int nova_pack_entries_check(const nova_pack_entry *entries, size_t count, uint64_t area_end,
                            int tiled, const char *what);

/*
 * Decodes `count` entries from exactly count * NOVA_PACK_ENTRY_LEN bytes of `encoded`
 * into out and validates them: known type, length >= NOVA_PACK_MIN_BLOB_LEN, raw length
 * <= NOVA_CODEC_MAX_RAW, length <= raw length + NOVA_PACK_MIN_BLOB_LEN (a codec never
 * expands by more than its header), offsets strictly ascending without overlap, and every
 * blob ending at or before area_end. With `tiled` set, the entries must also start at 0
 * and leave no gap, ending exactly at area_end (a pack header); index files leave it
 * clear. NOVA_ECORRUPT naming `what` otherwise.
 */
int nova_pack_entries_decode(nova_pack_entry *out, size_t count, const void *encoded,
                             size_t encoded_len, uint64_t area_end, int tiled, const char *what);

/* ---- reading ---- */

typedef struct nova_pack_trailer {
    uint8_t salt[NOVA_SALT_LEN];
    uint32_t header_length;    /* sealed header, tag included */
    uint32_t entry_count;      /* >= 1 */
    uint64_t blob_area_length; /* the blobs occupy [0, blob_area_length) */
    uint64_t tail_length;      /* header + trailer: the bytes to fetch from the pack's end */
} nova_pack_trailer;

/*
 * Parses the trailer of a pack of pack_size bytes from `tail`, which holds the pack's
 * last tail_len bytes (at least NOVA_PACK_TRAILER_LEN of them, or the whole pack when it
 * is smaller). Needs no key. Checks magic, version, entry count >= 1, header length ==
 * count * NOVA_PACK_ENTRY_LEN + NOVA_TAG_LEN, room for the header and for count minimal
 * blobs, and a blob area within NOVA_PACK_MAX_BLOB_AREA. NOVA_ECORRUPT (or NOVA_EVERSION)
 * naming `what`; NOVA_EINVALID when tail_len is too short for a pack that is large enough.
 * Reading protocol: fetch the last NOVA_PACK_TRAILER_LEN bytes (or any larger tail), parse,
 * then make sure tail_len >= trailer.tail_length before nova_pack_reader_read_header.
 */
int nova_pack_trailer_parse(nova_pack_trailer *out, uint64_t pack_size, const void *tail,
                            size_t tail_len, const char *what);

/* A decoded pack header. Zero-initialise; reading into it again reuses the allocation. */
typedef struct nova_pack_header {
    nova_pack_trailer trailer;
    size_t count;
    nova_pack_entry *entries; /* count entries in offset order */
    size_t capacity;
} nova_pack_header;

#define NOVA_PACK_HEADER_INIT {{{0}, 0, 0, 0, 0}, 0, NULL, 0}

void nova_pack_header_free(nova_pack_header *header);

typedef struct nova_pack_reader nova_pack_reader;

/* enc_key derives the pack subkeys; id_key re-hashes plaintext to check chunk ids. */
int nova_pack_reader_new(nova_pack_reader **out, const uint8_t enc_key[NOVA_KEY_LEN],
                         const uint8_t id_key[NOVA_KEY_LEN]);
void nova_pack_reader_free(nova_pack_reader *reader);

/*
 * Parses the trailer and decrypts and validates the header from the pack's last tail_len
 * bytes (the whole pack works too). A wrong key or any altered byte of header or trailer
 * gives NOVA_ECORRUPT; NOVA_EINVALID when tail_len < the tail the trailer asks for.
 */
int nova_pack_reader_read_header(nova_pack_reader *reader, nova_pack_header *header,
                                 uint64_t pack_size, const void *tail, size_t tail_len,
                                 const char *what);

/*
 * Opens one blob: `stored` is the entry->length bytes at entry->offset of the pack with
 * this salt. Verifies the GCM tag (NOVA_ECORRUPT), decodes the codec frame and checks its
 * raw length (NOVA_ECORRUPT), then re-hashes the plaintext with the id key and compares it
 * with entry->id (NOVA_ECHECKSUM). On success `out` holds exactly the plaintext (reset
 * first). The subkey of the last salt is cached, so reading a whole pack derives it once.
 */
int nova_pack_reader_open_blob(nova_pack_reader *reader, nova_buf *out,
                               const uint8_t salt[NOVA_SALT_LEN], const nova_pack_entry *entry,
                               const void *stored, size_t stored_len, const char *what);

/* ---- writing ---- */

typedef struct nova_pack_writer nova_pack_writer;

/* A writer ready for its first pack (a fresh random salt drawn). */
int nova_pack_writer_new(nova_pack_writer **out, const uint8_t enc_key[NOVA_KEY_LEN],
                         const nova_codec_spec *codec);
void nova_pack_writer_free(nova_pack_writer *writer);

/*
 * Compresses and seals raw[0..raw_len) as the next blob. raw_len <= NOVA_CODEC_MAX_RAW.
 * The id is trusted (the caller computed it with the id key). Allocates nothing once the
 * writer's buffers have grown to a pack's size. NOVA_EINVALID when the pack was finished
 * or the blob would end beyond NOVA_PACK_MAX_BLOB_AREA (finish the pack first).
 */
int nova_pack_writer_add(nova_pack_writer *writer, nova_blob_type type, const nova_id *id,
                         const void *raw, size_t raw_len);

/* Number of blobs added so far. */
size_t nova_pack_writer_count(const nova_pack_writer *writer);
/* Size the pack would have if finished now: blobs, header and trailer (0 once finished). */
uint64_t nova_pack_writer_size(const nova_pack_writer *writer);
/* The entries of the blobs added so far (valid until the next add or reset). */
const nova_pack_entry *nova_pack_writer_entries(const nova_pack_writer *writer, size_t *count);
/* The salt of the current pack. */
const uint8_t *nova_pack_writer_salt(const nova_pack_writer *writer);

/*
 * Seals the header, appends the trailer and hands the finished pack to the caller by
 * swapping buffers: `out` receives the pack's bytes and its previous allocation is
 * recycled by the writer (so alternating two buffers allocates nothing). pack_id gets the
 * SHA-256 of the bytes. Entries stay readable until reset. NOVA_EINVALID for an empty or
 * already finished pack.
 */
int nova_pack_writer_finish(nova_pack_writer *writer, nova_buf *out, nova_id *pack_id);

/* Starts a new pack with a fresh random salt, keeping the allocations. */
int nova_pack_writer_reset(nova_pack_writer *writer);

/* Tests and known-answer vectors only: starts a new pack with a chosen salt. Reusing a
 * salt with the same key reuses nonces; never call this outside tests. */
void nova_pack_writer_reset_with_salt(nova_pack_writer *writer, const uint8_t salt[NOVA_SALT_LEN]);

#endif
