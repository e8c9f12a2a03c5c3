/*
 * gcs_support.h -- helpers for the GCS backend's tests: the throwaway service-account key
 * (tests/servers/gcs-throwaway-key.json, public, protects nothing), key files made from it,
 * and the OAuth2 token endpoint (tests/servers/token_server.py) run as a child process.
 */
#ifndef NOVA_TEST_GCS_SUPPORT_H
#define NOVA_TEST_GCS_SUPPORT_H

#include "storage/http.h"

#include <sys/types.h>

#include "python_server.h"

typedef struct gcs_token_server {
    python_server process;
    int port;
    char token_uri[80];        /* "http://127.0.0.1:PORT/token" */
    char base_url[64];         /* "http://127.0.0.1:PORT" */
    nova_http_client *client;  /* for /count and /check */
} gcs_token_server;

/* Path of the throwaway fixture key (malloc'd), or NULL (after printing why) when
 * NOVA_TEST_SOURCE_DIR is unset. */
char *gcs_fixture_key_path(void);

/* Writes a service-account key file into dir: the fixture's fields with token_uri set and,
 * when private_key_pem is not NULL, another private key. Returns its path (malloc'd). */
char *gcs_write_key_file(const char *dir, const char *name, const char *token_uri,
                         const char *private_key_pem);

/* A fresh 2048-bit RSA private key in PKCS#8 PEM (malloc'd). */
char *gcs_generate_rsa_pem(void);

/* Starts token_server.py for the fixture key, issuing tokens that live expires_in seconds.
 * Returns 0, or 1 after printing why it cannot run here (the caller skips). */
int gcs_token_server_start(gcs_token_server *server, int expires_in);
void gcs_token_server_stop(gcs_token_server *server); /* safe when never started */
/* A counter of the server's /count ("exchanges", "issued", "refused"). */
long gcs_token_server_count(gcs_token_server *server, const char *field);
/* The HTTP status /check answers for an "Authorization" value ("Bearer TOKEN"). */
long gcs_token_server_check(gcs_token_server *server, const char *authorization);

#endif
