/*
 * keys.c -- master keys, key slot objects, and the slot operations over storage.
 *
 * Wrapping: kek = scrypt(passphrase, slot salt, slot params) (32 bytes);
 * wrap key = HKDF-SHA-256(ikm = kek, salt = repository id, info = "nova/keyslot/v1/wrap");
 * sealed = AES-256-GCM(wrap key, nonce = counter 0, aad = slot bytes 0..80, enc||id||chunker).
 * Each slot draws a fresh 32-byte salt, so its wrap key is used for exactly one
 * encryption and nonce 0 is never reused. Every intermediate secret is wiped.
 *
 * Storage invariants: slot names are the SHA-256 of the slot bytes; a change of
 * passphrase puts the new slot before deleting the old one; the last intact slot of a
 * repository is never deleted.
 */
#include "repo/keys.h"

#include "common/bytes.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYSLOT_MAGIC "NVKS"
#define KEYSLOT_WRAP_INFO "nova/keyslot/v1/wrap"
#define KEYSLOT_PREFIX_LEN (sizeof(NOVA_KEYSLOT_PREFIX) - 1)

int nova_master_keys_generate(nova_master_keys *out)
{
    int rc = nova_random_bytes(out, sizeof(*out));
    if (rc < 0)
        nova_master_keys_wipe(out);
    return rc;
}

void nova_master_keys_wipe(nova_master_keys *keys)
{
    if (keys)
        nova_wipe(keys, sizeof(*keys));
}

/* ---- Slot bytes ------------------------------------------------------------------------ */

static void encode_header(uint8_t header[NOVA_KEYSLOT_HEADER_LEN], const nova_keyslot *slot)
{
    memcpy(header, KEYSLOT_MAGIC, 4);
    header[4] = NOVA_KEYSLOT_VERSION;
    header[5] = slot->kdf_id;
    header[6] = slot->kdf.log2_n;
    header[7] = 0;
    nova_put_le32(header + 8, slot->kdf.r);
    nova_put_le32(header + 12, slot->kdf.p);
    memcpy(header + 16, slot->salt, NOVA_SALT_LEN);
    memcpy(header + 48, slot->repo_id, NOVA_REPO_ID_LEN);
}

static int check_slot_fields(const nova_keyslot *slot, const char *what)
{
    if (slot->kdf_id != NOVA_KDF_SCRYPT)
        return nova_fail(NOVA_ECORRUPT, "%s: unknown key derivation function %u", what,
                         (unsigned)slot->kdf_id);
    if (nova_kdf_params_check(&slot->kdf) < 0)
        return nova_fail(NOVA_ECORRUPT,
                         "%s: scrypt parameters out of bounds (log2_n %u, r %u, p %u)", what,
                         (unsigned)slot->kdf.log2_n, (unsigned)slot->kdf.r,
                         (unsigned)slot->kdf.p);
    return 0;
}

int nova_keyslot_encode(nova_buf *out, const nova_keyslot *slot)
{
    int rc;

    nova_buf_reset(out);
    rc = check_slot_fields(slot, "key slot");
    if (rc == NOVA_ECORRUPT)
        return nova_fail(NOVA_EINVALID, "key slot: invalid key derivation settings");
    NOVA_TRY(nova_buf_resize(out, NOVA_KEYSLOT_LEN));
    encode_header(out->data, slot);
    memcpy(out->data + NOVA_KEYSLOT_HEADER_LEN, slot->sealed_keys, NOVA_KEYSLOT_SEALED_LEN);
    return 0;
}

/* Magic, version and length, in the order that gives the most useful error. */
static int check_slot_frame(const uint8_t *data, size_t len, const char *what)
{
    if (len < 5)
        return nova_fail(NOVA_ECORRUPT, "%s: truncated (%zu bytes)", what, len);
    if (memcmp(data, KEYSLOT_MAGIC, 4) != 0)
        return nova_fail(NOVA_ECORRUPT, "%s: wrong magic (not a key slot)", what);
    if (data[4] > NOVA_KEYSLOT_VERSION)
        return nova_fail(NOVA_EVERSION, "%s: key slot version %u is newer than %u", what,
                         (unsigned)data[4], (unsigned)NOVA_KEYSLOT_VERSION);
    if (data[4] != NOVA_KEYSLOT_VERSION)
        return nova_fail(NOVA_ECORRUPT, "%s: invalid key slot version %u", what,
                         (unsigned)data[4]);
    if (len != NOVA_KEYSLOT_LEN)
        return nova_fail(NOVA_ECORRUPT, "%s: %zu bytes, expected %u", what, len,
                         (unsigned)NOVA_KEYSLOT_LEN);
    return 0;
}

