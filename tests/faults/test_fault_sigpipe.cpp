// Faults: EPIPE through every tier that can write — Tier 1 (io_uring WRITE/SEND), Tier 2 (the
// same calls forced onto the worker pool by a snapshot without the opcode) — in threaded and
// inline mode, to a pipe whose reader is gone and to TCP sockets that cannot send any more.
//
// SIGPIPE keeps its default disposition throughout (this file never installs SIG_IGN and checks
// that nobody did): if ksvc let the signal reach a thread that does not block it, the kernel would
// kill this test process. Every case runs on a fresh thread with SIGPIPE unblocked, which also
// creates the instance, so ksvc's own threads start with SIGPIPE unblocked as well and must
// block it themselves. Afterwards no SIGPIPE may be left pending on the calling thread, on the
// process, or on any of ksvc's threads.
#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::faults_sigpipe {

namespace nr = ksvc::syscalls::native;

//! Failures collected off the Boost.Test thread, reported after join.
struct report {
    std::vector<std::string> failures;
    std::vector<std::string> notes;
    void expect(bool ok, const std::string& what) {
        if (!ok) failures.push_back(what);
    }
};

inline bool sigpipe_pending_here() {
    sigset_t p;
    sigemptyset(&p);
    ::sigpending(&p); // thread-directed and process-directed
    return sigismember(&p, SIGPIPE) == 1;
}

inline bool sigpipe_blocked_here() {
    sigset_t m;
    ::pthread_sigmask(SIG_SETMASK, nullptr, &m);
    return sigismember(&m, SIGPIPE) == 1;
}

inline bool sigpipe_is_default() {
    struct sigaction sa {};
    ::sigaction(SIGPIPE, nullptr, &sa);
    return sa.sa_handler == SIG_DFL && !(sa.sa_flags & SA_SIGINFO);
}

//! Threads of this process with SIGPIPE pending (SigPnd of /proc/self/task/*/status), by name.
inline std::vector<std::string> threads_with_sigpipe_pending() {
    std::vector<std::string> out;
    DIR* d = ::opendir("/proc/self/task");
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        const std::string base = std::string("/proc/self/task/") + e->d_name;
        std::ifstream status(base + "/status");
        std::string line, name;
        unsigned long long pending = 0;
        while (std::getline(status, line)) {
            if (line.rfind("Name:", 0) == 0) name = line.substr(6);
            if (line.rfind("SigPnd:", 0) == 0) pending = std::stoull(line.substr(7), nullptr, 16);
        }
        if (pending & (1ull << (SIGPIPE - 1))) out.push_back(name + " (" + e->d_name + ")");
    }
    ::closedir(d);
    return out;
}

//! Runs `f` on a new thread with SIGPIPE unblocked and default, then reports its findings.
template <class F>
void on_fresh_thread(const char* what, F f) {
    BOOST_REQUIRE_MESSAGE(sigpipe_is_default(), "SIGPIPE must have its default disposition for this test");
    report r;
    std::thread t([&] {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        ::pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
        f(r);
        r.expect(!sigpipe_pending_here(), "SIGPIPE left pending on the calling thread or the process");
    });
    t.join();
    BOOST_TEST_CONTEXT(what) {
        for (const auto& n : r.notes) BOOST_TEST_MESSAGE(what << ": " << n);
        for (const auto& f2 : r.failures) BOOST_ERROR(f2);
    }
    BOOST_TEST(sigpipe_is_default());
    BOOST_TEST(!sigpipe_pending_here());
}

//! Drives one call to completion: call() in both modes, or submit() + poll when `queued`.
inline completion_entry run(default_instance& inst, const submit_entry& in, bool queued) {
    if (!queued) return inst.call(in);
    submit_entry e = in;
    e.corr_id = 4242;
    if (inst.submit(e)) return make_framework_completion(e, errc::ring_full);
    completion_entry out[4];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        std::size_t n = inst.wait_completions(out, 10);
        for (std::size_t i = 0; i < n; ++i)
            if (out[i].corr_id == e.corr_id) return out[i];
    }
    return make_framework_completion(e, errc::shut_down);
}

struct variant {
    const char* name;
    dispatch_mode mode;
    bool force_workers; // capabilities without WRITE/SEND/WRITEV: the calls go to Tier 2
    bool queued;        // submit() instead of call()
    bool epoll = false; // io_uring refused: default_instance serves through the epoll backend
};

