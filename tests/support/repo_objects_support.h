/*
 * repo_objects_support.h -- helpers for the tests of the repository objects (envelope,
 * key slots, config, locks, snapshots): hex decoding and storage listings.
 */
#ifndef NOVA_TEST_REPO_OBJECTS_SUPPORT_H
#define NOVA_TEST_REPO_OBJECTS_SUPPORT_H

#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

/* Decodes hex (spaces ignored) into out; returns the byte count. Aborts on bad input. */
size_t test_hex_decode(uint8_t *out, size_t out_cap, const char *hex);
/* Lowercase hex of data into out (2 * len + 1 bytes). */
void test_hex_encode(char *out, const void *data, size_t len);

/* Every object name under prefix, sorted, joined with '\n' (malloc'd, "" when none).
 * Aborts when the listing fails. */
char *test_storage_listing(nova_storage *storage, const char *prefix);
/* Number of lines in a listing. */
size_t test_listing_count(const char *listing);

#endif
