#include <ksvc/module/backends/io_uring_backend.hpp>
#include <ksvc/module/process.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <system_error>
#include <cstring>
#include <mutex>
#include <new>
#include <optional>
#include <type_traits>
#include <string>
#include <vector>

#include <linux/futex.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ksvc/module/capabilities.hpp>
#include <ksvc/module/routers/route_table.hpp>

namespace ksvc {

std::string_view to_string(feature_id f) noexcept {
    switch (f) {
    case feature_id::sqpoll: return "sqpoll";
    case feature_id::coop_taskrun: return "coop_taskrun";
    case feature_id::taskrun_flag: return "taskrun_flag";
    case feature_id::single_issuer: return "single_issuer";
    case feature_id::defer_taskrun: return "defer_taskrun";
    case feature_id::registered_ring_fd: return "registered_ring_fd";
    case feature_id::submit_all: return "submit_all";
    case feature_id::cq_entries: return "cq_entries";
    case feature_id::iowq_max_workers: return "iowq_max_workers";
    case feature_id::fixed_files: return "fixed_files";
    case feature_id::restricted: return "restricted";
    case feature_id::count: break;
    }
    return "?";
}

void log_to_stderr(std::string_view line) noexcept {
    std::fprintf(stderr, "ksvc: %.*s\n", static_cast<int>(line.size()), line.data());
}

namespace detail {
namespace {

// liburing 2.3's shared library does not export io_uring_enable_rings (it is declared in the
// header): register directly.
int enable_rings(int ring_fd) noexcept {
    const long r = ::syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
    return r < 0 ? -errno : 0;
}

} // namespace

int map_ring(int fd, const io_uring_params& p, io_uring& ring) noexcept {
    std::memset(&ring, 0, sizeof ring);
    io_uring_sq& sq = ring.sq;
    io_uring_cq& cq = ring.cq;
    const std::size_t cqe_size = (p.flags & IORING_SETUP_CQE32) ? 32 : sizeof(io_uring_cqe);
    const std::size_t sqe_size = (p.flags & IORING_SETUP_SQE128) ? 128 : sizeof(io_uring_sqe);
    // IORING_SETUP_NO_SQARRAY (6.6, newer than liburing 2.3; a user may pass it in
    // io_uring_options::setup_flags): no SQ array, the SQ head and tail index the SQEs directly.
    constexpr unsigned setup_no_sqarray = 1u << 16;
    const bool sq_array = !(p.flags & setup_no_sqarray);
    sq.ring_sz = sq_array ? p.sq_off.array + p.sq_entries * sizeof(unsigned) : p.cq_off.cqes;
    cq.ring_sz = p.cq_off.cqes + p.cq_entries * cqe_size;
    const bool single = p.features & IORING_FEAT_SINGLE_MMAP;
    if (single) sq.ring_sz = cq.ring_sz = std::max(sq.ring_sz, cq.ring_sz);
    void* sq_ring = ::mmap(nullptr, sq.ring_sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_SQ_RING);
    if (sq_ring == MAP_FAILED) return -errno;
    void* cq_ring = sq_ring;
    if (!single) {
        cq_ring = ::mmap(nullptr, cq.ring_sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_CQ_RING);
        if (cq_ring == MAP_FAILED) {
            const int err = errno;
            ::munmap(sq_ring, sq.ring_sz);
            return -err;
        }
    }
    void* sqes = ::mmap(nullptr, p.sq_entries * sqe_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) {
        const int err = errno;
        ::munmap(sq_ring, sq.ring_sz);
        if (!single) ::munmap(cq_ring, cq.ring_sz);
        return -err;
    }
    // A field of a mapped ring at the offset the kernel gave for it.
    const auto field = [](void* base, std::uint32_t offset) {
        return reinterpret_cast<unsigned*>(static_cast<char*>(base) + offset);
    };
    sq.ring_ptr = sq_ring;
    sq.khead = field(sq_ring, p.sq_off.head);
    sq.ktail = field(sq_ring, p.sq_off.tail);
    sq.kring_mask = field(sq_ring, p.sq_off.ring_mask);
    sq.kring_entries = field(sq_ring, p.sq_off.ring_entries);
    sq.kflags = field(sq_ring, p.sq_off.flags);
    sq.kdropped = field(sq_ring, p.sq_off.dropped);
    sq.array = sq_array ? field(sq_ring, p.sq_off.array) : nullptr;
    sq.sqes = static_cast<io_uring_sqe*>(sqes);
    sq.ring_mask = *sq.kring_mask;
    sq.ring_entries = *sq.kring_entries;
    // SQ slot i holds SQE i for good: liburing (since 2.2) fills the array once here and its
    // submit path no longer writes it.
    if (sq_array)
        for (unsigned i = 0; i < sq.ring_entries; ++i) sq.array[i] = i;
    cq.ring_ptr = cq_ring;
    cq.khead = field(cq_ring, p.cq_off.head);
    cq.ktail = field(cq_ring, p.cq_off.tail);
    cq.kring_mask = field(cq_ring, p.cq_off.ring_mask);
    cq.kring_entries = field(cq_ring, p.cq_off.ring_entries);
    cq.koverflow = field(cq_ring, p.cq_off.overflow);
    cq.cqes = reinterpret_cast<io_uring_cqe*>(field(cq_ring, p.cq_off.cqes));
    if (p.cq_off.flags) cq.kflags = field(cq_ring, p.cq_off.flags);
    cq.ring_mask = *cq.kring_mask;
    cq.ring_entries = *cq.kring_entries;
    ring.flags = p.flags;
    ring.ring_fd = ring.enter_ring_fd = fd;
    ring.features = p.features;
    return 0;
}

int setup_ring(unsigned entries, io_uring_params& p, io_uring& ring) noexcept {
    const long fd = ::syscall(__NR_io_uring_setup, entries, &p);
    if (fd < 0) return -errno;
    const int r = map_ring(static_cast<int>(fd), p, ring);
    if (r < 0) ::close(static_cast<int>(fd));
    return r;
}

restriction_set ksvc_restrictions(const capabilities& caps) noexcept {
    restriction_set s;
    // Every opcode a route or an operation can translate to…
    for (std::uint32_t n = 0; n < routing::x86_64_classes.size(); ++n)
        if (const opcode op = routing::x86_64_classes[n].op; op != opcode::none) s.sqe_ops.set(static_cast<std::size_t>(op));
    for (const operation_info& o : operation_table)
        if (o.code != opcode::none) s.sqe_ops.set(static_cast<std::size_t>(o.code));
    // …and what the engine adds itself: the doorbell (poll or futex wait), cancellation, link
    // timeouts and timed waits, legacy provided buffers, direct-descriptor housekeeping.
    for (opcode op : {opcode::nop, opcode::poll_add, opcode::poll_remove, opcode::async_cancel, opcode::link_timeout,
                      opcode::timeout, opcode::timeout_remove, opcode::futex_wait, opcode::futex_wake,
                      opcode::provide_buffers, opcode::remove_buffers, opcode::close, opcode::files_update, opcode::msg_ring})
        s.sqe_ops.set(static_cast<std::size_t>(op));
    // The kernel refuses the whole set (EINVAL) if it names an opcode past its own last one.
    for (std::size_t i = 0; i < s.sqe_ops.size(); ++i)
        if (s.sqe_ops.test(i) && !caps.has(static_cast<opcode>(i))) s.sqe_ops.reset(i);
    s.sqe_flags = IOSQE_FIXED_FILE | IOSQE_IO_DRAIN | IOSQE_IO_LINK | IOSQE_IO_HARDLINK | IOSQE_ASYNC |
                  IOSQE_BUFFER_SELECT | IOSQE_CQE_SKIP_SUCCESS;
    // Registrations made after the ring is enabled: resources, the file table, the ring fd,
    // io-wq limits, and their teardown.
    // (each with the kernel that introduced it: a register op past the kernel's last is EINVAL too)
    struct reg {
        unsigned op;
        kernel_version since;
    };
    for (const reg r : {reg{IORING_REGISTER_BUFFERS, {5, 1}}, reg{IORING_UNREGISTER_BUFFERS, {5, 1}},
                        reg{IORING_REGISTER_FILES, {5, 1}}, reg{IORING_UNREGISTER_FILES, {5, 1}},
                        reg{IORING_REGISTER_FILES_UPDATE, {5, 5}}, reg{IORING_REGISTER_PROBE, {5, 6}},
                        reg{IORING_REGISTER_FILES2, {5, 13}}, reg{IORING_REGISTER_FILES_UPDATE2, {5, 13}},
                        reg{IORING_REGISTER_BUFFERS2, {5, 13}}, reg{IORING_REGISTER_BUFFERS_UPDATE, {5, 13}},
                        reg{IORING_REGISTER_IOWQ_MAX_WORKERS, {5, 15}}, reg{IORING_REGISTER_RING_FDS, {5, 18}},
                        reg{IORING_UNREGISTER_RING_FDS, {5, 18}}, reg{IORING_REGISTER_PBUF_RING, {5, 19}},
                        reg{IORING_UNREGISTER_PBUF_RING, {5, 19}}})
        if (caps.version >= r.since) s.register_ops.set(r.op);
    return s;
}

int register_restrictions(int ring_fd, const restriction_set& set) noexcept {
    std::vector<io_uring_restriction> rs;
    try {
        rs.reserve(set.sqe_ops.count() + set.register_ops.count() + 1);
    } catch (...) {
        return -ENOMEM;
    }
    for (std::size_t i = 0; i < set.sqe_ops.size(); ++i)
        if (set.sqe_ops.test(i)) {
            io_uring_restriction r{};
            r.opcode = IORING_RESTRICTION_SQE_OP;
            r.sqe_op = static_cast<std::uint8_t>(i);
            rs.push_back(r);
        }
    for (std::size_t i = 0; i < set.register_ops.size(); ++i)
        if (set.register_ops.test(i)) {
            io_uring_restriction r{};
            r.opcode = IORING_RESTRICTION_REGISTER_OP;
            r.register_op = static_cast<std::uint8_t>(i);
            rs.push_back(r);
        }
    io_uring_restriction f{};
    f.opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
    f.sqe_flags = set.sqe_flags;
    rs.push_back(f);
    const long r = ::syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_RESTRICTIONS, rs.data(),
                             static_cast<unsigned>(rs.size()));
    return r < 0 ? -errno : 0;
}

namespace {

struct feature_row {
    feature_id id;
    std::uint32_t bit;     // IORING_SETUP_* (0: not a setup flag)
    kernel_version since;  // for features that are not setup flags
    const char* kernel_name;
};
constexpr feature_row rows[] = {
    {feature_id::sqpoll, setup_flag::sqpoll, {5, 1}, "IORING_SETUP_SQPOLL"},
    {feature_id::coop_taskrun, setup_flag::coop_taskrun, {5, 19}, "IORING_SETUP_COOP_TASKRUN"},
    {feature_id::taskrun_flag, setup_flag::taskrun_flag, {5, 19}, "IORING_SETUP_TASKRUN_FLAG"},
    {feature_id::single_issuer, setup_flag::single_issuer, {6, 0}, "IORING_SETUP_SINGLE_ISSUER"},
    {feature_id::defer_taskrun, setup_flag::defer_taskrun, {6, 1}, "IORING_SETUP_DEFER_TASKRUN"},
    {feature_id::registered_ring_fd, 0, {5, 18}, "IORING_REGISTER_RING_FDS"},
    {feature_id::submit_all, setup_flag::submit_all, {5, 18}, "IORING_SETUP_SUBMIT_ALL"},
    {feature_id::cq_entries, setup_flag::cqsize, {5, 5}, "IORING_SETUP_CQSIZE"},
    {feature_id::iowq_max_workers, 0, {5, 15}, "IORING_REGISTER_IOWQ_MAX_WORKERS"},
    {feature_id::fixed_files, 0, {5, 19}, "a sparse IORING_REGISTER_FILES2 table with slot allocation"},
    {feature_id::restricted, 0, {5, 10}, "IORING_REGISTER_RESTRICTIONS"},
};
const feature_row& row(feature_id f) noexcept { return rows[static_cast<std::size_t>(f)]; }

bool kernel_has(const capabilities& caps, feature_id f) noexcept {
    const feature_row& r = row(f);
    if (r.bit) return caps.has_setup_flag(r.bit);
    return caps.io_uring_available && caps.version >= r.since;
}

unsigned online_cpus(const io_uring_options& o) noexcept {
    return o.online_cpus ? o.online_cpus : static_cast<unsigned>(process::usable_cpus());
}

// The feature ladder: decides every feature, records notes, throws for strict refusals.
class ladder {
public:
    ladder(const capabilities& caps, ring_request& req, effective_features& eff)
        : caps_(caps), req_(req), eff_(eff) {}

