/*
 * selftest.h -- a self-test of the whole stack: every primitive against known answers,
 * then a real round trip through a local repository (key slot, chunking, packs, index,
 * tree, snapshot; read back and compare; a damaged copy of a pack is caught).
 */
#ifndef NOVA_SELFTEST_H
#define NOVA_SELFTEST_H

#ifdef __cplusplus
extern "C" {
#endif

/* Called once per check, in order. detail is one line for people. */
typedef void (*nova_selftest_cb)(const char *check, int ok, const char *detail, void *payload);

typedef struct nova_selftest_result {
    int failures;
    char snapshot_id[65]; /* the snapshot written, "" when none */
} nova_selftest_result;

/* Runs the self-test against the repository at location, creating it (with passphrase)
 * when missing. Returns 0 when it could run (result->failures says whether every check
 * passed) or the NOVA_E code that stopped it (the failing check is reported first). */
int nova_selftest(const char *location, const char *passphrase, nova_selftest_cb cb,
                  void *payload, nova_selftest_result *result);

#ifdef __cplusplus
}
#endif
#endif
