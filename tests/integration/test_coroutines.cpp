// Coroutines (executor/task.hpp): task<T>, co_await ksvc::async, sync_wait and when_all over
// real pipes, under every ring configuration and the epoll fallback, both dispatch modes —
// where coroutines resume (never on the loop thread, never inside the loop), no heap
// allocation per co_await, exceptions, refused submissions, the frame allocator hook and the
// frame_stack that serves it.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>

#include <ksvc/executor/frame_stack.hpp>
#include <ksvc/executor/op.hpp>
#include <ksvc/executor/stream.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/executor/task.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

// Replacing operator new with malloc is what this is: GCC's check does not know it.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// Heap allocations made while a test counts, on every thread of the process (the loop thread
// and the pool's included: "no allocation per I/O" holds for the whole instance).
namespace {
std::atomic<bool> counting{false};
std::atomic<std::size_t> counted{0};
} // namespace
void* operator new(std::size_t n) {
    if (counting.load(std::memory_order_relaxed)) counted.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    if (counting.load(std::memory_order_relaxed)) counted.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return ::operator new(n, t); }
// Over-aligned allocations too (frame_stack takes its blocks and its spilled frames that way).
void* operator new(std::size_t n, std::align_val_t a) {
    if (counting.load(std::memory_order_relaxed)) counted.fetch_add(1, std::memory_order_relaxed);
    const auto al = static_cast<std::size_t>(a);
    if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    try {
        return ::operator new(n, a);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept { return ::operator new(n, a, t); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace ksvc::test::coroutines {

namespace bdata = boost::unit_test::data;

BOOST_AUTO_TEST_SUITE(coroutines)

struct allocation_count {
    allocation_count() { counted = 0, counting = true; }
    ~allocation_count() { counting = false; }
    std::size_t now() const { return counted.load(); }
};

// 200 round trips through a pipe, each a co_await of a write and of a read, checking every
// byte, the thread each resumption runs on, and that the loop of awaits allocates nothing.
task<std::size_t> round_trips(default_instance& inst, int r, int w, std::thread::id home, std::size_t& allocations,
                              int& wrong_thread) {
    std::size_t bytes = 0;
    std::stop_source never;
    std::unique_ptr<allocation_count> count; // rounds 1..199: after the first, scheduler vectors are warm
    for (int i = 0; i < 200; ++i) {
        if (i == 1) count = std::make_unique<allocation_count>();
        char out[8], in[8] = {};
        std::snprintf(out, sizeof out, "%07d", i);
        const completion_entry wr = co_await async(inst, sys::write(w, out, sizeof out));
        // Never on another thread, and never from inside the loop (inline: the owner's
        // run_once() has returned before the scheduler resumes anyone).
        wrong_thread += std::this_thread::get_id() != home;
        wrong_thread += inst.loop().mode() == dispatch_mode::inline_mode && inst.loop().in_loop();
        if (wr.result != 8) throw std::runtime_error("write: " + std::to_string(wr.result));
        // The read with a stop token (never stopped): registering and withdrawing its stop
        // callback allocates nothing either.
        const completion_entry rd = co_await async(inst, sys::read(r, in, sizeof in), never.get_token());
        wrong_thread += std::this_thread::get_id() != home;
        if (rd.result != 8 || std::memcmp(in, out, 8) != 0) throw std::runtime_error("read: " + std::to_string(rd.result));
        bytes += 8;
    }
    if (count) allocations += count->now();
    co_return bytes;
}

BOOST_DATA_TEST_CASE(pipe_round_trips_resume_on_the_waiting_thread_without_allocating, bdata::make(backend_configs()), c) {
    default_instance inst(options_for(c));
    pipe_pair p;
    std::size_t allocations = 0;
    int wrong_thread = 0;
    const std::size_t bytes =
        sync_wait(inst, round_trips(inst, p.r, p.w, std::this_thread::get_id(), allocations, wrong_thread));
    BOOST_TEST(bytes == 200u * 8u);
    BOOST_TEST(wrong_thread == 0); // threaded: never the loop thread
    BOOST_TEST(allocations == 0u);
}

task<std::string> read_some(default_instance& inst, int fd) {
    char buf[16] = {};
    const completion_entry c = co_await async(inst, sys::read(fd, buf, sizeof buf));
    if (c.result < 0) throw std::system_error(static_cast<int>(-c.result), std::system_category(), "read");
    co_return std::string(buf, static_cast<std::size_t>(c.result));
}
task<void> write_both(default_instance& inst, int a, int b) {
    (void)co_await async(inst, sys::write(a, "first", 5));
    (void)co_await async(inst, sys::write(b, "second", 6));
}

// A scheduler the user drives instead of sync_wait: a thread of its own makes it current, spawns
// two round-trip tasks into a task_scope and runs its loop — run_ready(), then wait() (threaded:
// the loop thread posts) or one run_once() (inline: this thread owns the instance). Every
// resumption is on that thread, never inside the loop, and every byte checked.
task<void> round_trips_into(default_instance& inst, int r, int w, std::thread::id home, std::size_t& bytes,
                            std::size_t& allocations, int& wrong_thread) {
    bytes += co_await round_trips(inst, r, w, home, allocations, wrong_thread);
}

BOOST_DATA_TEST_CASE(a_user_driven_scheduler_runs_tasks_on_its_thread, bdata::make(run_configs()), c) {
    std::size_t bytes = 0, allocations = 0;
    int wrong_thread = 0;
    std::thread user([&] {
        default_instance inst(options_for(c)); // inline: this thread is its owner
        pipe_pair p1, p2;
        scheduler s;
        scheduler::scope current(s);
        task_scope tasks;
        const auto home = std::this_thread::get_id();
        tasks.spawn(round_trips_into(inst, p1.r, p1.w, home, bytes, allocations, wrong_thread));
        tasks.spawn(round_trips_into(inst, p2.r, p2.w, home, bytes, allocations, wrong_thread));
        while (tasks.running() != 0) {
            if (s.run_ready() != 0) continue;
            if (inst.loop().mode() == dispatch_mode::inline_mode) inst.run_once(!s.has_ready(), -1);
            else s.wait();
        }
    });
    user.join();
    BOOST_TEST(bytes == 2u * 200u * 8u);
    BOOST_TEST(wrong_thread == 0);
}

// Both reads wait on empty pipes before the writer runs: they can only finish if when_all runs
// its branches at once rather than one after another.
BOOST_DATA_TEST_CASE(when_all_runs_its_branches_concurrently, bdata::make(backend_configs()), c) {
    default_instance inst(options_for(c));
    pipe_pair p1, p2;
    auto [one, two, none] = sync_wait(inst, when_all(read_some(inst, p1.r), read_some(inst, p2.r), write_both(inst, p1.w, p2.w)));
    BOOST_TEST(one == "first");
    BOOST_TEST(two == "second");
    (void)none;
}

task<int> throws_after_a_read(default_instance& inst, int fd) {
    char b;
    (void)co_await async(inst, sys::read(fd, &b, 1));
    throw std::runtime_error("thrown in a task");
}
task<int> nested(default_instance& inst, int fd) { co_return co_await throws_after_a_read(inst, fd) + 1; }

BOOST_DATA_TEST_CASE(exceptions_propagate_through_tasks_when_all_and_sync_wait, bdata::make(run_configs()), c) {
    default_instance inst(options_for(c));
    pipe_pair p, q;
    BOOST_REQUIRE(::write(p.w, "xy", 2) == 2);
    BOOST_CHECK_EXCEPTION(sync_wait(inst, nested(inst, p.r)), std::runtime_error,
                          [](const std::runtime_error& e) { return std::string(e.what()) == "thrown in a task"; });
    // when_all rethrows, but only after the branch still waiting has finished.
    bool other_finished = false;
    auto other = [&](int fd) -> task<int> {
        char b;
        const completion_entry r = co_await async(inst, sys::read(fd, &b, 1));
        other_finished = true;
        co_return static_cast<int>(r.result);
    };
    auto feeder = [&]() -> task<void> { (void)co_await async(inst, sys::write(q.w, "z", 1)); };
    BOOST_CHECK_THROW(sync_wait(inst, when_all(throws_after_a_read(inst, p.r), other(q.r), feeder())), std::runtime_error);
    BOOST_TEST(other_finished);
}

BOOST_DATA_TEST_CASE(refused_submissions_and_awaits_outside_a_scheduler_throw, bdata::make(run_configs()), c) {
    default_instance inst(options_for(c));
    loopback_listener l;
    // A stream cannot be one awaited completion.
    auto stream = [&]() -> task<void> { (void)co_await async(inst, op::accept_multishot(l.fd, 0)); };
    BOOST_CHECK_EXCEPTION(sync_wait(inst, stream()), std::system_error,
                          [](const std::system_error& e) { return e.code() == errc::multishot_call; });
    // No scheduler on this thread: the co_await throws std::logic_error into the task.
    auto lone = [&]() -> task<void> { (void)co_await async(inst, sys::getpid()); };
    detail::coro::outcome<void> out;
    bool done = false;
    detail::coro::run_into(lone(), out, [&] { done = true; });
    BOOST_TEST(done);
    BOOST_CHECK_THROW(std::rethrow_exception(out.error), std::logic_error);
}

// An inline instance whose ring is bound to its first driver (single issuer) cannot be driven
// from another thread: sync_wait there says so instead of spinning.
// More awaits at once than the submit lane holds (ring4: 8 entries): a full lane is waited out,
// never thrown — every one of 64 concurrent writes completes.
BOOST_DATA_TEST_CASE(a_full_submit_lane_is_waited_out_not_thrown, bdata::make(run_configs()), c) {
    default_instance inst(options_for(c));
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    int written = 0;
    sync_wait(inst, [&]() -> task<void> {
        task_scope all;
        for (int i = 0; i < 64; ++i)
            all.spawn([](default_instance& in, int fd, int& n) -> task<void> {
                const char b = 'x';
                const completion_entry w = co_await async(in, sys::write(fd, &b, 1));
                n += w.result == 1;
            }(inst, null, written));
        co_await all.join();
    }());
    ::close(null);
    BOOST_TEST(written == 64);
}

BOOST_AUTO_TEST_CASE(sync_wait_off_the_owner_of_a_bound_ring_throws) {
    instance_options o;
    o.mode = dispatch_mode::inline_mode;
    instance<probe_router, owner_thread_io_uring, fixed_pool, eventfd_notifier, heap_buffers> inst(o);
    inst.run_once(); // this thread drives it now, for good
    auto pid = [&]() -> task<std::int64_t> { co_return (co_await async(inst, sys::getpid())).result; };
    bool refused = false;
    std::thread other([&] {
        try {
            (void)sync_wait(inst, pid());
        } catch (const std::logic_error&) {
            refused = true;
        }
    });
    other.join();
    BOOST_TEST(refused);
    BOOST_TEST(sync_wait(inst, pid()) == ::getpid()); // the owner still can
}

// The allocator hook: a task whose parameters start with (std::allocator_arg, alloc) gets its
// frame from that allocator and gives it back there.
struct frame_counts {
    std::size_t allocated = 0, freed = 0, bytes = 0;
};
template <class T>
struct counting_allocator {
    using value_type = T;
    frame_counts* counts;
    explicit counting_allocator(frame_counts* c) noexcept : counts(c) {}
    template <class U>
    counting_allocator(const counting_allocator<U>& o) noexcept : counts(o.counts) {}
    T* allocate(std::size_t n) {
        ++counts->allocated;
        counts->bytes += n * sizeof(T);
        return std::allocator<T>().allocate(n);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        ++counts->freed;
        std::allocator<T>().deallocate(p, n);
    }
};

task<std::int64_t> pid_with_allocator(std::allocator_arg_t, counting_allocator<std::byte>, default_instance& inst) {
    co_return (co_await async(inst, sys::getpid())).result;
}

BOOST_AUTO_TEST_CASE(a_frame_comes_from_the_allocator_passed_to_the_task) {
    instance_options o;
    o.mode = dispatch_mode::inline_mode;
    default_instance inst(o);
    frame_counts counts;
    {
        task<std::int64_t> t = pid_with_allocator(std::allocator_arg, counting_allocator<std::byte>(&counts), inst);
        BOOST_TEST(counts.allocated == 1u);
        BOOST_TEST(counts.bytes > 0u);
        BOOST_TEST(sync_wait(inst, std::move(t)) == ::getpid());
    }
    BOOST_TEST(counts.freed == 1u);
    // A task that never ran is freed the same way.
    { task<std::int64_t> never = pid_with_allocator(std::allocator_arg, counting_allocator<std::byte>(&counts), inst); }
    BOOST_TEST(counts.allocated == 2u);
    BOOST_TEST(counts.freed == 2u);
}

// frame_stack: a request-shaped chain — handler, helper, innermost await, each a frame of the
// stack — 100 times over a pipe. Once the block is taken (the first chain) nothing comes from
// the heap, no frame spills, and the stack is empty between chains and at the end.
task<std::size_t> innermost(std::allocator_arg_t, frame_allocator, default_instance& inst, int r, int w, int i) {
    char out[8], in[8] = {};
    std::snprintf(out, sizeof out, "%07d", i);
    if ((co_await async(inst, sys::write(w, out, sizeof out))).result != 8) throw std::runtime_error("write");
    if ((co_await async(inst, sys::read(r, in, sizeof in))).result != 8) throw std::runtime_error("read");
    if (i < 0) throw std::runtime_error("thrown three frames down"); // after both awaits
    co_return std::memcmp(in, out, 8) == 0 ? 8u : 0u;
}
task<std::size_t> helper(std::allocator_arg_t, frame_allocator a, default_instance& inst, int r, int w, int i) {
    co_return co_await innermost(std::allocator_arg, a, inst, r, w, i);
}
task<std::size_t> handler(std::allocator_arg_t, frame_allocator a, default_instance& inst, int r, int w, int i) {
    std::size_t n = co_await helper(std::allocator_arg, a, inst, r, w, i);
    n += co_await innermost(std::allocator_arg, a, inst, r, w, i); // a second child after the first is gone
    co_return n;
}
task<std::size_t> chains(default_instance& inst, frame_stack& stack, int r, int w, std::size_t& allocations, std::size_t& left_in_use) {
    std::size_t bytes = 0;
    std::unique_ptr<allocation_count> count; // chains 1..99
    for (int i = 0; i < 100; ++i) {
        if (i == 1) count = std::make_unique<allocation_count>();
        bytes += co_await handler(std::allocator_arg, stack.allocator(), inst, r, w, i);
        left_in_use += stack.in_use();
    }
    if (count) allocations += count->now();
    count.reset();
    // An exception thrown three frames down reaches the awaiter; every frame is given back.
    try {
        (void)co_await handler(std::allocator_arg, stack.allocator(), inst, r, w, -1);
        bytes = 0;
    } catch (const std::runtime_error& e) {
        if (std::string(e.what()) != "thrown three frames down") bytes = 0;
    }
    left_in_use += stack.in_use();
    co_return bytes;
}

BOOST_DATA_TEST_CASE(a_frame_stack_serves_nested_frames_without_the_heap, bdata::make(run_configs()), c) {
    default_instance inst(options_for(c));
    pipe_pair p;
    frame_stack stack(2048);
    std::size_t allocations = 0, left_in_use = 0;
    BOOST_TEST(sync_wait(inst, chains(inst, stack, p.r, p.w, allocations, left_in_use)) == 100u * 16u);
    BOOST_TEST(allocations == 0u);
    BOOST_TEST(left_in_use == 0u);
    BOOST_TEST(stack.heap_frames() == 0u);
}

// Frames freed out of stack order: two branches of when_all from one stack, the first one made
// finishing first or last; a frame larger than the block comes from the heap. The stack ends
// empty either way, and under ASan a popped frame is poisoned (a use after free is reported).
task<std::string> read_into_frame(std::allocator_arg_t, frame_allocator, default_instance& inst, int fd) {
    char buf[16] = {};
    const completion_entry c = co_await async(inst, sys::read(fd, buf, sizeof buf));
    co_return std::string(buf, c.result > 0 ? static_cast<std::size_t>(c.result) : 0u);
}
task<void> write_in_order(default_instance& inst, int x, int y) {
    (void)co_await async(inst, sys::write(x, "1", 1));
    (void)co_await async(inst, sys::write(y, "2", 1));
}
task<std::size_t> big_frame(std::allocator_arg_t, frame_allocator, default_instance& inst) {
    std::array<char, 16384> room{}; // lives across the await: in the frame, larger than the block
    room[0] = static_cast<char>((co_await async(inst, sys::getpid())).result > 0);
    co_return room.size() + static_cast<std::size_t>(room[0]);
}
BOOST_DATA_TEST_CASE(a_frame_stack_takes_frames_freed_out_of_order_and_spills_big_ones, bdata::make(run_configs()), c) {
    default_instance inst(options_for(c));
    frame_stack stack(8192);
    for (bool first_made_finishes_first : {true, false}) {
        pipe_pair p1, p2;
        task<std::string> first = read_into_frame(std::allocator_arg, stack.allocator(), inst, p1.r); // lower in the block
        task<std::string> second = read_into_frame(std::allocator_arg, stack.allocator(), inst, p2.r);
        const int x = first_made_finishes_first ? p1.w.fd : p2.w.fd, y = first_made_finishes_first ? p2.w.fd : p1.w.fd;
        auto [a, b, none] = sync_wait(inst, when_all(std::move(first), std::move(second), write_in_order(inst, x, y)));
        BOOST_TEST(a == (first_made_finishes_first ? "1" : "2"));
        BOOST_TEST(b == (first_made_finishes_first ? "2" : "1"));
        (void)none;
        BOOST_TEST(stack.in_use() == 0u);
    }
    BOOST_TEST(stack.heap_frames() == 0u);
    BOOST_TEST(sync_wait(inst, big_frame(std::allocator_arg, stack.allocator(), inst)) == 16385u);
    BOOST_TEST(stack.heap_frames() == 1u);
    BOOST_TEST(stack.in_use() == 0u);
}

// The bookkeeping frame by frame, through the allocator the hook uses.
BOOST_AUTO_TEST_CASE(a_frame_stack_reclaims_out_of_order_frees_and_spills_what_does_not_fit) {
    frame_stack stack(1024);
    frame_allocator al = stack.allocator();
    // y freed under z is reclaimed when z goes.
    std::byte* x = al.allocate(100);
    const std::size_t after_x = stack.in_use();
    std::byte* y = al.allocate(200);
    std::byte* z = al.allocate(50);
    al.deallocate(y, 200);
    BOOST_TEST(stack.in_use() > after_x); // y is under z: not yet
    al.deallocate(z, 50);
    BOOST_TEST(stack.in_use() == after_x); // z and y together
    // A spill in the middle of a chain: the block's frames and the heap's, freed in either order.
    std::byte* near_full = al.allocate(stack.capacity() - stack.in_use() - 2 * frame_stack::alignment);
    std::byte* spilled = al.allocate(200);
    BOOST_TEST(stack.heap_frames() == 1u);
    std::memset(spilled, 0x5a, 200);
    al.deallocate(near_full, stack.capacity() - after_x - 2 * frame_stack::alignment); // under a live heap frame
    BOOST_TEST(stack.in_use() == after_x);
    al.deallocate(spilled, 200);
    al.deallocate(x, 100);
    BOOST_TEST(stack.in_use() == 0u);
    // A first frame larger than the block: the block is never taken, the frame comes from the heap.
    std::byte* huge = al.allocate(4096);
    BOOST_TEST(stack.heap_frames() == 2u);
    BOOST_TEST(stack.in_use() == 0u);
    al.deallocate(huge, 4096);
    // A stack of no bytes: every frame from the heap, nothing kept.
    frame_stack none(0);
    frame_allocator an = none.allocator();
    std::byte* f = an.allocate(64);
    BOOST_TEST(none.heap_frames() == 1u);
    an.deallocate(f, 64);
    BOOST_TEST(none.in_use() == 0u);
}

// A recv stream yields 200 messages through next() — a coroutine per call, a lease per message,
// an echo send each — and allocates nothing for any of them once warm (its next() frames reuse
// one block), in inline and threaded mode.
template <class I>
task<std::size_t> stream_round_trips(I& inst, int client, int server, std::size_t& allocations) {
    recv_stream<I> in(inst, server);
    std::size_t ok = 0;
    std::unique_ptr<allocation_count> count; // items 2..199
    for (int i = 0; i < 200; ++i) {
        if (i == 2) count = std::make_unique<allocation_count>();
        char out[8];
        std::snprintf(out, sizeof out, "%07d", i);
        if (::send(client, out, sizeof out, 0) != 8) break;
        auto lease = co_await in.next();
        if (!lease) break;
        const auto d = lease->data();
        ok += d.size() == 8 && std::memcmp(d.data(), out, 8) == 0;
    }
    if (count) allocations += count->now();
    co_return ok;
}
using threaded_streams = instance<probe_router, basic_io_uring_or_epoll, fixed_pool, eventfd_notifier, provided_buffer_ring>;
BOOST_AUTO_TEST_CASE(a_recv_stream_allocates_nothing_per_item) {
    {
        server_instance inst;
        auto [c, s] = tcp_pair();
        std::size_t allocations = 0;
        BOOST_TEST(sync_wait(inst, stream_round_trips(inst, c.fd, s.fd, allocations)) == 200u);
        BOOST_TEST(allocations == 0u);
    }
    {
        threaded_streams inst;
        auto [c, s] = tcp_pair();
        std::size_t allocations = 0;
        BOOST_TEST(sync_wait(inst, stream_round_trips(inst, c.fd, s.fd, allocations)) == 200u);
        BOOST_TEST(allocations == 0u);
    }
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::coroutines
