#include <ksvc/module/counters/publisher.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ksvc/module/backends/uring_engine.hpp>

namespace ksvc {

namespace {
std::atomic<std::uint64_t> next_serial{0};

void copy_text(char* dst, std::size_t cap, std::string_view src) noexcept {
    const std::size_t n = src.size() < cap - 1 ? src.size() : cap - 1;
    std::memcpy(dst, src.data(), n);
    dst[n] = '\0';
}

bool process_alive(long pid) noexcept { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }
} // namespace

bool counters_enabled_by_environment() noexcept {
    const char* v = std::getenv("KSVC_COUNTERS");
    if (!v) return true;
    const std::string_view s(v);
    return !(s == "0" || s == "off" || s == "no" || s == "false");
}

std::string counters_directory() {
    const char* d = std::getenv("KSVC_COUNTERS_DIR");
    return d && *d ? d : "/dev/shm";
}

counters_publisher::counters_publisher(const std::string& name, const char* backend, const char* dispatch) noexcept {
    try {
        pid_ = ::getpid();
        const std::uint64_t serial = next_serial.fetch_add(1, std::memory_order_relaxed) + 1;
        path_ = counters_directory() + "/ksvc." + std::to_string(pid_) + "." + std::to_string(serial);
        int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && errno == EEXIST) { // left by an earlier process with this pid
            ::unlink(path_.c_str());
            fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        }
        if (fd < 0) {
            error_ = "open " + path_ + ": " + std::strerror(errno);
            return;
        }
        void* p = MAP_FAILED;
        if (::ftruncate(fd, sizeof(counters_block)) == 0)
            p = ::mmap(nullptr, sizeof(counters_block), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        const int err = errno;
        ::close(fd);
        if (p == MAP_FAILED) {
            error_ = "map " + path_ + ": " + std::strerror(err);
            ::unlink(path_.c_str());
            return;
        }
        // A fresh file is zero-filled: every counter starts at 0. The header goes in, then the
        // magic number, which readers check first.
        auto* b = static_cast<counters_block*>(p);
        b->version = counters_version;
        b->size = sizeof(counters_block);
        b->slots = counters_slots;
        b->pid = pid_;
        b->serial = serial;
        timespec ts{};
        ::clock_gettime(CLOCK_REALTIME, &ts);
        b->started_ns = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
        copy_text(b->name, sizeof b->name, name);
        copy_text(b->backend, sizeof b->backend, backend);
        copy_text(b->dispatch, sizeof b->dispatch, dispatch);
        std::atomic_thread_fence(std::memory_order_release);
        reinterpret_cast<std::atomic<std::uint32_t>*>(&b->magic)->store(counters_magic, std::memory_order_release);
        block_ = b;
    } catch (const std::exception& e) { // std::string allocation
        error_ = e.what();
        block_ = nullptr;
    }
}

counters_publisher::~counters_publisher() {
    if (!block_) return;
    ::munmap(block_, sizeof(counters_block));
    // A forked child's copy of the instance must not remove its parent's file.
    if (::getpid() == pid_) ::unlink(path_.c_str());
}

void counters_publisher::set_features(const effective_features& f) noexcept {
    if (!block_) return;
    counters_block& b = *block_;
    b.setup_flags.store(f.setup_flags, std::memory_order_relaxed);
    b.ring_features.store(f.ring_features, std::memory_order_relaxed);
    b.sq_entries.store(f.sq_entries, std::memory_order_relaxed);
    b.cq_entries.store(f.cq_entries, std::memory_order_relaxed);
    b.fixed_files.store(f.fixed_files, std::memory_order_relaxed);
    b.registered_ring_fd.store(f.registered_ring_fd ? 1 : 0, std::memory_order_relaxed);
    copy_text(b.features, sizeof b.features, f.notes);
    b.features_generation.fetch_add(1, std::memory_order_release);
}

std::vector<published_counters> list_published(std::optional<long> pid) {
    std::vector<published_counters> out;
    const std::string dir = counters_directory();
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (const dirent* e = ::readdir(d)) {
        const std::string_view n(e->d_name);
        if (!n.starts_with("ksvc.")) continue;
        const std::size_t dot = n.find('.', 5);
        if (dot == std::string_view::npos) continue;
        char* end = nullptr;
        const std::string p(n.substr(5, dot - 5)), s(n.substr(dot + 1));
        const long pv = std::strtol(p.c_str(), &end, 10);
        if (*end || p.empty()) continue;
        const unsigned long long sv = std::strtoull(s.c_str(), &end, 10);
        if (*end || s.empty()) continue;
        if (pid && *pid != pv) continue;
        out.push_back({dir + "/" + std::string(n), pv, sv, process_alive(pv)});
    }
    ::closedir(d);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.pid != b.pid ? a.pid < b.pid : a.serial < b.serial; });
    return out;
}

counters_view::counters_view(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "ksvc counters: open " + path);
    struct stat st{};
    if (::fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) < sizeof(counters_block)) {
        ::close(fd);
        throw std::runtime_error("ksvc counters: " + path + " is not a counters block of this version (size " +
                                 std::to_string(st.st_size) + ", expected " + std::to_string(sizeof(counters_block)) + ")");
    }
    void* p = ::mmap(nullptr, sizeof(counters_block), PROT_READ, MAP_SHARED, fd, 0);
    const int err = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw std::system_error(err, std::system_category(), "ksvc counters: mmap " + path);
    block_ = static_cast<const counters_block*>(p);
    size_ = sizeof(counters_block);
    const auto magic = reinterpret_cast<const std::atomic<std::uint32_t>*>(&block_->magic)->load(std::memory_order_acquire);
    if (magic != counters_magic || block_->version != counters_version || block_->size != sizeof(counters_block) ||
        block_->slots != counters_slots) {
        ::munmap(const_cast<counters_block*>(block_), size_);
        block_ = nullptr;
        throw std::runtime_error("ksvc counters: " + path + " is not a counters block of version " +
                                 std::to_string(counters_version) + " (not written yet, or another ksvc version)");
    }
}

counters_view::~counters_view() {
    if (block_) ::munmap(const_cast<counters_block*>(block_), size_);
}

counter_totals read_totals(const counters_block& b) noexcept {
    counter_totals t;
    const auto r = [](const std::atomic<std::uint64_t>& a, const std::atomic<std::uint64_t>& c) {
        return a.load(std::memory_order_relaxed) + c.load(std::memory_order_relaxed);
    };
    for (std::size_t i = 0; i < tier_count; ++i) {
        t.tier_calls[i] = r(b.loop.tier_calls[i], b.callers.tier_calls[i]);
        t.tier_done[i] = r(b.loop.tier_done[i], b.callers.tier_done[i]);
        t.tier_failures[i] = r(b.loop.tier_failures[i], b.callers.tier_failures[i]);
    }
    t.delivered = r(b.loop.delivered, b.callers.delivered);
    t.enobufs = r(b.loop.enobufs, b.callers.enobufs);
    for (std::size_t i = 0; i < counters_slots; ++i) {
        t.calls[i] = r(b.loop.calls[i], b.callers.calls[i]);
        t.done[i] = r(b.loop.done[i], b.callers.done[i]);
        t.failures[i] = r(b.loop.failures[i], b.callers.failures[i]);
    }
    return t;
}

} // namespace ksvc
