/*
 * msg.c — received-message buffers: one allocation holding the header, the
 * data and the sender's NUL-terminated node ID right after the data, so a
 * message outlives the membership entry that named its sender.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "receiver.h"

/* sizeof(header) + len + idlen + 1, or 0 if that overflows size_t. */
static size_t rx_msg_alloc_size(size_t len, size_t idlen) {
  size_t hdr = sizeof(rx_msg_t);
  if (len > SIZE_MAX - hdr) return 0;
  if (idlen > SIZE_MAX - hdr - len - 1) return 0;
  return hdr + len + idlen + 1;
}

/* Fills a message laid out as rx_msg_alloc_size(len, idlen) says. */
static rx_msg_t *rx_msg_fill(rx_msg_t *m, struct rx_block *block, const uint8_t *data, size_t len,
                             const char *from, size_t idlen) {
  m->next = NULL;
  m->block = block;
  m->len = (uint32_t)len;
  m->cls = 0;
  if (len > 0) memcpy(m->data, data, len);
  char *id = (char *)m->data + len;
  memcpy(id, from, idlen + 1);
  m->from = id;
  return m;
}

rx_msg_t *rx_msg_new(const uint8_t *data, size_t len, const char *from) {
  return rx_msg_new_pool(NULL, data, len, from);
}

rx_msg_t *rx_msg_new_pool(bn_pool_t *pool, const uint8_t *data, size_t len, const char *from) {
  if (from == NULL) from = "";
  /* len travels as uint32_t; the deframer's max (<= BN_MSG_MAX_CAP) keeps
   * peer-announced lengths far below this. */
  if ((uint64_t)len > UINT32_MAX) return NULL;
  size_t idlen = strlen(from);
  size_t size = rx_msg_alloc_size(len, idlen);
  if (size == 0) return NULL;
  rx_msg_t *m = bn_pool_alloc(pool, size);
  if (m == NULL) return NULL;
  return rx_msg_fill(m, NULL, data, len, from, idlen);
}

/* NULL on ENOMEM, and then m is untouched (still owned by the caller).
 * On success the message may have moved: relink it wherever it was. */
rx_msg_t *rx_msg_set_from(rx_msg_t *m, const char *from) {
  BN_ASSERT(m != NULL);
  if (from == NULL) from = "";
  size_t idlen = strlen(from);
  if (m->block || idlen > strlen(m->from)) { /* carved, or too short: move it */
    rx_msg_t *n = rx_msg_new(m->data, m->len, from);
    if (n) {
      n->cls = m->cls;
      rx_msg_free(m);
    }
    return n;
  }
  char *id = (char *)m->data + m->len;
  memmove(id, from, idlen + 1);
  m->from = id;
  return m;
}

/* ------------------------------------------------------------ blocks */

struct rx_block {
  _Atomic uint32_t refs; /* carved messages not yet freed, + 1 while current */
  size_t used;
  _Alignas(16) uint8_t mem[RX_BLOCK_SIZE];
};
_Static_assert(sizeof(struct rx_block) + BN_POOL_HDR <= 16u * 1024u, "one 16 KiB pool class");

static void block_put(struct rx_block *b) {
  /* acq_rel: every use of the block's messages happens before the free. */
  if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) bn_pool_free(b);
}

void rx_msg_free(rx_msg_t *m) {
  if (!m) return;
  if (m->block)
    block_put(m->block);
  else
    bn_pool_free(m);
}

rx_msg_t *rx_msg_carve(rx_carver_t *c, const uint8_t *data, size_t len, const char *from) {
  if (from == NULL) from = "";
  size_t idlen = strlen(from);
  size_t size = rx_msg_alloc_size(len, idlen);
  if (len > RX_CARVE_MAX || size == 0 || size > RX_BLOCK_SIZE)
    return rx_msg_new_pool(c->pool, data, len, from);
  size = (size + 15u) & ~(size_t)15u;
  struct rx_block *b = c->cur;
  if (!b || RX_BLOCK_SIZE - b->used < size) {
    struct rx_block *nb = bn_pool_alloc(c->pool, sizeof *nb);
    if (!nb) return NULL;
    atomic_init(&nb->refs, 1); /* the carver's */
    nb->used = 0;
    if (b) block_put(b);
    c->cur = b = nb;
  }
  rx_msg_t *m = (rx_msg_t *)(void *)(b->mem + b->used);
  b->used += size;
  atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
  return rx_msg_fill(m, b, data, len, from, idlen);
}

void rx_carver_release(rx_carver_t *c) {
  if (c->cur) block_put(c->cur);
  c->cur = NULL;
}
