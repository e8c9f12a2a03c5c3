/*
 * hash.c -- SHA-256, HMAC-SHA-256 and hex ids on top of OpenSSL 3's EVP interfaces.
 *
 * Invariants:
 *  - The SHA-256 implementation is fetched once per process (pthread_once) and shared;
 *    the fetched object is never freed, so no hot path pays for a provider look-up.
 *  - A nova_hmac keeps an EVP_MAC_CTX whose key is set once; each message re-initialises
 *    it with a NULL key, which OpenSSL 3 implements as "restore the keyed state", so the
 *    per-message cost is two digest-state copies, independent of the key length.
 *  - Every OpenSSL failure becomes NOVA_ECRYPTO with a message naming the operation.
 */
#include "primitives/hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common/err.h"

struct nova_sha256_stream {
    EVP_MD_CTX *md_ctx;
    int started; /* 1 once EVP_DigestInit_ex succeeded since the last final */
};

struct nova_hmac {
    EVP_MAC_CTX *mac_ctx;
};

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void sha256_fetch_once(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_impl(void)
{
    pthread_once(&sha256_once, sha256_fetch_once);
    return sha256_md;
}

/* ---- ids and hex -------------------------------------------------------------------- */

int nova_id_equal(const nova_id *a, const nova_id *b)
{
    return memcmp(a->bytes, b->bytes, NOVA_ID_LEN) == 0;
}

void nova_hex_encode(char *out, const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

static int hex_digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int nova_hex_decode(void *out, size_t out_len, const char *hex, size_t hex_len)
{
    uint8_t *p = out;
    if (hex_len != 2 * out_len)
        return nova_fail(NOVA_EINVALID, "hex string of %zu digits: expected %zu", hex_len,
                         2 * out_len);
    for (size_t i = 0; i < out_len; i++) {
        int hi = hex_digit_value(hex[2 * i]);
        int lo = hex_digit_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return nova_fail(NOVA_EINVALID, "hex string: invalid digit at offset %zu",
                             hi < 0 ? 2 * i : 2 * i + 1);
        p[i] = (uint8_t)((hi << 4) | lo);
    }
    return 0;
}

void nova_id_to_hex(const nova_id *id, char out[NOVA_ID_HEX_LEN + 1])
{
    nova_hex_encode(out, id->bytes, NOVA_ID_LEN);
}

int nova_id_from_hex(nova_id *out, const char *hex)
{
    size_t len;
    if (!hex)
        return nova_fail(NOVA_EINVALID, "id: missing hex text");
    len = strnlen(hex, NOVA_ID_HEX_LEN + 1);
    if (len != NOVA_ID_HEX_LEN)
        return nova_fail(NOVA_EINVALID, "id '%.70s': expected %d hex digits", hex,
                         NOVA_ID_HEX_LEN);
    return nova_hex_decode(out->bytes, NOVA_ID_LEN, hex, len);
}

/* ---- SHA-256 ------------------------------------------------------------------------ */

int nova_sha256(nova_id *out, const void *data, size_t len)
{
    const EVP_MD *md = sha256_impl();
    unsigned int out_len = 0;
    if (!md)
        return nova_fail(NOVA_ECRYPTO, "sha-256: digest unavailable in openssl");
    if (EVP_Digest(data, len, out->bytes, &out_len, md, NULL) != 1 || out_len != NOVA_ID_LEN)
        return nova_fail(NOVA_ECRYPTO, "sha-256: digest of %zu bytes failed", len);
    return 0;
}

static int sha256_stream_start(nova_sha256_stream *s)
{
    const EVP_MD *md = sha256_impl();
    if (!md || EVP_DigestInit_ex(s->md_ctx, md, NULL) != 1)
        return nova_fail(NOVA_ECRYPTO, "sha-256 stream: digest init failed");
    s->started = 1;
    return 0;
}

int nova_sha256_stream_new(nova_sha256_stream **out)
{
    nova_sha256_stream *s = calloc(1, sizeof(*s));
    int rc;
    *out = NULL;
    if (!s)
        return nova_fail(NOVA_ENOMEM, "sha-256 stream: out of memory");
    s->md_ctx = EVP_MD_CTX_new();
    if (!s->md_ctx) {
        free(s);
        return nova_fail(NOVA_ENOMEM, "sha-256 stream: out of memory");
    }
    rc = sha256_stream_start(s);
    if (rc < 0) {
        nova_sha256_stream_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int nova_sha256_stream_update(nova_sha256_stream *s, const void *data, size_t len)
{
    if (!s->started)
        NOVA_TRY(sha256_stream_start(s));
    if (len == 0)
        return 0;
    if (EVP_DigestUpdate(s->md_ctx, data, len) != 1)
        return nova_fail(NOVA_ECRYPTO, "sha-256 stream: update of %zu bytes failed", len);
    return 0;
}

int nova_sha256_stream_final(nova_sha256_stream *s, nova_id *out)
{
    unsigned int out_len = 0;
    if (!s->started)
        NOVA_TRY(sha256_stream_start(s));
    s->started = 0;
    if (EVP_DigestFinal_ex(s->md_ctx, out->bytes, &out_len) != 1 || out_len != NOVA_ID_LEN)
        return nova_fail(NOVA_ECRYPTO, "sha-256 stream: final failed");
    /* Restart now so the stream is ready for reuse; a failure here resurfaces later. */
    (void)sha256_stream_start(s);
    return 0;
}

void nova_sha256_stream_free(nova_sha256_stream *s)
{
    if (!s)
        return;
    EVP_MD_CTX_free(s->md_ctx);
    free(s);
}

/* ---- HMAC-SHA-256 ------------------------------------------------------------------- */

int nova_hmac_new(nova_hmac **out, const uint8_t *key, size_t key_len)
{
    EVP_MAC *mac = NULL;
    nova_hmac *h = NULL;
    OSSL_PARAM params[2];
    int rc = 0;
    static const uint8_t empty_key[1] = {0};

    *out = NULL;
    h = calloc(1, sizeof(*h));
    if (!h) {
        rc = nova_fail(NOVA_ENOMEM, "hmac-sha-256: out of memory");
        goto out;
    }
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac) {
        rc = nova_fail(NOVA_ECRYPTO, "hmac-sha-256: mac unavailable in openssl");
        goto out;
    }
    h->mac_ctx = EVP_MAC_CTX_new(mac);
    if (!h->mac_ctx) {
        rc = nova_fail(NOVA_ENOMEM, "hmac-sha-256: out of memory");
        goto out;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    /* OpenSSL rejects a NULL key on first init; an empty key is the zero-length key. */
    if (EVP_MAC_init(h->mac_ctx, key_len ? key : empty_key, key_len, params) != 1) {
        rc = nova_fail(NOVA_ECRYPTO, "hmac-sha-256: setting a %zu-byte key failed", key_len);
        goto out;
    }
    *out = h;
    h = NULL;
out:
    EVP_MAC_free(mac);
    nova_hmac_free(h);
    return rc;
}

int nova_hmac_dup(nova_hmac **out, const nova_hmac *src)
{
    nova_hmac *h = calloc(1, sizeof(*h));
    *out = NULL;
    if (!h)
        return nova_fail(NOVA_ENOMEM, "hmac-sha-256: out of memory");
    h->mac_ctx = EVP_MAC_CTX_dup(src->mac_ctx);
    if (!h->mac_ctx) {
        free(h);
        return nova_fail(NOVA_ECRYPTO, "hmac-sha-256: duplicating the context failed");
    }
    *out = h;
    return 0;
}

int nova_hmac_compute(nova_hmac *h, nova_id *out, const void *data, size_t len)
{
    size_t out_len = 0;
    if (EVP_MAC_init(h->mac_ctx, NULL, 0, NULL) != 1)
        return nova_fail(NOVA_ECRYPTO, "hmac-sha-256: re-initialising the context failed");
    if (len > 0 && EVP_MAC_update(h->mac_ctx, data, len) != 1)
        return nova_fail(NOVA_ECRYPTO, "hmac-sha-256: update of %zu bytes failed", len);
    if (EVP_MAC_final(h->mac_ctx, out->bytes, &out_len, NOVA_ID_LEN) != 1 ||
        out_len != NOVA_ID_LEN)
        return nova_fail(NOVA_ECRYPTO, "hmac-sha-256: final failed");
    return 0;
}

void nova_hmac_free(nova_hmac *h)
{
    if (!h)
        return;
    EVP_MAC_CTX_free(h->mac_ctx);
    free(h);
}

int nova_hmac_sha256(nova_id *out, const uint8_t *key, size_t key_len, const void *data,
                     size_t len)
{
    nova_hmac *h = NULL;
    int rc = nova_hmac_new(&h, key, key_len);
    if (rc < 0)
        return rc;
    rc = nova_hmac_compute(h, out, data, len);
    nova_hmac_free(h);
    return rc;
}