    // Decides the initial set from the settings and the snapshot.
    void decide() {
        using F = feature_id;
        for (F f : {F::sqpoll, F::single_issuer, F::defer_taskrun, F::coop_taskrun, F::taskrun_flag, F::submit_all,
                    F::registered_ring_fd, F::iowq_max_workers, F::cq_entries, F::fixed_files, F::restricted}) {
            const feature_setting s = setting(f);
            bool want = s.mode == feature_mode::on;
            if (s.mode == feature_mode::automatic) {
                want = kernel_has(caps_, f);
                if (f == F::sqpoll && want && online_cpus(req_.opts) <= 2) want = false;
                if (f == F::defer_taskrun && !on(F::single_issuer)) want = false;
            }
            if (!want) continue;
            if (!kernel_has(caps_, f)) {
                refuse(f, "kernel " + caps_.version.to_string() + " lacks " + row(f).kernel_name);
                continue;
            }
            on_[static_cast<std::size_t>(f)] = true;
        }
        // Pairs the kernel refuses: resolved by the ladder, not by an EINVAL at setup.
        if (on(F::defer_taskrun) && !on(F::single_issuer)) drop(F::defer_taskrun, "it needs single_issuer");
        if (on(F::sqpoll) && on(F::defer_taskrun)) drop(F::defer_taskrun, "SQPOLL excludes it");
        if (on(F::sqpoll) && on(F::coop_taskrun)) drop(F::coop_taskrun, "SQPOLL excludes it");
        if (on(F::taskrun_flag) && !on(F::coop_taskrun) && !on(F::defer_taskrun))
            drop(F::taskrun_flag, "it needs coop_taskrun or defer_taskrun");
    }

