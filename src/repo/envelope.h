/*
 * envelope.h -- the sealed-object envelope shared by index, snapshot and lock objects
 * (private).
 *
 * Layout (all integers little-endian), see docs/FORMAT.md "Sealed objects":
 *   0  4  magic (object type, e.g. "NVIX")
 *   4  1  format version (1)
 *   5  1  flags (0; readers reject unknown bits)
 *   6  2  reserved (0)
 *   8 32  salt (random per object)
 *  40  n  AES-256-GCM ciphertext of a codec frame (codec.h) holding the payload, then the
 *         16-byte tag. Key = HKDF-SHA-256(master enc key, salt, "nova/object/v1/" magic),
 *         nonce = counter 0, AAD = bytes 0..40.
 * A fresh salt per object gives each object its own subkey, so nonce 0 is never reused.
 */
#ifndef NOVA_REPO_ENVELOPE_H
#define NOVA_REPO_ENVELOPE_H

#include "common/buf.h"
#include "primitives/codec.h"
#include "primitives/crypto.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_ENVELOPE_HEADER_LEN 40
#define NOVA_ENVELOPE_VERSION 1
/* Largest payload an envelope may carry (decoders refuse more). */
#define NOVA_ENVELOPE_MAX_PAYLOAD NOVA_CODEC_MAX_RAW

/* Seals payload into out (appended after reset). codec chooses the compression (NULL =
 * zstd:3). */
int nova_envelope_seal(nova_buf *out, const char magic[4], const uint8_t master_enc_key[NOVA_KEY_LEN],
                       const nova_codec_spec *codec, const void *payload, size_t payload_len);

/* Opens an envelope of the given magic into out (appended after reset). Wrong magic,
 * version, flags, a truncated object or any altered byte give NOVA_ECORRUPT; `what`
 * names the object in the error message. */
int nova_envelope_open(nova_buf *out, const char magic[4], const uint8_t master_enc_key[NOVA_KEY_LEN],
                       const void *sealed, size_t sealed_len, const char *what);

/* nova_envelope_seal with a caller-chosen salt instead of a random one. Only for
 * known-answer tests and corpus generation: reusing a salt under one key reuses a
 * (subkey, nonce) pair, which breaks AES-GCM. Production code must call
 * nova_envelope_seal. */
int nova_envelope_seal_with_salt(nova_buf *out, const char magic[4],
                                 const uint8_t master_enc_key[NOVA_KEY_LEN],
                                 const nova_codec_spec *codec, const uint8_t salt[NOVA_SALT_LEN],
                                 const void *payload, size_t payload_len);

#endif
