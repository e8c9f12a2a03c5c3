/*
 * crypto.c -- randomness, HKDF-SHA-256, AES-256-GCM and scrypt on OpenSSL 3's EVP layer.
 *
 * Invariants:
 *  - Algorithm implementations (AES-256-GCM, HKDF, SCRYPT) are fetched once per process
 *    (pthread_once) and never freed, so per-object calls skip the provider look-up.
 *  - A nova_aead owns one EVP_CIPHER_CTX keyed once; each seal/open only sets the nonce
 *    (and direction), and nova_aead_rekey only replaces the key schedule in place: neither
 *    allocates.
 *  - nova_aead_open never leaves unauthenticated plaintext behind: on a tag mismatch the
 *    output is wiped and NOVA_ECORRUPT "authentication failed" is returned.
 *  - scrypt's cost is bounded twice: each parameter (nova_kdf_params_check) and the memory
 *    the parameters imply together (NOVA_KDF_MAX_MEMORY, NOVA_KDF_MAX_WORK), so a
 *    tampered key slot cannot make nova allocate gigabytes or spin for hours.
 *  - OpenSSL failures become NOVA_ECRYPTO naming the operation and OpenSSL's reason; the
 *    OpenSSL error queue is cleared so stale entries never leak into later messages.
 */
#include "primitives/crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "common/bytes.h"
#include "common/err.h"

/* OpenSSL's EVP calls take int lengths: larger inputs go through in slices of this size. */
#define EVP_SLICE (1u << 30)

struct nova_aead {
    EVP_CIPHER_CTX *cipher_ctx;
};

static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *aes_256_gcm;
static EVP_KDF *hkdf_kdf;
static EVP_KDF *scrypt_kdf;

static void fetch_algorithms(void)
{
    aes_256_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    hkdf_kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    scrypt_kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
}

static void fetch_all(void)
{
    pthread_once(&fetch_once, fetch_algorithms);
}

/* Records NOVA_ECRYPTO with OpenSSL's most recent reason and empties its error queue. */
static int openssl_fail(const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    int rc = nova_fail(NOVA_ECRYPTO, "%s failed: %s", what, reason ? reason : "no detail");
    ERR_clear_error();
    return rc;
}

/* ---- randomness, comparison, wiping ------------------------------------------------- */

int nova_random_bytes(void *out, size_t len)
{
    uint8_t *p = out;
    while (len > 0) {
        size_t n = len < EVP_SLICE ? len : EVP_SLICE;
        if (RAND_bytes(p, (int)n) != 1)
            return openssl_fail("random bytes");
        p += n;
        len -= n;
    }
    return 0;
}

int nova_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

void nova_wipe(void *p, size_t len)
{
    if (p && len)
        OPENSSL_cleanse(p, len);
}

/* ---- HKDF --------------------------------------------------------------------------- */

int nova_hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *ikm, size_t ikm_len,
                     const uint8_t *salt, size_t salt_len, const void *info, size_t info_len)
{
    static const uint8_t empty[1] = {0};
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[5];
    size_t n = 0;
    int rc = 0;

    if (out_len == 0 || out_len > 255u * 32u)
        return nova_fail(NOVA_EINVALID, "hkdf-sha-256: output length %zu out of range 1..8160",
                         out_len);
    fetch_all();
    if (!hkdf_kdf)
        return nova_fail(NOVA_ECRYPTO, "hkdf-sha-256: kdf unavailable in openssl");
    kctx = EVP_KDF_CTX_new(hkdf_kdf);
    if (!kctx)
        return nova_fail(NOVA_ENOMEM, "hkdf-sha-256: out of memory");

    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)(ikm_len ? ikm : empty), ikm_len);
    /* An absent salt means HashLen zero bytes (RFC 5869 2.2), which OpenSSL does itself. */
    if (salt_len > 0)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                        (void *)(uintptr_t)salt, salt_len);
    if (info_len > 0)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                        (void *)(uintptr_t)info, info_len);
    params[n] = OSSL_PARAM_construct_end();

    if (EVP_KDF_derive(kctx, out, out_len, params) != 1)
        rc = openssl_fail("hkdf-sha-256 derivation");
    EVP_KDF_CTX_free(kctx);
    return rc;
}

/* ---- AES-256-GCM -------------------------------------------------------------------- */

void nova_nonce_from_counter(uint8_t nonce[NOVA_NONCE_LEN], uint64_t counter)
{
    nova_put_le64(nonce, counter);
    memset(nonce + 8, 0, NOVA_NONCE_LEN - 8);
}

