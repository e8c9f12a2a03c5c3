/*
 * test_keys.c -- master keys and key slots: a slot built by an independent implementation
 * (Python hashlib.scrypt + 'cryptography' HKDF and AES-256-GCM) opens here, round trips,
 * header tampering (NOVA_ECORRUPT / NOVA_EVERSION) against sealed-part tampering and
 * wrong passphrases (NOVA_EPASSWORD), and the repository operations over a local
 * directory: add, list, open, remove (never the last), change passphrase, touching
 * nothing but keys/ objects.
 *
 * scrypt runs with log2_n = 10 everywhere except test_default_params.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "nova/error.h"
#include "repo/keys.h"
#include "repo_objects_support.h"
#include "test_support.h"

static const nova_kdf_params fast = {10, 8, 1};

/* Passphrase "correct horse battery staple", scrypt log2_n 10, r 8, p 1, salt 10..2f,
 * repository id a0..bf, master keys 0x11 x32, 0x22 x32, 0x33 x32. */
static const char kat_slot_hex[] =
    "4e564b5301010a000800000001000000101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf214091758583bf4539669631bfb7d452"
    "174e6574d5b338a1c0e1316ba0c8fa8078264a0741d363b15b453f689678e6f9"
    "811b286febaf2a039d50b18d14bab28ac0f2e982e216ecb6be3821d0dae88cd7"
    "da9f2c3dbf034d643e20ef88be15b90dd8225b66bf1b1a9fc53c8f7db1f1b402";
static const char kat_slot_name[] =
    "keys/7d97c8e45c52f5be5d128721fc1b2588c87f9e679fac7e458a42b922bd1bb8b2";
static const char kat_passphrase[] = "correct horse battery staple";

static void kat_bytes(uint8_t out[NOVA_KEYSLOT_LEN])
{
    assert_int_equal(test_hex_decode(out, NOVA_KEYSLOT_LEN, kat_slot_hex), NOVA_KEYSLOT_LEN);
}

static void fill_repo_id(uint8_t id[NOVA_REPO_ID_LEN], uint8_t first)
{
    for (size_t i = 0; i < NOVA_REPO_ID_LEN; i++)
        id[i] = (uint8_t)(first + i);
}

static void test_master_keys_generate(void **state)
{
    nova_master_keys a, b;
    (void)state;

    assert_int_equal(nova_master_keys_generate(&a), 0);
    assert_int_equal(nova_master_keys_generate(&b), 0);
    assert_memory_not_equal(&a, &b, sizeof(a));
    assert_memory_not_equal(a.enc, a.id, NOVA_KEY_LEN);
    nova_master_keys_wipe(&a);
    for (size_t i = 0; i < sizeof(a.enc); i++)
        assert_int_equal(a.enc[i], 0);
    nova_master_keys_wipe(NULL);
}

static void test_known_slot(void **state)
{
    uint8_t bytes[NOVA_KEYSLOT_LEN];
    nova_keyslot slot;
    nova_master_keys keys;
    nova_buf encoded = NOVA_BUF_INIT;
    char name[NOVA_KEYSLOT_NAME_SIZE];
    uint8_t repo_id[NOVA_REPO_ID_LEN];
    (void)state;

    kat_bytes(bytes);
    assert_int_equal(nova_keyslot_decode(&slot, bytes, sizeof(bytes), "kat"), 0);
    assert_int_equal(slot.kdf_id, NOVA_KDF_SCRYPT);
    assert_int_equal(slot.kdf.log2_n, 10);
    assert_int_equal(slot.kdf.r, 8);
    assert_int_equal(slot.kdf.p, 1);
    fill_repo_id(repo_id, 0xa0);
    assert_memory_equal(slot.repo_id, repo_id, NOVA_REPO_ID_LEN);
    assert_int_equal(nova_keyslot_unwrap(&keys, &slot, kat_passphrase, strlen(kat_passphrase)), 0);
    for (size_t i = 0; i < NOVA_KEY_LEN; i++) {
        assert_int_equal(keys.enc[i], 0x11);
        assert_int_equal(keys.id[i], 0x22);
        assert_int_equal(keys.chunker[i], 0x33);
    }
    assert_int_equal(nova_keyslot_encode(&encoded, &slot), 0);
    assert_int_equal(encoded.len, NOVA_KEYSLOT_LEN);
    assert_memory_equal(encoded.data, bytes, NOVA_KEYSLOT_LEN);
    assert_int_equal(nova_keyslot_name(name, bytes, sizeof(bytes)), 0);
    assert_string_equal(name, kat_slot_name);

    assert_int_equal(nova_keyslot_unwrap(&keys, &slot, "Correct horse battery staple",
                                         strlen(kat_passphrase)),
                     NOVA_EPASSWORD);
    assert_int_equal(nova_keyslot_unwrap(&keys, &slot, kat_passphrase, strlen(kat_passphrase) - 1),
                     NOVA_EPASSWORD);
    nova_buf_free(&encoded);
}