int nova_keyslot_decode(nova_keyslot *out, const void *data, size_t len, const char *what)
{
    nova_keyslot slot;
    nova_reader r = nova_reader_make(data, len);
    uint8_t reserved;

    memset(out, 0, sizeof(*out));
    if (!what)
        what = "key slot";
    if (!data && len > 0)
        return nova_fail(NOVA_EINVALID, "%s: missing data", what);
    NOVA_TRY(check_slot_frame(data, len, what));

    memset(&slot, 0, sizeof(slot));
    nova_read_bytes(&r, 5); /* magic and version, checked */
    slot.kdf_id = nova_read_u8(&r);
    slot.kdf.log2_n = nova_read_u8(&r);
    reserved = nova_read_u8(&r);
    slot.kdf.r = nova_read_le32(&r);
    slot.kdf.p = nova_read_le32(&r);
    nova_read_copy(&r, slot.salt, NOVA_SALT_LEN);
    nova_read_copy(&r, slot.repo_id, NOVA_REPO_ID_LEN);
    nova_read_copy(&r, slot.sealed_keys, NOVA_KEYSLOT_SEALED_LEN);
    if (r.failed || r.left != 0)
        return nova_fail(NOVA_ECORRUPT, "%s: malformed layout", what);
    if (reserved != 0)
        return nova_fail(NOVA_ECORRUPT, "%s: reserved byte is not zero", what);
    NOVA_TRY(check_slot_fields(&slot, what));
    *out = slot;
    return 0;
}

/* ---- Wrapping ------------------------------------------------------------------------- */

static int derive_wrap_key(uint8_t wrap_key[NOVA_KEY_LEN], const nova_keyslot *slot,
                           const char *passphrase, size_t passphrase_len)
{
    uint8_t kek[NOVA_KEY_LEN];
    int rc;

    rc = nova_kdf_passphrase(kek, sizeof(kek), passphrase, passphrase_len, slot->salt,
                             NOVA_SALT_LEN, &slot->kdf);
    if (rc == 0)
        rc = nova_hkdf_sha256(wrap_key, NOVA_KEY_LEN, kek, sizeof(kek), slot->repo_id,
                              NOVA_REPO_ID_LEN, KEYSLOT_WRAP_INFO, strlen(KEYSLOT_WRAP_INFO));
    nova_wipe(kek, sizeof(kek));
    return rc;
}

static void keys_to_bytes(uint8_t plain[NOVA_KEYSLOT_PLAIN_LEN], const nova_master_keys *keys)
{
    memcpy(plain, keys->enc, NOVA_KEY_LEN);
    memcpy(plain + NOVA_KEY_LEN, keys->id, NOVA_KEY_LEN);
    memcpy(plain + 2 * NOVA_KEY_LEN, keys->chunker, NOVA_KEY_LEN);
}

static void keys_from_bytes(nova_master_keys *keys, const uint8_t plain[NOVA_KEYSLOT_PLAIN_LEN])
{
    memcpy(keys->enc, plain, NOVA_KEY_LEN);
    memcpy(keys->id, plain + NOVA_KEY_LEN, NOVA_KEY_LEN);
    memcpy(keys->chunker, plain + 2 * NOVA_KEY_LEN, NOVA_KEY_LEN);
}