int nova_aead_new(nova_aead **out, const uint8_t key[NOVA_KEY_LEN])
{
    nova_aead *a = NULL;
    int rc = 0;

    *out = NULL;
    fetch_all();
    if (!aes_256_gcm)
        return nova_fail(NOVA_ECRYPTO, "aes-256-gcm: cipher unavailable in openssl");
    a = calloc(1, sizeof(*a));
    if (!a)
        return nova_fail(NOVA_ENOMEM, "aes-256-gcm: out of memory");
    a->cipher_ctx = EVP_CIPHER_CTX_new();
    if (!a->cipher_ctx) {
        rc = nova_fail(NOVA_ENOMEM, "aes-256-gcm: out of memory");
        goto out;
    }
    if (EVP_CipherInit_ex(a->cipher_ctx, aes_256_gcm, NULL, key, NULL, 1) != 1) {
        rc = openssl_fail("aes-256-gcm key setup");
        goto out;
    }
    *out = a;
    a = NULL;
out:
    nova_aead_free(a);
    return rc;
}

int nova_aead_rekey(nova_aead *a, const uint8_t key[NOVA_KEY_LEN])
{
    if (EVP_CipherInit_ex(a->cipher_ctx, NULL, NULL, key, NULL, -1) != 1)
        return openssl_fail("aes-256-gcm re-key");
    return 0;
}

void nova_aead_free(nova_aead *a)
{
    if (!a)
        return;
    EVP_CIPHER_CTX_free(a->cipher_ctx); /* also cleanses the key schedule */
    free(a);
}

/* Starts one message: direction and nonce; the key schedule stays. */
static int aead_start(nova_aead *a, int encrypt, const uint8_t nonce[NOVA_NONCE_LEN],
                      const void *aad, size_t aad_len)
{
    const uint8_t *p = aad;
    int outl = 0;
    if (EVP_CipherInit_ex(a->cipher_ctx, NULL, NULL, NULL, nonce, encrypt) != 1)
        return openssl_fail("aes-256-gcm nonce setup");
    while (aad_len > 0) {
        size_t n = aad_len < EVP_SLICE ? aad_len : EVP_SLICE;
        if (EVP_CipherUpdate(a->cipher_ctx, NULL, &outl, p, (int)n) != 1)
            return openssl_fail("aes-256-gcm associated data");
        p += n;
        aad_len -= n;
    }
    return 0;
}

/* Runs the cipher over len bytes; out may equal in. */
static int aead_update(nova_aead *a, uint8_t *out, const uint8_t *in, size_t len,
                       const char *what)
{
    while (len > 0) {
        size_t n = len < EVP_SLICE ? len : EVP_SLICE;
        int outl = 0;
        if (EVP_CipherUpdate(a->cipher_ctx, out, &outl, in, (int)n) != 1 || (size_t)outl != n)
            return openssl_fail(what);
        out += n;
        in += n;
        len -= n;
    }
    return 0;
}

int nova_aead_seal(nova_aead *a, uint8_t *out, const uint8_t nonce[NOVA_NONCE_LEN],
                   const void *aad, size_t aad_len, const void *plain, size_t len)
{
    int outl = 0;
    NOVA_TRY(aead_start(a, 1, nonce, aad, aad_len));
    NOVA_TRY(aead_update(a, out, plain, len, "aes-256-gcm encryption"));
    if (EVP_CipherFinal_ex(a->cipher_ctx, out + len, &outl) != 1 || outl != 0)
        return openssl_fail("aes-256-gcm encryption final");
    if (EVP_CIPHER_CTX_ctrl(a->cipher_ctx, EVP_CTRL_GCM_GET_TAG, NOVA_TAG_LEN, out + len) != 1)
        return openssl_fail("aes-256-gcm tag");
    return 0;
}

int nova_aead_open(nova_aead *a, uint8_t *out, const uint8_t nonce[NOVA_NONCE_LEN],
                   const void *aad, size_t aad_len, const void *sealed, size_t sealed_len)
{
    uint8_t tag[NOVA_TAG_LEN];
    size_t len;
    int outl = 0;

    if (sealed_len < NOVA_TAG_LEN)
        return nova_fail(NOVA_ECORRUPT, "sealed message of %zu bytes: shorter than its tag",
                         sealed_len);
    len = sealed_len - NOVA_TAG_LEN;
    /* Copy the tag first: when out == sealed the decryption must not be able to touch it
     * (it cannot, it lies past len, but a private copy also keeps the ctrl call const-clean). */
    memcpy(tag, (const uint8_t *)sealed + len, NOVA_TAG_LEN);
    NOVA_TRY(aead_start(a, 0, nonce, aad, aad_len));
    NOVA_TRY(aead_update(a, out, sealed, len, "aes-256-gcm decryption"));
    if (EVP_CIPHER_CTX_ctrl(a->cipher_ctx, EVP_CTRL_GCM_SET_TAG, NOVA_TAG_LEN, tag) != 1)
        return openssl_fail("aes-256-gcm tag setup");
    if (EVP_CipherFinal_ex(a->cipher_ctx, out + len, &outl) != 1) {
        ERR_clear_error();
        nova_wipe(out, len);
        return nova_fail(NOVA_ECORRUPT, "sealed message of %zu bytes: authentication failed",
                         sealed_len);
    }
    return 0;
}

