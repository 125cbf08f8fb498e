#pragma once
//! registered_buffers — a fixed pool of equally sized buffers registered with the ring
//! (io_uring_register_buffers, one iovec per buffer: a lease's index() is its registered
//! index). I/O through a registered lease uses READ_FIXED / WRITE_FIXED (op::read_fixed(fd,
//! lease, …)), and READV_FIXED / WRITEV_FIXED where the kernel has them (6.15;
//! op::readv_fixed(fd, lease, iov, n, off)): the kernel skips pinning and mapping the pages on
//! every request.
//!
//! Registration is the backend's, on the thread that drives the ring (resource()); it can fail
//! — an unprivileged process is bounded by RLIMIT_MEMLOCK — and then the instance logs it, says
//! so in features().notes, and leases report registered() == false, so op::read_fixed(fd, lease,
//! …) builds a plain pread/pwrite instead: slower, never wrong.
//!
//! Single-threaded (the owner's or the consumer's thread); is_registered() may be read anywhere.
//! A lease must not be released while the kernel may still write it (after its completion).
#include <sys/mman.h>
#include <sys/uio.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <liburing.h>

#include <ksvc/core/concepts/buffer_provider.hpp>
#include <ksvc/module/backends/uring_engine.hpp>

namespace ksvc {

class registered_buffers {
public:
    class lease {
    public:
        lease() noexcept = default;
        lease(lease&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), id_(o.id_) {}
        lease& operator=(lease&& o) noexcept {
            if (this != &o) {
                reset();
                pool_ = std::exchange(o.pool_, nullptr);
                id_ = o.id_;
            }
            return *this;
        }
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        ~lease() { reset(); }

        [[nodiscard]] std::span<std::byte> data() const noexcept {
            return pool_ ? std::span<std::byte>(pool_->storage_ + id_ * pool_->size_, pool_->size_) : std::span<std::byte>{};
        }
        [[nodiscard]] std::size_t id() const noexcept { return id_; }
        //! The registered-buffer index for READ_FIXED / WRITE_FIXED.
        [[nodiscard]] std::uint16_t index() const noexcept { return static_cast<std::uint16_t>(id_); }
        //! Whether the kernel has the pool registered now (else fixed I/O would fail with EFAULT).
        [[nodiscard]] bool registered() const noexcept { return pool_ && pool_->is_registered(); }
        //! Registered, and the ring's kernel has READV_FIXED / WRITEV_FIXED (6.15).
        [[nodiscard]] bool vectored() const noexcept { return registered() && pool_->vectored_.load(std::memory_order_acquire); }
        explicit operator bool() const noexcept { return pool_ != nullptr; }
        void reset() noexcept {
            if (pool_) std::exchange(pool_, nullptr)->free_.push_back(id_);
        }

    private:
        friend class registered_buffers;
        lease(registered_buffers* p, std::size_t id) noexcept : pool_(p), id_(id) {}
        registered_buffers* pool_ = nullptr;
        std::size_t id_ = 0;
    };

    //! `count` buffers (at most 16384, the kernel's limit) of `size` bytes (at most 1 GiB each).
    explicit registered_buffers(std::size_t count = 64, std::size_t size = 64 * 1024) : count_(count), size_(size) {
        if (count == 0 || count > 16384)
            throw std::invalid_argument("registered_buffers: count must be in [1, 16384] (got " + std::to_string(count) + ")");
        if (size == 0 || size > (std::size_t{1} << 30))
            throw std::invalid_argument("registered_buffers: size must be in [1, 1 GiB] (got " + std::to_string(size) + ")");
        bytes_ = (count * size + 4095) & ~std::size_t{4095};
        storage_ = map_pool(bytes_);
        iovecs_.resize(count);
        for (std::size_t i = 0; i < count; ++i) iovecs_[i] = {storage_ + i * size, size};
        free_.reserve(count);
        for (std::size_t i = count; i-- > 0;) free_.push_back(i);
    }
    ~registered_buffers() { ::munmap(storage_, bytes_); }
    registered_buffers(const registered_buffers&) = delete;
    registered_buffers& operator=(const registered_buffers&) = delete;

    lease acquire(std::size_t min) noexcept {
        if (min > size_ || free_.empty()) return {};
        const std::size_t id = free_.back();
        free_.pop_back();
        return {this, id};
    }
    [[nodiscard]] bool is_registered() const noexcept { return registered_.load(std::memory_order_acquire); }
    [[nodiscard]] std::size_t pool_size() const noexcept { return count_; }
    [[nodiscard]] std::size_t in_use() const noexcept { return count_ - free_.size(); }
    [[nodiscard]] std::size_t buffer_size() const noexcept { return size_; }

    //! What the backend registers on its driving thread.
    ring_resource resource() noexcept { return {"registered_buffers", this, &attach, &detach}; }

private:
    static int attach(void* self, io_uring& ring, resource_context& ctx) noexcept {
        auto* p = static_cast<registered_buffers*>(self);
        const int r = io_uring_register_buffers(&ring, p->iovecs_.data(), static_cast<unsigned>(p->iovecs_.size()));
        if (r == 0) {
            p->vectored_.store(ctx.vectored_fixed, std::memory_order_release);
            p->registered_.store(true, std::memory_order_release);
        }
        return r;
    }
    static void detach(void* self, io_uring& ring) noexcept {
        auto* p = static_cast<registered_buffers*>(self);
        io_uring_unregister_buffers(&ring);
        p->registered_.store(false, std::memory_order_release);
        p->vectored_.store(false, std::memory_order_release);
    }

    // A pool of at least one huge page is mapped 2 MiB-aligned and advised for transparent huge
    // pages. The kernel registers a buffer that lies inside one huge folio as a single bvec
    // segment, so a buffered READ_FIXED / WRITE_FIXED copies it with one memcpy per page-cache
    // folio instead of one per 4 KiB page: ~6 % less CPU for a warm page-cache copy on 6.18
    // (226 → 213 ms per GiB). Where THP is off the advice does nothing. The kernel charges a
    // pinned huge page whole to RLIMIT_MEMLOCK, so only huge pages wholly inside the pool are
    // advised: the charge stays the pool's size.
    static constexpr std::size_t huge_page = std::size_t{2} << 20;
    static std::byte* map_pool(std::size_t bytes) {
        const std::size_t slack = bytes >= huge_page ? huge_page - 4096 : 0;
        void* p = ::mmap(nullptr, bytes + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::system_error(errno, std::system_category(), "registered_buffers: mmap");
        auto* const raw = static_cast<std::byte*>(p);
        if (slack == 0) return raw;
        const auto addr = reinterpret_cast<std::uintptr_t>(raw);
        auto* const base = reinterpret_cast<std::byte*>((addr + huge_page - 1) & ~(huge_page - 1));
        // Give back the slack on both sides: the pool's mapping is exactly `bytes` long.
        if (base != raw) ::munmap(raw, static_cast<std::size_t>(base - raw));
        if (const std::size_t tail = static_cast<std::size_t>(raw + bytes + slack - (base + bytes))) ::munmap(base + bytes, tail);
        ::madvise(base, bytes, MADV_HUGEPAGE); // advice only: EINVAL where THP is not built in
        return base;
    }

    std::size_t count_, size_;
    std::size_t bytes_ = 0;
    std::byte* storage_ = nullptr;
    std::vector<iovec> iovecs_;
    std::vector<std::size_t> free_;
    std::atomic<bool> registered_{false};
    std::atomic<bool> vectored_{false};
};
static_assert(buffer_provider<registered_buffers>);

} // namespace ksvc
