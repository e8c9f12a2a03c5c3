/*
 * s3.h -- the Amazon S3 (and S3-compatible) storage backend (private).
 *
 * Objects live at s3://BUCKET/PREFIX/<name>. Requests are signed by libcurl's built-in
 * SigV4 (CURLOPT_AWS_SIGV4); the payload hash (x-amz-content-sha256) and Content-MD5 are
 * sent for every body, and the ETag the server answers is checked against the MD5.
 *
 * Contract (storage.h) and how S3 keeps it:
 *   put   HEAD first (present -> NOVA_EEXISTS), then PUT with `If-None-Match: *` (which
 *         AWS S3 honours since 2024, so the create is atomic there; emulators that ignore
 *         it overwrite -- see docs/readme-s3.md for why that is still sound for Nova's
 *         content-addressed and write-once names). Objects above multipart_threshold go
 *         up as a multipart upload (parts of part_size), which S3 makes visible only when
 *         completed: never partially visible. Done only after the server confirmed.
 *   get   ranged GET (Range header); a whole-object read is checked against the ETag
 *         (single-part: MD5 of the bytes) or the MD5 recorded at a multipart upload.
 *   list  ListObjectsV2, page by page (continuation tokens); each page is delivered to the
 *         callback before the next is asked for.
 *   del   HEAD then DELETE (S3 deletes silently; the contract wants NOVA_ENOTFOUND).
 * Errors: an unreachable endpoint is NOVA_EBACKEND (transient); refused credentials
 * (SignatureDoesNotMatch, InvalidAccessKeyId, ...), a missing bucket or a wrong region are
 * NOVA_EREFUSED (BACKUP_001 too, but never retried); both name the endpoint and bucket,
 * never a secret. Other 403s are NOVA_EACCESS.
 * Thread safety: one backend may be used from many threads at once.
 */
#ifndef NOVA_STORAGE_S3_H
#define NOVA_STORAGE_S3_H

#include "nova/config.h"
#include "storage/http.h"
#include "storage/storage.h"

#include <stddef.h>

typedef enum nova_s3_addressing {
    NOVA_S3_ADDRESSING_AUTO = 0, /* path-style with a custom endpoint, else virtual-hosted */
    NOVA_S3_ADDRESSING_PATH,     /* http://endpoint/BUCKET/key */
    NOVA_S3_ADDRESSING_VIRTUAL,  /* http://BUCKET.endpoint/key */
} nova_s3_addressing;

#define NOVA_S3_DEFAULT_REGION "us-east-1"
#define NOVA_S3_DEFAULT_MULTIPART_THRESHOLD ((size_t)64 << 20)
#define NOVA_S3_DEFAULT_PART_SIZE ((size_t)16 << 20)

/* Every string is owned (malloc'd) by the options; nova_s3_options_clear frees them. */
typedef struct nova_s3_options {
    char *endpoint;          /* "scheme://host[:port]", no trailing '/'; NULL = AWS */
    char *bucket;            /* required */
    char *prefix;            /* "" or "a/b" (no leading or trailing '/'); NULL = "" */
    char *region;            /* NULL = NOVA_S3_DEFAULT_REGION */
    char *access_key_id;     /* required */
    char *secret_access_key; /* required; secret: never logged or shown */
    char *session_token;     /* optional (temporary credentials); secret */
    nova_s3_addressing addressing;
    size_t multipart_threshold; /* objects larger than this use multipart; 0 = default */
    size_t part_size;           /* 0 = default; at least 5 MiB on AWS (not enforced) */
    int create_bucket;          /* open creates the bucket when it is missing */
    unsigned list_page_size;    /* keys per listing page; 0 = the server's (1000) */
    nova_http_options http;     /* ca_file is borrowed (may point into the environment) */
} nova_s3_options;

#define NOVA_S3_OPTIONS_INIT                                                                       \
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NOVA_S3_ADDRESSING_AUTO, 0, 0, 0, 0,               \
     NOVA_HTTP_OPTIONS_INIT}

/* Frees the strings and resets the options to NOVA_S3_OPTIONS_INIT. NULL-safe. */
void nova_s3_options_clear(nova_s3_options *options);

/*
 * Fills `out` (which the caller initialised with NOVA_S3_OPTIONS_INIT, and clears after
 * use, also on failure) from, in order of precedence:
 *   location  "s3:[http(s)://HOST[:PORT]/]BUCKET[/PREFIX]" (the "s3:" may be omitted);
 *             may be NULL or "" when the config names the bucket;
 *   config    storage.s3 {bucket (may hold "BUCKET/PREFIX"), region, endpoint,
 *             credentials}; may be NULL;
 *   environment  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (used only
 *             when the config has no credentials), AWS_REGION, AWS_DEFAULT_REGION,
 *             AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, and NOVA_S3_ADDRESSING
 *             ("path", "virtual" or "auto").
 * Errors: NOVA_EINVALID for a malformed location (named, without secrets), NOVA_ECONFIG
 * for a missing bucket or missing credentials.
 */
int nova_s3_location_parse(nova_s3_options *out, const char *location, const nova_config *config);

/*
 * Opens the backend. Copies everything it needs from `options`. Probes the bucket with one
 * listing request, so an unreachable endpoint (NOVA_EBACKEND) or refused credentials
 * (NOVA_EREFUSED) fail here; a missing bucket is created when options->create_bucket,
 * else NOVA_EREFUSED. The result is the raw backend: wrap it with nova_storage_retry_wrap for
 * retries with backoff.
 */
int nova_storage_s3_open(nova_storage **out, const nova_s3_options *options);

/* Deletes up to 1000 objects with one DeleteObjects request. Missing objects count as
 * deleted (S3 does not tell). *failed (may be NULL) gets how many the server refused;
 * the first refusal is the error returned. `s` must be an S3 backend (NOVA_EINVALID
 * otherwise). */
int nova_s3_delete_objects(nova_storage *s, const char *const *names, size_t count,
                           size_t *failed);

/* The "endpoint/bucket/prefix" a backend points at (for messages); borrowed. NULL when s
 * is not an S3 backend. */
const char *nova_s3_describe(const nova_storage *s);

/* Internal, exposed for tests: decodes the five XML entities and numeric references
 * (&#NN; &#xHH;) of text[0..len) into out (appended, NUL-terminated). NOVA_ECORRUPT on a
 * malformed or unknown entity. */
int nova_s3_xml_unescape(nova_buf *out, const char *text, size_t len);

/* Internal, exposed for tests and fuzzing: parses one ListObjectsV2 page. Every <Contents>
 * key below root_prefix ("" or "a/b", as in the options) that is a valid storage name is
 * delivered, relative to the prefix, to cb; other keys are skipped. *truncated tells
 * whether another page follows, next_token then holds its continuation token
 * (NUL-terminated). Returns 0, the callback's non-zero value, or NOVA_ECORRUPT (named by
 * `what`) for a body that is no listing, a malformed entry, or a truncated page without
 * a token. */
int nova_s3_list_page_parse(const char *root_prefix, const void *xml, size_t len,
                            nova_storage_list_cb cb, void *payload, int *truncated,
                            nova_buf *next_token, const char *what);

#endif
