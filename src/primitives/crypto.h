/*
 * crypto.h -- randomness, HKDF, AES-256-GCM and the passphrase KDF (OpenSSL) (private).
 *
 * Nonce discipline: a long-lived master key never encrypts anything directly. Every
 * encrypted object (a pack, an index, a snapshot, a key slot) draws a fresh random
 * 32-byte salt and derives its own subkey with HKDF-SHA-256(master, salt, info); within
 * that object, blob i is sealed with the 96-bit nonce i (a counter). Two writers would
 * need the same 256-bit salt to share a subkey, so no (key, nonce) pair can repeat.
 */
#ifndef NOVA_PRIMITIVES_CRYPTO_H
#define NOVA_PRIMITIVES_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define NOVA_KEY_LEN 32
#define NOVA_SALT_LEN 32
#define NOVA_NONCE_LEN 12
#define NOVA_TAG_LEN 16

/* Cryptographically secure random bytes (RAND_bytes). */
int nova_random_bytes(void *out, size_t len);

/* HKDF-SHA-256 (RFC 5869) extract-and-expand. */
int nova_hkdf_sha256(uint8_t *out, size_t out_len, const uint8_t *ikm, size_t ikm_len,
                     const uint8_t *salt, size_t salt_len, const void *info, size_t info_len);

/* Builds the 96-bit nonce for blob `counter` of one subkey: LE64 counter, 4 zero bytes. */
void nova_nonce_from_counter(uint8_t nonce[NOVA_NONCE_LEN], uint64_t counter);

/* AES-256-GCM with one key, reusable for many messages; one per thread. */
typedef struct nova_aead nova_aead;
int nova_aead_new(nova_aead **out, const uint8_t key[NOVA_KEY_LEN]);
/* Re-keys an existing context (cheap; no allocation). */
int nova_aead_rekey(nova_aead *a, const uint8_t key[NOVA_KEY_LEN]);
/* out receives len + NOVA_TAG_LEN bytes: ciphertext then tag. out may equal plain. */
int nova_aead_seal(nova_aead *a, uint8_t *out, const uint8_t nonce[NOVA_NONCE_LEN],
                   const void *aad, size_t aad_len, const void *plain, size_t len);
/* sealed_len includes the tag; out receives sealed_len - NOVA_TAG_LEN bytes.
 * A wrong key, nonce, aad or any altered byte gives NOVA_ECORRUPT. */
int nova_aead_open(nova_aead *a, uint8_t *out, const uint8_t nonce[NOVA_NONCE_LEN],
                   const void *aad, size_t aad_len, const void *sealed, size_t sealed_len);
void nova_aead_free(nova_aead *a);

/* scrypt parameters, stored with each key slot. */
typedef struct nova_kdf_params {
    uint8_t log2_n; /* N = 2^log2_n; default 15 */
    uint32_t r;     /* default 8 */
    uint32_t p;     /* default 1 */
} nova_kdf_params;

#define NOVA_KDF_PARAMS_DEFAULT {15, 8, 1}
#define NOVA_KDF_MIN_LOG2_N 10
#define NOVA_KDF_MAX_LOG2_N 22
#define NOVA_KDF_MAX_R 32
#define NOVA_KDF_MAX_P 16
/* Bounds on the combination: scrypt's memory is 128 * r * N bytes, its work p times that. */
#define NOVA_KDF_MAX_MEMORY ((uint64_t)1 << 30)
#define NOVA_KDF_MAX_WORK ((uint64_t)8 << 30)
/* Rejects parameters outside sane bounds (log2_n 10..22, r 1..32, p 1..16, and
 * 128*r*N <= NOVA_KDF_MAX_MEMORY, p*128*r*N <= NOVA_KDF_MAX_WORK) with
 * NOVA_ECORRUPT so a tampered key slot cannot make nova allocate gigabytes. */
int nova_kdf_params_check(const nova_kdf_params *params);
/* scrypt(passphrase, salt) under params, after nova_kdf_params_check. */
int nova_kdf_passphrase(uint8_t *out, size_t out_len, const char *passphrase, size_t pass_len,
                        const uint8_t *salt, size_t salt_len, const nova_kdf_params *params);
/* Raw scrypt with N a power of two >= 2; only basic sanity checks, no cost bounds.
 * For known-answer tests (RFC 7914 uses N = 16); production code uses nova_kdf_passphrase. */
int nova_scrypt_unchecked(uint8_t *out, size_t out_len, const char *passphrase,
                          size_t pass_len, const uint8_t *salt, size_t salt_len, uint64_t n,
                          uint32_t r, uint32_t p);

/* Constant-time comparison; 1 when equal. */
int nova_ct_equal(const void *a, const void *b, size_t len);
/* Wipes secrets (OPENSSL_cleanse). */
void nova_wipe(void *p, size_t len);

#endif