const variant variants[] = {
    {"threaded/tier1/call", dispatch_mode::threaded, false, false},
    {"threaded/tier1/submit", dispatch_mode::threaded, false, true},
    {"threaded/tier2/call", dispatch_mode::threaded, true, false},
    {"threaded/tier2/submit", dispatch_mode::threaded, true, true},
    {"inline/tier1/call", dispatch_mode::inline_mode, false, false},
    {"inline/tier1/submit", dispatch_mode::inline_mode, false, true},
    {"inline/tier2/call", dispatch_mode::inline_mode, true, false},
    {"inline/tier2/submit", dispatch_mode::inline_mode, true, true},
    {"threaded/epoll/call", dispatch_mode::threaded, false, false, true},
    {"threaded/epoll/submit", dispatch_mode::threaded, false, true, true},
    {"inline/epoll/call", dispatch_mode::inline_mode, false, false, true},
    {"inline/epoll/submit", dispatch_mode::inline_mode, false, true, true},
};

inline capabilities caps_for(const variant& v) {
    if (v.epoll) return io_uring_refused_caps();
    capabilities caps = current_capabilities();
    if (v.force_workers) {
        caps.opcodes.reset(static_cast<std::size_t>(opcode::write));
        caps.opcodes.reset(static_cast<std::size_t>(opcode::writev));
        caps.opcodes.reset(static_cast<std::size_t>(opcode::send));
        caps.opcodes.reset(static_cast<std::size_t>(opcode::sendmsg));
    }
    return caps;
}

inline std::string describe(const completion_entry& c) {
    std::ostringstream os;
    os << c;
    return os.str();
}

//! Checks the route of `e` is what the variant wants.
inline void expect_route(report& r, default_instance& inst, const variant& v, const submit_entry& e) {
    const tier t = inst.router().route(e.nr).tier;
    const tier want = v.force_workers ? tier::worker_pool : tier::io_uring;
    r.expect(t == want, std::string(syscalls::name_of(e.nr)) + " routed to " + std::string(to_string(t)) +
                            ", expected " + std::string(to_string(want)));
}

inline void expect_ksvc_threads_clean(report& r) {
    for (const auto& t : threads_with_sigpipe_pending()) {
        // An io_uring worker (iou-wrk-*) is a kernel-owned thread of ours that blocks every
        // signal; a SIGPIPE stuck there is harmless and invisible to user space. Any other
        // thread (the loop, the pool, the caller) must be clean.
        if (t.rfind("iou-", 0) == 0) r.notes.push_back("SIGPIPE pending on io_uring worker " + t);
        else r.failures.push_back("SIGPIPE left pending on thread " + t);
    }
}

} // namespace ksvc::test::faults_sigpipe

