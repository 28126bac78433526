#include <stdlib.h>

#include "core.h"

void bn_buf_init(bn_buf_t *b) {
  memset(b, 0, sizeof(*b));
}

void bn_buf_free(bn_buf_t *b) {
  free(b->data);
  bn_buf_init(b);
}

void bn_buf_reset(bn_buf_t *b) {
  b->off = b->len = 0;
}

int bn_buf_reserve(bn_buf_t *b, size_t n) {
  if (b->cap - b->len >= n) return 0;
  size_t unread = b->len - b->off;
  if (b->off > 0 && b->cap - unread >= n) {
    /* Compact in place: moving the unread bytes costs no more than the copy
     * into a new block would, and a new block of 128 KiB or more is a fresh
     * mmap (page faults, zeroing) each time. */
    memmove(b->data, b->data + b->off, unread);
    b->off = 0;
    b->len = unread;
    return 0;
  }
  if (n > SIZE_MAX / 2 - b->len) return BFTNET_ENOMEM;
  size_t need = unread + n;
  size_t ncap = b->cap ? b->cap : 256;
  while (ncap < need)
    ncap *= 2;
  uint8_t *p = malloc(ncap);
  if (!p) return BFTNET_ENOMEM;
  if (unread) memcpy(p, b->data + b->off, unread);
  free(b->data);
  b->data = p;
  b->cap = ncap;
  b->off = 0;
  b->len = unread;
  return 0;
}

int bn_buf_append(bn_buf_t *b, const void *p, size_t n) {
  int rc = bn_buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void bn_buf_consume(bn_buf_t *b, size_t n) {
  BN_ASSERT(n <= b->len - b->off);
  b->off += n;
  if (b->off == b->len) b->off = b->len = 0;
}
