/*
 * gcs_auth.h -- OAuth2 for Google Cloud Storage with a service-account key (private).
 *
 * The flow (RFC 7523, Google's "service account" grant):
 *   1. the key file (JSON) gives client_email, private_key (PEM, RSA), private_key_id and
 *      token_uri;
 *   2. a JWT {"iss": client_email, "scope": SCOPE, "aud": token_uri, "iat": now,
 *      "exp": now + 3600} is signed RS256 (RSASSA-PKCS1-v1_5 over SHA-256, OpenSSL
 *      EVP_DigestSign) and written as base64url(header).base64url(claims).base64url(sig);
 *   3. it is POSTed to token_uri as grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer
 *      &assertion=JWT, which answers {"access_token": ..., "expires_in": ...};
 *   4. the token is cached and used as "Authorization: Bearer TOKEN" until shortly before
 *      it expires (refresh_early_seconds, at most half its lifetime), then fetched again.
 * Secrets (the private key, the assertion, the access token) never appear in error
 * messages or logs; the key's memory is wiped when freed. A refusal by the token endpoint
 * (a 4xx but 408 and 429) is NOVA_EREFUSED, no answer from it (or a 5xx, 408, 429)
 * NOVA_EBACKEND; both name the token endpoint and the account.
 * A token source is thread-safe: one exchange at a time, every caller shares the result.
 */
#ifndef NOVA_STORAGE_GCS_AUTH_H
#define NOVA_STORAGE_GCS_AUTH_H

#include "common/buf.h"
#include "storage/http.h"

#include <stddef.h>
#include <stdint.h>

#define NOVA_GCS_SCOPE_READ_WRITE "https://www.googleapis.com/auth/devstorage.read_write"
#define NOVA_GCS_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define NOVA_GCS_JWT_LIFETIME_SECONDS 3600
#define NOVA_GCS_JWT_GRANT_TYPE "urn:ietf:params:oauth:grant-type:jwt-bearer"
/* Room for "Bearer " + an access token (Google's are a few hundred bytes) + NUL. */
#define NOVA_GCS_AUTH_HEADER_MAX 4096

/* The fields of a service-account key file that the flow needs (all malloc'd). */
typedef struct nova_gcs_service_account {
    char *client_email;
    char *private_key;    /* PEM text; secret */
    char *private_key_id; /* NULL when the file has none (then the JWT has no "kid") */
    char *token_uri;      /* NOVA_GCS_DEFAULT_TOKEN_URI when the file has none */
} nova_gcs_service_account;

/* Parses a key file's JSON. origin names it in errors (a path). "type", when present, must
 * be "service_account"; client_email and private_key are required; token_uri must be an
 * https URL, or an http URL to a loopback host (tests). NOVA_ECONFIG otherwise, naming the
 * origin and the field but never quoting the document. */
int nova_gcs_service_account_parse(nova_gcs_service_account *out, const char *json, size_t len,
                                   const char *origin);
/* Reads and parses a key file; a file that cannot be read is NOVA_ECONFIG naming it. */
int nova_gcs_service_account_load(nova_gcs_service_account *out, const char *path);
/* Frees the members (wiping the private key) and zeroes the struct; NULL-safe. */
void nova_gcs_service_account_clear(nova_gcs_service_account *account);

/* Appends base64url (RFC 4648 section 5, no padding) of data to out. */
int nova_base64url_encode(nova_buf *out, const void *data, size_t len);

/* Appends the signed assertion for the account to out (no NUL). scope NULL = read/write.
 * Deterministic for a given key and issued_at (PKCS#1 v1.5 signatures are), which is what
 * the known-answer tests rely on. A key that is not an RSA private key in PEM is
 * NOVA_ECONFIG. */
int nova_gcs_jwt_build(nova_buf *out, const nova_gcs_service_account *account, const char *scope,
                       int64_t issued_at);

/* Parses a token endpoint's JSON answer: copies access_token into token (NUL-terminated,
 * at most token_size - 1 bytes) and its lifetime in seconds into *expires_in (3600 when
 * the answer has none). A token type other than "Bearer", a missing, empty or oversized
 * token, characters outside the printable ASCII range, or a lifetime below 1 s are
 * NOVA_EBACKEND (the endpoint answered nonsense). */
int nova_gcs_token_response_parse(char *token, size_t token_size, int64_t *expires_in,
                                  const char *body, size_t len);

typedef struct nova_gcs_token_options {
    const char *scope;               /* NULL = NOVA_GCS_SCOPE_READ_WRITE */
    unsigned refresh_early_seconds;  /* 0 = 60 */
    int64_t (*now)(void *payload);   /* seconds since the epoch; NULL = time(2) */
    void *payload;
} nova_gcs_token_options;

#define NOVA_GCS_TOKEN_OPTIONS_INIT {NULL, 0, NULL, NULL}

typedef struct nova_gcs_token_source nova_gcs_token_source;

/* A cache of access tokens for one account. http is borrowed (it must outlive the source);
 * the account is copied; options NULL = defaults. The key is parsed here, so a bad key
 * fails now (NOVA_ECONFIG) rather than at the first request. No network traffic. */
int nova_gcs_token_source_new(nova_gcs_token_source **out, nova_http_client *http,
                              const nova_gcs_service_account *account,
                              const nova_gcs_token_options *options);
void nova_gcs_token_source_free(nova_gcs_token_source *source); /* NULL-safe */

/* Writes "Bearer TOKEN" (NUL-terminated) into out, exchanging a new assertion first when
 * no cached token is valid for at least refresh_early_seconds more. */
int nova_gcs_token_authorization(nova_gcs_token_source *source, char *out, size_t out_size);
/* Drops the cached token when it is the one in `authorization` (a "Bearer TOKEN" value a
 * server refused), so the next call fetches a fresh one; a newer token is kept. */
void nova_gcs_token_invalidate(nova_gcs_token_source *source, const char *authorization);
/* How many exchanges with the token endpoint were attempted so far. */
unsigned long nova_gcs_token_exchanges(nova_gcs_token_source *source);
/* The account's client_email (borrowed), for messages. */
const char *nova_gcs_token_account(const nova_gcs_token_source *source);

/* 1 when an http(s) URL's host is 127.0.0.1, ::1 or localhost (where plain http may carry
 * credentials), 0 otherwise. */
int nova_gcs_url_is_loopback(const char *url);

#endif