static void test_round_trip(void **state)
{
    nova_master_keys keys, opened;
    nova_keyslot slot, decoded, second;
    nova_buf bytes = NOVA_BUF_INIT;
    uint8_t repo_id[NOVA_REPO_ID_LEN];
    (void)state;

    fill_repo_id(repo_id, 1);
    assert_int_equal(nova_master_keys_generate(&keys), 0);
    assert_int_equal(nova_keyslot_create(&slot, &keys, repo_id, "pass", 4, &fast), 0);
    assert_int_equal(nova_keyslot_encode(&bytes, &slot), 0);
    assert_int_equal(nova_keyslot_decode(&decoded, bytes.data, bytes.len, "rt"), 0);
    assert_int_equal(nova_keyslot_unwrap(&opened, &decoded, "pass", 4), 0);
    assert_memory_equal(&opened, &keys, sizeof(keys));
    assert_int_equal(nova_keyslot_unwrap(&opened, &decoded, "pasS", 4), NOVA_EPASSWORD);
    assert_int_equal(nova_error_last()->code, NOVA_EPASSWORD);

    /* The same passphrase twice gives different slots (fresh salt). */
    assert_int_equal(nova_keyslot_create(&second, &keys, repo_id, "pass", 4, &fast), 0);
    assert_memory_not_equal(second.salt, slot.salt, NOVA_SALT_LEN);
    assert_memory_not_equal(second.sealed_keys, slot.sealed_keys, NOVA_KEYSLOT_SEALED_LEN);

    /* An empty passphrase is allowed by the format (the CLI may refuse it). */
    assert_int_equal(nova_keyslot_create(&slot, &keys, repo_id, "", 0, &fast), 0);
    assert_int_equal(nova_keyslot_unwrap(&opened, &slot, "", 0), 0);
    assert_memory_equal(&opened, &keys, sizeof(keys));

    /* Parameters outside the bounds are refused when creating. */
    const nova_kdf_params huge = {30, 8, 1};
    assert_int_equal(nova_keyslot_create(&slot, &keys, repo_id, "pass", 4, &huge),
                     NOVA_EINVALID);
    nova_buf_free(&bytes);
}

static void test_default_params(void **state)
{
    nova_master_keys keys, opened;
    nova_keyslot slot;
    uint8_t repo_id[NOVA_REPO_ID_LEN];
    const nova_kdf_params defaults = NOVA_KDF_PARAMS_DEFAULT;
    (void)state;

    fill_repo_id(repo_id, 2);
    assert_int_equal(nova_master_keys_generate(&keys), 0);
    assert_int_equal(nova_keyslot_create(&slot, &keys, repo_id, "default", 7, NULL), 0);
    assert_int_equal(slot.kdf.log2_n, defaults.log2_n);
    assert_int_equal(slot.kdf.r, defaults.r);
    assert_int_equal(slot.kdf.p, defaults.p);
    assert_int_equal(nova_keyslot_unwrap(&opened, &slot, "default", 7), 0);
    assert_memory_equal(&opened, &keys, sizeof(keys));
}

static int decode_with(const uint8_t *base, size_t offset, uint8_t value)
{
    uint8_t bytes[NOVA_KEYSLOT_LEN];
    nova_keyslot slot;
    memcpy(bytes, base, sizeof(bytes));
    bytes[offset] = value;
    return nova_keyslot_decode(&slot, bytes, sizeof(bytes), "tampered");
}

