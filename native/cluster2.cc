// cluster2 native addon (N-API through node-addon-api).
//
// Two things Node's own net module cannot do on every supported version:
//   listen(host, port, backlog, reusePort) -> fd
//       a non-blocking, close-on-exec TCP listening socket, with SO_REUSEADDR and, when
//       asked, SO_REUSEPORT; the master keeps it and hands duplicates to workers.
//   probe(host, port)
//       is host:port bindable exclusively? SO_REUSEADDR (a TIME_WAIT port is free) and
//       no SO_REUSEPORT (a port held by another program's SO_REUSEPORT socket is busy).
// plus localPort(fd) (getsockname) and close(fd).
//
// host is a numeric IPv4 or IPv6 literal, or "" for all interfaces: like Node, "::" with
// IPV6_V6ONLY=0, falling back to "0.0.0.0" when the machine has no IPv6.
// Errors are thrown as JS Errors shaped like Node's (code, errno < 0, syscall, address, port).

#include <napi.h>

#include <string>

#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/filter.h>
#endif
#endif

namespace {

#ifndef _WIN32

// errno -> libuv's name and message (what Node prints), for the errors this addon can meet.
struct ErrInfo {
  int err;
  const char* code;
  const char* message;
};

const ErrInfo kErrors[] = {
    {EADDRINUSE, "EADDRINUSE", "address already in use"},
    {EACCES, "EACCES", "permission denied"},
    {EADDRNOTAVAIL, "EADDRNOTAVAIL", "address not available"},
    {EAFNOSUPPORT, "EAFNOSUPPORT", "address family not supported"},
    {EINVAL, "EINVAL", "invalid argument"},
    {EMFILE, "EMFILE", "too many open files"},
    {ENFILE, "ENFILE", "file table overflow"},
    {ENOBUFS, "ENOBUFS", "no buffer space available"},
    {ENOMEM, "ENOMEM", "not enough memory"},
    {EPERM, "EPERM", "operation not permitted"},
    {EBADF, "EBADF", "bad file descriptor"},
    {ENOTSOCK, "ENOTSOCK", "socket operation on non-socket"},
    {EPROTONOSUPPORT, "EPROTONOSUPPORT", "protocol not supported"},
    {ENOPROTOOPT, "ENOPROTOOPT", "protocol not available"},
    {ENOTSUP, "ENOTSUP", "operation not supported on socket"},
    {EOPNOTSUPP, "ENOTSUP", "operation not supported on socket"},
    {EINTR, "EINTR", "interrupted system call"},
    {EAGAIN, "EAGAIN", "resource temporarily unavailable"},
    {EISCONN, "EISCONN", "socket is already connected"},
    {ENETDOWN, "ENETDOWN", "network is down"},
    {ENETUNREACH, "ENETUNREACH", "network is unreachable"},
    {EIO, "EIO", "i/o error"},
};

std::string ErrCode(int err) {
  for (const ErrInfo& e : kErrors)
    if (e.err == err) return e.code;
  return "E" + std::to_string(err);
}

std::string ErrMessage(int err) {
  for (const ErrInfo& e : kErrors)
    if (e.err == err) return e.message;
  const char* s = strerror(err);
  std::string m = s ? s : "unknown error";
  if (!m.empty() && m[0] >= 'A' && m[0] <= 'Z') m[0] = static_cast<char>(m[0] - 'A' + 'a');
  return m;
}

// Throws `<syscall> <CODE>: <message> <address>:<port>` with Node's properties.
[[noreturn]] void ThrowSys(Napi::Env env, int err, const char* syscall,
                           const std::string* address = nullptr, int port = -1) {
  std::string code = ErrCode(err);
  std::string msg = std::string(syscall) + " " + code + ": " + ErrMessage(err);
  if (address) {
    msg += " " + *address;
    if (port >= 0) msg += ":" + std::to_string(port);
  }
  Napi::Error e = Napi::Error::New(env, msg);
  Napi::Object o = e.Value();
  o.Set("errno", Napi::Number::New(env, -err));
  o.Set("code", Napi::String::New(env, code));
  o.Set("syscall", Napi::String::New(env, syscall));
  if (address) o.Set("address", Napi::String::New(env, *address));
  if (port >= 0) o.Set("port", Napi::Number::New(env, port));
  throw e;
}

[[noreturn]] void ThrowArg(Napi::Env env, const char* code, const std::string& msg,
                           bool range = false) {
  if (range) {
    Napi::RangeError e = Napi::RangeError::New(env, msg);
    e.Value().Set("code", Napi::String::New(env, code));
    throw e;
  }
  Napi::TypeError e = Napi::TypeError::New(env, msg);
  e.Value().Set("code", Napi::String::New(env, code));
  throw e;
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString())
    ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE",
             std::string("The \"") + name + "\" argument must be of type string");
  return info[i].As<Napi::String>().Utf8Value();
}

int ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name, double lo, double hi,
           const char* rangeCode) {
  if (info.Length() <= i || !info[i].IsNumber())
    ThrowArg(info.Env(), "ERR_INVALID_ARG_TYPE",
             std::string("The \"") + name + "\" argument must be of type number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= lo && v <= hi) || v != static_cast<double>(static_cast<long long>(v)))
    ThrowArg(info.Env(), rangeCode,
             std::string("The \"") + name + "\" argument must be an integer >= " +
                 std::to_string(static_cast<long long>(lo)) + " and <= " +
                 std::to_string(static_cast<long long>(hi)),
             true);
  return static_cast<int>(v);
}

int ArgPort(const Napi::CallbackInfo& info, size_t i) {
  return ArgInt(info, i, "port", 0, 65535, "ERR_SOCKET_BAD_PORT");
}

int ArgFd(const Napi::CallbackInfo& info, size_t i) {
  return ArgInt(info, i, "fd", 0, 2147483647, "ERR_OUT_OF_RANGE");
}

struct Address {
  sockaddr_storage ss;
  socklen_t len = 0;
  int family = AF_UNSPEC;
  std::string text;  // as shown in errors: the literal given, or "::" / "0.0.0.0"
};

// A numeric literal (IPv6 may carry a %scope) -> sockaddr with port; false when not numeric.
bool ParseLiteral(const std::string& host, int port, Address* out) {
  addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return false;
  memset(&out->ss, 0, sizeof out->ss);
  memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
  out->len = static_cast<socklen_t>(res->ai_addrlen);
  out->family = res->ai_family;
  out->text = host;
  freeaddrinfo(res);
  if (out->family == AF_INET)
    reinterpret_cast<sockaddr_in*>(&out->ss)->sin_port = htons(static_cast<uint16_t>(port));
  else if (out->family == AF_INET6)
    reinterpret_cast<sockaddr_in6*>(&out->ss)->sin6_port = htons(static_cast<uint16_t>(port));
  else
    return false;
  return true;
}

void Wildcard(int family, int port, Address* out) {
  memset(&out->ss, 0, sizeof out->ss);
  out->family = family;
  if (family == AF_INET6) {
    sockaddr_in6* a = reinterpret_cast<sockaddr_in6*>(&out->ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_any;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof(sockaddr_in6);
    out->text = "::";
  } else {
    sockaddr_in* a = reinterpret_cast<sockaddr_in*>(&out->ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_ANY);
    a->sin_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof(sockaddr_in);
    out->text = "0.0.0.0";
  }
}

struct Outcome {
  int fd = -1;
  int err = 0;
  const char* syscall = nullptr;
};

// socket + options + bind (+ listen when backlog >= 0). Never leaks the fd on failure.
Outcome OpenSocket(const Address& a, bool reusePort, int backlog) {
  Outcome o;
  int type = SOCK_STREAM;
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
  type |= SOCK_CLOEXEC | SOCK_NONBLOCK;
#endif
  int fd = socket(a.family, type, 0);
  if (fd < 0) {
    o.err = errno;
    o.syscall = "socket";
    return o;
  }
  auto fail = [&](const char* syscall) {
    o.err = errno;
    o.syscall = syscall;
    ::close(fd);
    return o;
  };
#if !defined(SOCK_CLOEXEC) || !defined(SOCK_NONBLOCK)
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) return fail("fcntl");
  int fl = fcntl(fd, F_GETFL);
  if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) return fail("fcntl");
#endif
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1) return fail("setsockopt");
  if (reusePort) {
#ifdef SO_REUSEPORT
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == -1) return fail("setsockopt");
#else
    errno = ENOTSUP;
    return fail("setsockopt");
#endif
  }
  if (a.family == AF_INET6) {
    int off = 0;  // dual stack, as libuv does unless ipv6Only is asked
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == -1)
      return fail("setsockopt");
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) == -1) return fail("bind");
  if (backlog >= 0 && listen(fd, backlog) == -1) return fail("listen");
  o.fd = fd;
  return o;
}