    std::uint32_t setup_flags() const noexcept {
        std::uint32_t f = 0;
        for (const feature_row& r : rows)
            if (r.bit && r.id != feature_id::cq_entries && on(r.id)) f |= r.bit;
        return f;
    }

    // io_uring_setup refused the set with EINVAL: drop the most recent addition down the
    // ladder. False when nothing is left to drop.
    bool step_down() {
        using F = feature_id;
        for (F f : {F::defer_taskrun, F::taskrun_flag, F::coop_taskrun, F::sqpoll, F::single_issuer, F::submit_all}) {
            if (!on(f)) continue;
            drop(f, "io_uring_setup refused it (EINVAL)");
            return true;
        }
        return false;
    }

    bool on(feature_id f) const noexcept { return on_[static_cast<std::size_t>(f)]; }

    // A feature that could not be had: strict throws; graceful/warn take the next best.
    void refuse(feature_id f, const std::string& why) {
        const feature_setting s = setting(f);
        if (s.mode == feature_mode::automatic) return; // auto simply does without
        const std::string name(to_string(f));
        if (s.fallback == fallback_policy::strict)
            throw std::system_error(make_error_code(errc::unsupported), "io_uring feature " + name + " (strict): " + why);
        std::string line = name + ": " + why + "; ";
        // The next best of DEFER_TASKRUN is COOP_TASKRUN, unless coop_taskrun was turned off.
        const bool coop_off = req_.named[static_cast<std::size_t>(feature_id::coop_taskrun)] &&
                              setting(feature_id::coop_taskrun).mode == feature_mode::off;
        if (f == feature_id::defer_taskrun && kernel_has(caps_, feature_id::coop_taskrun) && !coop_off &&
            !on(feature_id::sqpoll)) {
            on_[static_cast<std::size_t>(feature_id::coop_taskrun)] = true;
            line += "using coop_taskrun instead";
        } else if (f == feature_id::registered_ring_fd) {
            line += "using the plain ring fd";
        } else {
            line += "running without it";
        }
        note(s, line);
    }

    void drop(feature_id f, const std::string& why) {
        on_[static_cast<std::size_t>(f)] = false;
        refuse(f, why);
        if (f == feature_id::single_issuer && on(feature_id::defer_taskrun)) drop(feature_id::defer_taskrun, "single_issuer was dropped");
    }

    void note(feature_setting s, const std::string& line) {
        if (!eff_.notes.empty()) eff_.notes += '\n';
        eff_.notes += line;
        if (s.fallback == fallback_policy::warn && req_.opts.log) req_.opts.log(line);
    }

private:
    feature_setting setting(feature_id f) const noexcept { return req_.settings[static_cast<std::size_t>(f)]; }

    const capabilities& caps_;
    ring_request& req_;
    effective_features& eff_;
    bool on_[feature_count] = {};
};

} // namespace

bool peer_is_local(int fd) noexcept {
    sockaddr_storage peer{}, self{};
    socklen_t pl = sizeof peer, sl = sizeof self;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&self), &sl) != 0 || peer.ss_family != self.ss_family)
        return true;
    if (peer.ss_family == AF_INET) {
        const auto& p = reinterpret_cast<const sockaddr_in&>(peer);
        const auto& m = reinterpret_cast<const sockaddr_in&>(self);
        return (ntohl(p.sin_addr.s_addr) >> 24) == 127 || p.sin_addr.s_addr == m.sin_addr.s_addr;
    }
    if (peer.ss_family == AF_INET6) {
        const auto& p = reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr;
        const auto& m = reinterpret_cast<const sockaddr_in6&>(self).sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&p) || std::memcmp(&p, &m, sizeof p) == 0) return true;
        return IN6_IS_ADDR_V4MAPPED(&p) && p.s6_addr[12] == 127;
    }
    return true; // AF_UNIX and the rest: no zero-copy path
}

// ---- blocking calls on private rings ---------------------------------------------------------

//! One small ring per concurrent blocking caller, pooled: a caller takes one, submits its entry,
//! waits in the kernel for its own completion and gives the ring back. No thread hand-off. Each
//! ring has the pool's stop signal armed (once: stop happens once) — a FUTEX_WAIT on a word
//! (6.7), else a poll of an eventfd — so stop() can cancel a call blocked in the kernel.
class call_ring_pool {
public:
    struct ring {
        io_uring r{};
        uring_slot slot{};
        slot_scratch scratch{};
        bool stop_seen = false;
    };

    call_ring_pool(const capabilities& caps, translate_env env)
        : caps_(caps), env_(env), futex_stop_(caps.has(opcode::futex_wait)) {}
    ~call_ring_pool() {
        for (auto& r : all_) io_uring_queue_exit(&r->r);
        if (stop_fd_ >= 0) ::close(stop_fd_);
    }

    ring* acquire() noexcept {
        {
            std::lock_guard lock(m_);
            if (!free_.empty()) {
                ring* r = free_.back();
                free_.pop_back();
                return r;
            }
        }
        if (!futex_stop_ && !make_stop_fd()) return nullptr;
        auto r = std::unique_ptr<ring>(new (std::nothrow) ring);
        if (!r) return nullptr;
        io_uring_params p{};
        if (caps_.has_setup_flag(setup_flag::coop_taskrun)) p.flags |= IORING_SETUP_COOP_TASKRUN;
        if (setup_ring(8, p, r->r) < 0) return nullptr;
        arm_stop(r->r);
        if (io_uring_submit(&r->r) < 0) {
            io_uring_queue_exit(&r->r);
            return nullptr;
        }
        std::lock_guard lock(m_);
        try {
            all_.push_back(std::move(r));
            free_.reserve(all_.size()); // release() never allocates
        } catch (...) {
            if (r) io_uring_queue_exit(&r->r);
            return nullptr;
        }
        return all_.back().get();
    }

