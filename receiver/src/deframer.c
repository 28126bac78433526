/*
 * deframer.c — uvarint(len) || bytes, fed in any split (hiredis's reader:
 * no I/O, sticky errors, fuzzable).
 *
 * A message that lies whole inside the bytes being fed is emitted straight
 * from them (no copy, no allocation). Only a message that straddles feeds is
 * buffered: its body is allocated once, at exactly the announced length,
 * after that length has been checked against max.
 */
#include <stdlib.h>
#include <string.h>

#include "receiver.h"

void rx_deframer_init(rx_deframer_t *d, size_t max) {
  memset(d, 0, sizeof(*d));
  d->max = max;
}

void rx_deframer_free(rx_deframer_t *d) {
  bn_pool_free(d->body);
  d->body = NULL;
  d->in_body = false;
  d->have = 0;
  d->need = 0;
  d->hdr_len = 0;
  d->skip = 0;
}

static int rx_deframer_fail(rx_deframer_t *d, int err) {
  d->err = err;
  return err;
}

/* Reads (part of) a length header. Returns bytes consumed (> 0) with *done
 * set once the length is known in *len, or a negative error. Consumes all
 * of p when the header is still incomplete. */
static int rx_deframer_header(rx_deframer_t *d, const uint8_t *p, size_t n, bool *done,
                              uint64_t *len) {
  *done = false;
  if (d->hdr_len == 0) {
    /* Fast path: the whole header is in p. */
    int rc = uvarint_decode(p, n, len);
    if (rc != 0) {
      *done = rc > 0;
      return rc;
    }
    /* rc == 0: n < 9 bytes, all with the continuation bit. */
    memcpy(d->hdr, p, n);
    d->hdr_len = (uint8_t)n;
    return (int)n;
  }
  /* Continue a split header: take bytes up to its last one, never a body byte. */
  size_t take = BN_MIN(n, (size_t)(BN_UVARINT_MAX_BYTES - d->hdr_len));
  for (size_t i = 0; i < take; i++) {
    if ((p[i] & 0x80) == 0) {
      take = i + 1;
      break;
    }
  }
  memcpy(d->hdr + d->hdr_len, p, take);
  d->hdr_len = (uint8_t)(d->hdr_len + take);
  int rc = uvarint_decode(d->hdr, d->hdr_len, len);
  if (rc < 0) return rc;
  if (rc > 0) {
    BN_ASSERT(rc == d->hdr_len);
    *done = true;
    d->hdr_len = 0;
  }
  return (int)take;
}

/* Completes the buffered message: the deframer is reset before the callback
 * so that it sees a consistent state. */
static void rx_deframer_emit_body(rx_deframer_t *d, rx_emit_fn cb, void *ud) {
  uint8_t *body = d->body;
  size_t len = d->have;
  d->body = NULL;
  d->in_body = false;
  d->have = 0;
  d->need = 0;
  cb(ud, body, len);
  bn_pool_free(body);
}

int rx_deframer_feed(rx_deframer_t *d, const uint8_t *p, size_t n, rx_emit_fn cb, void *ud) {
  if (d->err) return d->err;
  while (n > 0) {
    if (d->skip) { /* an oversized message: its bytes go by, unbuffered */
      size_t take = (size_t)BN_MIN((uint64_t)n, d->skip);
      d->skip -= take;
      p += take;
      n -= take;
      continue;
    }
    if (d->in_body) {
      size_t take = (size_t)BN_MIN((uint64_t)n, d->need - d->have);
      memcpy(d->body + d->have, p, take);
      d->have += take;
      p += take;
      n -= take;
      if (d->have == d->need) rx_deframer_emit_body(d, cb, ud);
      continue;
    }
    bool done;
    uint64_t len = 0;
    int rc = rx_deframer_header(d, p, n, &done, &len);
    if (rc < 0) return rx_deframer_fail(d, rc);
    p += rc;
    n -= (size_t)rc;
    if (!done) continue;
    /* Checked before anything is allocated or awaited: a lying length
     * never buffers. */
    if (len > (uint64_t)d->max) {
      if (len > d->skip_max) return rx_deframer_fail(d, BFTNET_ETOOBIG);
      d->skipped++;
      d->skip = len; /* > max >= 0: at least one byte */
      continue;
    }
    if (len <= (uint64_t)n) {
      cb(ud, p, (size_t)len); /* zero-copy: the message is inside p */
      p += len;
      n -= (size_t)len;
      continue;
    }
    uint8_t *body = bn_pool_alloc(d->pool, (size_t)len); /* len > n >= 0, so len > 0 */
    if (body == NULL) return rx_deframer_fail(d, BFTNET_ENOMEM);
    memcpy(body, p, n);
    d->body = body;
    d->need = len;
    d->have = n;
    d->in_body = true;
    p += n;
    n = 0;
  }
  return 0;
}
