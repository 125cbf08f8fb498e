// How-to: coroutines (docs/how-to/coroutines.md). Copies a file into a pipe and back out with
// straight-line coroutines on default_instance, in both dispatch modes, and checks the bytes.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <ksvc/executor/sys.hpp>
#include <ksvc/executor/task.hpp>
#include <ksvc/module/presets.hpp>

// Reads `in` to its end, writing each piece to `out`; returns the bytes copied (or -errno).
ksvc::task<std::int64_t> copy_all(ksvc::default_instance& inst, int in, int out) {
    char buf[4096];
    std::int64_t total = 0;
    for (;;) {
        const ksvc::completion_entry r = co_await ksvc::async(inst, ksvc::sys::read(in, buf, sizeof buf));
        if (r.result <= 0) co_return r.result < 0 ? r.result : total;
        for (std::int64_t off = 0; off < r.result;) {
            const ksvc::completion_entry w = co_await ksvc::async(inst, ksvc::sys::write(out, buf + off, r.result - off));
            if (w.result < 0) co_return w.result;
            off += w.result;
        }
        total += r.result;
    }
}

// Two coroutines at once: one fills the pipe from the file, the other drains it into a string.
ksvc::task<std::string> drain(ksvc::default_instance& inst, int in) {
    std::string got;
    char buf[4096];
    for (;;) {
        const ksvc::completion_entry r = co_await ksvc::async(inst, ksvc::sys::read(in, buf, sizeof buf));
        if (r.result <= 0) co_return got;
        got.append(buf, static_cast<std::size_t>(r.result));
    }
}
ksvc::task<std::int64_t> fill_then_close(ksvc::default_instance& inst, int file, int pipe_w) {
    const std::int64_t n = co_await copy_all(inst, file, pipe_w);
    ::close(pipe_w); // the reader sees the end
    co_return n;
}

int main() {
    char path[] = "/tmp/ksvc-howto-XXXXXX";
    const int file = ::mkstemp(path);
    std::string data;
    for (int i = 0; i < 20000; ++i) data += static_cast<char>('a' + i % 26);
    if (file < 0 || ::write(file, data.data(), data.size()) != static_cast<ssize_t>(data.size())) return 1;
    ::unlink(path);
    for (ksvc::dispatch_mode mode : {ksvc::dispatch_mode::threaded, ksvc::dispatch_mode::inline_mode}) {
        ksvc::instance_options o;
        o.mode = mode;
        ksvc::default_instance inst(o);
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0 || ::lseek(file, 0, SEEK_SET) != 0) return 1;
        auto [copied, got] = ksvc::sync_wait(inst, ksvc::when_all(fill_then_close(inst, file, p[1]), drain(inst, p[0])));
        ::close(p[0]);
        if (copied != static_cast<std::int64_t>(data.size()) || got != data) {
            std::fprintf(stderr, "FAILED: copied %lld, read back %zu bytes\n", static_cast<long long>(copied), got.size());
            return 1;
        }
        std::printf("%s: %lld bytes through the pipe, every one checked\n",
                    mode == ksvc::dispatch_mode::threaded ? "threaded" : "inline", static_cast<long long>(copied));
    }
    ::close(file);
    return 0;
}