static void test_header_tampering_is_corruption(void **state)
{
    uint8_t bytes[NOVA_KEYSLOT_LEN];
    nova_keyslot slot;
    (void)state;

    kat_bytes(bytes);
    assert_int_equal(decode_with(bytes, 0, 'X'), NOVA_ECORRUPT);   /* magic */
    assert_int_equal(decode_with(bytes, 4, 0), NOVA_ECORRUPT);     /* version 0 */
    assert_int_equal(decode_with(bytes, 4, 2), NOVA_EVERSION);     /* newer version */
    assert_int_equal(decode_with(bytes, 5, 0), NOVA_ECORRUPT);     /* KDF id */
    assert_int_equal(decode_with(bytes, 5, 2), NOVA_ECORRUPT);
    assert_int_equal(decode_with(bytes, 6, 9), NOVA_ECORRUPT);     /* log2_n below 10 */
    assert_int_equal(decode_with(bytes, 6, 40), NOVA_ECORRUPT);    /* log2_n far too big */
    assert_int_equal(decode_with(bytes, 7, 1), NOVA_ECORRUPT);     /* reserved */
    assert_int_equal(decode_with(bytes, 8, 0), NOVA_ECORRUPT);     /* r = 0 */
    assert_int_equal(decode_with(bytes, 11, 1), NOVA_ECORRUPT);    /* r = 2^24 + 8 */
    assert_int_equal(decode_with(bytes, 12, 0), NOVA_ECORRUPT);    /* p = 0 */
    assert_int_equal(decode_with(bytes, 13, 1), NOVA_ECORRUPT);    /* p = 257 */
    assert_non_null(strstr(nova_error_last()->message, "tampered"));

    for (size_t len = 0; len < sizeof(bytes); len++) {
        uint8_t *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, bytes, len);
        assert_int_equal(nova_keyslot_decode(&slot, copy, len, "short"), NOVA_ECORRUPT);
        free(copy);
    }
    uint8_t longer[NOVA_KEYSLOT_LEN + 1];
    memcpy(longer, bytes, sizeof(bytes));
    longer[NOVA_KEYSLOT_LEN] = 0;
    assert_int_equal(nova_keyslot_decode(&slot, longer, sizeof(longer), "long"), NOVA_ECORRUPT);
}

/* Every byte from the salt on is either in bounds or authenticated: a change there is
 * indistinguishable from a wrong passphrase. */
static void test_sealed_tampering_is_wrong_passphrase(void **state)
{
    uint8_t bytes[NOVA_KEYSLOT_LEN];
    nova_keyslot slot;
    nova_master_keys keys;
    (void)state;

    kat_bytes(bytes);
    for (size_t i = 16; i < NOVA_KEYSLOT_LEN; i++) {
        bytes[i] ^= 0x04;
        assert_int_equal(nova_keyslot_decode(&slot, bytes, sizeof(bytes), "t"), 0);
        assert_int_equal(nova_keyslot_unwrap(&keys, &slot, kat_passphrase, strlen(kat_passphrase)),
                         NOVA_EPASSWORD);
        bytes[i] ^= 0x04;
    }
    /* In-bounds parameter changes too: r 8 -> 9, p 1 -> 2, log2_n 10 -> 11. */
    static const size_t offsets[] = {8, 12, 6};
    static const uint8_t values[] = {9, 2, 11};
    for (size_t i = 0; i < 3; i++) {
        uint8_t saved = bytes[offsets[i]];
        bytes[offsets[i]] = values[i];
        assert_int_equal(nova_keyslot_decode(&slot, bytes, sizeof(bytes), "t"), 0);
        assert_int_equal(nova_keyslot_unwrap(&keys, &slot, kat_passphrase, strlen(kat_passphrase)),
                         NOVA_EPASSWORD);
        bytes[offsets[i]] = saved;
    }
    assert_int_equal(nova_keyslot_decode(&slot, bytes, sizeof(bytes), "t"), 0);
    assert_int_equal(nova_keyslot_unwrap(&keys, &slot, kat_passphrase, strlen(kat_passphrase)), 0);
}

/* ---- Repository operations ------------------------------------------------------------ */

typedef struct repo_fixture {
    char *dir;
    nova_storage *storage;
    uint8_t repo_id[NOVA_REPO_ID_LEN];
    nova_master_keys keys;
} repo_fixture;

