/*
 * keys.h -- the repository's master keys and its key slots (private).
 *
 * The master keys are random and never change when passphrases change: each key slot
 * ("keys/<id>" in the repository) wraps them under a key derived from one passphrase by
 * scrypt, with the scrypt parameters and salt stored in the slot. Adding, removing or
 * changing a slot touches no data. See docs/FORMAT.md "Key slots".
 *
 * A slot's name is "keys/" + the hex SHA-256 of its bytes, so anyone can check a slot
 * for bit rot without the passphrase, and a slot can never be overwritten in place.
 * The repository always keeps at least one slot: removal of the last one is refused and
 * a passphrase change writes the new slot before it deletes the old one.
 */
#ifndef NOVA_REPO_KEYS_H
#define NOVA_REPO_KEYS_H

#include "common/buf.h"
#include "primitives/crypto.h"
#include "primitives/hash.h"
#include "repo/repo_config.h"
#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

typedef struct nova_master_keys {
    uint8_t enc[NOVA_KEY_LEN];     /* root of every encryption subkey */
    uint8_t id[NOVA_KEY_LEN];      /* HMAC key for chunk ids */
    uint8_t chunker[NOVA_KEY_LEN]; /* secret for the chunker's gear table */
} nova_master_keys;

int nova_master_keys_generate(nova_master_keys *out);
void nova_master_keys_wipe(nova_master_keys *keys);

/* ---- Key slot objects ---------------------------------------------------------------- */

#define NOVA_KEYSLOT_VERSION 1
#define NOVA_KDF_SCRYPT 1
#define NOVA_KEYSLOT_HEADER_LEN 80
#define NOVA_KEYSLOT_PLAIN_LEN (3 * NOVA_KEY_LEN) /* enc, id, chunker */
#define NOVA_KEYSLOT_SEALED_LEN (NOVA_KEYSLOT_PLAIN_LEN + NOVA_TAG_LEN)
#define NOVA_KEYSLOT_LEN (NOVA_KEYSLOT_HEADER_LEN + NOVA_KEYSLOT_SEALED_LEN) /* 192 */
#define NOVA_KEYSLOT_PREFIX "keys/"
/* "keys/" + 64 hex digits + NUL */
#define NOVA_KEYSLOT_NAME_SIZE (sizeof(NOVA_KEYSLOT_PREFIX) - 1 + NOVA_ID_HEX_LEN + 1)

typedef struct nova_keyslot {
    uint8_t kdf_id;                               /* NOVA_KDF_SCRYPT */
    nova_kdf_params kdf;                          /* within nova_kdf_params_check bounds */
    uint8_t salt[NOVA_SALT_LEN];                  /* random per slot */
    uint8_t repo_id[NOVA_REPO_ID_LEN];            /* the repository this slot opens */
    uint8_t sealed_keys[NOVA_KEYSLOT_SEALED_LEN]; /* AES-256-GCM ciphertext and tag */
} nova_keyslot;

/* Encodes exactly NOVA_KEYSLOT_LEN bytes (out reset first). */
int nova_keyslot_encode(nova_buf *out, const nova_keyslot *slot);
/* Decodes and checks the header: wrong length, magic, KDF id, reserved bytes or KDF
 * parameters out of bounds give NOVA_ECORRUPT, a newer version NOVA_EVERSION. The sealed
 * part can only be checked by nova_keyslot_unwrap. `what` names the slot in messages. */
int nova_keyslot_decode(nova_keyslot *out, const void *data, size_t len, const char *what);

/* Makes a new slot (fresh random salt) wrapping keys under passphrase. */
int nova_keyslot_create(nova_keyslot *out, const nova_master_keys *keys,
                        const uint8_t repo_id[NOVA_REPO_ID_LEN], const char *passphrase,
                        size_t passphrase_len, const nova_kdf_params *params);
/* Unwraps the master keys. A wrong passphrase gives NOVA_EPASSWORD; so does any change to
 * the sealed part or to the header fields that stay in bounds (all indistinguishable). */
int nova_keyslot_unwrap(nova_master_keys *out, const nova_keyslot *slot, const char *passphrase,
                        size_t passphrase_len);

/* "keys/<hex SHA-256 of the encoded slot>" for an encoded slot. */
int nova_keyslot_name(char out[NOVA_KEYSLOT_NAME_SIZE], const void *encoded, size_t len);

/* ---- Key slots in a repository ------------------------------------------------------- */

typedef struct nova_keyslot_list {
    char (*names)[NOVA_KEYSLOT_NAME_SIZE]; /* sorted */
    size_t count;
} nova_keyslot_list;

void nova_keyslot_list_free(nova_keyslot_list *list);

/* Lists the names of the objects under keys/ that are shaped like slot names. */
int nova_keys_list(nova_keyslot_list *out, nova_storage *storage);

/* Wraps keys under passphrase in a new slot and stores it; name_out (may be NULL)
 * receives its name. */
int nova_keys_add(nova_storage *storage, const uint8_t repo_id[NOVA_REPO_ID_LEN],
                  const nova_master_keys *keys, const char *passphrase, size_t passphrase_len,
                  const nova_kdf_params *params, char name_out[NOVA_KEYSLOT_NAME_SIZE]);

/* Tries every slot of the repository in name order. Slots whose bytes do not match their
 * name, that do not decode or that belong to another repository are skipped. Gives
 * NOVA_EPASSWORD when no slot opens, NOVA_ECORRUPT when the repository holds no usable
 * slot at all. name_out (may be NULL) receives the name of the slot that opened. */
int nova_keys_open(nova_master_keys *out, nova_storage *storage,
                   const uint8_t repo_id[NOVA_REPO_ID_LEN], const char *passphrase,
                   size_t passphrase_len, char name_out[NOVA_KEYSLOT_NAME_SIZE]);

/* Deletes one slot. Refused with NOVA_EINVALID unless another slot of this repository
 * stays intact (its bytes match its name and decode). Missing slot: NOVA_ENOTFOUND. */
int nova_keys_remove(nova_storage *storage, const uint8_t repo_id[NOVA_REPO_ID_LEN],
                     const char *name);

/* Opens with old_passphrase, stores a new slot for new_passphrase, then deletes the slot
 * that opened. At every moment at least one slot opens the repository. name_out (may be
 * NULL) receives the new slot's name. */
int nova_keys_change_passphrase(nova_storage *storage, const uint8_t repo_id[NOVA_REPO_ID_LEN],
                                const char *old_passphrase, size_t old_len,
                                const char *new_passphrase, size_t new_len,
                                const nova_kdf_params *params,
                                char name_out[NOVA_KEYSLOT_NAME_SIZE]);

#endif
