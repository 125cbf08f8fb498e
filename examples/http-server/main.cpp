// ksvc-http-server — a static-file HTTP/1.1 server on ksvc::sharded_runner and coroutines,
// written to be copied.
//
// Each shard (one per CPU, pinned) listens on the port with SO_REUSEPORT and runs an
// accept_stream; each connection is a coroutine reading through a recv_stream (multishot recv
// into the provided buffer ring), parsing requests (http_parser.hpp; pipelined requests are
// answered in order), opening files beneath the root with openat2(RESOLVE_BENEATH) — so
// neither ".." nor a symlink can name a file outside it — and sending bodies with splice
// through a pipe: file pages go to the socket without passing through user space. A client
// that takes longer than --header-timeout to send a request's headers gets 408 and is closed.
// SIGINT or SIGTERM stops every shard: requests in flight finish, then connections close.
//
// Exit status: 0 after a clean shutdown, 1 when the server fails, 2 on bad usage.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <ksvc/executor/frame_stack.hpp>
#include <ksvc/executor/op.hpp>
#include <ksvc/executor/stream.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/executor/task.hpp>
#include <ksvc/module/runner.hpp>

#include "http_parser.hpp"
#include "http_response.hpp"

namespace {

constexpr const char* usage_text = R"(Usage: ksvc-http-server --root DIR [options]

A static-file HTTP/1.1 server (GET, HEAD, keep-alive, pipelining, If-Modified-Since) on
ksvc::sharded_runner: one server_instance per CPU behind SO_REUSEPORT listeners.

Options:
  --root DIR            directory to serve (required); nothing outside it is ever served
  --port N              TCP port (default 8080; 0: any free port, printed)
  --address A           IPv4 address to bind (default 127.0.0.1)
  --shards N            shards (threads, one ring each; default: one per usable CPU)
  --header-timeout S    seconds a client has to send a request's headers (default 10);
                        late: 408 and closed. An idle keep-alive connection is closed after it.
  --index               list directories that have no index.html (default: 403)
  --body MODE           how file bodies reach the socket, never through user space:
                          sendfile  sendfile(2) on the non-blocking socket, a POLLOUT
                                    through the ring when it is full (default)
                          splice    file -> pipe -> socket with IORING_OP_SPLICE (the kernel
                                    runs io_uring splices on its io-wq threads)
  --buffers N           provided receive buffers per shard, a power of two (default 1024)
  --buffer-size B       bytes per receive buffer (default 4096)
  --json                one JSON line when ready and one at exit on stdout
  --quiet               print nothing but errors
  -h, --help            this text

Exit status: 0 clean shutdown, 1 failure, 2 bad usage.
)";

struct config {
    std::string root;
    std::string address = "127.0.0.1";
    int port = 8080;
    unsigned shards = 0;
    unsigned header_timeout_s = 10;
    bool index = false, json = false, quiet = false;
    bool splice_bodies = false;
    std::size_t buffers = 1024, buffer_size = 4096;
};

[[noreturn]] void bad_usage(const std::string& why) {
    std::fprintf(stderr, "ksvc-http-server: %s\n(see --help)\n", why.c_str());
    std::exit(2);
}

unsigned long long number(const char* flag, const char* v) {
    if (!v) bad_usage(std::string(flag) + " needs a value");
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-') bad_usage(std::string(flag) + ": not a number: " + v);
    return n;
}

