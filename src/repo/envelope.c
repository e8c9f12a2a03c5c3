/*
 * envelope.c -- seals and opens the envelope around index, snapshot and lock objects.
 *
 * Invariants: every sealed object has its own random 32-byte salt, hence its own
 * AES-256-GCM subkey, so the fixed nonce 0 is used once per subkey. The 40-byte header is
 * the AAD, so no header byte can change without the tag failing. Subkeys are wiped
 * before return. The opener checks the header before any crypto and the codec frame
 * after authentication, and never writes past the sizes it computed itself.
 */
#include "repo/envelope.h"

#include "common/bytes.h"
#include "common/err.h"

#include <string.h>

#define ENVELOPE_INFO_PREFIX "nova/object/v1/"
#define ENVELOPE_INFO_PREFIX_LEN (sizeof(ENVELOPE_INFO_PREFIX) - 1)
#define ENVELOPE_MIN_LEN (NOVA_ENVELOPE_HEADER_LEN + NOVA_CODEC_HEADER_LEN + NOVA_TAG_LEN)

static const nova_codec_spec default_codec = {NOVA_CODEC_ZSTD, 3};

/* Subkey for one object: HKDF-SHA-256(master, salt, "nova/object/v1/" || magic). */
static int derive_object_key(uint8_t key[NOVA_KEY_LEN], const uint8_t master[NOVA_KEY_LEN],
                             const uint8_t salt[NOVA_SALT_LEN], const char magic[4])
{
    uint8_t info[ENVELOPE_INFO_PREFIX_LEN + 4];

    memcpy(info, ENVELOPE_INFO_PREFIX, ENVELOPE_INFO_PREFIX_LEN);
    memcpy(info + ENVELOPE_INFO_PREFIX_LEN, magic, 4);
    return nova_hkdf_sha256(key, NOVA_KEY_LEN, master, NOVA_KEY_LEN, salt, NOVA_SALT_LEN, info,
                            sizeof(info));
}

static void write_header(uint8_t *header, const char magic[4], const uint8_t salt[NOVA_SALT_LEN])
{
    memcpy(header, magic, 4);
    header[4] = NOVA_ENVELOPE_VERSION;
    header[5] = 0; /* flags */
    nova_put_le16(header + 6, 0);
    memcpy(header + 8, salt, NOVA_SALT_LEN);
}

/* Encrypts buf[0..header+frame) in place, appending the tag; buf has room for it. */
static int seal_in_place(uint8_t *object, size_t frame_len, const uint8_t master[NOVA_KEY_LEN])
{
    uint8_t key[NOVA_KEY_LEN];
    uint8_t nonce[NOVA_NONCE_LEN];
    nova_aead *aead = NULL;
    int rc;

    rc = derive_object_key(key, master, object + 8, (const char *)object);
    if (rc < 0)
        goto out;
    rc = nova_aead_new(&aead, key);
    if (rc < 0)
        goto out;
    nova_nonce_from_counter(nonce, 0);
    rc = nova_aead_seal(aead, object + NOVA_ENVELOPE_HEADER_LEN, nonce, object,
                        NOVA_ENVELOPE_HEADER_LEN, object + NOVA_ENVELOPE_HEADER_LEN, frame_len);
out:
    nova_aead_free(aead);
    nova_wipe(key, sizeof(key));
    return rc;
}

int nova_envelope_seal_with_salt(nova_buf *out, const char magic[4],
                                 const uint8_t master_enc_key[NOVA_KEY_LEN],
                                 const nova_codec_spec *codec, const uint8_t salt[NOVA_SALT_LEN],
                                 const void *payload, size_t payload_len)
{
    nova_codec_ctx *ctx = NULL;
    size_t bound, frame_len = 0;
    int rc;

    nova_buf_reset(out);
    if (!magic || !master_enc_key || !salt || (!payload && payload_len > 0))
        return nova_fail(NOVA_EINVALID, "envelope: missing argument");
    if (payload_len > NOVA_ENVELOPE_MAX_PAYLOAD)
        return nova_fail(NOVA_EINVALID, "envelope '%.4s': payload of %zu bytes exceeds %u", magic,
                         payload_len, (unsigned)NOVA_ENVELOPE_MAX_PAYLOAD);
    if (!codec)
        codec = &default_codec;
    bound = nova_codec_bound(payload_len);
    rc = nova_buf_reserve(out, NOVA_ENVELOPE_HEADER_LEN + bound + NOVA_TAG_LEN);
    if (rc < 0)
        goto out;
    rc = nova_codec_ctx_new(&ctx);
    if (rc < 0)
        goto out;
    write_header(out->data, magic, salt);
    rc = nova_codec_encode(ctx, codec, out->data + NOVA_ENVELOPE_HEADER_LEN, bound, &frame_len,
                           payload_len ? payload : "", payload_len);
    if (rc < 0)
        goto out;
    rc = seal_in_place(out->data, frame_len, master_enc_key);
    if (rc < 0)
        goto out;
    out->len = NOVA_ENVELOPE_HEADER_LEN + frame_len + NOVA_TAG_LEN;
out:
    nova_codec_ctx_free(ctx);
    if (rc < 0)
        nova_buf_reset(out);
    return rc;
}

