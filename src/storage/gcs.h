/*
 * gcs.h -- the Google Cloud Storage backend, through the JSON API (private).
 *
 * Location syntax:  gcs:BUCKET[/PREFIX]   ("gcs:" alone takes storage.gcs.bucket).
 * Object "a/b" of the repository is the GCS object "PREFIX/a/b" in BUCKET.
 *
 * Where settings come from (first found wins):
 *   endpoint     storage.gcs.endpoint; then STORAGE_EMULATOR_HOST ("host:port" or
 *                "http://host:port", Google's client-library convention); then
 *                https://storage.googleapis.com.
 *   credentials  storage.gcs.credentials_file (a service-account JSON key: OAuth2 bearer
 *                tokens, see gcs_auth.h); then storage.gcs.hmac_access_id + hmac_secret
 *                (HMAC keys: these only work with GCS's XML API, which is S3-compatible,
 *                so nova_storage_gcs_open hands them to the S3 backend -- SigV4, region
 *                "auto", path-style -- at the same endpoint; see docs/readme-gcs.md); then
 *                GOOGLE_APPLICATION_CREDENTIALS (a key file). With an emulator endpoint and
 *                none of these, requests carry no credentials at all (the emulator checks
 *                none).
 *
 * Behaviour of the operations (storage.h's contract):
 *   put   objects up to resumable_threshold go in one multipart upload carrying their
 *         md5Hash and crc32c; larger ones through a resumable upload in chunk_size pieces
 *         (Content-Range; 308 answers say how much the server holds, and an interrupted
 *         chunk is resumed from there). Every upload sends ifGenerationMatch=0, so GCS
 *         refuses (412 -> NOVA_EEXISTS) to replace an existing object. Emulators ignore
 *         that precondition, so with an emulator endpoint put first checks that the
 *         object is absent (not atomic: two racing writers could both pass the check).
 *         The server's answer must report the size, md5Hash and crc32c that were sent; an
 *         object stored with other contents is deleted again (only that generation) and
 *         the put fails with NOVA_EIO.
 *   get   GET ...?alt=media with a Range header; a whole-object read is checked against
 *         the x-goog-hash header (crc32c and md5).
 *   stat  the object's metadata (GET .../o/NAME).
 *   list  GET .../o?prefix=...&pageToken=..., one page (up to 1000 names) at a time,
 *         handed to the callback before the next page is asked for. Names that are not
 *         valid Nova names (written by something else) are skipped.
 *   del   DELETE .../o/NAME.
 * Errors: no answer from the endpoint, 5xx and 429 are NOVA_EBACKEND (transient); refused
 * credentials (401/403 from the API after one fresh token, or a token endpoint's 4xx) are
 * NOVA_EREFUSED (never retried); both are BACKUP_001 naming the endpoint, never a key or
 * a token; 404 is NOVA_ENOTFOUND.
 * Thread-safe: the HTTP client keeps one connection per concurrent caller and the token
 * cache is shared under a mutex.
 */
#ifndef NOVA_STORAGE_GCS_H
#define NOVA_STORAGE_GCS_H

#include "nova/config.h"
#include "storage/http.h"
#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_GCS_DEFAULT_ENDPOINT "https://storage.googleapis.com"
#define NOVA_GCS_DEFAULT_RESUMABLE_THRESHOLD ((size_t)32 << 20)
#define NOVA_GCS_DEFAULT_CHUNK_SIZE ((size_t)16 << 20)
#define NOVA_GCS_CHUNK_GRANULARITY ((size_t)256 << 10) /* chunks are multiples of this */

typedef enum nova_gcs_create_check {
    NOVA_GCS_CREATE_CHECK_AUTO = 0, /* check existence first only with an emulator endpoint */
    NOVA_GCS_CREATE_CHECK_ALWAYS,
    NOVA_GCS_CREATE_CHECK_NEVER,    /* trust ifGenerationMatch=0 alone */
} nova_gcs_create_check;

/* Every string is malloc'd and owned (nova_gcs_options_clear frees them); NULL = unset. */
typedef struct nova_gcs_options {
    char *bucket;           /* required */
    char *prefix;           /* "" or "a/b": no leading or trailing '/' */
    char *endpoint;         /* base URL without trailing '/'; NULL = the Google endpoint */
    int emulator;           /* 1: the endpoint is an emulator (STORAGE_EMULATOR_HOST) */
    char *credentials_file; /* service-account key file; NULL = none */
    char *hmac_access_id;   /* HMAC key (via the S3 backend); NULL = none */
    char *hmac_secret;      /* secret */
    size_t resumable_threshold; /* 0 = NOVA_GCS_DEFAULT_RESUMABLE_THRESHOLD */
    size_t chunk_size;      /* 0 = NOVA_GCS_DEFAULT_CHUNK_SIZE; rounded down to 256 KiB
                             * (at least 256 KiB); with an emulator endpoint a resumable
                             * upload is always sent in one piece, because the emulator
                             * finalises the object on the first PUT */
    nova_gcs_create_check create_check;
    unsigned token_refresh_early_seconds; /* 0 = 60 */
    unsigned list_page_size;              /* names per listing page; 0 = 1000 (the most) */
    nova_http_options http;
} nova_gcs_options;

#define NOVA_GCS_OPTIONS_INIT                                                                      \
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, 0, 0, NOVA_GCS_CREATE_CHECK_AUTO, 0, 0,              \
     NOVA_HTTP_OPTIONS_INIT}

/* Fills *out (which it first sets to NOVA_GCS_OPTIONS_INIT) from a "gcs:BUCKET[/PREFIX]"
 * location, the configuration's storage.gcs (config may be NULL) and the environment
 * (STORAGE_EMULATOR_HOST, GOOGLE_APPLICATION_CREDENTIALS). A malformed location or bucket
 * name is NOVA_EINVALID; a malformed endpoint is NOVA_ECONFIG. On failure *out holds
 * nothing to free. */
int nova_gcs_location_parse(nova_gcs_options *out, const char *location,
                            const nova_config *config);
/* Frees the strings (wiping the HMAC secret) and resets *o to NOVA_GCS_OPTIONS_INIT. */
void nova_gcs_options_clear(nova_gcs_options *o);

/* Opens the backend. Reads and checks the key file (NOVA_ECONFIG when unusable) but makes
 * no request: an unreachable endpoint shows at the first operation. Credentials are
 * required unless o->emulator is set (NOVA_ECONFIG). o is copied.
 * With HMAC keys (and no key file) the result is an S3 backend (kind "s3") on the GCS
 * endpoint, opened by nova_storage_s3_open, which probes the bucket at once. */
int nova_storage_gcs_open(nova_storage **out, const nova_gcs_options *o);

/* CRC-32C (Castagnoli, RFC 3720), as GCS computes it; start with crc = 0. */
uint32_t nova_gcs_crc32c(uint32_t crc, const void *data, size_t len);
/* The same without the SSE4.2 instruction (what other CPUs use); for tests. */
uint32_t nova_gcs_crc32c_portable(uint32_t crc, const void *data, size_t len);

/* Test seams: how many times the backend exchanged an assertion for a token (0 without
 * a service account), and how many resumable chunks it sent. */
unsigned long nova_storage_gcs_token_exchanges(nova_storage *s);
unsigned long nova_storage_gcs_chunks_sent(nova_storage *s);

#endif
