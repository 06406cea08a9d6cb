// podwire_netlink: the few things Node cannot do by itself.
//
//  - open a netlink socket inside another network namespace (a netlink socket
//    stays bound to the namespace it was created in, so one setns around
//    socket() is enough, and the calling thread is put back before returning);
//  - raw, synchronous netlink send/receive on that socket;
//  - flock(2), for host-local's on-disk lock;
//  - read or write a file (a sysctl under /proc/sys/net) as seen from inside a
//    namespace: /proc/sys/net resolves the namespace of the thread that opens it.
//
// Everything else (message encoding, rtnetlink, nf_tables, generic netlink)
// lives in TypeScript under src/netlink/.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <string>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

namespace {

const char* ErrnoName(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOSPC: return "ENOSPC";
    case ERANGE: return "ERANGE";
    case EDEADLK: return "EDEADLK";
    case ENOLCK: return "ENOLCK";
    case ENOSYS: return "ENOSYS";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ENOBUFS: return "ENOBUFS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETDOWN: return "ENETDOWN";
    case ENETUNREACH: return "ENETUNREACH";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EMSGSIZE: return "EMSGSIZE";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case E2BIG: return "E2BIG";
    default: return "EUNKNOWN";
  }
}

// Throws an Error whose .code is the errno name and .errno the number, as
// Node's own fs errors do.
void ThrowErrno(Napi::Env env, int e, const std::string& what) {
  Napi::Error err = Napi::Error::New(env, what + ": " + strerror(e) + " (" + ErrnoName(e) + ")");
  err.Set("code", Napi::String::New(env, ErrnoName(e)));
  err.Set("errno", Napi::Number::New(env, e));
  err.Set("syscall", Napi::String::New(env, what));
  err.ThrowAsJavaScriptException();
}

// Runs fn() with the calling thread inside the network namespace at nsPath
// (an empty path means: stay where we are), then puts the thread back.
// Returns the errno of the failing step, or 0; fn reports its own errno.
template <typename Fn>
int InNetns(const std::string& nsPath, std::string* failedStep, Fn fn) {
  if (nsPath.empty()) return fn();
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) { *failedStep = "open /proc/thread-self/ns/net"; return errno; }
  int target = open(nsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) { int e = errno; close(self); *failedStep = "open " + nsPath; return e; }
  if (setns(target, CLONE_NEWNET) < 0) {
    int e = errno; close(target); close(self); *failedStep = "setns " + nsPath; return e;
  }
  close(target);
  int rc = fn();
  if (setns(self, CLONE_NEWNET) < 0) {
    // The thread would be left in the wrong namespace: nothing sane can follow.
    perror("podwire_netlink: cannot return to the original network namespace");
    abort();
  }
  close(self);
  return rc;
}

std::string OptString(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() > i && info[i].IsString()) return info[i].As<Napi::String>().Utf8Value();
  return "";
}

// socket(protocol, netnsPath?) -> fd
Napi::Value Socket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int proto = info[0].As<Napi::Number>().Int32Value();
  std::string ns = OptString(info, 1);
  int fd = -1;
  std::string step = "socket";
  int rc = InNetns(ns, &step, [&]() {
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
    return fd < 0 ? errno : 0;
  });
  if (rc != 0) { ThrowErrno(env, rc, step); return env.Null(); }
  sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    int e = errno; close(fd); ThrowErrno(env, e, "bind"); return env.Null();
  }
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  // Large dumps and batch acknowledgements must not overflow the queue.
  int buf = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  return Napi::Number::New(env, fd);
}

// portId(fd) -> the netlink port id the kernel assigned at bind.
Napi::Value PortId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  sockaddr_nl sa;
  socklen_t len = sizeof sa;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0) {
    ThrowErrno(env, errno, "getsockname"); return env.Null();
  }
  return Napi::Number::New(env, sa.nl_pid);
}

// setsockoptInt(fd, level, name, value)
Napi::Value SetSockOptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int level = info[1].As<Napi::Number>().Int32Value();
  int name = info[2].As<Napi::Number>().Int32Value();
  int value = info[3].As<Napi::Number>().Int32Value();
  if (setsockopt(fd, level, name, &value, sizeof value) < 0) {
    ThrowErrno(env, errno, "setsockopt"); return env.Null();
  }
  return env.Undefined();
}

