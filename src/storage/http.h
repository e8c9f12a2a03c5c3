/*
 * http.h -- the HTTP client shared by the cloud backends (libcurl) (private).
 *
 * One nova_http_client per backend instance: it owns a pool of curl easy handles (one
 * per concurrent caller, reused so connections stay alive) and applies the backend's
 * timeouts. A request is described by nova_http_request; the response body is collected
 * in a nova_buf, headers too. A request body is sent from the caller's memory with an
 * exact Content-Length; curl's default form Content-Type and "Expect: 100-continue" are
 * not sent unless the caller sets those headers (a header with an empty value is sent
 * empty). Exception, with aws_sigv4 (libcurl signs every listed header, even a
 * suppressed one): a body without a caller's Content-Type goes as
 * application/octet-stream, and curl may add an (unsigned) Expect for large bodies.
 * Proxies follow libcurl's environment variables (https_proxy, no_proxy).
 * Classification for the retry wrapper (storage.h):
 *   connection refused / DNS / timeout / reset / truncated body  -> NOVA_EBACKEND
 *   HTTP 5xx, 429, 503 SlowDown                                  -> NOVA_EBACKEND
 *   401, 403                                                     -> NOVA_EACCESS
 *   404                                                          -> NOVA_ENOTFOUND
 *   409, 412 on a conditional create                             -> NOVA_EEXISTS
 *   other 4xx                                                    -> NOVA_EINVALID
 * Messages name the endpoint and object, never a credential or a signed URL's query.
 */
#ifndef NOVA_STORAGE_HTTP_H
#define NOVA_STORAGE_HTTP_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct nova_http_client nova_http_client;

typedef struct nova_http_options {
    long connect_timeout_ms; /* default 10000 */
    long request_timeout_ms; /* whole request; default 300000 (0 = none) */
    long low_speed_bytes;    /* abort when slower than this ... */
    long low_speed_seconds;  /* ... for this long; defaults 1024 B/s for 30 s */
    const char *ca_file;     /* NULL = system default */
    int insecure;            /* skip TLS verification (tests only) */
} nova_http_options;

#define NOVA_HTTP_OPTIONS_INIT {10000, 300000, 1024, 30, NULL, 0}

int nova_http_client_new(nova_http_client **out, const nova_http_options *options);
void nova_http_client_free(nova_http_client *client);

typedef struct nova_http_header {
    const char *name;
    const char *value;
} nova_http_header;

typedef struct nova_http_request {
    const char *method; /* "GET", "PUT", "POST", "HEAD", "DELETE" */
    const char *url;    /* full URL, query included, already percent-encoded */
    const nova_http_header *headers;
    size_t header_count;
    const void *body; /* may be NULL */
    size_t body_len;
    const char *aws_sigv4; /* when set: CURLOPT_AWS_SIGV4 value, e.g. "aws:amz:us-east-1:s3" */
    const char *userpwd;   /* with aws_sigv4: "ACCESS:SECRET" (never logged) */
    const char *what;      /* names the object in error messages, e.g. "s3 object 'data/ab..'" */
} nova_http_request;

typedef struct nova_http_response {
    long status;
    nova_buf body;    /* response body (appended; caller frees with nova_buf_free) */
    nova_buf headers; /* raw header lines "Name: value\r\n", lower-cased names */
} nova_http_response;

#define NOVA_HTTP_RESPONSE_INIT {0, NOVA_BUF_INIT, NOVA_BUF_INIT}

/* Performs the request. Returns 0 when a response arrived (any status; look at
 * response->status), or NOVA_EBACKEND (named endpoint) when none did or the body was
 * truncated. Thread-safe: callers on different threads get different handles. */
int nova_http_perform(nova_http_client *client, const nova_http_request *request,
                      nova_http_response *response);

/* The value of a response header (case-insensitive name), NUL-terminated into out;
 * 0 when found, NOVA_ENOTFOUND otherwise. */
int nova_http_header_get(const nova_http_response *response, const char *name, char *out,
                         size_t out_size);

/* Maps a final status to a NOVA_E code (table above) and sets the error detail with the
 * request's `what`, the status and, when the body holds one, the service's error code
 * (e.g. S3 <Code>SignatureDoesNotMatch</Code>). 2xx returns 0. */
int nova_http_status_error(const nova_http_request *request, const nova_http_response *response);

void nova_http_response_reset(nova_http_response *response);
void nova_http_response_free(nova_http_response *response);

/* Appends text percent-encoded per RFC 3986 (unreserved A-Za-z0-9-._~ kept, '/' kept when
 * keep_slash, everything else as %XX upper-case); no NUL is appended. */
int nova_http_percent_encode(nova_buf *out, const char *text, int keep_slash);

#endif
