/*
 * azure.h -- the Azure Blob Storage backend (private).
 *
 * A repository at `azure:CONTAINER[/PREFIX]` keeps object "a/b" as the block blob
 * "PREFIX/a/b" in CONTAINER. Authentication is SharedKey (HMAC-SHA-256 of the canonical
 * request under the account key, computed here) or a SAS token appended to every URL.
 * Contract mapping (storage.h):
 *   put   Put Blob with `If-None-Match: *` (409/412 = NOVA_EEXISTS); objects larger than
 *         block_threshold go up as Put Block x N + Put Block List, the list again
 *         conditional, so the blob appears whole and only if absent. Content-MD5 is sent with
 *         every body (the service checks it) and stored as the blob's MD5.
 *   get   Get Blob, ranged with x-ms-range; a whole-object read is compared with the
 *         Content-MD5 the service returns (NOVA_ECHECKSUM on mismatch).
 *   stat  Get Blob Properties.  list  List Blobs by prefix, page after page (each page is
 *   streamed to the callback).  del  Delete Blob.
 * Failures: no response or 5xx/429 -> NOVA_EBACKEND naming the endpoint; credentials the
 * service refuses (401, or 403 AuthenticationFailed/AuthorizationFailure) -> NOVA_EREFUSED
 * (BACKUP_001, never retried) naming the endpoint; other 403 (e.g. a SAS without the permission) -> NOVA_EACCESS;
 * 400 Md5Mismatch (bytes damaged on the way) -> NOVA_EIO. Messages never hold the key, a
 * signature or a SAS token.
 * Thread-safe: one instance serves any number of threads (the HTTP client pools handles).
 */
#ifndef NOVA_STORAGE_AZURE_H
#define NOVA_STORAGE_AZURE_H

#include "common/buf.h"
#include "nova/config.h"
#include "storage/http.h"
#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_AZURE_API_VERSION "2025-11-05"
#define NOVA_AZURE_DEFAULT_BLOCK_THRESHOLD ((size_t)64 << 20)
#define NOVA_AZURE_DEFAULT_BLOCK_SIZE ((size_t)8 << 20)
#define NOVA_AZURE_DEFAULT_LIST_PAGE 5000u
/* The storage emulator's published development account (not a secret). */
#define NOVA_AZURE_DEV_ACCOUNT "devstoreaccount1"
#define NOVA_AZURE_DEV_KEY                                                                          \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define NOVA_AZURE_DEV_ENDPOINT "http://127.0.0.1:10000/devstoreaccount1"

/*
 * Where and how to reach a container. nova_azure_location_parse fills the strings with
 * copies it owns (in owned_; free them with nova_azure_options_clear); a caller filling
 * the struct by hand points them anywhere (clear is then harmless). Exactly one of key and
 * sas is used: key when set, else sas.
 */
enum { NOVA_AZURE_OWNED_STRINGS = 6 };
typedef struct nova_azure_options {
    const char *endpoint;  /* blob service URL without trailing '/': "https://ACCOUNT.blob.
                              core.windows.net" or path-style "http://127.0.0.1:10000/
                              devstoreaccount1" */
    const char *account;   /* account name (needed with key) */
    const char *key;       /* base64 account key (secret) */
    const char *sas;       /* SAS token, with or without the leading '?' (secret) */
    const char *container; /* 3..63 of [a-z0-9-] */
    const char *prefix;    /* NULL or "" = container root; else a valid object name */
    int create;            /* create the container when it does not exist (nova init) */
    size_t block_threshold;  /* objects larger than this use Put Block (0 = default 64 MiB) */
    size_t block_size;       /* block size for those (0 = default 8 MiB) */
    unsigned list_page_size; /* maxresults of List Blobs (0 = default 5000) */
    nova_http_options http;
    char *owned_[NOVA_AZURE_OWNED_STRINGS]; /* private to azure.c */
} nova_azure_options;

#define NOVA_AZURE_OPTIONS_INIT                                                                    \
    {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, NOVA_HTTP_OPTIONS_INIT,                       \
     {NULL, NULL, NULL, NULL, NULL, NULL}}

