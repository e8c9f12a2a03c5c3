/* fuzz_tree.c -- the TREE decoder on arbitrary bytes: never crashes, never reads out of
 * bounds, fails only with a known error code, and a tree it accepts is canonical:
 * re-encoding gives back the input bytes, and decoding those gives equal entries. */
#include "common/buf.h"
#include "common/err.h"
#include "repo/tree.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const nova_tree *tree, const uint8_t *data, size_t size)
{
    nova_tree_builder *builder = NULL;
    nova_buf encoded = NOVA_BUF_INIT;
    nova_tree *again = NULL;

    if (nova_tree_builder_new(&builder) != 0)
        abort();
    for (size_t i = 0; i < tree->count; i++)
        if (nova_tree_builder_add(builder, &tree->entries[i]) != 0)
            abort();
    if (nova_tree_builder_encode(builder, &encoded) != 0)
        abort();
    if (encoded.len != size || memcmp(encoded.data, data, size) != 0)
        abort();
    if (nova_tree_decode(&again, encoded.data, encoded.len, "fuzz again") != 0)
        abort();
    if (again->count != tree->count)
        abort();
    for (size_t i = 0; i < tree->count; i++)
        if (!nova_tree_entry_equal(&again->entries[i], &tree->entries[i]))
            abort();
    nova_tree_free(again);
    nova_buf_free(&encoded);
    nova_tree_builder_free(builder);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nova_tree *tree = NULL;
    int rc = nova_tree_decode(&tree, data, size, "fuzz");

    if (rc == 0) {
        if (!tree)
            abort();
        check_round_trip(tree, data, size);
        nova_tree_free(tree);
    } else if (tree || !nova_error_is_known(rc) || nova_error_last()->code != rc) {
        abort();
    }
    return 0;
}