int nova_keyslot_create(nova_keyslot *out, const nova_master_keys *keys,
                        const uint8_t repo_id[NOVA_REPO_ID_LEN], const char *passphrase,
                        size_t passphrase_len, const nova_kdf_params *params)
{
    const nova_kdf_params default_params = NOVA_KDF_PARAMS_DEFAULT;
    uint8_t header[NOVA_KEYSLOT_HEADER_LEN];
    uint8_t plain[NOVA_KEYSLOT_PLAIN_LEN];
    uint8_t wrap_key[NOVA_KEY_LEN];
    uint8_t nonce[NOVA_NONCE_LEN];
    nova_aead *aead = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!keys || !repo_id || (!passphrase && passphrase_len > 0))
        return nova_fail(NOVA_EINVALID, "key slot: missing argument");
    out->kdf_id = NOVA_KDF_SCRYPT;
    out->kdf = params ? *params : default_params;
    memcpy(out->repo_id, repo_id, NOVA_REPO_ID_LEN);
    if (nova_kdf_params_check(&out->kdf) < 0)
        return nova_fail(NOVA_EINVALID, "key slot: scrypt parameters out of bounds");
    rc = nova_random_bytes(out->salt, NOVA_SALT_LEN);
    if (rc < 0)
        goto out;
    rc = derive_wrap_key(wrap_key, out, passphrase ? passphrase : "", passphrase_len);
    if (rc < 0)
        goto out;
    rc = nova_aead_new(&aead, wrap_key);
    if (rc < 0)
        goto out;
    encode_header(header, out);
    keys_to_bytes(plain, keys);
    nova_nonce_from_counter(nonce, 0);
    rc = nova_aead_seal(aead, out->sealed_keys, nonce, header, sizeof(header), plain,
                        sizeof(plain));
out:
    nova_aead_free(aead);
    nova_wipe(wrap_key, sizeof(wrap_key));
    nova_wipe(plain, sizeof(plain));
    if (rc < 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int nova_keyslot_unwrap(nova_master_keys *out, const nova_keyslot *slot, const char *passphrase,
                        size_t passphrase_len)
{
    uint8_t header[NOVA_KEYSLOT_HEADER_LEN];
    uint8_t plain[NOVA_KEYSLOT_PLAIN_LEN];
    uint8_t wrap_key[NOVA_KEY_LEN];
    uint8_t nonce[NOVA_NONCE_LEN];
    nova_aead *aead = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!slot || (!passphrase && passphrase_len > 0))
        return nova_fail(NOVA_EINVALID, "key slot: missing argument");
    NOVA_TRY(check_slot_fields(slot, "key slot"));
    rc = derive_wrap_key(wrap_key, slot, passphrase ? passphrase : "", passphrase_len);
    if (rc < 0)
        goto out;
    rc = nova_aead_new(&aead, wrap_key);
    if (rc < 0)
        goto out;
    encode_header(header, slot);
    nova_nonce_from_counter(nonce, 0);
    rc = nova_aead_open(aead, plain, nonce, header, sizeof(header), slot->sealed_keys,
                        NOVA_KEYSLOT_SEALED_LEN);
    if (rc == NOVA_ECORRUPT) {
        rc = nova_fail(NOVA_EPASSWORD, "key slot does not open with this passphrase");
        goto out;
    }
    if (rc < 0)
        goto out;
    keys_from_bytes(out, plain);
out:
    nova_aead_free(aead);
    nova_wipe(wrap_key, sizeof(wrap_key));
    nova_wipe(plain, sizeof(plain));
    return rc;
}

int nova_keyslot_name(char out[NOVA_KEYSLOT_NAME_SIZE], const void *encoded, size_t len)
{
    nova_id digest;

    out[0] = '\0';
    NOVA_TRY(nova_sha256(&digest, encoded, len));
    memcpy(out, NOVA_KEYSLOT_PREFIX, KEYSLOT_PREFIX_LEN);
    nova_id_to_hex(&digest, out + KEYSLOT_PREFIX_LEN);
    return 0;
}

/* ---- Slots in storage ---------------------------------------------------------------- */