config parse_args(int argc, char** argv) {
    config c;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "-h" || a == "--help") {
            std::fputs(usage_text, stdout);
            std::exit(0);
        } else if (a == "--json") c.json = true;
        else if (a == "--quiet") c.quiet = true;
        else if (a == "--index") c.index = true;
        else if (a == "--root") { if (!v) bad_usage("--root needs a value"); c.root = v; ++i; }
        else if (a == "--address") { if (!v) bad_usage("--address needs a value"); c.address = v; ++i; }
        else if (a == "--port") {
            const auto p = number("--port", v);
            ++i;
            if (p > 65535) bad_usage("--port: above 65535");
            c.port = static_cast<int>(p);
        }
        else if (a == "--shards") { c.shards = static_cast<unsigned>(number("--shards", v)); ++i; if (c.shards == 0 || c.shards > 256) bad_usage("--shards: 1 to 256"); }
        else if (a == "--header-timeout") { c.header_timeout_s = static_cast<unsigned>(number("--header-timeout", v)); ++i; if (c.header_timeout_s == 0) bad_usage("--header-timeout: at least 1"); }
        else if (a == "--body") {
            if (!v) bad_usage("--body needs a value");
            const std::string_view m = v;
            if (m != "sendfile" && m != "splice") bad_usage("--body: sendfile or splice, not " + std::string(m));
            c.splice_bodies = m == "splice";
            ++i;
        }
        else if (a == "--buffers") { c.buffers = number("--buffers", v); ++i; }
        else if (a == "--buffer-size") { c.buffer_size = number("--buffer-size", v); ++i; }
        else bad_usage("unknown option " + std::string(a));
    }
    if (c.root.empty()) bad_usage("--root DIR is required");
    return c;
}

// ---- the parts of a response -------------------------------------------------------------

std::string escape_html(std::string_view s) {
    std::string o;
    for (char c : s) {
        switch (c) {
        case '<': o += "&lt;"; break;
        case '>': o += "&gt;"; break;
        case '&': o += "&amp;"; break;
        case '"': o += "&quot;"; break;
        default: o.push_back(c);
        }
    }
    return o;
}
std::string escape_url(std::string_view s) {
    static const char* hexd = "0123456789ABCDEF";
    std::string o;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') o.push_back(static_cast<char>(c));
        else o += {'%', hexd[c >> 4], hexd[c & 15]};
    }
    return o;
}

// ---- per-shard state and counters ----------------------------------------------------------

struct totals {
    std::atomic<std::uint64_t> connections{0}, requests{0}, status_2xx{0}, status_3xx{0}, status_4xx{0}, status_5xx{0},
        body_bytes{0}, timeouts{0};
};

using shard = ksvc::sharded_runner<>::shard;

struct server {
    const config& cfg;
    int root_fd;
    totals& t;
};

ksvc::submit_entry openat2_beneath(int dirfd, const char* path, open_how* how) {
    return ksvc::sys::make(SYS_openat2, dirfd, path, how, sizeof(open_how));
}
// SPLICE_F_MORE only while more of the body follows: on the last piece it would leave the
// socket corked until the kernel's 200 ms timer.
ksvc::submit_entry splice(int in, loff_t* off_in, int out, std::size_t len, bool more) {
    return ksvc::sys::make(SYS_splice, in, off_in, out, static_cast<loff_t*>(nullptr), len,
                           static_cast<unsigned>(SPLICE_F_MOVE | (more ? SPLICE_F_MORE : 0)));
}

// One connection: reads requests, answers them in order, closes.
class connection {
public:
    connection(server& s, shard& sh, int fd) : s_(s), sh_(sh), inst_(sh.instance()), fd_(fd) {}

    ksvc::task<void> run() {
        // Stops with the shard, or when the header deadline passes (watchdog()).
        std::stop_callback on_shard_stop(sh_.stop_token(), [this] {
            stop_.request_stop();
            watchdog_stop_.request_stop();
        });
        deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(s_.cfg.header_timeout_s);
        (void)co_await ksvc::when_all(serve(), watchdog());
        if (pipe_[0] >= 0) ::close(pipe_[0]), ::close(pipe_[1]);
        (void)co_await ksvc::async(inst_, ksvc::sys::close(fd_));
    }

private:
    ksvc::task<void> serve() {
        try {
            co_await serve_requests();
        } catch (...) {
            // A refused submission (the instance is shutting down): just close.
        }
        done_ = true;
        watchdog_stop_.request_stop(); // ends the watchdog's timer
    }