    void release(ring* r) noexcept {
        std::lock_guard lock(m_);
        free_.push_back(r); // reserved: free_ never outgrows all_
    }

    void interrupt() noexcept {
        stopping_.store(true, std::memory_order_release);
        if (futex_stop_) {
            stop_word_.store(1, std::memory_order_release);
            ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&stop_word_), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr,
                      nullptr, 0);
            return;
        }
        std::lock_guard lock(m_);
        if (stop_fd_ >= 0) signal_stop();
    }
    //! Arms the stop signal on a private ring (its completion is stop_tag): a FUTEX_WAIT on the
    //! stop word where the kernel has it (no descriptor), else a poll of the stop eventfd.
    void arm_stop(io_uring& r) noexcept {
        io_uring_sqe* sqe = io_uring_get_sqe(&r);
        if (!sqe) return;
        if (futex_stop_) prep_futex_wait(*sqe, reinterpret_cast<const std::uint32_t*>(&stop_word_), 0);
        else io_uring_prep_poll_add(sqe, stop_fd_, POLLIN);
        sqe->user_data = stop_tag;
    }
    bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
    const translate_env& env() const noexcept { return env_; }
    const capabilities& caps() const noexcept { return caps_; }

private:
    // Made with the first private ring: an instance whose callers never block on one (an
    // inline server) opens no descriptor for it. A stop that came first is signalled at once.
    bool make_stop_fd() noexcept {
        std::lock_guard lock(m_);
        if (stop_fd_ >= 0) return true;
        stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (stop_fd_ < 0) return false;
        if (stopping_.load(std::memory_order_acquire)) signal_stop();
        return true;
    }
    void signal_stop() noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t w = ::write(stop_fd_, &one, sizeof one);
    }

    const capabilities& caps_;
    translate_env env_;
    const bool futex_stop_;
    std::atomic<std::uint32_t> stop_word_{0};
    int stop_fd_ = -1; // guarded by m_
    std::atomic<bool> stopping_{false};
    std::mutex m_;
    std::vector<std::unique_ptr<ring>> all_;
    std::vector<ring*> free_;
};

// ---- setup and teardown ----------------------------------------------------------------------

uring_engine::uring_engine(const capabilities& caps, const ring_request& req)
    : caps_(caps), request_(std::make_unique<ring_request>(req)) {
    if (!caps.io_uring_available)
        throw std::system_error(make_error_code(errc::io_uring_unavailable), caps.unavailable_reason);
    const io_uring_options& o = request_->opts;
    if (o.entries == 0 || o.entries > 32768)
        throw std::system_error(make_error_code(errc::invalid_argument),
                                "io_uring_options::entries must be in 1..32768, got " + std::to_string(o.entries));
    ladder lad(caps_, *request_, features_);
    lad.decide();
    for (;;) {
        io_uring_params p{};
        p.flags = lad.setup_flags() | o.setup_flags | IORING_SETUP_CQSIZE;
        p.cq_entries = o.cq_entries ? o.cq_entries : o.entries * 2;
        if (p.cq_entries < o.entries) p.cq_entries = o.entries;
        if (p.flags & IORING_SETUP_SQPOLL) {
            p.sq_thread_idle = request_->sqpoll_idle_ms;
            if (request_->sqpoll_cpu >= 0) {
                p.flags |= IORING_SETUP_SQ_AFF;
                p.sq_thread_cpu = static_cast<unsigned>(request_->sqpoll_cpu);
            }
        }
        // SINGLE_ISSUER names the thread that enables the ring: create it disabled so the
        // thread that will drive it (the loop thread) becomes its submitter.
        if (p.flags & IORING_SETUP_SINGLE_ISSUER) p.flags |= IORING_SETUP_R_DISABLED;
        // Restrictions can only be registered on a disabled ring.
        if (lad.on(feature_id::restricted)) p.flags |= IORING_SETUP_R_DISABLED;
        int r;
        if (o.setup_hook) {
            const int fd = o.setup_hook(o.entries, &p);
            r = fd < 0 ? fd : map_ring(fd, p, ring_);
            if (fd >= 0 && r < 0) ::close(fd);
        } else {
            r = setup_ring(o.entries, p, ring_);
        }
        if (r == -EINVAL && lad.step_down()) continue;
        if (r < 0)
            throw std::system_error(-r, std::system_category(), "io_uring_queue_init_params: " + describe_setup_failure(-r));
        features_.setup_flags = p.flags;
        features_.ring_features = p.features;
        features_.sq_entries = p.sq_entries;
        features_.cq_entries = p.cq_entries;
        break;
    }
    ring_open_ = true;
    disabled_ = features_.setup_flags & IORING_SETUP_R_DISABLED;
    defer_taskrun_ = features_.setup_flags & IORING_SETUP_DEFER_TASKRUN;
    sqpoll_ = features_.setup_flags & IORING_SETUP_SQPOLL;
    features_.owner_thread = (features_.setup_flags & (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN)) ||
                             lad.on(feature_id::registered_ring_fd);
    // Registrations that belong to the driving thread wait for attach_to_this_thread().
    want_ring_fd_ = lad.on(feature_id::registered_ring_fd);
    want_iowq_ = lad.on(feature_id::iowq_max_workers);
    want_files_ = lad.on(feature_id::fixed_files) && request_->fixed_files > 0;
    want_restrictions_ = lad.on(feature_id::restricted);
    env_.rw_cur_pos = features_.ring_features & IORING_FEAT_RW_CUR_POS;
    env_.cqe_skip = features_.ring_features & IORING_FEAT_CQE_SKIP;
    env_.send_zc = caps_.has(opcode::send_zc);
    env_.zc_threshold = o.zc_threshold;
    env_.zc_local_peers = o.zc_local_peers;
    env_.zc_report_usage = caps_.version >= kernel_version{6, 2};
    env_.recv_bundle = caps_.has_feature(ring_feature::recvsend_bundle);
    const std::size_t cap = std::max<std::size_t>(features_.sq_entries, request_->opts.max_inflight);
    const std::size_t bytes = cap * (sizeof(uring_slot) + sizeof(slot_scratch));
    void* table = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (table == MAP_FAILED) {
        const int err = errno;
        io_uring_queue_exit(&ring_);
        throw std::system_error(err, std::system_category(),
                                "mmap of the in-flight table (" + std::to_string(cap) + " entries)");
    }
    slots_ = static_cast<uring_slot*>(table);
    scratch_ = reinterpret_cast<slot_scratch*>(slots_ + cap);
    capacity_ = cap;
    free_list_.reserve(cap);
    ready_.reserve(cap);
    chain_sqes_.reserve(cap);
    fork_gen_ = process::fork_generation();
    calls_ = std::make_unique<call_ring_pool>(caps_, env_);
    // One private ring up front: its fd is taken now, not at some later first call (a test, or
    // a program, that saw a descriptor number free must not find ksvc's ring behind it).
    if (o.reserve_call_ring)
        if (auto* r = calls_->acquire()) calls_->release(r);
}

