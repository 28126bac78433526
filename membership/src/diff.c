/* diff.c — Connect()'s diff: old -> new keyed by node ID, REMOVED first. */
#include <stdlib.h>

#include "mb_internal.h"

static bool mb_same_addrs(const mb_member_t *a, const mb_member_t *b) {
  if (a->naddrs != b->naddrs) return false;
  for (size_t j = 0; j < a->naddrs; j++) /* canonical text; order is preference */
    if (strcmp(a->addr_text[j], b->addr_text[j]) != 0) return false;
  return true;
}

/* One merge walk over both tables (sorted by node ID). Pass 0 emits the
 * REMOVED entries, pass 1 the rest; each in node-ID order. */
static size_t mb_diff_pass(const mb_table_t *o, const mb_table_t *n, int pass, mb_change_t *out) {
  size_t i = 0, j = 0, k = 0;
  while (i < o->n || j < n->n) {
    const mb_member_t *a = i < o->n ? &o->m[i] : NULL;
    const mb_member_t *b = j < n->n ? &n->m[j] : NULL;
    int c = !a ? 1 : !b ? -1 : strcmp(a->node_id, b->node_id);
    if (c < 0) { /* only in old */
      if (pass == 0) out[k++] = (mb_change_t){MB_REMOVED, a, NULL};
      i++;
    } else if (c > 0) { /* only in new */
      if (pass == 1) out[k++] = (mb_change_t){MB_ADDED, NULL, b};
      j++;
    } else if (!peerid_equal(&a->peer, &b->peer)) { /* a different identity */
      out[k++] = pass == 0 ? (mb_change_t){MB_REMOVED, a, NULL} : (mb_change_t){MB_ADDED, NULL, b};
      i++, j++;
    } else {
      if (pass == 1)
        out[k++] = (mb_change_t){mb_same_addrs(a, b) ? MB_UNCHANGED : MB_ADDRS_CHANGED, a, b};
      i++, j++;
    }
  }
  return k;
}

int mb_diff(const mb_table_t *old_t, const mb_table_t *new_t, mb_change_t **out, size_t *n) {
  if (!out || !n) return BFTNET_EINVAL;
  *out = NULL;
  *n = 0;
  if (!old_t || !new_t) return BFTNET_EINVAL;
  size_t cap = old_t->n + new_t->n; /* a peer-ID change counts twice */
  if (cap == 0) return 0;
  mb_change_t *ch = malloc(cap * sizeof(*ch));
  if (!ch) return BFTNET_ENOMEM;
  size_t k = mb_diff_pass(old_t, new_t, 0, ch);
  k += mb_diff_pass(old_t, new_t, 1, ch + k);
  BN_ASSERT(k <= cap);
  *out = ch;
  *n = k;
  return 0;
}