/*
 * Parses `azure:CONTAINER[/PREFIX]` (the container may be left out when the config names
 * storage.azure.container) and fills `out` (which must be NOVA_AZURE_OPTIONS_INIT) with the
 * container, prefix, endpoint and credentials. Credentials, first that applies:
 *   1. config storage.azure: connection_string; else account + key; else account + sas;
 *   2. environment: AZURE_STORAGE_CONNECTION_STRING; else AZURE_STORAGE_ACCOUNT with
 *      AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN.
 * A connection string's BlobEndpoint overrides the endpoint; UseDevelopmentStorage=true
 * means the emulator's account on 127.0.0.1:10000. config may be NULL.
 * NOVA_EINVALID for a malformed location, NOVA_ECONFIG for missing or malformed
 * credentials (messages name the setting, never its value). `create` is left 0.
 */
int nova_azure_location_parse(nova_azure_options *out, const char *location,
                              const nova_config *config);

/* Frees the strings nova_azure_location_parse allocated (zeroing the secrets) and sets
 * the six string fields to NULL (keeps `create` and the tuning fields). NULL-safe. */
void nova_azure_options_clear(nova_azure_options *o);

/*
 * Parses an Azure connection string ("Key=Value;..."; keys case-insensitive; values may
 * hold '=') into endpoint, account, key and sas of `out` (owned; freed by
 * nova_azure_options_clear). NOVA_ECONFIG when it names no usable account or endpoint.
 */
int nova_azure_connection_string_parse(nova_azure_options *out, const char *text);

/*
 * Opens the container: checks that the endpoint answers and accepts the credentials
 * (a one-entry List Blobs), creating the container when it is missing and o->create is
 * set. NOVA_EBACKEND (naming the endpoint) when it cannot be reached; NOVA_EREFUSED when it
 * refuses the credentials or answers something else than a listing; NOVA_EACCESS when the
 * credentials lack the list permission; NOVA_ENOTFOUND when the container
 * does not exist and o->create is 0; NOVA_EINVALID or NOVA_ECONFIG for bad options.
 */
int nova_storage_azure_open(nova_storage **out, const nova_azure_options *o);

/* ---- pieces exposed for the known-answer tests ------------------------------------------ */

/* Base64 (RFC 4648, with padding) appended to out. */
int nova_azure_base64_encode(nova_buf *out, const void *data, size_t len);
/* Decodes padded base64 (no whitespace) appended to out; NOVA_EINVALID when malformed. */
int nova_azure_base64_decode(nova_buf *out, const char *text, size_t len);

/*
 * The SharedKey string-to-sign of a request (Blob service, version 2015-02-21 or later):
 * method, the standard headers (Content-Length empty when 0), the x-ms-* headers lower-
 * cased and sorted, and the canonical resource "/ACCOUNT" + URL path + one
 * "\nname:value" line per query parameter (names lower-cased and sorted, values
 * percent-decoded, repeated names joined with ','). Headers are matched
 * case-insensitively; content_length is the body's size. Replaces out's content.
 */
int nova_azure_string_to_sign(nova_buf *out, const char *account, const char *method,
                              const char *url, const nova_http_header *headers,
                              size_t header_count, size_t content_length);

/* "SharedKey ACCOUNT:base64(HMAC-SHA-256(key, string_to_sign))", NUL-terminated in out
 * (replaces its content). */
int nova_azure_authorization(nova_buf *out, const char *account, const uint8_t *key,
                             size_t key_len, const char *string_to_sign, size_t len);

/* The Content-MD5 value of a body: base64 of its MD5 (24 characters and a NUL). */
int nova_azure_content_md5(char out[25], const void *data, size_t len);

/*
 * Extracts one page of a List Blobs response: calls cb(name, size, payload) for each
 * <Blob> with its <Name> (entities decoded) and <Content-Length>; stores <NextMarker> in
 * next_marker (NUL-terminated; empty when the listing is complete). A callback result
 * other than 0 stops and is returned. NOVA_EIO when the document is not a listing.
 * Blobs whose name is marked Encoded="true" are skipped (Nova never writes such names).
 */
typedef int (*nova_azure_list_entry_cb)(const char *name, uint64_t size, void *payload);
int nova_azure_list_parse(const char *xml, size_t len, nova_azure_list_entry_cb cb,
                          void *payload, nova_buf *next_marker);

#endif
