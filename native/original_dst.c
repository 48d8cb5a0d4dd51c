/*
 * original_dst: reads the original destination of a TCP connection that iptables redirected
 * (nat REDIRECT/DNAT) to this process: SO_ORIGINAL_DST for IPv4, IP6T_SO_ORIGINAL_DST for IPv6.
 *
 *   getOriginalDst(fd: number): { address: string, port: number, family: 4 | 6 } | null
 *   lastError(): { errno: number, message: string } | null
 *   tuneMalloc(trimThreshold: number, topPad: number): boolean
 *
 * null means "no original destination": the connection was not NATed (ENOENT), conntrack is not
 * loaded (ENOPROTOOPT), or the call failed; lastError() tells the failures apart for logs (it is
 * null after a success, ENOENT or ENOPROTOOPT). Linux only; elsewhere it always returns null.
 * tuneMalloc sets glibc's M_TRIM_THRESHOLD and M_TOP_PAD, as GLIBC_TUNABLES would at exec: with
 * glibc's defaults every V8 GC that frees a few MB gives the heap top back to the kernel and the next
 * allocation faults it in again (5x less TCP throughput). false when not on glibc or refused.
 * Plain C over node_api.h (NAPI_VERSION 8), no dependencies.
 */
#include <errno.h>
#include <string.h>
#include <node_api.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#ifdef __linux__
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netfilter_ipv4.h>
#endif

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
/* <linux/netfilter_ipv6/ip6_tables.h> drags in the whole x_tables ABI; the value is fixed. */
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

/* Per thread, so worker_threads each see their own last error. */
static _Thread_local int last_errno = 0;

#define CHECK(env, call)                                                                  \
  do {                                                                                    \
    if ((call) != napi_ok) {                                                              \
      napi_throw_error((env), NULL, "original_dst: N-API call failed: " #call);          \
      return NULL;                                                                        \
    }                                                                                     \
  } while (0)

static napi_value null_value(napi_env env) {
  napi_value v;
  if (napi_get_null(env, &v) != napi_ok) return NULL;
  return v;
}

static napi_value make_result(napi_env env, const char* address, unsigned port, int family) {
  napi_value obj, a, p, f;
  CHECK(env, napi_create_object(env, &obj));
  CHECK(env, napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &a));
  CHECK(env, napi_create_uint32(env, port, &p));
  CHECK(env, napi_create_int32(env, family, &f));
  CHECK(env, napi_set_named_property(env, obj, "address", a));
  CHECK(env, napi_set_named_property(env, obj, "port", p));
  CHECK(env, napi_set_named_property(env, obj, "family", f));
  return obj;
}

/* ENOENT (no NAT entry) and ENOPROTOOPT (no conntrack) are "not redirected", not failures. */
static void note_errno(int e) {
  last_errno = (e == ENOENT || e == ENOPROTOOPT) ? 0 : e;
}

#ifdef __linux__
static napi_value query_v4(napi_env env, int fd) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  memset(&sa, 0, sizeof sa);
  if (getsockopt(fd, IPPROTO_IP, SO_ORIGINAL_DST, &sa, &len) != 0) {
    note_errno(errno);
    return null_value(env);
  }
  char buf[INET_ADDRSTRLEN];
  if (sa.sin_family != AF_INET || inet_ntop(AF_INET, &sa.sin_addr, buf, sizeof buf) == NULL) {
    last_errno = EAFNOSUPPORT;
    return null_value(env);
  }
  last_errno = 0;
  return make_result(env, buf, ntohs(sa.sin_port), 4);
}

static napi_value query_v6(napi_env env, int fd) {
  struct sockaddr_in6 sa;
  socklen_t len = sizeof sa;
  memset(&sa, 0, sizeof sa);
  if (getsockopt(fd, IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST, &sa, &len) != 0) {
    note_errno(errno);
    return null_value(env);
  }
  char buf[INET6_ADDRSTRLEN];
  if (sa.sin6_family != AF_INET6 || inet_ntop(AF_INET6, &sa.sin6_addr, buf, sizeof buf) == NULL) {
    last_errno = EAFNOSUPPORT;
    return null_value(env);
  }
  last_errno = 0;
  return make_result(env, buf, ntohs(sa.sin6_port), 6);
}
#endif

static napi_value get_original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t = napi_undefined;
  if (argc >= 1) CHECK(env, napi_typeof(env, argv[0], &t));
  if (t != napi_number) {
    napi_throw_type_error(env, NULL, "getOriginalDst(fd): fd must be a number");
    return NULL;
  }
  int32_t fd = -1;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  if (fd < 0) {
    last_errno = EBADF;
    return null_value(env);
  }
#ifdef __linux__
  /* Which family the socket has decides which table to ask. A dual-stack (::) listener's IPv4
   * peers arrive as v4-mapped IPv6 sockets, whose NAT entry lives in the IPv4 table. */
  struct sockaddr_storage local;
  socklen_t llen = sizeof local;
  memset(&local, 0, sizeof local);
  if (getsockname(fd, (struct sockaddr*)&local, &llen) != 0) {
    last_errno = errno;
    return null_value(env);
  }
  if (local.ss_family == AF_INET) return query_v4(env, fd);
  if (local.ss_family == AF_INET6) {
    const struct sockaddr_in6* l6 = (const struct sockaddr_in6*)&local;
    if (IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr)) return query_v4(env, fd);
    return query_v6(env, fd);
  }
  last_errno = EAFNOSUPPORT;
  return null_value(env);
#else
  last_errno = ENOSYS;
  return null_value(env);
#endif
}

static napi_value last_error(napi_env env, napi_callback_info info) {
  (void)info;
  int e = last_errno;
  if (e == 0) return null_value(env);
  napi_value obj, n, m;
  CHECK(env, napi_create_object(env, &obj));
  CHECK(env, napi_create_int32(env, e, &n));
  CHECK(env, napi_create_string_utf8(env, strerror(e), NAPI_AUTO_LENGTH, &m));
  CHECK(env, napi_set_named_property(env, obj, "errno", n));
  CHECK(env, napi_set_named_property(env, obj, "message", m));
  return obj;
}

static napi_value tune_malloc(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool ok = false;
#ifdef __GLIBC__
  int64_t trim = 0, pad = 0;
  if (argc == 2 && napi_get_value_int64(env, argv[0], &trim) == napi_ok && napi_get_value_int64(env, argv[1], &pad) == napi_ok &&
      trim > 0 && pad >= 0 && trim <= 0x7fffffff && pad <= 0x7fffffff) {
    ok = mallopt(M_TRIM_THRESHOLD, (int)trim) == 1 && mallopt(M_TOP_PAD, (int)pad) == 1;
  }
#else
  (void)argv;
#endif
  napi_value r;
  CHECK(env, napi_get_boolean(env, ok, &r));
  return r;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"getOriginalDst", NULL, get_original_dst, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lastError", NULL, last_error, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tuneMalloc", NULL, tune_malloc, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
