/* classmix.c — the --classes option of bftnet-replica and bftnet-cluster
 * (classmix.h). */
#include "classmix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

static bool pow2(uint64_t v) {
  return v >= 4 && v <= (1u << 24) && (v & (v - 1)) == 0;
}

/* The default ring: 4096 messages, halved until it holds at most
 * CLASSMIX_RING_BYTES (never under 4). */
static uint32_t default_ring(size_t size) {
  uint32_t ring = 4096;
  while (ring > 4 && (uint64_t)ring * size > CLASSMIX_RING_BYTES)
    ring /= 2;
  return ring;
}

static bool num(const char *v, double lo, double hi, double *out) {
  return text_parse_num(v, lo, hi, out);
}

/* One KEY=VALUE of class c. */
static int parse_kv(classmix_class_t *c, char *kv, char *err, size_t errlen) {
  char *eq = strchr(kv, '=');
  if (!eq) return snprintf(err, errlen, "class %s: '%s' is not KEY=VALUE", c->name, kv), -1;
  *eq = '\0';
  const char *k = kv, *v = eq + 1;
  double d;
  if (strcmp(k, "prio") == 0 && num(v, 0, 255, &d)) {
    c->prio = (uint8_t)d;
  } else if (strcmp(k, "size") == 0 && num(v, 16, 1u << 30, &d)) {
    c->size = (size_t)d;
  } else if (strcmp(k, "rate") == 0 && (strcmp(v, "max") == 0 || num(v, 0.001, 1e9, &d))) {
    c->rate = strcmp(v, "max") == 0 ? 0 : d;
  } else if (strcmp(k, "policy") == 0 &&
             (strcmp(v, "drop-oldest") == 0 || strcmp(v, "keep-latest") == 0)) {
    c->policy = strcmp(v, "keep-latest") == 0 ? BFTNET_KEEP_LATEST : BFTNET_DROP_OLDEST;
  } else if (strcmp(k, "keys") == 0 && num(v, 0, 1e9, &d)) {
    c->keys = (uint32_t)d;
  } else if (strcmp(k, "ring") == 0 && num(v, 4, 1u << 24, &d) && pow2((uint64_t)d)) {
    c->ring = (uint32_t)d;
  } else {
    return snprintf(err, errlen, "class %s: bad %s '%s'", c->name, k, v), -1;
  }
  return 0;
}

/* One NAME[:KV;KV...] into c. */
static int parse_class(classmix_class_t *c, char *s, char *err, size_t errlen) {
  char *colon = strchr(s, ':');
  if (colon) *colon = '\0';
  size_t nl = strlen(s);
  if (nl == 0 || nl >= sizeof c->name ||
      strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                "vwxyz0123456789._-") != nl)
    return snprintf(err, errlen, "bad class name '%s' (1..%d of [A-Za-z0-9._-])", s,
                    BFTNET_CLASS_NAME_MAX - 1),
           -1;
  *c = (classmix_class_t){.size = 64, .rate = 100, .policy = BFTNET_DROP_OLDEST};
  memcpy(c->name, s, nl + 1);
  for (char *kv = colon ? colon + 1 : NULL, *next; kv && *kv; kv = next) {
    next = strchr(kv, ';');
    if (next) *next++ = '\0';
    if (parse_kv(c, kv, err, errlen) != 0) return -1;
  }
  if (!c->ring) c->ring = default_ring(c->size);
  return 0;
}

int classmix_parse(const char *spec, classmix_t *m, char *err, size_t errlen) {
  memset(m, 0, sizeof *m);
  char *copy = strdup(spec), *next;
  if (!copy) return snprintf(err, errlen, "out of memory"), -1;
  int rc = 0;
  for (char *s = copy; s && rc == 0; s = next) {
    next = strchr(s, ',');
    if (next) *next++ = '\0';
    if (m->n == BFTNET_MAX_CLASSES) {
      rc = -1, snprintf(err, errlen, "at most %d classes", BFTNET_MAX_CLASSES);
      break;
    }
    rc = parse_class(&m->c[m->n], s, err, errlen);
    for (size_t i = 0; rc == 0 && i < m->n; i++)
      if (strcmp(m->c[i].name, m->c[m->n].name) == 0)
        rc = -1, snprintf(err, errlen, "class %s named twice", m->c[i].name);
    m->n++;
  }
  free(copy);
  if (rc != 0) m->n = 0;
  return rc;
}

void classmix_describe(const classmix_t *m, char *buf, size_t len) {
  text_buf_t b;
  text_buf_init(&b, buf, len);
  for (size_t i = 0; i < m->n; i++) {
    const classmix_class_t *c = &m->c[i];
    text_sep(&b, ", ");
    if (c->rate > 0)
      text_addf(&b, "%s %zu B at %.15g/s", c->name, c->size, c->rate);
    else
      text_addf(&b, "%s %zu B flat out", c->name, c->size);
  }
}