uring_engine::~uring_engine() {
    close_on_this_thread();
    if (slots_) ::munmap(slots_, capacity_ * (sizeof(uring_slot) + sizeof(slot_scratch)));
}

void uring_engine::attach_to_this_thread() noexcept {
    if (!ring_open_ || forked()) return;
    attached_.store(true, std::memory_order_release);
    if (want_restrictions_ && disabled_) {
        want_restrictions_ = false;
        const int r = register_restrictions(ring_.ring_fd, ksvc_restrictions(caps_));
        features_.restricted = r == 0;
        if (r != 0) {
            const std::string line = std::string("restricted: IORING_REGISTER_RESTRICTIONS failed (") + std::strerror(-r) +
                                     "); the ring runs unrestricted";
            features_.notes += (features_.notes.empty() ? "" : "\n") + line;
            if (request_->opts.log) request_->opts.log(line);
        }
    }
    if (disabled_) {
        if (const int r = enable_rings(ring_.ring_fd); r < 0) {
            last_enter_error_ = r;
            if (request_->opts.log) request_->opts.log(std::string("IORING_REGISTER_ENABLE_RINGS failed: ") + std::strerror(-r));
        }
        disabled_ = false;
    }
    if (want_ring_fd_) {
        want_ring_fd_ = false;
        const int r = io_uring_register_ring_fd(&ring_);
        features_.registered_ring_fd = r == 1;
        if (r != 1) {
            std::string line = std::string("registered_ring_fd: IORING_REGISTER_RING_FDS failed (") +
                               std::strerror(r < 0 ? -r : EINVAL) + "); using the plain ring fd";
            features_.notes += (features_.notes.empty() ? "" : "\n") + line;
            const feature_setting s = request_->settings[static_cast<std::size_t>(feature_id::registered_ring_fd)];
            if (s.fallback == fallback_policy::warn && request_->opts.log) request_->opts.log(line);
        }
    }
    if (want_files_) {
        want_files_ = false;
        int r = io_uring_register_files_sparse(&ring_, request_->fixed_files);
        rlimit nofile{};
        if (r == -EMFILE && ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur > 0 &&
            nofile.rlim_cur < request_->fixed_files) {
            // The table counts against RLIMIT_NOFILE: a smaller table serves, a missing one not.
            const auto fit = static_cast<unsigned>(nofile.rlim_cur);
            r = io_uring_register_files_sparse(&ring_, fit);
            if (r == 0) {
                features_.fixed_files = fit;
                const std::string line = "fixed_files: " + std::to_string(request_->fixed_files) +
                                         " slots are above RLIMIT_NOFILE; registered " + std::to_string(fit);
                features_.notes += (features_.notes.empty() ? "" : "\n") + line;
                if (request_->opts.log) request_->opts.log(line);
            }
        } else if (r == 0) {
            features_.fixed_files = request_->fixed_files;
        }
        if (r != 0) {
            const std::string line = "fixed_files: registering a sparse table of " + std::to_string(request_->fixed_files) +
                                     " slots failed (" + std::strerror(-r) + (r == -EMFILE ? ", above RLIMIT_NOFILE" : "") +
                                     "); direct descriptors will fail with EBADF/ENFILE";
            features_.notes += (features_.notes.empty() ? "" : "\n") + line;
            if (request_->opts.log) request_->opts.log(line);
        }
    }
    if (want_resources_) {
        want_resources_ = false;
        for (auto& res : resources_) {
            if (res.result != 1) continue;
            resource_context ctx{caps_.version, caps_.has(opcode::provide_buffers),
                                 caps_.has(opcode::readv_fixed) && caps_.has(opcode::writev_fixed)};
            res.result = res.r.attach(res.r.self, ring_, ctx);
            res.replenish = res.result == 0 && res.r.replenish && ctx.wants_replenish;
            replenishing_ = replenishing_ || res.replenish;
            if (res.result < 0) {
                const std::string line = std::string(res.r.name) + ": registration failed (" + std::strerror(-res.result) + ")";
                features_.notes += (features_.notes.empty() ? "" : "\n") + line;
                if (request_->opts.log) request_->opts.log(line);
            }
        }
    }
    if (want_iowq_) {
        want_iowq_ = false;
        unsigned v[2] = {request_->iowq_bounded, request_->iowq_unbounded};
        if (io_uring_register_iowq_max_workers(&ring_, v) == 0) {
            features_.iowq_bounded = request_->iowq_bounded;
            features_.iowq_unbounded = request_->iowq_unbounded;
        }
    }
}

void uring_engine::replenish() noexcept {
    for (auto& res : resources_)
        if (res.replenish) internal_ += res.r.replenish(res.r.self, ring_);
}

void uring_engine::note_resource_error(int res) noexcept {
    if (resource_error_noted_) return;
    resource_error_noted_ = true; // once: a persistent refusal would otherwise log per SQE
    const std::string line = std::string("resource SQE (PROVIDE_BUFFERS) failed: ") + std::strerror(-res) +
                             "; the buffers it carried stay out of the kernel's reach";
    features_.notes += (features_.notes.empty() ? "" : "\n") + line;
    if (request_->opts.log) request_->opts.log(line);
}

void uring_engine::add_resource(const ring_resource& r) {
    resources_.push_back({r, 1});
    want_resources_ = true;
}