// Resolves host ("" = all interfaces) and opens the socket; throws a Node-style error.
int OpenOrThrow(Napi::Env env, const std::string& host, int port, bool reusePort, int backlog) {
  Address a;
  Outcome o;
  if (host.empty()) {
    Wildcard(AF_INET6, port, &a);
    o = OpenSocket(a, reusePort, backlog);
    if (o.fd < 0 && (o.err == EAFNOSUPPORT || o.err == EPROTONOSUPPORT ||
                     o.err == EADDRNOTAVAIL)) {
      Wildcard(AF_INET, port, &a);
      o = OpenSocket(a, reusePort, backlog);
    }
  } else {
    if (!ParseLiteral(host, port, &a))
      ThrowArg(env, "ERR_INVALID_IP_ADDRESS", "Invalid IP address: " + host);
    o = OpenSocket(a, reusePort, backlog);
  }
  if (o.fd < 0) ThrowSys(env, o.err, o.syscall, &a.text, port);
  return o.fd;
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string host = ArgString(info, 0, "host");
  int port = ArgPort(info, 1);
  int backlog = ArgInt(info, 2, "backlog", 0, 2147483647, "ERR_OUT_OF_RANGE");
  if (info.Length() <= 3 || !info[3].IsBoolean())
    ThrowArg(env, "ERR_INVALID_ARG_TYPE", "The \"reusePort\" argument must be of type boolean");
  bool reusePort = info[3].As<Napi::Boolean>().Value();
  return Napi::Number::New(env, OpenOrThrow(env, host, port, reusePort, backlog));
}

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string host = ArgString(info, 0, "host");
  int port = ArgPort(info, 1);
  int fd = OpenOrThrow(env, host, port, false, -1);
  ::close(fd);
  return env.Undefined();
}

Napi::Value LocalPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == -1)
    ThrowSys(env, errno, "getsockname");
  int port;
  if (ss.ss_family == AF_INET)
    port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  else if (ss.ss_family == AF_INET6)
    port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  else
    ThrowSys(env, EAFNOSUPPORT, "getsockname");
  return Napi::Number::New(env, port);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  // On Linux the descriptor is released even when close() reports EINTR: do not retry.
  if (::close(fd) == -1 && errno != EINTR) ThrowSys(env, errno, "close");
  return env.Undefined();
}

#ifdef __linux__
// steer(fd, n): attach a classic BPF program to fd's SO_REUSEPORT group that
// sends each new connection to a random one of the group's first n sockets.
// The group keeps its sockets in the order they started listening, so the
// master (which creates slot i's socket i-th and always removes the last one)
// can take a socket out of rotation before it closes it: its queue drains
// into its worker instead of being reset.
Napi::Value Steer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t n = static_cast<uint32_t>(ArgInt(info, 1, "n", 1, 65535, "ERR_OUT_OF_RANGE"));
  sock_filter code[] = {
      {BPF_LD | BPF_W | BPF_ABS, 0, 0, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_RANDOM)},
      {BPF_ALU | BPF_MOD | BPF_K, 0, 0, n},
      {BPF_RET | BPF_A, 0, 0, 0},
  };
  sock_fprog prog = {static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == -1)
    ThrowSys(env, errno, "setsockopt");
  return env.Undefined();
}
#endif  // __linux__

// ---- upgrade and systemd (issue #12) ----
// dup(fd) -> a close-on-exec duplicate (the master hands node:cluster a copy of
// the listening socket it keeps, so node:cluster closing its copy closes nothing of ours).
// notify(address, message): one AF_UNIX datagram to NOTIFY_SOCKET (sd_notify);
// an address starting with '@' is in the abstract namespace.
Napi::Value Dup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy == -1) ThrowSys(env, errno, "dup");
  return Napi::Number::New(env, copy);
}

Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string address = ArgString(info, 0, "address");
  std::string message = ArgString(info, 1, "message");
  sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (address.empty() || address.size() >= sizeof sa.sun_path)
    ThrowArg(env, "ERR_INVALID_ARG_VALUE", "NOTIFY_SOCKET must be a path or @name shorter than 108 bytes");
  memcpy(sa.sun_path, address.data(), address.size());
  if (address[0] == '@') sa.sun_path[0] = '\0';
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd == -1) ThrowSys(env, errno, "socket");
  ssize_t n = sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len);
  int err = errno;
  ::close(fd);
  if (n == -1) ThrowSys(env, err, "sendto");
  return env.Undefined();
}
// ---- end upgrade and systemd ----

#endif  // !_WIN32

Napi::Object Init(Napi::Env env, Napi::Object exports) {
#ifdef _WIN32
  throw Napi::Error::New(env, "cluster2 native addon: this platform is not supported");
#else
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("localPort", Napi::Function::New(env, LocalPort, "localPort"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("dup", Napi::Function::New(env, Dup, "dup")), exports.Set("notify", Napi::Function::New(env, Notify, "notify"));
#ifdef __linux__
  exports.Set("steer", Napi::Function::New(env, Steer, "steer"));
#endif
  return exports;
#endif
}

}  // namespace

NODE_API_MODULE(cluster2, Init)