    ksvc::task<void> serve_requests() {
        // At most 8 received buffers wait while an answer is being sent: a client that pipelines
        // requests and reads nothing cannot take the shard's whole buffer ring.
        ksvc::recv_stream<ksvc::server_instance> in(inst_, fd_, stop_.get_token(), 0, 8);
        std::string buf;
        const http::limits lim{};
        for (;;) {
            // Answer every complete request already here (pipelining), in order.
            for (;;) {
                http::parse_result r = http::parse(buf, lim);
                if (r.what == http::parse_result::incomplete) break;
                s_.t.requests += 1;
                if (r.what == http::parse_result::refused) {
                    // After a refusal the stream may be out of step: close, but linger first.
                    bool sent = false;
                    (void)co_await send_error(std::allocator_arg, fa_, r.status, r.status == 405, false, !r.head, &sent);
                    if (sent) co_await linger(in); // a peer that is gone has nothing to read
                    co_return;
                }
                waiting_headers_ = false;
                const bool keep = co_await answer(std::allocator_arg, fa_, r.req);
                buf.erase(0, r.consumed);
                if (!keep) co_return;
                waiting_headers_ = true;
                deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(s_.cfg.header_timeout_s);
            }
            auto lease = co_await in.next();
            if (!lease) {
                if (timed_out_ && !buf.empty()) {
                    s_.t.timeouts += 1;
                    co_await send_error(std::allocator_arg, fa_, 408, false, false);
                }
                co_return; // the peer closed, the shard stops, or an idle connection timed out
            }
            for (std::span<std::byte> seg : lease->segments()) buf.append(reinterpret_cast<const char*>(seg.data()), seg.size());
        }
    }

    // Closing a socket with unread bytes makes the kernel send a reset, which can destroy the
    // answer the client has not read yet (a refused upload's body is still arriving). So:
    // shut the sending side, then read and drop what the client still sends — up to 1 MiB, until
    // it closes, or until the header deadline — and only then close (Apache's lingering close).
    ksvc::task<void> linger(ksvc::recv_stream<ksvc::server_instance>& in) {
        ::shutdown(fd_, SHUT_WR);
        deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(s_.cfg.header_timeout_s);
        waiting_headers_ = true; // the watchdog ends the stream at the deadline
        for (std::size_t dropped = 0; dropped < (1u << 20);) {
            auto lease = co_await in.next();
            if (!lease) break;
            dropped += lease->size();
        }
    }

    // Sleeps until the header deadline; if the connection is still waiting for headers then,
    // stops it (its recv stream ends `cancelled`, serve_requests() answers 408 and closes).
    ksvc::task<void> watchdog() {
        // A stopped watchdog_stop_ (the connection is done, or the shard stops) ends it: its
        // timer would complete at once from then on.
        while (!done_ && !watchdog_stop_.stop_requested()) {
            const auto now = std::chrono::steady_clock::now();
            if (waiting_headers_ && now >= deadline_) {
                timed_out_ = true;
                stop_.request_stop();
                co_return;
            }
            const auto wait = waiting_headers_ ? deadline_ - now : std::chrono::seconds(s_.cfg.header_timeout_s);
            (void)co_await ksvc::async(inst_, ksvc::op::timeout(std::chrono::duration_cast<std::chrono::nanoseconds>(wait)),
                                       watchdog_stop_.get_token());
        }
    }

    void count(int status) {
        if (status < 300) s_.t.status_2xx += 1;
        else if (status < 400) s_.t.status_3xx += 1;
        else if (status < 500) s_.t.status_4xx += 1;
        else s_.t.status_5xx += 1;
    }

