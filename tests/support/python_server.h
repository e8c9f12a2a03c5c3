/*
 * python_server.h -- starts one of the test servers of tests/servers/ (a Python script
 * that binds 127.0.0.1 on a free port, writes the port to --port-file and exits with its
 * --parent-pid) and stops it. Shared by the scripted HTTP server and the token endpoint.
 */
#ifndef NOVA_TEST_PYTHON_SERVER_H
#define NOVA_TEST_PYTHON_SERVER_H

#include <sys/types.h>

typedef struct python_server {
    pid_t pid;
    int port;
    char *dir; /* scratch directory holding the port file */
} python_server;

/* Runs tests/servers/SCRIPT with --port-file, --parent-pid and --max-seconds 600 after
 * the extra arguments (NULL-terminated), and waits up to timeout_ms for its port.
 * Returns 1 (after printing "# skip: ...") when the source dir or python3 is missing;
 * aborts when the server does not come up. */
int python_server_start(python_server *server, const char *script, const char *const *extra,
                        int timeout_ms);
void python_server_stop(python_server *server); /* safe when never started */

#endif
