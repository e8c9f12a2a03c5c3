/*
 * catalog.h -- backups as the user sees them, built from snapshot objects (private).
 */
#ifndef NOVA_BACKUP_CATALOG_H
#define NOVA_BACKUP_CATALOG_H

#include "api/handle.h"
#include "nova/backup.h"
#include "repo/snapshot.h"

/* Wraps a decoded snapshot (taking ownership) as a nova_backup_info; free it with
 * nova_backup_info_free. The snapshot stays reachable with nova_backup_info_snapshot. */
int nova_backup_info_from_snapshot(nova_backup_info **out, nova_snapshot *snapshot,
                                   const nova_id *id);
/* The snapshot behind an info made by the catalog (borrowed). */
const nova_snapshot *nova_backup_info_snapshot(const nova_backup_info *info);

/* Resolves "latest", a full id or a unique prefix (>= 4 hex digits) to a snapshot id.
 * NOVA_EBACKUP_NOT_FOUND when nothing matches, NOVA_EINVALID when a prefix is ambiguous. */
int nova_catalog_resolve(nova_repository *repo, const char *text, nova_id *out);

/* Every backup, newest first (by start time, then id). */
int nova_catalog_load_all(nova_repository *repo, nova_backup_info ***out, size_t *count);

#endif