namespace ksvc::test::faults_sigpipe {

BOOST_AUTO_TEST_SUITE(faults_sigpipe)

BOOST_AUTO_TEST_CASE(disposition_is_default) {
    // Nothing in the test process (Boost.Test included) ignores SIGPIPE.
    BOOST_TEST(sigpipe_is_default());
}

BOOST_AUTO_TEST_CASE(pipe_without_reader) {
    for (const auto& v : variants) {
        on_fresh_thread(v.name, [&](report& r) {
            const capabilities caps = caps_for(v);
            instance_options o;
            o.mode = v.mode;
            o.caps = &caps;
            if (v.epoll) o.ring.log = &quiet_log;
            default_instance inst(o);
            r.expect(v.mode == dispatch_mode::inline_mode || !sigpipe_blocked_here(),
                     "a threaded instance changed the caller's signal mask");
            int p[2];
            if (::pipe2(p, O_CLOEXEC) != 0) return r.expect(false, "pipe2");
            ::close(p[0]); // no reader
            const char msg[] = "lost";
            for (int round = 0; round < 3; ++round) {
                const submit_entry e = sys::write(p[1], msg, sizeof msg);
                expect_route(r, inst, v, e);
                const completion_entry c = run(inst, e, v.queued);
                r.expect(c.result == -EPIPE, "write to a pipe without reader: " + describe(c));
                r.expect(!(c.flags & completion_flags::ksvc_error), "framework error " + describe(c));
                iovec iov{const_cast<char*>(msg), sizeof msg};
                const completion_entry cv = run(inst, sys::writev(p[1], &iov, 1), v.queued);
                r.expect(cv.result == -EPIPE, "writev to a pipe without reader: " + describe(cv));
            }
            expect_ksvc_threads_clean(r);
            // The instance still works.
            const completion_entry ok = inst.call(sys::getpid());
            r.expect(ok.result == ::getpid(), "getpid after EPIPE: " + describe(ok));
            ::close(p[1]);
        });
    }
}

BOOST_AUTO_TEST_CASE(tcp_peer_closed) {
    for (const auto& v : variants) {
        on_fresh_thread(v.name, [&](report& r) {
            const capabilities caps = caps_for(v);
            instance_options o;
            o.mode = v.mode;
            o.caps = &caps;
            if (v.epoll) o.ring.log = &quiet_log;
            default_instance inst(o);
            auto [client, server] = tcp_pair();
            server.reset(); // the peer is gone: the first write draws an RST, later ones EPIPE
            char buf[4096] = {};
            bool saw_epipe = false;
            for (int i = 0; i < 200 && !saw_epipe; ++i) {
                const submit_entry e = (i % 2) ? sys::write(client, buf, sizeof buf) : sys::sendto(client, buf, sizeof buf, 0);
                expect_route(r, inst, v, e);
                const completion_entry c = run(inst, e, v.queued);
                if (c.result == -EPIPE) saw_epipe = true;
                else if (c.result == -ECONNRESET || c.result > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
                else r.expect(false, "unexpected result " + describe(c));
            }
            r.expect(saw_epipe, "never got EPIPE from a socket whose peer closed");
            // Once broken, both write (IORING_OP_WRITE: no MSG_NOSIGNAL) and sendto give EPIPE.
            const completion_entry w = run(inst, sys::write(client, buf, 1), v.queued);
            r.expect(w.result == -EPIPE, "write after EPIPE: " + describe(w));
            const completion_entry s = run(inst, sys::sendto(client, buf, 1, 0), v.queued);
            r.expect(s.result == -EPIPE, "sendto after EPIPE: " + describe(s));
            expect_ksvc_threads_clean(r);
        });
    }
}

BOOST_AUTO_TEST_CASE(tcp_after_local_shutdown) {
    for (const auto& v : variants) {
        on_fresh_thread(v.name, [&](report& r) {
            const capabilities caps = caps_for(v);
            instance_options o;
            o.mode = v.mode;
            o.caps = &caps;
            if (v.epoll) o.ring.log = &quiet_log;
            default_instance inst(o);
            auto [client, server] = tcp_pair();
            if (::shutdown(client, SHUT_WR) != 0) return r.expect(false, "shutdown");
            // The direct call with MSG_NOSIGNAL shows what the kernel says: EPIPE.
            char buf[16] = {};
            r.expect(::send(client, buf, sizeof buf, MSG_NOSIGNAL) == -1 && errno == EPIPE, "direct send is not EPIPE");
            const completion_entry w = run(inst, sys::write(client, buf, sizeof buf), v.queued);
            r.expect(w.result == -EPIPE, "write after shutdown(SHUT_WR): " + describe(w));
            const completion_entry s = run(inst, sys::sendto(client, buf, sizeof buf, 0), v.queued);
            r.expect(s.result == -EPIPE, "sendto after shutdown(SHUT_WR): " + describe(s));
            msghdr mh{};
            iovec iov{buf, sizeof buf};
            mh.msg_iov = &iov;
            mh.msg_iovlen = 1;
            const completion_entry m = run(inst, sys::sendmsg(client, &mh, 0), v.queued);
            r.expect(m.result == -EPIPE, "sendmsg after shutdown(SHUT_WR): " + describe(m));
            expect_ksvc_threads_clean(r);
        });
    }
}

BOOST_AUTO_TEST_CASE(many_epipes_in_one_batch) {
    // A batch of failing writes: one SIGPIPE per write is raised and consumed; none survives.
    for (auto mode : {dispatch_mode::threaded, dispatch_mode::inline_mode}) {
        on_fresh_thread(mode == dispatch_mode::threaded ? "threaded" : "inline", [&](report& r) {
            instance_options o;
            o.mode = mode;
            default_instance inst(o);
            int p[2];
            if (::pipe2(p, O_CLOEXEC) != 0) return r.expect(false, "pipe2");
            ::close(p[0]);
            const char b = 'x';
            constexpr std::uint64_t count = 200;
            std::uint64_t next = 1, done = 0;
            completion_entry out[32];
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            while (done < count && std::chrono::steady_clock::now() < deadline) {
                while (next <= count) {
                    submit_entry e = (next % 3 == 0) ? sys::make(nr::sendto, p[1], &b, 1, 0, nullptr, 0)
                                                     : sys::write(p[1], &b, 1);
                    e.corr_id = next;
                    if (inst.submit(e)) break;
                    ++next;
                }
                std::size_t n = inst.wait_completions(out, 10);
                for (std::size_t i = 0; i < n; ++i) {
                    // sendto on a pipe is ENOTSOCK; the writes are EPIPE.
                    const bool is_send = out[i].corr_id % 3 == 0;
                    r.expect(out[i].result == (is_send ? -ENOTSOCK : -EPIPE), describe(out[i]));
                }
                done += n;
            }
            r.expect(done == count, "completions: " + std::to_string(done));
            expect_ksvc_threads_clean(r);
            ::close(p[1]);
        });
    }
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::faults_sigpipe
