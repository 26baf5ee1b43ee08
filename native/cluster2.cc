// cluster2 native addon (N-API through node-addon-api).
//
// Two things Node's own net module cannot do on every supported version:
//   listen(host, port, backlog, reusePort) -> fd
//       a non-blocking, close-on-exec TCP listening socket, with SO_REUSEADDR and, when
//       asked, SO_REUSEPORT; the master keeps it and hands duplicates to workers.
//   probe(host, port)
//       is host:port bindable exclusively? SO_REUSEADDR (a TIME_WAIT port is free) and
//       no SO_REUSEPORT (a port held by another program's SO_REUSEPORT socket is busy).
// plus localPort(fd) (getsockname) and close(fd); on Linux steer(fd, n) and sticky(fd, n),
// the classic BPF programs that pick a reuseport group's socket for each new connection.
//
// host is a numeric IPv4 or IPv6 literal, or "" for all interfaces: like Node, "::" with
// IPV6_V6ONLY=0, falling back to "0.0.0.0" when the machine has no IPv6.
// System errors are thrown carrying errno < 0 and syscall (and address, port); lib/native.ts
// turns them into Node-shaped errors (code, message).

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
#include <sys/wait.h>
#ifdef __linux__
#include <linux/filter.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#endif
#endif

namespace {

#ifndef _WIN32

// Throws an Error carrying errno (negative, as Node's) and the syscall, plus the address
// and port when there are some. lib/native.ts names the code (util.getSystemErrorName)
// and writes Node's message: `<syscall> <CODE>: <message> <address>:<port>`.
[[noreturn]] void ThrowSys(Napi::Env env, int err, const char* syscall,
                           const std::string* address = nullptr, int port = -1) {
  Napi::Error e = Napi::Error::New(env, syscall);
  Napi::Object o = e.Value();
  o.Set("errno", Napi::Number::New(env, -err));
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
// Replaces the classic BPF program of fd's SO_REUSEPORT group (one program per group).
void AttachReuseportProgram(Napi::Env env, int fd, sock_filter* code, size_t len) {
  sock_fprog prog = {static_cast<unsigned short>(len), code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == -1)
    ThrowSys(env, errno, "setsockopt");
}

uint32_t ArgSlots(const Napi::CallbackInfo& info) {
  return static_cast<uint32_t>(ArgInt(info, 1, "n", 1, 65535, "ERR_OUT_OF_RANGE"));
}

// steer(fd, n): attach a classic BPF program to fd's SO_REUSEPORT group that
// sends each new connection to a random one of the group's first n sockets.
// The group keeps its sockets in the order they started listening, so the
// master (which creates slot i's socket i-th and always removes the last one)
// can take a socket out of rotation before it closes it: its queue drains
// into its worker instead of being reset.
Napi::Value Steer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t n = ArgSlots(info);
  sock_filter code[] = {
      {BPF_LD | BPF_W | BPF_ABS, 0, 0, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_RANDOM)},
      {BPF_ALU | BPF_MOD | BPF_K, 0, 0, n},
      {BPF_RET | BPF_A, 0, 0, 0},
  };
  AttachReuseportProgram(env, fd, code, sizeof code / sizeof code[0]);
  return env.Undefined();
}

// sticky(fd, n): like steer, but the socket is picked from the client's source
// address, so every connection from one address reaches the same one of the
// group's first n sockets (its slot), whatever its source port. The program
// reads the IP header of the SYN (SKF_NET_OFF): the version nibble says IPv4
// (a dual-stack socket sees those too) or IPv6. The address (IPv4 saddr at +12,
// or the four IPv6 words at +8..+23 folded as ((w0*K ^ w1)*K ^ w2)*K ^ w3) is
// multiplied by K = 2^32/phi (Fibonacci hashing) and the top 16 bits are scaled
// to 0..n-1: ((h >> 16) * n) >> 16. Consecutive addresses spread evenly. A
// packet that is neither (or a read past its end, which returns 0) gets slot 0.
Napi::Value Sticky(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  uint32_t n = ArgSlots(info);
  const uint32_t net = static_cast<uint32_t>(SKF_NET_OFF);
  const uint32_t k = 0x9E3779B9u;
  sock_filter code[] = {
      /*  0 */ {BPF_LD | BPF_B | BPF_ABS, 0, 0, net + 0},  // version << 4 | ...
      /*  1 */ {BPF_ALU | BPF_RSH | BPF_K, 0, 0, 4},
      /*  2 */ {BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 4},  // IPv4: 4
      /*  3 */ {BPF_JMP | BPF_JEQ | BPF_K, 2, 20, 6},  // IPv6: 6, else 24
      /*  4 */ {BPF_LD | BPF_W | BPF_ABS, 0, 0, net + 12},  // IPv4 saddr
      /*  5 */ {BPF_JMP | BPF_JA, 0, 0, 13},  // -> 19
      /*  6 */ {BPF_LD | BPF_W | BPF_ABS, 0, 0, net + 8},  // IPv6 saddr
      /*  7 */ {BPF_ALU | BPF_MUL | BPF_K, 0, 0, k},
      /*  8 */ {BPF_MISC | BPF_TAX, 0, 0, 0},
      /*  9 */ {BPF_LD | BPF_W | BPF_ABS, 0, 0, net + 12},
      /* 10 */ {BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0},
      /* 11 */ {BPF_ALU | BPF_MUL | BPF_K, 0, 0, k},
      /* 12 */ {BPF_MISC | BPF_TAX, 0, 0, 0},
      /* 13 */ {BPF_LD | BPF_W | BPF_ABS, 0, 0, net + 16},
      /* 14 */ {BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0},
      /* 15 */ {BPF_ALU | BPF_MUL | BPF_K, 0, 0, k},
      /* 16 */ {BPF_MISC | BPF_TAX, 0, 0, 0},
      /* 17 */ {BPF_LD | BPF_W | BPF_ABS, 0, 0, net + 20},
      /* 18 */ {BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0},
      /* 19 */ {BPF_ALU | BPF_MUL | BPF_K, 0, 0, k},
      /* 20 */ {BPF_ALU | BPF_RSH | BPF_K, 0, 0, 16},
      /* 21 */ {BPF_ALU | BPF_MUL | BPF_K, 0, 0, n},
      /* 22 */ {BPF_ALU | BPF_RSH | BPF_K, 0, 0, 16},
      /* 23 */ {BPF_RET | BPF_A, 0, 0, 0},
      /* 24 */ {BPF_RET | BPF_K, 0, 0, 0},
  };
  AttachReuseportProgram(env, fd, code, sizeof code / sizeof code[0]);
  return env.Undefined();
}

