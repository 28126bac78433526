/*
 * fault_spec.c — see fault_spec.h and docs/FAULTS.md. Parses spans of the
 * caller's string in place (no copy, no allocation): split on ',', then the
 * item on the first ':', then the parameters on ';' and each on '='. Values
 * are converted in one fixed key order, then each kind checks its rules,
 * so the same bad SPEC always yields the same message.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fault_spec.h"
#include "text.h"

typedef struct span {
  const char *p;
  size_t n;
} span_t;

/* Keys, in the order values are converted and errors reported. */
enum {
  K_AT,
  K_FOR,
  K_EVERY,
  K_MS,
  K_JITTER,
  K_LINK,
  K_REPLICA,
  K_RESTART,
  K_ADD,
  K_REMOVE,
  K_BACK,
  K_COUNT
};

static const char *const key_names[K_COUNT] = {
    "at", "for", "every", "ms", "jitter", "link", "replica", "restart", "add", "remove", "back"};

#define B(k) (1u << (k))

static const struct kind_def {
  const char *name;
  fault_kind_t kind;
  unsigned keys;     /* allowed */
  const char *takes; /* for the unknown-key message */
} kinds[] = {
    {"cut", FAULT_CUT, B(K_EVERY) | B(K_AT) | B(K_FOR) | B(K_LINK) | B(K_REPLICA),
     "every, at, for, link, replica"},
    {"blackhole", FAULT_BLACKHOLE, B(K_AT) | B(K_FOR) | B(K_LINK) | B(K_REPLICA),
     "at, for, link, replica"},
    {"partition", FAULT_PARTITION, B(K_AT) | B(K_FOR) | B(K_REPLICA), "at, for, replica"},
    {"latency", FAULT_LATENCY,
     B(K_MS) | B(K_JITTER) | B(K_LINK) | B(K_REPLICA) | B(K_AT) | B(K_FOR),
     "ms, jitter, link, replica, at, for"},
    {"kill", FAULT_KILL, B(K_AT) | B(K_REPLICA) | B(K_RESTART), "at, replica, restart"},
    {"members", FAULT_MEMBERS, B(K_AT) | B(K_ADD) | B(K_REMOVE), "at, add, remove"},
    {"failover", FAULT_FAILOVER, B(K_AT) | B(K_REPLICA) | B(K_BACK), "at, replica, back"},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

/* Where errors go, and the item they are about. */
typedef struct perr {
  char *buf;
  size_t len;
  unsigned item;
  const char *kind; /* NULL until the kind is known */
} perr_t;

/* Values longer than this are cut in messages. */
#define QUOTE_MAX 40

__attribute__((format(printf, 2, 3))) static int fail(perr_t *e, const char *fmt, ...) {
  if (!e->buf || e->len == 0) return -EINVAL;
  int k = e->item == 0 ? snprintf(e->buf, e->len, "faults: ")
          : e->kind    ? snprintf(e->buf, e->len, "fault %u \"%s\": ", e->item, e->kind)
                       : snprintf(e->buf, e->len, "fault %u: ", e->item);
  if (k >= 0 && (size_t)k < e->len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->buf + k, e->len - (size_t)k, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

static int qlen(span_t s) {
  return s.n > QUOTE_MAX ? QUOTE_MAX : (int)s.n;
}

static bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static span_t trim(span_t s) {
  while (s.n && is_blank(s.p[0]))
    s.p++, s.n--;
  while (s.n && is_blank(s.p[s.n - 1]))
    s.n--;
  return s;
}

static bool span_is(span_t s, const char *lit) {
  return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* Splits s at the first c: *head before it, *tail after. false if absent. */
static bool split(span_t s, char c, span_t *head, span_t *tail) {
  const char *at = memchr(s.p, c, s.n);
  if (!at) return false;
  head->p = s.p;
  head->n = (size_t)(at - s.p);
  tail->p = at + 1;
  tail->n = s.n - head->n - 1;
  return true;
}

/* Decimal digits only, at most maxd of them, into *v. */
static bool parse_uint(span_t s, unsigned maxd, uint64_t *v) {
  if (s.n == 0 || s.n > maxd) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < s.n; i++) {
    if (s.p[i] < '0' || s.p[i] > '9') return false;
    x = x * 10 + (uint64_t)(s.p[i] - '0');
  }
  *v = x;
  return true;
}

/* "500ms", "2s", "1.5s", "2m" -> ms. 0 ok, -1 malformed, -2 over the limit. */
static int parse_dur(span_t s, uint64_t *ms) {
  size_t i = 0;
  while (i < s.n && ((s.p[i] >= '0' && s.p[i] <= '9') || s.p[i] == '.'))
    i++;
  span_t num = {s.p, i}, unit = {s.p + i, s.n - i};
  uint64_t mult;
  if (span_is(unit, "ms"))
    mult = 1;
  else if (span_is(unit, "s"))
    mult = 1000;
  else if (span_is(unit, "m"))
    mult = 60000;
  else
    return -1;
  span_t ip = num, fp = {NULL, 0};
  bool dot = split(num, '.', &ip, &fp);
  uint64_t iv, fv = 0, scale = 1;
  if (!parse_uint(ip, 10, &iv)) return -1;
  if (dot) {
    if (!parse_uint(fp, 3, &fv)) return -1;
    for (size_t k = 0; k < fp.n; k++)
      scale *= 10;
    if ((fv * mult) % scale != 0) return -1; /* finer than a millisecond */
  }
  uint64_t v = iv * mult + fv * mult / scale;
  if (v > FAULT_DURATION_MAX_MS) return -2;
  *ms = v;
  return 0;
}

/* "r0" .. "r999", no leading zeros. */
static bool parse_replica(span_t s, int *r) {
  uint64_t v;
  if (s.n < 2 || s.p[0] != 'r') return false;
  span_t d = {s.p + 1, s.n - 1};
  if (d.n > 1 && d.p[0] == '0') return false;
  if (!parse_uint(d, 4, &v) || v >= FAULT_REPLICA_MAX) return false;
  *r = (int)v;
  return true;
}

static int get_dur(perr_t *e, int key, span_t v, uint64_t *out) {
  int rc = parse_dur(v, out);
  if (rc == -1)
    return fail(e, "bad duration \"%.*s\" for key \"%s\" (want e.g. 500ms, 2s, 1.5s, 2m)", qlen(v),
                v.p, key_names[key]);
  if (rc == -2)
    return fail(e, "duration \"%.*s\" for key \"%s\" is over the limit (7 days)", qlen(v), v.p,
                key_names[key]);
  return 0;
}

/* A millisecond count: bare digits or a duration. */
static int get_ms(perr_t *e, int key, span_t v, uint32_t *out) {
  uint64_t ms;
  if (!parse_uint(v, 10, &ms) && parse_dur(v, &ms) != 0)
    return fail(e, "bad milliseconds \"%.*s\" for key \"%s\" (want e.g. 20 or 20ms)", qlen(v), v.p,
                key_names[key]);
  if (ms > FAULT_LATENCY_MAX_MS)
    return fail(e, "\"%s\" is %" PRIu64 " ms, over the limit (%u ms)", key_names[key], ms,
                FAULT_LATENCY_MAX_MS);
  *out = (uint32_t)ms;
  return 0;
}

static int get_replica(perr_t *e, int key, span_t v, int *out) {
  if (!parse_replica(v, out))
    return fail(e, "bad replica \"%.*s\" for key \"%s\" (want r0, r1, ... up to r%d)", qlen(v), v.p,
                key_names[key], FAULT_REPLICA_MAX - 1);
  return 0;
}

static int get_link(perr_t *e, span_t v, fault_scope_t *sc) {
  span_t a, b;
  int x, y;
  if (!split(v, '-', &a, &b) || !parse_replica(a, &x) || !parse_replica(b, &y))
    return fail(e, "bad link \"%.*s\" for key \"link\" (want rA-rB, e.g. r0-r1)", qlen(v), v.p);
  if (x == y)
    return fail(e, "bad link \"%.*s\" for key \"link\" (both ends are r%d)", qlen(v), v.p, x);
  sc->kind = FAULT_SCOPE_LINK;
  sc->a = x < y ? x : y;
  sc->b = x < y ? y : x;
  return 0;
}

static void fault_defaults(fault_t *f, fault_kind_t kind, unsigned item) {
  memset(f, 0, sizeof *f);
  f->kind = kind;
  f->item = item;
  f->scope.kind = FAULT_SCOPE_ALL;
  f->scope.a = f->scope.b = FAULT_NONE;
  f->for_ms = FAULT_FOREVER;
  f->restart_ms = FAULT_NEVER;
  f->back_ms = FAULT_NEVER;
  f->add = f->remove = FAULT_NONE;
}

/* Converts every present value into f, in key order. */
static int convert(perr_t *e, const span_t *val, unsigned seen, fault_t *f) {
  int rc = 0;
  for (int k = 0; k < K_COUNT && rc == 0; k++) {
    if (!(seen & B(k))) continue;
    span_t v = val[k];
    switch (k) {
    case K_AT:
      rc = get_dur(e, k, v, &f->at_ms);
      break;
    case K_FOR:
      rc = get_dur(e, k, v, &f->for_ms);
      if (rc == 0 && f->for_ms == 0) rc = fail(e, "\"for\" must be more than 0");
      break;
    case K_EVERY:
      rc = get_dur(e, k, v, &f->every_ms);
      if (rc == 0 && f->every_ms == 0) rc = fail(e, "\"every\" must be more than 0");
      break;
    case K_MS:
      rc = get_ms(e, k, v, &f->latency_ms);
      break;
    case K_JITTER:
      rc = get_ms(e, k, v, &f->jitter_ms);
      break;
    case K_LINK:
      rc = get_link(e, v, &f->scope);
      break;
    case K_REPLICA:
      rc = get_replica(e, k, v, &f->scope.a);
      f->scope.kind = FAULT_SCOPE_REPLICA;
      break;
    case K_RESTART:
      rc = get_dur(e, k, v, &f->restart_ms);
      break;
    case K_ADD:
      rc = get_replica(e, k, v, &f->add);
      break;
    case K_REMOVE:
      rc = get_replica(e, k, v, &f->remove);
      break;
    case K_BACK:
      rc = get_dur(e, k, v, &f->back_ms);
      break;
    default:
      break;
    }
  }
  return rc;
}

static int need(perr_t *e, unsigned seen, int key) {
  if (seen & B(key)) return 0;
  return fail(e, "missing key \"%s\"", key_names[key]);
}

/* The kind's own rules, once every value converted. */
static int check_kind(perr_t *e, unsigned seen, fault_t *f) {
  int rc = 0;
  if ((seen & B(K_LINK)) && (seen & B(K_REPLICA)))
    return fail(e, "keys \"link\" and \"replica\" are exclusive");
  switch (f->kind) {
  case FAULT_CUT:
    if (!(seen & (B(K_EVERY) | B(K_AT)))) return fail(e, "missing key \"every\" or \"at\"");
    if ((seen & B(K_FOR)) && !(seen & B(K_EVERY))) return fail(e, "\"for\" needs \"every\"");
    if (!(seen & B(K_AT))) f->at_ms = f->every_ms;
    break;
  case FAULT_BLACKHOLE:
    if ((rc = need(e, seen, K_AT)) || (rc = need(e, seen, K_FOR))) return rc;
    if (!(seen & (B(K_LINK) | B(K_REPLICA)))) return fail(e, "missing key \"link\" or \"replica\"");
    break;
  case FAULT_PARTITION:
    if ((rc = need(e, seen, K_AT)) || (rc = need(e, seen, K_FOR))) return rc;
    return need(e, seen, K_REPLICA);
  case FAULT_LATENCY:
    return need(e, seen, K_MS);
  case FAULT_KILL:
    if ((rc = need(e, seen, K_AT))) return rc;
    return need(e, seen, K_REPLICA);
  case FAULT_MEMBERS:
    if ((rc = need(e, seen, K_AT))) return rc;
    if (!(seen & (B(K_ADD) | B(K_REMOVE)))) return fail(e, "missing key \"add\" or \"remove\"");
    if (f->add != FAULT_NONE && f->add == f->remove)
      return fail(e, "\"add\" and \"remove\" name the same replica r%d", f->add);
    break;
  case FAULT_FAILOVER:
    if ((rc = need(e, seen, K_AT)) || (rc = need(e, seen, K_REPLICA))) return rc;
    if (f->back_ms != FAULT_NEVER && f->back_ms <= f->at_ms)
      return fail(e, "\"back\" (%" PRIu64 " ms) must be later than \"at\" (%" PRIu64 " ms)",
                  f->back_ms, f->at_ms);
    break;
  }
  return 0;
}

static int find_key(span_t k) {
  for (int i = 0; i < K_COUNT; i++)
    if (span_is(k, key_names[i])) return i;
  return -1;
}

/* Splits "k=v;k=v" into val[], recording which keys appeared in *seen. */
static int parse_params(perr_t *e, const struct kind_def *kd, span_t params, span_t *val,
                        unsigned *seen) {
  span_t rest = params;
  for (bool more = true; more;) {
    span_t p = {NULL, 0}, tail = {NULL, 0};
    more = split(rest, ';', &p, &tail);
    if (!more) p = rest;
    rest = tail;
    p = trim(p);
    if (p.n == 0) return fail(e, "empty parameter (want key=value)");
    span_t k, v;
    if (!split(p, '=', &k, &v) || trim(k).n == 0)
      return fail(e, "expected key=value, got \"%.*s\"", qlen(p), p.p);
    k = trim(k);
    v = trim(v);
    int key = find_key(k);
    if (key < 0 || !(kd->keys & B(key)))
      return fail(e, "unknown key \"%.*s\" (%s takes %s)", qlen(k), k.p, kd->name, kd->takes);
    if (*seen & B(key)) return fail(e, "duplicate key \"%s\"", key_names[key]);
    if (v.n == 0) return fail(e, "empty value for key \"%s\"", key_names[key]);
    *seen |= B(key);
    val[key] = v;
  }
  return 0;
}

static int parse_item(perr_t *e, span_t item, fault_t *f) {
  span_t kname = item, params = {NULL, 0};
  bool has_params = split(item, ':', &kname, &params);
  kname = trim(kname);
  const struct kind_def *kd = NULL;
  for (size_t i = 0; i < NKINDS && !kd; i++)
    if (span_is(kname, kinds[i].name)) kd = &kinds[i];
  if (!kd)
    return fail(e,
                "unknown kind \"%.*s\" (want cut, blackhole, partition, latency, kill, "
                "members or failover)",
                qlen(kname), kname.p);
  e->kind = kd->name;
  span_t val[K_COUNT] = {{NULL, 0}};
  unsigned seen = 0;
  int rc = 0;
  if (has_params) rc = parse_params(e, kd, params, val, &seen);
  fault_defaults(f, kd->kind, e->item);
  if (rc == 0) rc = convert(e, val, seen, f);
  if (rc == 0) rc = check_kind(e, seen, f);
  return rc;
}

int fault_spec_parse(const char *spec, fault_t *out, size_t max, size_t *count, char *errbuf,
                     size_t errlen) {
  perr_t e = {errbuf, errlen, 0, NULL};
  if (errbuf && errlen) errbuf[0] = '\0';
  if (count) *count = 0;
  if (!spec || !count || (!out && max)) return fail(&e, "invalid arguments");
  size_t slen = strnlen(spec, FAULT_SPEC_LEN_MAX + 1);
  if (slen > FAULT_SPEC_LEN_MAX)
    return fail(&e, "spec is longer than %d bytes", FAULT_SPEC_LEN_MAX);
  span_t rest = trim((span_t){spec, slen});
  if (rest.n == 0) return 0;
  if (max > FAULT_SPEC_FAULTS_MAX) max = FAULT_SPEC_FAULTS_MAX;
  size_t n = 0;
  for (bool more = true; more;) {
    span_t item = {NULL, 0}, tail = {NULL, 0};
    more = split(rest, ',', &item, &tail);
    if (!more) item = rest;
    rest = tail;
    e.item = (unsigned)(n + 1);
    e.kind = NULL;
    item = trim(item);
    if (item.n == 0) return fail(&e, "empty item%s", more ? "" : n ? " (trailing comma)" : "");
    if (n == max) return fail(&e, "too many faults (max %zu)", max);
    int rc = parse_item(&e, item, &out[n]);
    if (rc) return rc;
    n++;
  }
  *count = n;
  return 0;
}

static int check_replica(perr_t *e, const char *key, int r, unsigned nreplicas) {
  if (r == FAULT_NONE || (unsigned)r < nreplicas) return 0;
  return fail(e, "replica r%d in \"%s\" is out of range (the cluster has r0..r%u)", r, key,
              nreplicas - 1);
}

int fault_spec_check(const fault_t *f, size_t n, unsigned nreplicas, char *errbuf, size_t errlen) {
  perr_t e = {errbuf, errlen, 0, NULL};
  if (errbuf && errlen) errbuf[0] = '\0';
  if (nreplicas == 0) return fail(&e, "the cluster has no replicas");
  for (size_t i = 0; i < n; i++) {
    e.item = f[i].item ? f[i].item : (unsigned)(i + 1);
    e.kind = fault_kind_name(f[i].kind);
    const char *key = f[i].scope.kind == FAULT_SCOPE_LINK ? "link" : "replica";
    int rc = check_replica(&e, key, f[i].scope.a, nreplicas);
    if (!rc) rc = check_replica(&e, key, f[i].scope.b, nreplicas);
    if (!rc) rc = check_replica(&e, "add", f[i].add, nreplicas);
    if (!rc) rc = check_replica(&e, "remove", f[i].remove, nreplicas);
    if (rc) return rc;
  }
  return 0;
}

int fault_scope_has_link(const fault_scope_t *scope, int i, int j) {
  if (i == j) return 0;
  switch (scope->kind) {
  case FAULT_SCOPE_ALL:
    return 1;
  case FAULT_SCOPE_LINK:
    return (scope->a == i && scope->b == j) || (scope->a == j && scope->b == i);
  case FAULT_SCOPE_REPLICA:
    return scope->a == i || scope->a == j;
  }
  return 0;
}

const char *fault_kind_name(fault_kind_t kind) {
  for (size_t i = 0; i < NKINDS; i++)
    if (kinds[i].kind == kind) return kinds[i].name;
  return "?";
}

/* --- fault_format -------------------------------------------------------- */

/* Starts the next key=value: the separator, then the key. */
static void sb_key(text_buf_t *b, const char *key) {
  text_sep(b, ";");
  text_addf(b, "%s=", key);
}

/* key=DUR with the shortest exact unit. */
static void sb_dur(text_buf_t *b, const char *key, uint64_t ms) {
  sb_key(b, key);
  if (ms % 1000 == 0)
    text_addf(b, "%" PRIu64 "s", ms / 1000);
  else
    text_addf(b, "%" PRIu64 "ms", ms);
}

static void sb_replica(text_buf_t *b, const char *key, int r) {
  sb_key(b, key);
  text_addf(b, "r%d", r);
}

static void sb_scope(text_buf_t *b, const fault_scope_t *s) {
  if (s->kind == FAULT_SCOPE_LINK) {
    sb_key(b, "link");
    text_addf(b, "r%d-r%d", s->a, s->b);
  } else if (s->kind == FAULT_SCOPE_REPLICA) {
    sb_replica(b, "replica", s->a);
  }
}

int fault_format(const fault_t *f, char *buf, size_t len) {
  text_buf_t b;
  text_buf_init(&b, buf, len);
  text_addf(&b, "%s:", fault_kind_name(f->kind));
  switch (f->kind) {
  case FAULT_CUT:
    if (f->every_ms) sb_dur(&b, "every", f->every_ms);
    if (!f->every_ms || f->at_ms != f->every_ms) sb_dur(&b, "at", f->at_ms);
    if (f->every_ms && f->for_ms != FAULT_FOREVER) sb_dur(&b, "for", f->for_ms);
    sb_scope(&b, &f->scope);
    break;
  case FAULT_BLACKHOLE:
  case FAULT_PARTITION:
    sb_dur(&b, "at", f->at_ms);
    sb_dur(&b, "for", f->for_ms);
    sb_scope(&b, &f->scope);
    break;
  case FAULT_LATENCY:
    sb_key(&b, "ms");
    text_addf(&b, "%" PRIu32, f->latency_ms);
    if (f->jitter_ms) {
      sb_key(&b, "jitter");
      text_addf(&b, "%" PRIu32, f->jitter_ms);
    }
    sb_scope(&b, &f->scope);
    if (f->at_ms) sb_dur(&b, "at", f->at_ms);
    if (f->for_ms != FAULT_FOREVER) sb_dur(&b, "for", f->for_ms);
    break;
  case FAULT_KILL:
    sb_dur(&b, "at", f->at_ms);
    sb_scope(&b, &f->scope);
    if (f->restart_ms != FAULT_NEVER) sb_dur(&b, "restart", f->restart_ms);
    break;
  case FAULT_MEMBERS:
    sb_dur(&b, "at", f->at_ms);
    if (f->add != FAULT_NONE) sb_replica(&b, "add", f->add);
    if (f->remove != FAULT_NONE) sb_replica(&b, "remove", f->remove);
    break;
  case FAULT_FAILOVER:
    sb_dur(&b, "at", f->at_ms);
    sb_scope(&b, &f->scope);
    if (f->back_ms != FAULT_NEVER) sb_dur(&b, "back", f->back_ms);
    break;
  }
  return (int)b.used;
}