    // Sends all of `data`; false when the peer is gone. Sends (and a body's waits) end when the
    // shard stops: a client that stopped reading cannot hold the server's shutdown.
    ksvc::task<bool> send_all(std::allocator_arg_t, ksvc::frame_allocator, std::string_view data, bool more) {
        while (!data.empty()) {
            const ksvc::completion_entry c = co_await ksvc::async(
                inst_, ksvc::sys::sendto(fd_, data.data(), data.size(), MSG_NOSIGNAL | (more ? MSG_MORE : 0)), sh_.stop_token());
            if (c.result <= 0) co_return false;
            data.remove_prefix(static_cast<std::size_t>(c.result));
        }
        co_return true;
    }

    // Returns whether the connection stays open; `*sent`: whether the whole answer went out.
    ksvc::task<bool> send_error(std::allocator_arg_t, ksvc::frame_allocator, int status, bool allow, bool keep, bool with_body = true,
                                bool* sent = nullptr) {
        count(status);
        const std::string body = "<!DOCTYPE html><title>" + std::to_string(status) + " " + http::reason(status) + "</title><h1>" +
                                 std::to_string(status) + " " + http::reason(status) + "</h1>\n";
        std::string h = http::response_head(status, "text/html; charset=utf-8", body.size(), keep, allow ? "Allow: GET, HEAD\r\n" : "");
        if (with_body) h += body;
        const bool ok = co_await send_all(std::allocator_arg, fa_, h, false);
        if (sent) *sent = ok;
        co_return ok && keep;
    }

    // Answers one request; returns whether the connection stays open.
    ksvc::task<bool> answer(std::allocator_arg_t, ksvc::frame_allocator, const http::request& q) {
        const bool head_only = q.verb == http::method::head;
        const std::string path = q.path.empty() ? "." : q.path;
        open_how how{};
        how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK; // O_NONBLOCK: a FIFO in the root cannot hang us
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        const ksvc::completion_entry o = co_await ksvc::async(inst_, openat2_beneath(s_.root_fd, path.c_str(), &how));
        if (o.result < 0) {
            const auto e = -o.result;
            // EXDEV: a symlink or ".." that leads out of the root; ELOOP: a loop. Both look
            // like a file that is not there. Out of descriptors or memory is the server's
            // trouble, for now: 503, never a 404 a client might cache.
            int status = 500;
            if (e == EACCES || e == EPERM) status = 403;
            else if (e == EMFILE || e == ENFILE || e == ENOMEM) status = 503;
            else if (e == ENOENT || e == ENOTDIR || e == EXDEV || e == ELOOP || e == ENAMETOOLONG || e == ENXIO) status = 404;
            co_return co_await send_error(std::allocator_arg, fa_, status, false, q.keep_alive && status < 500, !head_only);
        }
        file_ = static_cast<int>(o.result);
        const bool keep = co_await answer_file(std::allocator_arg, fa_, q, path, head_only);
        ::close(std::exchange(file_, -1));
        co_return keep;
    }