// send(fd, buffer) -> bytes sent (always the whole datagram)
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<uint8_t> b = info[1].As<Napi::Buffer<uint8_t>>();
  sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(fd, b.Data(), b.Length(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  } while (n < 0 && errno == EINTR);
  if (n < 0) { ThrowErrno(env, errno, "sendto"); return env.Null(); }
  return Napi::Number::New(env, static_cast<double>(n));
}

// recv(fd, timeoutMs) -> Buffer with one datagram (possibly several netlink
// messages), or null when nothing arrived within timeoutMs (-1: wait forever).
Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int timeout = info.Length() > 1 ? info[1].As<Napi::Number>().Int32Value() : -1;
  pollfd p{fd, POLLIN, 0};
  int pr;
  do { pr = poll(&p, 1, timeout); } while (pr < 0 && errno == EINTR);
  if (pr < 0) { ThrowErrno(env, errno, "poll"); return env.Null(); }
  if (pr == 0) return env.Null();
  // Learn the datagram's size first, so a large dump is never truncated.
  ssize_t size;
  char probe;
  do { size = recv(fd, &probe, 1, MSG_PEEK | MSG_TRUNC); } while (size < 0 && errno == EINTR);
  if (size < 0) { ThrowErrno(env, errno, "recv"); return env.Null(); }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, size > 0 ? size : 1);
  ssize_t n;
  do { n = recv(fd, out.Data(), out.Length(), 0); } while (n < 0 && errno == EINTR);
  if (n < 0) { ThrowErrno(env, errno, "recv"); return env.Null(); }
  if (static_cast<size_t>(n) < out.Length()) return Napi::Buffer<uint8_t>::Copy(env, out.Data(), n);
  return out;
}

// close(fd)
Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  close(fd);
  return info.Env().Undefined();
}

// flock(fd, operation) -> true, or false when LOCK_NB was asked and the lock is held.
Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int op = info[1].As<Napi::Number>().Int32Value();
  int rc;
  do { rc = flock(fd, op); } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    if (errno == EWOULDBLOCK && (op & LOCK_NB)) return Napi::Boolean::New(env, false);
    ThrowErrno(env, errno, "flock");
    return env.Null();
  }
  return Napi::Boolean::New(env, true);
}

// writeFileInNetns(netnsPath, path, data): write data to path as opened from
// inside the namespace (sysctls under /proc/sys/net).
Napi::Value WriteFileInNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ns = OptString(info, 0);
  std::string path = info[1].As<Napi::String>().Utf8Value();
  std::string data = info[2].As<Napi::String>().Utf8Value();
  std::string step = "open " + path;
  int rc = InNetns(ns, &step, [&]() {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    ssize_t n = write(fd, data.data(), data.size());
    int e = n < 0 ? errno : 0;
    close(fd);
    return e;
  });
  if (rc != 0) { ThrowErrno(env, rc, step); return env.Null(); }
  return env.Undefined();
}

// readFileInNetns(netnsPath, path) -> string
Napi::Value ReadFileInNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ns = OptString(info, 0);
  std::string path = info[1].As<Napi::String>().Utf8Value();
  std::string content;
  std::string step = "open " + path;
  int rc = InNetns(ns, &step, [&]() {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) content.append(buf, n);
    int e = n < 0 ? errno : 0;
    close(fd);
    return e;
  });
  if (rc != 0) { ThrowErrno(env, rc, step); return env.Null(); }
  return Napi::String::New(env, content);
}

// isNetns(path) -> true when path is a namespace file (nsfs), false when it is
// something else; throws when it cannot be looked at.
Napi::Value IsNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  struct statfs st;
  if (statfs(path.c_str(), &st) < 0) { ThrowErrno(env, errno, "statfs " + path); return env.Null(); }
  return Napi::Boolean::New(env, static_cast<unsigned long>(st.f_type) == NSFS_MAGIC);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("socket", Napi::Function::New(env, Socket));
  exports.Set("portId", Napi::Function::New(env, PortId));
  exports.Set("setsockoptInt", Napi::Function::New(env, SetSockOptInt));
  exports.Set("send", Napi::Function::New(env, Send));
  exports.Set("recv", Napi::Function::New(env, Recv));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("flock", Napi::Function::New(env, Flock));
  exports.Set("writeFileInNetns", Napi::Function::New(env, WriteFileInNetns));
  exports.Set("readFileInNetns", Napi::Function::New(env, ReadFileInNetns));
  exports.Set("isNetns", Napi::Function::New(env, IsNetns));
  return exports;
}

}  // namespace

NODE_API_MODULE(podwire_netlink, Init)