void uring_engine::close_on_this_thread() noexcept {
    if (!ring_open_) return;
    ring_open_ = false;
    if (!forked()) {
        // Teardown cancels and drains: nothing may be freed while the kernel can still write
        // into a slot's scratch or the caller's buffers. The dispatcher has drained already;
        // this covers a backend used on its own.
        if (disabled_) enable_rings(ring_.ring_fd);
        bool doorbell_cancelled = false;
        int failures = 0;
        while ((busy_ > 0 || internal_ > 0) && failures < 1000) {
            // (Re)queue what could not be queued yet: a small SQ may be full.
            for (std::uint32_t i = 0; i < constructed_; ++i)
                if (slots_[i].busy && !slots_[i].cancel_requested && queue_cancel(i + 1)) slots_[i].cancel_requested = true;
            if (doorbell_armed_ && !doorbell_cancelled) doorbell_cancelled = queue_cancel(doorbell_tag);
            const int r = io_uring_submit_and_wait(&ring_, 1);
            if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) ++failures;
            unsigned head, seen = 0;
            io_uring_cqe* cqe = nullptr;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                ++seen;
                const std::uint64_t ud = cqe->user_data;
                if (ud >= first_internal_tag) {
                    if (ud != liburing_timeout_tag) --internal_;
                } else if (!(ud & message_bit) && !(cqe->flags & IORING_CQE_F_MORE)) {
                    const auto idx = static_cast<std::uint32_t>(ud - 1);
                    if (slots_[idx].chain_serial) settle_chain(idx, cqe->res, false);
                    if (slots_[idx].busy) release(idx);
                }
            }
            io_uring_cq_advance(&ring_, seen);
        }
        // Nothing in flight names a resource any more: release them while the ring is open.
        for (auto& res : resources_)
            if (res.result == 0 && res.r.detach) res.r.detach(res.r.self, ring_);
        // The table's files close now, not when the ring's last descriptor goes: another
        // descriptor of the ring (sharded_runner holds one) would keep them open.
        if (features_.fixed_files) io_uring_unregister_files(&ring_);
        if (features_.registered_ring_fd) io_uring_unregister_ring_fd(&ring_);
    }
    // In a forked child the ring belongs to the parent: only drop this process's mapping.
    io_uring_queue_exit(&ring_);
}

// ---- submission ------------------------------------------------------------------------------

status uring_engine::submit_chain(std::span<const submit_entry> chain, const route_info* routes) noexcept {
    if (forked()) return status::forked_child;
    const std::size_t k = chain.size();
    if (k > ring_.sq.ring_entries || k > capacity_) return status::chain_too_long;
    if (busy_ + ready_.size() + k > capacity_) return status::ring_full;
    if (replenishing_) [[unlikely]]
        replenish();
    if (free_list_.size() < k) grow_slots(k - free_list_.size());
    if (io_uring_sq_space_left(&ring_) < k) {
        enter_submit(0);
        if (io_uring_sq_space_left(&ring_) < k) return status::ring_full;
    }
    chain_sqes_.clear();
    for (std::size_t i = 0; i < k; ++i) {
        const std::uint32_t idx = free_list_[free_list_.size() - 1 - i];
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_); // space was checked
        std::memset(sqe, 0, sizeof *sqe);
        const translation t = translate(chain[i], routes[i], *sqe, slots_[idx], env_);
        if (t.kind != outcome::queued) {
            ring_.sq.sqe_tail -= static_cast<unsigned>(i + 1); // nothing of the chain was placed
            return status::unsupported;
        }
        chain_sqes_.push_back(sqe);
    }
    for (const submit_entry& e : chain)
        if (e.flags & entry_flags::drain) env_.cqe_skip = false;
    if (++chain_serial_ == 0) chain_serial_ = 1;
    std::uint32_t prev = 0;
    for (std::size_t i = 0; i < k; ++i) {
        const std::uint32_t idx = free_list_.back();
        occupy(idx, chain[i], routes[i], *chain_sqes_[i]);
        uring_slot& sl = slots_[idx];
        sl.chain_serial = chain_serial_;
        sl.chain_prev = prev;
        if (prev) slots_[prev - 1].chain_next = idx + 1;
        prev = idx + 1;
        // The kernel may skip a member's success only if a later member will post a CQE (it
        // releases this slot) and nothing is to be done with the result: recvfrom's addrlen and
        // splice's offsets are written back from it, and an operation with several completions
        // (zero-copy sends: the notification) needs the first.
        const operation_info* oi = info(static_cast<operation>(chain[i].number()));
        const bool needs_result = sl.post || (oi && oi->multishot);
        if (env_.cqe_skip && (chain[i].flags & entry_flags::skip_success) && i + 1 < k && !needs_result) {
            chain_sqes_[i]->flags |= IOSQE_CQE_SKIP_SUCCESS;
            sl.kernel_skips = true;
        }
    }
    return status::ok;
}

void uring_engine::settle_chain(std::uint32_t idx, std::int32_t res, bool report) noexcept {
    uring_slot& sl = slots_[idx];
    const std::uint32_t serial = sl.chain_serial;
    auto member = [&](std::uint32_t link) -> uring_slot* {
        if (!link) return nullptr;
        uring_slot& m = slots_[link - 1];
        return m.busy && m.chain_serial == serial ? &m : nullptr;
    };
    // Members complete in order: an earlier member still busy was skipped (a failure posts its
    // CQE before the next member's). One that already completed ends the walk.
    for (std::uint32_t p = sl.chain_prev; uring_slot* m = member(p);) {
        const std::uint32_t next = m->chain_prev;
        if (!m->kernel_skips) break;
        ++kernel_skipped_;
        if (report) ready_.push_back(make_completion(m->entry(), 0));
        m->chain_serial = 0;
        release(p - 1);
        p = next;
    }
    // Seen on 6.1 and 6.18: a CQE_SKIP_SUCCESS member that fails a soft link has the kernel
    // cancel the rest of the chain silently (the members were never issued).
    if (sl.kernel_skips && res < 0 && !(sl.flags & entry_flags::hardlink)) {
        for (std::uint32_t n = sl.chain_next; uring_slot* m = member(n);) {
            const std::uint32_t next = m->chain_next;
            if (report) ready_.push_back(make_completion(m->entry(), -ECANCELED));
            m->chain_serial = 0;
            release(n - 1);
            n = next;
        }
    }
    sl.chain_serial = 0;
}

void uring_engine::grow_slots(std::size_t need) noexcept {
    static_assert(std::is_trivially_destructible_v<uring_slot>); // unmapped without destructors
    static_assert(std::is_trivially_default_constructible_v<slot_scratch> && std::is_trivially_destructible_v<slot_scratch>);
    const std::size_t n = std::min(capacity_ - constructed_, std::max<std::size_t>(need, 64));
    for (std::size_t j = constructed_ + n; j-- > constructed_;) {
        new (&slots_[j]) uring_slot{};
        // Not constructed: an implicit-lifetime aggregate that every translation writes before
        // it is read, so its page is touched only by an entry that uses it.
        slots_[j].x = &scratch_[j];
        free_list_.push_back(static_cast<std::uint32_t>(j)); // the lowest comes out first
    }
    constructed_ += n;
}