    // `index`: the file is a directory's index.html (the target named the directory).
    ksvc::task<bool> answer_file(std::allocator_arg_t, ksvc::frame_allocator, const http::request& q, const std::string& path,
                                 bool head_only, bool index = false) {
        // fstat(2) on the open file, right here: it cannot block, and io_uring would run a
        // STATX on an io-wq thread (a wake-up and a context switch per request).
        struct ::stat st{};
        if (::fstat(file_, &st) != 0) co_return co_await send_error(std::allocator_arg, fa_, 500, false, false, !head_only);
        if (S_ISDIR(st.st_mode)) {
            if (!q.trailing_slash) { // "/dir" → "/dir/": relative links inside it then work
                count(301);
                const std::string loc = "Location: /" + escape_url(q.path) + "/" + (q.query.empty() ? "" : "?" + q.query) + "\r\n";
                http::write_response_head(head_, 301, "", 0, q.keep_alive, std::nullopt, loc);
                co_return co_await send_all(std::allocator_arg, fa_, head_, false) && q.keep_alive;
            }
            open_how how{};
            how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
            how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
            const ksvc::completion_entry idx = co_await ksvc::async(inst_, openat2_beneath(file_, "index.html", &how));
            if (idx.result >= 0) {
                ::close(std::exchange(file_, static_cast<int>(idx.result)));
                const std::string index_path = path + "/index.html";
                co_return co_await answer_file(std::allocator_arg, fa_, q, index_path, head_only, true);
            }
            if (!s_.cfg.index) co_return co_await send_error(std::allocator_arg, fa_, 403, false, q.keep_alive, !head_only);
            co_return co_await send_listing(q, head_only);
        }
        if (!S_ISREG(st.st_mode)) co_return co_await send_error(std::allocator_arg, fa_, 403, false, q.keep_alive, !head_only);
        if (q.trailing_slash && !index) co_return co_await send_error(std::allocator_arg, fa_, 404, false, q.keep_alive, !head_only); // "/file.txt/"
        if (!q.if_modified_since.empty()) {
            // A date in the future is no valid date (RFC 9110 §13.1.3): ignored, the file is sent.
            const auto since = http::parse_date(q.if_modified_since);
            if (since && *since <= std::time(nullptr) && st.st_mtime <= *since) {
                count(304);
                http::write_response_head(head_, 304, "", 0, q.keep_alive, st.st_mtime);
                co_return co_await send_all(std::allocator_arg, fa_, head_, false) && q.keep_alive;
            }
        }
        count(200);
        const auto size = static_cast<std::uint64_t>(st.st_size);
        http::write_response_head(head_, 200, http::content_type(path), size, q.keep_alive, st.st_mtime);
        if (!co_await send_all(std::allocator_arg, fa_, head_, !head_only && size > 0))
            co_return false;
        if (head_only || size == 0) co_return q.keep_alive;
        const bool sent = s_.cfg.splice_bodies ? co_await splice_body(std::allocator_arg, fa_, size)
                                               : co_await sendfile_body(std::allocator_arg, fa_, size);
        co_return sent && q.keep_alive;
    }

    // sendfile(2) right here: the socket is non-blocking, so it takes what fits and returns;
    // when the socket is full the coroutine waits for POLLOUT through the ring. (A file that is
    // not in the page cache would be read from disk on this thread — a static-file server's
    // usual bet; --body splice keeps even that off it.)
    ksvc::task<bool> sendfile_body(std::allocator_arg_t, ksvc::frame_allocator, std::uint64_t size) {
        off_t off = 0;
        while (static_cast<std::uint64_t>(off) < size) {
            const ssize_t n = ::sendfile(fd_, file_, &off, static_cast<std::size_t>(size - static_cast<std::uint64_t>(off)));
            if (n > 0) {
                s_.t.body_bytes += static_cast<std::uint64_t>(n);
                continue;
            }
            if (n == 0 || errno != EAGAIN) co_return false; // the file shrank, or the peer is gone
            const ksvc::completion_entry p = co_await ksvc::async(inst_, ksvc::op::poll(fd_, POLLOUT), sh_.stop_token());
            if (p.result < 0 || (p.result & (POLLERR | POLLHUP))) co_return false;
        }
        co_return true;
    }