static int is_slot_name(const char *name)
{
    if (strncmp(name, NOVA_KEYSLOT_PREFIX, KEYSLOT_PREFIX_LEN) != 0)
        return 0;
    name += KEYSLOT_PREFIX_LEN;
    if (strlen(name) != NOVA_ID_HEX_LEN)
        return 0;
    for (size_t i = 0; i < NOVA_ID_HEX_LEN; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    return 1;
}

void nova_keyslot_list_free(nova_keyslot_list *list)
{
    if (!list)
        return;
    free(list->names);
    list->names = NULL;
    list->count = 0;
}

struct list_state {
    nova_keyslot_list *list;
    size_t cap;
};

static int collect_slot_name(const char *name, uint64_t size, void *payload)
{
    struct list_state *state = payload;
    nova_keyslot_list *list = state->list;

    (void)size;
    if (!is_slot_name(name))
        return 0;
    if (list->count == state->cap) {
        size_t cap = state->cap ? state->cap * 2 : 4;
        void *grown = realloc(list->names, cap * sizeof(list->names[0]));
        if (!grown)
            return nova_fail(NOVA_ENOMEM, "unable to list key slots");
        list->names = grown;
        state->cap = cap;
    }
    snprintf(list->names[list->count++], NOVA_KEYSLOT_NAME_SIZE, "%s", name);
    return 0;
}

static int compare_names(const void *a, const void *b) { return strcmp(a, b); }

int nova_keys_list(nova_keyslot_list *out, nova_storage *storage)
{
    struct list_state state = {out, 0};
    int rc;

    out->names = NULL;
    out->count = 0;
    rc = nova_storage_list(storage, NOVA_KEYSLOT_PREFIX, collect_slot_name, &state);
    if (rc < 0) {
        nova_keyslot_list_free(out);
        return rc;
    }
    if (out->count > 1)
        qsort(out->names, out->count, sizeof(out->names[0]), compare_names);
    return 0;
}

int nova_keys_add(nova_storage *storage, const uint8_t repo_id[NOVA_REPO_ID_LEN],
                  const nova_master_keys *keys, const char *passphrase, size_t passphrase_len,
                  const nova_kdf_params *params, char name_out[NOVA_KEYSLOT_NAME_SIZE])
{
    nova_keyslot slot;
    nova_buf bytes = NOVA_BUF_INIT;
    char name[NOVA_KEYSLOT_NAME_SIZE];
    int rc;

    if (name_out)
        name_out[0] = '\0';
    rc = nova_keyslot_create(&slot, keys, repo_id, passphrase, passphrase_len, params);
    if (rc < 0)
        goto out;
    rc = nova_keyslot_encode(&bytes, &slot);
    if (rc < 0)
        goto out;
    rc = nova_keyslot_name(name, bytes.data, bytes.len);
    if (rc < 0)
        goto out;
    rc = nova_storage_put(storage, name, bytes.data, bytes.len);
    if (rc < 0)
        goto out;
    if (name_out)
        memcpy(name_out, name, NOVA_KEYSLOT_NAME_SIZE);
out:
    nova_buf_free(&bytes);
    return rc;
}

/*
 * Reads a slot and checks it without a passphrase: its bytes hash to its name, it
 * decodes, and it belongs to repo_id. Returns 1 when usable, 0 when damaged or foreign
 * (the reason stays in the error detail), or a negative code for storage failures.
 */
static int load_slot(nova_keyslot *slot, nova_storage *storage, const char *name,
                     const uint8_t repo_id[NOVA_REPO_ID_LEN])
{
    nova_buf bytes = NOVA_BUF_INIT;
    char actual[NOVA_KEYSLOT_NAME_SIZE];
    int rc;

    rc = nova_storage_get(storage, name, 0, NOVA_STORAGE_WHOLE, &bytes);
    if (rc == NOVA_ENOTFOUND || rc == NOVA_ECORRUPT) {
        rc = 0; /* deleted meanwhile, or unreadable: not usable */
        goto out;
    }
    if (rc < 0)
        goto out;
    rc = nova_keyslot_name(actual, bytes.data, bytes.len);
    if (rc < 0)
        goto out;
    if (strcmp(actual, name) != 0) {
        rc = 0;
        nova_fail(NOVA_ECORRUPT, "key slot '%s': bytes do not match the name", name);
        goto out;
    }
    rc = nova_keyslot_decode(slot, bytes.data, bytes.len, name);
    if (rc == NOVA_ECORRUPT || rc == NOVA_EVERSION) {
        rc = 0;
        goto out;
    }
    if (rc < 0)
        goto out;
    if (!nova_ct_equal(slot->repo_id, repo_id, NOVA_REPO_ID_LEN)) {
        rc = 0;
        nova_fail(NOVA_ECORRUPT, "key slot '%s' belongs to another repository", name);
        goto out;
    }
    rc = 1;
out:
    nova_buf_free(&bytes);
    return rc;
}

int nova_keys_open(nova_master_keys *out, nova_storage *storage,
                   const uint8_t repo_id[NOVA_REPO_ID_LEN], const char *passphrase,
                   size_t passphrase_len, char name_out[NOVA_KEYSLOT_NAME_SIZE])
{
    nova_keyslot_list list = {NULL, 0};
    nova_keyslot slot;
    size_t tried = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (name_out)
        name_out[0] = '\0';
    rc = nova_keys_list(&list, storage);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < list.count; i++) {
        rc = load_slot(&slot, storage, list.names[i], repo_id);
        if (rc < 0)
            goto out;
        if (rc == 0)
            continue;
        tried++;
        rc = nova_keyslot_unwrap(out, &slot, passphrase, passphrase_len);
        if (rc == 0) {
            if (name_out)
                memcpy(name_out, list.names[i], NOVA_KEYSLOT_NAME_SIZE);
            goto out;
        }
        if (rc != NOVA_EPASSWORD)
            goto out;
    }
    if (tried == 0)
        rc = nova_fail(NOVA_ECORRUPT, "repository has no usable key slot (%zu found)",
                       list.count);
    else
        rc = nova_fail(NOVA_EPASSWORD, "no key slot opens with this passphrase (%zu tried)",
                       tried);
out:
    nova_keyslot_list_free(&list);
    if (rc < 0)
        nova_master_keys_wipe(out);
    return rc;
}

