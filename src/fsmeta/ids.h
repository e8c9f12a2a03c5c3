/*
 * ids.h -- user and group names <-> numeric ids, with a small cache (private).
 *
 * Backups record the owner's names beside the numbers so a restore on another machine can
 * map by name; restores look names up again. getpwuid_r and friends can be slow (NSS,
 * LDAP), and a directory of 10,000 files usually has one or two owners, so each direction
 * keeps a small direct-mapped cache. Negative answers (no such user) and NSS failures are
 * cached too: a name is an optional extra, never a reason to fail a backup.
 *
 * Not thread-safe: use one nova_fsmeta_ids per thread.
 */
#ifndef NOVA_FSMETA_IDS_H
#define NOVA_FSMETA_IDS_H

#include <stdint.h>

typedef struct nova_fsmeta_ids nova_fsmeta_ids;

int nova_fsmeta_ids_new(nova_fsmeta_ids **out);
void nova_fsmeta_ids_free(nova_fsmeta_ids *ids);

/* The name of a uid / gid, or NULL when it has none (or one longer than 255 bytes).
 * The string is borrowed from the cache: valid until the next call on ids. */
const char *nova_fsmeta_user_name(nova_fsmeta_ids *ids, uint32_t uid);
const char *nova_fsmeta_group_name(nova_fsmeta_ids *ids, uint32_t gid);

/* Looks a name up: returns 1 and sets *id when the name exists here, else 0. */
int nova_fsmeta_user_id(nova_fsmeta_ids *ids, const char *name, uint32_t *uid);
int nova_fsmeta_group_id(nova_fsmeta_ids *ids, const char *name, uint32_t *gid);

#endif