int nova_envelope_seal(nova_buf *out, const char magic[4], const uint8_t master_enc_key[NOVA_KEY_LEN],
                       const nova_codec_spec *codec, const void *payload, size_t payload_len)
{
    uint8_t salt[NOVA_SALT_LEN];

    nova_buf_reset(out);
    NOVA_TRY(nova_random_bytes(salt, sizeof(salt)));
    return nova_envelope_seal_with_salt(out, magic, master_enc_key, codec, salt, payload,
                                        payload_len);
}

static int check_header(const uint8_t *sealed, size_t sealed_len, const char magic[4],
                        const char *what)
{
    if (sealed_len < ENVELOPE_MIN_LEN)
        return nova_fail(NOVA_ECORRUPT, "%s: sealed object truncated (%zu bytes, at least %zu)",
                         what, sealed_len, (size_t)ENVELOPE_MIN_LEN);
    if (memcmp(sealed, magic, 4) != 0)
        return nova_fail(NOVA_ECORRUPT, "%s: wrong object magic (expected '%.4s')", what, magic);
    if (sealed[4] != NOVA_ENVELOPE_VERSION)
        return nova_fail(NOVA_ECORRUPT, "%s: unknown envelope version %u", what,
                         (unsigned)sealed[4]);
    if (sealed[5] != 0)
        return nova_fail(NOVA_ECORRUPT, "%s: unknown envelope flags 0x%02x", what,
                         (unsigned)sealed[5]);
    if (nova_get_le16(sealed + 6) != 0)
        return nova_fail(NOVA_ECORRUPT, "%s: reserved envelope bytes are not zero", what);
    return 0;
}

/* Authenticates and decrypts the codec frame of a header-checked object into frame. */
static int open_frame(nova_buf *frame, const uint8_t *sealed, size_t sealed_len,
                      const uint8_t master[NOVA_KEY_LEN], const char *what)
{
    uint8_t key[NOVA_KEY_LEN];
    uint8_t nonce[NOVA_NONCE_LEN];
    size_t body_len = sealed_len - NOVA_ENVELOPE_HEADER_LEN;
    nova_aead *aead = NULL;
    int rc;

    rc = nova_buf_resize(frame, body_len - NOVA_TAG_LEN);
    if (rc < 0)
        goto out;
    rc = derive_object_key(key, master, sealed + 8, (const char *)sealed);
    if (rc < 0)
        goto out;
    rc = nova_aead_new(&aead, key);
    if (rc < 0)
        goto out;
    nova_nonce_from_counter(nonce, 0);
    rc = nova_aead_open(aead, frame->data, nonce, sealed, NOVA_ENVELOPE_HEADER_LEN,
                        sealed + NOVA_ENVELOPE_HEADER_LEN, body_len);
    if (rc == NOVA_ECORRUPT)
        rc = nova_fail(NOVA_ECORRUPT, "%s: authentication failed (altered object or wrong key)",
                       what);
out:
    nova_aead_free(aead);
    nova_wipe(key, sizeof(key));
    return rc;
}

static int decode_frame(nova_buf *out, const nova_buf *frame, const char *what)
{
    nova_codec_ctx *ctx = NULL;
    nova_codec_id id;
    uint32_t raw_len = 0;
    size_t got = 0;
    int rc;

    rc = nova_codec_peek(frame->data, frame->len, &id, &raw_len);
    if (rc == NOVA_ECORRUPT || (rc == 0 && raw_len > NOVA_ENVELOPE_MAX_PAYLOAD)) {
        rc = nova_fail(NOVA_ECORRUPT, "%s: invalid compression frame", what);
        goto out;
    }
    if (rc < 0)
        goto out;
    rc = nova_buf_reserve(out, raw_len ? raw_len : 1);
    if (rc < 0)
        goto out;
    rc = nova_codec_ctx_new(&ctx);
    if (rc < 0)
        goto out;
    rc = nova_codec_decode(ctx, out->data, raw_len, &got, frame->data, frame->len);
    if (rc == 0 && got != raw_len)
        rc = NOVA_ECORRUPT;
    if (rc == NOVA_ECORRUPT) {
        rc = nova_fail(NOVA_ECORRUPT, "%s: payload does not decompress", what);
        goto out;
    }
    if (rc < 0)
        goto out;
    out->len = got;
out:
    nova_codec_ctx_free(ctx);
    return rc;
}

int nova_envelope_open(nova_buf *out, const char magic[4], const uint8_t master_enc_key[NOVA_KEY_LEN],
                       const void *sealed, size_t sealed_len, const char *what)
{
    nova_buf frame = NOVA_BUF_INIT;
    int rc;

    nova_buf_reset(out);
    if (!what)
        what = "sealed object";
    if (!magic || !master_enc_key || (!sealed && sealed_len > 0))
        return nova_fail(NOVA_EINVALID, "%s: missing argument", what);
    rc = check_header(sealed, sealed_len, magic, what);
    if (rc < 0)
        goto out;
    rc = open_frame(&frame, sealed, sealed_len, master_enc_key, what);
    if (rc < 0)
        goto out;
    rc = decode_frame(out, &frame, what);
out:
    nova_buf_free(&frame);
    if (rc < 0)
        nova_buf_reset(out);
    return rc;
}