int nova_keys_remove(nova_storage *storage, const uint8_t repo_id[NOVA_REPO_ID_LEN],
                     const char *name)
{
    nova_keyslot_list list = {NULL, 0};
    nova_keyslot slot;
    int found = 0, others_usable = 0;
    int rc;

    if (!name || !is_slot_name(name))
        return nova_fail(NOVA_EINVALID, "'%s' is not a key slot name", name ? name : "(null)");
    rc = nova_keys_list(&list, storage);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < list.count; i++) {
        if (strcmp(list.names[i], name) == 0) {
            found = 1;
            continue;
        }
        if (others_usable)
            continue;
        rc = load_slot(&slot, storage, list.names[i], repo_id);
        if (rc < 0)
            goto out;
        others_usable = rc;
    }
    if (!found) {
        rc = nova_fail(NOVA_ENOTFOUND, "key slot '%s' not found", name);
        goto out;
    }
    if (!others_usable) {
        rc = nova_fail(NOVA_EINVALID,
                       "refusing to remove key slot '%s': it is the last usable key slot", name);
        goto out;
    }
    rc = nova_storage_del(storage, name);
out:
    nova_keyslot_list_free(&list);
    return rc;
}

int nova_keys_change_passphrase(nova_storage *storage, const uint8_t repo_id[NOVA_REPO_ID_LEN],
                                const char *old_passphrase, size_t old_len,
                                const char *new_passphrase, size_t new_len,
                                const nova_kdf_params *params,
                                char name_out[NOVA_KEYSLOT_NAME_SIZE])
{
    nova_master_keys keys;
    char old_name[NOVA_KEYSLOT_NAME_SIZE];
    char new_name[NOVA_KEYSLOT_NAME_SIZE];
    int rc;

    if (name_out)
        name_out[0] = '\0';
    rc = nova_keys_open(&keys, storage, repo_id, old_passphrase, old_len, old_name);
    if (rc < 0)
        goto out;
    rc = nova_keys_add(storage, repo_id, &keys, new_passphrase, new_len, params, new_name);
    if (rc < 0)
        goto out;
    if (name_out)
        memcpy(name_out, new_name, NOVA_KEYSLOT_NAME_SIZE);
    rc = nova_keys_remove(storage, repo_id, old_name);
out:
    nova_master_keys_wipe(&keys);
    return rc;
}