bool uring_engine::rearm(std::uint32_t idx) noexcept {
    uring_slot& sl = slots_[idx];
    io_uring_sqe* sqe = get_sqe();
    if (!sqe) return false;
    std::memset(sqe, 0, sizeof *sqe);
    if (translate(sl.entry(), sl.route, *sqe, sl, env_).kind != outcome::queued) {
        --ring_.sq.sqe_tail;
        return false;
    }
    sqe->user_data = idx + 1;
    return true;
}

bool uring_engine::queue_cancel(std::uint64_t user_data) noexcept {
    io_uring_sqe* sqe = get_sqe();
    if (!sqe) return false;
    io_uring_prep_cancel64(sqe, user_data, 0);
    sqe->user_data = cancel_tag;
    ++internal_;
    return true;
}

// operation::cancel over the in-flight table (by corr_id, by fd, or everything): one
// ASYNC_CANCEL per matching request; the result is how many were asked, or -ENOENT.
status uring_engine::submit_cancel(const submit_entry& e) noexcept {
    const std::uint64_t mode = e.args[0], key = e.args[1];
    if (mode > cancel_by::all) {
        ready_.push_back(make_completion(e, -EINVAL));
        return status::ok;
    }
    auto matches = [&](const uring_slot& sl) {
        if (!sl.busy || sl.cancel_requested) return false;
        return mode == cancel_by::all || (mode == cancel_by::corr_id && sl.corr_id == key) ||
               (mode == cancel_by::fd && sl.fd >= 0 && static_cast<std::uint64_t>(sl.fd) == key);
    };
    std::size_t count = 0;
    for (std::size_t i = 0; i < constructed_; ++i) count += matches(slots_[i]);
    // Cancels complete on the CQ too: keep them within its headroom (CQ = 2 x SQ).
    if (internal_ + count > capacity_ || ready_.size() >= capacity_) return status::ring_full;
    std::int64_t asked = 0;
    for (std::uint32_t i = 0; i < constructed_; ++i) {
        if (!matches(slots_[i])) continue;
        if (!queue_cancel(i + 1)) break;
        slots_[i].cancel_requested = true;
        ++asked;
    }
    ready_.push_back(make_completion(e, asked ? asked : -ENOENT));
    return status::ok;
}

std::error_code uring_engine::cancel(std::uint64_t corr_id) noexcept {
    if (forked()) return make_error_code(errc::forked_child);
    submit_entry e;
    e.nr = static_cast<std::uint32_t>(operation::cancel);
    e.args[0] = cancel_by::corr_id;
    e.args[1] = corr_id;
    const std::size_t before = ready_.size();
    const status s = submit_cancel(e);
    if (s != status::ok) return to_error_code(s);
    // Used directly (not as an entry): no completion for the request itself.
    const bool found = ready_.back().result > 0;
    ready_.resize(before);
    return found ? std::error_code{} : std::error_code(ENOENT, std::system_category());
}

std::size_t uring_engine::cancel_all() noexcept {
    if (forked()) return 0;
    std::size_t n = 0;
    for (std::uint32_t i = 0; i < constructed_; ++i) {
        if (!slots_[i].busy || slots_[i].cancel_requested) continue;
        if (!queue_cancel(i + 1)) break;
        slots_[i].cancel_requested = true;
        ++n;
    }
    enter_submit(0);
    return n;
}

// ---- entering the kernel ---------------------------------------------------------------------

// Submits what is queued (and waits for `wait_nr` completions). EINTR, EAGAIN and EBUSY are
// transient: the caller reaps and comes back. Any other error is persistent for the entries
// in the SQ: they are failed with it (completions that say why) and it is reported.
int uring_engine::enter_submit(unsigned wait_nr, bool get_events) noexcept {
    // Used on its own (not through a dispatcher), the first thread to submit drives the ring.
    if (disabled_ || want_ring_fd_ || want_iowq_ || want_resources_ || want_files_) attach_to_this_thread();
    const int r = wait_nr      ? io_uring_submit_and_wait(&ring_, wait_nr)
                  : get_events ? io_uring_submit_and_get_events(&ring_)
                               : io_uring_submit(&ring_);
    if (r >= 0 || r == -EINTR || r == -EAGAIN || r == -EBUSY || r == -ETIME) return r < 0 ? r : 0;
    return enter_failed(r);
}

// A persistent error from io_uring_enter: logged once per kind; the SQEs the kernel did not
// take complete with it.
int uring_engine::enter_failed(int r) noexcept {
    if (last_enter_error_ != r && request_->opts.log)
        request_->opts.log(std::string("io_uring_enter failed: ") + std::strerror(-r) +
                           "; the entries it carried complete with that error");
    last_enter_error_ = r;
    fail_unsubmitted(-r);
    return r;
}

// The kernel consumed nothing of [khead, ktail): take those SQEs back and complete them with
// `err`. Without SQPOLL only io_uring_enter consumes SQEs, so rewinding the tail is safe.
void uring_engine::fail_unsubmitted(int err) noexcept {
    if (features_.setup_flags & IORING_SETUP_SQPOLL) return; // the poller owns the SQ head
    const unsigned head = io_uring_smp_load_acquire(ring_.sq.khead);
    const unsigned tail = *ring_.sq.ktail;
    for (unsigned i = head; i != tail; ++i) {
        const io_uring_sqe& sqe = ring_.sq.sqes[i & ring_.sq.ring_mask];
        const std::uint64_t ud = sqe.user_data;
        if (ud >= first_internal_tag) {
            if (ud == doorbell_tag) doorbell_armed_ = false;
            if (ud == resource_tag) note_resource_error(-err);
            if (ud != liburing_timeout_tag) --internal_;
            continue;
        }
        const auto idx = static_cast<std::uint32_t>(ud - 1);
        if (idx >= constructed_ || !slots_[idx].busy) continue;
        completion_entry c = make_completion(slots_[idx].entry(), -err);
        release(idx);
        ready_.push_back(c);
    }
    io_uring_smp_store_release(ring_.sq.ktail, head);
    ring_.sq.sqe_head = ring_.sq.sqe_tail = head;
}

int uring_engine::wait(int fd, int timeout_ms) noexcept { return wait_on(fd, nullptr, timeout_ms); }

int uring_engine::wait_futex(const std::uint32_t* word, int timeout_ms) noexcept {
    if (!caps_.has(opcode::futex_wait)) return -EOPNOTSUPP; // the notifier then holds an eventfd
    return wait_on(-1, word, timeout_ms);
}