// stopHandshakes(fd): attach a socket filter to a listening socket that drops
// every incoming SYN. No new handshake starts on it from now on (the client
// retransmits its SYN about 1 s later, and then meets a closed port: refused,
// or a new listener), while the final ACKs of handshakes already under way
// still pass, so their connections still join the accept queue. The queue can
// only shrink: its owner accepts until it is empty, then closes without
// resetting anything. (listen(fd, 0) would not do: the kernel still queues one
// connection, since the queue is full only when longer than the backlog; and
// shutdown(fd, SHUT_RD) on a listener resets the whole queue, like close.)
// A TCP socket filter sees the packet from its TCP header: byte 13 holds the flags.
Napi::Value StopHandshakes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  sock_filter code[] = {
      {BPF_LD | BPF_B | BPF_ABS, 0, 0, 13},       // A = TCP flags
      {BPF_JMP | BPF_JSET | BPF_K, 0, 1, 0x02},   // SYN set?
      {BPF_RET | BPF_K, 0, 0, 0},                 // yes: drop
      {BPF_RET | BPF_K, 0, 0, 0xffffffff},        // no: keep
  };
  sock_fprog prog = {static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == -1)
    ThrowSys(env, errno, "setsockopt");
  return env.Undefined();
}

// acceptQueue(fd): for a listening TCP socket, how many connections the kernel
// completed that nobody has accepted yet; -1 for a TCP socket that is not
// listening (a connection); null for anything else (not a socket, not TCP).
Napi::Value AcceptQueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  int protocol = 0, listening = 0;
  socklen_t len = sizeof protocol;
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == -1 || protocol != IPPROTO_TCP)
    return env.Null();
  len = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == -1) return env.Null();
  if (!listening) return Napi::Number::New(env, -1);
  tcp_info ti;
  len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1) ThrowSys(env, errno, "getsockopt");
  // For a listener the kernel reports its accept queue's length in tcpi_unacked.
  return Napi::Number::New(env, ti.tcpi_unacked);
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

// ---- the process the user started, kept through upgrades (issue #24) ----
// setSubreaper(): PR_SET_CHILD_SUBREAPER, so that a master started by an upgrade is
// reparented to this process (not to pid 1) when the master that forked it exits.
// waitPid(pid): a non-blocking waitpid(2) of one child, for a child that libuv did not
// spawn (a reparented one): null while it runs; { code, signal } once it has exited and
// been reaped (code null when killed by a signal; signal null, else its number).
#ifdef __linux__
Napi::Value SetSubreaper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1) ThrowSys(env, errno, "prctl");
  return env.Undefined();
}
#endif

Napi::Value WaitPid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pid = ArgInt(info, 0, "pid", 1, 2147483647, "ERR_OUT_OF_RANGE");
  int status = 0;
  pid_t r;
  do r = waitpid(pid, &status, WNOHANG);
  while (r == -1 && errno == EINTR);
  if (r == -1) ThrowSys(env, errno, "waitpid");
  if (r == 0) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  if (WIFSIGNALED(status)) {
    o.Set("code", env.Null());
    o.Set("signal", Napi::Number::New(env, WTERMSIG(status)));
  } else {
    o.Set("code", Napi::Number::New(env, WIFEXITED(status) ? WEXITSTATUS(status) : 0));
    o.Set("signal", env.Null());
  }
  return o;
}
// ---- end of the started process ----

#endif  // !_WIN32

Napi::Object Init(Napi::Env env, Napi::Object exports) {
#ifdef _WIN32
  throw Napi::Error::New(env, "cluster2 native addon: this platform is not supported");
#else
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("localPort", Napi::Function::New(env, LocalPort, "localPort"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("dup", Napi::Function::New(env, Dup, "dup"));
  exports.Set("notify", Napi::Function::New(env, Notify, "notify"));
  exports.Set("waitPid", Napi::Function::New(env, WaitPid, "waitPid"));
#ifdef __linux__
  exports.Set("steer", Napi::Function::New(env, Steer, "steer"));
  exports.Set("sticky", Napi::Function::New(env, Sticky, "sticky"));
  exports.Set("stopHandshakes", Napi::Function::New(env, StopHandshakes, "stopHandshakes"));
  exports.Set("acceptQueue", Napi::Function::New(env, AcceptQueue, "acceptQueue"));
  exports.Set("setSubreaper", Napi::Function::New(env, SetSubreaper, "setSubreaper"));
#endif
  return exports;
#endif
}

}  // namespace

NODE_API_MODULE(cluster2, Init)