    // file → pipe → socket with splice: the pages never pass through user space.
    ksvc::task<bool> splice_body(std::allocator_arg_t, ksvc::frame_allocator, std::uint64_t size) {
        if (pipe_[0] < 0 && ::pipe2(pipe_, O_CLOEXEC) != 0) co_return false;
        loff_t off = 0; // splice advances it (it lives in this frame until the completion)
        while (static_cast<std::uint64_t>(off) < size) {
            const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(size - static_cast<std::uint64_t>(off), 1u << 16));
            const bool last = static_cast<std::uint64_t>(off) + want >= size;
            const ksvc::completion_entry in = co_await ksvc::async(inst_, splice(file_, &off, pipe_[1], want, !last), sh_.stop_token());
            if (in.result <= 0) co_return false; // the file shrank or failed: the length we sent is wrong now
            for (std::int64_t left = in.result; left > 0;) {
                const ksvc::completion_entry out =
                    co_await ksvc::async(inst_, splice(pipe_[0], nullptr, fd_, static_cast<std::size_t>(left), !last), sh_.stop_token());
                if (out.result <= 0) co_return false; // bytes left in the pipe: the connection closes with it
                left -= out.result;
            }
            s_.t.body_bytes += static_cast<std::uint64_t>(in.result);
        }
        co_return true;
    }

    ksvc::task<bool> send_listing(const http::request& q, bool head_only) {
        // A directory listing is rare and small: read it here, on the shard (blocking getdents).
        const int dfd = ::dup(file_);
        DIR* d = dfd >= 0 ? ::fdopendir(dfd) : nullptr;
        if (!d) {
            if (dfd >= 0) ::close(dfd);
            co_return co_await send_error(std::allocator_arg, fa_, 500, false, false, !head_only);
        }
        std::vector<std::string> names;
        while (const dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') names.push_back(std::string(e->d_name) + (e->d_type == DT_DIR ? "/" : ""));
        ::closedir(d);
        std::sort(names.begin(), names.end());
        const std::string title = "/" + escape_html(q.path) + (q.path.empty() ? "" : "/");
        std::string body = "<!DOCTYPE html><title>Index of " + title + "</title><h1>Index of " + title + "</h1><ul>\n";
        for (const std::string& n : names) body += "<li><a href=\"" + escape_url(n) + "\">" + escape_html(n) + "</a>\n";
        body += "</ul>\n";
        count(200);
        std::string h = http::response_head(200, "text/html; charset=utf-8", body.size(), q.keep_alive);
        if (!head_only) h += body;
        co_return co_await send_all(std::allocator_arg, fa_, h, false) && q.keep_alive;
    }

    server& s_;
    shard& sh_;
    ksvc::server_instance& inst_;
    // A request's coroutines (answer, answer_file, send_all, the body and error senders) take
    // their frames from this stack: nested, so in stack order, and no malloc per request. The
    // block is held only while a request is answered (frame_stack.hpp).
    ksvc::frame_stack frames_{8192};
    ksvc::frame_allocator fa_ = frames_.allocator();
    std::string head_; // the response head being sent; its capacity serves every response
    int fd_;
    int file_ = -1;
    int pipe_[2] = {-1, -1};
    std::stop_source stop_, watchdog_stop_;
    std::chrono::steady_clock::time_point deadline_;
    bool waiting_headers_ = true, timed_out_ = false, done_ = false;
};

// The whole process's CPU time (every shard, and the kernel's io-wq threads, which count as
// this process's): "utime_us":…,"stime_us":…
std::string cpu_json() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    const auto us = [](const timeval& t) { return static_cast<long long>(t.tv_sec) * 1000000ll + t.tv_usec; };
    return "\"utime_us\":" + std::to_string(us(ru.ru_utime)) + ",\"stime_us\":" + std::to_string(us(ru.ru_stime));
}

ksvc::task<void> serve_connection(server& s, shard& sh, int fd) {
    connection c(s, sh, fd);
    co_await c.run();
}

ksvc::task<void> shard_main(server& s, shard& sh, int l) {
    // Non-blocking sockets: sendfile(2) must never stall the shard (io_uring's own operations
    // wait for readiness either way).
    ksvc::accept_stream<ksvc::server_instance> conns(sh.instance(), l, sh.stop_token(), SOCK_NONBLOCK);
    while (auto fd = co_await conns.next()) {
        s.t.connections += 1;
        sh.spawn(serve_connection(s, sh, *fd));
    }
    if (conns.end() == ksvc::stream_end::error)
        std::fprintf(stderr, "ksvc-http-server: shard %u: accept: %s\n", sh.index(), conns.error().message().c_str());
}

} // namespace