static int repo_setup(void **state)
{
    repo_fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = test_make_temp_dir("keys");
    assert_int_equal(nova_storage_local_open(&f->storage, f->dir, 1), 0);
    assert_int_equal(nova_random_bytes(f->repo_id, sizeof(f->repo_id)), 0);
    assert_int_equal(nova_master_keys_generate(&f->keys), 0);
    /* Objects that key operations must never touch. */
    assert_int_equal(nova_storage_put(f->storage, "config", "c", 1), 0);
    assert_int_equal(nova_storage_put(f->storage, "snapshots/00", "s", 1), 0);
    assert_int_equal(nova_storage_put(f->storage, "data/ab/cd", "d", 1), 0);
    *state = f;
    return 0;
}

static int repo_teardown(void **state)
{
    repo_fixture *f = *state;
    nova_storage_free(f->storage);
    test_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* The listing of every object outside keys/. */
static char *non_key_objects(nova_storage *storage)
{
    char *all = test_storage_listing(storage, "");
    char *out = calloc(1, strlen(all) + 2);
    char *save = NULL;
    assert_non_null(out);
    for (char *line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "keys/", 5) == 0)
            continue;
        strcat(out, line);
        strcat(out, "\n");
    }
    free(all);
    return out;
}

static void assert_slot_names(nova_storage *storage, size_t count)
{
    nova_keyslot_list list;
    char *listing = test_storage_listing(storage, "keys/");
    assert_int_equal(nova_keys_list(&list, storage), 0);
    assert_int_equal(list.count, count);
    assert_int_equal(test_listing_count(listing), count);
    for (size_t i = 0; i < list.count; i++)
        assert_non_null(strstr(listing, list.names[i]));
    nova_keyslot_list_free(&list);
    free(listing);
}

