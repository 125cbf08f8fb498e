//! librss_probe.so — loaded into a server with LD_PRELOAD by the idle-connection harness, it
//! records the process's memory before main() runs, so before any io_uring instance, epoll set
//! or buffer exists, without a line of the server changed. Its constructor copies the memory
//! lines of /proc/self/status (VmRSS, RssAnon, RssFile, RssShmem) to the file named by
//! KSVC_RSS_PROBE_OUT and removes the variable, so nothing the server starts inherits it.
//! Only libc, no allocation; a missing variable makes it do nothing.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace {

[[gnu::constructor]] void probe() {
    const char* out = std::getenv("KSVC_RSS_PROBE_OUT");
    if (!out) return;
    char buf[4096];
    const int in = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (in < 0) return;
    ssize_t n = 0, r;
    while (n < static_cast<ssize_t>(sizeof buf) - 1 && (r = ::read(in, buf + n, sizeof buf - 1 - static_cast<std::size_t>(n))) > 0) n += r;
    ::close(in);
    buf[n] = '\0';
    const int fd = ::open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ::unsetenv("KSVC_RSS_PROBE_OUT");
    ::unsetenv("LD_PRELOAD");
    if (fd < 0) return;
    for (char* line = buf; *line;) {
        char* end = std::strchr(line, '\n');
        const std::size_t len = end ? static_cast<std::size_t>(end - line + 1) : std::strlen(line);
        if (std::strncmp(line, "VmRSS:", 6) == 0 || std::strncmp(line, "RssAnon:", 8) == 0 ||
            std::strncmp(line, "RssFile:", 8) == 0 || std::strncmp(line, "RssShmem:", 9) == 0)
            if (::write(fd, line, len) < 0) break;
        line += len;
    }
    ::close(fd);
}

} // namespace