/* ---- scrypt ------------------------------------------------------------------------- */

/* Bytes scrypt's large vector takes: 128 * r * N (OpenSSL adds p * 128 * r for B). */
static uint64_t scrypt_memory(uint64_t n, uint64_t r, uint64_t p)
{
    return 128u * r * (n + 2) + 128u * r * p;
}

int nova_kdf_params_check(const nova_kdf_params *params)
{
    uint64_t n, memory;
    if (params->log2_n < NOVA_KDF_MIN_LOG2_N || params->log2_n > NOVA_KDF_MAX_LOG2_N)
        return nova_fail(NOVA_ECORRUPT, "scrypt parameters: log2(N) = %u outside %d..%d",
                         (unsigned)params->log2_n, NOVA_KDF_MIN_LOG2_N, NOVA_KDF_MAX_LOG2_N);
    if (params->r < 1 || params->r > NOVA_KDF_MAX_R)
        return nova_fail(NOVA_ECORRUPT, "scrypt parameters: r = %u outside 1..%d",
                         (unsigned)params->r, NOVA_KDF_MAX_R);
    if (params->p < 1 || params->p > NOVA_KDF_MAX_P)
        return nova_fail(NOVA_ECORRUPT, "scrypt parameters: p = %u outside 1..%d",
                         (unsigned)params->p, NOVA_KDF_MAX_P);
    n = (uint64_t)1 << params->log2_n;
    memory = 128u * (uint64_t)params->r * n;
    if (memory > NOVA_KDF_MAX_MEMORY)
        return nova_fail(NOVA_ECORRUPT,
                         "scrypt parameters: log2(N) = %u, r = %u need %llu MiB, over %llu MiB",
                         (unsigned)params->log2_n, (unsigned)params->r,
                         (unsigned long long)(memory >> 20),
                         (unsigned long long)(NOVA_KDF_MAX_MEMORY >> 20));
    if (memory * params->p > NOVA_KDF_MAX_WORK)
        return nova_fail(NOVA_ECORRUPT,
                         "scrypt parameters: log2(N) = %u, r = %u, p = %u: work over the limit",
                         (unsigned)params->log2_n, (unsigned)params->r, (unsigned)params->p);
    return 0;
}

int nova_scrypt_unchecked(uint8_t *out, size_t out_len, const char *passphrase,
                          size_t pass_len, const uint8_t *salt, size_t salt_len, uint64_t n,
                          uint32_t r, uint32_t p)
{
    static const uint8_t empty[1] = {0};
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[7];
    uint64_t maxmem;
    int rc = 0;

    if (out_len == 0)
        return nova_fail(NOVA_EINVALID, "scrypt: output length 0");
    if (n < 2 || (n & (n - 1)) != 0 || r == 0 || p == 0 || n > ((uint64_t)1 << 40) ||
        r > (1u << 20) || p > (1u << 20))
        return nova_fail(NOVA_EINVALID, "scrypt: invalid parameters N=%llu r=%u p=%u",
                         (unsigned long long)n, (unsigned)r, (unsigned)p);
    fetch_all();
    if (!scrypt_kdf)
        return nova_fail(NOVA_ECRYPTO, "scrypt: kdf unavailable in openssl");
    kctx = EVP_KDF_CTX_new(scrypt_kdf);
    if (!kctx)
        return nova_fail(NOVA_ENOMEM, "scrypt: out of memory");

    /* OpenSSL refuses work needing more than maxmem; give exactly what the parameters
     * need plus slack, since the callers have already bounded the parameters. */
    maxmem = scrypt_memory(n, r, p) + (1u << 20);
    params[0] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_PASSWORD, (void *)(uintptr_t)(pass_len ? (const void *)passphrase : empty),
        pass_len);
    params[1] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)(salt_len ? salt : empty), salt_len);
    params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
    params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
    params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
    params[6] = OSSL_PARAM_construct_end();

    if (EVP_KDF_derive(kctx, out, out_len, params) != 1)
        rc = openssl_fail("scrypt derivation");
    EVP_KDF_CTX_free(kctx);
    return rc;
}

int nova_kdf_passphrase(uint8_t *out, size_t out_len, const char *passphrase, size_t pass_len,
                        const uint8_t *salt, size_t salt_len, const nova_kdf_params *params)
{
    NOVA_TRY(nova_kdf_params_check(params));
    return nova_scrypt_unchecked(out, out_len, passphrase, pass_len, salt, salt_len,
                                 (uint64_t)1 << params->log2_n, params->r, params->p);
}
