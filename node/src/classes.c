/*
 * classes.c — the traffic classes of a node: their defaults, the check of a
 * configuration (bftnet_config_check, with the reason in words), and the
 * node's own copy of the list with each class's protocol ID and the order
 * in which bftnet_recv serves them.
 *
 * Without configuration there is one class, built from the node's ring and
 * inbound settings: priority 0, drop-oldest, no byte cap on the ring, and
 * the protocol /bftnet/msg/1.0.0, so a node without classes behaves and
 * speaks exactly as before classes existed.
 */
#include <stdarg.h>
#include <stdio.h>

#include "node_internal.h"

BFTNET_API void bftnet_class_init(bftnet_class_t *c, const char *name) {
  if (!c) return;
  memset(c, 0, sizeof *c);
  c->name = name;
  c->priority = 0;
  c->weight = 1;
  c->ring_capacity = 4096;
  c->ring_max_bytes = 64ull * 1024 * 1024;
  c->policy = BFTNET_DROP_OLDEST;
  c->inbound_max_msgs = 4096;
  c->inbound_max_bytes = 64ull * 1024 * 1024;
}

static bool is_pow2_in(uint32_t v, uint32_t lo, uint32_t hi) {
  return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t cap, int rc, const char *fmt, ...) {
  if (err && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static bool name_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n >= BFTNET_CLASS_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/* One class: its name, bounds and policy. */
static int check_one(const bftnet_class_t *c, size_t i, char *err, size_t cap) {
  if (!name_ok(c->name))
    return fail(err, cap, BFTNET_EBADCLASS,
                "class %zu: the name must be 1..%d characters of [A-Za-z0-9._-]", i,
                BFTNET_CLASS_NAME_MAX - 1);
  if (!is_pow2_in(c->ring_capacity, 4, 1u << 24))
    return fail(err, cap, BFTNET_EBADCLASS,
                "class %s: ring_capacity %u is not a power of 2 in 4..2^24", c->name,
                c->ring_capacity);
  if (!is_pow2_in(c->inbound_max_msgs, 4, 1u << 24))
    return fail(err, cap, BFTNET_EBADCLASS,
                "class %s: inbound_max_msgs %u is not a power of 2 in 4..2^24", c->name,
                c->inbound_max_msgs);
  if (c->ring_max_bytes == 0 || c->inbound_max_bytes == 0 || c->weight == 0)
    return fail(err, cap, BFTNET_EBADCLASS,
                "class %s: ring_max_bytes, inbound_max_bytes and weight must be > 0", c->name);
  if (c->policy != BFTNET_DROP_OLDEST && c->policy != BFTNET_KEEP_LATEST)
    return fail(err, cap, BFTNET_EBADCLASS, "class %s: unknown policy %d", c->name, (int)c->policy);
  return 0;
}

int node__classes_check(const bftnet_config_t *cfg, char *err, size_t cap) {
  if (cfg->nclasses > BFTNET_MAX_CLASSES)
    return fail(err, cap, BFTNET_EBADCLASS, "%zu classes: at most %d", cfg->nclasses,
                BFTNET_MAX_CLASSES);
  if (cfg->nclasses && !cfg->classes)
    return fail(err, cap, BFTNET_EBADCLASS, "nclasses is %zu but classes is NULL", cfg->nclasses);
  if (cfg->class_window && (cfg->class_window < 256u * 1024 || cfg->class_window > (16u << 20)))
    return fail(err, cap, BFTNET_EINVAL, "class_window %u: 0 or 256 KiB..16 MiB",
                cfg->class_window);
  if (cfg->class_min_share > 50)
    return fail(err, cap, BFTNET_EINVAL, "class_min_share %u%%: at most 50", cfg->class_min_share);
  for (size_t i = 0; i < cfg->nclasses; i++) {
    int rc = check_one(&cfg->classes[i], i, err, cap);
    if (rc) return rc;
    for (size_t j = 0; j < i; j++)
      if (strcmp(cfg->classes[j].name, cfg->classes[i].name) == 0)
        return fail(err, cap, BFTNET_EBADCLASS, "classes %zu and %zu are both named %s", j, i,
                    cfg->classes[i].name);
  }
  return 0;
}

/* Class 0 keeps the protocol of bftnet without classes: peers that speak
 * only that one (js-libp2p, older bftnet) talk to class 0. */
static void class_proto(char *out, size_t cap, unsigned i, const char *name) {
  if (i == 0)
    snprintf(out, cap, "%s", MIG_APP_PROTO);
  else
    snprintf(out, cap, "/bftnet/msg/%s/1.0.0", name);
}

void node__classes_resolve(bftnet_t *b) {
  const bftnet_config_t *cfg = &b->cfg;
  b->ncls = cfg->nclasses ? (unsigned)cfg->nclasses : 1;
  b->all_classes = (1u << b->ncls) - 1;
  for (unsigned i = 0; i < b->ncls; i++) {
    node_class_t *k = &b->cls[i];
    if (cfg->nclasses) {
      k->c = cfg->classes[i];
    } else { /* the one implicit class: bftnet without classes */
      bftnet_class_init(&k->c, "default");
      k->c.ring_capacity = cfg->ring_capacity;
      k->c.ring_max_bytes = UINT64_MAX;
      k->c.inbound_max_msgs = cfg->inbound_max_msgs;
      k->c.inbound_max_bytes = cfg->inbound_max_bytes;
    }
    snprintf(k->name, sizeof k->name, "%s", k->c.name);
    k->c.name = k->name;
    class_proto(k->proto, sizeof k->proto, i, k->name);
    b->protos[i] = k->proto;
  }
  b->cfg.classes = NULL; /* borrowed during bftnet_new only */
  /* bftnet_recv's order: by priority, then by index; equal priorities
   * form one group (served round-robin together). */
  for (unsigned i = 0; i < b->ncls; i++)
    b->order[i] = (uint8_t)i;
  for (unsigned i = 1; i < b->ncls; i++)
    for (unsigned j = i;
         j > 0 && b->cls[b->order[j]].c.priority < b->cls[b->order[j - 1]].c.priority; j--) {
      uint8_t t = b->order[j];
      b->order[j] = b->order[j - 1];
      b->order[j - 1] = t;
    }
  b->ngrp = 0;
  for (unsigned i = 0; i < b->ncls; i++)
    if (i == 0 || b->cls[b->order[i]].c.priority != b->cls[b->order[i - 1]].c.priority)
      b->grp_start[b->ngrp++] = (uint8_t)i;
  b->grp_start[b->ngrp] = (uint8_t)b->ncls;
}

uint32_t node__classes_window(const bftnet_t *b) {
  return b->ncls > 1 && b->cfg.class_window ? b->cfg.class_window : b->cfg.yamux_window;
}

uint32_t node__classes_inflight_min(const bftnet_t *b) {
  uint32_t v = b->cfg.class_inflight_min;
  if (b->ncls < 2 || v == UINT32_MAX) return 0;
  return v ? v : NODE_INFLIGHT_MIN_DEFAULT;
}

uint32_t node__classes_lowat(const bftnet_t *b) {
  uint32_t v = b->cfg.notsent_lowat;
  if (v == UINT32_MAX) return 0;
  if (v) return v;
  return b->ncls > 1 ? NODE_NOTSENT_LOWAT_DEFAULT : 0;
}

BFTNET_API int bftnet_class_count(const bftnet_t *b) {
  return b ? (int)b->ncls : BFTNET_EINVAL;
}

BFTNET_API const char *bftnet_class_name(const bftnet_t *b, uint8_t cls) {
  return b && cls < b->ncls ? b->cls[cls].name : NULL;
}
