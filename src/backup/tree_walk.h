/*
 * tree_walk.h -- reading a snapshot's TREE blobs one directory at a time (private).
 *
 * A walker reads trees through one blob reader over the handle's shared chunk index;
 * it is not thread-safe (one per thread). Walks are depth first with one decoded tree
 * per level held at a time, so memory follows the depth of the tree, not its size.
 * The public calls built on it (nova_backup_ls, nova_backup_diff) are declared in
 * nova/catalog.h.
 */
#ifndef NOVA_BACKUP_TREE_WALK_H
#define NOVA_BACKUP_TREE_WALK_H

#include "api/handle.h"
#include "nova/catalog.h"
#include "repo/tree.h"

/* Deeper trees are treated as damage (a real file system stops far earlier). */
#define NOVA_TREE_WALK_MAX_DEPTH 4096

typedef struct nova_tree_walker nova_tree_walker;

/* Loads the handle's chunk index when needed and opens a blob reader on it. */
int nova_tree_walker_new(nova_tree_walker **out, nova_repository *handle);
void nova_tree_walker_free(nova_tree_walker *walker);

/* Reads and decodes the tree with this id; free it with nova_tree_free. */
int nova_tree_walker_load(nova_tree_walker *walker, const nova_id *id, nova_tree **out);

/* Describes an entry as a public node at path (both borrowed by the node). */
void nova_node_from_entry(nova_node *out, const nova_tree_entry *entry, const char *path);

#endif