// The doorbell is a one-shot POLL_ADD on an eventfd, or a FUTEX_WAIT on a word that is 0 while
// nothing is pending (the kernel compares at arming: a word already set completes it at once).
// It stays armed across iterations that woke for other completions.
int uring_engine::wait_on(int fd, const std::uint32_t* word, int timeout_ms) noexcept {
    if (forked()) return -ECHILD;
    // Completions already reapable (results decided at submit, CQEs posted): submit, do not block.
    if (!ready_.empty() || io_uring_cq_ready(&ring_) > 0) return flush();
    if ((fd >= 0 || word) && !doorbell_armed_) {
        io_uring_sqe* sqe = get_sqe();
        if (!sqe) return -EBUSY;
        if (word) prep_futex_wait(*sqe, word, 0);
        else io_uring_prep_poll_add(sqe, fd, POLLIN);
        sqe->user_data = doorbell_tag;
        doorbell_armed_ = true;
        ++internal_;
    }
    if (timeout_ms < 0) return enter_submit(1);
    // One enter submits and waits, as for an unbounded sleep: two (submit, then wait) doubled
    // the syscalls of a busy server's loop. liburing 2.3 reports the submitted count rather
    // than -ETIME when that enter times out: an empty CQ afterwards says it did.
    if (disabled_ || want_ring_fd_ || want_iowq_ || want_resources_ || want_files_) attach_to_this_thread();
    __kernel_timespec ts{timeout_ms / 1000, static_cast<long long>(timeout_ms % 1000) * 1000000};
    io_uring_cqe* cqe = nullptr;
    const int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    if (r >= 0) return io_uring_cq_ready(&ring_) > 0 ? 0 : -ETIME; // it returned with nothing: timed out
    if (r == -EINTR || r == -EAGAIN || r == -EBUSY || r == -ETIME) return r;
    return enter_failed(r);
}

// ---- blocking calls --------------------------------------------------------------------------

bool uring_engine::call_here(const submit_entry& e, route_info r, int timeout_ms, completion_entry& out) noexcept {
    if (calls_->stopping()) {
        out = make_framework_completion(e, errc::shut_down);
        return true;
    }
    if (timeout_ms >= 0 && !caps_.has(opcode::link_timeout)) return false;
    // An io_uring write to a broken pipe raises SIGPIPE on the submitting thread: the caller's.
    std::optional<process::sigpipe_scope> sigpipe;
    if (routing::may_raise_sigpipe(e.nr)) sigpipe.emplace();
    call_ring_pool::ring* cr = calls_->acquire();
    if (!cr) return false;
    struct give_back {
        call_ring_pool& pool;
        call_ring_pool::ring* r;
        ~give_back() { pool.release(r); }
    } guard{*calls_, cr};
    io_uring& ring = cr->r;
    uring_slot& sl = cr->slot;
    sl = uring_slot{};
    sl.x = &cr->scratch;
    io_uring_sqe* sqe = io_uring_get_sqe(&ring); // the ring is idle: room for three
    std::memset(sqe, 0, sizeof *sqe);
    const translation t = translate(e, r, *sqe, sl, calls_->env());
    if (t.kind != outcome::queued) {
        --ring.sq.sqe_tail;
        if (t.kind == outcome::unsupported) return false;
        out = make_completion(e, t.immediate_result);
        return true;
    }
    sl.corr_id = e.corr_id;
    sl.nr = e.nr;
    sl.flags = e.flags;
    sl.route = r;
    sqe->user_data = 1;
    bool timeout_pending = false;
    if (timeout_ms >= 0) {
        sqe->flags |= IOSQE_IO_LINK;
        set_timespec(sl.x->ts, static_cast<std::uint64_t>(timeout_ms) * 1'000'000u);
        io_uring_sqe* to = io_uring_get_sqe(&ring);
        io_uring_prep_link_timeout(to, &sl.x->ts, 0);
        to->user_data = 2;
        timeout_pending = true;
    }
    bool done = false, cancel_sent = false, cancel_pending = false, submitted = false;
    while (!done || timeout_pending || cancel_pending) {
        const int rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME) {
            if (!submitted && io_uring_sq_ready(&ring) > 0) {
                // Nothing reached the kernel: take the SQEs back, the call fails with the error.
                ring.sq.sqe_tail = ring.sq.sqe_head;
                io_uring_smp_store_release(ring.sq.ktail, io_uring_smp_load_acquire(ring.sq.khead));
                ring.sq.sqe_head = ring.sq.sqe_tail = *ring.sq.ktail;
                out = make_completion(e, rc);
                return true;
            }
        } else if (rc >= 0) {
            submitted = true;
        }
        unsigned head, seen = 0;
        io_uring_cqe* cqe = nullptr;
        bool stop_now = false;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            switch (cqe->user_data) {
            case 1:
                out = finish(sl, cqe->res, cqe->flags);
                if (!(cqe->flags & IORING_CQE_F_MORE)) done = true;
                break;
            case 2: timeout_pending = false; break;
            case cancel_tag: cancel_pending = false; break;
            case stop_tag: // only stop() completes it (wakes the word, or writes the eventfd)
                if (calls_->stopping()) stop_now = cr->stop_seen = true;
                break;
            default: break;
            }
        }
        io_uring_cq_advance(&ring, seen);
        if ((stop_now || (cr->stop_seen && calls_->stopping())) && !done && !cancel_sent) {
            io_uring_sqe* c = io_uring_get_sqe(&ring);
            if (c) {
                io_uring_prep_cancel64(c, 1, 0);
                c->user_data = cancel_tag;
                cancel_sent = cancel_pending = true;
            }
        }
    }
    if (sigpipe) sigpipe->result(out.result);
    return true;
}

void uring_engine::interrupt_calls() noexcept { calls_->interrupt(); }

bool uring_engine::translates(std::uint32_t n) noexcept {
    const route_info r = routing::resolve(n, [](opcode) { return true; });
    if (r.tier != tier::io_uring) return false;
    io_uring_sqe s{};
    uring_slot sl{};
    slot_scratch scratch{};
    sl.x = &scratch;
    submit_entry e{};
    e.nr = n;
    // Null pointers everywhere: every Tier-1 case must still produce a decision.
    loff_t zero = 0;
    socklen_t len = 0;
    namespace nr = ksvc::syscalls::x86_64;
    if (n == nr::recvfrom) {
        e.args[4] = reinterpret_cast<std::uint64_t>(&sl); // any non-null address
        e.args[5] = reinterpret_cast<std::uint64_t>(&len);
    }
    if (n == nr::splice) e.args[1] = reinterpret_cast<std::uint64_t>(&zero);
    return translate(e, r, s, sl, translate_env{}).kind != outcome::unsupported;
}

} // namespace detail
} // namespace ksvc
