/*
 * gcs_support.c -- the throwaway key and the token endpoint for the GCS tests (see header).
 *
 * The token server is a child process told our pid and a lifetime bound, so it never
 * outlives a crashed test; its port comes back through a file renamed into place.
 */
#include "gcs_support.h"

#include "test_support.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char *gcs_fixture_key_path(void)
{
    const char *source = getenv("NOVA_TEST_SOURCE_DIR");
    char *path;

    if (!source || !source[0]) {
        printf("# skip: NOVA_TEST_SOURCE_DIR is not set (run through ctest)\n");
        return NULL;
    }
    path = malloc(4096);
    assert_non_null(path);
    snprintf(path, 4096, "%s/tests/servers/gcs-throwaway-key.json", source);
    return path;
}

char *gcs_write_key_file(const char *dir, const char *name, const char *token_uri,
                         const char *private_key_pem)
{
    char *fixture = gcs_fixture_key_path();
    char *path = malloc(4096);
    json_error_t error;
    json_t *doc;

    assert_non_null(fixture);
    assert_non_null(path);
    doc = json_load_file(fixture, 0, &error);
    assert_non_null(doc);
    if (token_uri)
        assert_int_equal(json_object_set_new(doc, "token_uri", json_string(token_uri)), 0);
    if (private_key_pem)
        assert_int_equal(json_object_set_new(doc, "private_key", json_string(private_key_pem)),
                         0);
    snprintf(path, 4096, "%s/%s", dir, name);
    assert_int_equal(json_dump_file(doc, path, JSON_INDENT(2)), 0);
    json_decref(doc);
    free(fixture);
    return path;
}

char *gcs_generate_rsa_pem(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem;
    long len;

    assert_non_null(key);
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    len = BIO_get_mem_data(bio, &data);
    assert_true(len > 0);
    pem = malloc((size_t)len + 1);
    assert_non_null(pem);
    memcpy(pem, data, (size_t)len);
    pem[len] = '\0';
    BIO_free(bio);
    EVP_PKEY_free(key);
    return pem;
}

int gcs_token_server_start(gcs_token_server *server, int expires_in)
{
    const char *source = getenv("NOVA_TEST_SOURCE_DIR");
    char key[4096], expires[32];
    const char *extra[] = {"--key-file", key, "--expires-in", expires, NULL};

    memset(server, 0, sizeof(*server));
    snprintf(key, sizeof(key), "%s/tests/servers/gcs-throwaway-key.json", source ? source : "");
    snprintf(expires, sizeof(expires), "%d", expires_in);
    if (python_server_start(&server->process, "token_server.py", extra, 10000) != 0)
        return 1;
    server->port = server->process.port;
    snprintf(server->base_url, sizeof(server->base_url), "http://127.0.0.1:%d", server->port);
    snprintf(server->token_uri, sizeof(server->token_uri), "%s/token", server->base_url);
    if (nova_http_client_new(&server->client, NULL) != 0)
        abort();
    return 0;
}

void gcs_token_server_stop(gcs_token_server *server)
{
    python_server_stop(&server->process);
    nova_http_client_free(server->client);
    memset(server, 0, sizeof(*server));
}

static long get(gcs_token_server *server, const char *path, const char *authorization,
                json_t **doc)
{
    nova_http_response response = NOVA_HTTP_RESPONSE_INIT;
    nova_http_request request = {0};
    nova_http_header header = {"Authorization", authorization};
    json_error_t error;
    char url[160];
    long status;

    snprintf(url, sizeof(url), "%s%s", server->base_url, path);
    request.method = "GET";
    request.url = url;
    request.headers = authorization ? &header : NULL;
    request.header_count = authorization ? 1 : 0;
    request.what = "token server";
    assert_int_equal(nova_http_perform(server->client, &request, &response), 0);
    status = response.status;
    if (doc) {
        *doc = json_loadb((const char *)response.body.data, response.body.len, 0, &error);
        assert_non_null(*doc);
    }
    nova_http_response_free(&response);
    return status;
}

long gcs_token_server_count(gcs_token_server *server, const char *field)
{
    json_t *doc = NULL;
    long value;

    assert_int_equal(get(server, "/count", NULL, &doc), 200);
    assert_true(json_is_integer(json_object_get(doc, field)));
    value = (long)json_integer_value(json_object_get(doc, field));
    json_decref(doc);
    return value;
}

long gcs_token_server_check(gcs_token_server *server, const char *authorization)
{
    return get(server, "/check", authorization, NULL);
}
