/*
 * http_support.h -- the scripted HTTP server (tests/servers/scripted_http.py) from C tests.
 *
 * scripted_http_start runs the server as a child process on a free loopback port (it dies
 * with the test process), scripted_http_add feeds it rules (JSON, see the script's doc),
 * scripted_http_log reads back what it received. Shared by the cloud backends' tests.
 */
#ifndef NOVA_TEST_HTTP_SUPPORT_H
#define NOVA_TEST_HTTP_SUPPORT_H

#include "storage/http.h"

#include <jansson.h>
#include <sys/types.h>

#include "python_server.h"

typedef struct scripted_http {
    python_server process;
    int port;
    char base_url[64];          /* "http://127.0.0.1:PORT" */
    nova_http_client *control;  /* a client for the control endpoints */
} scripted_http;

/* Starts the server. Returns 0, or 1 after printing why when it cannot run here (no
 * python3, or NOVA_TEST_SOURCE_DIR unset): the caller then skips its tests. Aborts on
 * other failures. */
int scripted_http_start(scripted_http *server);
/* Stops the server and frees everything; safe on a server that never started. */
void scripted_http_stop(scripted_http *server);

/* Appends rules (a JSON list as text) to the script; fails the test when refused. */
void scripted_http_add(scripted_http *server, const char *rules_json);
/* Forgets the script and the request log. */
void scripted_http_reset(scripted_http *server);
/* The request log as a JSON array (caller json_decref's it); fails the test on error. */
json_t *scripted_http_log(scripted_http *server);
/* Entry i of a log, or NULL. Borrowed. */
json_t *scripted_http_log_entry(json_t *log, size_t i);
/* A header of a log entry (lower-case name), or NULL. Borrowed. */
const char *scripted_http_log_header(json_t *entry, const char *name);
/* The "path" (with query) of a log entry, or "". Borrowed. */
const char *scripted_http_log_path(json_t *entry);

/* Writes the URL of path (which starts with '/') on the server into out. */
void scripted_http_url(const scripted_http *server, char *out, size_t out_size, const char *path);

/* A loopback port with nothing listening on it (for connection-refused tests). */
int scripted_http_dead_port(void);

#endif
