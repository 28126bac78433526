/* msg.c — reference-counted message buffers: one allocation (header and
 * payload), shared by every ring a broadcast puts it in. */
#include <stdlib.h>

#include <ck_pr.h>

#include "disp_internal.h"
#include "dispatcher.h"

disp_msg_t *disp_msg_new(bn_pool_t *pool, const void *data, size_t len, uint32_t refs) {
  BN_ASSERT(refs >= 1);
  BN_ASSERT(data != NULL || len == 0);
  /* The length travels as a uint32_t; the facade enforces msg_max
   * (<= BN_MSG_MAX_CAP) before this, so larger is an allocation we refuse. */
  if (len > UINT32_MAX - sizeof(disp_msg_t)) return NULL;
  disp_msg_t *m = bn_pool_alloc(pool, sizeof(*m) + len);
  if (m == NULL) return NULL;
  m->refs = refs;
  m->len = (uint32_t)len;
  m->bseq = 0;
  m->key = 0;
  m->t_ns = 0;
  m->ahead0 = UINT64_MAX;
  m->w = 0;
  if (len > 0) memcpy(m->data, data, len);
  return m;
}

void disp_msg_ref(disp_msg_t *m) {
  uint32_t old = ck_pr_faa_32(&m->refs, 1);
  BN_ASSERT(old >= 1 && old < UINT32_MAX);
}

void disp_msg_release(disp_msg_t *m) {
  /* Every drop publishes this thread's use of m; the last one, which
   * frees, must see all of them (TSan only: ck_pr is opaque to it). */
  BN_TSAN_RELEASE(m);
  ck_pr_fence_release();
  /* fetch-and-add of -1 (ck_pr_dec_32_zero, but the old value also
   * catches a release of a message that has no reference left) */
  uint32_t old = ck_pr_faa_32(&m->refs, UINT32_MAX);
  BN_ASSERT(old >= 1);
  if (old != 1) return;
  ck_pr_fence_acquire();
  BN_TSAN_ACQUIRE(m);
  bn_pool_free(m);
}