int main(int argc, char** argv) {
    const config cfg = parse_args(argc, argv);
    ::signal(SIGPIPE, SIG_IGN); // sendfile(2) to a peer that left: EPIPE, not death
    const int root_fd = ::open(cfg.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        std::fprintf(stderr, "ksvc-http-server: --root %s: %s\n", cfg.root.c_str(), std::strerror(errno));
        return 1;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(cfg.port));
    if (::inet_pton(AF_INET, cfg.address.c_str(), &addr.sin_addr) != 1) bad_usage("--address: not an IPv4 address: " + cfg.address);
    // Port 0: every shard must listen on the same port, so one is chosen here first — held by
    // a bound socket that never listens (SO_REUSEPORT lets the shards bind it too).
    int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(holder, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(holder, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (::bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        std::fprintf(stderr, "ksvc-http-server: bind %s:%d: %s\n", cfg.address.c_str(), cfg.port, std::strerror(errno));
        return 1;
    }
    socklen_t len = sizeof addr;
    ::getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len);
    const int port = ntohs(addr.sin_port);

    ksvc::runner_options ro;
    ro.shards = cfg.shards;
    ro.instance.buffer_count = cfg.buffers;
    ro.instance.buffer_size = cfg.buffer_size;
    totals t;
    server s{cfg, root_fd, t};
    std::atomic<unsigned> listening{0};
    int status = 0;
    try {
        ksvc::sharded_runner<> r(ro);
        r.run([&](shard& sh) -> ksvc::task<void> {
            const int l = sh.listen(addr);
            ::setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); // accepted sockets inherit it
            if (++listening == r.shards()) { // every shard listens: the port is ours, and ready
                ::close(std::exchange(holder, -1));
                if (cfg.json) std::printf("{\"phase\":\"ready\",\"port\":%d,\"shards\":%u,%s}\n", port, r.shards(), cpu_json().c_str());
                else if (!cfg.quiet) std::printf("ksvc-http-server: serving %s on http://%s:%d/ (%u shards)\n", cfg.root.c_str(), cfg.address.c_str(), port, r.shards());
                std::fflush(stdout);
            }
            co_await shard_main(s, sh, l);
        });
        std::uint64_t cpu = 0;
        for (std::uint64_t c : r.cpu_us()) cpu += c;
        const auto u = [](const std::atomic<std::uint64_t>& a) { return static_cast<unsigned long long>(a.load()); };
        if (cfg.json) {
            std::printf("{\"phase\":\"exit\",\"connections\":%llu,\"requests\":%llu,\"2xx\":%llu,\"3xx\":%llu,\"4xx\":%llu,"
                        "\"5xx\":%llu,\"timeouts\":%llu,\"body_bytes\":%llu,\"shard_cpu_us\":%llu,%s}\n",
                        u(t.connections), u(t.requests), u(t.status_2xx), u(t.status_3xx), u(t.status_4xx), u(t.status_5xx),
                        u(t.timeouts), u(t.body_bytes), static_cast<unsigned long long>(cpu), cpu_json().c_str());
        } else if (!cfg.quiet) {
            std::printf("ksvc-http-server: %llu connections, %llu requests (2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu), "
                        "%llu body bytes, %llu header timeouts, %.1f ms CPU in the shards\n",
                        u(t.connections), u(t.requests), u(t.status_2xx), u(t.status_3xx), u(t.status_4xx), u(t.status_5xx),
                        u(t.body_bytes), u(t.timeouts), static_cast<double>(cpu) / 1000.0);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ksvc-http-server: %s\n", e.what());
        status = 1;
    }
    if (holder >= 0) ::close(holder); // a shard failed before all listened
    ::close(root_fd);
    return status;
}