static void test_add_open_remove(void **state)
{
    repo_fixture *f = *state;
    char name_a[NOVA_KEYSLOT_NAME_SIZE], name_b[NOVA_KEYSLOT_NAME_SIZE];
    char opened_name[NOVA_KEYSLOT_NAME_SIZE];
    nova_master_keys via_a, via_b;
    char *before = non_key_objects(f->storage);
    char *after;

    assert_int_equal(nova_keys_open(&via_a, f->storage, f->repo_id, "a", 1, NULL),
                     NOVA_ECORRUPT); /* no slot at all */
    assert_int_equal(nova_keys_add(f->storage, f->repo_id, &f->keys, "alpha", 5, &fast, name_a),
                     0);
    assert_int_equal(strncmp(name_a, "keys/", 5), 0);
    assert_int_equal(strlen(name_a), 5 + 64);
    assert_slot_names(f->storage, 1);
    assert_int_equal(nova_keys_add(f->storage, f->repo_id, &f->keys, "bravo", 5, &fast, name_b),
                     0);
    assert_slot_names(f->storage, 2);

    assert_int_equal(nova_keys_open(&via_a, f->storage, f->repo_id, "alpha", 5, opened_name), 0);
    assert_string_equal(opened_name, name_a);
    assert_int_equal(nova_keys_open(&via_b, f->storage, f->repo_id, "bravo", 5, opened_name), 0);
    assert_string_equal(opened_name, name_b);
    assert_memory_equal(&via_a, &via_b, sizeof(via_a));
    assert_memory_equal(&via_a, &f->keys, sizeof(via_a));
    assert_int_equal(nova_keys_open(&via_a, f->storage, f->repo_id, "charlie", 7, NULL),
                     NOVA_EPASSWORD);
    for (size_t i = 0; i < NOVA_KEY_LEN; i++)
        assert_int_equal(via_a.enc[i], 0);

    assert_int_equal(nova_keys_remove(f->storage, f->repo_id, name_a), 0);
    assert_slot_names(f->storage, 1);
    assert_int_equal(nova_keys_open(&via_a, f->storage, f->repo_id, "alpha", 5, NULL),
                     NOVA_EPASSWORD);
    assert_int_equal(nova_keys_remove(f->storage, f->repo_id, name_a), NOVA_ENOTFOUND);
    assert_int_equal(nova_keys_remove(f->storage, f->repo_id, name_b), NOVA_EINVALID);
    assert_non_null(strstr(nova_error_last()->message, "last"));
    assert_slot_names(f->storage, 1);
    assert_int_equal(nova_keys_open(&via_b, f->storage, f->repo_id, "bravo", 5, NULL), 0);
    assert_int_equal(nova_keys_remove(f->storage, f->repo_id, "config"), NOVA_EINVALID);

    after = non_key_objects(f->storage);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_change_passphrase(void **state)
{
    repo_fixture *f = *state;
    char old_name[NOVA_KEYSLOT_NAME_SIZE], new_name[NOVA_KEYSLOT_NAME_SIZE];
    nova_master_keys opened;
    char *before, *after, *slots;

    assert_int_equal(nova_keys_add(f->storage, f->repo_id, &f->keys, "old", 3, &fast, old_name),
                     0);
    before = non_key_objects(f->storage);
    assert_int_equal(nova_keys_change_passphrase(f->storage, f->repo_id, "wrong", 5, "new", 3,
                                                 &fast, new_name),
                     NOVA_EPASSWORD);
    assert_slot_names(f->storage, 1);
    assert_int_equal(nova_keys_change_passphrase(f->storage, f->repo_id, "old", 3, "new", 3,
                                                 &fast, new_name),
                     0);
    assert_string_not_equal(old_name, new_name);
    slots = test_storage_listing(f->storage, "keys/");
    assert_string_equal(slots, new_name);
    assert_int_equal(nova_keys_open(&opened, f->storage, f->repo_id, "old", 3, NULL),
                     NOVA_EPASSWORD);
    assert_int_equal(nova_keys_open(&opened, f->storage, f->repo_id, "new", 3, NULL), 0);
    assert_memory_equal(&opened, &f->keys, sizeof(opened));
    after = non_key_objects(f->storage);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(slots);
}

static void test_damaged_and_foreign_slots(void **state)
{
    repo_fixture *f = *state;
    char good[NOVA_KEYSLOT_NAME_SIZE], foreign[NOVA_KEYSLOT_NAME_SIZE];
    char damaged[NOVA_KEYSLOT_NAME_SIZE], opened_name[NOVA_KEYSLOT_NAME_SIZE];
    uint8_t other_repo[NOVA_REPO_ID_LEN];
    uint8_t bytes[NOVA_KEYSLOT_LEN];
    nova_master_keys opened;

    /* A slot of another repository, with its own passphrase. */
    memcpy(other_repo, f->repo_id, sizeof(other_repo));
    other_repo[0] ^= 1;
    assert_int_equal(nova_keys_add(f->storage, other_repo, &f->keys, "foreign", 7, &fast, foreign),
                     0);
    assert_int_equal(nova_keys_open(&opened, f->storage, f->repo_id, "foreign", 7, NULL),
                     NOVA_ECORRUPT); /* no usable slot */

    /* A slot stored under a name that is not its hash (bit rot). */
    kat_bytes(bytes);
    snprintf(damaged, sizeof(damaged), "keys/%064d", 0);
    assert_int_equal(nova_storage_put(f->storage, damaged, bytes, sizeof(bytes)), 0);

    assert_int_equal(nova_keys_add(f->storage, f->repo_id, &f->keys, "good", 4, &fast, good), 0);
    assert_int_equal(nova_keys_open(&opened, f->storage, f->repo_id, "good", 4, opened_name), 0);
    assert_string_equal(opened_name, good);
    assert_int_equal(nova_keys_open(&opened, f->storage, f->repo_id, "foreign", 7, NULL),
                     NOVA_EPASSWORD);
    assert_int_equal(nova_keys_open(&opened, f->storage, f->repo_id, kat_passphrase,
                                    strlen(kat_passphrase), NULL),
                     NOVA_EPASSWORD);
    /* Neither the damaged nor the foreign slot counts as a remaining slot. */
    assert_int_equal(nova_keys_remove(f->storage, f->repo_id, good), NOVA_EINVALID);
    assert_int_equal(nova_keys_remove(f->storage, f->repo_id, damaged), 0);
    assert_slot_names(f->storage, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_master_keys_generate),
        cmocka_unit_test(test_known_slot),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_default_params),
        cmocka_unit_test(test_header_tampering_is_corruption),
        cmocka_unit_test(test_sealed_tampering_is_wrong_passphrase),
        cmocka_unit_test_setup_teardown(test_add_open_remove, repo_setup, repo_teardown),
        cmocka_unit_test_setup_teardown(test_change_passphrase, repo_setup, repo_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_and_foreign_slots, repo_setup,
                                        repo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
